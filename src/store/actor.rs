//! The `KeyStore` actix actor itself (see the parent module for what it owns and promises).
//!
//! Every message handler only records the request (a proposal, a read, a membership step, a
//! peer's Raft message, a fetched snapshot) and schedules one Ready round with
//! `ctx.notify(Round)`. actix drains the whole mailbox before it runs notified items, so all
//! requests that arrived together share one round: one fsync (group commit) and one ReadIndex.
//! The Raft clock is `run_interval(tick)`. A fatal error (an entry this replica cannot apply)
//! stops the actor and is published on the `fatal` watch, which `main` turns into an exit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Recipient, StreamHandler};
use raft::eraftpb::{ConfChangeV2, Message, MessageType};
use raft::StateRole;
use tokio::sync::{oneshot, watch};

use super::applier::StateApplier;
use super::waiters::{ReadReply, Waiters, WriteReply};
use super::{
    membership, space, status, ChangeMembers, MemberChange, Propose, ReadBarrier, SnapshotBuilt,
    SnapshotFetched, Stop, StoreError, StoreOptions, StoreProgress, StoreStatus, REQUEST_QUEUE_LEN,
    REQUEST_TIMEOUT_TICKS, SNAPSHOT_RETRY_TICKS,
};
use crate::net::transport::PeerTransport;
use crate::raft::node::SnapshotStart;
use crate::raft::{DriverError, EngineLogStore, LogStore, RaftDriver};
use crate::state::command;
use crate::state::{Command, Envelope, StateMachine};

type Driver = RaftDriver<EngineLogStore, StateApplier>;

/// The key store actor: this node's Raft driver, state applier and peer transport, and the
/// requests waiting on them. Plain data; the handlers below only feed it and run rounds.
///
/// Field order matters on drop: the driver (raft-engine) and the transport close before
/// `stopped` answers the caller of [`super::Stop`].
pub struct KeyStore {
    driver: Driver,
    transport: PeerTransport,
    waiters: Waiters,
    status: Arc<Mutex<StoreStatus>>,
    /// This actor's own address: snapshot fetch tasks report back through it.
    me: Option<Recipient<SnapshotFetched>>,
    /// Where the snapshot build thread reports.
    built_to: Option<Recipient<SnapshotBuilt>>,
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
    /// The Raft log disk was full after the last round (to log the change once).
    disk_full: bool,
    /// The free-space reserve, checked every tick.
    space: space::SpaceGuard,
    /// A Ready round is scheduled (notified to self, after the mailbox is drained).
    round_scheduled: bool,
    /// Where a fatal error is told (read by `main`, which stops the process).
    fatal: watch::Sender<Option<String>>,
    /// Where [`KeyStore::publish_status`] publishes the progress.
    progress: watch::Sender<StoreProgress>,
    /// Set by [`super::Stop`]; dropped last, so its answer comes after everything closed.
    stopped: Option<StopReply>,
}

/// Answers a [`super::Stop`] when dropped (after the fields before it in [`KeyStore`]).
struct StopReply(Option<oneshot::Sender<()>>);

impl Drop for StopReply {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

impl KeyStore {
    /// Opens the Raft log and the state applier (recovering from a snapshot if needed) and
    /// runs a first round. The actor is started by [`super::start`].
    pub(super) fn open(
        opts: StoreOptions,
        state: StateMachine,
        status: Arc<Mutex<StoreStatus>>,
        net: actix_rt::ArbiterHandle,
        fatal: watch::Sender<Option<String>>,
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
        let mut transport = match &opts.peer_tls {
            Some(tls) => PeerTransport::on_arbiter(tls.clone(), [], net.clone()),
            None => PeerTransport::on_arbiter(
                Arc::new(crate::tls::empty_client_config().map_err(|e| e.to_string())?),
                [],
                net.clone(),
            ),
        };
        transport.set_clock(opts.clock.clone());
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
            me: None,
            built_to: None,
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
            disk_full: false,
            space: opts.space,
            round_scheduled: false,
            fatal,
            progress,
            stopped: None,
            next_request_id: u64::from_be_bytes(seed) >> 1,
        };
        core.sync_peers();
        // A cluster of one elects itself at once instead of after an election timeout.
        let cs = core.driver.conf_state();
        if cs.voters == [opts.id] && cs.learners.is_empty() {
            core.driver.campaign().map_err(|e| e.to_string())?;
        }
        core.round()?;
        Ok(core)
    }

    fn deadline(&self) -> u64 {
        self.ticks + REQUEST_TIMEOUT_TICKS
    }

    fn propose(&mut self, command: Command, reply: WriteReply) {
        let request_id = self.request_id();
        // The smallest version the command needs (rolling upgrades, state::command).
        let env = Envelope::new(request_id, command);
        let data = match command::try_encode(&env) {
            Ok(data) => data,
            Err(e) => {
                let _ = reply.send(Err(StoreError::Invalid(format!(
                    "unencodable command: {e}"
                ))));
                return;
            }
        };
        match self.driver.propose(request_id, data) {
            Ok(()) => self.waiters.add_write(request_id, reply, self.deadline()),
            Err(e) => {
                let _ = reply.send(Err(store_error(e)));
            }
        }
    }

    fn read(&mut self, reply: ReadReply) {
        if self.driver.leader_id() == 0 {
            let _ = reply.send(Err(StoreError::NoLeader));
        } else {
            self.waiters.queue_read(reply, self.deadline());
        }
    }

    fn change_members(&mut self, change: MemberChange, reply: WriteReply) {
        match self.conf_change(change) {
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
        }
    }

    fn snapshot_fetched(&mut self, msg: Message, res: Result<(), String>) {
        let index = msg.get_snapshot().get_metadata().index;
        self.fetching.remove(&index);
        match res {
            Ok(()) => self.step(msg),
            Err(e) => tracing::warn!(index, error = %e, "snapshot fetch failed"),
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
        let (Some(tls), Some(addr), Some(me)) = (self.peer_tls.clone(), addr, self.me.clone())
        else {
            self.fetching.remove(&index);
            tracing::warn!(from = msg.from, "snapshot from an unknown peer dropped");
            return;
        };
        let dir = self.snap_dir.clone();
        let data = msg.get_snapshot().data.to_vec();
        self.net.spawn_fn(move || {
            actix_rt::spawn(async move {
                let res = crate::net::snapshot_fetch::fetch(tls, &addr, &dir, index, &data).await;
                // The store may have stopped meanwhile: nothing to report to then.
                let _ = me.send(SnapshotFetched(Box::new(msg), res)).await;
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

    /// One Ready round: read batch out, persist, send, apply, answer. An error is fatal: this
    /// replica must not apply further entries.
    fn round(&mut self) -> Result<(), String> {
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
        // A leader's appends leave before its own fsync (overlapping the followers').
        let mut failed = BTreeSet::new();
        let (transport, snapshot_sent, ticks) =
            (&self.transport, &mut self.snapshot_sent, self.ticks);
        let mut send = |msgs: Vec<Message>| {
            for m in &msgs {
                if m.get_msg_type() == MessageType::MsgSnapshot {
                    snapshot_sent.insert(m.to, ticks);
                }
            }
            failed.extend(transport.send_all(msgs));
        };
        let res = self.driver.handle_ready_sending(&mut send);
        match res {
            Ok(out) => {
                send(out.messages);
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
                // version after a partial upgrade, a storage failure) stops.
                self.publish_status();
                return Err(format!(
                    "{e} (upgrade this node or repair its storage, then restart it)"
                ));
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
        Ok(())
    }

    /// Every `snapshot_interval` applied entries: a snapshot, built on a thread of its own
    /// so that ticks, heartbeats and votes go on however large the state is (applying waits
    /// for it: the driver defers committed entries until [`SnapshotBuilt`]).
    fn maybe_snapshot(&mut self, applied: u64) {
        let last = self.driver.store().snapshot_metadata().index;
        if applied < last + self.snapshot_interval {
            return;
        }
        match self.driver.start_snapshot(self.snapshot_keep_entries) {
            Ok(SnapshotStart::Job { index, job }) => {
                let to = self.built_to.clone();
                let spawned = std::thread::Builder::new()
                    .name("sealkm-snapshot".into())
                    .spawn(move || {
                        let result = job();
                        if let Some(to) = to {
                            to.do_send(SnapshotBuilt { index, result });
                        }
                    });
                match spawned {
                    Ok(_) => tracing::debug!(index, "building a snapshot"),
                    Err(e) => {
                        tracing::error!(error = %e, "snapshot failed: no thread to build it");
                        self.snapshot_built(index, Err(e.to_string()));
                    }
                }
            }
            Ok(SnapshotStart::Built(index)) => {
                tracing::info!(index, "snapshot built, log compacted")
            }
            Ok(SnapshotStart::Current) => {}
            Err(e) => tracing::error!(error = %e, "snapshot failed"),
        }
    }

    fn snapshot_built(&mut self, index: u64, result: Result<Vec<u8>, String>) {
        let data = result
            .map_err(|e| tracing::error!(index, error = %e, "snapshot failed"))
            .ok();
        match self
            .driver
            .finish_snapshot(index, data, self.snapshot_keep_entries)
        {
            Ok(true) => tracing::info!(index, "snapshot built, log compacted"),
            Ok(false) => {}
            Err(e) => tracing::error!(index, error = %e, "snapshot failed"),
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
        let recorded: BTreeMap<u64, String> = crate::net::transport::peer_addresses(
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

/// Runs one Ready round (scheduled by [`KeyStore::schedule_round`]).
#[derive(actix::Message)]
#[rtype(result = "()")]
struct Round;

impl KeyStore {
    /// Schedules one round after everything now in the mailbox is handled.
    fn schedule_round(&mut self, ctx: &mut Context<Self>) {
        if !self.round_scheduled {
            self.round_scheduled = true;
            ctx.notify(Round);
        }
    }

    /// Stops this replica for good: tells `main` (which stops the process) and the status.
    fn fail(&mut self, ctx: &mut Context<Self>, why: String) {
        tracing::error!(error = %why, "the key store stopped: this replica will not apply further entries");
        let _ = self.fatal.send(Some(why));
        ctx.stop();
    }
}

impl Actor for KeyStore {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(REQUEST_QUEUE_LEN);
        self.me = Some(ctx.address().recipient());
        self.built_to = Some(ctx.address().recipient());
        ctx.run_interval(self.tick, |store, ctx| {
            store.tick();
            store.schedule_round(ctx);
        });
    }
}

impl Handler<Round> for KeyStore {
    type Result = ();

    fn handle(&mut self, _: Round, ctx: &mut Context<Self>) {
        self.round_scheduled = false;
        if let Err(why) = self.round() {
            self.fail(ctx, why);
        } else if self.stopped.is_some() {
            // Dropping the actor closes raft-engine and the transport, then answers.
            ctx.stop();
        }
    }
}

impl Handler<Propose> for KeyStore {
    type Result = ();

    fn handle(&mut self, msg: Propose, ctx: &mut Context<Self>) {
        self.propose(msg.command, msg.reply);
        self.schedule_round(ctx);
    }
}

impl Handler<ReadBarrier> for KeyStore {
    type Result = ();

    fn handle(&mut self, msg: ReadBarrier, ctx: &mut Context<Self>) {
        self.read(msg.0);
        self.schedule_round(ctx);
    }
}

impl Handler<ChangeMembers> for KeyStore {
    type Result = ();

    fn handle(&mut self, msg: ChangeMembers, ctx: &mut Context<Self>) {
        self.change_members(msg.change, msg.reply);
        self.schedule_round(ctx);
    }
}

impl Handler<SnapshotFetched> for KeyStore {
    type Result = ();

    fn handle(&mut self, msg: SnapshotFetched, ctx: &mut Context<Self>) {
        self.snapshot_fetched(*msg.0, msg.1);
        self.schedule_round(ctx);
    }
}

impl Handler<SnapshotBuilt> for KeyStore {
    type Result = ();

    fn handle(&mut self, msg: SnapshotBuilt, ctx: &mut Context<Self>) {
        self.snapshot_built(msg.index, msg.result);
        self.schedule_round(ctx);
    }
}

impl Handler<Stop> for KeyStore {
    type Result = ();

    /// Finishes the current round (everything already in the mailbox is handled first), then
    /// stops; the caller is answered once the Raft log is closed.
    fn handle(&mut self, msg: Stop, ctx: &mut Context<Self>) {
        self.stopped = Some(StopReply(Some(msg.0)));
        self.schedule_round(ctx);
    }
}

/// Raft messages from the peer listener.
impl StreamHandler<Message> for KeyStore {
    fn handle(&mut self, msg: Message, ctx: &mut Context<Self>) {
        self.peer_message(msg);
        self.schedule_round(ctx);
    }

    /// The peer listener went away (shutdown): the store goes on until told to stop.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

fn store_error(e: DriverError) -> StoreError {
    match e {
        DriverError::ProposalDropped => StoreError::NoLeader,
        // No space: refused with the reason (507); it resumes by itself.
        e @ DriverError::DiskFull(_) => StoreError::DiskFull(e.to_string()),
        other => StoreError::Stopped(other.to_string()),
    }
}
