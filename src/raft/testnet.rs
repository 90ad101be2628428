//! A deterministic in-memory network of [`RaftDriver`]s for tests (after raft-rs's test
//! harness): messages are queued and delivered in order, links can be cut one way or both,
//! nodes can crash (their driver is dropped) and restart; nothing sleeps or reads a clock.
//! Scenario tests live in `scenarios`.

use std::collections::{BTreeMap, HashSet, VecDeque};

use raft::eraftpb::{Message, Snapshot, SnapshotMetadata};
use raft::ReadState;

use super::node::{Applied, Applier, DriverError, Output, RaftDriver};
use super::storage::{LogStore, MemLogStore};
use crate::kms::period::PeriodParams;
use crate::state::command::{self, DecodeError, COMMAND_VERSION};
use crate::state::{Command, Envelope, Outcome};

/// Rounds of delivery after which a network that is still busy is a livelock (a bug).
const MAX_SETTLE_ROUNDS: usize = 10_000;

/// Test double for the state machine: records what it applied, in order.
#[derive(Debug, Default)]
pub struct Recorder {
    /// (index, request id) per applied entry; `None` for an empty entry.
    pub applied: Vec<(u64, Option<u64>)>,
    /// Offer snapshot builds as jobs ([`Applier::snapshot_job`]) instead of in place.
    pub jobs: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("entry {index} is not the next one after {applied}")]
    OutOfOrder { index: u64, applied: u64 },
    #[error("the recorder cannot restore snapshots")]
    Restore,
    #[error("entry {index}: {source}")]
    Decode { index: u64, source: DecodeError },
}

impl Recorder {
    fn last(&self) -> u64 {
        self.applied.last().map_or(0, |a| a.0)
    }

    fn next(&mut self, index: u64, rid: Option<u64>) -> Result<bool, RecorderError> {
        let applied = self.last();
        if index <= applied {
            return Ok(false);
        }
        if index != applied + 1 {
            return Err(RecorderError::OutOfOrder { index, applied });
        }
        self.applied.push((index, rid));
        Ok(true)
    }

    /// The whole record (16 bytes per entry), as of `meta.index`.
    fn encode(&self, meta: &SnapshotMetadata) -> Result<Vec<u8>, RecorderError> {
        if meta.index != self.last() {
            return Err(RecorderError::Restore);
        }
        let mut out = Vec::with_capacity(self.applied.len() * 16);
        for (index, rid) in &self.applied {
            out.extend_from_slice(&index.to_be_bytes());
            out.extend_from_slice(&rid.unwrap_or(u64::MAX).to_be_bytes());
        }
        Ok(out)
    }

    /// Request ids in apply order.
    pub fn requests(&self) -> Vec<u64> {
        self.applied.iter().filter_map(|a| a.1).collect()
    }
}

impl Applier for Recorder {
    type Error = RecorderError;
    type Outcome = Outcome;
    fn applied_index(&self) -> Result<u64, RecorderError> {
        Ok(self.last())
    }
    /// Decodes the entry as the real applier does (so version checks halt here too).
    fn apply(&mut self, index: u64, data: &[u8]) -> Result<Applied<Outcome>, RecorderError> {
        let env =
            command::decode(data).map_err(|source| RecorderError::Decode { index, source })?;
        Ok(Applied {
            request_id: env.request_id,
            outcome: self
                .next(index, Some(env.request_id))?
                .then_some(Outcome::Applied),
        })
    }
    fn membership_applied(&self) -> Outcome {
        Outcome::Applied
    }
    fn apply_empty(&mut self, index: u64) -> Result<(), RecorderError> {
        self.next(index, None).map(|_| ())
    }
    /// The whole record travels in the snapshot (16 bytes per entry; the real state machine
    /// writes a file instead).
    fn build_snapshot(&mut self, meta: &SnapshotMetadata) -> Result<Vec<u8>, RecorderError> {
        self.encode(meta)
    }
    /// A job carrying the record as it is now, if `jobs`.
    fn snapshot_job(&self, meta: &SnapshotMetadata) -> Option<super::node::SnapshotJob> {
        if !self.jobs {
            return None;
        }
        let data = self.encode(meta).map_err(|e| e.to_string());
        Some(Box::new(move || data))
    }
    fn restore(&mut self, snap: &Snapshot) -> Result<(), RecorderError> {
        let data = &snap.data;
        if !data.len().is_multiple_of(16) {
            return Err(RecorderError::Restore);
        }
        self.applied = data
            .chunks_exact(16)
            .map(|c| {
                let word = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
                let rid = word(&c[8..]);
                (word(&c[..8]), (rid != u64::MAX).then_some(rid))
            })
            .collect();
        if self.last() != snap.get_metadata().index {
            return Err(RecorderError::Restore);
        }
        Ok(())
    }
}

/// Proposing an [`Envelope`] as the key store does: encoded, under its request id.
pub trait ProposeEnvelope {
    fn propose_env(&mut self, env: &Envelope) -> Result<(), DriverError>;
}

impl<S: LogStore, A: Applier> ProposeEnvelope for RaftDriver<S, A> {
    fn propose_env(&mut self, env: &Envelope) -> Result<(), DriverError> {
        self.propose(env.request_id, command::try_encode(env).expect("encodable"))
    }
}

/// A command for tests, told apart by its request id.
pub fn envelope(request_id: u64) -> Envelope {
    Envelope {
        version: COMMAND_VERSION,
        request_id,
        command: Command::ReinstateIdentity {
            kms_uri: "kms.example.org".into(),
            identity: format!("sip:user{request_id}@example.org"),
        },
    }
}

/// A command that changes the real state machine, told apart by its request id.
pub fn create_community(rid: u64) -> Envelope {
    Envelope {
        version: COMMAND_VERSION,
        request_id: rid,
        command: Command::CreateCommunity {
            kms_uri: format!("kms{rid}.example.org"),
            period: PeriodParams {
                period_s: 2_592_000,
                offset_s: 0,
            },
        },
    }
}

/// `n` in-memory drivers with ids 1..=n, all voters.
pub fn mem_drivers(n: u64) -> Vec<RaftDriver<MemLogStore, Recorder>> {
    let voters: Vec<u64> = (1..=n).collect();
    voters
        .iter()
        .map(|&id| {
            RaftDriver::new(id, MemLogStore::with_voters(&voters), Recorder::default())
                .expect("new driver")
        })
        .collect()
}

pub struct Net<S: LogStore, A: Applier> {
    /// `None` while a node is crashed.
    pub nodes: BTreeMap<u64, Option<RaftDriver<S, A>>>,
    /// Directed links (from, to) that drop every message.
    cut: HashSet<(u64, u64)>,
    inflight: VecDeque<Message>,
    /// Outcomes handed back to each proposer.
    pub answers: BTreeMap<u64, Vec<(u64, A::Outcome)>>,
    pub reads: BTreeMap<u64, Vec<ReadState>>,
    /// The fatal error each halted driver returned.
    pub errors: BTreeMap<u64, DriverError>,
    /// Leaders seen per term, to check Election Safety after every round.
    leaders: BTreeMap<u64, HashSet<u64>>,
}

impl<S: LogStore, A: Applier> Net<S, A> {
    pub fn new(drivers: Vec<RaftDriver<S, A>>) -> Self {
        Self {
            nodes: drivers.into_iter().map(|d| (d.id(), Some(d))).collect(),
            cut: HashSet::new(),
            inflight: VecDeque::new(),
            answers: BTreeMap::new(),
            reads: BTreeMap::new(),
            errors: BTreeMap::new(),
            leaders: BTreeMap::new(),
        }
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    pub fn driver(&mut self, id: u64) -> &mut RaftDriver<S, A> {
        self.nodes
            .get_mut(&id)
            .and_then(|d| d.as_mut())
            .expect("node is up")
    }

    /// Live drivers (crashed and halted ones excluded).
    fn live(&mut self) -> impl Iterator<Item = &mut RaftDriver<S, A>> {
        let errors = &self.errors;
        self.nodes
            .values_mut()
            .filter_map(|d| d.as_mut())
            .filter(move |d| !errors.contains_key(&d.id()))
    }

    pub fn cut_one_way(&mut self, from: u64, to: u64) {
        self.cut.insert((from, to));
    }

    /// Cuts every link between different groups.
    pub fn partition(&mut self, groups: &[&[u64]]) {
        for (i, a) in groups.iter().enumerate() {
            for b in groups.iter().skip(i + 1) {
                for &x in a.iter() {
                    for &y in b.iter() {
                        self.cut.insert((x, y));
                        self.cut.insert((y, x));
                    }
                }
            }
        }
    }

    pub fn isolate(&mut self, id: u64) {
        let rest: Vec<u64> = self.ids().into_iter().filter(|&x| x != id).collect();
        self.partition(&[&[id], &rest]);
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Drops the node's driver (its store stays wherever the store keeps it).
    pub fn crash(&mut self, id: u64) {
        self.nodes.insert(id, None);
    }

    pub fn restart(&mut self, driver: RaftDriver<S, A>) {
        self.nodes.insert(driver.id(), Some(driver));
    }

    /// Queues what a Ready round produced, as the cluster shell would.
    pub fn enqueue(&mut self, from: u64, out: Output<A::Outcome>) {
        self.inflight.extend(out.messages);
        self.answers.entry(from).or_default().extend(out.applied);
        self.reads.entry(from).or_default().extend(out.read_states);
    }

    /// One Ready round on every live node.
    pub fn ready_all(&mut self) {
        let mut outs = Vec::new();
        let mut failed = Vec::new();
        for d in self.live() {
            match d.handle_ready() {
                Ok(out) => outs.push((d.id(), out)),
                Err(e) => failed.push((d.id(), e)),
            }
        }
        for (id, out) in outs {
            self.enqueue(id, out);
        }
        self.errors.extend(failed);
        self.check_election_safety();
    }

    /// At most one leader per term (Raft §5.2, Election Safety).
    fn check_election_safety(&mut self) {
        let seen: Vec<(u64, u64)> = self
            .live()
            .filter(|d| d.is_leader())
            .map(|d| (d.term(), d.id()))
            .collect();
        for (term, id) in seen {
            let leaders = self.leaders.entry(term).or_default();
            leaders.insert(id);
            assert_eq!(leaders.len(), 1, "two leaders in term {term}: {leaders:?}");
        }
    }

    /// Delivers every message in flight; messages on cut links or to crashed nodes are
    /// lost. Repeats Ready rounds until nothing is left to do.
    pub fn settle(&mut self) {
        for _ in 0..MAX_SETTLE_ROUNDS {
            self.ready_all();
            if self.inflight.is_empty() {
                return;
            }
            while let Some(m) = self.inflight.pop_front() {
                if self.cut.contains(&(m.from, m.to)) || self.errors.contains_key(&m.to) {
                    continue;
                }
                if let Some(Some(d)) = self.nodes.get_mut(&m.to) {
                    // A refused message is dropped, as the transport would.
                    let _ = d.step(m);
                }
            }
        }
        panic!("network still busy after {MAX_SETTLE_ROUNDS} rounds");
    }

    /// One tick on every live node, then settle.
    pub fn tick(&mut self) {
        for d in self.live() {
            d.tick().expect("tick a live driver");
        }
        self.settle();
    }

    /// Ticks until the leader has sent a heartbeat (and everything it triggered settled).
    pub fn tick_heartbeat(&mut self) {
        for _ in 0..super::node::HEARTBEAT_TICKS {
            self.tick();
        }
    }

    /// Ticks until one of `among` is leader, at most `max` ticks.
    pub fn tick_until_leader(&mut self, among: &[u64], max: usize) -> Option<u64> {
        for _ in 0..max {
            self.tick();
            if let Some(&id) = among
                .iter()
                .find(|&&id| matches!(self.nodes.get(&id), Some(Some(d)) if d.is_leader()))
            {
                return Some(id);
            }
        }
        None
    }

    /// Elects `id` deterministically (an explicit campaign instead of a random timeout).
    pub fn elect(&mut self, id: u64) {
        self.driver(id).campaign().expect("campaign");
        self.settle();
        assert!(self.driver(id).is_leader(), "node {id} did not win");
    }

    pub fn applier(&self, id: u64) -> &A {
        match self.nodes.get(&id) {
            Some(Some(d)) => d.applier(),
            _ => panic!("node {id} is down"),
        }
    }
}

impl<S: LogStore> Net<S, Recorder> {
    /// State Machine Safety (Raft §5.4.3): every two nodes applied the same entry at every
    /// index both applied.
    pub fn assert_applied_logs_agree(&self) {
        let logs: Vec<(u64, &Recorder)> = self
            .nodes
            .iter()
            .filter_map(|(id, d)| d.as_ref().map(|d| (*id, d.applier())))
            .collect();
        for (a, la) in &logs {
            for (b, lb) in &logs {
                let n = la.applied.len().min(lb.applied.len());
                assert_eq!(
                    la.applied[..n],
                    lb.applied[..n],
                    "nodes {a} and {b} applied different entries"
                );
            }
        }
    }

    /// Which nodes applied request `rid`.
    pub fn applied_on(&self, rid: u64) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, d)| {
                d.as_ref()
                    .is_some_and(|d| d.applier().requests().contains(&rid))
            })
            .map(|(id, _)| *id)
            .collect()
    }
}
