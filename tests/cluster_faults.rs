//! Faults around membership changes with real `sealkm` processes (issue 10, item 8): a node
//! killed with SIGKILL right after a join or a leave — its Raft log has the new
//! configuration, its state store may not have the entry's applied index yet — restarts,
//! rejoins and converges, instead of refusing the replayed change on every restart.
//!
//! The deterministic version of every step (add learner, enter joint, leave joint, for a
//! join and a leave, with either store behind) is `raft::scenarios::membership_crash`.

mod common;

use common::cluster::Cluster;

#[test]
fn a_follower_killed_right_after_a_join_and_a_leave_restarts_and_converges() {
    let mut c = Cluster::start(3, |_, t| t);
    let leader = c.leader();
    let victim = (1..=3).find(|&id| id != leader).expect("a follower");

    // Join node 4 (learner, joint, leave joint), then kill -9 a follower at once.
    let child = c.spawn(4);
    let out = c.cluster_cli(leader, "join", 4);
    assert!(
        out.status.success(),
        "join: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.kill(victim);
    c.adopt(4, child);
    c.start_nodes(&[victim]);
    c.converged();

    // Remove node 4 again (joint, leave joint), and kill -9 the same follower at once.
    let out = c.cluster_cli(leader, "leave", 4);
    assert!(
        out.status.success(),
        "leave: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.kill(victim);
    c.kill(4);
    c.start_nodes(&[victim]);
    c.converged();

    let r = c.report(victim).expect("the restarted node answers");
    let voters: Vec<u64> = r["voters"]
        .as_array()
        .expect("voters")
        .iter()
        .filter_map(|v| v.as_u64())
        .collect();
    assert_eq!(voters, vec![1, 2, 3]);
    assert!(r["halted"].is_null(), "{r}");
    assert_eq!(c.revoke(victim, "sip:after-restart@sealkm.test"), 200);
    c.converged();
}
