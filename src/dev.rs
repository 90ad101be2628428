//! `sealkm dev`: a complete local environment from embedded defaults — a CA for the parties and
//! the client-facing listeners (`ca.pem`), a separate CA for the nodes' peer listeners
//! (`node-ca.pem`: a party certificate never opens a peer listener), certificates per node, an
//! unseal key shared by the cluster's nodes, a development identity provider
//! (ES256 key and JWKS), an admin credential and a config per node — written into one
//! directory (created once, reused after), then the nodes started as separate processes.
//!
//! With `--nodes N` (N > 1) nodes 1..=N form a new cluster; two more configs (`join = true`)
//! are written for nodes that can be added later with `sealkm cluster join`.

use std::fs;
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

use crate::auth::devidp::DevIdp;
use crate::tls::DevCa;

/// Files of a dev environment, relative to its directory.
/// The CA of the parties and of the client-facing listeners (KM-UU, service listener).
pub const CA_CERT: &str = "ca.pem";
/// The CA of the nodes' peer listeners (Raft); it signs node certificates only.
pub const NODE_CA_CERT: &str = "node-ca.pem";
/// Its private key (so more nodes can be issued certificates).
pub const NODE_CA_KEY: &str = "node-ca-key.pem";
/// The DNS domain of node names: node N's peer certificate names `node<N>.<domain>`.
pub const DEV_PEER_DOMAIN: &str = "sealkm.test";
pub const IDP_KEY: &str = "idp-key.der";
pub const ADMIN_TOKEN: &str = "admin-token";
pub const NODE_CONFIG: &str = "node1.toml";
pub const DEV_KMS_URI: &str = "kms.sealkm.test";
pub const DEV_IDP_KID: &str = "dev-idp-1";
/// The default token policy of the dev environment (claim names are deployment choices).
pub const DEV_ISSUER: &str = "https://idms.sealkm.test";
pub const DEV_AUDIENCE: &str = "sealkm";
pub const DEV_IDENTITY_CLAIM: &str = "seal_user_id";
pub const DEV_SCOPE: &str = "3gpp:seal:km";
/// The scope of the dev parties' tokens (service listener).
pub const DEV_PARTY_SCOPE: &str = crate::auth::party::DEFAULT_PARTY_SCOPE;
/// The dev party name space: DNS names under it are parties (`gms.sealkm.test`, …).
pub const DEV_PARTY_SUFFIX: &str = "sealkm.test";
/// The dev CA's private key (so `sealkm dev` environments can issue more party certificates).
pub const CA_KEY: &str = "ca-key.pem";
/// The dev group management server (SEAL-X1): its certificate names it, its token too.
pub const DEV_GMS: &str = "gms.sealkm.test";
/// The dev VAL server (KM-S).
pub const DEV_VAL: &str = "val.sealkm.test";
/// The group the dev parties are granted.
pub const DEV_GROUP: &str = "dev-group";

/// Certificate and key files of a party of a dev environment (`gms`, `val`).
pub fn party_files(dir: &Path, party: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{party}-cert.pem")),
        dir.join(format!("{party}-key.pem")),
    )
}

/// Issues a client certificate for `names` from the environment's CA into
/// `DIR/<file_stem>-cert.pem` and `-key.pem`.
pub fn issue_party(dir: &Path, file_stem: &str, names: &[String]) -> Result<(), String> {
    let ca = DevCa::load(
        &fs::read_to_string(dir.join(CA_CERT)).map_err(io)?,
        &zeroize::Zeroizing::new(fs::read_to_string(dir.join(CA_KEY)).map_err(io)?),
    )
    .map_err(io)?;
    let (cert, key) = ca.issue(names).map_err(io)?;
    let (cert_path, key_path) = party_files(dir, file_stem);
    fs::write(cert_path, cert).map_err(io)?;
    write_private(&key_path, key.as_bytes()).map_err(io)
}

/// Peer certificate and key files of node `id` (signed by the node CA).
pub fn peer_files(dir: &Path, id: u32) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("node{id}-peer-cert.pem")),
        dir.join(format!("node{id}-peer-key.pem")),
    )
}

/// Writes a secret file with mode 0600 — also when it already exists with another mode
/// (`OpenOptions::mode` applies only to a file it creates).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    o.mode(0o600);
    let mut f = o.open(path)?;
    #[cfg(unix)]
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn io(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Options of a dev environment.
pub struct DevOptions {
    pub dir: PathBuf,
    /// Client listener of node 1; node K listens on port + K − 1, its peer listener on
    /// port + 1000 + K − 1 and its service listener on port + 2000 + K − 1. Port 0 picks free
    /// ports.
    pub addr: String,
    /// Voters of the new cluster (1: a cluster of one, without a peer listener).
    pub nodes: u32,
}

/// Configs written for nodes that can join later, beyond the initial voters.
pub const SPARE_NODES: u32 = 2;

/// The log file (stderr) of node `id` started by `sealkm dev`.
pub fn node_log(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("node{id}.log"))
}

/// The config file of node `id`.
pub fn node_config(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("node{id}.toml"))
}

/// Creates the environment in `opts.dir` unless it already exists; returns node 1's config.
pub fn ensure(opts: &DevOptions) -> Result<PathBuf, String> {
    let dir = &opts.dir;
    let cfg_path = dir.join(NODE_CONFIG);
    if cfg_path.exists() {
        let have = (1..).take_while(|&i| node_config(dir, i).exists()).count() as u32;
        let voters = if have == 1 { 1 } else { have - SPARE_NODES };
        if voters != opts.nodes {
            return Err(format!(
                "{} holds a {voters}-node environment; use another --dir for {} nodes",
                dir.display(),
                opts.nodes
            ));
        }
        if have > 1 && !dir.join(NODE_CA_CERT).exists() {
            return Err(format!(
                "{} was made by an older sealkm whose nodes and parties share one CA (a party \
                 certificate could read the peer listener); make a new environment with another \
                 --dir (keep unseal.key if its data must be kept)",
                dir.display()
            ));
        }
        return Ok(cfg_path);
    }
    if opts.nodes == 0 || opts.nodes > 9 {
        return Err("--nodes must be 1..=9".into());
    }
    crate::node::bootstrap::create_private_dir(dir).map_err(io)?;
    let rng = SystemRandom::new();

    let ca = DevCa::generate("sealkm dev CA").map_err(io)?;
    fs::write(dir.join(CA_CERT), &ca.cert_pem).map_err(io)?;
    write_private(&dir.join(CA_KEY), ca.key_pem().as_bytes()).map_err(io)?;
    issue_party(dir, "gms", &[DEV_GMS.to_owned()])?;
    issue_party(dir, "val", &[DEV_VAL.to_owned()])?;
    let total = if opts.nodes == 1 {
        1
    } else {
        opts.nodes + SPARE_NODES
    };
    // A cluster's peer listeners trust only the node CA, which signs nothing but node
    // certificates.
    let node_ca = if total > 1 {
        let node_ca = DevCa::generate("sealkm dev node CA").map_err(io)?;
        fs::write(dir.join(NODE_CA_CERT), &node_ca.cert_pem).map_err(io)?;
        write_private(&dir.join(NODE_CA_KEY), node_ca.key_pem().as_bytes()).map_err(io)?;
        Some(node_ca)
    } else {
        None
    };
    for id in 1..=total {
        let names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            DEV_KMS_URI.to_string(),
        ];
        let (cert, key) = ca.issue(&names).map_err(io)?;
        fs::write(dir.join(format!("node{id}-cert.pem")), cert).map_err(io)?;
        write_private(&dir.join(format!("node{id}-key.pem")), key.as_bytes()).map_err(io)?;
        if let Some(node_ca) = &node_ca {
            let names = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                format!("node{id}.{DEV_PEER_DOMAIN}"),
            ];
            let (cert, key) = node_ca.issue(&names).map_err(io)?;
            let (cert_path, key_path) = peer_files(dir, id);
            fs::write(cert_path, cert).map_err(io)?;
            write_private(&key_path, key.as_bytes()).map_err(io)?;
        }
    }

    let mut unseal = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill(unseal.as_mut())
        .map_err(|_| "RNG failure".to_string())?;
    write_private(
        &dir.join("unseal.key"),
        hex::encode(unseal.as_ref()).as_bytes(),
    )
    .map_err(io)?;

    let idp = DevIdp::generate(DEV_IDP_KID).map_err(io)?;
    write_private(&dir.join(IDP_KEY), idp.pkcs8_der().expose()).map_err(io)?;
    fs::write(dir.join("jwks.json"), idp.jwks_json()).map_err(io)?;

    let mut admin = [0u8; 24];
    rng.fill(&mut admin)
        .map_err(|_| "RNG failure".to_string())?;
    let admin_token = hex::encode(admin);
    write_private(&dir.join(ADMIN_TOKEN), admin_token.as_bytes()).map_err(io)?;
    let admin_hash = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        admin_token.as_bytes(),
    ));
    fs::write(dir.join("admin-token.sha256"), &admin_hash).map_err(io)?;

    let (host, port) = split_addr(&opts.addr)?;
    let mut addrs = Vec::new();
    for id in 1..=total {
        let client = if port == 0 {
            format!("{host}:0")
        } else {
            format!("{host}:{}", port + id as u16 - 1)
        };
        let peer = if port == 0 {
            format!("{host}:{}", free_port(&host)?)
        } else {
            format!("{host}:{}", port + 1000 + id as u16 - 1)
        };
        let service = if port == 0 {
            format!("{host}:0")
        } else {
            format!("{host}:{}", port + 2000 + id as u16 - 1)
        };
        addrs.push((id, client, peer, service));
    }
    for (id, client, peer, service) in &addrs {
        let raft = (total > 1).then(|| {
            let join = *id > opts.nodes;
            let peers: String = addrs
                .iter()
                .filter(|(other, _, _, _)| other != id && *other <= opts.nodes)
                .map(|(other, _, addr, _)| {
                    format!("\n[[raft.peer]]\nid = {other}\naddr = \"{addr}\"\n")
                })
                .collect();
            format!(
                r#"
[raft]
id = {id}
cluster_ca = "{NODE_CA_CERT}"
join = {join}
tick_ms = 100
peer_name_domain = "{DEV_PEER_DOMAIN}"

[raft.peer_listener]
addr = "{peer}"
tls_cert = "node{id}-peer-cert.pem"
tls_key = "node{id}-peer-key.pem"
{peers}"#
            )
        });
        let text = config_text(
            *id,
            client,
            service,
            &admin_hash,
            raft.as_deref().unwrap_or(""),
        );
        fs::write(node_config(dir, *id), text).map_err(io)?;
    }
    Ok(cfg_path)
}

fn split_addr(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr}: expected host:port"))?;
    let port: u16 = port.parse().map_err(|_| format!("{addr}: bad port"))?;
    if port > u16::MAX - 2100 {
        return Err(format!("{addr}: port too high for a cluster"));
    }
    Ok((host.to_owned(), port))
}

/// A free port for a peer listener that must be known before it is bound. It is taken below
/// Linux's ephemeral range (32768–60999), so no listener bound to port 0 meanwhile can take
/// it, from a window chosen by process id, and never the same twice in one process.
pub fn free_port(host: &str) -> Result<u16, String> {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let window = (std::process::id() % 400) as u16 * 30;
    for _ in 0..1000 {
        let port = 20_000 + (window + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if std::net::TcpListener::bind((host, port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port for a peer listener".into())
}

/// The text of node `id`'s config; `raft` is its `[raft]` section (empty: a cluster of one).
fn config_text(id: u32, addr: &str, service: &str, admin_hash: &str, raft: &str) -> String {
    format!(
        r#"# sealkm node config generated by `sealkm dev` (paths are relative to this file)
node_id = "node{id}"
data_dir = "node{id}-data"
unseal_key_file = "unseal.key"
audit_file = "node{id}-audit.jsonl"

[client_listener]
addr = "{addr}"
tls_cert = "node{id}-cert.pem"
tls_key = "node{id}-key.pem"

[service_listener]
addr = "{service}"
tls_cert = "node{id}-cert.pem"
tls_key = "node{id}-key.pem"
client_ca = "{CA_CERT}"

[auth]
jwks_file = "jwks.json"

[auth.token]
issuer = "{DEV_ISSUER}"
audience = "{DEV_AUDIENCE}"
leeway_s = 60
identity_claim = "{DEV_IDENTITY_CLAIM}"
scope_claim = "scope"
required_scope = "{DEV_SCOPE}"

# Parties (the GMS, VAL servers) get key material only on the service listener, with a party
# token; KM-UU refuses every name under this suffix.
[auth.party]
scope = "{DEV_PARTY_SCOPE}"
dns_suffixes = ["{DEV_PARTY_SUFFIX}"]

[admin]
token_sha256 = "{admin_hash}"

[[community]]
kms_uri = "{DEV_KMS_URI}"
default = true
user_key_period_s = 2592000
user_key_offset_s = 0
cert_validity_days = 365

[keyprov]
periods_before = 1
periods_after = 1

[admission]
max_inflight_issuance = 64
per_identity_burst = 20
identity_window_s = 60
{raft}"#
    )
}

/// The dev identity provider of an environment.
pub fn load_idp(dir: &Path) -> Result<DevIdp, String> {
    let der = zeroize::Zeroizing::new(fs::read(dir.join(IDP_KEY)).map_err(io)?);
    DevIdp::from_pkcs8(DEV_IDP_KID, &der).map_err(io)
}

/// The cluster file `sealkm dev` writes: what scripts and tests need to reach and restart nodes.
pub const CLUSTER_FILE: &str = "cluster.json";

/// `km_uu` URL of node `id` from `DIR/cluster.json`.
pub fn node_url(dir: &Path, id: u64) -> Result<String, String> {
    cluster_field(dir, id, "km_uu")
}

/// Service listener URL of node `id` from `DIR/cluster.json`.
pub fn service_url(dir: &Path, id: u64) -> Result<String, String> {
    cluster_field(dir, id, "service")
}

/// DEV ONLY: an access token for `user` from the environment's identity provider, valid
/// `ttl_s`, with `extra` claims: a party token (`[auth.party]` scope and audience) when `user`
/// is in the party name space, a KM-UU token otherwise.
pub fn mint_token(
    dir: &Path,
    user: &str,
    ttl_s: u64,
    extra: &[(&str, serde_json::Value)],
) -> Result<String, String> {
    let cfg = crate::config::NodeConfig::load(&dir.join(NODE_CONFIG)).map_err(io)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(io)?
        .as_secs();
    let policy = cfg.auth.party.policy_for(&cfg.auth.token, user);
    load_idp(dir)?
        .mint_with(&policy, user, &policy.required_scope, now, ttl_s, extra)
        .map_err(io)
}

fn cluster_field(dir: &Path, id: u64, field: &str) -> Result<String, String> {
    let text = fs::read_to_string(dir.join(CLUSTER_FILE)).map_err(|e| {
        format!(
            "{}: {e} (is `sealkm dev --dir {}` running?)",
            dir.join(CLUSTER_FILE).display(),
            dir.display()
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    v["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["id"].as_u64() == Some(id)))
        .and_then(|n| n[field].as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "node {id} has no {field} in {}",
                dir.join(CLUSTER_FILE).display()
            )
        })
}

mod federated;
mod run;

pub use federated::{
    ensure_pair, run_federated, FEDERATED_DEV_GROUP, PARTNER_ISSUER, PARTNER_KMS_URI,
};
pub use run::run_foreground;

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_secret_written_over_an_existing_file_becomes_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"new").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }
}
