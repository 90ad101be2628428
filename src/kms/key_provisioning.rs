//! SEAL key provisioning (TS 33.434 cl. 5.8): key information a VAL server pushes to the KMS for
//! a VAL service, client, device or user. The message fields of 33.434 5.8.2 are not in our
//! spec digest, so the key information is opaque bytes here; what this module owns is its
//! record, its naming rules and its sealing: it is stored only sealed under the barrier key,
//! bound to (principal, key id) by the AAD. Pure: the proposer seals, the state stores.

use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use thiserror::Error;

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

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyProvisioningError {
    #[error("invalid key id: {0}")]
    InvalidKeyId(&'static str),
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

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

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
