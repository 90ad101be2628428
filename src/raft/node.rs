//! [`RaftDriver`]: one node's Raft, pure. It owns a `raft::RawNode` over a [`LogStore`] and an
//! [`Applier`], and the one function that handles a Ready ([`RaftDriver::handle_ready`]), in
//! the order ARCHITECTURE §5 fixes (after raft-rs `examples/five_mem_node`).
//!
//! The caller owns time and the network: it calls [`RaftDriver::tick`] on its timer,
//! [`RaftDriver::step`] for every peer message, and sends the `messages` each
//! [`Output`] returns. No threads, no clock, no sockets here, so every scenario is a
//! deterministic test (`testnet`).
//!
//! Group commit: proposals only enter the unstable log; everything proposed between two
//! `handle_ready` calls is persisted by that call's single synced batch.
//!
//! Apply is deterministic (toyDB): a committed entry the applier cannot decode or apply halts
//! the driver with an error; it never skips an entry, so a replica stops rather than diverges.
//!
//! Entries are opaque here (toyDB's state machine sees bytes too): the driver logs what the
//! caller proposes and hands the committed bytes to the [`Applier`], which decodes them and
//! tells the driver which request id each one answers.

use std::collections::HashSet;

use raft::eraftpb::{ConfChangeV2, ConfState, Message, MessageType, Snapshot, SnapshotMetadata};
use raft::{Config, ProgressState, RawNode, ReadState, Ready, SnapshotStatus, StateRole};
use serde::{Deserialize, Serialize};

mod apply;
mod recover;
mod reforward;

use super::storage::{LogStore, StoreError};

/// Election timeout and heartbeat interval in ticks (the caller picks the tick length).
pub const ELECTION_TICKS: usize = 10;
pub const HEARTBEAT_TICKS: usize = 3;
/// Upper bound of one append message, and of in-flight appends per follower.
const MAX_SIZE_PER_MSG: u64 = 1024 * 1024;
const MAX_INFLIGHT_MSGS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("no leader to take the proposal; retry later")]
    ProposalDropped,
    #[error("entry {index}: malformed conf change: {reason}")]
    ConfChange { index: u64, reason: String },
    #[error("applying entry {index}: {source}")]
    Apply {
        index: u64,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the state machine has applied {applied}, beyond the log's last index {last}")]
    StateAheadOfLog { applied: u64, last: u64 },
    #[error("stopped after an earlier fatal error: {0}")]
    Halted(String),
    /// No space for new data: the Raft log write failed for lack of space, or a disk is below
    /// its free-space reserve. Writes resume by themselves when space returns.
    #[error("no space for new data ({0}); writes resume when space returns")]
    DiskFull(String),
}

/// One applied command entry, as the [`Applier`] read it: the request id its proposer chose
/// and the outcome (`None`: it had been applied before, a replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied<O> {
    pub request_id: u64,
    pub outcome: Option<O>,
}

/// The deterministic state machine behind the log. Command entries reach it as the bytes
/// their proposer gave [`RaftDriver::propose`].
pub trait Applier {
    type Error: std::error::Error + Send + Sync + 'static;
    /// What applying a command yields, handed back to its proposer.
    type Outcome: std::fmt::Debug;

    /// Index of the last applied entry; Raft resumes after it on restart.
    fn applied_index(&self) -> Result<u64, Self::Error>;

    /// Applies committed entry `index`. An entry it cannot decode is an error (the driver
    /// halts rather than skip it).
    fn apply(&mut self, index: u64, data: &[u8]) -> Result<Applied<Self::Outcome>, Self::Error>;

    /// Applies consecutive committed entries (`None`: an entry without a command) and returns
    /// one result per item (`None` for empty entries). Implementations may apply them in one
    /// storage transaction; the default applies them one by one.
    #[allow(clippy::type_complexity)]
    fn apply_batch(
        &mut self,
        items: &[(u64, Option<&[u8]>)],
    ) -> Result<Vec<Option<Applied<Self::Outcome>>>, Self::Error> {
        let mut outs = Vec::with_capacity(items.len());
        for (index, data) in items {
            outs.push(match data {
                Some(data) => Some(self.apply(*index, data)?),
                None => {
                    self.apply_empty(*index)?;
                    None
                }
            });
        }
        Ok(outs)
    }

    /// What the proposer of a membership change is answered with once it is applied.
    fn membership_applied(&self) -> Self::Outcome;

    /// Records that entry `index` carried no command (a new leader's empty entry, a conf
    /// change), so the applied index stays gap-free.
    fn apply_empty(&mut self, index: u64) -> Result<(), Self::Error>;

    /// Applies a membership change at `index`: the peer addresses it adds and the nodes it
    /// removes (deterministic: they come from the entry).
    fn apply_members(
        &mut self,
        index: u64,
        added: &[(u64, String)],
        removed: &[u64],
    ) -> Result<(), Self::Error> {
        let _ = (added, removed);
        self.apply_empty(index)
    }

    /// Serialises the state at `meta.index` (== the applied index) and returns the small
    /// descriptor that travels in the Raft snapshot message.
    fn build_snapshot(&mut self, meta: &SnapshotMetadata) -> Result<Vec<u8>, Self::Error>;

    /// The same work as [`Applier::build_snapshot`] as a job the caller runs off the driver's
    /// thread, if this applier can build one; `None` (the default): the driver builds in
    /// place. Until the job's result is handed to [`RaftDriver::finish_snapshot`] the driver
    /// applies nothing (committed entries wait), so the state the job reads stays at
    /// `meta.index`, while ticks, heartbeats, votes and log appends go on.
    fn snapshot_job(&self, meta: &SnapshotMetadata) -> Option<SnapshotJob> {
        let _ = meta;
        None
    }

    /// Replaces the whole state with a snapshot's.
    fn restore(&mut self, snap: &Snapshot) -> Result<(), Self::Error>;
}

/// What a conf change entry carries in its context: who proposed it (so only that node
/// answers the request) and the peer addresses of the nodes it adds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfChangeContext {
    pub proposer: u64,
    pub request_id: u64,
    pub addresses: Vec<(u64, String)>,
}

impl ConfChangeContext {
    fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default()
    }

    /// Bounded decode of peer-supplied bytes; an empty context decodes to the default.
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let cfg = bincode::config::standard().with_limit::<65536>();
        bincode::serde::decode_from_slice(bytes, cfg)
            .map(|(v, _)| v)
            .map_err(|e| e.to_string())
    }
}

/// A snapshot build to run off the driver's thread ([`Applier::snapshot_job`]): returns the
/// descriptor for the Raft snapshot message, or why it failed.
pub type SnapshotJob = Box<dyn FnOnce() -> Result<Vec<u8>, String> + Send>;

/// What [`RaftDriver::start_snapshot`] did.
pub enum SnapshotStart {
    /// Nothing to build (the newest snapshot is current, or nothing is applied yet).
    Current,
    /// Built in place: the snapshot's index.
    Built(u64),
    /// Run `job`, then hand its result to [`RaftDriver::finish_snapshot`] with `index`;
    /// applying waits until then.
    Job { index: u64, job: SnapshotJob },
}

/// What one [`RaftDriver::handle_ready`] produced for the caller (`O`: the applier's
/// [`Applier::Outcome`]).
#[derive(Debug)]
pub struct Output<O> {
    /// To send to peers (`msg.to`), in order.
    pub messages: Vec<Message>,
    /// Outcomes of entries this driver proposed that were applied, keyed by request id.
    pub applied: Vec<(u64, O)>,
    /// Answers to [`RaftDriver::read_index`]: serve the read once `applied_index >= index`.
    pub read_states: Vec<ReadState>,
    /// The applied index after this round.
    pub applied_index: u64,
    /// The membership (or a snapshot) changed this round: peers may have to be added or
    /// removed from the transport.
    pub membership_changed: bool,
}

impl<O> Default for Output<O> {
    fn default() -> Self {
        Self {
            messages: Vec::new(),
            applied: Vec::new(),
            read_states: Vec::new(),
            applied_index: 0,
            membership_changed: false,
        }
    }
}

/// How far one peer's log matches the leader's (leader only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerProgress {
    pub matched: u64,
    pub in_snapshot: bool,
}

/// One node's Raft: a `RawNode` plus the Ready loop, apply and proposal bookkeeping.
pub struct RaftDriver<S: LogStore, A: Applier> {
    node: RawNode<S>,
    applier: A,
    id: u64,
    /// Request ids proposed here and not yet applied; the caller drops the ones it gave up on
    /// ([`RaftDriver::forget`]), so a proposal lost with a dead leader does not stay forever.
    pending: HashSet<u64>,
    /// Commands among them that may have been lost with a leader ([`reforward`]).
    unconfirmed: reforward::Unconfirmed,
    applied_index: u64,
    /// The term of the entry at `applied_index` (0 until one is applied in this process).
    applied_term: u64,
    /// Set by the first fatal error: the driver then refuses everything.
    halted: Option<String>,
    /// A node was added while this node leads: compact behind a snapshot that includes it.
    snapshot_for_new_member: bool,
    /// A Ready whose entries could not be persisted because the disk is full, with why.
    /// Every later round retries exactly that write before anything else. raft-rs must not
    /// be stepped while a Ready is outstanding, so meanwhile the node is paused: ticks are
    /// skipped, peer messages dropped (as a network would), proposals and reads refused.
    /// To the cluster it is a paused process; it resumes by itself when the write succeeds.
    stalled: Option<(Ready, String)>,
    /// Set while a disk of this node is below its free-space reserve, with why (see
    /// [`RaftDriver::set_low_space`]).
    low_space: Option<String>,
    /// A snapshot being built off this thread ([`RaftDriver::start_snapshot`]): its metadata.
    building: Option<SnapshotMetadata>,
    /// Committed entries handed over while `building`, applied once it is done, in order.
    deferred: Vec<raft::eraftpb::Entry>,
}

impl<S: LogStore, A: Applier> RaftDriver<S, A> {
    /// Builds node `id` over its persisted log and state machine. The voters of a new cluster
    /// come from the store's conf state.
    pub fn new(id: u64, mut store: S, applier: A) -> Result<Self, DriverError> {
        let applied = applier.applied_index().map_err(|e| apply_err(0, e))?;
        let hs = store.initial_state()?.hard_state;
        if applied > hs.commit {
            // The state machine only applies committed entries, but the commit index is
            // persisted lazily (LogStore::set_commit): what was applied was committed.
            let last = store.last_index()?;
            if applied > last {
                return Err(DriverError::StateAheadOfLog { applied, last });
            }
            store.set_commit(applied)?;
        }
        recover::conf_state_at_applied(id, &mut store, applied)?;
        let config = Config {
            id,
            election_tick: ELECTION_TICKS,
            heartbeat_tick: HEARTBEAT_TICKS,
            applied,
            max_size_per_msg: MAX_SIZE_PER_MSG,
            max_inflight_msgs: MAX_INFLIGHT_MSGS,
            // A leader cut off from a quorum steps down; a rejoining node does not disrupt
            // the cluster with a higher term.
            check_quorum: true,
            pre_vote: true,
            ..Config::default()
        };
        config.validate()?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut node = RawNode::new(&config, store, &logger)?;
        // Merge appends to the same follower within a round into one message, so a group
        // committed on the leader is also one append (and one fsync) on each follower.
        node.set_batch_append(true);
        Ok(Self {
            node,
            applier,
            id,
            pending: HashSet::new(),
            unconfirmed: Default::default(),
            applied_index: applied,
            applied_term: 0,
            halted: None,
            snapshot_for_new_member: false,
            stalled: None,
            low_space: None,
            building: None,
            deferred: Vec::new(),
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    /// The leader this node knows of (0 for none).
    pub fn leader_id(&self) -> u64 {
        self.node.raft.leader_id
    }

    pub fn term(&self) -> u64 {
        self.node.raft.term
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Proposals made here that are neither applied nor forgotten.
    pub fn pending_proposals(&self) -> usize {
        self.pending.len()
    }

    /// Forgets proposal `request_id` (its caller timed out): if its entry is applied later,
    /// no outcome is reported for it.
    pub fn forget(&mut self, request_id: u64) {
        self.pending.remove(&request_id);
        self.unconfirmed.remove(&request_id);
    }

    /// Why the Raft log cannot be written now (its disk is full), if it cannot. The driver
    /// retries on every [`RaftDriver::handle_ready`] and clears this once the write succeeds.
    pub fn disk_full(&self) -> Option<&str> {
        self.stalled.as_ref().map(|(_, why)| why.as_str())
    }

    /// Says whether a disk of this node is below its free-space reserve (`Some(why)`) or not.
    /// While it is, the node takes no new data but keeps serving what it has: proposals
    /// (local or forwarded) are refused, appends that carry entries and snapshots from the
    /// leader are dropped (as a lossy network would; the leader retries later), and ticks are
    /// skipped, so a follower never campaigns and a leader stops heartbeating and gives way.
    /// Votes, heartbeats and read requests are still stepped, so reads at an index this
    /// node has applied are answered.
    pub fn set_low_space(&mut self, why: Option<String>) {
        self.low_space = why;
    }

    /// Why this node refuses new data for lack of space, if it does.
    pub fn low_space(&self) -> Option<&str> {
        self.low_space.as_deref()
    }

    /// Why the driver stopped, if it did.
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    pub fn role(&self) -> StateRole {
        self.node.raft.state
    }

    pub fn commit_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }

    /// The configuration as of the applied index.
    pub fn conf_state(&self) -> ConfState {
        self.node.raft.prs().conf().to_conf_state()
    }

    /// A membership change is proposed and not yet applied.
    pub fn has_pending_conf(&self) -> bool {
        self.node.raft.has_pending_conf()
    }

    /// The replication progress of peer `id`, as the leader sees it.
    pub fn progress(&self, id: u64) -> Option<PeerProgress> {
        if !self.is_leader() {
            return None;
        }
        self.node.raft.prs().get(id).map(|p| PeerProgress {
            matched: p.matched,
            in_snapshot: p.state == ProgressState::Snapshot,
        })
    }

    /// Tells Raft that messages to `id` were lost, so it probes instead of streaming.
    pub fn report_unreachable(&mut self, id: u64) {
        if self.stalled.is_none() {
            self.node.report_unreachable(id);
        }
    }

    /// Tells Raft that the snapshot sent to `id` was not installed; it sends a new one.
    pub fn report_snapshot_failed(&mut self, id: u64) {
        if self.stalled.is_none() {
            self.node.report_snapshot(id, SnapshotStatus::Failure);
        }
    }

    pub fn store(&self) -> &S {
        self.node.store()
    }

    pub fn applier(&self) -> &A {
        &self.applier
    }

    fn check(&self) -> Result<(), DriverError> {
        match &self.halted {
            Some(why) => Err(DriverError::Halted(why.clone())),
            None => Ok(()),
        }
    }

    fn check_disk(&self) -> Result<(), DriverError> {
        match self.disk_full().or(self.low_space()) {
            Some(why) => Err(DriverError::DiskFull(why.to_owned())),
            None => Ok(()),
        }
    }

    /// Advances Raft's logical clock by one tick.
    /// Paused while the disk is full (see [`RaftDriver::disk_full`]).
    pub fn tick(&mut self) -> Result<(), DriverError> {
        self.check()?;
        if self.stalled.is_some() || self.low_space.is_some() {
            return Ok(());
        }
        self.node.tick();
        Ok(())
    }

    /// Starts an election now (bootstrap, tests, leadership hand-over).
    pub fn campaign(&mut self) -> Result<(), DriverError> {
        self.check()?;
        self.check_disk()?;
        Ok(self.node.campaign()?)
    }

    /// Feeds a message from a peer. A malformed or unexpected message is an error for the
    /// caller to log and drop; it does not halt the driver.
    pub fn step(&mut self, msg: Message) -> Result<(), DriverError> {
        self.check()?;
        if let Some(why) = self.disk_full() {
            return Err(DriverError::DiskFull(why.to_owned()));
        }
        if self.misrouted_proposal(&msg) || self.refused_for_space(&msg) {
            return Ok(());
        }
        self.check_not_emptied(&msg)?;
        if self.refuses_vote_while_empty(&msg) {
            return Ok(());
        }
        Ok(self.node.step(msg)?)
    }

    /// A node whose log is empty cannot tell a first start from a restart after its data
    /// folder was emptied, and in the second case it has forgotten the vote it may already
    /// have cast in the current term: voting again could give that term two leaders. So while
    /// its log is empty it grants no vote (nor pre-vote) to a candidate whose log is not
    /// (`msg.index`, the candidate's last index, above 0): the cluster has a history then,
    /// and a node that truly is new catches up from a leader before it votes (an emptied one
    /// halts at the first heartbeat, [`RaftDriver::check_not_emptied`]). The first election
    /// of a new cluster, between empty logs, is unaffected. The price: a cluster that needs
    /// such a node's vote for a quorum waits for another member to return.
    fn refuses_vote_while_empty(&self, msg: &Message) -> bool {
        let refused = matches!(
            msg.get_msg_type(),
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
        ) && msg.index > 0
            && self.node.raft.raft_log.last_index() == 0;
        if refused {
            tracing::warn!(
                node = self.id(),
                candidate = msg.from,
                term = msg.term,
                "vote not granted: this node's Raft log is empty and the candidate's is not"
            );
        }
        refused
    }

    /// A current leader's heartbeat names a commit index up to what it knows this node holds.
    /// One beyond this node's last log index means the node lost entries it had acknowledged:
    /// its data folder was emptied or replaced and it came back under its old id. raft-rs
    /// would stop the process with an assertion (`to_commit … is out of range`); the driver
    /// halts instead, with the reason and the remedy, before that node can do anything else.
    fn check_not_emptied(&mut self, msg: &Message) -> Result<(), DriverError> {
        let last = self.node.raft.raft_log.last_index();
        if msg.get_msg_type() != MessageType::MsgHeartbeat
            || msg.term < self.node.raft.term
            || msg.commit <= last
        {
            return Ok(());
        }
        let why = format!(
            "node {} lost acknowledged Raft entries: its log ends at {last}, but leader {} \
             says {} of it is committed (its data folder was emptied or replaced). It must not \
             rejoin under this id: remove it with `cluster leave {}` and add a node with a new \
             id with `cluster join` (README)",
            self.id(),
            msg.from,
            msg.commit,
            self.id()
        );
        tracing::error!("{why}");
        self.halted = Some(why.clone());
        Err(DriverError::Halted(why))
    }

    /// A message that would bring new data while space is low (see
    /// [`RaftDriver::set_low_space`]): dropped.
    fn refused_for_space(&self, msg: &Message) -> bool {
        self.low_space.is_some()
            && match msg.get_msg_type() {
                MessageType::MsgPropose | MessageType::MsgSnapshot => true,
                MessageType::MsgAppend => !msg.entries.is_empty(),
                _ => false,
            }
    }

    /// Proposes a command, `data` as the applier will read it (it must carry `request_id`:
    /// the applier reports it back, see [`Applied`]); its outcome comes back in a later
    /// [`Output::applied`] under `request_id` if it is committed. Request ids must be unique
    /// per node.
    pub fn propose(&mut self, request_id: u64, data: Vec<u8>) -> Result<(), DriverError> {
        self.check()?;
        self.check_disk()?;
        // The proposer's id travels in the entry's context so that only the proposing node
        // reports the outcome (request ids are chosen per node).
        let tracked = (!self.is_leader()).then(|| data.clone());
        match self.node.propose(self.id.to_be_bytes().to_vec(), data) {
            Ok(()) => {
                self.pending.insert(request_id);
                if let Some(data) = tracked {
                    self.track_proposal(request_id, data);
                }
                Ok(())
            }
            Err(raft::Error::ProposalDropped) => Err(DriverError::ProposalDropped),
            Err(e) => Err(e.into()),
        }
    }

    /// Proposes a membership change; it is answered like a command under `request_id`.
    /// `addresses` are the peer addresses of nodes it adds (replicated with the change).
    pub fn propose_conf_change(
        &mut self,
        request_id: u64,
        cc: ConfChangeV2,
        addresses: Vec<(u64, String)>,
    ) -> Result<(), DriverError> {
        self.check()?;
        self.check_disk()?;
        let ctx = ConfChangeContext {
            proposer: self.id,
            request_id,
            addresses,
        };
        match self.node.propose_conf_change(ctx.encode(), cc) {
            Ok(()) => {
                self.pending.insert(request_id);
                Ok(())
            }
            Err(raft::Error::ProposalDropped) => Err(DriverError::ProposalDropped),
            Err(e) => Err(e.into()),
        }
    }

    /// Serialises the state at the applied index as the snapshot raft-rs serves to lagging
    /// peers, then compacts the log up to `keep_entries` before it (the snapshot covers it).
    /// Returns the snapshot's index, or `None` when the newest snapshot is already current.
    pub fn build_snapshot(&mut self, keep_entries: u64) -> Result<Option<u64>, DriverError> {
        let Some(meta) = self.snapshot_due(keep_entries)? else {
            return Ok(None);
        };
        let index = meta.index;
        let data = self
            .applier
            .build_snapshot(&meta)
            .map_err(|e| apply_err(index, e))?;
        self.install_built(meta, data, keep_entries)?;
        Ok(Some(index))
    }

    /// [`RaftDriver::build_snapshot`], with the serialisation as a job for another thread
    /// when the applier offers one ([`Applier::snapshot_job`]); meanwhile committed entries
    /// wait unapplied. At most one build at a time (`Current` while one runs).
    pub fn start_snapshot(&mut self, keep_entries: u64) -> Result<SnapshotStart, DriverError> {
        if self.building.is_some() {
            return Ok(SnapshotStart::Current);
        }
        let Some(meta) = self.snapshot_due(keep_entries)? else {
            return Ok(SnapshotStart::Current);
        };
        let index = meta.index;
        match self.applier.snapshot_job(&meta) {
            Some(job) => {
                self.building = Some(meta);
                Ok(SnapshotStart::Job { index, job })
            }
            None => {
                let data = self
                    .applier
                    .build_snapshot(&meta)
                    .map_err(|e| apply_err(index, e))?;
                self.install_built(meta, data, keep_entries)?;
                Ok(SnapshotStart::Built(index))
            }
        }
    }

    /// Takes the result of the job [`RaftDriver::start_snapshot`] handed out for `index`:
    /// offers the snapshot to raft-rs and compacts the log (`Ok(true)`), or drops a failed
    /// one (`Ok(false)`); either way the entries that waited are applied in the next round.
    /// A result for a build that is no longer current (a leader's snapshot was installed
    /// meanwhile) is dropped.
    pub fn finish_snapshot(
        &mut self,
        index: u64,
        result: Option<Vec<u8>>,
        keep_entries: u64,
    ) -> Result<bool, DriverError> {
        let Some(meta) = self.building.take_if(|m| m.index == index) else {
            return Ok(false);
        };
        self.check()?;
        match result {
            Some(data) => {
                self.install_built(meta, data, keep_entries)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Whether a snapshot build runs off this thread (applying waits for it).
    pub fn snapshot_building(&self) -> bool {
        self.building.is_some()
    }

    /// The metadata of a snapshot at the applied index, if one is due (after compacting
    /// behind the current one when it already covers the applied index).
    fn snapshot_due(&mut self, keep_entries: u64) -> Result<Option<SnapshotMetadata>, DriverError> {
        self.check()?;
        self.check_disk()?;
        let index = self.applied_index;
        if index == 0 {
            return Ok(None);
        }
        let current = self.node.store().snapshot_metadata().index;
        if index <= current {
            // Already covered: only compact further if asked to keep less.
            let compact_to = current.saturating_sub(keep_entries);
            if compact_to > 0 {
                self.node.mut_store().compact(compact_to)?;
            }
            return Ok(None);
        }
        let term = self.node.raft.raft_log.term(index)?;
        let mut meta = SnapshotMetadata {
            index,
            term,
            ..Default::default()
        };
        meta.set_conf_state(self.conf_state());
        Ok(Some(meta))
    }

    /// Offers a built snapshot to raft-rs and compacts the log behind it.
    fn install_built(
        &mut self,
        meta: SnapshotMetadata,
        data: Vec<u8>,
        keep_entries: u64,
    ) -> Result<(), DriverError> {
        let index = meta.index;
        let mut snap = Snapshot::default();
        snap.set_metadata(meta);
        snap.data = data.into();
        let store = self.node.mut_store();
        store.offer_snapshot(snap)?;
        let compact_to = index.saturating_sub(keep_entries);
        if compact_to > 0 {
            store.compact(compact_to)?;
        }
        Ok(())
    }

    /// Offers a snapshot that already exists on disk (after a restart) to raft-rs.
    pub fn offer_snapshot(&mut self, snap: Snapshot) -> Result<(), DriverError> {
        self.node.mut_store().offer_snapshot(snap)?;
        Ok(())
    }

    /// Asks for a linearizable read point; the answer comes back in [`Output::read_states`]
    /// with the same `ctx`.
    pub fn read_index(&mut self, ctx: Vec<u8>) -> Result<(), DriverError> {
        self.check()?;
        // Low on space (not stalled) still answers reads: they add nothing to the log.
        if let Some(why) = self.disk_full() {
            return Err(DriverError::DiskFull(why.to_owned()));
        }
        self.node.read_index(ctx);
        Ok(())
    }

    /// Handles one Ready round. Any error is fatal: the driver halts. A disk too full to
    /// persist the round is not an error: the round waits ([`RaftDriver::disk_full`]) and is
    /// retried by the next call.
    ///
    /// The messages in [`Output::messages`] go out after this round's persistence; see
    /// [`RaftDriver::handle_ready_sending`] to send a leader's appends before it.
    pub fn handle_ready(&mut self) -> Result<Output<A::Outcome>, DriverError> {
        let mut early = Vec::new();
        let mut out = self.handle_ready_sending(&mut |m| early.extend(m))?;
        early.append(&mut out.messages);
        out.messages = early;
        Ok(out)
    }

    /// [`RaftDriver::handle_ready`], handing the messages that need no persistence (a
    /// leader's appends and heartbeats, step 1 of the Ready) to `send_now` before this round's
    /// entries are written and synced: the leader's fsync then overlaps the followers' (Raft
    /// thesis §10.2.1); and those that had to wait for it (votes, append responses) as soon as
    /// it is done, before this round applies anything. [`Output::messages`] holds the rest, to
    /// send after it returns.
    pub fn handle_ready_sending(
        &mut self,
        send_now: &mut dyn FnMut(Vec<Message>),
    ) -> Result<Output<A::Outcome>, DriverError> {
        self.check()?;
        let mut res = self.on_ready(send_now);
        match &mut res {
            Err(e) => self.halted = Some(e.to_string()),
            Ok(out) => {
                self.stamp_proposals(&mut out.messages);
                if self.stalled.is_none() {
                    self.reforward();
                }
            }
        }
        res
    }

    /// The one Ready loop; the order of the steps is the contract of raft-rs.
    fn on_ready(
        &mut self,
        send_now: &mut dyn FnMut(Vec<Message>),
    ) -> Result<Output<A::Outcome>, DriverError> {
        let mut out = Output {
            applied_index: self.applied_index,
            ..Output::default()
        };
        // Entries that waited for a snapshot build, before anything newer.
        if self.building.is_none() && !self.deferred.is_empty() {
            let waited = std::mem::take(&mut self.deferred);
            self.apply_entries(waited, &mut out)?;
            self.node.advance_apply_to(self.applied_index);
            out.applied_index = self.applied_index;
        }
        let ready = match self.stalled.take() {
            // Steps 1 and 2 of this Ready ran in the round that stalled.
            Some((ready, _)) => ready,
            None if !self.node.has_ready() => return Ok(out),
            None => {
                let (ready, mut early) = self.fresh_ready(&mut out)?;
                if !early.is_empty() {
                    self.stamp_proposals(&mut early);
                    send_now(early);
                }
                ready
            }
        };

        // 3. New entries and the hard state in ONE synced batch: every proposal since the
        //    last round shares this fsync (group commit).
        //    A Ready that only moves the commit index needs no fsync (raft-rs says so with
        //    `must_sync`): the commit index is not part of Raft's durable state.
        let persisted = if ready.must_sync() {
            let (entries, hs) = (ready.entries(), ready.hs());
            self.node.mut_store().append(entries, hs)
        } else if let Some(hs) = ready.hs() {
            let commit = hs.commit;
            self.node.mut_store().set_commit(commit)
        } else {
            Ok(())
        };
        match persisted {
            Ok(()) => {}
            Err(e) if e.is_disk_full() => {
                self.stalled = Some((ready, format!("the Raft log write failed: {e}")));
                return Ok(out);
            }
            Err(e) => return Err(e.into()),
        }
        self.after_persist(ready, out, send_now)
    }

    /// Hands messages that may leave now to `send_now`, proposals stamped.
    fn send_unlocked(&mut self, mut msgs: Vec<Message>, send_now: &mut dyn FnMut(Vec<Message>)) {
        if !msgs.is_empty() {
            self.stamp_proposals(&mut msgs);
            send_now(msgs);
        }
    }

    /// Steps 1 and 2 of a new Ready: what may go out before persistence (returned, to send
    /// now), and a snapshot.
    fn fresh_ready(
        &mut self,
        out: &mut Output<A::Outcome>,
    ) -> Result<(Ready, Vec<Message>), DriverError> {
        let mut ready = self.node.ready();

        // 1. Messages that need no persistence first (a leader's appends and heartbeats):
        //    the leader may send before its own write, which overlaps the fsync with the
        //    followers' (Raft thesis §10.2.1).
        let early = ready.take_messages();

        // 2. A snapshot from the leader replaces the state machine and the log before any
        //    entry after it is appended.
        if !ready.snapshot().is_empty() {
            let snap = ready.snapshot().clone();
            let (index, term) = (snap.get_metadata().index, snap.get_metadata().term);
            // A build of our own in progress is superseded (its result is dropped), and the
            // entries that waited for it are inside the leader's snapshot.
            self.building = None;
            self.deferred.retain(|e| e.index > index);
            self.applier
                .restore(&snap)
                .map_err(|e| apply_err(index, e))?;
            self.node.mut_store().apply_snapshot(snap.get_metadata())?;
            // Its file is here now: serve it to others if this node leads later.
            self.node.mut_store().offer_snapshot(snap)?;
            self.applied_index = index;
            self.applied_term = term;
            out.applied_index = index;
            out.membership_changed = true;
        }
        Ok((ready, early))
    }

    /// Steps 4 to 9, once the Ready is persisted. The messages this persistence unlocked go
    /// to `send_now` before anything is applied: a follower's append response (what the
    /// leader waits for to commit) does not wait for the entries it applies in the same round.
    fn after_persist(
        &mut self,
        mut ready: Ready,
        mut out: Output<A::Outcome>,
        send_now: &mut dyn FnMut(Vec<Message>),
    ) -> Result<Output<A::Outcome>, DriverError> {
        // 4. Messages that must follow persistence (votes, append responses).
        self.send_unlocked(ready.take_persisted_messages(), send_now);
        out.read_states.extend(ready.take_read_states());

        // 5. Apply what is committed.
        let committed = ready.take_committed_entries();
        self.apply_entries(committed, &mut out)?;

        // 6. Tell raft-rs this Ready is persisted (how far it is applied: step 8).
        let mut light = self.node.advance_append(ready);

        // 7. The LightReady: a newer commit index, messages it unlocked (a follower's
        //    commit can advance now that its log is persisted) and the entries that became
        //    committed; skipping these would leave them unapplied until the next round.
        if let Some(commit) = light.commit_index() {
            // Not durable state (see step 3): a disk too full to record it costs nothing.
            match self.node.mut_store().set_commit(commit) {
                Err(e) if !e.is_disk_full() => return Err(e.into()),
                _ => {}
            }
        }
        self.send_unlocked(light.take_messages(), send_now);
        self.apply_entries(light.take_committed_entries(), &mut out)?;

        // 8. Everything handed over is applied, unless it waits for a snapshot build.
        self.node.advance_apply_to(self.applied_index);
        out.applied_index = self.applied_index;

        // 9. A new member must start from a snapshot: the initial configuration is in no
        //    entry, and raft-rs only installs a snapshot whose configuration names the
        //    receiver. So, right after the change that added it is applied (before the leader
        //    can probe it with bare entries), compact the whole log behind a snapshot taken
        //    now, which includes the new member.
        if std::mem::take(&mut self.snapshot_for_new_member) && self.is_leader() {
            self.build_snapshot(0)?;
        }
        Ok(out)
    }
}

fn apply_err<E: std::error::Error + Send + Sync + 'static>(index: u64, e: E) -> DriverError {
    DriverError::Apply {
        index,
        source: Box::new(e),
    }
}
