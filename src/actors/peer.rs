//! The peer listener (ARCHITECTURE §7): mutual TLS with the cluster CA, serving
//! - `POST /raft/v1/messages` — Raft message batches into the key store's inbox
//!   ([`crate::raft::transport`]),
//! - `GET /raft/v1/snapshots/{index}?offset=N` — snapshot file chunks
//!   ([`super::snapshot_fetch`]),
//! - `GET /raft/v1/status` — this node's [`NodeReport`] (for `sealkm cluster status`).

use actix_web::{web, App, HttpResponse, HttpServer};
use raft::eraftpb::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::store::{KeyStoreHandle, StoreStatus};
use crate::raft::transport;

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

/// Binds the peer listener; the returned server must be awaited (or spawned).
pub fn server(
    addr: &str,
    tls: rustls::ServerConfig,
    inbox: mpsc::Sender<Message>,
    store: KeyStoreHandle,
    names: transport::PeerNames,
) -> std::io::Result<actix_web::dev::Server> {
    let snap_dir = store.snap_dir().to_owned();
    let store = web::Data::new(store);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(store.clone())
            .configure(|c| transport::configure_with_identity(c, inbox.clone(), names.clone()))
            .configure(|c| super::snapshot_fetch::configure(c, snap_dir.clone()))
            .route(STATUS_PATH, web::get().to(status))
    })
    .workers(2)
    .on_connect(transport::peer_certificate)
    .bind_rustls_0_23(addr, tls)?;
    for a in server.addrs() {
        println!("sealkm: peer listening on {a}");
    }
    Ok(server.run())
}

async fn status(store: web::Data<KeyStoreHandle>) -> HttpResponse {
    let store = store.get_ref().clone();
    match web::block(move || report(&store)).await {
        Ok(r) => HttpResponse::Ok().json(r),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}
