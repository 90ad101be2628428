//! `sealkm dev --domains 2`: two independently keyed clusters on one machine — domain A
//! (`DIR/a`, [`super::DEV_KMS_URI`], users `@sealkm.test`) and domain B (`DIR/b`,
//! [`PARTNER_KMS_URI`], users `@partner.test`) — each with its own CAs, identity provider,
//! unseal key and admin credential, federated both ways the TS 33.180 way: each cluster's
//! issuing certificate exported and imported by the other (Annex L.3.2), and each trusting the
//! other's identity provider for its users (visiting users, 5.1.4.2). Prints a cross-domain
//! GMS → member walk-through.

use std::fs;
use std::path::{Path, PathBuf};

use super::run::{hold, start_env, stop_children, Started};
use super::{ensure, io, node_config, DevOptions, ADMIN_TOKEN, CA_CERT, DEV_GMS, DEV_ISSUER};
use super::{DEV_KMS_URI, SPARE_NODES};

/// Domain B's KMS URI.
pub const PARTNER_KMS_URI: &str = "kms.partner.test";
/// Domain B's identity provider.
pub const PARTNER_ISSUER: &str = "https://idms.partner.test";
/// Domain A's user URI domain, and domain B's.
const A_DOMAIN: &str = "sealkm.test";
const B_DOMAIN: &str = "partner.test";
/// Domain B's ports are domain A's plus this.
const B_PORT_OFFSET: u16 = 100;

/// Creates (once) the two environments under `dir` and returns their directories.
pub fn ensure_pair(dir: &Path, addr: &str, nodes: u32) -> Result<(PathBuf, PathBuf), String> {
    crate::node::bootstrap::create_private_dir(dir).map_err(io)?;
    let (a, b) = (dir.join("a"), dir.join("b"));
    ensure(&DevOptions {
        dir: a.clone(),
        addr: addr.to_owned(),
        nodes,
    })?;
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr}: expected host:port"))?;
    let port: u16 = port.parse().map_err(|_| format!("{addr}: bad port"))?;
    let b_addr = if port == 0 {
        addr.to_owned()
    } else {
        format!(
            "{host}:{}",
            port.checked_add(B_PORT_OFFSET)
                .ok_or_else(|| format!("{addr}: port too high"))?
        )
    };
    ensure(&DevOptions {
        dir: b.clone(),
        addr: b_addr,
        nodes,
    })?;
    let total = if nodes == 1 { 1 } else { nodes + SPARE_NODES };
    for id in 1..=total {
        // Domain B: its own KMS URI and issuer (edits that a second run finds already made).
        edit(&node_config(&b, id), |t| {
            // Only the `[auth.token]` issuer: A's issuer also appears as B's visiting one.
            t.replace(DEV_KMS_URI, PARTNER_KMS_URI).replace(
                &format!("issuer = \"{DEV_ISSUER}\"\naudience"),
                &format!("issuer = \"{PARTNER_ISSUER}\"\naudience"),
            )
        })?;
        // Each trusts the other's identity provider for the other's users.
        trust(&node_config(&a, id), PARTNER_ISSUER, &b, B_DOMAIN)?;
        trust(&node_config(&b, id), DEV_ISSUER, &a, A_DOMAIN)?;
    }
    Ok((a, b))
}

fn edit(path: &Path, f: impl Fn(String) -> String) -> Result<(), String> {
    let text = fs::read_to_string(path).map_err(io)?;
    let next = f(text.clone());
    if next != text {
        fs::write(path, next).map_err(io)?;
    }
    Ok(())
}

/// Appends a `[[auth.visiting]]` entry for `issuer` (whose JWKS is in `other`) unless present.
fn trust(config: &Path, issuer: &str, other: &Path, domain: &str) -> Result<(), String> {
    let jwks = fs::canonicalize(other.join("jwks.json")).map_err(io)?;
    edit(config, |t| {
        if t.contains("[[auth.visiting]]") {
            return t;
        }
        format!(
            "{t}\n[[auth.visiting]]\nissuer = \"{issuer}\"\njwks_file = {:?}\ndomains = [\"{domain}\"]\n",
            jwks.to_string_lossy()
        )
    })
}

/// POSTs `body` to `path` of the admin API of `km_uu` (environment `dir`); the answer body.
async fn admin(
    dir: &Path,
    km_uu: &str,
    method_post: bool,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<Vec<u8>, String> {
    let tls = crate::tls::client_config(&dir.join(CA_CERT)).map_err(io)?;
    let client = crate::client::http_client(tls);
    let token = fs::read_to_string(dir.join(ADMIN_TOKEN)).map_err(io)?;
    let url = format!("{km_uu}/admin/v1/{path}");
    let req = if method_post {
        client.post(url)
    } else {
        client.get(url)
    }
    .bearer_auth(token.trim());
    let mut resp = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .map_err(io)?;
    let bytes = resp.body().await.map_err(io)?;
    if !resp.status().is_success() {
        return Err(format!(
            "{path}: HTTP {}: {}",
            resp.status(),
            String::from_utf8_lossy(&bytes)
        ));
    }
    Ok(bytes.to_vec())
}

/// Exports `from`'s certificate and imports it into `to` (again on every start: the same
/// certificate is accepted and changes nothing; a rotated one is imported as a rotation).
async fn exchange(from: (&Path, &str), to: (&Path, &str)) -> Result<(), String> {
    let doc = admin(from.0, from.1, false, "federation/export", None).await?;
    let document = String::from_utf8(doc).map_err(io)?;
    let plain = serde_json::json!({ "document": document });
    if admin(to.0, to.1, true, "federation/certificates", Some(plain))
        .await
        .is_err()
    {
        let rotation = serde_json::json!({ "document": document, "rotate": true });
        admin(to.0, to.1, true, "federation/certificates", Some(rotation)).await?;
    }
    Ok(())
}

/// `sealkm dev --domains 2`.
pub async fn run_federated(dir: &Path, addr: &str, nodes: u32) -> Result<(), String> {
    let (a, b) = ensure_pair(dir, addr, nodes)?;
    let (a, b) = (
        fs::canonicalize(a).map_err(io)?,
        fs::canonicalize(b).map_err(io)?,
    );
    let in_a = start_env(&a, nodes).await?;
    let in_b = match start_env(&b, nodes).await {
        Ok(s) => s,
        Err(e) => {
            stop_children(in_a.into_iter().map(|s| s.child));
            return Err(e);
        }
    };
    let url = |s: &[Started]| s.first().map(|n| n.km_uu.clone()).unwrap_or_default();
    let (a_url, b_url) = (url(&in_a), url(&in_b));
    let federated = async {
        exchange((&a, &a_url), (&b, &b_url)).await?;
        exchange((&b, &b_url), (&a, &a_url)).await
    }
    .await;
    if let Err(e) = federated {
        stop_children(in_a.into_iter().chain(in_b).map(|s| s.child));
        return Err(format!("federating the two domains: {e}"));
    }
    let (da, db) = (a.display(), b.display());
    println!(
        "sealkm dev: two federated domains\n  A {DEV_KMS_URI} (users @{A_DOMAIN}) at {a_url}, files in {da}\n  \
         B {PARTNER_KMS_URI} (users @{B_DOMAIN}) at {b_url}, files in {db}\n\
         Each imported the other's KMS certificate (External in its CertCache) and trusts the \
         other's identity provider for the other's users.\n\n\
         Cross-domain group key, GMS of A -> member of B:\n  \
         sealkm federation --dir {da} list\n  \
         sealkm federation --dir {da} lookup --uri sip:bob@{B_DOMAIN}\n  \
         sealkm client --dir {db} --user sip:bob@{B_DOMAIN} certcache      # A's certificate, External\n  \
         sealkm client gms --dir {da} imessage --to sip:bob@{B_DOMAIN} --out msg.bin\n  \
         sealkm client --dir {db} --user sip:bob@{B_DOMAIN} imessage open --file msg.bin --from {DEV_GMS}\n\n\
         Ctrl-C stops every node of both domains."
    );
    hold(in_a.into_iter().chain(in_b).collect()).await
}
