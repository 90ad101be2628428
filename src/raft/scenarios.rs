//! Deterministic Raft scenarios over [`super::testnet`], named after the Raft paper section
//! or the property they check.

mod disk_full;
mod emptied_node;
mod membership_crash;
mod proposals;
mod snapshot_build;

use std::path::Path;

use super::node::{DriverError, RaftDriver};
use super::storage::{EngineLogStore, LogStore, MemLogStore};
use super::testnet::{
    create_community, envelope, mem_drivers, Net, ProposeEnvelope, Recorder, RecorderError,
};
use crate::state::command::{DecodeError, COMMAND_VERSION};
use crate::state::{Envelope, Outcome};
use crate::store::applier::StateApplier;
use raft::Storage;

/// Ticks enough for any election timeout to expire (raft-rs randomises it in
/// [ELECTION_TICKS, 2 * ELECTION_TICKS)).
const ELECTION_ROUNDS: usize = 100;

#[test]
fn election_5_2_a_single_leader_is_elected_and_known_to_all() {
    let mut net = Net::new(mem_drivers(3));
    // Election Safety is checked by the network after every round.
    let leader = net
        .tick_until_leader(&[1, 2, 3], ELECTION_ROUNDS)
        .expect("a leader within the election rounds");
    let term = net.driver(leader).term();
    for id in net.ids() {
        let d = net.driver(id);
        assert_eq!((d.leader_id(), d.term()), (leader, term), "node {id}");
        assert_eq!(d.is_leader(), id == leader);
    }
}

#[test]
fn replication_5_3_proposal_commits_on_a_quorum_and_applies_on_all() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    net.partition(&[&[1, 2], &[3]]);
    net.driver(1).propose_env(&envelope(10)).unwrap();
    net.settle();
    // Two of three is a quorum: committed, applied on the majority, answered.
    assert_eq!(net.answers[&1], vec![(10, Outcome::Applied)]);
    assert_eq!(net.applied_on(10), vec![1, 2]);
    net.heal();
    net.tick_heartbeat();
    assert_eq!(net.applied_on(10), vec![1, 2, 3]);
    net.assert_applied_logs_agree();
    // Only the proposer answers.
    assert!(net.answers[&2].is_empty() && net.answers[&3].is_empty());
}

#[test]
fn group_commit_proposals_between_two_ready_rounds_share_one_sync() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    let before = net.driver(1).store().synced_writes();
    for rid in 1..=5 {
        net.driver(1).propose_env(&envelope(rid)).unwrap();
    }
    let out = net.driver(1).handle_ready().unwrap();
    assert_eq!(net.driver(1).store().synced_writes(), before + 1);
    let to_2: Vec<usize> = out
        .messages
        .iter()
        .filter(|m| m.to == 2 && !m.entries.is_empty())
        .map(|m| m.entries.len())
        .collect();
    assert_eq!(to_2, vec![5], "one append carries the whole batch");
    let follower_before = net.driver(2).store().synced_writes();
    net.enqueue(1, out);
    net.settle();
    assert_eq!(net.applier(3).requests(), vec![1, 2, 3, 4, 5]);
    assert_eq!(
        net.driver(2).store().synced_writes(),
        follower_before + 1,
        "one sync on the follower too; the commit index rides along unsynced"
    );
}

#[test]
fn leader_completeness_5_4_lost_append_is_applied_nowhere() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    // The leader appends locally, then loses every link before its append goes out.
    net.isolate(1);
    net.driver(1).propose_env(&envelope(7)).unwrap();
    net.settle();
    assert!(net.applied_on(7).is_empty());
    let new = net.tick_until_leader(&[2, 3], ELECTION_ROUNDS).unwrap();
    net.driver(new).propose_env(&envelope(8)).unwrap();
    net.settle();
    assert_eq!(net.applied_on(8), vec![2, 3]);
    net.heal();
    for _ in 0..ELECTION_ROUNDS {
        net.tick();
    }
    assert!(
        net.applied_on(7).is_empty(),
        "the old leader's tail is overwritten"
    );
    assert_eq!(net.applied_on(8), vec![1, 2, 3]);
    net.assert_applied_logs_agree();
    assert!(!net.answers[&1].iter().any(|(rid, _)| *rid == 7));
}

#[test]
fn leader_completeness_5_4_2_uncommitted_entry_on_the_next_leader_is_applied_everywhere() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    // The append reaches node 2 only and its acknowledgement is lost: not yet committed.
    net.cut_one_way(1, 3);
    net.cut_one_way(2, 1);
    net.driver(1).propose_env(&envelope(7)).unwrap();
    net.settle();
    assert!(net.applied_on(7).is_empty());
    net.heal();
    net.isolate(1);
    // Only node 2 can win (node 3's log is behind, §5.4.1); its first entry of the new term
    // commits the older one (§5.4.2).
    let new = net.tick_until_leader(&[2, 3], ELECTION_ROUNDS).unwrap();
    assert_eq!(new, 2);
    net.settle();
    assert_eq!(net.applied_on(7), vec![2, 3]);
    net.heal();
    for _ in 0..ELECTION_ROUNDS {
        net.tick();
    }
    assert_eq!(net.applied_on(7), vec![1, 2, 3]);
    net.assert_applied_logs_agree();
    // The old leader still answers its client once the entry is applied.
    assert!(net.answers[&1].contains(&(7, Outcome::Applied)));
}

#[test]
fn safety_5_4_partitioned_old_leader_cannot_commit() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    net.isolate(1);
    net.driver(1).propose_env(&envelope(100)).unwrap();
    let mut new = None;
    for _ in 0..ELECTION_ROUNDS {
        net.tick();
        assert!(
            net.applied_on(100).is_empty(),
            "a minority leader committed"
        );
        new = new.or_else(|| [2, 3].into_iter().find(|&id| net.driver(id).is_leader()));
    }
    let new = new.expect("the majority elects a leader");
    assert!(
        !net.driver(1).is_leader(),
        "check-quorum makes it step down"
    );
    net.driver(new).propose_env(&envelope(200)).unwrap();
    net.settle();
    net.heal();
    for _ in 0..ELECTION_ROUNDS {
        net.tick();
    }
    assert!(net.applied_on(100).is_empty());
    assert_eq!(net.applied_on(200), vec![1, 2, 3]);
    net.assert_applied_logs_agree();
}

#[test]
fn replication_5_3_five_nodes_commit_with_three_not_with_two() {
    let mut net = Net::new(mem_drivers(5));
    net.elect(1);
    net.partition(&[&[1, 2, 3], &[4, 5]]);
    net.driver(1).propose_env(&envelope(1)).unwrap();
    net.settle();
    assert_eq!(net.applied_on(1), vec![1, 2, 3]);
    net.heal();
    net.partition(&[&[1, 2], &[3, 4, 5]]);
    net.driver(1).propose_env(&envelope(2)).unwrap();
    net.settle();
    for _ in 0..3 {
        net.tick();
        assert!(net.applied_on(2).is_empty(), "two of five committed");
    }
    net.heal();
    for _ in 0..ELECTION_ROUNDS {
        net.tick();
    }
    assert_eq!(net.applied_on(1), vec![1, 2, 3, 4, 5]);
    net.assert_applied_logs_agree();
}

#[test]
fn read_index_6_4_read_point_covers_every_committed_write() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    for rid in 1..=2 {
        net.driver(1).propose_env(&envelope(rid)).unwrap();
    }
    net.settle();
    let committed = net.driver(1).applied_index();
    for (id, ctx) in [(1, &b"on-leader"[..]), (2, &b"follower"[..])] {
        net.driver(id).read_index(ctx.to_vec()).unwrap();
        net.settle();
        let rs = net.reads[&id]
            .iter()
            .find(|r| r.request_ctx == ctx)
            .unwrap_or_else(|| panic!("no read state on node {id}"))
            .clone();
        assert!(
            rs.index >= committed,
            "read point {} < {committed}",
            rs.index
        );
        assert!(net.driver(id).applied_index() >= rs.index);
    }
}

#[test]
fn determinism_unknown_envelope_version_halts_instead_of_applying() {
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    let future = Envelope {
        version: COMMAND_VERSION + 1,
        ..envelope(2)
    };
    net.driver(1).propose_env(&envelope(1)).unwrap();
    net.driver(1).propose_env(&future).unwrap();
    net.driver(1).propose_env(&envelope(3)).unwrap();
    // Replicate everywhere before anything commits (acknowledgements lost), so that every
    // node holds the entry.
    net.cut_one_way(2, 1);
    net.cut_one_way(3, 1);
    net.settle();
    assert!(net.errors.is_empty());
    net.heal();
    net.tick_heartbeat();
    // The leader meets the entry first and stops before applying it.
    assert!(
        net.errors.get(&1).is_some_and(unknown_version),
        "{:?}",
        net.errors.get(&1)
    );
    assert!(matches!(
        net.driver(1).handle_ready(),
        Err(DriverError::Halted(_))
    ));
    // Whoever leads next commits the entry too, and halts the same way: no node ever
    // applies it or anything after it.
    for _ in 0..ELECTION_ROUNDS {
        net.tick();
        for id in net.ids() {
            let applied = net.applier(id).requests();
            assert!(!applied.contains(&2) && !applied.contains(&3), "node {id}");
        }
    }
    for id in net.ids() {
        let want: &[u64] = if net.errors.contains_key(&id) {
            &[1]
        } else {
            &[]
        };
        assert_eq!(net.applier(id).requests(), want, "node {id}");
    }
    for (id, e) in &net.errors {
        assert!(unknown_version(e), "node {id}: {e}");
    }
    assert!(net.errors.len() >= 2, "the next leader halts too");
}

/// The applier refused an entry of a newer command version (the driver sees only an apply
/// error; the entry is opaque to it).
fn unknown_version(e: &DriverError) -> bool {
    let DriverError::Apply { source, .. } = e else {
        return false;
    };
    matches!(
        source.downcast_ref::<RecorderError>(),
        Some(RecorderError::Decode {
            source: DecodeError::UnknownVersion { .. },
            ..
        })
    )
}

type Durable = RaftDriver<EngineLogStore, StateApplier>;

fn durable(id: u64, dir: &Path) -> Durable {
    let store = EngineLogStore::open_with_voters(&dir.join("raft"), &[1, 2, 3]).unwrap();
    let db = sled::Config::new().path(dir.join("state")).open().unwrap();
    RaftDriver::new(id, store, StateApplier::open(db).unwrap()).unwrap()
}

#[test]
fn persistence_5_restarted_node_replays_and_catches_up_to_the_same_state() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let drivers = (1..=3).map(|id| durable(id, dirs[id as usize - 1].path()));
    let mut net = Net::new(drivers.collect());
    net.elect(1);
    for rid in 1..=3 {
        net.driver(1).propose_env(&create_community(rid)).unwrap();
    }
    net.settle();
    let before = net.driver(3).applied_index();
    assert_eq!(net.applier(3).state().communities().unwrap().len(), 3);
    net.crash(3);
    for rid in 4..=6 {
        net.driver(1).propose_env(&create_community(rid)).unwrap();
    }
    net.settle();
    let restarted = durable(3, dirs[2].path());
    assert_eq!(
        restarted.applied_index(),
        before,
        "resumes from its own state"
    );
    assert!(restarted.store().last_index().unwrap() >= before);
    net.restart(restarted);
    net.tick_heartbeat();
    let target = net.driver(1).applied_index();
    let digests: Vec<[u8; 32]> = (1..=3)
        .map(|id| {
            assert_eq!(net.driver(id).applied_index(), target, "node {id}");
            net.applier(id).state().digest().unwrap()
        })
        .collect();
    assert_eq!(net.applier(3).state().communities().unwrap().len(), 6);
    assert!(digests.iter().all(|d| *d == digests[0]), "states differ");
}

/// Membership through the driver alone: a new node joins as a learner, catches up from a
/// snapshot (the leader compacted its whole log first, as the key store does before adding a
/// learner), is promoted through explicit joint consensus, and every node ends with the same
/// configuration and the same applied entries.
#[test]
fn membership_a_new_node_catches_up_by_snapshot_and_becomes_a_voter() {
    use raft::eraftpb::{ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2};
    let single = |t: ConfChangeType, id: u64, transition: ConfChangeTransition| {
        let mut s = ConfChangeSingle::default();
        s.set_change_type(t);
        s.node_id = id;
        let mut cc = ConfChangeV2::default();
        cc.set_transition(transition);
        cc.set_changes(vec![s].into());
        cc
    };
    let mut net = Net::new(mem_drivers(3));
    net.elect(1);
    for rid in 1..=5 {
        net.driver(1).propose_env(&envelope(rid)).unwrap();
    }
    net.settle();
    let newcomer = RaftDriver::new(4, MemLogStore::new(), Recorder::default()).unwrap();
    net.restart(newcomer);
    let add = single(
        ConfChangeType::AddLearnerNode,
        4,
        ConfChangeTransition::Auto,
    );
    net.driver(1)
        .propose_conf_change(100, add, vec![(4, "n4:1".into())])
        .unwrap();
    net.settle();
    net.tick_heartbeat();
    assert!(
        net.driver(1).store().first_index().unwrap() > 1,
        "the leader compacted its log behind a snapshot naming the learner"
    );
    assert_eq!(net.driver(4).conf_state().learners, vec![4]);
    assert_eq!(
        net.applier(4).applied.first().map(|a| a.0),
        Some(1),
        "history from the snapshot"
    );

    let promote = single(ConfChangeType::AddNode, 4, ConfChangeTransition::Explicit);
    net.driver(1)
        .propose_conf_change(101, promote, vec![])
        .unwrap();
    net.settle();
    assert!(
        !net.driver(1).conf_state().voters_outgoing.is_empty(),
        "explicit: still joint"
    );
    net.driver(1)
        .propose_conf_change(102, ConfChangeV2::default(), vec![])
        .unwrap();
    net.settle();
    net.tick_heartbeat();
    for id in 1..=4 {
        let mut voters = net.driver(id).conf_state().voters;
        voters.sort_unstable();
        assert_eq!(voters, vec![1, 2, 3, 4], "node {id}");
        assert!(net.driver(id).conf_state().voters_outgoing.is_empty());
    }
    let answered: Vec<u64> = net.answers[&1].iter().map(|a| a.0).collect();
    for rid in [100, 101, 102] {
        assert!(answered.contains(&rid), "conf change {rid} answered");
    }
    for rid in 6..=7 {
        net.driver(1).propose_env(&envelope(rid)).unwrap();
    }
    net.settle();
    net.tick_heartbeat();
    net.assert_applied_logs_agree();
    assert_eq!(net.applier(4).requests(), net.applier(1).requests());
}
