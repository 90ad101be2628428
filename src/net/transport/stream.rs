//! The sending side of the peer stream: one long-lived WebSocket (over the peer listener's
//! mutual TLS) per peer, on which each batch is one binary frame ([`super::wire::encode_frame`]),
//! written and flushed without waiting for an answer. The receiver answers nothing per frame
//! (Raft's own responses are the acknowledgement); it only closes the stream when it refuses
//! it. TCP_NODELAY is set on every peer connection ([`NoDelay`]): frames follow each other
//! without a response between them, so Nagle's algorithm would hold a frame back until the
//! previous one is acknowledged.

use std::time::Duration;

use actix_codec::Framed;
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, ConnectorService};
use awc::http::{StatusCode, Uri};
use awc::ws;
use futures_util::future::LocalBoxFuture;
use futures_util::{SinkExt as _, StreamExt as _};

use super::{MAX_BODY_BYTES, STREAM_PATH};

/// An open stream to one peer.
pub(super) type Conn = Framed<awc::BoxedSocket, ws::Codec>;

/// Why a stream could not be opened or used; the batch in hand is lost (Raft retransmits).
#[derive(Debug, thiserror::Error)]
pub(super) enum StreamError {
    /// The peer serves no stream (a node of an older version): use POSTs.
    #[error("the peer has no stream route ({0}): an older node")]
    NoStreamRoute(StatusCode),
    #[error("opening the stream: {0}")]
    Connect(String),
    #[error("opening the stream timed out")]
    ConnectTimeout,
    #[error("writing a frame: {0}")]
    Write(String),
    #[error("writing a frame timed out")]
    WriteTimeout,
    #[error("the peer closed the stream")]
    Closed,
}

/// The stream URL of the peer at `addr` ("host:port").
pub(super) fn url(addr: &str) -> String {
    format!("wss://{addr}{STREAM_PATH}")
}

/// Opens the stream (TCP, TLS with the client certificate, the WebSocket handshake), all
/// within `timeout`.
pub(super) async fn connect(
    client: &awc::Client,
    url: &str,
    timeout: Duration,
) -> Result<Conn, StreamError> {
    let handshake = client.ws(url).max_frame_size(MAX_BODY_BYTES).connect();
    match tokio::time::timeout(timeout, handshake).await {
        Err(_) => Err(StreamError::ConnectTimeout),
        Ok(Ok((_, conn))) => Ok(conn),
        Ok(Err(awc::error::WsClientError::InvalidResponseStatus(s)))
            if s == StatusCode::NOT_FOUND || s == StatusCode::METHOD_NOT_ALLOWED =>
        {
            Err(StreamError::NoStreamRoute(s))
        }
        Ok(Err(e)) => Err(StreamError::Connect(e.to_string())),
    }
}

/// Writes one frame and flushes it, within `timeout`.
pub(super) async fn write(
    conn: &mut Conn,
    frame: Vec<u8>,
    timeout: Duration,
) -> Result<(), StreamError> {
    match tokio::time::timeout(timeout, conn.send(ws::Message::Binary(frame.into()))).await {
        Err(_) => Err(StreamError::WriteTimeout),
        Ok(Err(e)) => Err(StreamError::Write(e.to_string())),
        Ok(Ok(())) => Ok(()),
    }
}

/// Resolves when the receiver ends the stream (a close frame, EOF or an error); anything
/// else it sends (a pong) is read and ignored.
pub(super) async fn closed(conn: &mut Conn) -> StreamError {
    loop {
        match conn.next().await {
            None | Some(Ok(ws::Frame::Close(_))) => return StreamError::Closed,
            Some(Err(e)) => return StreamError::Write(e.to_string()),
            Some(Ok(_)) => {}
        }
    }
}

/// The TCP connector of the peer client: awc's default, with TCP_NODELAY on every connection.
#[derive(Clone, Default)]
pub(super) struct NoDelay(ConnectorService);

impl Service<ConnectInfo<Uri>> for NoDelay {
    type Response = Connection<Uri, actix_rt::net::TcpStream>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_service::always_ready!();

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let connecting = self.0.call(req);
        Box::pin(async move {
            let conn = connecting.await?;
            if let Err(e) = conn.io_ref().set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set on a peer connection");
            }
            Ok(conn)
        })
    }
}
