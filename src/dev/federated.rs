//! `sealkm dev --domains 2`: two independently keyed clusters on one machine — domain A
//! (`DIR/a`, [`super::DEV_KMS_URI`], users `@sealkm.test`) and domain B (`DIR/b`,
//! [`PARTNER_KMS_URI`], users `@partner.test`) — each with its own CAs, identity provider,
//! unseal key and admin credential, federated both ways the TS 33.180 way: each cluster's
//! issuing certificate exported and imported by the other (Annex L.3.2), and each trusting the
//! other's identity provider for its users (visiting users, 5.1.4.2). Prints a cross-domain
//! GMS → member walk-through.

use std::fs;
use std::path::{Path, PathBuf};

use super::run::{admin, hold, start_env, stop_children, Started};
use super::{ensure, io, node_config, DevOptions, DEV_GMS, DEV_ISSUER};
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
            // Only the community's KMS URI: B's KM-E partner is A's.
            t.replace(
                &format!("[[community]]\nkms_uri = \"{DEV_KMS_URI}\""),
                &format!("[[community]]\nkms_uri = \"{PARTNER_KMS_URI}\""),
            )
            .replace(
                &format!("issuer = \"{DEV_ISSUER}\"\naudience"),
                &format!("issuer = \"{PARTNER_ISSUER}\"\naudience"),
            )
        })?;
        // Each trusts the other's identity provider for the other's users.
        trust(&node_config(&a, id), PARTNER_ISSUER, &b, B_DOMAIN)?;
        trust(&node_config(&b, id), DEV_ISSUER, &a, A_DOMAIN)?;
    }
    km_e(&a, &b, host, port, total)?;
    Ok((a, b))
}

/// The group A shares with B over KM-E in the dev pair.
pub const FEDERATED_DEV_GROUP: &str = "fed-group";

/// KM-E for the pair (once): per domain a KM-E CA with listener and client certificates, and
/// in every node config a `[federation]` section naming the other domain as partner (its
/// node 1's KM-E listener, its KM-E CA pinned); A shares [`FEDERATED_DEV_GROUP`] with B.
fn km_e(a: &Path, b: &Path, host: &str, port: u16, total: u32) -> Result<(), String> {
    if node_config(a, 1).exists()
        && fs::read_to_string(node_config(a, 1))
            .map_err(io)?
            .contains("[federation]")
    {
        return Ok(());
    }
    let names = [("km-e.sealkm.test", a), ("km-e.partner.test", b)];
    for (name, dir) in names {
        let ca = crate::tls::DevCa::generate("sealkm dev KM-E CA").map_err(io)?;
        fs::write(dir.join("kme-ca.pem"), &ca.cert_pem).map_err(io)?;
        for (stem, names) in [
            (
                "kme-listener",
                vec!["localhost".to_owned(), host.to_owned()],
            ),
            ("kme-client", vec![name.to_owned()]),
        ] {
            let (cert, key) = ca.issue(&names).map_err(io)?;
            fs::write(dir.join(format!("{stem}-cert.pem")), cert).map_err(io)?;
            super::write_private(&dir.join(format!("{stem}-key.pem")), key.as_bytes())
                .map_err(io)?;
        }
    }
    fs::copy(b.join("kme-ca.pem"), a.join("kme-partner-ca.pem")).map_err(io)?;
    fs::copy(a.join("kme-ca.pem"), b.join("kme-partner-ca.pem")).map_err(io)?;
    let ports = |base: u16| -> Result<Vec<u16>, String> {
        (1..=total)
            .map(|id| {
                if port == 0 {
                    super::free_port(host)
                } else {
                    Ok(base + 3000 + id as u16 - 1)
                }
            })
            .collect()
    };
    let (pa, pb) = (ports(port)?, ports(port.saturating_add(B_PORT_OFFSET))?);
    for (dir, own, other, partner, name, groups) in [
        (
            a,
            &pa,
            &pb,
            PARTNER_KMS_URI,
            "km-e.partner.test",
            format!("share_groups = [\"{FEDERATED_DEV_GROUP}\"]"),
        ),
        (
            b,
            &pb,
            &pa,
            DEV_KMS_URI,
            "km-e.sealkm.test",
            format!("accept_groups = [\"{FEDERATED_DEV_GROUP}\"]"),
        ),
    ] {
        for id in 1..=total {
            let listen = own[id as usize - 1];
            let url = other[0];
            edit(&node_config(dir, id), |t| {
                format!(
                    "{t}\n[federation]\nclient_cert = \"kme-client-cert.pem\"\n\
                     client_key = \"kme-client-key.pem\"\nrefresh_s = 30\n\n\
                     [federation.listener]\naddr = \"{host}:{listen}\"\n\
                     tls_cert = \"kme-listener-cert.pem\"\ntls_key = \"kme-listener-key.pem\"\n\n\
                     [[federation.partner]]\nkms_uri = \"{partner}\"\n\
                     url = \"https://{host}:{url}\"\nca = \"kme-partner-ca.pem\"\n\
                     name = \"{name}\"\n{groups}\n"
                )
            })?;
        }
    }
    Ok(())
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
        exchange((&b, &b_url), (&a, &a_url)).await?;
        // B's VAL server may read the group A shares over KM-E.
        let grant = serde_json::json!({
            "principal": super::DEV_VAL, "role": "val-server",
            "groups": [super::DEV_GROUP, FEDERATED_DEV_GROUP],
        });
        admin(&b, &b_url, true, "acl", Some(grant)).await.map(drop)
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
         KM-E: A shares the group {FEDERATED_DEV_GROUP} with B (every version, as a MIKEY-SAKKE \
         I_MESSAGE between the two KMSs):\n  \
         sealkm client gms --dir {da} group-key create {FEDERATED_DEV_GROUP}\n  \
         sealkm client val --dir {db} group-key get {FEDERATED_DEV_GROUP}\n  \
         sealkm federation --dir {da} status\n\n\
         Ctrl-C stops every node of both domains."
    );
    hold(in_a.into_iter().chain(in_b).collect()).await
}
