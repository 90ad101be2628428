//! Snapshot transfer between peers (ARCHITECTURE §5): the state grows without bound, so a
//! snapshot never travels whole in one message. The Raft snapshot message carries only a
//! [`SnapshotDescriptor`]; the receiving node pulls the file from the sender's peer listener
//! in chunks of at most [`MAX_CHUNK_BYTES`] (`GET /raft/v1/snapshots/{index}?offset=N`, mTLS)
//! into a [`SnapshotReceiver`], which checks size and SHA-256 before the file is used.
//!
//! A failed chunk is asked again at the same offset (up to [`CHUNK_ATTEMPTS`] times); a fetch
//! that still fails keeps what it received, and the next fetch of the same snapshot continues
//! from there. Serving a chunk leases the file against pruning
//! ([`crate::state::snapshot::SERVE_LEASE`]).

use std::future::Future;
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
/// Requests for one chunk before the fetch gives up (its progress is kept).
pub const CHUNK_ATTEMPTS: u32 = 3;
/// Pause before asking a failed chunk again (times the attempt number).
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Downloads snapshot `index` described by `descriptor` from the peer at `addr` into `dir`,
/// continuing a partial download of the same snapshot if one is there.
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
    let client = crate::net::transport::peer_client(tls, CHUNK_TIMEOUT);
    let mut rx = SnapshotReceiver::new(dir, &desc).map_err(|e| e.to_string())?;
    if rx.received() > 0 {
        tracing::info!(index, offset = rx.received(), "resuming a snapshot fetch");
    }
    let get = |offset: u64| {
        let url = format!("https://{addr}{SNAPSHOTS_PATH}/{index}?offset={offset}");
        let client = &client;
        async move {
            let mut resp = client.get(&url).send().await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("{url}: {}", resp.status()));
            }
            let body = resp
                .body()
                .limit(MAX_CHUNK_BYTES)
                .await
                .map_err(|e| e.to_string())?;
            Ok(body.to_vec())
        }
    };
    pull(&mut rx, desc.size, RETRY_PAUSE, get).await?;
    rx.finish().map_err(|e| e.to_string())?;
    Ok(())
}

/// Fills `rx` up to `size` bytes with the chunks `get(offset)` returns, starting at what `rx`
/// already holds. A failed or empty chunk is asked again at the same offset, at most
/// [`CHUNK_ATTEMPTS`] times in a row, `pause` × attempt apart.
async fn pull<F, Fut>(
    rx: &mut SnapshotReceiver,
    size: u64,
    pause: Duration,
    mut get: F,
) -> Result<(), String>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, String>>,
{
    let mut failures = 0u32;
    while rx.received() < size {
        let offset = rx.received();
        let err = match get(offset).await {
            Ok(body) if body.is_empty() => format!("empty chunk at {offset} before the end"),
            Ok(body) => {
                rx.write_chunk(offset, &body).map_err(|e| e.to_string())?;
                failures = 0;
                continue;
            }
            Err(e) => e,
        };
        failures += 1;
        if failures >= CHUNK_ATTEMPTS {
            return Err(err);
        }
        tracing::debug!(offset, error = %err, "snapshot chunk failed, asking again");
        if !pause.is_zero() {
            actix_rt::time::sleep(pause * failures).await;
        }
    }
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

#[cfg(test)]
mod tests;
