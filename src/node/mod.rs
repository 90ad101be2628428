//! One KMS node's core, below the HTTP handlers: the state machine and how writes reach it,
//! unsealed master secrets, the key-set cache, admission control and the audit trail.
//! Handlers call [`KmsNode`]; they never touch sled or the crypto directly.

pub mod acl;
mod admin_checks;
pub mod admission;
pub mod bootstrap;
pub mod cache;
pub mod core;
pub mod groups;
pub mod key_provisioning;
pub mod metrics;
pub mod subscriptions;

pub use self::core::{KmsNode, NodeError};
