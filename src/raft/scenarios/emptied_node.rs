//! A node whose data folder was emptied and that comes back under its old id (issue 15 item
//! 6): it halts with the reason and the remedy at the leader's first heartbeat, instead of
//! raft-rs's `to_commit … is out of range` assertion stopping the process; the others go on.
//! Before that heartbeat it grants no vote to a candidate with a log (it may have voted in
//! that term before it lost its data).

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

#[test]
fn an_emptied_node_grants_no_vote_before_the_first_heartbeat() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    net.driver(1).propose_env(&envelope(1)).unwrap();
    net.settle();
    net.crash(3);
    let empty = RaftDriver::new(3, MemLogStore::with_voters(&[1, 2, 3]), Recorder::default())
        .expect("new driver");
    net.restart(empty);
    // The leader is cut off before its heartbeat reaches node 3; node 2 campaigns. Node 3
    // must not give it the second vote of a quorum.
    net.isolate(1);
    net.driver(2).campaign().expect("campaign");
    net.settle();
    assert!(!net.driver(2).is_leader(), "an empty node voted");
    assert!(net.driver(3).halted().is_none());
    // Node 1 comes back: its heartbeat halts node 3, and 1 and 2 go on without it.
    // (Pre-vote kept every term as it was: node 1 still leads.)
    net.heal();
    assert!(net.driver(1).is_leader());
    net.tick_heartbeat();
    assert!(net.driver(3).halted().is_some());
    net.driver(1).propose_env(&envelope(2)).unwrap();
    net.settle();
    assert_eq!(net.applied_on(2), vec![1, 2]);
}

#[test]
fn a_new_cluster_of_empty_logs_still_elects() {
    let mut net = Net::new(mem_drivers(3));
    net.driver(2).campaign().expect("campaign");
    net.settle();
    assert!(net.driver(2).is_leader());
}
