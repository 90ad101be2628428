//! Proposals a follower forwarded to a leader that then died (issue 10, items 11 and 12): they
//! are not kept forever once their caller gave up.

use raft::Storage;

use crate::raft::testnet::{envelope, mem_drivers, Net, ProposeEnvelope};

#[test]
fn a_proposal_lost_with_its_leader_is_forgotten_when_its_caller_gives_up() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    net.isolate(1);
    net.driver(2).propose_env(&envelope(7)).unwrap();
    net.settle();
    assert_eq!(net.driver(2).pending_proposals(), 1);
    // The key store's waiters time the request out and hand its id back.
    net.driver(2).forget(7);
    assert_eq!(net.driver(2).pending_proposals(), 0, "no id left behind");
}

/// Ticks enough for an election timeout.
const ELECTION_ROUNDS: usize = 100;

fn times_applied(
    net: &Net<crate::raft::MemLogStore, crate::raft::testnet::Recorder>,
    id: u64,
    rid: u64,
) -> usize {
    net.applier(id)
        .requests()
        .iter()
        .filter(|&&r| r == rid)
        .count()
}

#[test]
fn a_write_forwarded_to_a_dead_leader_is_forwarded_again_to_the_next_one() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    net.tick_heartbeat();
    // The leader dies with the forwarded proposal in flight.
    net.isolate(1);
    net.driver(2).propose_env(&envelope(7)).unwrap();
    net.settle();
    net.crash(1);
    net.heal();
    let leader = net
        .tick_until_leader(&[2, 3], ELECTION_ROUNDS)
        .expect("a new leader");
    // Within a few rounds of the new leader, not after the caller's timeout.
    for _ in 0..3 {
        if net.answers.get(&2).is_some_and(|a| !a.is_empty()) {
            break;
        }
        net.tick();
    }
    assert_eq!(
        net.answers[&2],
        vec![(7, crate::state::Outcome::Applied)],
        "answered through leader {leader}"
    );
    for id in [2, 3] {
        assert_eq!(times_applied(&net, id, 7), 1, "node {id}");
    }
    assert_eq!(net.driver(2).pending_proposals(), 0);
}

#[test]
fn a_write_the_next_leader_already_holds_is_not_proposed_twice() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    net.tick_heartbeat();
    // The leader appends and replicates the entry, but no acknowledgement comes back: it is
    // on every log and committed nowhere when the leader dies.
    net.driver(2).propose_env(&envelope(8)).unwrap();
    let out = net.driver(2).handle_ready().unwrap();
    let forwarded: Vec<_> = out.messages.into_iter().filter(|m| m.to == 1).collect();
    assert!(!forwarded.is_empty(), "the proposal goes to the leader");
    for m in forwarded {
        net.driver(1).step(m).unwrap();
    }
    net.cut_one_way(2, 1);
    net.cut_one_way(3, 1);
    net.settle();
    for id in [1, 2, 3] {
        assert!(
            net.driver(id).store().last_index().unwrap() > net.driver(id).commit_index(),
            "node {id} holds the entry, uncommitted"
        );
    }
    assert!(net.answers.get(&2).is_none_or(|a| a.is_empty()));
    net.crash(1);
    net.heal();
    net.tick_until_leader(&[2, 3], ELECTION_ROUNDS)
        .expect("a new leader");
    for _ in 0..ELECTION_ROUNDS {
        net.tick();
    }
    assert_eq!(net.answers[&2], vec![(8, crate::state::Outcome::Applied)]);
    for id in [2, 3] {
        assert_eq!(times_applied(&net, id, 8), 1, "node {id}: applied once");
    }
    net.assert_applied_logs_agree();
}

#[test]
fn a_stamped_proposal_reaching_a_follower_is_dropped_not_forwarded() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    let mut m = raft::eraftpb::Message::default();
    m.set_msg_type(raft::eraftpb::MessageType::MsgPropose);
    m.from = 3;
    m.to = 2;
    m.term = net.driver(2).term();
    m.set_entries(vec![raft::eraftpb::Entry::default()].into());
    net.driver(2).step(m).unwrap();
    net.settle();
    assert!(net.errors.is_empty());
}
