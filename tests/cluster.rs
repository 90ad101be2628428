//! Multi-process Raft cluster tests (issue 4): real `sealkm` processes on loopback.
//! - writes through any node reach every node; KM-UU answers the same key sets on each;
//! - kill -9 the leader during a stream of writes: every acknowledged write survives on all
//!   survivors and on the restarted node;
//! - a node restarted after the log was compacted catches up by snapshot;
//! - a fourth node joins and a node leaves under load;
//! - a minority partition (a fault-injecting proxy between peers) neither commits nor issues
//!   keys (once it knows no leader a write is refused with `"proposed": false`, and never
//!   appears), and catches up when healed.
//!
//! Every test ends with all running nodes at the same state digest.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::cluster::Cluster;
use common::proxy::Proxy;
use common::{error_code, key_set};
use sealkm::client::{KmClient, KmReply};
use sealkm::kms::xml::kms_error::KmsErrorCode;

fn token(c: &Cluster, user: &str) -> String {
    let cfg = sealkm::config::NodeConfig::load(&c.config(1)).expect("config");
    let idp = sealkm::dev::load_idp(c.dir()).expect("idp");
    idp.mint_for(
        &cfg.auth.token,
        user,
        &cfg.auth.token.required_scope,
        common::unix_now(),
        600,
    )
    .expect("mint")
}

fn keyprov(c: &Cluster, id: u32, user: &str) -> KmReply {
    let client = KmClient::new(c.url(id), &c.ca(), Some(token(c, user))).expect("client");
    actix_rt::System::new()
        .block_on(client.post("keyprov", None))
        .expect("keyprov")
}

fn is_revoked_everywhere(c: &Cluster, user: &str) -> bool {
    c.nodes.keys().all(|&id| {
        let r = keyprov(c, id, user);
        r.status == 403 && error_code(&r) == KmsErrorCode::IdentityRevoked
    })
}

#[test]
fn writes_through_any_node_reach_every_node_with_equal_key_sets() {
    let c = Cluster::start(3, |_, t| t);
    for id in 1..=3 {
        assert_eq!(c.revoke(id, &format!("sip:w{id}@sealkm.test")), 200);
    }
    c.converged();
    for id in 1..=3 {
        assert!(is_revoked_everywhere(&c, &format!("sip:w{id}@sealkm.test")));
    }
    // Deterministic issuance from one replicated master secret: the same key set everywhere.
    let sets: Vec<String> = (1..=3)
        .map(|id| format!("{:?}", key_set(&keyprov(&c, id, "sip:alice@sealkm.test"))))
        .collect();
    assert_eq!(sets[0], sets[1]);
    assert_eq!(sets[0], sets[2]);
}

#[test]
fn killing_the_leader_loses_no_acknowledged_write() {
    let mut c = Cluster::start(3, |_, t| t);
    let leader = c.leader();
    let mut acked = Vec::new();
    let mut acked_after_kill = 0;
    for i in 0..60u32 {
        if i == 20 {
            c.kill(leader);
        }
        let via = 1 + (i % 3);
        if !c.nodes.contains_key(&via) {
            continue;
        }
        let who = format!("sip:k{i}@sealkm.test");
        if c.revoke(via, &who) == 200 {
            acked.push(who);
            acked_after_kill += usize::from(i >= 20);
        }
    }
    assert!(
        acked.len() > acked_after_kill && acked_after_kill > 0,
        "writes were acknowledged before and after the kill ({} after)",
        acked_after_kill
    );
    c.start_nodes(&[leader]);
    c.converged();
    for who in &acked {
        assert!(is_revoked_everywhere(&c, who), "{who} lost");
    }
}

#[test]
fn a_node_restarted_after_compaction_catches_up_by_snapshot() {
    let mut c = Cluster::start(3, |_, t| {
        t.replace(
            "tick_ms = 100",
            "tick_ms = 100\nsnapshot_interval = 10\nsnapshot_keep_entries = 0",
        )
    });
    let leader = c.leader();
    let down = (1..=3).find(|&id| id != leader).expect("a follower");
    let behind = c.report(down).expect("report")["applied"].as_u64().unwrap();
    c.kill(down);
    for i in 0..40 {
        assert_eq!(c.revoke(leader, &format!("sip:s{i}@sealkm.test")), 200);
    }
    let snap = c.report(leader).expect("report")["snapshot_index"]
        .as_u64()
        .unwrap();
    assert!(
        snap > behind + 1,
        "the leader compacted past the stopped node's log"
    );
    c.start_nodes(&[down]);
    c.converged();
    let r = c.report(down).expect("report");
    assert!(
        r["snapshot_index"].as_u64().unwrap() >= snap,
        "the restarted node installed a snapshot: {r}"
    );
    assert!(is_revoked_everywhere(&c, "sip:s0@sealkm.test"));
}

#[test]
fn a_fourth_node_joins_and_a_node_leaves_under_load() {
    let mut c = Cluster::start(3, |_, t| t);
    let leader = c.leader();
    let stay = leader;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        let (url, ca, token) = (c.url(stay).to_owned(), c.ca(), c.admin_token());
        std::thread::spawn(move || {
            let agent = common::cluster::ureq_like::Agent::new(&ca, token);
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let who = format!("sip:j{i}@sealkm.test");
                let body = serde_json::json!({ "identity": who, "reason": "load" });
                let target = format!(
                    "{url}/admin/v1/communities/{}/revocations",
                    sealkm::dev::DEV_KMS_URI
                );
                if matches!(agent.post(&target, &body), Ok((200, _))) {
                    acked.lock().unwrap().push(who);
                }
                i += 1;
            }
        })
    };
    // Node 4 starts outside the cluster; `cluster join` adds it, it catches up, then listens.
    let child = c.spawn(4);
    let out = c.cluster_cli(leader, "join", 4);
    assert!(
        out.status.success(),
        "join: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.adopt(4, child);
    let gone = (1..=3).find(|&id| id != leader).expect("a follower");
    let out = c.cluster_cli(leader, "leave", gone);
    assert!(
        out.status.success(),
        "leave: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer");
    c.kill(gone);
    let r = c.report(leader).expect("report");
    let mut expect: Vec<u64> = vec![1, 2, 3, 4];
    expect.retain(|&id| id != u64::from(gone));
    let voters: Vec<u64> = r["voters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(voters, expect);
    // Not left in joint consensus: another change is accepted (node 4 leaves as well).
    let out = c.cluster_cli(leader, "leave", 4);
    assert!(
        out.status.success(),
        "second leave: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.kill(4);
    // The cluster still commits without the removed node.
    assert_eq!(c.revoke(stay, "sip:after-leave@sealkm.test"), 200);
    c.converged();
    let acked = acked.lock().unwrap().clone();
    assert!(
        !acked.is_empty(),
        "writes were acknowledged during the changes"
    );
    for who in acked.iter().step_by(5).chain(acked.last()) {
        assert!(is_revoked_everywhere(&c, who), "{who} lost");
    }
}

#[test]
fn a_minority_partition_neither_commits_nor_issues_keys() {
    // Every peer link goes through its own proxy: proxies[(from, to)].
    let mut c = Cluster::create(3, |_, t| t);
    let peer_addr = |id: u32| {
        let cfg = sealkm::config::NodeConfig::load(&c.config(id)).expect("config");
        cfg.raft.expect("raft").peer_listener.addr
    };
    let real: Vec<String> = (1..=3).map(peer_addr).collect();
    let mut proxies = std::collections::BTreeMap::new();
    for from in 1..=3u32 {
        let path = c.config(from);
        let mut text = std::fs::read_to_string(&path).expect("config");
        for to in (1..=3u32).filter(|&t| t != from) {
            let p = Proxy::start(real[to as usize - 1].clone());
            text = text.replace(
                &format!("id = {to}\naddr = \"{}\"", real[to as usize - 1]),
                &format!("id = {to}\naddr = \"{}\"", p.addr),
            );
            proxies.insert((from, to), p);
        }
        std::fs::write(&path, text).expect("write config");
    }
    c.start_nodes(&[1, 2, 3]);
    let old = c.leader();
    assert_eq!(c.revoke(old, "sip:before@sealkm.test"), 200);
    for ((from, to), p) in &proxies {
        if *from == old || *to == old {
            p.cut();
        }
    }
    // The cut-off old leader can neither commit a write nor issue a key set (while it still
    // takes itself for the leader the write is proposed and times out: a plain 503).
    assert_eq!(c.revoke(old, "sip:minority@sealkm.test"), 503);
    assert_eq!(keyprov(&c, old, "sip:carol@sealkm.test").status, 503);
    // Once it has stepped down (check-quorum) it knows no leader: a write is refused before
    // it is proposed, and says so.
    c.wait_for("the cut-off node to know no leader", |c| {
        (c.report(old)?["leader_id"].as_u64()? == 0).then_some(())
    });
    let (status, body) = revoke_answer(&c, old, "sip:refused@sealkm.test");
    assert_eq!(status, 503);
    assert_eq!(body["proposed"], false, "{body}");
    // The majority elects a leader and goes on.
    let other = (1..=3).find(|&id| id != old).expect("majority node");
    let new = c.wait_for("a leader in the majority", |c| {
        let l = c.report(other)?["leader_id"].as_u64()? as u32;
        (l != 0 && l != old).then_some(l)
    });
    assert_eq!(c.revoke(new, "sip:majority@sealkm.test"), 200);
    for p in proxies.values() {
        p.heal();
    }
    c.converged();
    assert!(is_revoked_everywhere(&c, "sip:majority@sealkm.test"));
    assert!(is_revoked_everywhere(&c, "sip:before@sealkm.test"));
    // The write the partitioned leader took was never committed, so it is gone everywhere,
    // and the one refused before proposal never existed.
    for id in 1..=3 {
        assert_eq!(keyprov(&c, id, "sip:minority@sealkm.test").status, 200);
        assert_eq!(keyprov(&c, id, "sip:refused@sealkm.test").status, 200);
    }
}

/// [`Cluster::revoke`] with the answer's body.
fn revoke_answer(c: &Cluster, id: u32, identity: &str) -> (u16, serde_json::Value) {
    let url = format!(
        "{}/admin/v1/communities/{}/revocations",
        c.url(id),
        sealkm::dev::DEV_KMS_URI
    );
    let body = serde_json::json!({ "identity": identity, "reason": "cluster test" });
    c.agent().post(&url, &body).expect("an answer")
}
