//! SEAL key provisioning (TS 33.434 cl. 5.8): key information a VAL server pushes to the KMS for
//! a VAL service, client, device or user. The message fields of 33.434 5.8.2 are not in our
//! spec digest, so the key information is opaque bytes here; what this module owns is its
//! record, its naming rules and its sealing: it is stored only sealed under the barrier key,
//! bound to (principal, key id) by the AAD. Pure: the proposer seals, the state stores.
//!
//! A push may name a VAL service (and a target VAL user or UE): it is then what
//! `SS_KeyInfoRetrieval` (TS 29.549 7.6.1, `ss-kir`) answers for that (service, target). This
//! module owns the retrieval rule ([`choose`]):
//!
//! - a VAL server may read a (service, target) when its ACL entry (role `val-server`) grants
//!   the service id in its group list (`*` or the exact id: the one list names both the
//!   groups and the VAL services a principal may read), or when it pushed key information for
//!   that same (service, target) itself — then it sees only its own pushes;
//! - of the visible pushes, the newest (the last applied, [`ServiceKeyRef::seq`]) answers;
//! - not entitled (no grant, no push of its own) is a refusal, even when nothing was pushed,
//!   so that a VAL server cannot probe what others pushed; entitled and nothing visible is
//!   "no record".

use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::acl::{AclEntry, Role};
use crate::crypto::seal::{self, BarrierKey};
use crate::crypto::secret::SecretVec;
use crate::crypto::CryptoError;

/// Longest key id, in bytes.
pub const MAX_KEY_ID_BYTES: usize = 255;
/// Largest sealed key information, in bytes.
pub const MAX_SEALED_INFO_BYTES: usize = 64 * 1024;
/// Key information records one principal may keep (a quota on the replicated state; a push
/// that replaces an existing key id is always allowed).
pub const MAX_RECORDS_PER_PRINCIPAL: usize = 10_000;

/// Longest VAL service id or target (VAL user or UE id), in bytes.
pub const MAX_VAL_ID_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyProvisioningError {
    #[error("invalid key id: {0}")]
    InvalidKeyId(&'static str),
    /// A VAL service id or target: which one, and why.
    #[error("invalid {0}: {1}")]
    InvalidValId(&'static str, &'static str),
    #[error("sealed key information must be 1 to {MAX_SEALED_INFO_BYTES} bytes")]
    BadSize,
}

/// Checks a key id: non-empty, at most [`MAX_KEY_ID_BYTES`], printable, no '/'.
pub fn validate_key_id(key_id: &str) -> Result<(), KeyProvisioningError> {
    if key_id.is_empty() {
        return Err(KeyProvisioningError::InvalidKeyId("empty"));
    }
    if key_id.len() > MAX_KEY_ID_BYTES {
        return Err(KeyProvisioningError::InvalidKeyId("longer than 255 bytes"));
    }
    if key_id.contains('/') || key_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(KeyProvisioningError::InvalidKeyId(
            "not printable or contains '/'",
        ));
    }
    Ok(())
}

/// Checks a VAL service id or target (`what` names it in the error): non-empty, at most
/// [`MAX_VAL_ID_BYTES`], no control characters (so state keys can use NUL as a separator).
pub fn validate_val_id(what: &'static str, v: &str) -> Result<(), KeyProvisioningError> {
    if v.is_empty() {
        return Err(KeyProvisioningError::InvalidValId(what, "empty"));
    }
    if v.len() > MAX_VAL_ID_BYTES {
        return Err(KeyProvisioningError::InvalidValId(
            what,
            "longer than 1024 bytes",
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(KeyProvisioningError::InvalidValId(
            what,
            "contains control characters",
        ));
    }
    Ok(())
}

/// The AAD binding sealed key information to its principal and key id (the principal's length
/// comes first, so the string is unambiguous whatever the principal contains).
pub fn key_info_aad(principal: &str, key_id: &str) -> Vec<u8> {
    format!("sealkm/v1/keyprov/{}/{principal}/{key_id}", principal.len()).into_bytes()
}

/// Proposer side: seals pushed key information for (principal, key id).
pub fn seal_key_info(
    barrier: &BarrierKey,
    principal: &str,
    key_id: &str,
    info: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, CryptoError> {
    seal::seal(barrier, &key_info_aad(principal, key_id), info, rng)
}

/// One stored push. `Debug` does not show the sealed bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyProvisioning {
    /// The VAL server that pushed it (certificate SAN).
    pub principal: String,
    pub key_id: String,
    pub sealed_info: Vec<u8>,
    pub at_unix: u64,
}

impl core::fmt::Debug for KeyProvisioning {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyProvisioning")
            .field("principal", &self.principal)
            .field("key_id", &self.key_id)
            .field("at_unix", &self.at_unix)
            .finish_non_exhaustive()
    }
}

impl KeyProvisioning {
    /// Opens the key information; `CryptoError::Unseal` for a wrong key or a moved blob.
    pub fn open(&self, barrier: &BarrierKey) -> Result<SecretVec, CryptoError> {
        seal::open(
            barrier,
            &key_info_aad(&self.principal, &self.key_id),
            &self.sealed_info,
        )
    }
}

/// The replicated pointer from a (VAL service, target, pushing VAL server) to its newest push
/// (the record itself stays under (principal, key id)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceKeyRef {
    /// The VAL server that pushed it.
    pub principal: String,
    pub key_id: String,
    pub val_service_id: String,
    pub val_tgt_ue: Option<String>,
    pub at_unix: u64,
    /// Apply order of service pushes (a counter of the replicated state): larger is newer.
    pub seq: u64,
}

/// What [`choose`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retrieval<'a> {
    Found(&'a ServiceKeyRef),
    /// Entitled to the service, but nothing it may see was pushed for this target.
    NoRecord,
    /// Neither granted the service nor a pusher of it.
    NotEntitled,
}

/// May `acl` read every push for `val_service_id` (not only its own)? A `val-server` whose
/// group list grants the id (`*` or exactly it).
pub fn grants_service(acl: &AclEntry, val_service_id: &str) -> bool {
    acl.role == Role::ValServer && acl.allows_group(val_service_id)
}

/// The push that answers `acl`'s principal among `refs` (the pushes for one (service,
/// target)): the module's retrieval rule.
pub fn choose<'a>(
    acl: &AclEntry,
    val_service_id: &str,
    refs: &'a [ServiceKeyRef],
) -> Retrieval<'a> {
    let granted = grants_service(acl, val_service_id);
    let own = acl.role == Role::ValServer;
    let newest = refs
        .iter()
        .filter(|r| r.val_service_id == val_service_id)
        .filter(|r| granted || (own && r.principal == acl.principal))
        .max_by_key(|r| r.seq);
    match newest {
        Some(r) => Retrieval::Found(r),
        None if granted => Retrieval::NoRecord,
        None => Retrieval::NotEntitled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn push(principal: &str, service: &str, seq: u64) -> ServiceKeyRef {
        ServiceKeyRef {
            principal: principal.into(),
            key_id: format!("k{seq}"),
            val_service_id: service.into(),
            val_tgt_ue: None,
            at_unix: 100,
            seq,
        }
    }

    fn entry(principal: &str, role: Role, groups: &[&str]) -> AclEntry {
        let g: Vec<String> = groups.iter().map(|s| (*s).to_owned()).collect();
        AclEntry::new(principal, role, &g).unwrap()
    }

    #[test]
    fn retrieval_rule() {
        let refs = [push("val1", "svc", 3), push("val2", "svc", 5)];
        // Granted (exact id or '*'): the newest push of anyone.
        for g in [&["svc"][..], &["*"][..]] {
            let acl = entry("val3", Role::ValServer, g);
            assert_eq!(choose(&acl, "svc", &refs), Retrieval::Found(&refs[1]));
            assert_eq!(choose(&acl, "svc", &[]), Retrieval::NoRecord);
        }
        // Not granted: only its own pushes; none of its own is a refusal, not "no record".
        let own = entry("val1", Role::ValServer, &["other"]);
        assert_eq!(choose(&own, "svc", &refs), Retrieval::Found(&refs[0]));
        let stranger = entry("val9", Role::ValServer, &["other"]);
        assert_eq!(choose(&stranger, "svc", &refs), Retrieval::NotEntitled);
        assert_eq!(choose(&stranger, "svc", &[]), Retrieval::NotEntitled);
        // Another role never reads, whatever its group list says.
        let gms = entry("val1", Role::Gms, &["*"]);
        assert_eq!(choose(&gms, "svc", &refs), Retrieval::NotEntitled);
        // Pushes for another service never answer.
        let acl = entry("val3", Role::ValServer, &["*"]);
        assert_eq!(choose(&acl, "svc2", &refs), Retrieval::NoRecord);
    }

    #[test]
    fn val_id_rules() {
        assert!(validate_val_id("val-service-id", "urn:svc:1/a b").is_ok());
        for bad in ["", "a\u{0}b", "a\nb", &"s".repeat(1025)] {
            assert!(validate_val_id("val-service-id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seal_open_bound_to_principal_and_key_id() {
        let rng = SystemRandom::new();
        let k = BarrierKey::from_bytes(&[7; 32]).unwrap();
        let sealed = seal_key_info(&k, "val1", "svc-key", b"key info", &rng).unwrap();
        let mut rec = KeyProvisioning {
            principal: "val1".into(),
            key_id: "svc-key".into(),
            sealed_info: sealed,
            at_unix: 1,
        };
        assert_eq!(rec.open(&k).unwrap().expose(), b"key info");
        assert!(!format!("{rec:?}").contains("sealed"));
        rec.key_id = "other".into();
        assert_eq!(rec.open(&k), Err(CryptoError::Unseal));
        assert_ne!(key_info_aad("a/b", "c"), key_info_aad("a", "b/c"));
    }

    #[test]
    fn key_id_rules() {
        assert!(validate_key_id("k-1").is_ok());
        for bad in ["", "a/b", "a b", &"k".repeat(256)] {
            assert!(validate_key_id(bad).is_err(), "{bad}");
        }
    }
}
