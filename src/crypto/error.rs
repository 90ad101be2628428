//! The crypto layer's one error type. Variants name *what* failed, never a secret value.

use thiserror::Error;

/// Every failure of the crypto core. No variant carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// An encoding had the wrong length or shape (a point without 0x04, a short scalar, ...).
    #[error("malformed {what}: {reason}")]
    Malformed {
        what: &'static str,
        reason: &'static str,
    },
    /// A point is not on the curve (or is the point at infinity where that is not allowed).
    #[error("{what} is not a valid curve point")]
    NotOnCurve { what: &'static str },
    /// A scalar is out of its range (zero, or not below the group order).
    #[error("{what} is out of range")]
    ScalarOutOfRange { what: &'static str },
    /// ECCSI (SSK, PVT) pair does not satisfy KPAK = [SSK]G − [HS]PVT (RFC 6507 §5.1.2).
    #[error("ECCSI key pair (SSK, PVT) does not validate against the KPAK and identifier")]
    InvalidEccsiKeyPair,
    /// ECCSI signature does not verify (RFC 6507 §5.2.2).
    #[error("ECCSI signature does not verify")]
    BadSignature,
    /// SAKKE RSK fails ⟨[a]P + Z, K⟩ = g (RFC 6508 §6.1.2).
    #[error(
        "SAKKE receiver secret key does not validate against the KMS public key and identifier"
    )]
    InvalidRsk,
    /// SAKKE decapsulation's re-encapsulation check failed (RFC 6508 §6.2.2 step 4).
    #[error("SAKKE encapsulated data is not valid for this identifier")]
    DecapsulationFailed,
    /// The master secret makes a + z ≡ 0 mod q for this identifier: the master key must be replaced.
    #[error("the KMS master secret is unusable for this identifier and must be replaced")]
    MasterKeyCollision,
    /// A MIKEY message could not be parsed (RFC 3830 / RFC 6509 framing).
    #[error("malformed MIKEY message: {0}")]
    Mikey(&'static str),
    /// Sealed data could not be opened (wrong barrier key, tampered, or truncated).
    #[error("sealed data could not be opened: wrong key or tampered data")]
    Unseal,
    /// The system RNG failed.
    #[error("random number generator failure")]
    Rng,
}
