//! `sealkm admin` and `sealkm acl`: the admin API (status, communities, certificate rotation
//! and revocation, identity revocation, the ACL of the service interfaces) over HTTPS with the
//! admin credential.

use clap::Subcommand;

use super::client::{conn_parts, Conn};
use crate::dev;

#[derive(Subcommand)]
pub enum AdminOp {
    Status,
    /// The ACL of the service interfaces.
    Acl {
        #[command(subcommand)]
        op: AclOp,
    },
    Communities,
    Rotate {
        #[arg(long)]
        community: String,
        #[arg(long, default_value_t = 365)]
        validity_days: u64,
    },
    RevokeCert {
        #[arg(long)]
        community: String,
        #[arg(long)]
        serial: u32,
    },
    RevokeIdentity {
        #[arg(long)]
        community: String,
        #[arg(long)]
        identity: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    ReinstateIdentity {
        #[arg(long)]
        community: String,
        #[arg(long)]
        identity: String,
    },
}

/// `sealkm admin acl ...`: the replicated ACL of the service interfaces.
#[derive(Subcommand)]
pub enum AclOp {
    /// Every principal with its role and readable groups.
    List,
    /// Grant a principal (a client certificate's SAN) a role and the groups it may read.
    Set {
        #[arg(long)]
        principal: String,
        /// val-server, gms or admin.
        #[arg(long)]
        role: String,
        /// A group it may read (repeat; `*` for all).
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Remove a principal's entry.
    Remove {
        #[arg(long)]
        principal: String,
    },
}

/// One admin API call: `GET` (or `POST` with `body`) `/admin/v1/<path>` with the admin
/// credential (`--token`, or the dev environment's); the status and the body.
pub async fn admin_call(
    conn: &Conn,
    post: bool,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(awc::http::StatusCode, Vec<u8>), String> {
    let (url, ca) = conn_parts(conn)?;
    let token = match conn.token.clone() {
        Some(t) => t,
        None => std::fs::read_to_string(conn.dir.join(dev::ADMIN_TOKEN))
            .map_err(|e| e.to_string())?
            .trim()
            .to_owned(),
    };
    // awc's default request timeout (5 s).
    let client = super::https_client(&ca, std::time::Duration::from_secs(5))?;
    let full = format!("{url}/admin/v1/{path}");
    let req = if post {
        client.post(full)
    } else {
        client.get(full)
    }
    .insert_header(("Authorization", format!("Bearer {token}")));
    let mut resp = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .map_err(|e| e.to_string())?;
    let bytes = resp
        .body()
        .limit(4 * 1024 * 1024)
        .await
        .map_err(|e| e.to_string())?;
    Ok((resp.status(), bytes.to_vec()))
}

/// Prints an admin API answer; a non-2xx status is the command's error.
pub fn show(status: awc::http::StatusCode, bytes: &[u8]) -> Result<(), String> {
    println!("{}", String::from_utf8_lossy(bytes));
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

pub async fn run_admin(conn: Conn, op: AdminOp) -> Result<(), String> {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let (method_post, path, body) = match &op {
        AdminOp::Status => (false, "status".to_string(), None),
        AdminOp::Acl { op: AclOp::List } => (false, "acl".to_string(), None),
        AdminOp::Acl {
            op:
                AclOp::Set {
                    principal,
                    role,
                    groups,
                },
        } => (
            true,
            "acl".to_string(),
            Some(serde_json::json!({ "principal": principal, "role": role, "groups": groups })),
        ),
        AdminOp::Acl {
            op: AclOp::Remove { principal },
        } => (
            true,
            "acl/delete".to_string(),
            Some(serde_json::json!({ "principal": principal })),
        ),
        AdminOp::Communities => (false, "communities".to_string(), None),
        AdminOp::Rotate {
            community,
            validity_days,
        } => (
            true,
            format!("communities/{}/certificates", enc(community)),
            Some(serde_json::json!({ "validity_days": validity_days })),
        ),
        AdminOp::RevokeCert { community, serial } => (
            true,
            format!(
                "communities/{}/certificates/{serial}/revoke",
                enc(community)
            ),
            None,
        ),
        AdminOp::RevokeIdentity {
            community,
            identity,
            reason,
        } => (
            true,
            format!("communities/{}/revocations", enc(community)),
            Some(serde_json::json!({ "identity": identity, "reason": reason })),
        ),
        AdminOp::ReinstateIdentity {
            community,
            identity,
        } => (
            true,
            format!("communities/{}/revocations/delete", enc(community)),
            Some(serde_json::json!({ "identity": identity })),
        ),
    };
    let (status, bytes) = admin_call(&conn, method_post, &path, body).await?;
    show(status, &bytes)
}
