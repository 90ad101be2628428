//! The Raft peer transport (ARCHITECTURE §5–§7): carries the `raft::eraftpb::Message`s a
//! [`RaftDriver`](crate::raft::RaftDriver) returns to the other nodes, and hands the messages other
//! nodes send to this one to the caller's bounded inbox.
//!
//! It owns:
//! - the wire format of a batch ([`encode_batch`] / [`decode_batch`]): a sequence of
//!   `u32` big-endian length + protobuf message, bounded in bytes and in messages;
//! - the sender side ([`PeerTransport`]): one bounded queue and one task per peer, so a slow
//!   or dead peer only delays its own queue; a full queue drops (Raft retransmits);
//! - the receiver side ([`configure`]): `POST /raft/v1/messages` on the peer listener.
//!
//! Every POST carries the sender's clock ([`CLOCK_HEADER`]); a receiver given a
//! [`PeerClocks`] as app data records it (the clock-skew rule, [`crate::clock`]).
//!
//! The peer listener and the client both use mutual TLS with the cluster CA
//! ([`crate::tls::peer_server_config`], [`crate::tls::peer_client_config`]): protobuf 2.28
//! has a recursion advisory, so only authenticated peers reach the decoder.
//!
//! The sender tasks use awc, whose client is not `Send`: they run on the arbiter given to
//! [`PeerTransport::on_arbiter`] (the key store gives them their own, so its fsyncs never
//! delay a send), or else on the current one, and then [`PeerTransport::new`] and
//! [`PeerTransport::add_peer`] must run inside an actix (or tokio `LocalSet`) context.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpMessage, HttpResponse};
use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::sync::mpsc;

use crate::clock::{Clock, PeerClocks, SystemClock, CLOCK_HEADER};
use crate::tls::PeerCert;

/// The path peers POST message batches to.
pub const MESSAGES_PATH: &str = "/raft/v1/messages";
/// Messages waiting for one peer; beyond this, sends to that peer are dropped.
pub const PEER_QUEUE_LEN: usize = 1024;
/// Most messages in one POST (sender) and accepted in one POST (receiver).
pub const MAX_BATCH_MESSAGES: usize = 64;
/// Largest accepted request body. An append is at most 1 MiB of entries
/// (`node::MAX_SIZE_PER_MSG`), so a full batch of appends needs several POSTs; the sender
/// splits by size.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Time for one POST, connection and TLS handshake included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// A reasonable capacity for the caller's inbox: at least one full batch, or every batch
/// would be refused with 503.
pub const INBOX_LEN: usize = 4 * MAX_BATCH_MESSAGES;

/// Bytes of the length prefix before each message.
const PREFIX: usize = 4;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty batch")]
    Empty,
    #[error("more than {MAX_BATCH_MESSAGES} messages in one batch")]
    TooManyMessages,
    #[error("batch of {0} bytes is over the {MAX_BODY_BYTES} byte limit")]
    TooLarge(usize),
    #[error("truncated message at byte {0}")]
    Truncated(usize),
    #[error("message at byte {offset}: {reason}")]
    Protobuf { offset: usize, reason: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("message of {0} bytes cannot be framed within {MAX_BODY_BYTES} bytes")]
    TooLarge(usize),
    #[error("protobuf: {0}")]
    Protobuf(String),
}

/// Why [`PeerTransport::send`] did not queue a message. Every variant means the message is
/// lost: the caller reports the peer unreachable to Raft, which retransmits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    #[error("queue to peer {0} is full; message dropped")]
    QueueFull(u64),
    #[error("no address known for peer {0}")]
    UnknownPeer(u64),
    #[error("sender task of peer {0} has stopped")]
    Closed(u64),
}

/// Encodes one message with its length prefix, appended to `out`.
pub fn encode_message(msg: &Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let bytes = msg
        .write_to_bytes()
        .map_err(|e| EncodeError::Protobuf(e.to_string()))?;
    if bytes.len() + PREFIX > MAX_BODY_BYTES {
        return Err(EncodeError::TooLarge(bytes.len()));
    }
    // Fits: checked against MAX_BODY_BYTES, far below u32::MAX.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Encodes a batch (test and tooling helper; the sender frames incrementally).
pub fn encode_batch(msgs: &[Message]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    for m in msgs {
        encode_message(m, &mut out)?;
    }
    Ok(out)
}

/// Decodes a batch from a peer. Never panics: every length is checked against what is left.
pub fn decode_batch(body: &[u8]) -> Result<Vec<Message>, DecodeError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(DecodeError::TooLarge(body.len()));
    }
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut msgs = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let offset = body.len() - rest.len();
        if msgs.len() == MAX_BATCH_MESSAGES {
            return Err(DecodeError::TooManyMessages);
        }
        let (prefix, tail) = rest
            .split_first_chunk::<PREFIX>()
            .ok_or(DecodeError::Truncated(offset))?;
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > tail.len() {
            return Err(DecodeError::Truncated(offset));
        }
        let (bytes, tail) = tail.split_at(len);
        let msg = Message::parse_from_bytes(bytes).map_err(|e| DecodeError::Protobuf {
            offset,
            reason: e.to_string(),
        })?;
        msgs.push(msg);
        rest = tail;
    }
    Ok(msgs)
}

/// Registers `POST /raft/v1/messages` on the peer listener; decoded messages go to `inbox`
/// in order, all of a batch or none (503 when the inbox has no room for the whole batch).
/// `inbox` should hold at least [`MAX_BATCH_MESSAGES`] (see [`INBOX_LEN`]). No identity check
/// beyond the TLS handshake: for tests and in-process wiring only; the peer listener uses
/// [`configure_with_identity`].
pub fn configure(cfg: &mut web::ServiceConfig, inbox: mpsc::Sender<Message>) {
    configure_with_identity(cfg, inbox, PeerNames(None));
}

/// Like [`configure`], and with `names` set, the connection's client certificate must name a
/// node (checked before the body is read) and every message of a batch must come from the
/// node it names (see [`PeerNames`]); otherwise 403.
pub fn configure_with_identity(
    cfg: &mut web::ServiceConfig,
    inbox: mpsc::Sender<Message>,
    names: PeerNames,
) {
    cfg.app_data(web::Data::new(inbox))
        .app_data(web::Data::new(names))
        .route(MESSAGES_PATH, web::post().to(receive));
}

/// How a node id is named in peer certificates: node `N` presents a certificate whose DNS
/// subject alternative names include `node<N>.<domain>` literally (a wildcard names no node).
/// `None`: no names are checked (the CA check alone; tests only — a node config must set
/// `peer_name_domain`).
#[derive(Debug, Clone, Default)]
pub struct PeerNames(pub Option<String>);

/// The node ids a peer connection's certificate names, found before anything is read
/// ([`require_node_identity`]); kept in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerNodes(pub Vec<u64>);

impl PeerNames {
    /// The node ids `cert` names: every literal DNS name `node<N>.<domain>` (N > 0, no
    /// leading zero) among its subject alternative names that it is valid for.
    pub fn node_ids(&self, cert: &PeerCert) -> Vec<u64> {
        let Some(domain) = &self.0 else {
            return Vec::new();
        };
        let Ok(ee) = webpki::EndEntityCert::try_from(&cert.0) else {
            return Vec::new();
        };
        let suffix = format!(".{}", domain.to_ascii_lowercase());
        let mut ids = Vec::new();
        for name in crate::tls::certificate_names(&cert.0) {
            let lower = name.to_ascii_lowercase();
            let Some(digits) = lower
                .strip_suffix(suffix.as_str())
                .and_then(|h| h.strip_prefix("node"))
            else {
                continue;
            };
            if digits.is_empty()
                || digits.starts_with('0')
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                continue;
            }
            let Ok(id) = digits.parse::<u64>() else {
                continue;
            };
            let Ok(server_name) =
                rustls::pki_types::ServerName::try_from(format!("node{id}.{domain}"))
            else {
                continue;
            };
            if ee.verify_is_valid_for_subject_name(&server_name).is_ok() && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    /// The nodes the connection of `req` speaks for; empty when it names none (or when no
    /// domain is set).
    fn nodes_of(&self, req: &actix_web::HttpRequest) -> Vec<u64> {
        if let Some(known) = req.extensions().get::<PeerNodes>() {
            return known.0.clone();
        }
        req.conn_data::<PeerCert>()
            .map(|c| self.node_ids(c))
            .unwrap_or_default()
    }
}

/// The body of a refusal for a connection whose certificate names no node.
const NOT_A_NODE: &str = "the client certificate does not name a node of this cluster";

/// Middleware for the whole peer listener (`App::wrap(from_fn(require_node_identity))`):
/// before any route runs, its extractors included (so before a body is read or any state is
/// touched), the connection's client certificate must name a node (`node<N>.<domain>`, with
/// the [`PeerNames`] of the app's data); otherwise 403. The ids it names are kept in the
/// request's extensions as [`PeerNodes`]. Without a `PeerNames` domain, every request is
/// refused: the listener never serves on the CA check alone.
pub async fn require_node_identity(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let ids = req
        .app_data::<web::Data<PeerNames>>()
        .map(|n| n.get_ref())
        .filter(|n| n.0.is_some())
        .map(|n| n.nodes_of(req.request()))
        .unwrap_or_default();
    if ids.is_empty() {
        tracing::warn!(path = %req.path(), "peer request refused: the certificate names no node");
        return Ok(req.into_response(HttpResponse::Forbidden().body(NOT_A_NODE)));
    }
    req.extensions_mut().insert(PeerNodes(ids));
    next.call(req).await
}

async fn receive(
    req: actix_web::HttpRequest,
    inbox: web::Data<mpsc::Sender<Message>>,
    names: web::Data<PeerNames>,
    clocks: Option<web::Data<PeerClocks>>,
    payload: web::Payload,
) -> HttpResponse {
    let names = names.get_ref();
    // Who speaks, before a byte of the body is read.
    let nodes = names.nodes_of(&req);
    if names.0.is_some() && nodes.is_empty() {
        return HttpResponse::Forbidden().body(NOT_A_NODE);
    }
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
    if names.0.is_some() {
        if let Some(m) = msgs.iter().find(|m| !nodes.contains(&m.from)) {
            tracing::warn!(
                from = m.from,
                "raft batch refused: the peer certificate does not name the sender"
            );
            return HttpResponse::Forbidden()
                .body("the client certificate does not name the sending node");
        }
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
    // Reserve room for the whole batch first, so a batch is never half delivered.
    match inbox.try_reserve_many(msgs.len()) {
        Ok(permits) => {
            for (permit, msg) in permits.zip(msgs) {
                permit.send(msg);
            }
            HttpResponse::NoContent().finish()
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .body("raft inbox full"),
    }
}

/// The peer addresses to use, from the members recorded in the replicated state and the
/// `[[raft.peer]]` entries of the config: a recorded address wins (it is newer: a member
/// added or moved by `sealkm cluster join`), a configured one fills the gaps. The Raft loop
/// and the cluster status both resolve addresses with this one rule.
pub fn peer_addresses(
    recorded: impl IntoIterator<Item = (u64, String)>,
    configured: impl IntoIterator<Item = (u64, String)>,
) -> std::collections::BTreeMap<u64, String> {
    let mut out: std::collections::BTreeMap<u64, String> = configured.into_iter().collect();
    out.extend(recorded);
    out
}

/// Counters of one peer's queue; all monotonic.
#[derive(Debug, Default)]
struct Counters {
    /// Refused by a full queue.
    dropped: AtomicU64,
    /// Acknowledged by the peer (2xx).
    delivered: AtomicU64,
    /// Lost in a failed POST (error, timeout, non-2xx) or too large to frame.
    failed: AtomicU64,
}

/// A snapshot of one peer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerStats {
    pub dropped: u64,
    pub delivered: u64,
    pub failed: u64,
}

struct Peer {
    queue: mpsc::Sender<Message>,
    counters: Arc<Counters>,
    addr: String,
}

/// An HTTPS client for peer requests (mTLS through `tls`), with one timeout for connect,
/// handshake and the whole request.
pub fn peer_client(tls: Arc<rustls::ClientConfig>, timeout: Duration) -> awc::Client {
    awc::Client::builder()
        .connector(
            awc::Connector::new()
                .rustls_0_23(tls)
                .timeout(timeout)
                .handshake_timeout(timeout),
        )
        .timeout(timeout)
        .finish()
}

/// The sender side: one bounded queue and one sending task per peer.
pub struct PeerTransport {
    tls: Arc<rustls::ClientConfig>,
    peers: HashMap<u64, Peer>,
    /// Peers whose queue overflowed or whose POST failed since the last
    /// [`PeerTransport::take_unreachable`].
    unreachable: Arc<Mutex<BTreeSet<u64>>>,
    timeout: Duration,
    /// Where the sender tasks run (`None`: the current arbiter).
    arbiter: Option<actix_rt::ArbiterHandle>,
    /// The clock each POST is stamped with ([`CLOCK_HEADER`]).
    clock: Arc<dyn Clock>,
}

impl PeerTransport {
    /// A transport whose sender tasks run on `arbiter`; usable from any thread.
    pub fn on_arbiter(
        tls: Arc<rustls::ClientConfig>,
        peers: impl IntoIterator<Item = (u64, String)>,
        arbiter: actix_rt::ArbiterHandle,
    ) -> Self {
        let mut t = Self::with_timeout(tls, [], SEND_TIMEOUT);
        t.arbiter = Some(arbiter);
        for (id, addr) in peers {
            t.add_peer(id, addr);
        }
        t
    }

    /// The address currently used for peer `id`.
    pub fn peer_addr(&self, id: u64) -> Option<&str> {
        self.peers.get(&id).map(|p| p.addr.as_str())
    }

    /// Ids of every peer with a queue.
    pub fn peer_ids(&self) -> Vec<u64> {
        self.peers.keys().copied().collect()
    }
    /// A transport presenting the node's certificate through `tls`
    /// ([`crate::tls::peer_client_config`]); peers are `(id, "host:port")`.
    pub fn new(
        tls: Arc<rustls::ClientConfig>,
        peers: impl IntoIterator<Item = (u64, String)>,
    ) -> Self {
        Self::with_timeout(tls, peers, SEND_TIMEOUT)
    }

    /// Like [`PeerTransport::new`] with another POST timeout.
    pub fn with_timeout(
        tls: Arc<rustls::ClientConfig>,
        peers: impl IntoIterator<Item = (u64, String)>,
        timeout: Duration,
    ) -> Self {
        let mut t = Self {
            tls,
            peers: HashMap::new(),
            unreachable: Arc::new(Mutex::new(BTreeSet::new())),
            timeout,
            arbiter: None,
            clock: Arc::new(SystemClock),
        };
        for (id, addr) in peers {
            t.add_peer(id, addr);
        }
        t
    }

    /// Stamps POSTs to peers added from now on with `clock` (default: the system clock).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// Starts (or restarts, with a new address) the queue and task of peer `id`.
    pub fn add_peer(&mut self, id: u64, addr: String) {
        let (tx, rx) = mpsc::channel(PEER_QUEUE_LEN);
        let counters = Arc::new(Counters::default());
        let (tls, timeout, clock) = (self.tls.clone(), self.timeout, self.clock.clone());
        let url = format!("https://{addr}{MESSAGES_PATH}");
        let (task_counters, unreachable) = (counters.clone(), self.unreachable.clone());
        let start = move || {
            let task = PeerTask {
                id,
                url,
                client: peer_client(tls, timeout),
                counters: task_counters,
                unreachable,
                clock,
            };
            actix_rt::spawn(task.run(rx));
        };
        match &self.arbiter {
            Some(a) => {
                a.spawn_fn(start);
            }
            None => start(),
        }
        // Replacing the old sender closes its queue: the old task ends after its batch.
        self.peers.insert(
            id,
            Peer {
                queue: tx,
                counters,
                addr,
            },
        );
    }

    /// Stops sending to peer `id`; what is still queued for it is dropped.
    pub fn remove_peer(&mut self, id: u64) {
        self.peers.remove(&id);
    }

    /// Queues `msg` for peer `to`; never blocks. On `Err` the message is lost and the caller
    /// should report `to` unreachable to Raft.
    pub fn send(&self, to: u64, msg: Message) -> Result<(), SendError> {
        let peer = self.peers.get(&to).ok_or(SendError::UnknownPeer(to))?;
        match peer.queue.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                peer.counters.dropped.fetch_add(1, Ordering::Relaxed);
                mark(&self.unreachable, to);
                Err(SendError::QueueFull(to))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed(to)),
        }
    }

    /// Sends every message of a driver's `Output::messages` to its `msg.to`; returns the
    /// peers that could not take a message.
    pub fn send_all(&self, msgs: impl IntoIterator<Item = Message>) -> BTreeSet<u64> {
        let mut failed = BTreeSet::new();
        for m in msgs {
            let to = m.to;
            if self.send(to, m).is_err() {
                failed.insert(to);
            }
        }
        failed
    }

    /// Peers that lost messages (full queue, failed POST) since the last call, for
    /// `report_unreachable`.
    pub fn take_unreachable(&self) -> BTreeSet<u64> {
        match self.unreachable.lock() {
            Ok(mut set) => std::mem::take(&mut *set),
            // A poisoned set only means a task panicked mid-insert; the data is still a set.
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }

    /// Counters of peer `id`.
    pub fn stats(&self, id: u64) -> Option<PeerStats> {
        self.peers.get(&id).map(|p| PeerStats {
            dropped: p.counters.dropped.load(Ordering::Relaxed),
            delivered: p.counters.delivered.load(Ordering::Relaxed),
            failed: p.counters.failed.load(Ordering::Relaxed),
        })
    }
}

fn mark(set: &Mutex<BTreeSet<u64>>, id: u64) {
    match set.lock() {
        Ok(mut s) => s.insert(id),
        Err(p) => p.into_inner().insert(id),
    };
}

struct PeerTask {
    id: u64,
    url: String,
    client: awc::Client,
    counters: Arc<Counters>,
    unreachable: Arc<Mutex<BTreeSet<u64>>>,
    clock: Arc<dyn Clock>,
}

impl PeerTask {
    async fn run(self, mut rx: mpsc::Receiver<Message>) {
        let mut batch = Vec::with_capacity(MAX_BATCH_MESSAGES);
        // A message that did not fit in the previous body opens the next one.
        let mut carry: Option<Vec<u8>> = None;
        loop {
            if batch.is_empty()
                && carry.is_none()
                && rx.recv_many(&mut batch, MAX_BATCH_MESSAGES).await == 0
            {
                return;
            }
            let mut body = carry.take().unwrap_or_default();
            let mut count = usize::from(!body.is_empty());
            let mut drained = 0;
            for msg in &batch {
                let mut framed = Vec::new();
                if let Err(e) = encode_message(msg, &mut framed) {
                    tracing::warn!(peer = self.id, error = %e, "raft message not sent");
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    drained += 1;
                    continue;
                }
                if body.len() + framed.len() > MAX_BODY_BYTES || count == MAX_BATCH_MESSAGES {
                    carry = Some(framed);
                    drained += 1;
                    break;
                }
                body.extend_from_slice(&framed);
                count += 1;
                drained += 1;
            }
            batch.drain(..drained);
            if count > 0 {
                self.post(body, count as u64).await;
            }
        }
    }

    async fn post(&self, body: Vec<u8>, count: u64) {
        let res = self
            .client
            .post(&self.url)
            .content_type("application/octet-stream")
            .insert_header((CLOCK_HEADER, self.clock.now_unix_ms()))
            .send_body(body)
            .await;
        match res {
            Ok(resp) if resp.status().is_success() => {
                self.counters.delivered.fetch_add(count, Ordering::Relaxed);
            }
            Ok(resp) => {
                tracing::debug!(peer = self.id, status = %resp.status(), "raft batch refused");
                self.lost(count);
            }
            Err(e) => {
                tracing::debug!(peer = self.id, error = %e, "raft batch not delivered");
                self.lost(count);
            }
        }
    }

    fn lost(&self, count: u64) {
        self.counters.failed.fetch_add(count, Ordering::Relaxed);
        mark(&self.unreachable, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::{Entry, MessageType};

    fn msg(i: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.to = 2;
        m.from = 1;
        m.term = 3;
        m.index = i;
        let e = Entry {
            index: i + 1,
            data: vec![i as u8; 10].into(),
            ..Default::default()
        };
        m.entries = vec![e].into();
        m
    }

    #[test]
    fn a_recorded_member_address_wins_over_the_configured_one() {
        let recorded = [
            (2, "10.0.0.2:7000".to_string()),
            (4, "10.0.0.4:7000".into()),
        ];
        let configured = [(2, "old:7000".to_string()), (3, "10.0.0.3:7000".into())];
        let addrs = peer_addresses(recorded, configured);
        assert_eq!(addrs.get(&2).map(String::as_str), Some("10.0.0.2:7000"));
        assert_eq!(addrs.get(&3).map(String::as_str), Some("10.0.0.3:7000"));
        assert_eq!(addrs.get(&4).map(String::as_str), Some("10.0.0.4:7000"));
        assert_eq!(addrs.len(), 3);
    }

    #[test]
    fn node_ids_come_from_literal_node_names_of_the_domain() {
        let ca = crate::tls::DevCa::generate("t").unwrap();
        let names = PeerNames(Some("cluster.test".into()));
        let ids = |sans: &[&str]| {
            let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
            let (pem, _) = ca.issue(&sans).unwrap();
            let der = rustls_pemfile::certs(&mut pem.as_bytes())
                .next()
                .unwrap()
                .unwrap();
            names.node_ids(&PeerCert(der))
        };
        assert_eq!(ids(&["node3.cluster.test", "127.0.0.1"]), vec![3]);
        assert_eq!(ids(&["NODE12.Cluster.Test"]), vec![12]);
        assert!(ids(&["*.cluster.test"]).is_empty());
        assert!(ids(&[
            "node.cluster.test",
            "node0.cluster.test",
            "node01.cluster.test"
        ])
        .is_empty());
        assert!(ids(&[
            "node1.other.test",
            "val.cluster.test",
            "sip:node1.cluster.test"
        ])
        .is_empty());
        assert!(PeerNames(None)
            .node_ids(&PeerCert(rustls::pki_types::CertificateDer::from(vec![
                1u8, 2
            ])))
            .is_empty());
    }

    #[test]
    fn batch_roundtrip_in_order() {
        let msgs: Vec<_> = (0..MAX_BATCH_MESSAGES as u64).map(msg).collect();
        let body = encode_batch(&msgs).expect("encode");
        assert_eq!(decode_batch(&body).expect("decode"), msgs);
    }

    #[test]
    fn decode_rejects_bad_batches() {
        assert_eq!(decode_batch(&[]), Err(DecodeError::Empty));
        assert_eq!(decode_batch(&[0, 0]), Err(DecodeError::Truncated(0)));
        assert_eq!(
            decode_batch(&[0, 0, 0, 9, 1]),
            Err(DecodeError::Truncated(0))
        );
        assert_eq!(
            decode_batch(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Truncated(0))
        );
        // A field with wire type 7 does not exist.
        assert!(matches!(
            decode_batch(&[0, 0, 0, 1, 0x0f]),
            Err(DecodeError::Protobuf { offset: 0, .. })
        ));
        let too_many: Vec<_> = (0..=MAX_BATCH_MESSAGES as u64).map(msg).collect();
        assert_eq!(
            decode_batch(&encode_batch(&too_many).expect("encode")),
            Err(DecodeError::TooManyMessages)
        );
        // The second message is cut short.
        let mut two = encode_batch(&[msg(1), msg(2)]).expect("encode");
        let first_len = two.len() / 2;
        two.pop();
        assert_eq!(decode_batch(&two), Err(DecodeError::Truncated(first_len)));
    }
}
