//! One KMS node's services, below the HTTP handlers and above the key store: [`KmsNode`] holds
//! one service per domain over a shared [`NodeCore`] (the key store, barrier key, audit trail,
//! clock, metrics):
//!
//! | service | module | owns |
//! |---------|--------|------|
//! | [`KeySets`] | `key_sets` | KM-UU key sets: unsealed master secrets, cache, admission, delivery audit |
//! | [`Groups`] | `groups` | KMS-managed group keys (GMK generation, rotation, expiry, hand-out) |
//! | [`Parties`] | `parties`, `acl`, `key_provisioning`, `subscriptions`, `capif` | the ACL, SEAL key provisioning, key event subscriptions, the CAPIF publication id and revoked invokers |
//! | [`Admin`] | `admin`, `admin_checks` | communities' certificates, revocations, the checks before proposing |
//! | [`Federation`] | `federation`, `federated_status` | partner KMS certificates (import, export, CertCache), the domain lookup, KM-E group keys and their status |
//!
//! Handlers call a service; they never touch sled or the crypto directly.

pub mod acl;
pub mod admin;
mod admin_checks;
pub mod admission;
pub mod bootstrap;
pub mod cache;
pub mod capif;
pub mod core;
pub mod federated_status;
pub mod federation;
pub mod federation_offer;
pub mod groups;
pub mod key_provisioning;
pub mod key_sets;
pub mod metrics;
pub mod parties;
pub mod subscriptions;

use std::ops::Deref;
use std::sync::Arc;

pub use self::admin::Admin;
pub use self::core::{NodeCore, NodeError};
pub use self::federation::Federation;
pub use self::groups::Groups;
pub use self::key_sets::KeySets;
pub use self::parties::Parties;

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::crypto::seal::BarrierKey;
use crate::store::KeyStoreHandle;

/// A node: its services over one shared core (which it also derefs to, for the reads and
/// the key store every caller may use).
pub struct KmsNode {
    core: Arc<NodeCore>,
    pub key_sets: Arc<KeySets>,
    pub admin: Admin,
    pub groups: Groups,
    pub parties: Parties,
    pub federation: Federation,
}

impl KmsNode {
    /// Builds a node over an opened key store; [`bootstrap`] checks the barrier key and
    /// creates the configured communities first.
    pub fn new(
        cfg: &NodeConfig,
        store: KeyStoreHandle,
        barrier: BarrierKey,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let core = Arc::new(NodeCore::new(cfg, store, barrier, audit, clock));
        let key_sets = Arc::new(KeySets::new(core.clone(), cfg));
        Self {
            admin: Admin::new(core.clone(), key_sets.clone()),
            groups: Groups::new(core.clone()),
            parties: Parties::new(core.clone()),
            federation: Federation::new(core.clone(), key_sets.clone()),
            key_sets,
            core,
        }
    }
}

impl Deref for KmsNode {
    type Target = NodeCore;
    fn deref(&self) -> &NodeCore {
        &self.core
    }
}
