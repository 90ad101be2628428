//! The peer listener (ARCHITECTURE §7), the key store's network endpoint: mutual TLS with the cluster (node) CA, serving
//! - `GET /raft/v1/stream` — a peer's long-lived stream of Raft message batches (a WebSocket)
//!   and `POST /raft/v1/messages` — one batch (older nodes), both into the key store's inbox
//!   ([`crate::net::transport`]),
//! - `GET /raft/v1/snapshots/{index}?offset=N` — snapshot file chunks
//!   ([`crate::net::snapshot_fetch`]),
//! - `GET /raft/v1/status` — this node's [`NodeReport`] (for `sealkm cluster status`).
//!
//! Every route, and any path that matches none, first passes
//! [`transport::require_node_identity`]: the client certificate must name a node
//! (`node<N>.<peer_name_domain>`), or the request is refused with 403 before its body is read
//! or any state is touched. A certificate of the CA that names a party gets nothing.

use actix_web::{web, App, HttpResponse, HttpServer};
use raft::eraftpb::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::net::transport;
use crate::store::{KeyStoreHandle, StoreStatus};

pub const STATUS_PATH: &str = "/raft/v1/status";

/// One node's view, as `sealkm cluster status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeReport {
    #[serde(flatten)]
    pub status: StoreStatus,
    /// Hex SHA-256 over the whole replicated state at `applied`.
    pub digest: String,
}

/// This node's report (the digest is computed over the whole state).
pub fn report(store: &KeyStoreHandle) -> NodeReport {
    let status = store.status();
    let digest = store
        .state()
        .digest()
        .map(hex::encode)
        .unwrap_or_else(|e| format!("error: {e}"));
    NodeReport { status, digest }
}

/// Binds the peer listener; the returned server must be awaited (or spawned). `domain` is
/// the `peer_name_domain`: only certificates naming `node<N>.<domain>` are served.
pub fn server(
    addr: &str,
    tls: rustls::ServerConfig,
    inbox: mpsc::Sender<Message>,
    store: KeyStoreHandle,
    domain: String,
) -> std::io::Result<actix_web::dev::Server> {
    bind(addr, tls, inbox, store, domain).map(|(server, _)| server)
}

/// Like [`server`], and also returns the bound addresses (for a listener on port 0).
pub fn bind(
    addr: &str,
    tls: rustls::ServerConfig,
    inbox: mpsc::Sender<Message>,
    store: KeyStoreHandle,
    domain: String,
) -> std::io::Result<(actix_web::dev::Server, Vec<std::net::SocketAddr>)> {
    let names = transport::PeerNames(Some(domain));
    let snap_dir = store.snap_dir().to_owned();
    let clocks = web::Data::from(store.peer_clocks().clone());
    let store = web::Data::new(store);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(
                transport::require_node_identity,
            ))
            .app_data(web::Data::new(names.clone()))
            .app_data(store.clone())
            .app_data(clocks.clone())
            .configure(|c| transport::configure_with_identity(c, inbox.clone(), names.clone()))
            .configure(|c| crate::net::snapshot_fetch::configure(c, snap_dir.clone()))
            .route(STATUS_PATH, web::get().to(status))
    })
    .workers(2)
    .on_connect(crate::tls::peer_certificate)
    .bind_rustls_0_23(addr, tls)?;
    let addrs = server.addrs();
    for a in &addrs {
        println!("sealkm: peer listening on {a}");
    }
    Ok((server.run(), addrs))
}

async fn status(store: web::Data<KeyStoreHandle>) -> HttpResponse {
    let store = store.get_ref().clone();
    match web::block(move || report(&store)).await {
        Ok(r) => HttpResponse::Ok().json(r),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}
