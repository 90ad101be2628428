//! Starting a node: core dumps off, a private umask (077) and private (0700) data directories,
//! the unseal (barrier) key from a file or the environment (then removed from it),
//! the state and the key store (Raft) opened, the peer listener bound, then — once the cluster
//! has a leader and this node has caught up — the state checked against the key, and the
//! configured communities created with a first certificate where they have none valid.
//!
//! Several nodes of a new cluster run this at once: every step is a proposal whose refusal
//! means "another node did it first", after which the step re-reads and checks.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::core::{Actor, NodeError};
use super::KmsNode;
use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::{NodeConfig, UNSEAL_ENV};
use crate::crypto::seal::{self, BarrierKey};
use crate::kms::period::PeriodParams;
use crate::net::transport::INBOX_LEN;
use crate::state::{Command, StateMachine};
use crate::store::{self, StoreError, StoreOptions};

/// Pause between two attempts to reach a quorum while the cluster forms.
const QUORUM_RETRY: Duration = Duration::from_millis(200);

const BARRIER_CHECK_AAD: &[u8] = b"sealkm/v1/barrier-check";
const BARRIER_CHECK_PLAIN: &[u8] = b"sealkm barrier check";

/// Reads the unseal key: `SEALKM_UNSEAL_KEY` (64 hex digits) wins over `unseal_key_file`. The
/// variable is taken out of the process environment (its value overwritten in place first, so
/// `/proc/<pid>/environ` no longer shows it either).
pub fn load_unseal_key(file: Option<&Path>) -> Result<BarrierKey, NodeError> {
    let text = match take_env_secret(UNSEAL_ENV) {
        Some(v) => v,
        None => {
            let path = file.ok_or_else(|| {
                NodeError::Internal(format!(
                    "no unseal key: set {UNSEAL_ENV} or unseal_key_file"
                ))
            })?;
            zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                NodeError::Internal(format!(
                    "cannot read unseal key file {}: {e}",
                    path.display()
                ))
            })?)
        }
    };
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), bytes.as_mut()).map_err(|_| {
        NodeError::Internal("the unseal key must be 64 hex digits (32 bytes)".into())
    })?;
    BarrierKey::from_bytes(bytes.as_ref()).map_err(NodeError::from)
}

/// Reads and removes the environment variable `name`: its value in the process's environment
/// block is overwritten with zeros, then the variable is unset. Call it while nothing else
/// reads the environment (at start-up, before other threads use it).
pub fn take_env_secret(name: &str) -> Option<zeroize::Zeroizing<String>> {
    let value = zeroize::Zeroizing::new(std::env::var(name).ok()?);
    #[cfg(unix)]
    if let Ok(cname) = std::ffi::CString::new(name) {
        use zeroize::Zeroize;
        // SAFETY: getenv returns NULL or a pointer to the NUL-terminated value inside the
        // environment block, which stays valid until the variable is changed; we overwrite
        // exactly `strlen` bytes of it before unsetting it, with no other reader of the
        // environment running (see above).
        unsafe {
            let p = libc::getenv(cname.as_ptr());
            if !p.is_null() {
                let len = libc::strlen(p);
                std::slice::from_raw_parts_mut(p.cast::<u8>(), len).zeroize();
            }
        }
    }
    std::env::remove_var(name);
    Some(value)
}

/// Files and directories this process creates are private to its owner (umask 077): the state,
/// the Raft log, snapshots and the audit file hold sealed secrets and party data.
pub fn private_umask() {
    #[cfg(unix)]
    // SAFETY: umask(2) only sets the process's file mode creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` if needed and makes it private (0700), also when it existed with a wider mode.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Keeps master secrets out of core files (ARCHITECTURE §7).
pub fn disable_core_dumps() {
    #[cfg(unix)]
    // SAFETY: setrlimit with a valid, fully initialised struct has no memory-safety preconditions.
    unsafe {
        let lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &lim);
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Checks (or, on a new state, records) that `key` is this state's barrier key.
pub async fn check_barrier(node: &KmsNode) -> Result<(), NodeError> {
    node.read_barrier().await?;
    let sealed = match node.state().barrier_check()? {
        Some(sealed) => sealed,
        None => {
            let sealed = seal::seal(
                &node.barrier,
                BARRIER_CHECK_AAD,
                BARRIER_CHECK_PLAIN,
                &node.rng,
            )?;
            // Refused when another node of a new cluster recorded its check first: the
            // check below then tells whether both hold the same key.
            node.propose(Command::SetBarrierCheck { sealed }).await?;
            node.state()
                .barrier_check()?
                .ok_or_else(|| NodeError::Internal("barrier check not recorded".into()))?
        }
    };
    match seal::open(&node.barrier, BARRIER_CHECK_AAD, &sealed) {
        Ok(p) if p.expose() == BARRIER_CHECK_PLAIN => Ok(()),
        _ => Err(NodeError::WrongUnsealKey),
    }
}

/// Creates configured communities that do not exist and gives each a valid certificate.
pub async fn ensure_communities(node: &KmsNode, cfg: &NodeConfig) -> Result<(), NodeError> {
    let actor = Actor(format!("node:{}", cfg.node_id));
    for c in &cfg.communities {
        let period = PeriodParams {
            period_s: c.user_key_period_s,
            offset_s: c.user_key_offset_s,
        };
        node.propose_ok(Command::CreateCommunity {
            kms_uri: c.kms_uri.clone(),
            period,
        })
        .await?;
        let community = node.community(&c.kms_uri).await?;
        if community.issuing_certificate(node.now()).is_err() {
            let created = node
                .admin
                .rotate_certificate(
                    &c.kms_uri,
                    c.cert_validity_days.saturating_mul(86_400),
                    &actor,
                )
                .await;
            match created {
                Ok(_) => {}
                // Another node created the certificate first, perhaps by a clock ahead of ours:
                // a certificate that starts later is no reason to stop (the clock-skew rule
                // keeps this node from issuing while its clock is off the leader's).
                Err(NodeError::Rejected(_)) => {
                    let community = node.community(&c.kms_uri).await?;
                    if let Err(e) = community.issuing_certificate(node.now()) {
                        if !community.has_issuing_or_future_certificate(node.now()) {
                            return Err(e.into());
                        }
                        tracing::warn!(
                            community = %c.kms_uri,
                            "the community's certificate starts after this node's clock: is the clock right?"
                        );
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Runs the start-up steps once the cluster has a leader and this node has caught up with it,
/// again while the cluster is still forming (an election can drop a proposal); every step is
/// idempotent.
async fn join_quorum(node: &KmsNode, cfg: &NodeConfig) -> Result<(), NodeError> {
    let mut attempts = 0u32;
    loop {
        let res = async {
            node.read_barrier().await?;
            check_barrier(node).await?;
            ensure_communities(node, cfg).await
        }
        .await;
        match res {
            Ok(()) => return Ok(()),
            Err(NodeError::Unavailable(
                e @ (StoreError::NoLeader
                | StoreError::Timeout
                | StoreError::Busy
                | StoreError::DiskFull(_)),
            )) => {
                attempts += 1;
                if attempts % 25 == 1 {
                    tracing::info!(reason = %e, "waiting for the cluster to form a quorum");
                }
                tokio::time::sleep(QUORUM_RETRY).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn internal(what: &str, path: &Path, e: impl std::fmt::Display) -> NodeError {
    NodeError::Internal(format!("{what} {}: {e}", path.display()))
}

/// The key store options of `cfg` (a cluster of one without `[raft]`).
fn store_options(cfg: &NodeConfig, clock: Arc<dyn Clock>) -> Result<StoreOptions, NodeError> {
    let raft_dir = cfg.data_dir.join("raft");
    let snap_dir = cfg.data_dir.join("snapshots");
    let space = store::space::SpaceGuard::new(
        cfg.limits.reserve_free_mb.saturating_mul(1024 * 1024),
        vec![
            raft_dir.clone(),
            cfg.data_dir.join("state"),
            snap_dir.clone(),
        ],
    );
    let Some(r) = &cfg.raft else {
        return Ok(StoreOptions {
            space,
            clock,
            ..StoreOptions::single_node(1, raft_dir, snap_dir)
        });
    };
    let tls = crate::tls::peer_client_config(
        &r.peer_listener.tls_cert,
        &r.peer_listener.tls_key,
        &r.cluster_ca,
    )
    .map_err(|e| NodeError::Internal(format!("peer TLS: {e}")))?;
    let mut voters = vec![r.id];
    voters.extend(r.peers.iter().map(|p| p.id));
    Ok(StoreOptions {
        id: r.id,
        raft_dir,
        snap_dir,
        voters: if r.join { Vec::new() } else { voters },
        peers: r.peers.iter().map(|p| (p.id, p.addr.clone())).collect(),
        join: r.join,
        tick: Duration::from_millis(r.tick_ms),
        snapshot_interval: r.snapshot_interval,
        snapshot_keep_entries: r.snapshot_keep_entries,
        peer_tls: Some(Arc::new(tls)),
        space,
        clock,
    })
}

/// Opens everything a node needs from its config, binds the peer listener, and returns once
/// the node has joined its cluster's quorum and checked its state. Runs inside actix.
pub async fn open_node(cfg: &NodeConfig, clock: Arc<dyn Clock>) -> Result<Arc<KmsNode>, NodeError> {
    disable_core_dumps();
    private_umask();
    let barrier = load_unseal_key(cfg.unseal_key_file.as_deref())?;
    create_private_dir(&cfg.data_dir)
        .map_err(|e| internal("cannot create data dir", &cfg.data_dir, e))?;
    for sub in ["state", "raft", "snapshots"] {
        let dir = cfg.data_dir.join(sub);
        if dir.is_dir() {
            create_private_dir(&dir).map_err(|e| internal("cannot protect", &dir, e))?;
        }
    }
    let db = sled::open(cfg.data_dir.join("state"))
        .map_err(|e| internal("cannot open state in", &cfg.data_dir, e))?;
    let state = StateMachine::open(db)?;
    let audit_clock = clock.clone();
    let audit = AuditLog::open(&cfg.audit_file, &cfg.node_id, move || {
        audit_clock.now_unix_ms()
    })
    .map_err(|e| internal("cannot open audit file", &cfg.audit_file, e))?;
    let (inbox_tx, inbox_rx) = tokio::sync::mpsc::channel(INBOX_LEN);
    let store = store::start(store_options(cfg, clock.clone())?, state, inbox_rx)
        .map_err(NodeError::Internal)?;
    if let Some(r) = &cfg.raft {
        let tls = crate::tls::peer_server_config(
            &r.peer_listener.tls_cert,
            &r.peer_listener.tls_key,
            &r.cluster_ca,
        )
        .map_err(|e| NodeError::Internal(format!("peer TLS: {e}")))?;
        // Validation refuses a cluster config without a domain; never serve on the CA alone.
        let domain = r
            .peer_name_domain
            .clone()
            .ok_or_else(|| NodeError::Internal("[raft] peer_name_domain is required".into()))?;
        let server =
            store::listener::server(&r.peer_listener.addr, tls, inbox_tx, store.clone(), domain)
                .map_err(|e| {
                    NodeError::Internal(format!("peer listener {}: {e}", r.peer_listener.addr))
                })?;
        actix_rt::spawn(server);
    }
    let node = KmsNode::new(cfg, store, barrier, audit, clock);
    join_quorum(&node, cfg).await?;
    // What bootstrap wrote is in the Raft log already; flushing sled too means a node that is
    // killed right after it starts does not have to replay it.
    node.flush_state()?;
    let node = Arc::new(node);
    actix_rt::spawn(forget_revoked_masters(Arc::downgrade(&node)));
    Ok(node)
}

/// How often a node looks for certificates revoked through another node.
pub const REVOKED_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Every [`REVOKED_SWEEP_INTERVAL`], while the node lives: drops the unsealed master secrets
/// of certificates the applied state shows revoked ([`super::KeySets::forget_revoked_masters`]), so a
/// revocation made through any node clears them on every node.
async fn forget_revoked_masters(node: std::sync::Weak<KmsNode>) {
    let mut tick = tokio::time::interval(REVOKED_SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(node) = node.upgrade() else {
            return;
        };
        match node.key_sets.forget_revoked_masters() {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                certificates = n,
                "master secrets of revoked certificates dropped"
            ),
            Err(e) => tracing::warn!(error = %e, "sweep of revoked certificates failed"),
        }
    }
}
