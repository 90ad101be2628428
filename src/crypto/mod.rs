//! The cryptographic core of sealkm: pure functions, no I/O, no imports from the rest of the crate.
//!
//! | module      | implements |
//! |-------------|------------|
//! | [`eccsi`]   | RFC 6507 ECCSI on P-256: KMS master pair, deterministic (SSK, PVT) issue, validation, sign, verify |
//! | [`ec256`]   | NIST P-256 field (Montgomery, `mulx`/`adx` or portable) and points: constant-time fixed-base [k]G, variable-time multi-scalar |
//! | [`p256ext`] | P-256 scalar helpers over the `p256` crate's `Scalar`: wide and hash reductions, strict decoding |
//! | [`fp`], [`fp2`] | RFC 6508 parameter set 1 (RFC 6509 App. A): 1024-bit F_p and F_p² in Montgomery form |
//! | [`curve`]   | the supersingular curve y² = x³ − 3x over F_p, constant-time fixed-base tables for P |
//! | [`pairing`] | the Tate–Lichtenbaum pairing exactly as RFC 6508 §3.2 defines it |
//! | [`sakke`]   | RFC 6508: master pair, RSK issue/validation, encapsulate, decapsulate, HashToIntegerRange |
//! | [`mikey`]   | RFC 6509 / RFC 3830 / RFC 6043 MIKEY-SAKKE I_MESSAGE (TS 33.180 Annex E) |
//! | [`kdf`]     | TS 33.220 Annex B KDF, TS 33.180 F.2.1 UID, key period number, F.1.3 GUK-ID, F.1.4 FC 0x51/0x52 |
//! | [`seal`]    | sealing secrets at rest: AES-256-GCM (ring) under a barrier key |
//! | [`secret`]  | secret containers: zeroize on drop, never printed |
//! | [`ct`]      | valgrind (memcheck) hooks that check constant time: secrets poisoned, public results declassified |
//!
//! Every function that touches a secret (KSAK, SSK, v, j, z_T, RSK, SSV, barrier keys) runs in
//! time independent of the secret's value; variable-time code is only ever applied to public
//! values and is named `*_vartime`.

pub mod ct;
pub mod curve;
pub mod ec256;
pub mod eccsi;
pub mod error;
pub mod fp;
pub mod fp2;
pub mod kdf;
pub mod mikey;
pub mod p256ext;
pub mod pairing;
pub mod sakke;
pub mod seal;
mod second_use;
pub mod secret;

pub use error::CryptoError;

/// Whether this CPU has `mulx` (BMI2) and `adcx`/`adox` (ADX): what the fast Montgomery
/// multiplications of `fp::mont` and `ec256` need.
pub fn has_mulx_adx() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("bmi2") && std::is_x86_feature_detected!("adx")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
