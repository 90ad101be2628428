//! The Raft peer transport (ARCHITECTURE §5–§7): carries the `raft::eraftpb::Message`s a
//! [`RaftDriver`](crate::raft::RaftDriver) returns to the other nodes, and hands the messages other
//! nodes send to this one to the caller's bounded inbox.
//!
//! It owns:
//! - the wire format ([`wire`]): a batch is a sequence of `u32` big-endian length + protobuf
//!   message, bounded in bytes and in messages; a stream frame is the sender's clock + a batch;
//! - the sender side ([`PeerTransport`]): one bounded queue and one task per peer, so a slow
//!   or dead peer only delays its own queue; a full queue drops (Raft retransmits). Each task
//!   keeps one long-lived stream to its peer (`GET /raft/v1/stream`, a WebSocket of binary
//!   frames, [`stream`]) and writes every batch to it as soon as it has it, without waiting
//!   for an answer, as etcd's peer streams do. A peer without the stream route (an older
//!   node) gets one `POST /raft/v1/messages` per batch instead;
//! - the receiver side ([`configure`], [`receive`]): both routes on the peer listener;
//! - who speaks on a connection ([`identity`]): the client certificate must name a node, and
//!   every message must come from a node it names.
//!
//! Every frame (and every POST, [`CLOCK_HEADER`]) carries the sender's clock; a receiver given
//! a [`PeerClocks`](crate::clock::PeerClocks) as app data records it (the clock-skew rule,
//! [`crate::clock`]).
//!
//! The peer listener and the client both use mutual TLS with the cluster CA
//! ([`crate::tls::peer_server_config`], [`crate::tls::peer_client_config`]): protobuf 2.28
//! has a recursion advisory, so only authenticated peers reach the decoder.
//!
//! The sender tasks use awc, whose client is not `Send`: they run on the arbiter given to
//! [`PeerTransport::on_arbiter`] (the key store gives them their own, so its fsyncs never
//! delay a send), or else on the current one, and then [`PeerTransport::new`] and
//! [`PeerTransport::add_peer`] must run inside an actix (or tokio `LocalSet`) context.

pub mod identity;
pub mod receive;
mod stream;
pub mod wire;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft::eraftpb::Message;
use tokio::sync::mpsc;

pub use self::identity::{require_node_identity, PeerNames, PeerNodes};
pub use self::receive::{configure, configure_with_identity};
pub use self::wire::{
    decode_batch, decode_frame, encode_batch, encode_frame, encode_message, DecodeError,
    EncodeError,
};
use crate::clock::{Clock, SystemClock, CLOCK_HEADER};

/// The path peers POST message batches to (one batch per POST; older nodes send these).
pub const MESSAGES_PATH: &str = "/raft/v1/messages";
/// The path of the peer stream (a WebSocket: one binary frame per batch).
pub const STREAM_PATH: &str = "/raft/v1/stream";
/// Messages waiting for one peer; beyond this, sends to that peer are dropped.
pub const PEER_QUEUE_LEN: usize = 1024;
/// Most messages in one batch (a POST or a stream frame), sent and accepted.
pub const MAX_BATCH_MESSAGES: usize = 64;
/// Largest accepted batch. An append is at most 1 MiB of entries
/// (`node::MAX_SIZE_PER_MSG`), so a full batch of appends needs several batches; the sender
/// splits by size.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Time for one POST, connection and TLS handshake included; also for opening a stream and
/// for writing one frame to it.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// A reasonable capacity for the caller's inbox: at least one full batch, or every batch
/// would be refused.
pub const INBOX_LEN: usize = 4 * MAX_BATCH_MESSAGES;
/// After a peer answered that it has no stream route, how long its batches go by POST before
/// the stream is tried again (it may have been upgraded meanwhile).
const STREAM_RETRY: Duration = Duration::from_secs(30);

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
    /// Written and flushed to the peer's stream, or acknowledged by the peer (a POST's 2xx).
    delivered: AtomicU64,
    /// Lost: the stream could not be opened or written (error, timeout), a failed POST
    /// (error, timeout, non-2xx), or too large to frame.
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
/// handshake and the whole request; TCP_NODELAY on its connections.
pub fn peer_client(tls: Arc<rustls::ClientConfig>, timeout: Duration) -> awc::Client {
    awc::Client::builder()
        .connector(
            awc::Connector::new()
                .connector(stream::NoDelay::default())
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
    /// Peers whose queue overflowed or whose stream or POST failed since the last
    /// [`PeerTransport::take_unreachable`].
    unreachable: Arc<Mutex<BTreeSet<u64>>>,
    timeout: Duration,
    /// Where the sender tasks run (`None`: the current arbiter).
    arbiter: Option<actix_rt::ArbiterHandle>,
    /// The clock each frame (and POST, [`CLOCK_HEADER`]) is stamped with.
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

    /// Like [`PeerTransport::new`] with another timeout (for a POST, for opening a stream,
    /// for writing a frame).
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

    /// Stamps frames and POSTs to peers added from now on with `clock` (default: the system clock).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// Starts (or restarts, with a new address) the queue and task of peer `id`.
    pub fn add_peer(&mut self, id: u64, addr: String) {
        let (tx, rx) = mpsc::channel(PEER_QUEUE_LEN);
        let counters = Arc::new(Counters::default());
        let (tls, timeout, clock) = (self.tls.clone(), self.timeout, self.clock.clone());
        let url = format!("https://{addr}{MESSAGES_PATH}");
        let stream_url = stream::url(&addr);
        let (task_counters, unreachable) = (counters.clone(), self.unreachable.clone());
        let start = move || {
            let task = PeerTask {
                id,
                url,
                stream_url,
                client: peer_client(tls, timeout),
                timeout,
                counters: task_counters,
                unreachable,
                clock,
                conn: None,
                posts_since: None,
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

    /// Peers that lost messages (full queue, failed stream or POST) since the last call, for
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
    stream_url: String,
    client: awc::Client,
    timeout: Duration,
    counters: Arc<Counters>,
    unreachable: Arc<Mutex<BTreeSet<u64>>>,
    clock: Arc<dyn Clock>,
    /// The open stream to the peer, if any (opened with the first batch after a failure).
    conn: Option<stream::Conn>,
    /// Since when the peer gets POSTs: it answered that it has no stream route.
    posts_since: Option<Instant>,
}

impl PeerTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        let mut batch = Vec::with_capacity(MAX_BATCH_MESSAGES);
        // A message that did not fit in the previous batch opens the next one.
        let mut carry: Option<Vec<u8>> = None;
        loop {
            if batch.is_empty()
                && carry.is_none()
                && self.next_batch(&mut rx, &mut batch).await == 0
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
                self.send(body, count as u64).await;
            }
        }
    }

    /// Waits for the next messages (0: the queue is closed). Meanwhile an open stream is
    /// watched, so one the peer closed is dropped (and reported) before the next write.
    async fn next_batch(
        &mut self,
        rx: &mut mpsc::Receiver<Message>,
        batch: &mut Vec<Message>,
    ) -> usize {
        let Some(conn) = self.conn.as_mut() else {
            return rx.recv_many(batch, MAX_BATCH_MESSAGES).await;
        };
        tokio::select! {
            n = rx.recv_many(batch, MAX_BATCH_MESSAGES) => n,
            why = stream::closed(conn) => {
                tracing::debug!(peer = self.id, error = %why, "raft stream ended");
                self.conn = None;
                mark(&self.unreachable, self.id);
                rx.recv_many(batch, MAX_BATCH_MESSAGES).await
            }
        }
    }

    /// Sends one batch of `count` messages: on the stream (opened first if needed), or by
    /// POST to a peer without the stream route.
    async fn send(&mut self, body: Vec<u8>, count: u64) {
        if self
            .posts_since
            .is_some_and(|since| since.elapsed() < STREAM_RETRY)
        {
            return self.post(body, count).await;
        }
        let conn = match self.conn.as_mut() {
            Some(conn) => conn,
            None => match stream::connect(&self.client, &self.stream_url, self.timeout).await {
                Ok(conn) => {
                    self.posts_since = None;
                    self.conn.insert(conn)
                }
                Err(stream::StreamError::NoStreamRoute(status)) => {
                    tracing::info!(peer = self.id, %status, "peer without the raft stream: sending by POST");
                    self.posts_since = Some(Instant::now());
                    return self.post(body, count).await;
                }
                Err(e) => {
                    tracing::debug!(peer = self.id, error = %e, "raft stream not opened");
                    return self.lost(count);
                }
            },
        };
        let frame = encode_frame(self.clock.now_unix_ms(), &body);
        match stream::write(conn, frame, self.timeout).await {
            Ok(()) => {
                self.counters.delivered.fetch_add(count, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(peer = self.id, error = %e, "raft stream broken");
                self.conn = None;
                self.lost(count);
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
}
