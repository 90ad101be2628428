//! Snapshot transfer between peers (ARCHITECTURE §5): the state grows without bound, so a
//! snapshot never travels whole in one message. The Raft snapshot message carries only a
//! [`SnapshotDescriptor`]; the receiving node pulls the file from the sender's peer listener
//! in chunks of at most [`MAX_CHUNK_BYTES`] (`GET /raft/v1/snapshots/{index}?offset=N`, mTLS)
//! into a [`SnapshotReceiver`], which checks size and SHA-256 before the file is used.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::state::snapshot::{self, SnapshotDescriptor, SnapshotReceiver, MAX_CHUNK_BYTES};

/// The path prefix peers fetch snapshot chunks from.
pub const SNAPSHOTS_PATH: &str = "/raft/v1/snapshots";
/// Time for one chunk request.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);

/// Downloads snapshot `index` described by `descriptor` from the peer at `addr` into `dir`.
pub async fn fetch(
    tls: Arc<rustls::ClientConfig>,
    addr: &str,
    dir: &Path,
    index: u64,
    descriptor: &[u8],
) -> Result<(), String> {
    let desc = SnapshotDescriptor::decode(descriptor).map_err(|e| e.to_string())?;
    if desc.index != index {
        return Err(format!("descriptor of {} for snapshot {index}", desc.index));
    }
    let client = crate::raft::transport::peer_client(tls, CHUNK_TIMEOUT);
    let mut rx = SnapshotReceiver::new(dir, &desc).map_err(|e| e.to_string())?;
    let mut offset = 0u64;
    while offset < desc.size {
        let url = format!("https://{addr}{SNAPSHOTS_PATH}/{index}?offset={offset}");
        let mut resp = client.get(&url).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{url}: {}", resp.status()));
        }
        let body = resp
            .body()
            .limit(MAX_CHUNK_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        if body.is_empty() {
            return Err(format!("{url}: empty chunk before the end"));
        }
        rx.write_chunk(offset, &body).map_err(|e| e.to_string())?;
        offset += body.len() as u64;
    }
    rx.finish().map_err(|e| e.to_string())?;
    Ok(())
}

#[derive(Deserialize)]
struct ChunkQuery {
    offset: u64,
}

/// Registers the chunk endpoint on the peer listener; files come from `dir`.
pub fn configure(cfg: &mut web::ServiceConfig, dir: std::path::PathBuf) {
    cfg.app_data(web::Data::new(SnapDir(dir))).route(
        &format!("{SNAPSHOTS_PATH}/{{index}}"),
        web::get().to(serve_chunk),
    );
}

struct SnapDir(std::path::PathBuf);

async fn serve_chunk(
    dir: web::Data<SnapDir>,
    index: web::Path<u64>,
    q: web::Query<ChunkQuery>,
) -> HttpResponse {
    let (index, offset) = (index.into_inner(), q.offset);
    let dir = dir.0.clone();
    let res = web::block(move || snapshot::read_chunk(&dir, index, offset, MAX_CHUNK_BYTES)).await;
    match res {
        Ok(Ok(bytes)) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(bytes),
        Ok(Err(e)) => HttpResponse::NotFound().body(e.to_string()),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}
