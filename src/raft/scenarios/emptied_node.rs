//! A node whose data folder was emptied and that comes back under its old id (issue 15 item
//! 6): it halts with the reason and the remedy at the leader's first heartbeat, instead of
//! raft-rs's `to_commit … is out of range` assertion stopping the process; the others go on.

use crate::raft::node::RaftDriver;
use crate::raft::storage::MemLogStore;
use crate::raft::testnet::{envelope, mem_drivers, Net, ProposeEnvelope, Recorder};
use crate::state::Outcome;

#[test]
fn an_emptied_node_under_its_old_id_halts_with_a_reason_and_the_others_go_on() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    for rid in 1..=3 {
        net.driver(1).propose_env(&envelope(rid)).unwrap();
    }
    net.settle();
    assert_eq!(net.applied_on(3), vec![1, 2, 3]);
    // Node 3 loses its data and is started again, empty, under id 3.
    net.crash(3);
    let empty = RaftDriver::new(3, MemLogStore::with_voters(&[1, 2, 3]), Recorder::default())
        .expect("new driver");
    net.restart(empty);
    net.tick_heartbeat();
    let why = net.driver(3).halted().expect("node 3 halts").to_owned();
    assert!(why.contains("lost acknowledged Raft entries"), "{why}");
    assert!(why.contains("cluster leave 3"), "{why}");
    // It applied nothing; nodes 1 and 2 keep committing.
    assert!(net.applier(3).requests().is_empty());
    net.driver(1).propose_env(&envelope(4)).unwrap();
    net.settle();
    assert!(net.answers[&1].contains(&(4, Outcome::Applied)));
    assert_eq!(net.applied_on(4), vec![1, 2]);
}

#[test]
fn a_node_restarted_with_its_data_does_not_halt() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    net.driver(1).propose_env(&envelope(1)).unwrap();
    net.settle();
    // A follower behind the leader's commit (it missed appends) is not an emptied node: the
    // leader's heartbeat names at most what it knows the follower holds.
    net.isolate(3);
    for rid in 2..=4 {
        net.driver(1).propose_env(&envelope(rid)).unwrap();
    }
    net.settle();
    net.heal();
    net.tick_heartbeat();
    assert!(net.driver(3).halted().is_none());
    assert_eq!(net.applied_on(4), vec![1, 2, 3]);
}
