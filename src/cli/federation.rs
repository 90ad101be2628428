//! `sealkm federation`: partner KMS certificates over the admin API — the manual exchange of
//! TS 33.180 Annex L.3.2 (`export` ours, hand the file to the partner operator, `import`
//! theirs), `list`, `revoke`, `remove`, the domain `lookup` of a user URI, and KM-E's
//! `approve`, `refresh` and `status`.

use std::path::PathBuf;

use clap::Subcommand;

use super::admin::{admin_call, show};
use super::client::Conn;

#[derive(Subcommand)]
pub enum FederationOp {
    /// Write our issuing KMS certificate (Role Root, with KmsDomainList) as an XML document.
    Export {
        /// The community (KMS URI); default: the default community.
        #[arg(long)]
        community: Option<String>,
        /// Write it here (default: standard output).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Import a partner's KmsCertificate document (it is checked first).
    Import {
        #[arg(long)]
        file: PathBuf,
        /// Share it with this community's CertCache only (repeat; default: every community).
        #[arg(long = "community")]
        communities: Vec<String>,
        /// The partner's keys change (a rotation): required when it already has a live
        /// certificate with other keys.
        #[arg(long)]
        rotate: bool,
    },
    /// The partner certificates.
    List,
    /// Revoke a partner certificate (served Revoked=true until its ValidTo).
    Revoke {
        #[arg(long)]
        id: String,
    },
    /// Forget a partner certificate.
    Remove {
        #[arg(long)]
        id: String,
    },
    /// Which KMS serves a user URI (our communities, then the partners).
    Lookup {
        #[arg(long)]
        uri: String,
    },
    /// KM-E: approve a partner certificate the Federator staged (see `list`, "pending").
    Approve {
        #[arg(long)]
        id: String,
    },
    /// KM-E: fetch every partner's certificates now (ask the leader).
    Refresh,
    /// KM-E: each partner's last sync, last error and failures, and the pending count.
    Status,
}

pub async fn run(conn: Conn, op: FederationOp) -> Result<(), String> {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let (status, bytes) = match &op {
        FederationOp::Export { community, file } => {
            let path = match community {
                Some(c) => format!("federation/export?community={}", enc(c)),
                None => "federation/export".to_owned(),
            };
            let (status, bytes) = admin_call(&conn, false, &path, None).await?;
            if let (true, Some(f)) = (status.is_success(), file) {
                std::fs::write(f, &bytes).map_err(|e| format!("{}: {e}", f.display()))?;
                println!("KMS certificate written to {}", f.display());
                return Ok(());
            }
            (status, bytes)
        }
        FederationOp::Import {
            file,
            communities,
            rotate,
        } => {
            let document =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let body = serde_json::json!({
                "document": document, "communities": communities, "rotate": rotate,
            });
            admin_call(&conn, true, "federation/certificates", Some(body)).await?
        }
        FederationOp::List => admin_call(&conn, false, "federation/certificates", None).await?,
        FederationOp::Revoke { id } => {
            let body = serde_json::json!({ "id": id });
            admin_call(&conn, true, "federation/certificates/revoke", Some(body)).await?
        }
        FederationOp::Remove { id } => {
            let body = serde_json::json!({ "id": id });
            admin_call(&conn, true, "federation/certificates/delete", Some(body)).await?
        }
        FederationOp::Approve { id } => {
            let body = serde_json::json!({ "id": id });
            admin_call(&conn, true, "federation/pending/approve", Some(body)).await?
        }
        FederationOp::Refresh => admin_call(&conn, true, "federation/refresh", None).await?,
        FederationOp::Status => admin_call(&conn, false, "federation/status", None).await?,
        FederationOp::Lookup { uri } => {
            let path = format!("federation/lookup?uri={}", enc(uri));
            admin_call(&conn, false, &path, None).await?
        }
    };
    show(status, &bytes)
}
