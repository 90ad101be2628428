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
fn free_port(host: &str) -> Result<u16, String> {
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

/// One started node, as `cluster.json` lists it.
struct Started {
    id: u32,
    child: std::process::Child,
    km_uu: String,
    service: Option<String>,
    peer: Option<String>,
    config: PathBuf,
}

/// Starts nodes 1..=`nodes` of the environment as child processes, writes `cluster.json`,
/// prints how to call them, and stays in the foreground until Ctrl-C / SIGTERM (which stop
/// the nodes) or until every node has exited. A node killed meanwhile can be restarted with
/// its `restart` command from `cluster.json`.
pub async fn run_foreground(dir: &Path, nodes: u32) -> Result<(), String> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    // All nodes first: none can finish starting before a quorum of them runs.
    for id in 1..=nodes {
        let config = node_config(dir, id);
        // The node's log (stderr, fatal errors included) goes to DIR/node<N>.log, appended
        // across restarts.
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node_log(dir, id))
            .map_err(|e| format!("cannot open {}: {e}", node_log(dir, id).display()))?;
        let child = Command::new(&exe)
            .args(["serve", "--config"])
            .arg(&config)
            .env("SEALKM_LOG_FORMAT", "text")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start node {id}: {e}"))?;
        children.push((id, child, config));
    }
    let mut started: Vec<Started> = Vec::new();
    let mut pending = children.into_iter();
    while let Some((id, mut child, config)) = pending.next() {
        let Some(stdout) = child.stdout.take() else {
            let rest = pending.map(|(_, c, _)| c).chain(std::iter::once(child));
            stop_children(rest.chain(started.into_iter().map(|s| s.child)));
            return Err("no stdout".into());
        };
        let mut lines = std::io::BufReader::new(stdout).lines();
        let (mut km_uu, mut peer, mut service) = (None, None, None);
        while km_uu.is_none() {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(u) = l.strip_prefix("sealkm: KM-UU listening on ") {
                        km_uu = Some(u.to_owned());
                    } else if let Some(u) = l.strip_prefix("sealkm: service listening on ") {
                        service = Some(u.to_owned());
                    } else if let Some(a) = l.strip_prefix("sealkm: peer listening on ") {
                        peer = Some(a.to_owned());
                    }
                }
                _ => {
                    let status = child.wait().map_err(|e| e.to_string());
                    // No node of a failed start outlives it.
                    let rest = pending.map(|(_, c, _)| c);
                    stop_children(rest.chain(started.into_iter().map(|s| s.child)));
                    let status = status?;
                    return Err(format!(
                        "node {id} exited before listening ({status}); its log is {}",
                        node_log(dir, id).display()
                    ));
                }
            }
        }
        std::thread::spawn(move || for _ in lines {});
        started.push(Started {
            id,
            child,
            km_uu: km_uu.unwrap_or_default(),
            service,
            peer,
            config,
        });
    }
    write_cluster_file(dir, &exe, &started)?;
    if let Some(first) = started.first() {
        if let Err(e) = grant_dev_parties(dir, &first.km_uu).await {
            eprintln!("sealkm dev: could not grant the dev GMS and VAL server: {e}");
        }
    }
    let d = dir.display();
    for s in &started {
        println!(
            "sealkm dev: node {} at {} (pid {})",
            s.id,
            s.km_uu,
            s.child.id()
        );
    }
    println!(
        "files in {d}\n\n  sealkm cluster status --dir {d}\n  \
         sealkm token --dir {d} --user sip:alice@sealkm.test     # DEV ONLY access token\n  \
         sealkm client --dir {d} --user sip:alice@sealkm.test keyprov\n  \
         sealkm client --dir {d} certcache\n  \
         sealkm admin --dir {d} communities\n\n\
         Service listener (mutual TLS + token naming the same party; {DEV_GMS} may manage every \
         group, {DEV_VAL} may read {DEV_GROUP}):\n  \
         sealkm token --dir {d} --user {DEV_GMS}                 # the GMS's token\n  \
         sealkm token --dir {d} --user {DEV_VAL} --skeyprov      # the VAL server's, with SKeyProv\n  \
         sealkm client gms --dir {d} keyprov                     # its own key set (SEAL-X1)\n  \
         sealkm client gms --dir {d} group-key create {DEV_GROUP}\n  \
         sealkm client gms --dir {d} imessage --group {DEV_GROUP} --to sip:alice@sealkm.test --out msg.bin\n  \
         sealkm client --dir {d} --user sip:alice@sealkm.test imessage open --file msg.bin --from {DEV_GMS}\n  \
         sealkm client val --dir {d} group-key get {DEV_GROUP}\n\n\
         Node logs: {d}/node<N>.log. \
         Kill a node (its pid is above and in {d}/cluster.json) and watch `sealkm cluster status`; \
         restart it with the `restart` command in cluster.json. Ctrl-C stops every node."
    );
    let pids: Vec<u32> = started.iter().map(|s| s.child.id()).collect();
    let waiter = actix_web::rt::task::spawn_blocking(move || {
        for mut s in started {
            let _ = s.child.wait();
        }
    });
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(io)?;
    tokio::select! {
        _ = waiter => return Err("every node has exited".into()),
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("sealkm dev: stopping the nodes");
    for pid in pids {
        // SAFETY: kill(2) on a child we started.
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
    }
    Ok(())
}

/// Grants the dev parties through the admin API of `km_uu` (replicated, so once is enough):
/// the GMS every group, the VAL server [`DEV_GROUP`].
async fn grant_dev_parties(dir: &Path, km_uu: &str) -> Result<(), String> {
    let tls = crate::tls::client_config(&dir.join(CA_CERT)).map_err(io)?;
    let client = crate::client::http_client(tls);
    let admin = fs::read_to_string(dir.join(ADMIN_TOKEN)).map_err(io)?;
    for (principal, role, groups) in [
        (DEV_GMS, "gms", vec!["*"]),
        (DEV_VAL, "val-server", vec![DEV_GROUP]),
    ] {
        let resp = client
            .post(format!("{km_uu}/admin/v1/acl"))
            .bearer_auth(admin.trim())
            .send_json(&serde_json::json!({"principal": principal, "role": role, "groups": groups}))
            .await
            .map_err(io)?;
        if !resp.status().is_success() {
            return Err(format!("ACL for {principal}: HTTP {}", resp.status()));
        }
    }
    Ok(())
}

/// SIGTERM to each child, then waits for all of them.
fn stop_children(children: impl Iterator<Item = std::process::Child>) {
    let mut children: Vec<_> = children.collect();
    for c in &children {
        // SAFETY: kill(2) on a child we started and have not waited for yet.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
    }
    for c in &mut children {
        let _ = c.wait();
    }
}

fn write_cluster_file(dir: &Path, exe: &Path, started: &[Started]) -> Result<(), String> {
    let nodes: Vec<_> = started
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id,
                "pid": s.child.id(),
                "km_uu": s.km_uu,
                "service": s.service,
                "peer": s.peer,
                "data_dir": dir.join(format!("node{}-data", s.id)),
                "log": node_log(dir, s.id),
                "config": s.config,
                "restart": [exe.to_string_lossy(), "serve", "--config", s.config.to_string_lossy()],
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&serde_json::json!({ "nodes": nodes })).map_err(io)?;
    let tmp = dir.join("cluster.json.tmp");
    fs::write(&tmp, text).map_err(io)?;
    fs::rename(&tmp, dir.join(CLUSTER_FILE)).map_err(io)
}

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
