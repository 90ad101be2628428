//! Item 8 of issue 10: a crash right after a membership step. The conf state is synced in the
//! Raft log while the state machine's applied index of the same entry may be lost (sled is
//! not synced), or the other way round. Every node must restart, replay and agree on the
//! configuration after such a crash at every step of a join and of a leave.

use std::collections::BTreeMap;

use raft::eraftpb::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
};

use crate::raft::node::RaftDriver;
use crate::raft::storage::{LogStore, MemLogStore};
use crate::raft::testnet::{envelope, Net, ProposeEnvelope, Recorder};

fn single(t: ConfChangeType, id: u64) -> ConfChangeV2 {
    let mut s = ConfChangeSingle::default();
    s.set_change_type(t);
    s.node_id = id;
    let mut cc = ConfChangeV2::default();
    cc.set_transition(if t == ConfChangeType::AddLearnerNode {
        ConfChangeTransition::Auto
    } else {
        ConfChangeTransition::Explicit
    });
    cc.set_changes(vec![s].into());
    cc
}

/// One membership step: what it is, the change, the addresses it adds.
type Step = (&'static str, ConfChangeV2, Vec<(u64, String)>);

/// The steps of a join of node 4 and a leave of node 3, as `sealkm cluster join|leave` takes
/// them.
fn steps() -> Vec<Step> {
    vec![
        (
            "add learner 4",
            single(ConfChangeType::AddLearnerNode, 4),
            vec![(4, "n4:1".into())],
        ),
        (
            "promote 4 (enter joint)",
            single(ConfChangeType::AddNode, 4),
            vec![],
        ),
        (
            "leave joint after the join",
            ConfChangeV2::default(),
            vec![],
        ),
        (
            "remove 3 (enter joint)",
            single(ConfChangeType::RemoveNode, 3),
            vec![],
        ),
        (
            "leave joint after the leave",
            ConfChangeV2::default(),
            vec![],
        ),
    ]
}

fn sorted(cs: &ConfState) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
    let s = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v
    };
    (s(&cs.voters), s(&cs.learners), s(&cs.voters_outgoing))
}

/// How the crash left node 2's two stores.
#[derive(Clone, Copy, Debug)]
enum Crash {
    /// The log's conf state includes the step; the state machine lost the step's entry.
    StateBehind,
    /// The state machine applied the step; the log still has the conf state before it.
    LogBehind,
}

fn run(crash: Crash) {
    let stores: BTreeMap<u64, MemLogStore> = (1..=4)
        .map(|id| {
            let s = if id == 4 {
                MemLogStore::new()
            } else {
                MemLogStore::with_voters(&[1, 2, 3])
            };
            (id, s)
        })
        .collect();
    let drivers = (1..=4)
        .map(|id| RaftDriver::new(id, stores[&id].clone(), Recorder::default()).unwrap())
        .collect();
    let mut net = Net::new(drivers);
    net.elect(1);
    let mut rid = 1000;
    for (n, (what, cc, addrs)) in steps().into_iter().enumerate() {
        net.driver(1).propose_env(&envelope(n as u64 + 1)).unwrap();
        net.settle();
        let before = net.driver(2).conf_state();
        let before_index = net.driver(2).applied_index();
        rid += 1;
        net.driver(1).propose_conf_change(rid, cc, addrs).unwrap();
        net.settle();
        net.tick_heartbeat();
        let index = net.driver(1).applied_index();
        assert_eq!(
            net.driver(2).applied_index(),
            index,
            "{what}: node 2 applied it"
        );
        let want = sorted(&net.driver(1).conf_state());

        let mut applied = net.applier(2).applied.clone();
        net.crash(2);
        let mut store = stores[&2].clone();
        match crash {
            Crash::StateBehind => applied.retain(|a| a.0 < index),
            Crash::LogBehind => {
                store.set_conf_state(before_index, &before).unwrap();
            }
        }
        let restarted = RaftDriver::new(
            2,
            store,
            Recorder {
                applied,
                jobs: false,
            },
        )
        .unwrap_or_else(|e| panic!("{what} ({crash:?}): node 2 does not restart: {e}"));
        net.restart(restarted);
        net.tick_heartbeat();
        assert!(
            net.errors.is_empty(),
            "{what} ({crash:?}): {:?}",
            net.errors
        );
        assert_eq!(
            sorted(&net.driver(2).conf_state()),
            want,
            "{what} ({crash:?}): node 2's configuration after the restart"
        );
        assert_eq!(net.driver(2).applied_index(), net.driver(1).applied_index());
        net.assert_applied_logs_agree();
    }
    assert_eq!(sorted(&net.driver(2).conf_state()).0, vec![1, 2, 4]);
}

#[test]
fn a_crash_that_loses_the_applied_index_of_a_membership_step_replays_it() {
    run(Crash::StateBehind);
}

#[test]
fn a_crash_that_loses_the_conf_state_of_a_membership_step_recovers_it() {
    run(Crash::LogBehind);
}
