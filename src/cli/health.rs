//! `sealkm health`: asks a node's `/healthz` (or another URL) over HTTPS and succeeds on a 2xx
//! answer. The container image's `HEALTHCHECK` runs it, so the image needs no other program.

use std::path::Path;
use std::time::Duration;

/// How long the check waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `Ok` with the status line when `url` answers 2xx, else why not.
pub async fn run(url: &str, ca: &Path) -> Result<String, String> {
    let client = super::https_client(ca, TIMEOUT)?;
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    if status.is_success() {
        Ok(format!("{url}: {status}"))
    } else {
        Err(format!("{url}: {status}"))
    }
}
