//! A node whose Raft log disk fills (issue 10, item 11): it must not stop for good. Its log
//! store is wrapped in [`FullDisk`], which fails every write with ENOSPC while the test says
//! the disk is full. The node refuses proposals, the rest of the cluster goes on (writes and
//! reads), and once space returns the node persists what waited and catches up by itself.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState};

use crate::raft::node::{DriverError, RaftDriver};
use crate::raft::storage::{LogStore, MemLogStore, StoreError};
use crate::raft::testnet::{envelope, Net, ProposeEnvelope, Recorder};
use crate::state::Outcome;

/// A [`MemLogStore`] whose writes fail with ENOSPC while `full` is set; `appended` counts
/// the entries it took.
#[derive(Clone)]
pub struct FullDisk {
    inner: MemLogStore,
    full: Arc<AtomicBool>,
    appended: Arc<AtomicU64>,
}

impl FullDisk {
    fn check(&self) -> Result<(), StoreError> {
        if self.full.load(Ordering::SeqCst) {
            let e = io::Error::from(io::ErrorKind::StorageFull);
            return Err(StoreError::Engine(raft_engine::Error::Io(e)));
        }
        Ok(())
    }
}

impl raft::Storage for FullDisk {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.inner.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.inner.entries(low, high, max_size, context)
    }
    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.inner.term(idx)
    }
    fn first_index(&self) -> raft::Result<u64> {
        self.inner.first_index()
    }
    fn last_index(&self) -> raft::Result<u64> {
        self.inner.last_index()
    }
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        self.inner.snapshot(request_index, to)
    }
}

impl LogStore for FullDisk {
    fn append(&mut self, entries: &[Entry], hs: Option<&HardState>) -> Result<(), StoreError> {
        self.check()?;
        self.inner.append(entries, hs)?;
        self.appended
            .fetch_add(entries.len() as u64, Ordering::SeqCst);
        Ok(())
    }
    fn set_commit(&mut self, commit: u64) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_commit(commit)
    }
    fn set_conf_state(&mut self, index: u64, cs: &ConfState) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_conf_state(index, cs)
    }
    fn conf_state_index(&self) -> Option<u64> {
        self.inner.conf_state_index()
    }
    fn initial_conf_state(&self) -> ConfState {
        self.inner.initial_conf_state()
    }
    fn apply_snapshot(&mut self, meta: &SnapshotMetadata) -> Result<(), StoreError> {
        self.check()?;
        self.inner.apply_snapshot(meta)
    }
    fn compact(&mut self, index: u64) -> Result<(), StoreError> {
        self.check()?;
        self.inner.compact(index)
    }
    fn snapshot_metadata(&self) -> SnapshotMetadata {
        self.inner.snapshot_metadata()
    }
    fn offer_snapshot(&mut self, snap: Snapshot) -> Result<(), StoreError> {
        self.check()?;
        self.inner.offer_snapshot(snap)
    }
    fn synced_writes(&self) -> u64 {
        self.inner.synced_writes()
    }
}

fn cluster() -> (Net<FullDisk, Recorder>, Vec<Arc<AtomicBool>>) {
    let (net, flags, _) = counted_cluster();
    (net, flags)
}

/// [`cluster`] with each node's count of appended entries.
#[allow(clippy::type_complexity)]
fn counted_cluster() -> (
    Net<FullDisk, Recorder>,
    Vec<Arc<AtomicBool>>,
    Vec<Arc<AtomicU64>>,
) {
    let flags: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let counts: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let drivers = (1..=3u64)
        .map(|id| {
            let store = FullDisk {
                inner: MemLogStore::with_voters(&[1, 2, 3]),
                full: flags[id as usize - 1].clone(),
                appended: counts[id as usize - 1].clone(),
            };
            RaftDriver::new(id, store, Recorder::default()).unwrap()
        })
        .collect();
    (Net::new(drivers), flags, counts)
}

#[test]
fn a_leaders_appends_are_handed_out_before_its_own_write() {
    let (mut net, _, counts) = counted_cluster();
    net.elect(1);
    net.driver(1).propose_env(&envelope(1)).unwrap();
    let before = counts[0].load(Ordering::SeqCst);
    let leader_log = counts[0].clone();
    let mut early = Vec::new();
    let out = net
        .driver(1)
        .handle_ready_sending(&mut |msgs| {
            // The leader has not written the entry yet when its appends leave.
            assert_eq!(leader_log.load(Ordering::SeqCst), before);
            early.extend(msgs);
        })
        .unwrap();
    assert!(
        [2, 3]
            .iter()
            .all(|to| early.iter().any(|m| m.to == *to && !m.entries.is_empty())),
        "both followers' appends went out early: {early:?}"
    );
    assert_eq!(counts[0].load(Ordering::SeqCst), before + 1, "then written");
    assert!(out.messages.iter().all(|m| m.entries.is_empty()));
    // The round completes as usual.
    let mut all = out;
    all.messages.splice(0..0, early);
    net.enqueue(1, all);
    net.settle();
    net.tick_heartbeat();
    assert_eq!(net.applied_on(1), vec![1, 2, 3]);
}

/// Ticks enough for an election timeout.
const ELECTION_ROUNDS: usize = 100;

#[test]
fn a_follower_with_a_full_disk_refuses_writes_and_catches_up_when_space_returns() {
    let (mut net, flags) = cluster();
    net.elect(1);
    net.driver(1).propose_env(&envelope(1)).unwrap();
    net.settle();
    flags[1].store(true, Ordering::SeqCst);
    net.driver(1).propose_env(&envelope(2)).unwrap();
    net.settle();
    net.tick_heartbeat();
    assert!(net.errors.is_empty(), "nobody stopped: {:?}", net.errors);
    assert!(
        net.driver(2).disk_full().is_some(),
        "node 2 knows its disk is full"
    );
    assert!(matches!(
        net.driver(2).propose_env(&envelope(3)),
        Err(DriverError::DiskFull(_))
    ));
    // The others commit, apply and answer; a read on the leader is served.
    assert_eq!(net.applied_on(2), vec![1, 3]);
    assert!(net.answers[&1].contains(&(2, Outcome::Applied)));
    net.driver(1).read_index(b"read".to_vec()).unwrap();
    net.settle();
    assert!(net.reads[&1].iter().any(|r| r.request_ctx == b"read"));

    // Space returns: the waiting write goes through on the next round, with no restart.
    flags[1].store(false, Ordering::SeqCst);
    net.tick_heartbeat();
    assert!(net.driver(2).disk_full().is_none());
    net.driver(2).propose_env(&envelope(4)).unwrap();
    net.settle();
    net.tick_heartbeat();
    assert!(net.errors.is_empty(), "{:?}", net.errors);
    assert_eq!(net.applied_on(2), vec![1, 2, 3]);
    assert_eq!(net.applied_on(4), vec![1, 2, 3]);
    assert!(net.answers[&2].contains(&(4, Outcome::Applied)));
    net.assert_applied_logs_agree();
}

#[test]
fn a_leader_with_a_full_disk_gives_way_and_rejoins_when_space_returns() {
    let (mut net, flags) = cluster();
    net.elect(1);
    net.driver(1).propose_env(&envelope(1)).unwrap();
    net.settle();
    flags[0].store(true, Ordering::SeqCst);
    assert!(
        net.driver(1).propose_env(&envelope(2)).is_ok(),
        "not known yet"
    );
    net.settle();
    assert!(net.driver(1).disk_full().is_some());
    assert!(matches!(
        net.driver(1).propose_env(&envelope(3)),
        Err(DriverError::DiskFull(_))
    ));
    let leader = net
        .tick_until_leader(&[2, 3], ELECTION_ROUNDS)
        .expect("the others elect a new leader");
    assert!(net.errors.is_empty(), "{:?}", net.errors);
    net.driver(leader).propose_env(&envelope(5)).unwrap();
    net.settle();
    assert!(net.answers[&leader].contains(&(5, Outcome::Applied)));

    flags[0].store(false, Ordering::SeqCst);
    for _ in 0..ELECTION_ROUNDS {
        net.tick();
    }
    assert!(net.errors.is_empty(), "{:?}", net.errors);
    assert!(net.driver(1).disk_full().is_none());
    let target = net.driver(leader).applied_index();
    assert_eq!(net.driver(1).applied_index(), target, "node 1 caught up");
    assert!(net.applier(1).requests().contains(&5));
    net.assert_applied_logs_agree();
}

/// The reason a test gives for low space.
fn low() -> Option<String> {
    Some("the state directory is below its reserve".into())
}

#[test]
fn a_follower_below_its_space_reserve_takes_no_new_data_but_still_answers_reads() {
    let (mut net, _flags) = cluster();
    net.elect(1);
    net.driver(1).propose_env(&envelope(1)).unwrap();
    net.settle();
    net.driver(2).set_low_space(low());
    // Its own writes are refused with the reason, and nothing is logged.
    let refused = net.driver(2).propose_env(&envelope(2));
    assert!(
        matches!(&refused, Err(DriverError::DiskFull(why)) if why.contains("reserve")),
        "{refused:?}"
    );
    // A read at an index it has applied is answered (forwarded to the leader and back).
    net.driver(2).read_index(b"applied".to_vec()).unwrap();
    net.settle();
    assert!(net.reads[&2].iter().any(|r| r.request_ctx == b"applied"));
    // The others go on without it; it does not take the new entry.
    net.driver(1).propose_env(&envelope(3)).unwrap();
    net.settle();
    net.tick_heartbeat();
    assert!(net.errors.is_empty(), "nobody stopped: {:?}", net.errors);
    assert!(net.answers[&1].contains(&(3, Outcome::Applied)));
    assert_eq!(net.applied_on(3), vec![1, 3]);
    assert!(!net.applier(2).requests().contains(&3));
    assert_eq!(
        net.driver(1).leader_id(),
        1,
        "a follower with low space does not campaign"
    );

    // Space returns: it catches up and takes writes again, with no restart.
    net.driver(2).set_low_space(None);
    net.tick_heartbeat();
    net.tick_heartbeat();
    net.driver(2).propose_env(&envelope(4)).unwrap();
    net.settle();
    net.tick_heartbeat();
    assert!(net.errors.is_empty(), "{:?}", net.errors);
    assert_eq!(net.applied_on(3), vec![1, 2, 3]);
    assert!(net.answers[&2].contains(&(4, Outcome::Applied)));
    net.assert_applied_logs_agree();
}

#[test]
fn a_leader_below_its_space_reserve_gives_way() {
    let (mut net, _flags) = cluster();
    net.elect(1);
    net.driver(1).propose_env(&envelope(1)).unwrap();
    net.settle();
    net.driver(1).set_low_space(low());
    assert!(matches!(
        net.driver(1).propose_env(&envelope(2)),
        Err(DriverError::DiskFull(_))
    ));
    // It stops heartbeating: the others elect a leader among themselves and take writes.
    let leader = net
        .tick_until_leader(&[2, 3], ELECTION_ROUNDS)
        .expect("the others elect a new leader");
    net.driver(leader).propose_env(&envelope(5)).unwrap();
    net.settle();
    assert!(net.answers[&leader].contains(&(5, Outcome::Applied)));
    assert!(!net.applier(1).requests().contains(&5));

    net.driver(1).set_low_space(None);
    for _ in 0..ELECTION_ROUNDS {
        net.tick();
    }
    assert!(net.errors.is_empty(), "{:?}", net.errors);
    assert!(net.applier(1).requests().contains(&5), "node 1 caught up");
    net.assert_applied_logs_agree();
}
