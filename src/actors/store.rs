//! The `KeyStore` actor (ARCHITECTURE §5–§6): owns this node's Raft ([`RaftDriver`] over
//! raft-engine), the sled state machine behind it and the peer transport, on its own arbiter
//! so fsyncs never block an HTTP worker. Everything else talks to it through a
//! [`KeyStoreHandle`]: bounded request queue in, one-shot answers out.
//!
//! The loop: wait for a request, a peer message or a tick; take everything else already
//! waiting; then ONE Ready round, so all proposals that arrived together share one fsync
//! (group commit) and all reads share one ReadIndex.
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
//!   ([`super::snapshot_fetch`]), then steps the message.
//! - Progress: after every round the status is refreshed, and [`StoreProgress`] (applied
//!   index, role, term) is published on a `watch` ([`KeyStoreHandle::watch`]) when it changed,
//!   so actors that follow commits or leadership wait for it instead of polling.

mod membership;
pub mod space;
mod status;
mod waiters;

pub use membership::MemberChange;
pub use status::{NodeRole, PeerMatch, StoreProgress, StoreStatus};

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft::eraftpb::ConfChangeV2;
use raft::eraftpb::{Message, MessageType};
use raft::StateRole;
use tokio::sync::{mpsc, oneshot, watch};

use self::waiters::Waiters;
use crate::raft::transport::PeerTransport;
use crate::raft::{DriverError, EngineLogStore, LogStore, RaftDriver, StateApplier};
use crate::state::{Command, Envelope, Outcome, StateMachine};

/// Requests waiting for the key store; beyond this, callers get [`StoreError::Busy`].
pub const REQUEST_QUEUE_LEN: usize = 8192;
/// Most requests taken into one Ready round.
const MAX_REQUESTS_PER_ROUND: usize = 4096;
/// Ticks a request may wait for Raft before it fails with [`StoreError::Timeout`].
pub const REQUEST_TIMEOUT_TICKS: u64 = 30;
/// Ticks after which a snapshot sent to a follower and not installed is sent again.
const SNAPSHOT_RETRY_TICKS: u64 = 100;

/// Why the key store could not serve a request. All of them are "try again" for a client
/// (HTTP 503 with `Retry-After`), except [`StoreError::Invalid`].
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
}

enum Request {
    Propose(Command, waiters::WriteReply),
    Read(waiters::ReadReply),
    Members(MemberChange, waiters::WriteReply),
    /// A snapshot file was fetched (or failed) for this snapshot message.
    SnapshotFetched(Box<Message>, Result<(), String>),
    /// Finish the current round, close the Raft log, then answer.
    Stop(oneshot::Sender<()>),
}

/// The handle everything else holds; cheap to clone.
#[derive(Clone)]
pub struct KeyStoreHandle {
    tx: mpsc::Sender<Request>,
    status: Arc<Mutex<StoreStatus>>,
    progress: watch::Receiver<StoreProgress>,
    state: StateMachine,
    snap_dir: PathBuf,
}

impl KeyStoreHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx.try_send(make(tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => StoreError::Stopped(self.halted()),
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
        self.ask(|r| Request::Propose(command, r)).await
    }

    /// Returns once this node's state includes every write committed before the call.
    pub async fn read_barrier(&self) -> Result<(), StoreError> {
        self.ask(Request::Read).await
    }

    /// Proposes one membership change step and waits until it is applied.
    pub async fn change_members(&self, change: MemberChange) -> Result<(), StoreError> {
        self.ask(|r| Request::Members(change, r)).await.map(|_| ())
    }

    /// Stops the key store after its current round and closes the Raft log (a clean
    /// shutdown; requests after it fail with [`StoreError::Stopped`]).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Request::Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    pub fn status(&self) -> StoreStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A receiver of this node's [`StoreProgress`]: marked changed only when the applied
    /// index, the role or the term changed (the sender is dropped when the store stops).
    pub fn watch(&self) -> watch::Receiver<StoreProgress> {
        self.progress.clone()
    }

    /// The replicated state (read it after [`KeyStoreHandle::read_barrier`]).
    pub fn state(&self) -> &StateMachine {
        &self.state
    }

    pub fn snap_dir(&self) -> &std::path::Path {
        &self.snap_dir
    }
}

/// Starts the key store on its own arbiter. `inbox` carries messages from the peer listener.
pub fn start(
    opts: StoreOptions,
    state: StateMachine,
    inbox: mpsc::Receiver<Message>,
) -> Result<KeyStoreHandle, String> {
    let (tx, rx) = mpsc::channel(REQUEST_QUEUE_LEN);
    let status = Arc::new(Mutex::new(StoreStatus::default()));
    let (progress_tx, progress) = watch::channel(StoreProgress::default());
    let handle = KeyStoreHandle {
        tx: tx.clone(),
        status: status.clone(),
        progress,
        state: state.clone(),
        snap_dir: opts.snap_dir.clone(),
    };
    let net = actix_rt::Arbiter::new();
    let core = Core::open(opts, state, status, tx, net.handle(), progress_tx)?;
    let arbiter = actix_rt::Arbiter::new();
    let started = arbiter.spawn(async move {
        use futures_util::FutureExt;
        // A panic inside Raft leaves this replica in an unknown state: stop the process with
        // a clear message rather than answer "unavailable" forever.
        if let Err(panic) = std::panic::AssertUnwindSafe(core.run(rx, inbox))
            .catch_unwind()
            .await
        {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            tracing::error!(panic = %why, "the key store panicked");
            eprintln!("sealkm: FATAL: the key store panicked: {why}; stopping");
            std::process::exit(70);
        }
    });
    if !started {
        return Err("cannot start the key store arbiter".into());
    }
    // Both arbiters live as long as the process.
    std::mem::forget(arbiter);
    std::mem::forget(net);
    Ok(handle)
}

type Driver = RaftDriver<EngineLogStore, StateApplier>;

/// The key store's state: plain data driven by [`Core::run`].
struct Core {
    driver: Driver,
    transport: PeerTransport,
    waiters: Waiters,
    status: Arc<Mutex<StoreStatus>>,
    /// Where [`Core::publish_status`] publishes the progress.
    progress: watch::Sender<StoreProgress>,
    /// Requests from the fetch tasks come back through here.
    requests: mpsc::Sender<Request>,
    net: actix_rt::ArbiterHandle,
    peer_tls: Option<Arc<rustls::ClientConfig>>,
    /// Addresses from the config, used when the state has none for a member.
    static_peers: BTreeMap<u64, String>,
    snap_dir: PathBuf,
    snapshot_interval: u64,
    snapshot_keep_entries: u64,
    /// Snapshot indexes being fetched.
    fetching: BTreeSet<u64>,
    /// Leader: tick at which a snapshot was last sent to a peer.
    snapshot_sent: BTreeMap<u64, u64>,
    ticks: u64,
    tick: Duration,
    next_request_id: u64,
    /// Set by [`Request::Stop`]: leave the loop after this round.
    stop: Option<oneshot::Sender<()>>,
    /// The Raft log disk was full after the last round (to log the change once).
    disk_full: bool,
    /// The free-space reserve, checked every tick.
    space: space::SpaceGuard,
}

impl Core {
    fn open(
        opts: StoreOptions,
        state: StateMachine,
        status: Arc<Mutex<StoreStatus>>,
        requests: mpsc::Sender<Request>,
        net: actix_rt::ArbiterHandle,
        progress: watch::Sender<StoreProgress>,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(&opts.snap_dir)
            .map_err(|e| format!("cannot create {}: {e}", opts.snap_dir.display()))?;
        let store = if opts.join {
            EngineLogStore::open(&opts.raft_dir)
        } else {
            EngineLogStore::open_with_voters(&opts.raft_dir, &opts.voters)
        }
        .map_err(|e| format!("raft log in {}: {e}", opts.raft_dir.display()))?;
        let applier = StateApplier::new(state, opts.snap_dir.clone())
            .map_err(|e| format!("state machine: {e}"))?;
        let store = applier
            .recover(store)
            .map_err(|e| format!("recovering from a snapshot: {e}"))?;
        let mut driver = RaftDriver::new(opts.id, store, applier).map_err(|e| e.to_string())?;
        if let Some(snap) = driver.applier().existing_snapshot(driver.store()) {
            driver.offer_snapshot(snap).map_err(|e| e.to_string())?;
        }
        let static_peers: BTreeMap<u64, String> = opts
            .peers
            .into_iter()
            .filter(|(id, _)| *id != opts.id)
            .collect();
        let transport = match &opts.peer_tls {
            Some(tls) => PeerTransport::on_arbiter(tls.clone(), [], net.clone()),
            None => PeerTransport::on_arbiter(
                Arc::new(crate::tls::empty_client_config().map_err(|e| e.to_string())?),
                [],
                net.clone(),
            ),
        };
        // Random request ids: ids from before a restart never match a new request. A second
        // random word makes this start's ReadIndex contexts unique in the cluster.
        let mut seed = [0u8; 8];
        let mut nonce = [0u8; 8];
        let rng = ring::rand::SystemRandom::new();
        ring::rand::SecureRandom::fill(&rng, &mut seed)
            .and_then(|()| ring::rand::SecureRandom::fill(&rng, &mut nonce))
            .map_err(|_| "RNG failure".to_string())?;
        let mut core = Self {
            driver,
            transport,
            waiters: Waiters::new(opts.id, u64::from_be_bytes(nonce)),
            status,
            progress,
            requests,
            net,
            peer_tls: opts.peer_tls,
            static_peers,
            snap_dir: opts.snap_dir,
            snapshot_interval: opts.snapshot_interval.max(1),
            snapshot_keep_entries: opts.snapshot_keep_entries,
            fetching: BTreeSet::new(),
            snapshot_sent: BTreeMap::new(),
            ticks: 0,
            tick: opts.tick,
            stop: None,
            disk_full: false,
            space: opts.space,
            next_request_id: u64::from_be_bytes(seed) >> 1,
        };
        core.sync_peers();
        // A cluster of one elects itself at once instead of after an election timeout.
        let cs = core.driver.conf_state();
        if cs.voters == [opts.id] && cs.learners.is_empty() {
            core.driver.campaign().map_err(|e| e.to_string())?;
        }
        core.round();
        Ok(core)
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Request>, mut inbox: mpsc::Receiver<Message>) {
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => self.request(r),
                    None => return,
                },
                Some(m) = inbox.recv() => self.peer_message(m),
                _ = ticker.tick() => self.tick(),
            }
            let mut taken = 0;
            while taken < MAX_REQUESTS_PER_ROUND {
                match rx.try_recv() {
                    Ok(r) => self.request(r),
                    Err(_) => break,
                }
                taken += 1;
            }
            while let Ok(m) = inbox.try_recv() {
                self.peer_message(m);
            }
            self.round();
            if let Some(reply) = self.stop.take() {
                // Dropping the core closes raft-engine and the transport.
                drop(self);
                let _ = reply.send(());
                return;
            }
        }
    }

    fn deadline(&self) -> u64 {
        self.ticks + REQUEST_TIMEOUT_TICKS
    }

    fn request(&mut self, r: Request) {
        match r {
            Request::Propose(command, reply) => {
                let request_id = self.request_id();
                // The smallest version the command needs (rolling upgrades, state::command).
                let env = Envelope::new(request_id, command);
                match self.driver.propose(&env) {
                    Ok(()) => self.waiters.add_write(request_id, reply, self.deadline()),
                    Err(e) => {
                        let _ = reply.send(Err(store_error(e)));
                    }
                }
            }
            Request::Read(reply) => {
                if self.driver.leader_id() == 0 {
                    let _ = reply.send(Err(StoreError::NoLeader));
                } else {
                    self.waiters.queue_read(reply, self.deadline());
                }
            }
            Request::Members(change, reply) => match self.conf_change(change) {
                Ok((cc, addrs)) => {
                    let request_id = self.request_id();
                    match self.driver.propose_conf_change(request_id, cc, addrs) {
                        Ok(()) => self.waiters.add_write(request_id, reply, self.deadline()),
                        Err(e) => {
                            let _ = reply.send(Err(store_error(e)));
                        }
                    }
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Request::Stop(reply) => self.stop = Some(reply),
            Request::SnapshotFetched(msg, res) => {
                let index = msg.get_snapshot().get_metadata().index;
                self.fetching.remove(&index);
                match res {
                    Ok(()) => self.step(*msg),
                    Err(e) => tracing::warn!(index, error = %e, "snapshot fetch failed"),
                }
            }
        }
    }

    fn request_id(&mut self) -> u64 {
        self.next_request_id = self.next_request_id.wrapping_add(1);
        self.next_request_id
    }

    /// Checks a membership step against the current configuration and builds it.
    fn conf_change(
        &self,
        change: MemberChange,
    ) -> Result<(ConfChangeV2, Vec<(u64, String)>), StoreError> {
        if !self.driver.is_leader() {
            return Err(StoreError::Invalid(format!(
                "membership changes go to the leader (node {})",
                self.driver.leader_id()
            )));
        }
        if self.driver.has_pending_conf() {
            return Err(StoreError::ConfChangeInProgress);
        }
        membership::build(&self.driver.conf_state(), change)
    }

    fn peer_message(&mut self, msg: Message) {
        if msg.get_msg_type() == MessageType::MsgSnapshot {
            let index = msg.get_snapshot().get_metadata().index;
            if !self.driver.applier().has_snapshot_file(index) {
                self.fetch_snapshot(msg);
                return;
            }
        }
        self.step(msg);
    }

    fn step(&mut self, msg: Message) {
        if let Err(e) = self.driver.step(msg) {
            tracing::debug!(error = %e, "raft message dropped");
        }
    }

    /// Fetches the file of a snapshot message from its sender, then steps the message.
    fn fetch_snapshot(&mut self, msg: Message) {
        let index = msg.get_snapshot().get_metadata().index;
        if !self.fetching.insert(index) {
            return;
        }
        let addr = self.transport.peer_addr(msg.from).map(str::to_owned);
        let (Some(tls), Some(addr)) = (self.peer_tls.clone(), addr) else {
            self.fetching.remove(&index);
            tracing::warn!(from = msg.from, "snapshot from an unknown peer dropped");
            return;
        };
        let (dir, requests) = (self.snap_dir.clone(), self.requests.clone());
        let data = msg.get_snapshot().data.to_vec();
        self.net.spawn_fn(move || {
            actix_rt::spawn(async move {
                let res = super::snapshot_fetch::fetch(tls, &addr, &dir, index, &data).await;
                let _ = requests
                    .send(Request::SnapshotFetched(Box::new(msg), res))
                    .await;
            });
        });
    }

    fn tick(&mut self) {
        self.ticks += 1;
        let low = self.space.check();
        if low.as_deref() != self.driver.low_space() {
            match &low {
                Some(why) => tracing::error!(reason = %why, "low on disk space: refusing writes"),
                None => tracing::warn!("disk space is back above the reserve: writes resume"),
            }
            self.driver.set_low_space(low);
        }
        if let Err(e) = self.driver.tick() {
            tracing::error!(error = %e, "raft tick failed");
        }
        for request_id in self.waiters.expire(self.ticks) {
            self.driver.forget(request_id);
        }
        // A snapshot that was sent but never installed (the follower could not fetch it):
        // tell Raft, so it sends a new one.
        let stale: Vec<u64> = self
            .snapshot_sent
            .iter()
            .filter(|(_, &t)| t + SNAPSHOT_RETRY_TICKS <= self.ticks)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.snapshot_sent.remove(&id);
            if self.driver.progress(id).is_some_and(|p| p.in_snapshot) {
                self.driver.report_snapshot_failed(id);
            }
        }
    }

    /// One Ready round: read batch out, persist, send, apply, answer.
    fn round(&mut self) {
        if self.driver.leader_id() == 0 {
            self.waiters.fail_queued_reads(&StoreError::NoLeader);
        }
        // While the disk is full Raft is paused: reads stay queued until it resumes (or their
        // deadline passes).
        if self.driver.disk_full().is_none() {
            if let Some(ctx) = self.waiters.issue_reads() {
                if let Err(e) = self.driver.read_index(ctx) {
                    tracing::error!(error = %e, "read index failed");
                }
            }
        }
        match self.driver.handle_ready() {
            Ok(out) => {
                for m in &out.messages {
                    if m.get_msg_type() == MessageType::MsgSnapshot {
                        self.snapshot_sent.insert(m.to, self.ticks);
                    }
                }
                let failed = self.transport.send_all(out.messages);
                for id in failed.into_iter().chain(self.transport.take_unreachable()) {
                    self.driver.report_unreachable(id);
                }
                for rs in &out.read_states {
                    self.waiters.read_index(&rs.request_ctx, rs.index);
                }
                self.waiters.applied(out.applied_index);
                for (rid, outcome) in out.applied {
                    self.waiters.finish_write(rid, Ok(outcome));
                }
                if out.membership_changed {
                    self.sync_peers();
                }
                self.maybe_snapshot(out.applied_index);
            }
            Err(e) => {
                // Never diverge: a replica that cannot apply an entry (an unknown command
                // version after a partial upgrade, a storage failure) stops the process.
                tracing::error!(error = %e, "the key store stopped: this replica will not apply further entries");
                eprintln!("sealkm: FATAL: {e}; stopping (upgrade this node or repair its storage, then restart it)");
                std::process::exit(70);
            }
        }
        if self.driver.role() != StateRole::Leader {
            self.snapshot_sent.clear();
        }
        match (self.driver.disk_full(), self.disk_full) {
            (Some(why), false) => {
                tracing::error!(error = %why, "the Raft log disk is full: refusing writes, retrying every tick");
                self.disk_full = true;
            }
            (None, true) => {
                tracing::warn!("the Raft log can be written again: writes resume");
                self.disk_full = false;
            }
            _ => {}
        }
        self.publish_status();
    }

    fn maybe_snapshot(&mut self, applied: u64) {
        let last = self.driver.store().snapshot_metadata().index;
        if applied >= last + self.snapshot_interval {
            match self.driver.build_snapshot(self.snapshot_keep_entries) {
                Ok(Some(index)) => tracing::info!(index, "snapshot built, log compacted"),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "snapshot failed"),
            }
        }
    }

    /// Makes the transport's peers the members of the current configuration, plus the peers
    /// named in the config (a joining node answers the leader before it knows the members).
    fn sync_peers(&mut self) {
        let cs = self.driver.conf_state();
        let me = self.driver.id();
        let members: BTreeSet<u64> = cs
            .voters
            .iter()
            .chain(&cs.learners)
            .chain(&cs.voters_outgoing)
            .chain(&cs.learners_next)
            .chain(self.static_peers.keys())
            .copied()
            .filter(|&id| id != me)
            .collect();
        // One precedence rule with cluster status: the recorded address wins.
        let recorded: BTreeMap<u64, String> = crate::raft::transport::peer_addresses(
            self.driver.applier().state().members().unwrap_or_default(),
            self.static_peers.iter().map(|(k, v)| (*k, v.clone())),
        );
        for id in self.transport.peer_ids() {
            if !members.contains(&id) {
                self.transport.remove_peer(id);
            }
        }
        for id in members {
            let Some(addr) = recorded.get(&id) else {
                tracing::warn!(peer = id, "no address known for a member");
                continue;
            };
            if self.transport.peer_addr(id) != Some(addr.as_str()) {
                self.transport.add_peer(id, addr.clone());
            }
        }
    }

    fn publish_status(&self) {
        let s = status::of(
            &self.driver,
            &self.transport.peer_ids(),
            self.waiters.waiting(),
        );
        let progress = StoreProgress::of(&s);
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = s;
        // Unchanged progress wakes nobody.
        self.progress
            .send_if_modified(|p| std::mem::replace(p, progress) != progress);
    }
}

fn store_error(e: DriverError) -> StoreError {
    match e {
        DriverError::ProposalDropped => StoreError::NoLeader,
        // No space: refused with the reason (507); it resumes by itself.
        e @ DriverError::DiskFull(_) => StoreError::DiskFull(e.to_string()),
        other => StoreError::Stopped(other.to_string()),
    }
}
