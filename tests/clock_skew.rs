//! The clock-skew rule (docs/CHAOS.md): a follower whose clock is beyond `[raft]
//! max_clock_skew_ms` from the leader's refuses KM-UU key sets (503), so no two nodes hand out
//! different "current" key sets for one request time; the leader's clock is the cluster's. A
//! real 3-node cluster with node 3's clock five minutes ahead (the test-only
//! `test_clock_offset_s`), then node 3 restarted with the right time.

mod common;

use common::cluster::Cluster;
use sealkm::client::{KmClient, KmReply};

/// Node 3's clock, ahead of the others (less than the tokens' 600 s lifetime).
const AHEAD_S: i64 = 300;
const ALICE: &str = "sip:alice@sealkm.test";
/// What the refusing node logs (the reason, with the configured default bound).
const REFUSED: &str = "beyond the 2000 ms bound";

fn with_offset(id: u32, config: String) -> String {
    if id != 3 {
        return config;
    }
    let out = config.replacen(
        "node_id = \"node3\"\n",
        &format!("node_id = \"node3\"\ntest_clock_offset_s = {AHEAD_S}\n"),
        1,
    );
    assert_ne!(out, config, "the dev config changed shape");
    out
}

fn keyprov(c: &Cluster, id: u32) -> KmReply {
    let cfg = sealkm::config::NodeConfig::load(&c.config(1)).expect("config");
    let idp = sealkm::dev::load_idp(c.dir()).expect("idp");
    let token = idp
        .mint_for(
            &cfg.auth.token,
            ALICE,
            &cfg.auth.token.required_scope,
            common::unix_now(),
            600,
        )
        .expect("mint");
    let client = KmClient::new(c.url(id), &c.ca(), Some(token)).expect("client");
    actix_rt::System::new()
        .block_on(client.post("keyprov", None))
        .expect("keyprov")
}

fn logged(c: &Cluster, id: u32, what: &str) -> bool {
    std::fs::read_to_string(c.log(id)).is_ok_and(|l| l.contains(what))
}

#[test]
fn a_follower_with_a_skewed_clock_refuses_key_sets_until_its_clock_is_right() {
    // Nodes 1 and 2 form the cluster (and make the community's certificate by the right time);
    // node 3, five minutes ahead, joins them.
    let mut c = Cluster::create(3, with_offset);
    c.start_nodes(&[1, 2]);
    c.start_nodes(&[3]);
    let leader = c.leader();
    let offset = |id: u32| if id == 3 { AHEAD_S } else { 0 };
    // The leader serves by its own clock; a follower serves only with the leader's time.
    assert_eq!(keyprov(&c, leader).status, 200);
    for id in (1..=3).filter(|&id| id != leader) {
        if offset(id) == offset(leader) {
            c.wait_for("a follower with the leader's time to serve", |c| {
                (keyprov(c, id).status == 200).then_some(())
            });
        } else {
            // Never a key set, and refused for its clock (not only for want of a stamp).
            c.wait_for("the skewed follower to refuse for its clock", |c| {
                assert_eq!(keyprov(c, id).status, 503, "node {id} served a key set");
                logged(c, id, REFUSED).then_some(())
            });
        }
    }
    // Node 3 restarted with the right time: every node serves.
    c.kill(3);
    let path = c.config(3);
    let text = std::fs::read_to_string(&path).expect("config");
    let fixed = text.replacen(&format!("test_clock_offset_s = {AHEAD_S}\n"), "", 1);
    assert_ne!(fixed, text);
    std::fs::write(&path, fixed).expect("config");
    let n = c.spawn(3);
    c.adopt(3, n);
    c.leader();
    for id in 1..=3 {
        c.wait_for("every node to serve", |c| {
            (keyprov(c, id).status == 200).then_some(())
        });
    }
}
