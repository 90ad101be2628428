//! `sealkm capif`: this KMS as a CAPIF provider (TS 29.549 clause 8, TS 29.222).
//!
//! - `register` talks to the CCF directly (AMF role, `Api_Provider_Management`): it makes a key
//!   and a CSR for each of the AEF, APF and AMF roles, POSTs the registration with the
//!   onboarding secret, and writes the keys (mode 0600), the certificates the CCF issued and
//!   `registration.json` to `--out-dir`, then prints the `[capif]` lines to add;
//! - `publish`, `unpublish`, `status` and `reinstate` (lift a revocation) ask a node over the
//!   admin API: the node speaks to the
//!   CCF with its `[capif]` settings and keeps the CCF's `apiId` in the replicated state, so
//!   any node answers for the cluster.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{json, Value};

use super::admin::{admin_call, show};
use super::client::{save_private, Conn};

#[derive(Subcommand)]
pub enum CapifOp {
    /// Provider registration at the CCF (directly; AEF, APF and AMF keys and CSRs).
    Register {
        /// The CCF's base URL (`https://host:port`).
        #[arg(long)]
        ccf_url: String,
        /// The CCF's CA (PEM).
        #[arg(long)]
        ccf_ca: PathBuf,
        /// The onboarding secret the CCF gave this provider (`regSec`).
        #[arg(long)]
        reg_sec: String,
        /// Where keys, certificates and registration.json go.
        #[arg(long)]
        out_dir: PathBuf,
        /// `apiProvDomInfo`.
        #[arg(long, default_value = "sealkm")]
        domain: String,
    },
    /// Publish ss-kir to the CCF (or update the publication); idempotent.
    Publish {
        #[command(flatten)]
        conn: Conn,
    },
    /// Withdraw the publication.
    Unpublish {
        #[command(flatten)]
        conn: Conn,
    },
    /// Lift the CCF's revocation of an invoker (once the CCF authorised it again).
    Reinstate {
        #[arg(long)]
        invoker: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// CCF, ids, the apiId of ss-kir and the node's invocation log spool.
    Status {
        #[command(flatten)]
        conn: Conn,
    },
}

pub async fn run(op: CapifOp) -> Result<(), String> {
    let (status, bytes) = match op {
        CapifOp::Register {
            ccf_url,
            ccf_ca,
            reg_sec,
            out_dir,
            domain,
        } => return register(&ccf_url, &ccf_ca, &reg_sec, &out_dir, &domain).await,
        CapifOp::Publish { conn } => admin_call(&conn, true, "capif/publish", None).await?,
        CapifOp::Unpublish { conn } => admin_call(&conn, true, "capif/unpublish", None).await?,
        CapifOp::Status { conn } => admin_call(&conn, false, "capif", None).await?,
        CapifOp::Reinstate { invoker, conn } => {
            let body = json!({ "apiInvokerId": invoker });
            admin_call(&conn, true, "capif/reinstate", Some(body)).await?
        }
    };
    show(status, &bytes)
}

const ROLES: [&str; 3] = ["AEF", "APF", "AMF"];

async fn register(
    ccf_url: &str,
    ccf_ca: &std::path::Path,
    reg_sec: &str,
    out_dir: &std::path::Path,
    domain: &str,
) -> Result<(), String> {
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let mut funcs = Vec::new();
    for role in ROLES {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{domain}-{role}"));
        let csr = params
            .serialize_request(&key)
            .and_then(|c| c.pem())
            .map_err(|e| e.to_string())?;
        save_private(
            &out_dir.join(format!("{}.key", role.to_lowercase())),
            key.serialize_pem().as_bytes(),
        )?;
        funcs.push(json!({
            "apiProvFuncRole": role,
            "regInfo": { "apiProvPubKey": csr },
            "apiProvFuncInfo": format!("{domain} {role}"),
        }));
    }
    let body = json!({
        "regSec": reg_sec,
        "apiProvFuncs": funcs,
        "apiProvDomInfo": domain,
        "suppFeat": "0",
    });
    let client = super::https_client(ccf_ca, std::time::Duration::from_secs(10))?;
    let url = format!(
        "{}/api-provider-management/v1/registrations",
        ccf_url.trim_end_matches('/')
    );
    let mut resp = client
        .post(url)
        .send_json(&body)
        .await
        .map_err(|e| format!("the CCF cannot be reached: {e}"))?;
    let bytes = resp.body().await.map_err(|e| e.to_string())?;
    if resp.status().as_u16() != 201 {
        return Err(format!(
            "registration refused: HTTP {} {}",
            resp.status(),
            String::from_utf8_lossy(&bytes)
        ));
    }
    let answer: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let mut ids = std::collections::BTreeMap::new();
    for f in answer["apiProvFuncs"].as_array().into_iter().flatten() {
        let (Some(role), Some(id)) = (f["apiProvFuncRole"].as_str(), f["apiProvFuncId"].as_str())
        else {
            continue;
        };
        if let Some(cert) = f["regInfo"]["apiProvCert"].as_str() {
            let path = out_dir.join(format!("{}.crt", role.to_lowercase()));
            std::fs::write(&path, cert).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        ids.insert(role.to_owned(), id.to_owned());
    }
    let path = out_dir.join("registration.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&answer).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    let (Some(aef), Some(apf)) = (ids.get("AEF"), ids.get("APF")) else {
        return Err("the registration answer lacks the AEF or APF id".into());
    };
    println!(
        "registered: {}",
        answer["apiProvDomId"].as_str().unwrap_or("-")
    );
    println!("# add to [capif]:");
    println!("aef_id = \"{aef}\"\napf_id = \"{apf}\"");
    println!(
        "client_cert = \"{}\"\nclient_key = \"{}\"",
        out_dir.join("aef.crt").display(),
        out_dir.join("aef.key").display()
    );
    Ok(())
}
