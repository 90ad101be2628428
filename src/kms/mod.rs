//! The KMS domain, pure: communities and KMS certificates, key periods, master secrets, user key
//! sets, and the TS 33.180 Annex D XML documents; KMS-managed group keys, the ACL of server
//! principals, key events and subscriptions (our extensions), and SEAL key provisioning records
//! (TS 33.434 5.8). No I/O, no clock reads: callers pass the time.

pub mod acl;
pub mod capif;
pub mod community;
pub mod domains;
pub mod events;
pub mod gmk_message;
pub mod group;
pub mod key_provisioning;
pub mod master;
pub mod names;
pub mod partner;
pub mod period;
pub mod provision;
pub mod xml;

use thiserror::Error;

use crate::crypto::CryptoError;

/// Failures of the KMS domain. Messages are safe to show a client; none carries a secret.
#[derive(Debug, Error)]
pub enum KmsError {
    #[error("community {0} has no valid KMS certificate")]
    NoValidCertificate(String),
    #[error("unknown community {0}")]
    UnknownCommunity(String),
    #[error("identity is revoked")]
    IdentityRevoked,
    #[error("requested key period {requested} is outside the allowed window {first}..={last}")]
    PeriodOutOfWindow {
        requested: u64,
        first: u64,
        last: u64,
    },
    #[error("the time is outside the community's key periods")]
    BadTime,
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}
