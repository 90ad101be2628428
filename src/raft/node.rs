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

use std::collections::HashSet;

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, Entry, EntryType, Message, Snapshot};
use raft::{Config, RawNode, ReadState, StateRole};

use super::storage::{LogStore, StoreError};
use crate::state::command::{self, DecodeError};
use crate::state::{Envelope, Outcome, StateError, StateMachine};

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
    #[error("entry {index}: {source}")]
    Decode { index: u64, source: DecodeError },
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
}

/// The deterministic state machine behind the log.
pub trait Applier {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Index of the last applied entry; Raft resumes after it on restart.
    fn applied_index(&self) -> Result<u64, Self::Error>;

    /// Applies committed entry `index`. `Ok(None)` means it was already applied (replay).
    fn apply(&mut self, index: u64, env: &Envelope) -> Result<Option<Outcome>, Self::Error>;

    /// Records that entry `index` carried no command (a new leader's empty entry, a conf
    /// change), so the applied index stays gap-free.
    fn apply_empty(&mut self, index: u64) -> Result<(), Self::Error>;

    /// Replaces the whole state with a snapshot's.
    fn restore(&mut self, snap: &Snapshot) -> Result<(), Self::Error>;
}

/// What one [`RaftDriver::handle_ready`] produced for the caller.
#[derive(Debug, Default)]
pub struct Output {
    /// To send to peers (`msg.to`), in order.
    pub messages: Vec<Message>,
    /// Outcomes of entries this driver proposed that were applied, keyed by request id.
    pub applied: Vec<(u64, Outcome)>,
    /// Answers to [`RaftDriver::read_index`]: serve the read once `applied_index >= index`.
    pub read_states: Vec<ReadState>,
    /// The applied index after this round.
    pub applied_index: u64,
}

/// One node's Raft: a `RawNode` plus the Ready loop, apply and proposal bookkeeping.
pub struct RaftDriver<S: LogStore, A: Applier> {
    node: RawNode<S>,
    applier: A,
    id: u64,
    /// Request ids proposed here and not yet applied.
    pending: HashSet<u64>,
    applied_index: u64,
    /// Set by the first fatal error: the driver then refuses everything.
    halted: Option<String>,
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
            applied_index: applied,
            halted: None,
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

    /// Advances Raft's logical clock by one tick.
    pub fn tick(&mut self) -> Result<(), DriverError> {
        self.check()?;
        self.node.tick();
        Ok(())
    }

    /// Starts an election now (bootstrap, tests, leadership hand-over).
    pub fn campaign(&mut self) -> Result<(), DriverError> {
        self.check()?;
        Ok(self.node.campaign()?)
    }

    /// Feeds a message from a peer. A malformed or unexpected message is an error for the
    /// caller to log and drop; it does not halt the driver.
    pub fn step(&mut self, msg: Message) -> Result<(), DriverError> {
        self.check()?;
        Ok(self.node.step(msg)?)
    }

    /// Proposes a command; its outcome comes back in a later [`Output::applied`] under
    /// `env.request_id` if it is committed. Request ids must be unique per node.
    pub fn propose(&mut self, env: &Envelope) -> Result<(), DriverError> {
        self.check()?;
        // The proposer's id travels in the entry's context so that only the proposing node
        // reports the outcome (request ids are chosen per node).
        match self
            .node
            .propose(self.id.to_be_bytes().to_vec(), command::encode(env))
        {
            Ok(()) => {
                self.pending.insert(env.request_id);
                Ok(())
            }
            Err(raft::Error::ProposalDropped) => Err(DriverError::ProposalDropped),
            Err(e) => Err(e.into()),
        }
    }

    /// Asks for a linearizable read point; the answer comes back in [`Output::read_states`]
    /// with the same `ctx`.
    pub fn read_index(&mut self, ctx: Vec<u8>) -> Result<(), DriverError> {
        self.check()?;
        self.node.read_index(ctx);
        Ok(())
    }

    /// Handles one Ready round. Any error is fatal: the driver halts.
    pub fn handle_ready(&mut self) -> Result<Output, DriverError> {
        self.check()?;
        let res = self.on_ready();
        if let Err(e) = &res {
            self.halted = Some(e.to_string());
        }
        res
    }

    /// The one Ready loop; the order of the steps is the contract of raft-rs.
    fn on_ready(&mut self) -> Result<Output, DriverError> {
        let mut out = Output::default();
        if !self.node.has_ready() {
            out.applied_index = self.applied_index;
            return Ok(out);
        }
        let mut ready = self.node.ready();

        // 1. Messages that need no persistence first (a leader's appends and heartbeats):
        //    the leader may send before its own write, which overlaps the fsync with the
        //    followers' (Raft thesis §10.2.1).
        out.messages.extend(ready.take_messages());

        // 2. A snapshot from the leader replaces the state machine and the log before any
        //    entry after it is appended.
        if !ready.snapshot().is_empty() {
            let snap = ready.snapshot().clone();
            let index = snap.get_metadata().index;
            self.applier
                .restore(&snap)
                .map_err(|e| apply_err(index, e))?;
            self.node.mut_store().apply_snapshot(snap.get_metadata())?;
            self.applied_index = index;
        }

        // 3. New entries and the hard state in ONE synced batch: every proposal since the
        //    last round shares this fsync (group commit).
        //    A Ready that only moves the commit index needs no fsync (raft-rs says so with
        //    `must_sync`): the commit index is not part of Raft's durable state.
        if ready.must_sync() {
            let (entries, hs) = (ready.entries(), ready.hs());
            self.node.mut_store().append(entries, hs)?;
        } else if let Some(hs) = ready.hs() {
            let commit = hs.commit;
            self.node.mut_store().set_commit(commit)?;
        }

        // 4. Messages that must follow persistence (votes, append responses).
        out.messages.extend(ready.take_persisted_messages());
        out.read_states.extend(ready.take_read_states());

        // 5. Apply what is committed.
        let committed = ready.take_committed_entries();
        self.apply_entries(committed, &mut out)?;

        // 6. Tell raft-rs this Ready is persisted and applied.
        let mut light = self.node.advance(ready);

        // 7. The LightReady: a newer commit index, messages it unlocked (a follower's
        //    commit can advance now that its log is persisted) and the entries that became
        //    committed; skipping these would leave them unapplied until the next round.
        if let Some(commit) = light.commit_index() {
            self.node.mut_store().set_commit(commit)?;
        }
        out.messages.extend(light.take_messages());
        self.apply_entries(light.take_committed_entries(), &mut out)?;

        // 8. Everything handed over is applied.
        self.node.advance_apply();
        out.applied_index = self.applied_index;
        Ok(out)
    }

    fn apply_entries(&mut self, entries: Vec<Entry>, out: &mut Output) -> Result<(), DriverError> {
        for entry in entries {
            let index = entry.index;
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => self
                    .applier
                    .apply_empty(index)
                    .map_err(|e| apply_err(index, e))?,
                EntryType::EntryNormal => {
                    // An unknown version or a corrupt command stops here, before apply.
                    let env = command::decode(&entry.data)
                        .map_err(|source| DriverError::Decode { index, source })?;
                    let outcome = self
                        .applier
                        .apply(index, &env)
                        .map_err(|e| apply_err(index, e))?;
                    let mine = entry.context.as_ref() == self.id.to_be_bytes().as_slice();
                    if let Some(outcome) = outcome {
                        if mine && self.pending.remove(&env.request_id) {
                            out.applied.push((env.request_id, outcome));
                        }
                    }
                }
                EntryType::EntryConfChange => {
                    let cc = ConfChange::parse_from_bytes(&entry.data).map_err(|e| {
                        DriverError::ConfChange {
                            index,
                            reason: e.to_string(),
                        }
                    })?;
                    self.apply_conf_change(index, &cc)?;
                }
                EntryType::EntryConfChangeV2 => {
                    let cc = ConfChangeV2::parse_from_bytes(&entry.data).map_err(|e| {
                        DriverError::ConfChange {
                            index,
                            reason: e.to_string(),
                        }
                    })?;
                    self.apply_conf_change(index, &cc)?;
                }
            }
            self.applied_index = index;
        }
        Ok(())
    }

    fn apply_conf_change(
        &mut self,
        index: u64,
        cc: &impl raft_proto::ConfChangeI,
    ) -> Result<(), DriverError> {
        let cs = self
            .node
            .apply_conf_change(cc)
            .map_err(|e| DriverError::ConfChange {
                index,
                reason: e.to_string(),
            })?;
        self.node.mut_store().set_conf_state(&cs)?;
        self.applier
            .apply_empty(index)
            .map_err(|e| apply_err(index, e))
    }
}

fn apply_err<E: std::error::Error + Send + Sync + 'static>(index: u64, e: E) -> DriverError {
    DriverError::Apply {
        index,
        source: Box::new(e),
    }
}

/// Errors of [`StateApplier`] beyond the state machine's own.
#[derive(Debug, thiserror::Error)]
pub enum StateApplierError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("installing a state machine snapshot is not implemented yet")]
    RestoreUnsupported,
}

/// The [`Applier`] over the sled [`StateMachine`].
pub struct StateApplier {
    state: StateMachine,
}

impl StateApplier {
    pub fn open(db: sled::Db) -> Result<Self, StateError> {
        Ok(Self {
            state: StateMachine::open(db)?,
        })
    }

    pub fn state(&self) -> &StateMachine {
        &self.state
    }
}

impl Applier for StateApplier {
    type Error = StateApplierError;

    fn applied_index(&self) -> Result<u64, StateApplierError> {
        Ok(self.state.applied_index()?)
    }

    fn apply(&mut self, index: u64, env: &Envelope) -> Result<Option<Outcome>, StateApplierError> {
        Ok(self.state.apply(index, env)?)
    }

    fn apply_empty(&mut self, index: u64) -> Result<(), StateApplierError> {
        Ok(self.state.apply_empty(index)?)
    }

    fn restore(&mut self, _snap: &Snapshot) -> Result<(), StateApplierError> {
        Err(StateApplierError::RestoreUnsupported)
    }
}
