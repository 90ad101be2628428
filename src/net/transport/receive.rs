//! The receiving side of the peer transport: the routes the peer listener serves for Raft
//! messages ([`configure`], [`configure_with_identity`]): the peer stream (a WebSocket of
//! binary frames, one [`super::wire::encode_frame`] each, on one long-lived connection per
//! sending peer) and the one-batch POST that older nodes send.

use actix_codec::Decoder as _;
use actix_http::ws;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use raft::eraftpb::Message;
use tokio::sync::mpsc;

use super::identity::{PeerNames, NOT_A_NODE};
use super::wire::{decode_batch, decode_frame, DecodeError, STAMP};
use super::{MAX_BODY_BYTES, MESSAGES_PATH, STREAM_PATH};
use crate::clock::{PeerClocks, CLOCK_HEADER};

/// Registers the receiving routes on the peer listener: `GET /raft/v1/stream` (the peer
/// stream, [`receive_stream`]) and `POST /raft/v1/messages` (one batch per POST). Decoded
/// messages go to `inbox` in order, all of a batch or none (a POST gets 503 when the inbox has
/// no room for the whole batch; a stream frame is dropped, as a lossy network would).
/// `inbox` should hold at least [`MAX_BATCH_MESSAGES`] (see [`INBOX_LEN`]). No identity check
/// beyond the TLS handshake: for tests and in-process wiring only; the peer listener uses
/// [`configure_with_identity`].
pub fn configure(cfg: &mut web::ServiceConfig, inbox: mpsc::Sender<Message>) {
    configure_with_identity(cfg, inbox, PeerNames(None));
}

/// Like [`configure`], and with `names` set, the connection's client certificate must name a
/// node (checked before the body is read) and every message of a batch must come from the
/// node it names (see [`PeerNames`]); otherwise 403 (a stream is closed at the first message
/// that does not come from the node its certificate names).
pub fn configure_with_identity(
    cfg: &mut web::ServiceConfig,
    inbox: mpsc::Sender<Message>,
    names: PeerNames,
) {
    cfg.app_data(web::Data::new(inbox))
        .app_data(web::Data::new(names))
        .route(MESSAGES_PATH, web::post().to(receive))
        .route(STREAM_PATH, web::get().to(receive_stream));
}

async fn receive(
    req: actix_web::HttpRequest,
    inbox: web::Data<mpsc::Sender<Message>>,
    names: web::Data<PeerNames>,
    clocks: Option<web::Data<PeerClocks>>,
    payload: web::Payload,
) -> HttpResponse {
    // Who speaks, before a byte of the body is read.
    let nodes = match speakers(&names, &req) {
        Ok(nodes) => nodes,
        Err(NotANode) => return HttpResponse::Forbidden().body(NOT_A_NODE),
    };
    let body = match payload.to_bytes_limited(MAX_BODY_BYTES).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return HttpResponse::BadRequest().body(e.to_string()),
        Err(_) => {
            return HttpResponse::PayloadTooLarge()
                .body(DecodeError::TooLarge(MAX_BODY_BYTES + 1).to_string())
        }
    };
    let msgs = match decode_batch(&body) {
        Ok(m) => m,
        Err(e) => return HttpResponse::BadRequest().body(e.to_string()),
    };
    if let Some(from) = foreign_sender(nodes.as_deref(), &msgs) {
        tracing::warn!(
            from,
            "raft batch refused: the peer certificate does not name the sender"
        );
        return HttpResponse::Forbidden()
            .body("the client certificate does not name the sending node");
    }
    // The sender's clock, for the clock-skew rule (a batch holds one sender's messages).
    let stamp = req
        .headers()
        .get(CLOCK_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(clocks), Some(sent), Some(m)) = (&clocks, stamp, msgs.first()) {
        clocks.record(m.from, sent);
    }
    if deliver(&inbox, msgs) {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .body("raft inbox full")
    }
}

/// The nodes the connection of `req` speaks for, per its client certificate (`None`: no names
/// are checked, tests only); `Err` for a certificate that names no node (403).
fn speakers(names: &PeerNames, req: &actix_web::HttpRequest) -> Result<Option<Vec<u64>>, NotANode> {
    if names.0.is_none() {
        return Ok(None);
    }
    let nodes = names.nodes_of(req);
    if nodes.is_empty() {
        return Err(NotANode);
    }
    Ok(Some(nodes))
}

/// A connection whose client certificate names no node of this cluster.
struct NotANode;

/// The sender of the first message of `msgs` that does not come from one of `nodes` (`None`:
/// every sender is allowed).
fn foreign_sender(nodes: Option<&[u64]>, msgs: &[Message]) -> Option<u64> {
    let nodes = nodes?;
    msgs.iter()
        .map(|m| m.from)
        .find(|from| !nodes.contains(from))
}

/// Puts a whole batch into `inbox`, or nothing of it (`false`: no room for all of it).
fn deliver(inbox: &mpsc::Sender<Message>, msgs: Vec<Message>) -> bool {
    // Reserve room for the whole batch first, so a batch is never half delivered.
    match inbox.try_reserve_many(msgs.len()) {
        Ok(permits) => {
            for (permit, msg) in permits.zip(msgs) {
                permit.send(msg);
            }
            true
        }
        Err(_) => false,
    }
}

/// Frames a stream may send back to its sender: a pong, then the close.
const OUT_FRAMES: usize = 8;
/// A stream on which nothing arrives for this long is closed, so a sender that vanished
/// without closing its connection leaves no reader behind. A leader's streams carry
/// heartbeats and never idle this long; a stream opened for an election may.
const STREAM_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// `GET /raft/v1/stream`: a WebSocket on which one peer sends this node its messages, one
/// binary frame per batch (clock stamp + batch). The identity middleware has checked the
/// client certificate already; here every message must come from a node it names, or the
/// stream is closed (policy violation). A frame that is not a stamp and a well-formed batch
/// closes it too (protocol error): the sender reconnects and Raft retransmits.
async fn receive_stream(
    req: actix_web::HttpRequest,
    inbox: web::Data<mpsc::Sender<Message>>,
    names: web::Data<PeerNames>,
    clocks: Option<web::Data<PeerClocks>>,
    payload: web::Payload,
) -> HttpResponse {
    let nodes = match speakers(&names, &req) {
        Ok(nodes) => nodes,
        Err(NotANode) => return HttpResponse::Forbidden().body(NOT_A_NODE),
    };
    if let Err(e) = ws::verify_handshake(req.head()) {
        return HttpResponse::BadRequest().body(e.to_string());
    }
    let Some(accept) = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| ws::hash_key(k.as_bytes()))
    else {
        return HttpResponse::BadRequest().body("no Sec-WebSocket-Key");
    };
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(OUT_FRAMES);
    let reader = StreamReader {
        inbox: inbox.into_inner(),
        nodes,
        clocks: clocks.map(|c| c.into_inner()),
        out: out_tx,
        codec: ws::Codec::new().max_size(MAX_BODY_BYTES + STAMP),
    };
    actix_rt::spawn(reader.run(payload));
    let out = futures_util::stream::unfold(out_rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    HttpResponse::build(StatusCode::SWITCHING_PROTOCOLS)
        .upgrade("websocket")
        .insert_header((header::SEC_WEBSOCKET_ACCEPT, &accept[..]))
        .streaming(out)
}

/// Why a stream was closed by this side.
#[derive(Debug, thiserror::Error)]
enum StreamClose {
    #[error("websocket: {0}")]
    Protocol(String),
    #[error("bad frame: {0}")]
    Frame(#[from] DecodeError),
    #[error("message from node {0}, which the client certificate does not name")]
    NotTheSender(u64),
    #[error("a text or continuation frame on the peer stream (only whole binary frames are sent)")]
    Text,
}

struct StreamReader {
    inbox: std::sync::Arc<mpsc::Sender<Message>>,
    /// The nodes the client certificate names (`None`: no names checked, tests only).
    nodes: Option<Vec<u64>>,
    clocks: Option<std::sync::Arc<PeerClocks>>,
    /// Frames back to the sender (pong, close), encoded.
    out: mpsc::Sender<Bytes>,
    codec: ws::Codec,
}

impl StreamReader {
    async fn run(mut self, mut payload: web::Payload) {
        let mut buf = BytesMut::new();
        loop {
            let chunk = match tokio::time::timeout(STREAM_IDLE, payload.next()).await {
                Ok(Some(Ok(chunk))) => chunk,
                Ok(None | Some(Err(_))) => return,
                Err(_) => {
                    // Idle (or a sender gone without closing): the sender opens a new one
                    // with its next batch.
                    tracing::debug!("idle raft peer stream closed");
                    let normal = ws::Message::Close(Some(ws::CloseCode::Normal.into()));
                    return self.reply(normal).await;
                }
            };
            buf.extend_from_slice(&chunk);
            loop {
                let frame = match self.codec.decode(&mut buf) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return self.close(StreamClose::Protocol(e.to_string())).await,
                };
                match frame {
                    ws::Frame::Binary(bytes) => {
                        if let Err(e) = self.frame(&bytes) {
                            return self.close(e).await;
                        }
                    }
                    ws::Frame::Ping(p) => self.reply(ws::Message::Pong(p)).await,
                    ws::Frame::Pong(_) => {}
                    ws::Frame::Close(_) => {
                        return self.reply(ws::Message::Close(None)).await;
                    }
                    ws::Frame::Text(_) | ws::Frame::Continuation(_) => {
                        return self.close(StreamClose::Text).await
                    }
                }
            }
        }
    }

    /// One binary frame: checked as a whole, then delivered as a whole (or dropped when the
    /// inbox has no room for it).
    fn frame(&self, bytes: &[u8]) -> Result<(), StreamClose> {
        let (sent_ms, msgs) = decode_frame(bytes)?;
        if let Some(from) = foreign_sender(self.nodes.as_deref(), &msgs) {
            return Err(StreamClose::NotTheSender(from));
        }
        if let (Some(clocks), Some(m)) = (&self.clocks, msgs.first()) {
            clocks.record(m.from, sent_ms);
        }
        if !deliver(&self.inbox, msgs) {
            tracing::debug!("raft inbox full: a stream frame was dropped");
        }
        Ok(())
    }

    async fn reply(&mut self, msg: ws::Message) {
        let mut out = BytesMut::new();
        if actix_codec::Encoder::encode(&mut self.codec, msg, &mut out).is_ok() {
            let _ = self.out.send(out.freeze()).await;
        }
    }

    async fn close(mut self, why: StreamClose) {
        tracing::warn!(error = %why, "raft peer stream closed");
        let code = match why {
            StreamClose::NotTheSender(_) => ws::CloseCode::Policy,
            _ => ws::CloseCode::Protocol,
        };
        self.reply(ws::Message::Close(Some(code.into()))).await;
    }
}
