//! A snapshot built off the driver's thread (issue 15, item 6: heartbeats keep flowing while a
//! large state is serialised): meanwhile the node applies nothing, so the state the build
//! reads stays at its index, yet it keeps leading, replicating and committing; once the build
//! is handed back, the entries that waited are applied in order and answered.

use raft::Storage;

use crate::raft::node::{RaftDriver, SnapshotStart};
use crate::raft::testnet::{envelope, Net, ProposeEnvelope, Recorder};
use crate::raft::MemLogStore;
use crate::state::Outcome;

fn drivers_with_jobs(n: u64) -> Vec<RaftDriver<MemLogStore, Recorder>> {
    let voters: Vec<u64> = (1..=n).collect();
    voters
        .iter()
        .map(|&id| {
            let recorder = Recorder {
                jobs: true,
                ..Recorder::default()
            };
            RaftDriver::new(id, MemLogStore::with_voters(&voters), recorder).expect("new driver")
        })
        .collect()
}

/// Ticks enough for several election timeouts (raft-rs draws one below 2 × ELECTION_TICKS).
const MANY_ELECTION_TIMEOUTS: usize = 5 * 2 * crate::raft::node::ELECTION_TICKS;

#[test]
fn a_leader_building_a_snapshot_keeps_leading_and_applies_what_waited_in_order() {
    let mut net = Net::new(drivers_with_jobs(3));
    net.elect(1);
    let term = net.driver(1).term();
    for rid in 1..=3 {
        net.driver(1).propose_env(&envelope(rid)).unwrap();
    }
    net.settle();
    let (index, job) = match net.driver(1).start_snapshot(0).unwrap() {
        SnapshotStart::Job { index, job } => (index, job),
        _ => panic!("the recorder offers a job"),
    };
    assert!(net.driver(1).snapshot_building());
    let before = net.applier(1).applied.clone();
    assert_eq!(before.last().map(|a| a.0), Some(index));
    // A second build is not started while one runs.
    assert!(matches!(
        net.driver(1).start_snapshot(0).unwrap(),
        SnapshotStart::Current
    ));

    // While it builds: new proposals commit and the followers apply them; the leader applies
    // nothing and answers nothing, and however long it takes, nobody starts an election.
    for rid in 4..=6 {
        net.driver(1).propose_env(&envelope(rid)).unwrap();
    }
    net.settle();
    for _ in 0..MANY_ELECTION_TIMEOUTS {
        net.tick();
    }
    assert_eq!(net.applied_on(6), vec![2, 3]);
    assert_eq!(
        net.applier(1).applied,
        before,
        "the state stays at the snapshot's index"
    );
    assert!(!net.answers[&1].iter().any(|(rid, _)| *rid > 3));
    for id in net.ids() {
        let d = net.driver(id);
        assert_eq!((d.leader_id(), d.term()), (1, term), "node {id}");
    }

    // The build is handed back: the snapshot is offered and the log compacted behind it, and
    // the entries that waited are applied in order and answered.
    assert!(net
        .driver(1)
        .finish_snapshot(index, Some(job().unwrap()), 0)
        .unwrap());
    assert!(!net.driver(1).snapshot_building());
    assert_eq!(
        net.driver(1)
            .store()
            .snapshot(0, 2)
            .unwrap()
            .get_metadata()
            .index,
        index
    );
    net.tick();
    assert_eq!(net.applied_on(6), vec![1, 2, 3]);
    let answered: Vec<u64> = net.answers[&1].iter().map(|(rid, _)| *rid).collect();
    assert_eq!(answered, (1..=6).collect::<Vec<_>>());
    assert!(net.answers[&1].iter().all(|(_, o)| *o == Outcome::Applied));
    net.assert_applied_logs_agree();
    // A result for a build that is no longer current changes nothing.
    assert!(!net
        .driver(1)
        .finish_snapshot(index, Some(Vec::new()), 0)
        .unwrap());
}

#[test]
fn a_failed_build_is_dropped_and_what_waited_is_applied() {
    let mut net = Net::new(drivers_with_jobs(3));
    net.elect(1);
    net.driver(1).propose_env(&envelope(1)).unwrap();
    net.settle();
    let SnapshotStart::Job { index, .. } = net.driver(1).start_snapshot(0).unwrap() else {
        panic!("the recorder offers a job");
    };
    let first = net.driver(1).store().first_index().unwrap();
    net.driver(1).propose_env(&envelope(2)).unwrap();
    net.settle();
    assert_eq!(net.applied_on(2), vec![2, 3]);
    assert!(!net.driver(1).finish_snapshot(index, None, 0).unwrap());
    net.tick();
    assert_eq!(net.applied_on(2), vec![1, 2, 3]);
    assert_eq!(
        net.driver(1).store().first_index().unwrap(),
        first,
        "nothing compacted"
    );
}
