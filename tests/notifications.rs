//! Distribution of key events, end to end with real processes: a 3-node cluster, the dev GMS
//! subscribing over SEAL-X1 (mutual TLS + token), an HTTPS callback receiver requiring client
//! certificates of the dev CA. Key events are group key creations and rotations by the GMS.
//!
//! Checked: every committed event reaches the subscriber at least once, in id order per
//! subscriber (the sequence of first deliveries is increasing and has no gap), redeliveries
//! carry the same event, the acknowledged offset is recorded through Raft — when the leader
//! is killed with events pending, and when the subscriber is down for a while. No sleeps:
//! every wait polls a condition against a generous deadline.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::cluster::Cluster;
use common::parties;
use common::receiver::Receiver;
use serde_json::{json, Value};

use sealkm::dev::{DEV_GMS, DEV_GROUP, DEV_VAL};

const SUB: &str = "gms-events";

/// A party (certificate stem and token) calling any node's service listener.
struct Party {
    stem: &'static str,
    token: String,
}

impl Party {
    fn new(c: &Cluster, stem: &'static str, name: &str) -> Self {
        Self {
            stem,
            token: parties::token(c.dir(), name, &[]),
        }
    }

    /// `method` on `path` of node `id`'s service listener: (status, JSON, raw body).
    fn call(
        &self,
        c: &Cluster,
        id: u32,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Option<(u16, Value, Vec<u8>)> {
        let url = c.nodes.get(&id)?.service_url.clone()?;
        let client = parties::client(c.dir(), &url, Some(self.stem), Some(self.token.clone()));
        let r = parties::block(client.call(method, path, body.as_ref())).ok()?;
        Some((r.status, r.json, r.raw.to_vec()))
    }
}

/// Grants an ACL entry through the admin API (retried while the cluster settles).
fn grant(c: &Cluster, principal: &str, role: &str, groups: &[&str]) {
    let body = json!({"principal": principal, "role": role, "groups": groups});
    c.wait_for("an ACL grant", |c| {
        let id = *c.nodes.keys().next()?;
        let (status, _) = c
            .agent()
            .post(&format!("{}/admin/v1/acl", c.url(id)), &body)
            .ok()?;
        (status == 200 || status == 201).then_some(())
    });
}

fn start() -> (Cluster, Receiver, Party) {
    let c = Cluster::start(3, |_, t| t);
    c.leader();
    grant(&c, DEV_GMS, "gms", &["*"]);
    let receiver = Receiver::start(c.dir());
    let gms = Party::new(&c, "gms", DEV_GMS);
    let body = json!({
        "id": SUB,
        "callback_url": receiver.url(),
        "kinds": ["group-key-created", "group-key-rotated"],
    });
    let (status, v, _) = gms
        .call(&c, 1, "POST", "/seal-x1/v1/subscriptions", Some(body))
        .expect("subscribe");
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["id"], SUB);
    assert_eq!(v["acked"], 0);
    (c, receiver, gms)
}

/// Creates or rotates `group`'s key through node `via`, retrying while the cluster is
/// unavailable (an election); returns the committed (group, version).
fn create_key(c: &Cluster, gms: &Party, via: &[u32], group: &str) -> (String, u64) {
    c.wait_for("a group key creation", |c| {
        for &id in via {
            let path = format!("/seal-x1/v1/groups/{group}/keys");
            if let Some((201, v, _)) = gms.call(c, id, "POST", &path, Some(json!({}))) {
                return Some((v["group_id"].as_str()?.to_owned(), v["version"].as_u64()?));
            }
        }
        None
    })
}

/// Facts about what the receiver got for [`SUB`], checked for order and consistency.
struct Received {
    /// Event id → (group, version), from any delivery.
    by_id: BTreeMap<u64, (String, u64)>,
    /// Ids in the order of their first delivery.
    first_seen: Vec<u64>,
}

fn received(r: &Receiver) -> Received {
    let mut by_id = BTreeMap::new();
    let mut first_seen = Vec::new();
    for n in r.notifications() {
        assert_eq!(n["subscription_id"], SUB);
        assert_eq!(n["must_resync"], false, "no backlog overflow here: {n}");
        let events = n["events"].as_array().expect("events");
        assert!(events.len() <= 100, "a batch holds at most 100 events");
        let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "events of one notification in id order: {ids:?}"
        );
        for e in events {
            assert!(
                e.get("gmk").is_none(),
                "no key material in notifications: {e}"
            );
            let id = e["id"].as_u64().unwrap();
            let subject = &e["subject"];
            assert_eq!(subject["type"], "group-key", "{e}");
            let what = (
                subject["group_id"].as_str().unwrap().to_owned(),
                subject["version"].as_u64().unwrap(),
            );
            match by_id.get(&id) {
                Some(prev) => assert_eq!(prev, &what, "a redelivery carries the same event"),
                None => {
                    by_id.insert(id, what);
                    first_seen.push(id);
                }
            }
        }
    }
    Received { by_id, first_seen }
}

/// Waits until every `committed` key change was delivered, then checks order, gaps and the
/// replicated acknowledgement.
fn assert_all_delivered(c: &Cluster, r: &Receiver, gms: &Party, committed: &[(String, u64)]) {
    let want: BTreeSet<&(String, u64)> = committed.iter().collect();
    let got = c.wait_for("every committed event to be delivered", |_| {
        let got = received(r);
        let have: BTreeSet<&(String, u64)> = got.by_id.values().collect();
        want.is_subset(&have).then_some(got)
    });
    let n = got.first_seen.len() as u64;
    assert_eq!(
        got.first_seen,
        (1..=n).collect::<Vec<u64>>(),
        "first deliveries in id order, without a gap"
    );
    // The acknowledgement of the last event is recorded through Raft (read on any node).
    let via = *c.nodes.keys().next().unwrap();
    c.wait_for("the acknowledged offset to reach the newest event", |c| {
        let (status, v, _) = gms.call(c, via, "GET", "/seal-x1/v1/subscriptions", None)?;
        let sub = v["subscriptions"]
            .as_array()?
            .iter()
            .find(|s| s["id"] == SUB)?
            .clone();
        (status == 200 && sub["acked"].as_u64()? >= n).then_some(())
    });
}

fn metric(c: &Cluster, gms: &Party, id: u32, name: &str) -> Option<u64> {
    let (status, _, raw) = gms.call(c, id, "GET", "/metrics", None)?;
    if status != 200 {
        return None;
    }
    String::from_utf8_lossy(&raw)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn leader_killed_with_events_pending_loses_nothing() {
    let (mut c, mut receiver, gms) = start();
    let all: Vec<u32> = c.nodes.keys().copied().collect();
    let mut committed = Vec::new();

    // Deliveries flow.
    for i in 0..5 {
        committed.push(create_key(&c, &gms, &all, &format!("g{}", i % 3)));
    }
    assert_all_delivered(&c, &receiver, &gms, &committed);

    // Events pending: the subscriber is unreachable while they commit, then the leader dies.
    receiver.stop();
    let leader = c.leader();
    for i in 0..10 {
        committed.push(create_key(&c, &gms, &[leader], &format!("g{}", i % 4)));
    }
    c.kill(leader);
    receiver.restart();

    // More events under the new leader.
    let survivors: Vec<u32> = c.nodes.keys().copied().collect();
    for i in 0..10 {
        committed.push(create_key(&c, &gms, &survivors, &format!("h{}", i % 2)));
    }
    assert_all_delivered(&c, &receiver, &gms, &committed);
    assert_ne!(c.leader(), leader);
}

#[test]
fn subscriber_down_gets_its_backlog_when_it_returns() {
    let (c, mut receiver, gms) = start();
    let all: Vec<u32> = c.nodes.keys().copied().collect();

    // The subscription API keeps principals apart.
    grant(&c, DEV_VAL, "val-server", &[DEV_GROUP]);
    let val = Party::new(&c, "val", DEV_VAL);
    let km_s = "/km-s/v1/subscriptions";
    let status = |method: &str, path: &str, body: Option<Value>| {
        val.call(&c, 2, method, path, body).expect("call").0
    };
    let taken = json!({"id": SUB, "callback_url": receiver.url(), "kinds": ["identity-revoked"]});
    assert_eq!(
        status("POST", km_s, Some(taken)),
        409,
        "another principal's id"
    );
    let outside = json!({"id": "v", "callback_url": receiver.url(),
        "kinds": ["group-key-created"], "group_filter": ["not-mine"]});
    assert_eq!(
        status("POST", km_s, Some(outside)),
        403,
        "filter beyond the ACL"
    );
    let bad = json!({"id": "v", "callback_url": "http://x", "kinds": ["group-key-created"]});
    assert_eq!(
        status("POST", km_s, Some(bad)),
        400,
        "callback must be https"
    );
    let unknown_kind = json!({"id": "v", "callback_url": receiver.url(), "kinds": ["nope"]});
    assert_eq!(
        status("POST", km_s, Some(unknown_kind)),
        400,
        "unknown kind"
    );
    let (s, v, _) = val.call(&c, 2, "GET", km_s, None).expect("list");
    assert_eq!(
        (s, v["subscriptions"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    assert_eq!(status("DELETE", &format!("{km_s}/{SUB}"), None), 404);
    // The GMS may not use the VAL servers' interface.
    assert_eq!(gms.call(&c, 2, "GET", km_s, None).expect("call").0, 403);

    // The subscriber goes away; a backlog of more than one batch builds up.
    receiver.stop();
    let mut committed = Vec::new();
    for i in 0..120 {
        committed.push(create_key(&c, &gms, &all, &format!("b{}", i % 6)));
    }
    // The leader has tried and failed: the subscriber really was away.
    let leader = c.leader();
    c.wait_for("a failed delivery attempt", |c| {
        (metric(c, &gms, leader, "sealkm_event_deliveries_failed_total")? > 0).then_some(())
    });
    assert!(received(&receiver).by_id.is_empty());

    receiver.restart();
    assert_all_delivered(&c, &receiver, &gms, &committed);
    assert!(
        receiver.notifications().len() >= 2,
        "120 events take more than one batch"
    );

    // Removing the subscription stops deliveries to it (and it is gone from the list).
    let path = format!("/seal-x1/v1/subscriptions/{SUB}");
    assert_eq!(
        gms.call(&c, 3, "DELETE", &path, None).expect("delete").0,
        200
    );
    let (_, v, _) = gms
        .call(&c, 3, "GET", "/seal-x1/v1/subscriptions", None)
        .expect("list");
    assert_eq!(v["subscriptions"].as_array().map(Vec::len), Some(0));
}

#[test]
fn an_expired_group_key_is_announced_once() {
    let (c, _receiver, gms) = start();
    let all: Vec<u32> = c.nodes.keys().copied().collect();
    let expiries = Receiver::start(c.dir());
    let body =
        json!({"id": "expiries", "callback_url": expiries.url(), "kinds": ["group-key-expired"]});
    let (status, v, _) = gms
        .call(&c, 2, "POST", "/seal-x1/v1/subscriptions", Some(body))
        .expect("subscribe");
    assert_eq!(status, 201, "{v}");
    create_key(&c, &gms, &all, "short-lived");
    create_key(&c, &gms, &all, "short-lived");
    let expired = |version: u64| {
        expiries
            .events("expiries")
            .iter()
            .filter(|e| {
                e["kind"] == "group-key-expired"
                    && e["subject"]["group_id"] == "short-lived"
                    && e["subject"]["version"] == version
            })
            .map(|e| e["id"].as_u64().unwrap())
            .collect::<BTreeSet<u64>>()
    };
    for version in [1, 2] {
        // Expires two seconds from now (decided at the proposer's time, so it is not refused
        // as already expired); the leader's sweeper notes it once its time has passed.
        let at = common::unix_now() + 2;
        let path = format!("/seal-x1/v1/groups/short-lived/keys/{version}/expiry");
        c.wait_for("an expiry change", |c| {
            let (s, _, _) = gms.call(c, 1, "PUT", &path, Some(json!({"expires_unix": at})))?;
            (s == 200).then_some(())
        });
        c.wait_for("the expired event", |_| {
            (!expired(version).is_empty()).then_some(())
        });
    }
    // Version 1's event was announced once, though the sweeper ran many times since.
    assert_eq!(expired(1).len(), 1, "{:?}", expiries.events("expiries"));
    assert!(expired(1)
        .iter()
        .all(|id| expired(2).iter().all(|id2| id < id2)));
    let (_, v, _) = gms
        .call(&c, 3, "GET", "/seal-x1/v1/groups/short-lived/keys", None)
        .expect("versions");
    assert!(v["current_version"].is_null(), "{v}");
}

/// Creates `n` group keys (new groups `prefix-i`) through node `via`, 32 requests in flight.
fn create_many(c: &Cluster, gms: &Party, via: u32, prefix: &str, n: usize) {
    let url = c.nodes[&via].service_url.clone().expect("service url");
    let client = std::rc::Rc::new(parties::client(
        c.dir(),
        &url,
        Some(gms.stem),
        Some(gms.token.clone()),
    ));
    let failed = parties::block(async move {
        let mut tasks = Vec::new();
        for w in 0..32 {
            let (client, prefix) = (client.clone(), prefix.to_owned());
            tasks.push(actix_rt::spawn(async move {
                let mut failed = 0;
                for i in (w..n).step_by(32) {
                    let path = format!("/seal-x1/v1/groups/{prefix}-{i}/keys");
                    match client.call("POST", &path, None).await {
                        Ok(r) if r.status == 201 => {}
                        _ => failed += 1,
                    }
                }
                failed
            }));
        }
        let mut failed = 0;
        for t in tasks {
            failed += t.await.unwrap_or(1);
        }
        failed
    });
    assert_eq!(failed, 0, "every creation succeeds");
}

#[test]
fn a_subscriber_away_too_long_is_told_to_resynchronise() {
    let (c, mut receiver, gms) = start();
    let leader = c.leader();
    receiver.stop();
    // More than MAX_BACKLOG (10,000) events while the subscriber is away.
    create_many(&c, &gms, leader, "flood", 10_050);
    let (_, v, _) = gms
        .call(&c, leader, "GET", "/seal-x1/v1/subscriptions", None)
        .expect("list");
    let sub = v["subscriptions"][0].clone();
    assert_eq!(sub["must_resync"], true, "{sub}");
    receiver.restart();
    // The first notification it gets says so; its ack clears the flag.
    let first = c.wait_for("a notification", |_| {
        receiver.notifications().first().cloned()
    });
    assert_eq!(first["must_resync"], true, "{first}");
    c.wait_for("the resync to be acknowledged", |c| {
        let (s, v, _) = gms.call(c, leader, "GET", "/seal-x1/v1/subscriptions", None)?;
        let sub = &v["subscriptions"][0];
        (s == 200 && sub["must_resync"] == false && sub["acked"].as_u64()? >= 10_050).then_some(())
    });
    // Events after the jump are delivered as usual.
    let all: Vec<u32> = c.nodes.keys().copied().collect();
    let after = create_key(&c, &gms, &all, "after-resync");
    c.wait_for("the next event", |_| {
        receiver
            .events(SUB)
            .iter()
            .any(|e| e["subject"]["group_id"] == after.0.as_str())
            .then_some(())
    });
}
