//! The peer stream of the Raft transport (`GET /raft/v1/stream`, one WebSocket per sending
//! peer) over real loopback sockets with mutual TLS: a frame from a node the certificate does
//! not name closes the stream and delivers nothing, garbage closes it too, the sender opens a
//! new stream after the peer restarts, a peer without the stream route (an older node) gets
//! POSTs, and every frame carries the sender's clock.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use awc::ws;
use futures_util::{SinkExt as _, StreamExt as _};
use raft::eraftpb::{Message, MessageType};
use sealkm::clock::{OffsetClock, PeerClocks, SystemClock};
use sealkm::net::transport::{self, PeerTransport, INBOX_LEN, MESSAGES_PATH, STREAM_PATH};
use sealkm::tls::{self, DevCa};
use tokio::sync::mpsc;

#[path = "support/peer_pki.rs"]
mod peer_pki;
use peer_pki::{client_tls, pki_named as pki, Pki};

fn msg(from: u64, i: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(MessageType::MsgHeartbeat);
    m.from = from;
    m.to = 2;
    m.term = 7;
    m.commit = i;
    m
}

/// A peer listener of node 2 (names checked under `cluster.test`) at `addr`, with its inbox
/// and the clocks it records.
fn listen_at(
    server_pki: &Pki,
    addr: &str,
) -> (
    actix_web::dev::ServerHandle,
    String,
    mpsc::Receiver<Message>,
    Arc<PeerClocks>,
) {
    let tls = tls::peer_server_config(&server_pki.cert, &server_pki.key, &server_pki.ca)
        .expect("server tls");
    let (tx, inbox) = mpsc::channel(INBOX_LEN);
    let clocks = Arc::new(PeerClocks::new(Arc::new(SystemClock)));
    let data = web::Data::from(clocks.clone());
    let names = transport::PeerNames(Some("cluster.test".into()));
    let server = HttpServer::new(move || {
        let (tx, names) = (tx.clone(), names.clone());
        App::new()
            .wrap(actix_web::middleware::from_fn(
                transport::require_node_identity,
            ))
            .app_data(web::Data::new(names.clone()))
            .app_data(data.clone())
            .configure(move |c| transport::configure_with_identity(c, tx, names))
    })
    .workers(1)
    .on_connect(tls::peer_certificate)
    .bind_rustls_0_23(addr, tls)
    .expect("bind");
    let addr = server.addrs()[0].to_string();
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (handle, addr, inbox, clocks)
}

async fn recv_n(rx: &mut mpsc::Receiver<Message>, n: usize) -> Vec<Message> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a message within 10 s")
            .expect("inbox open");
        got.push(m);
    }
    got
}

/// Opens a raw stream as the holder of `pki`.
async fn open(
    pki: &Pki,
    addr: &str,
) -> Result<actix_codec::Framed<awc::BoxedSocket, ws::Codec>, awc::error::WsClientError> {
    let client = transport::peer_client(client_tls(pki), Duration::from_secs(10));
    client
        .ws(format!("wss://{addr}{STREAM_PATH}"))
        .connect()
        .await
        .map(|(_, framed)| framed)
}

/// The next frame the receiver sends back (a close is what is expected).
async fn answer(conn: &mut actix_codec::Framed<awc::BoxedSocket, ws::Codec>) -> Option<ws::Frame> {
    tokio::time::timeout(Duration::from_secs(10), conn.next())
        .await
        .expect("an answer within 10 s")
        .and_then(Result::ok)
}

fn frame(msgs: &[Message]) -> ws::Message {
    let batch = transport::encode_batch(msgs).expect("encode");
    ws::Message::Binary(transport::encode_frame(0, &batch).into())
}

#[actix_rt::test]
async fn a_stream_may_only_carry_messages_of_the_node_its_certificate_names() {
    let ca = DevCa::generate("cluster").expect("ca");
    let node1 = pki(&ca, &["node1.cluster.test"]);
    let node2 = pki(&ca, &["node2.cluster.test"]);
    let (_server, addr, mut inbox, _) = listen_at(&node2, "127.0.0.1:0");

    // A frame that mixes node 1's message with one from node 3: closed, nothing delivered.
    let mut conn = open(&node1, &addr).await.expect("stream");
    conn.send(frame(&[msg(1, 5), msg(3, 5)]))
        .await
        .expect("write");
    match answer(&mut conn).await {
        Some(ws::Frame::Close(Some(reason))) => assert_eq!(reason.code, ws::CloseCode::Policy),
        other => panic!("expected a policy close, got {other:?}"),
    }
    assert!(inbox.try_recv().is_err(), "nothing of a forged frame");

    // Node 1's own messages go through a new stream, in order.
    let mut conn = open(&node1, &addr).await.expect("stream");
    conn.send(frame(&[msg(1, 6), msg(1, 7)]))
        .await
        .expect("write");
    conn.send(frame(&[msg(1, 8)])).await.expect("write");
    assert_eq!(
        recv_n(&mut inbox, 3).await,
        [msg(1, 6), msg(1, 7), msg(1, 8)]
    );

    // A cluster certificate that names no node gets no stream at all.
    let anonymous = pki(&ca, &[]);
    match open(&anonymous, &addr).await {
        Err(awc::error::WsClientError::InvalidResponseStatus(s)) => assert_eq!(s.as_u16(), 403),
        Err(e) => panic!("expected 403, got {e}"),
        Ok(_) => panic!("expected 403, got a stream"),
    }
}

#[actix_rt::test]
async fn garbage_on_a_stream_closes_it_and_delivers_nothing() {
    let ca = DevCa::generate("cluster").expect("ca");
    let node1 = pki(&ca, &["node1.cluster.test"]);
    let node2 = pki(&ca, &["node2.cluster.test"]);
    let (_server, addr, mut inbox, _) = listen_at(&node2, "127.0.0.1:0");

    let mut truncated = transport::encode_batch(&[msg(1, 1), msg(1, 2)]).expect("encode");
    truncated.pop();
    for bad in [
        ws::Message::Binary(vec![1, 2, 3].into()),
        ws::Message::Binary(transport::encode_frame(0, &[]).into()),
        ws::Message::Binary(transport::encode_frame(0, &truncated).into()),
        ws::Message::Binary(transport::encode_frame(0, &[0xff; 64]).into()),
        ws::Message::Text("hello".into()),
    ] {
        let mut conn = open(&node1, &addr).await.expect("stream");
        conn.send(bad).await.expect("write");
        match answer(&mut conn).await {
            Some(ws::Frame::Close(Some(reason))) => {
                assert_eq!(reason.code, ws::CloseCode::Protocol)
            }
            other => panic!("expected a protocol close, got {other:?}"),
        }
    }
    assert!(inbox.try_recv().is_err());
    // A ping is answered, and the stream stays open.
    let mut conn = open(&node1, &addr).await.expect("stream");
    conn.send(ws::Message::Ping("p".into()))
        .await
        .expect("ping");
    assert_eq!(answer(&mut conn).await, Some(ws::Frame::Pong("p".into())));
    conn.send(frame(&[msg(1, 9)])).await.expect("write");
    assert_eq!(recv_n(&mut inbox, 1).await, [msg(1, 9)]);
}

#[actix_rt::test]
async fn the_sender_opens_a_new_stream_after_the_peer_restarts() {
    let ca = DevCa::generate("cluster").expect("ca");
    let node1 = pki(&ca, &["node1.cluster.test"]);
    let node2 = pki(&ca, &["node2.cluster.test"]);
    let (server, addr, mut inbox, _) = listen_at(&node2, "127.0.0.1:0");
    let t = PeerTransport::new(client_tls(&node1), [(2, addr.clone())]);
    t.send(2, msg(1, 1)).expect("queued");
    assert_eq!(recv_n(&mut inbox, 1).await, [msg(1, 1)]);

    // The peer goes away (its stream with it) and comes back on the same address.
    server.stop(false).await;
    let (_server, _, mut inbox, _) = listen_at(&node2, &addr);
    // Raft retransmits what a broken stream lost; here, a message every 20 ms until one
    // arrives through a new stream.
    let mut i = 2;
    let got = loop {
        t.send(2, msg(1, i)).expect("queued");
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(20), inbox.recv()).await {
            break m;
        }
        i += 1;
        assert!(i < 500, "no message through a new stream");
    };
    assert_eq!(got.from, 1);
    // From then on, in order, on that stream.
    let next = got.commit + 100;
    t.send(2, msg(1, next)).expect("queued");
    let rest = recv_n(&mut inbox, (i - got.commit + 1) as usize).await;
    assert_eq!(rest.last(), Some(&msg(1, next)));
}

#[actix_rt::test]
async fn a_peer_without_the_stream_route_gets_posts() {
    let ca = DevCa::generate("cluster").expect("ca");
    let node1 = pki(&ca, &["node1.cluster.test"]);
    let node2 = pki(&ca, &["node2.cluster.test"]);
    // An older node: only `POST /raft/v1/messages`.
    let tls = tls::peer_server_config(&node2.cert, &node2.key, &node2.ca).expect("server tls");
    let (tx, mut inbox) = mpsc::channel::<Message>(INBOX_LEN);
    let server = HttpServer::new(move || {
        let tx = tx.clone();
        App::new().route(
            MESSAGES_PATH,
            web::post().to(move |body: web::Bytes| {
                let tx = tx.clone();
                async move {
                    for m in transport::decode_batch(&body).expect("a valid batch") {
                        tx.send(m).await.expect("inbox");
                    }
                    HttpResponse::NoContent().finish()
                }
            }),
        )
    })
    .workers(1)
    .bind_rustls_0_23("127.0.0.1:0", tls)
    .expect("bind");
    let addr = server.addrs()[0].to_string();
    actix_rt::spawn(server.run());

    let t = PeerTransport::new(client_tls(&node1), [(2, addr)]);
    let sent: Vec<_> = (0..5).map(|i| msg(1, i)).collect();
    assert!(t.send_all(sent.clone()).is_empty());
    assert_eq!(recv_n(&mut inbox, 5).await, sent);
    // Counted once the last POST's answer is back.
    let mut stats = t.stats(2).expect("peer 2");
    for _ in 0..500 {
        if stats.delivered == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = t.stats(2).expect("peer 2");
    }
    assert_eq!((stats.delivered, stats.failed), (5, 0));
    assert!(t.take_unreachable().is_empty());
}

#[actix_rt::test]
async fn every_frame_carries_the_sender_clock() {
    let ca = DevCa::generate("cluster").expect("ca");
    let node1 = pki(&ca, &["node1.cluster.test"]);
    let node2 = pki(&ca, &["node2.cluster.test"]);
    let (_server, addr, mut inbox, clocks) = listen_at(&node2, "127.0.0.1:0");
    let mut t = PeerTransport::new(client_tls(&node1), []);
    // Node 1's clock is 100 s ahead.
    t.set_clock(Arc::new(OffsetClock(100)));
    t.add_peer(2, addr);
    t.send(2, msg(1, 1)).expect("queued");
    recv_n(&mut inbox, 1).await;
    let offset = clocks
        .offset(1, 60_000)
        .expect("node 1's clock was recorded");
    assert!((99_000..=100_000).contains(&offset), "offset {offset} ms");
}
