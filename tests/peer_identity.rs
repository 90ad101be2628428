//! The peer listener serves only nodes: a certificate of the cluster CA that names a party (or
//! no node, or every node through a wildcard) gets 403 on every route — status, snapshot
//! chunks, Raft messages, unknown paths — before its body is read; a node's certificate still
//! works. And the config check refuses a cluster config whose peer CA is the parties' CA, or
//! that has no `peer_name_domain`; `sealkm dev` gives nodes a CA of their own.

use std::sync::Arc;
use std::time::Duration;

use raft::eraftpb::{Message, MessageType};
use sealkm::config::NodeConfig;
use sealkm::net::transport::{self, INBOX_LEN, MESSAGES_PATH};
use sealkm::state::StateMachine;
use sealkm::store::{self, StoreOptions};
use sealkm::tls::{self, DevCa};
use tokio::sync::mpsc;

const DOMAIN: &str = "cluster.test";

#[path = "support/peer_pki.rs"]
#[allow(dead_code)] // shared with the transport tests; this one names its certificates exactly
mod peer_pki;
use peer_pki::{client_tls, pki_exactly as issue, Pki};

fn client(pki: &Pki) -> awc::Client {
    transport::peer_client(client_tls(pki), Duration::from_secs(10))
}

/// A one-node key store and its peer listener (node 2 of `DOMAIN`) with a snapshot file
/// `snap-7.bin`; returns the listener's address, the listener's inbox, and the data dir.
fn peer_listener(ca: &DevCa) -> (String, mpsc::Receiver<Message>, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("tempdir");
    let db = sled::open(data.path().join("state")).expect("sled");
    let state = StateMachine::open(db).expect("state");
    let snap_dir = data.path().join("snapshots");
    std::fs::create_dir_all(&snap_dir).expect("snap dir");
    std::fs::write(snap_dir.join("snap-7.bin"), b"sealed secrets and the ACL").expect("snap");
    // The store's own inbox is not the listener's: the test reads what the listener accepts.
    let (store_inbox_tx, store_inbox_rx) = mpsc::channel(INBOX_LEN);
    std::mem::forget(store_inbox_tx);
    let store = store::start(
        StoreOptions::single_node(2, data.path().join("raft"), snap_dir),
        state,
        store_inbox_rx,
    )
    .expect("store");
    let me = issue(ca, &["127.0.0.1", "localhost", "node2.cluster.test"]);
    let tls = tls::peer_server_config(&me.cert, &me.key, &me.ca).expect("server tls");
    let (tx, rx) = mpsc::channel(INBOX_LEN);
    let (server, addrs) =
        store::listener::bind("127.0.0.1:0", tls, tx, store, DOMAIN.into()).expect("bind");
    actix_rt::spawn(server);
    (addrs[0].to_string(), rx, data)
}

fn heartbeat(from: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(MessageType::MsgHeartbeat);
    m.from = from;
    m.to = 2;
    m.term = 1;
    m
}

async fn get(c: &awc::Client, url: String) -> (u16, Vec<u8>) {
    let mut resp = c.get(url).send().await.expect("request");
    let body = resp.body().limit(1 << 20).await.expect("body");
    (resp.status().as_u16(), body.to_vec())
}

async fn post(c: &awc::Client, url: String, body: Vec<u8>) -> u16 {
    c.post(url)
        .content_type("application/octet-stream")
        .send_body(body)
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Status, a snapshot chunk, a Raft batch and an unknown path, as `who`.
async fn every_route(c: &awc::Client, addr: &str, from: u64) -> [u16; 5] {
    let status = get(c, format!("https://{addr}/raft/v1/status")).await.0;
    let chunk = get(c, format!("https://{addr}/raft/v1/snapshots/7?offset=0"))
        .await
        .0;
    let batch = transport::encode_batch(&[heartbeat(from)]).expect("encode");
    let messages = post(c, format!("https://{addr}{MESSAGES_PATH}"), batch).await;
    // Not a batch at all: refused for who sends it before it is decoded (400 would mean the
    // body was read and parsed first).
    let garbage = post(c, format!("https://{addr}{MESSAGES_PATH}"), vec![0xff; 64]).await;
    let unknown = get(c, format!("https://{addr}/raft/v1/nothing-here"))
        .await
        .0;
    [status, chunk, messages, garbage, unknown]
}

#[actix_rt::test]
async fn a_party_certificate_of_the_cluster_ca_gets_403_on_every_peer_route() {
    let ca = DevCa::generate("one CA for all").expect("ca");
    let (addr, mut inbox, _data) = peer_listener(&ca);

    for party in [
        issue(&ca, &["val.cluster.test"]),
        issue(&ca, &["sip:gms@cluster.test"]),
        // A wildcard is valid for every node name, but names no node.
        issue(&ca, &["*.cluster.test"]),
        // A name like a node's, in another domain.
        issue(&ca, &["node1.elsewhere.test"]),
    ] {
        let c = client(&party);
        assert_eq!(every_route(&c, &addr, 1).await, [403; 5]);
    }
    assert!(
        inbox.try_recv().is_err(),
        "nothing from a party reached Raft"
    );

    // A node's certificate still works: status, the snapshot bytes, its own messages.
    let node1 = client(&issue(&ca, &["node1.cluster.test"]));
    let (status, body) = get(&node1, format!("https://{addr}/raft/v1/status")).await;
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(report["id"].as_u64(), Some(2));
    let (status, body) = get(
        &node1,
        format!("https://{addr}/raft/v1/snapshots/7?offset=0"),
    )
    .await;
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"sealed secrets and the ACL"[..])
    );
    let batch = transport::encode_batch(&[heartbeat(1)]).expect("encode");
    assert_eq!(
        post(&node1, format!("https://{addr}{MESSAGES_PATH}"), batch).await,
        204
    );
    assert_eq!(inbox.recv().await.expect("delivered"), heartbeat(1));
    // ... but only as itself.
    let forged = transport::encode_batch(&[heartbeat(3)]).expect("encode");
    assert_eq!(
        post(&node1, format!("https://{addr}{MESSAGES_PATH}"), forged).await,
        403
    );
    assert!(inbox.try_recv().is_err());
}

fn write_cluster_env(nodes: u32) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    sealkm::dev::ensure(&sealkm::dev::DevOptions {
        dir: tmp.path().to_owned(),
        addr: "127.0.0.1:0".into(),
        nodes,
    })
    .expect("dev env");
    tmp
}

#[test]
fn dev_gives_nodes_their_own_ca_and_party_certificates_do_not_chain_to_it() {
    let env = write_cluster_env(3);
    let dir = env.path();
    let node_ca = std::fs::read(dir.join(sealkm::dev::NODE_CA_CERT)).expect("node CA");
    let party_ca = std::fs::read(dir.join(sealkm::dev::CA_CERT)).expect("party CA");
    assert_ne!(node_ca, party_ca);
    for id in 1..=3 + sealkm::dev::SPARE_NODES {
        let cfg = NodeConfig::load(&sealkm::dev::node_config(dir, id)).expect("config checks");
        let r = cfg.raft.expect("raft");
        assert_eq!(
            r.peer_name_domain.as_deref(),
            Some(sealkm::dev::DEV_PEER_DOMAIN)
        );
        // The peer certificate chains to the node CA and names the node.
        let leaf = tls::load_certs(&r.peer_listener.tls_cert).expect("cert");
        let names = tls::certificate_names(&leaf[0]);
        assert!(names.contains(&format!("node{id}.{}", sealkm::dev::DEV_PEER_DOMAIN)));
        tls::peer_server_config(
            &r.peer_listener.tls_cert,
            &r.peer_listener.tls_key,
            &r.cluster_ca,
        )
        .expect("peer TLS");
    }
    // A party's certificate is refused by a client config trusting only the node CA... and
    // the peer listener's verifier: the party's chain does not reach the node CA.
    let (gms_cert, _) = sealkm::dev::party_files(dir, "gms");
    let gms = tls::load_certs(&gms_cert).expect("gms cert");
    let node_roots = tls::load_certs(&dir.join(sealkm::dev::NODE_CA_CERT)).expect("node CA");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(node_roots[0].clone()).expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("verifier");
    let now = rustls::pki_types::UnixTime::now();
    assert!(verifier.verify_client_cert(&gms[0], &[], now).is_err());
}

#[test]
fn the_config_check_refuses_a_peer_ca_shared_with_the_parties_or_no_peer_name_domain() {
    let env = write_cluster_env(3);
    let dir = env.path();
    let path = sealkm::dev::node_config(dir, 1);
    let good = std::fs::read_to_string(&path).expect("config");
    NodeConfig::load(&path).expect("the generated config checks");
    let node_ca_line = format!("cluster_ca = \"{}\"", sealkm::dev::NODE_CA_CERT);
    assert!(good.contains(&node_ca_line));

    // The parties' CA as the peer CA: by the same path...
    std::fs::write(
        &path,
        good.replace(&node_ca_line, "cluster_ca = \"ca.pem\""),
    )
    .unwrap();
    let e = NodeConfig::load(&path).expect_err("same CA").to_string();
    assert!(e.contains("cluster_ca"), "{e}");
    // ... or a copy under another name, or a bundle that includes it.
    let bundle = [
        std::fs::read_to_string(dir.join(sealkm::dev::NODE_CA_CERT)).unwrap(),
        std::fs::read_to_string(dir.join(sealkm::dev::CA_CERT)).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("bundle.pem"), bundle).unwrap();
    std::fs::write(
        &path,
        good.replace(&node_ca_line, "cluster_ca = \"bundle.pem\""),
    )
    .unwrap();
    let e = NodeConfig::load(&path).expect_err("bundle").to_string();
    assert!(e.contains("cluster_ca"), "{e}");

    // No peer_name_domain.
    let without: String = good
        .lines()
        .filter(|l| !l.starts_with("peer_name_domain"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, without).unwrap();
    let e = NodeConfig::load(&path).expect_err("no domain").to_string();
    assert!(e.contains("peer_name_domain"), "{e}");

    // The CLI says the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealkm"))
        .args(["config", "check"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("peer_name_domain"));
}
