//! Starting a node: the unseal (barrier) key from a file or the environment, core dumps off,
//! the state opened and checked against the key, and the configured communities created with a
//! first certificate where they have none valid.

use std::path::Path;
use std::sync::Arc;

use super::core::{Actor, KmsNode, NodeError};
use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::{NodeConfig, UNSEAL_ENV};
use crate::crypto::seal::{self, BarrierKey};
use crate::kms::period::PeriodParams;
use crate::state::{Command, StateMachine};

const BARRIER_CHECK_AAD: &[u8] = b"sealkm/v1/barrier-check";
const BARRIER_CHECK_PLAIN: &[u8] = b"sealkm barrier check";

/// Reads the unseal key: `SEALKM_UNSEAL_KEY` (64 hex digits) wins over `unseal_key_file`.
pub fn load_unseal_key(file: Option<&Path>) -> Result<BarrierKey, NodeError> {
    let text = match std::env::var(UNSEAL_ENV) {
        Ok(v) => zeroize::Zeroizing::new(v),
        Err(_) => {
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
pub fn check_barrier(node: &KmsNode) -> Result<(), NodeError> {
    match node.state.barrier_check()? {
        Some(sealed) => match seal::open(&node.barrier, BARRIER_CHECK_AAD, &sealed) {
            Ok(p) if p.expose() == BARRIER_CHECK_PLAIN => Ok(()),
            _ => Err(NodeError::WrongUnsealKey),
        },
        None => {
            let sealed = seal::seal(
                &node.barrier,
                BARRIER_CHECK_AAD,
                BARRIER_CHECK_PLAIN,
                &node.rng,
            )?;
            node.propose_ok(Command::SetBarrierCheck { sealed })
        }
    }
}

/// Creates configured communities that do not exist and gives each a valid certificate.
pub fn ensure_communities(node: &KmsNode, cfg: &NodeConfig) -> Result<(), NodeError> {
    let actor = Actor(format!("node:{}", cfg.node_id));
    for c in &cfg.communities {
        let period = PeriodParams {
            period_s: c.user_key_period_s,
            offset_s: c.user_key_offset_s,
        };
        node.propose_ok(Command::CreateCommunity {
            kms_uri: c.kms_uri.clone(),
            period,
        })?;
        let community = node.community(&c.kms_uri)?;
        if community.issuing_certificate(node.now()).is_err() {
            node.rotate_certificate(
                &c.kms_uri,
                c.cert_validity_days.saturating_mul(86_400),
                &actor,
            )?;
        }
    }
    Ok(())
}

/// Opens everything a node needs from its config.
pub fn open_node(cfg: &NodeConfig, clock: Arc<dyn Clock>) -> Result<Arc<KmsNode>, NodeError> {
    disable_core_dumps();
    let barrier = load_unseal_key(cfg.unseal_key_file.as_deref())?;
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
        NodeError::Internal(format!(
            "cannot create data dir {}: {e}",
            cfg.data_dir.display()
        ))
    })?;
    let db = sled::open(cfg.data_dir.join("state")).map_err(|e| {
        NodeError::Internal(format!(
            "cannot open state in {}: {e}",
            cfg.data_dir.display()
        ))
    })?;
    let state = StateMachine::open(db)?;
    let audit_clock = clock.clone();
    let audit = AuditLog::open(&cfg.audit_file, &cfg.node_id, move || {
        audit_clock.now_unix_ms()
    })
    .map_err(|e| {
        NodeError::Internal(format!(
            "cannot open audit file {}: {e}",
            cfg.audit_file.display()
        ))
    })?;
    let node = KmsNode::new(cfg, state, barrier, audit, clock);
    check_barrier(&node)?;
    ensure_communities(&node, cfg)?;
    Ok(Arc::new(node))
}
