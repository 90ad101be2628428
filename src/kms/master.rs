//! A community certificate's master secrets: the ECCSI KSAK (RFC 6507 §4.2) and the SAKKE z_T
//! (RFC 6508 §6.1.1), with their public halves (KPAK, Z_T). Sealed as one blob
//! `KSAK (32) ‖ z_T (128)` under the barrier key; unsealed copies zeroize on drop.

use ring::rand::SecureRandom;

use crate::crypto::eccsi::{EccsiMasterSecret, Kpak};
use crate::crypto::sakke::{SakkeMasterSecret, SakkePublicKey};
use crate::crypto::seal::{self, BarrierKey};
use crate::crypto::secret::SecretVec;
use crate::crypto::CryptoError;

const KSAK_LEN: usize = 32;
const Z_LEN: usize = 128;

/// Unsealed master secrets of one certificate. No `Debug` that shows them, no `Clone`.
pub struct MasterSecrets {
    pub ksak: EccsiMasterSecret,
    pub z: SakkeMasterSecret,
    pub kpak: Kpak,
    pub z_pub: SakkePublicKey,
}

impl core::fmt::Debug for MasterSecrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MasterSecrets(<redacted>)")
    }
}

impl MasterSecrets {
    /// Fresh master secrets from the RNG.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, CryptoError> {
        Self::from_parts(
            EccsiMasterSecret::generate(rng)?,
            SakkeMasterSecret::generate(rng)?,
        )
    }

    fn from_parts(ksak: EccsiMasterSecret, z: SakkeMasterSecret) -> Result<Self, CryptoError> {
        let kpak = ksak.kpak();
        let z_pub = z.public_key();
        Ok(Self {
            ksak,
            z,
            kpak,
            z_pub,
        })
    }

    /// Seals `KSAK ‖ z_T` under the barrier key, bound to `aad` (the certificate URI).
    pub fn seal(
        &self,
        key: &BarrierKey,
        aad: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, CryptoError> {
        let ksak = self.ksak.to_bytes();
        let z = self.z.to_bytes();
        // Capacity is exact, so the buffer never reallocates and leaves an unzeroized copy.
        let mut buf = Vec::with_capacity(KSAK_LEN + Z_LEN);
        buf.extend_from_slice(ksak.expose());
        buf.extend_from_slice(z.expose());
        let plain = SecretVec::new(buf);
        seal::seal(key, aad, plain.expose(), rng)
    }

    /// Opens a sealed blob; `CryptoError::Unseal` for a wrong key, wrong AAD or tampering.
    pub fn unseal(key: &BarrierKey, aad: &[u8], sealed: &[u8]) -> Result<Self, CryptoError> {
        let plain = seal::open(key, aad, sealed)?;
        let bytes = plain.expose();
        if bytes.len() != KSAK_LEN + Z_LEN {
            return Err(CryptoError::Unseal);
        }
        let ksak = EccsiMasterSecret::from_bytes(&bytes[..KSAK_LEN])?;
        let z = SakkeMasterSecret::from_bytes(&bytes[KSAK_LEN..])?;
        Self::from_parts(ksak, z)
    }
}
