//! KM-E federated groups between two real 3-node clusters under faults: A's leader killed
//! (SIGKILL) right after versions were created, while its Federator delivers them; every node
//! of B stopped while A creates versions, then restarted. Each time every version reaches B
//! once, in order, with A's GMK: B's `federated-key-imported` events (one per import; a
//! repeated delivery imports nothing) and B's VAL server's reads tell.

mod common;

use common::cluster::{poll, ureq_like::Agent, Cluster};
use common::km_e::{federation_section, issue, A_NAME, B_KMS, B_NAME};
use common::parties::{call, client, grant, token};
use common::receiver::Receiver;
use sealkm::dev::{DEV_GMS, DEV_KMS_URI, DEV_VAL};
use sealkm::tls::DevCa;

const GROUP: &str = "fed-g";

fn admin(c: &Cluster) -> Agent {
    Agent::new(&c.ca(), c.admin_token())
}

/// POST an admin call to the leader of `c`.
fn to_leader(c: &Cluster, path: &str, body: serde_json::Value) -> serde_json::Value {
    let leader = c.leader();
    let (s, v) = admin(c)
        .post(&format!("{}/admin/v1/{path}", c.url(leader)), &body)
        .unwrap();
    assert_eq!(s, 200, "{path}: {v}");
    v
}

/// Two 3-node clusters, A sharing [`GROUP`] with B over KM-E (each node its own KM-E
/// listener; each partner URL the other cluster's node 1), certificates approved both ways.
fn two_clusters() -> (Cluster, Cluster) {
    let ports = |n| -> Vec<u16> {
        (0..n)
            .map(|_| sealkm::dev::free_port("127.0.0.1").unwrap())
            .collect()
    };
    let total = 3 + sealkm::dev::SPARE_NODES as usize;
    let (pa, pb) = (ports(total), ports(total));
    let (ca_a, ca_b) = (
        DevCa::generate("KM-E CA A").unwrap(),
        DevCa::generate("KM-E CA B").unwrap(),
    );
    let share = format!("share_groups = [\"{GROUP}\"]");
    let accept = format!("accept_groups = [\"{GROUP}\"]");
    let mut a = Cluster::create(3, |id, t| {
        t + &federation_section(pa[id as usize - 1], &[(B_KMS, pb[0], B_NAME, &share)])
    });
    let mut b = Cluster::create(3, |id, t| {
        t.replace(DEV_KMS_URI, B_KMS)
            + &federation_section(
                pb[id as usize - 1],
                &[(DEV_KMS_URI, pa[0], A_NAME, &accept)],
            )
    });
    for (c, own, other, name) in [(&a, &ca_a, &ca_b, A_NAME), (&b, &ca_b, &ca_a, B_NAME)] {
        issue(own, c.dir(), "kme-listener", &["127.0.0.1", "localhost"]);
        issue(own, c.dir(), "kme-client", &[name]);
        std::fs::write(c.dir().join("partner-ca.pem"), &other.cert_pem).unwrap();
    }
    a.start_nodes(&[1, 2, 3]);
    b.start_nodes(&[1, 2, 3]);
    for (c, partner) in [(&a, B_KMS), (&b, DEV_KMS_URI)] {
        to_leader(c, "federation/refresh", serde_json::json!({}));
        let id = format!("{partner}/cert/1");
        to_leader(
            c,
            "federation/pending/approve",
            serde_json::json!({"id": id}),
        );
    }
    (a, b)
}

/// Versions of [`GROUP`] imported by B so far, from its subscriber's events (redeliveries of
/// a notification counted once, by event id), in event order.
fn imported(receiver: &Receiver) -> Vec<u64> {
    let mut seen = std::collections::BTreeSet::new();
    receiver
        .events("fed")
        .into_iter()
        .filter(|e| seen.insert(e["id"].as_u64()))
        .map(|e| {
            assert_eq!(e["kind"], "federated-key-imported", "{e}");
            assert_eq!(e["subject"]["partner_kms_uri"], DEV_KMS_URI, "{e}");
            e["subject"]["version"].as_u64().expect("version")
        })
        .collect()
}

#[test]
fn every_version_reaches_b_once_in_order_across_a_leader_kill_and_b_down() {
    let (mut a, mut b) = two_clusters();
    let (a_dir, b_dir) = (a.dir().to_owned(), b.dir().to_owned());
    grant(&a_dir, a.url(1), DEV_GMS, "gms", &["*"]);
    grant(&b_dir, b.url(1), DEV_VAL, "val-server", &[GROUP]);
    let receiver = Receiver::start(&b_dir);
    let val_b = |c: &Cluster, id| {
        client(
            &b_dir,
            c.service_url(id),
            Some("val"),
            Some(token(&b_dir, DEV_VAL, &[])),
        )
    };
    let r = call(
        &val_b(&b, 1),
        "POST",
        "/km-s/v1/subscriptions",
        Some(
            serde_json::json!({"id": "fed", "callback_url": receiver.url(),
            "kinds": ["federated-key-imported"]}),
        ),
    );
    assert!(r.status == 200 || r.status == 201, "{:?}", r.json);
    let gms = |c: &Cluster, id| {
        client(
            &a_dir,
            c.service_url(id),
            Some("gms"),
            Some(token(&a_dir, DEV_GMS, &[])),
        )
    };
    let create = |c: &Cluster, id| {
        let r = call(
            &gms(c, id),
            "POST",
            &format!("/seal-x1/v1/groups/{GROUP}/keys"),
            Some(serde_json::json!({})),
        );
        assert_eq!(r.status, 201, "{:?}", r.json);
    };

    // Three versions through a follower, then A's leader killed while it delivers them.
    let leader = a.leader();
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    for _ in 0..3 {
        create(&a, follower);
    }
    a.kill(leader);
    let new_leader = a.leader();
    create(&a, new_leader);
    create(&a, new_leader);
    let got = poll(|| {
        let got = imported(&receiver);
        (got.len() >= 5).then_some(got)
    });
    assert_eq!(got, [1, 2, 3, 4, 5], "each version once, in order");

    // B entirely down while A creates two more; back: they arrive, once each, in order.
    for id in 1..=3 {
        b.kill(id);
    }
    create(&a, new_leader);
    create(&a, new_leader);
    b.start_nodes(&[1, 2, 3]);
    let got = poll(|| {
        // A's Federator tries again at its next refresh: ask for one until B has both.
        to_leader(&a, "federation/refresh", serde_json::json!({}));
        let got = imported(&receiver);
        (got.len() >= 7).then_some(got)
    });
    assert_eq!(got, [1, 2, 3, 4, 5, 6, 7], "each version once, in order");

    // B's VAL server reads A's GMKs, version by version.
    for n in 1..=7 {
        let path = |iface: &str| format!("/{iface}/v1/groups/{GROUP}/keys/{n}");
        let ra = call(&gms(&a, new_leader), "GET", &path("seal-x1"), None);
        let rb = call(&val_b(&b, 2), "GET", &path("km-s"), None);
        assert_eq!(ra.status, 200, "{:?}", ra.json);
        assert_eq!(rb.status, 200, "{:?}", rb.json);
        assert_eq!(ra.json["gmk"], rb.json["gmk"], "version {n}");
        assert_eq!(ra.json["gmk_id"], rb.json["gmk_id"], "version {n}");
    }
}
