//! The Raft peer transport over real loopback sockets with mutual TLS: delivery in order,
//! isolation of a dead peer, queue overflow, refusal of unauthenticated clients, bad bodies.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer};
use raft::eraftpb::{Entry, Message, MessageType};
use sealkm::net::transport::{
    self, PeerTransport, SendError, INBOX_LEN, MAX_BATCH_MESSAGES, MESSAGES_PATH, PEER_QUEUE_LEN,
};
use sealkm::tls::{self, DevCa};
use tokio::sync::mpsc;

#[path = "support/peer_pki.rs"]
mod peer_pki;
use peer_pki::{client_tls, pki_named, Pki};

fn pki(ca: &DevCa) -> Pki {
    pki_named(ca, &[])
}

/// Starts a peer listener on an ephemeral port; returns "127.0.0.1:port" and its inbox.
fn listen(pki: &Pki) -> (String, mpsc::Receiver<Message>) {
    let tls = tls::peer_server_config(&pki.cert, &pki.key, &pki.ca).expect("server tls");
    let (tx, rx) = mpsc::channel(INBOX_LEN);
    let server = HttpServer::new(move || {
        let tx = tx.clone();
        App::new().configure(move |c| transport::configure(c, tx))
    })
    .workers(1)
    .bind_rustls_0_23("127.0.0.1:0", tls)
    .expect("bind");
    let addr = server.addrs()[0].to_string();
    actix_rt::spawn(server.run());
    (addr, rx)
}

fn msg(to: u64, i: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(MessageType::MsgAppend);
    m.from = 1;
    m.to = to;
    m.term = 7;
    m.index = i;
    let e = Entry {
        index: i + 1,
        term: 7,
        data: format!("entry {i}").into_bytes().into(),
        ..Default::default()
    };
    m.entries = vec![e].into();
    m
}

async fn recv_n(rx: &mut mpsc::Receiver<Message>, n: usize) -> Vec<Message> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        got.push(rx.recv().await.expect("inbox open"));
    }
    got
}

#[actix_rt::test]
async fn two_endpoints_exchange_batches_in_order() {
    let ca = DevCa::generate("cluster").expect("ca");
    let (a, b) = (pki(&ca), pki(&ca));
    let (addr_a, mut inbox_a) = listen(&a);
    let (addr_b, mut inbox_b) = listen(&b);
    let from_a = PeerTransport::new(client_tls(&a), [(2, addr_b)]);
    let from_b = PeerTransport::new(client_tls(&b), [(1, addr_a)]);

    // More than one batch's worth, so the order across POSTs is covered too.
    let n = 3 * MAX_BATCH_MESSAGES as u64 + 5;
    let to_b: Vec<_> = (0..n).map(|i| msg(2, i)).collect();
    let to_a: Vec<_> = (0..n).map(|i| msg(1, 1000 + i)).collect();
    assert!(from_a.send_all(to_b.clone()).is_empty());
    assert!(from_b.send_all(to_a.clone()).is_empty());

    assert_eq!(recv_n(&mut inbox_b, n as usize).await, to_b);
    assert_eq!(recv_n(&mut inbox_a, n as usize).await, to_a);
    assert!(from_a.take_unreachable().is_empty());
}

#[actix_rt::test]
async fn dead_peer_does_not_delay_live_peer() {
    let ca = DevCa::generate("cluster").expect("ca");
    let (a, b) = (pki(&ca), pki(&ca));
    let (addr_b, mut inbox_b) = listen(&b);
    // The dead peer: the kernel completes TCP handshakes on this socket but nobody ever
    // accepts or answers TLS, so a POST to it stays pending until its timeout.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr_dead = dead.local_addr().expect("addr").to_string();

    let t = PeerTransport::with_timeout(
        client_tls(&a),
        [(3, addr_dead), (2, addr_b)],
        Duration::from_secs(120),
    );
    // The dead peer's messages go first.
    for i in 0..10 {
        t.send(3, msg(3, i)).expect("queued");
    }
    let to_b: Vec<_> = (0..10).map(|i| msg(2, i)).collect();
    assert!(t.send_all(to_b.clone()).is_empty());

    assert_eq!(recv_n(&mut inbox_b, to_b.len()).await, to_b);
    // The live peer has everything, the dead peer's batch has neither arrived nor failed.
    let dead_stats = t.stats(3).expect("peer 3");
    assert_eq!((dead_stats.delivered, dead_stats.failed), (0, 0));
    assert!(t.take_unreachable().is_empty());
    drop(dead);
}

#[actix_rt::test]
async fn full_queue_drops_and_reports() {
    let ca = DevCa::generate("cluster").expect("ca");
    let a = pki(&ca);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr_dead = dead.local_addr().expect("addr").to_string();
    let t = PeerTransport::with_timeout(client_tls(&a), [(3, addr_dead)], Duration::from_secs(120));

    // The sender task may take one batch off the queue into its pending POST; beyond that
    // the queue fills up and every further send is refused.
    let total = PEER_QUEUE_LEN + MAX_BATCH_MESSAGES + 10;
    let mut refused = 0;
    for i in 0..total as u64 {
        match t.send(3, msg(3, i)) {
            Ok(()) => {}
            Err(e) => {
                assert_eq!(e, SendError::QueueFull(3));
                refused += 1;
            }
        }
    }
    assert!(refused >= 10, "refused {refused}");
    assert_eq!(t.stats(3).expect("peer 3").dropped, refused);
    assert_eq!(t.take_unreachable().into_iter().collect::<Vec<_>>(), [3]);
    // Reported once; the set is drained.
    assert!(t.take_unreachable().is_empty());
    assert_eq!(t.send(9, msg(9, 0)), Err(SendError::UnknownPeer(9)));
    drop(dead);
}

async fn post(client: &awc::Client, addr: &str, body: Vec<u8>) -> Result<u16, String> {
    client
        .post(format!("https://{addr}{MESSAGES_PATH}"))
        .send_body(body)
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

fn awc_client(tls: rustls::ClientConfig) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(tls)))
        .timeout(Duration::from_secs(30))
        .finish()
}

#[actix_rt::test]
async fn unauthenticated_clients_are_refused_at_tls() {
    let ca = DevCa::generate("cluster").expect("ca");
    let (a, b) = (pki(&ca), pki(&ca));
    let (addr_b, mut inbox_b) = listen(&b);
    let body = transport::encode_batch(&[msg(2, 1)]).expect("encode");

    // No client certificate (trusting the cluster CA for the server).
    let no_cert = awc_client(tls::client_config(&a.ca).expect("tls"));
    assert!(post(&no_cert, &addr_b, body.clone()).await.is_err());

    // A certificate from another CA.
    let other = DevCa::generate("other").expect("ca");
    let mallory = pki(&other);
    let foreign =
        awc_client(tls::peer_client_config(&mallory.cert, &mallory.key, &a.ca).expect("tls"));
    assert!(post(&foreign, &addr_b, body.clone()).await.is_err());

    // The same request from a cluster member goes through, and only it reaches the inbox.
    let member = awc_client(tls::peer_client_config(&a.cert, &a.key, &a.ca).expect("tls"));
    assert_eq!(post(&member, &addr_b, body).await, Ok(204));
    assert_eq!(recv_n(&mut inbox_b, 1).await, [msg(2, 1)]);
    assert!(inbox_b.try_recv().is_err());
}

#[actix_rt::test]
async fn a_member_may_only_speak_for_the_node_its_certificate_names() {
    let ca = DevCa::generate("cluster").expect("ca");
    let node1 = pki_named(&ca, &["node1.cluster.test"]);
    let b = pki_named(&ca, &["node2.cluster.test"]);
    let tls = tls::peer_server_config(&b.cert, &b.key, &b.ca).expect("server tls");
    let (tx, mut inbox) = mpsc::channel(INBOX_LEN);
    let names = transport::PeerNames(Some("cluster.test".into()));
    let server = HttpServer::new(move || {
        let (tx, names) = (tx.clone(), names.clone());
        App::new().configure(move |c| transport::configure_with_identity(c, tx, names))
    })
    .workers(1)
    .on_connect(sealkm::tls::peer_certificate)
    .bind_rustls_0_23("127.0.0.1:0", tls)
    .expect("bind");
    let addr = server.addrs()[0].to_string();
    actix_rt::spawn(server.run());

    let as_node1 =
        awc_client(tls::peer_client_config(&node1.cert, &node1.key, &node1.ca).expect("tls"));
    let mut forged = msg(2, 1);
    forged.from = 3;
    let mixed = transport::encode_batch(&[msg(2, 5), forged]).expect("encode");
    assert_eq!(post(&as_node1, &addr, mixed).await, Ok(403));
    assert!(
        inbox.try_recv().is_err(),
        "nothing of a forged batch is delivered"
    );
    let own = transport::encode_batch(&[msg(2, 6)]).expect("encode");
    assert_eq!(post(&as_node1, &addr, own).await, Ok(204));
    assert_eq!(recv_n(&mut inbox, 1).await, [msg(2, 6)]);
    // A cluster certificate that names no node speaks for none.
    let anonymous = pki(&ca);
    let anon = awc_client(
        tls::peer_client_config(&anonymous.cert, &anonymous.key, &anonymous.ca).expect("tls"),
    );
    let body = transport::encode_batch(&[msg(2, 7)]).expect("encode");
    assert_eq!(post(&anon, &addr, body).await, Ok(403));
}

#[actix_rt::test]
async fn garbage_bodies_get_400() {
    let ca = DevCa::generate("cluster").expect("ca");
    let (a, b) = (pki(&ca), pki(&ca));
    let (addr_b, mut inbox_b) = listen(&b);
    let member = awc_client(tls::peer_client_config(&a.cert, &a.key, &a.ca).expect("tls"));

    let mut truncated = transport::encode_batch(&[msg(2, 1), msg(2, 2)]).expect("encode");
    truncated.pop();
    let too_many: Vec<_> = (0..=MAX_BATCH_MESSAGES as u64).map(|i| msg(2, i)).collect();
    for body in [
        Vec::new(),
        b"GET / HTTP/1.1".to_vec(),
        vec![0, 0, 0, 1, 0x0f],
        vec![0xff; 64],
        truncated,
        transport::encode_batch(&too_many).expect("encode"),
    ] {
        assert_eq!(post(&member, &addr_b, body).await, Ok(400));
    }
    // Nothing of the refused batches was delivered, not even their valid prefix.
    assert!(inbox_b.try_recv().is_err());
}

#[actix_rt::test]
async fn full_inbox_answers_503() {
    let ca = DevCa::generate("cluster").expect("ca");
    let (a, b) = (pki(&ca), pki(&ca));
    let tls_b = tls::peer_server_config(&b.cert, &b.key, &b.ca).expect("server tls");
    // Room for one message only, and a batch of two: all or nothing, so nothing.
    let (tx, mut inbox_b) = mpsc::channel(1);
    let server = HttpServer::new(move || {
        let tx = tx.clone();
        App::new().configure(move |c| transport::configure(c, tx))
    })
    .workers(1)
    .bind_rustls_0_23("127.0.0.1:0", tls_b)
    .expect("bind");
    let addr_b = server.addrs()[0].to_string();
    actix_rt::spawn(server.run());

    let member = awc_client(tls::peer_client_config(&a.cert, &a.key, &a.ca).expect("tls"));
    let two = transport::encode_batch(&[msg(2, 1), msg(2, 2)]).expect("encode");
    assert_eq!(post(&member, &addr_b, two).await, Ok(503));
    assert!(inbox_b.try_recv().is_err());
    let one = transport::encode_batch(&[msg(2, 3)]).expect("encode");
    assert_eq!(post(&member, &addr_b, one).await, Ok(204));
    assert_eq!(recv_n(&mut inbox_b, 1).await, [msg(2, 3)]);
}
