//! Sealing secrets at rest (KSAK, z_T, issued key material) under a barrier key.
//!
//! Format (version 1): `0x01 ‖ nonce (12 octets, fresh from the RNG) ‖ AES-256-GCM(ciphertext ‖
//! 16-octet tag)`. The AAD given by the caller names what the blob is (e.g. a key name and
//! purpose) so a blob cannot be swapped for another one sealed under the same key; the version
//! byte is authenticated too, as part of the AAD. Random 96-bit nonces keep the collision
//! probability negligible up to ~2^32 seals per key (NIST SP 800-38D §8.3), far above what a KMS
//! writes; rotate the barrier key well before that.
//!
//! Any failure to open (wrong key, wrong AAD, tampering, truncation, unknown version) is the
//! single error [`CryptoError::Unseal`], so callers cannot distinguish causes (no oracle).

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::SecureRandom;

use super::error::CryptoError;
use super::secret::{SecretBytes, SecretVec};

/// Version byte of the sealed format.
const VERSION: u8 = 1;
/// Tag length of AES-256-GCM.
const TAG_LEN: usize = 16;
/// Smallest valid blob: version, nonce, empty ciphertext, tag.
const MIN_LEN: usize = 1 + NONCE_LEN + TAG_LEN;

/// A 256-bit AES-GCM barrier key. Zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct BarrierKey(SecretBytes<32>);

impl BarrierKey {
    /// From exactly 32 octets.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        SecretBytes::from_slice(bytes)
            .map(Self)
            .ok_or(CryptoError::Malformed {
                what: "barrier key",
                reason: "must be 32 octets",
            })
    }

    /// A fresh random key.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, CryptoError> {
        let mut k = [0u8; 32];
        rng.fill(&mut k).map_err(|_| CryptoError::Rng)?;
        let key = Self(SecretBytes::new(k));
        zeroize::Zeroize::zeroize(&mut k);
        Ok(key)
    }

    /// The key octets (for wrapping under a higher-level key).
    pub fn to_bytes(&self) -> SecretBytes<32> {
        self.0.clone()
    }

    fn aead(&self) -> Result<LessSafeKey, CryptoError> {
        // Cannot fail for a 32-octet key; mapped rather than unwrapped all the same.
        UnboundKey::new(&AES_256_GCM, self.0.expose())
            .map(LessSafeKey::new)
            .map_err(|_| CryptoError::Unseal)
    }
}

impl core::fmt::Debug for BarrierKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("BarrierKey(<redacted>)")
    }
}

/// The AAD actually authenticated: version ‖ caller AAD.
fn full_aad(aad: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + aad.len());
    v.push(VERSION);
    v.extend_from_slice(aad);
    v
}

/// Seals `plaintext` under `key`, binding `aad`. Output: version ‖ nonce ‖ ciphertext ‖ tag.
pub fn seal(
    key: &BarrierKey,
    aad: &[u8],
    plaintext: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, CryptoError> {
    let aead = key.aead()?;
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| CryptoError::Rng)?;
    let mut out = Vec::with_capacity(MIN_LEN + plaintext.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = aead
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(full_aad(aad)),
            &mut out[1 + NONCE_LEN..],
        )
        .map_err(|_| CryptoError::Unseal)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a blob made by [`seal`] with the same key and AAD.
pub fn open(key: &BarrierKey, aad: &[u8], sealed: &[u8]) -> Result<SecretVec, CryptoError> {
    if sealed.len() < MIN_LEN || sealed[0] != VERSION {
        return Err(CryptoError::Unseal);
    }
    let aead = key.aead()?;
    let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN]
        .try_into()
        .map_err(|_| CryptoError::Unseal)?;
    // The buffer holds plaintext after decryption: it becomes a SecretVec on success and is
    // zeroized on failure (ring leaves its content unspecified then).
    let mut raw = sealed[1 + NONCE_LEN..].to_vec();
    let result = aead
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(full_aad(aad)),
            &mut raw,
        )
        .map(|pt| pt.len());
    match result {
        Ok(len) => {
            raw.truncate(len);
            Ok(SecretVec::new(raw))
        }
        Err(_) => {
            zeroize::Zeroize::zeroize(&mut raw);
            Err(CryptoError::Unseal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn key(rng: &SystemRandom) -> BarrierKey {
        BarrierKey::generate(rng).expect("key")
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let rng = SystemRandom::new();
        let k = key(&rng);
        for pt in [&b""[..], b"x", &[0x5A; 1000]] {
            let a = seal(&k, b"ksak/1", pt, &rng).expect("seal");
            let b = seal(&k, b"ksak/1", pt, &rng).expect("seal");
            assert_ne!(a, b, "nonce must be fresh");
            assert_eq!(a.len(), MIN_LEN + pt.len());
            assert_eq!(a[0], VERSION);
            assert_eq!(open(&k, b"ksak/1", &a).expect("open").expose(), pt);
        }
    }

    #[test]
    fn every_kind_of_damage_is_unseal() {
        let rng = SystemRandom::new();
        let k = key(&rng);
        let blob = seal(&k, b"aad", b"secret payload", &rng).expect("seal");
        assert_eq!(open(&key(&rng), b"aad", &blob), Err(CryptoError::Unseal));
        assert_eq!(open(&k, b"aae", &blob), Err(CryptoError::Unseal));
        assert_eq!(open(&k, b"", &blob), Err(CryptoError::Unseal));
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x04;
            assert_eq!(
                open(&k, b"aad", &bad),
                Err(CryptoError::Unseal),
                "bit at {i}"
            );
        }
        for n in 0..blob.len() {
            assert_eq!(open(&k, b"aad", &blob[..n]), Err(CryptoError::Unseal));
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(open(&k, b"aad", &longer), Err(CryptoError::Unseal));
    }

    #[test]
    fn key_encoding_and_debug() {
        assert!(BarrierKey::from_bytes(&[1; 31]).is_err());
        let k = BarrierKey::from_bytes(&[0xAB; 32]).expect("key");
        assert_eq!(k.to_bytes().expose(), &[0xAB; 32]);
        assert!(!format!("{k:?}").to_lowercase().contains("ab"));
    }
}
