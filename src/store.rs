//! The `KeyStore` actor (ARCHITECTURE §5–§6): an actix actor ([`KeyStore`], on its own
//! arbiter so fsyncs never block an HTTP worker) that owns this node's Raft ([`RaftDriver`]
//! over raft-engine), the sled state machine behind it and the peer transport. Everything else
//! talks to it with typed messages ([`Propose`], [`ReadBarrier`], [`ChangeMembers`], [`Stop`];
//! the peer listener's Raft messages arrive as a stream), usually through a
//! [`KeyStoreHandle`]: a bounded mailbox in (full: [`StoreError::Busy`]), one-shot answers out.
//!
//! The rounds: each message only records its request and schedules a round; the round runs
//! once the mailbox is drained, so all proposals that arrived together share one fsync
//! (group commit) and all reads share one ReadIndex. A fatal error (an entry this replica
//! cannot apply) stops the actor and is reported to `main` ([`KeyStoreHandle::fatal`]), which
//! stops the process; no actor calls `exit`.
//! - Writes: proposed with a request id; answered with the outcome once applied. A follower
//!   forwards to the leader (raft-rs `MsgProp`); the entry names its proposer, so the
//!   follower answers when it applies it. No leader: an immediate [`StoreError::NoLeader`].
//! - Reads: [`KeyStoreHandle::read_barrier`] returns once this node has applied everything
//!   committed when it was called (ReadIndex), so no key is issued from stale state. A node
//!   cut off from a quorum never gets an answer and times out ([`StoreError::Timeout`]).
//! - A full disk: a round whose Raft log write fails for lack of space waits and is retried
//!   every round (every tick); meanwhile the node is paused in Raft, refuses writes with
//!   [`StoreError::DiskFull`] (HTTP 507), holds reads until they can be answered or time out,
//!   and resumes by itself once the write succeeds. It no longer exits.
//! - Free-space reserve ([`space`]): each tick the disks are measured; below the reserve the
//!   node takes no new data (writes refused with [`StoreError::DiskFull`]) but still answers
//!   reads it has applied, so sled never meets a full disk.
//! - Snapshots: built every `snapshot_interval` applied entries; a follower that receives a
//!   snapshot message first fetches the file from the sender in bounded chunks
//!   ([`crate::net::snapshot_fetch`]), then steps the message.
//! - Progress: after every round the status is refreshed, and [`StoreProgress`] (applied
//!   index, role, term) is published on a `watch` ([`KeyStoreHandle::watch`]) when it changed,
//!   so actors that follow commits or leadership wait for it instead of polling.

mod actor;
pub mod applier;
pub mod listener;
mod membership;
pub mod space;
mod status;
#[cfg(test)]
mod tests;
mod waiters;

pub use actor::KeyStore;
pub use membership::MemberChange;
pub use status::{NodeRole, PeerMatch, StoreProgress, StoreStatus};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Addr};
use raft::eraftpb::Message;
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::{Clock, PeerClocks, SystemClock};
use crate::state::{Command, Outcome, StateMachine};

/// Requests waiting for the key store; beyond this, callers get [`StoreError::Busy`].
pub const REQUEST_QUEUE_LEN: usize = 8192;
/// Ticks a request may wait for Raft before it fails with [`StoreError::Timeout`].
pub const REQUEST_TIMEOUT_TICKS: u64 = 30;
/// Ticks after which a snapshot sent to a follower and not installed is sent again.
const SNAPSHOT_RETRY_TICKS: u64 = 100;

/// Why the key store could not serve a request. All of them are "try again" for a client
/// (HTTP 503 with `Retry-After`), except [`StoreError::Invalid`]; the API tells the ones
/// refused before they were proposed ([`StoreError::not_proposed`]) from the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no leader is known (election in progress or no quorum)")]
    NoLeader,
    #[error("the cluster did not answer in time (no quorum reachable?)")]
    Timeout,
    #[error("the key store is overloaded")]
    Busy,
    /// No space for new data on this node (see `store/space.rs`): writes are refused until
    /// space returns (HTTP 507), reads go on.
    #[error("{0}")]
    DiskFull(String),
    #[error("a membership change is already in progress")]
    ConfChangeInProgress,
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("the key store has stopped: {0}")]
    Stopped(String),
}

impl StoreError {
    /// Whether the request was refused before it was proposed to Raft, so it can never
    /// commit: no leader known (raft-rs dropped the proposal, or a read found no leader), the
    /// mailbox full, or no space for new data. [`StoreError::Timeout`] is not: a proposal
    /// that timed out may still commit.
    pub fn not_proposed(&self) -> bool {
        matches!(
            self,
            StoreError::NoLeader | StoreError::Busy | StoreError::DiskFull(_)
        )
    }
}

/// How to open a key store.
pub struct StoreOptions {
    /// This node's Raft id.
    pub id: u64,
    /// Raft log directory (raft-engine).
    pub raft_dir: PathBuf,
    /// Snapshot files.
    pub snap_dir: PathBuf,
    /// Initial voters of a new cluster (this node included); ignored once the log exists.
    /// Empty with `join`.
    pub voters: Vec<u64>,
    /// Peer addresses known from the config `(id, host:port)`; members added later are
    /// recorded in the replicated state.
    pub peers: Vec<(u64, String)>,
    /// Start outside the configuration and wait to be added (`sealkm cluster join`).
    pub join: bool,
    pub tick: Duration,
    /// Build a snapshot every this many applied entries.
    pub snapshot_interval: u64,
    /// Entries kept in the log behind a snapshot (for followers that lag a little).
    pub snapshot_keep_entries: u64,
    /// mTLS client config towards peers (`None`: a single node without peers).
    pub peer_tls: Option<Arc<rustls::ClientConfig>>,
    /// The free-space reserve of the node's disks (default: none).
    pub space: space::SpaceGuard,
    /// The node's clock: stamped on every Raft batch to peers and measured against theirs
    /// ([`crate::clock::PeerClocks`]).
    pub clock: Arc<dyn Clock>,
}

impl StoreOptions {
    /// A cluster of one (`id` the only voter, no peers) with the config's default tick and
    /// snapshot settings and no free-space reserve.
    pub fn single_node(id: u64, raft_dir: PathBuf, snap_dir: PathBuf) -> Self {
        Self {
            id,
            raft_dir,
            snap_dir,
            voters: vec![id],
            peers: Vec::new(),
            join: false,
            tick: Duration::from_millis(crate::config::default_tick_ms()),
            snapshot_interval: crate::config::default_snapshot_interval(),
            snapshot_keep_entries: crate::config::default_snapshot_keep(),
            peer_tls: None,
            space: space::SpaceGuard::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Proposes a command; `reply` gets its outcome once it is applied on this node.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct Propose {
    pub command: Command,
    pub reply: waiters::WriteReply,
}

/// A linearizable read barrier: `reply` is answered once this node has applied everything
/// committed when the barrier was asked (ReadIndex).
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct ReadBarrier(pub waiters::ReadReply);

/// One membership step; `reply` is answered once it is applied.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct ChangeMembers {
    pub change: MemberChange,
    pub reply: waiters::WriteReply,
}

/// A snapshot file was fetched (or failed) for this snapshot message (from the fetch task).
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct SnapshotFetched(pub Box<Message>, pub Result<(), String>);

/// A snapshot build the key store started off its thread is done (from the build thread).
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct SnapshotBuilt {
    pub index: u64,
    pub result: Result<Vec<u8>, String>,
}

/// Finish the current round, close the Raft log, then answer.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct Stop(pub oneshot::Sender<()>);

/// The handle everything else holds; cheap to clone.
#[derive(Clone)]
pub struct KeyStoreHandle {
    addr: Addr<KeyStore>,
    status: Arc<Mutex<StoreStatus>>,
    fatal: watch::Receiver<Option<String>>,
    progress: watch::Receiver<StoreProgress>,
    state: StateMachine,
    snap_dir: PathBuf,
    peer_clocks: Arc<PeerClocks>,
}

impl KeyStoreHandle {
    async fn ask<T, M>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> M,
    ) -> Result<T, StoreError>
    where
        M: actix::Message<Result = ()> + Send + 'static,
        KeyStore: actix::Handler<M>,
    {
        let (tx, rx) = oneshot::channel();
        self.addr.try_send(make(tx)).map_err(|e| match e {
            actix::dev::SendError::Full(_) => StoreError::Busy,
            actix::dev::SendError::Closed(_) => StoreError::Stopped(self.halted()),
        })?;
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Stopped(self.halted())))
    }

    fn halted(&self) -> String {
        self.status()
            .halted
            .unwrap_or_else(|| "key store task ended".into())
    }

    /// Proposes `command` and returns its outcome once it is applied on this node.
    pub async fn propose(&self, command: Command) -> Result<Outcome, StoreError> {
        self.ask(|reply| Propose { command, reply }).await
    }

    /// Returns once this node's state includes every write committed before the call.
    pub async fn read_barrier(&self) -> Result<(), StoreError> {
        self.ask(ReadBarrier).await
    }

    /// Proposes one membership change step and waits until it is applied.
    pub async fn change_members(&self, change: MemberChange) -> Result<(), StoreError> {
        self.ask(|reply| ChangeMembers { change, reply })
            .await
            .map(|_| ())
    }

    /// Stops the key store after its current round and closes the Raft log (a clean
    /// shutdown; requests after it fail with [`StoreError::Stopped`]).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.addr.send(Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Resolves when the key store stops without being asked to: with the fatal error, or
    /// with why it ended otherwise (a panic). `main` stops the process then.
    pub async fn fatal(&self) -> String {
        let mut rx = self.fatal.clone();
        loop {
            if let Some(why) = rx.borrow_and_update().clone() {
                return why;
            }
            if rx.changed().await.is_err() {
                return rx
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| "the key store ended unexpectedly (see the log)".into());
            }
        }
    }

    /// A receiver of this node's [`StoreProgress`]: marked changed only when the applied
    /// index, the role or the term changed (the sender is dropped when the store stops).
    pub fn watch(&self) -> watch::Receiver<StoreProgress> {
        self.progress.clone()
    }

    /// The actor's address, for sending it messages directly.
    pub fn addr(&self) -> &Addr<KeyStore> {
        &self.addr
    }

    pub fn status(&self) -> StoreStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The replicated state (read it after [`KeyStoreHandle::read_barrier`]).
    pub fn state(&self) -> &StateMachine {
        &self.state
    }

    pub fn snap_dir(&self) -> &std::path::Path {
        &self.snap_dir
    }

    /// How far each peer's clock was from this node's on the last batch it sent here.
    pub fn peer_clocks(&self) -> &Arc<PeerClocks> {
        &self.peer_clocks
    }
}

/// Starts the key store actor on its own arbiter (the peer transport gets another).
/// `inbox` carries Raft messages from the peer listener.
pub fn start(
    opts: StoreOptions,
    state: StateMachine,
    inbox: mpsc::Receiver<Message>,
) -> Result<KeyStoreHandle, String> {
    let status = Arc::new(Mutex::new(StoreStatus::default()));
    let (fatal_tx, fatal_rx) = watch::channel(None);
    let (progress_tx, progress) = watch::channel(StoreProgress::default());
    let snap_dir = opts.snap_dir.clone();
    let peer_clocks = Arc::new(PeerClocks::new(opts.clock.clone()));
    let net = actix_rt::Arbiter::new();
    let store = KeyStore::open(
        opts,
        state.clone(),
        status.clone(),
        net.handle(),
        fatal_tx,
        progress_tx,
    )?;
    let arbiter = actix_rt::Arbiter::new();
    let addr = KeyStore::start_in_arbiter(&arbiter.handle(), move |ctx| {
        actix::AsyncContext::add_stream(ctx, peer_messages(inbox));
        store
    });
    // Both arbiters live as long as the process.
    std::mem::forget(arbiter);
    std::mem::forget(net);
    Ok(KeyStoreHandle {
        addr,
        status,
        fatal: fatal_rx,
        progress,
        state,
        snap_dir,
        peer_clocks,
    })
}

/// The peer listener's messages as a stream (it ends when the listener is gone).
fn peer_messages(inbox: mpsc::Receiver<Message>) -> impl futures_util::Stream<Item = Message> {
    futures_util::stream::unfold(
        inbox,
        |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
    )
}
