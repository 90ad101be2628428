//! The identity management server's signing keys: a JWK Set (RFC 7517 §5) holding EC P-256 keys
//! (RFC 7518 §6.2: `kty` "EC", `crv` "P-256", `x`, `y`) and RSA keys (RFC 7518 §6.3: `kty`
//! "RSA", `n`, `e`), each with an optional `kid`, `alg` and `use` (RFC 7517 §4).
//!
//! Loading policy: a key that sealkm cannot use for token signatures (another `kty` or curve, an
//! `alg` other than ES256/RS256, `use` other than "sig", or `key_ops` without "verify") is skipped
//! and listed in [`Jwks::skipped`], because real identity providers publish encryption keys in the
//! same set. A key of a supported type whose material is wrong (bad base64url, a point not on
//! the curve, an RSA modulus outside 2048–8192 bits), a duplicate `kid`, or a set with no usable
//! key is an error: that is a configuration mistake, not something to run with.

use std::fmt;

use ring::{agreement, rand::SystemRandom, signature};
use serde_json::Value;

use super::{base64url_decode, AuthError};

/// Upper bound on the number of keys accepted in one set; it bounds the work a token without
/// `kid` can cause (one signature check per candidate key).
pub const MAX_JWKS_KEYS: usize = 32;

/// Upper bound on a JWKS document's size.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The JWS algorithms sealkm accepts (RFC 7518 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwkAlg {
    /// ECDSA P-256 with SHA-256, signature `r || s` (RFC 7518 §3.4).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3).
    Rs256,
}

impl JwkAlg {
    /// Parses a JWS `alg` value; only "ES256" and "RS256" are recognised (case-sensitive,
    /// RFC 7515 §4.1.1).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(JwkAlg::Es256),
            "RS256" => Some(JwkAlg::Rs256),
            _ => None,
        }
    }

    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            JwkAlg::Es256 => "ES256",
            JwkAlg::Rs256 => "RS256",
        }
    }
}

#[derive(Clone)]
enum KeyMaterial {
    /// SEC 1 uncompressed point `04 || x || y`, validated on the curve at load.
    EcP256([u8; 65]),
    /// Big-endian modulus and exponent without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// One public signing key.
#[derive(Clone)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<JwkAlg>,
    material: KeyMaterial,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kty = match self.material {
            KeyMaterial::EcP256(_) => "EC P-256",
            KeyMaterial::Rsa { ref n, .. } => {
                return write!(f, "Jwk(RSA-{} kid={:?})", n.len() * 8, self.kid)
            }
        };
        write!(f, "Jwk({kty} kid={:?})", self.kid)
    }
}

impl Jwk {
    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm this key verifies: fixed by its type (EC P-256 → ES256, RSA → RS256).
    pub fn alg(&self) -> JwkAlg {
        match self.material {
            KeyMaterial::EcP256(_) => JwkAlg::Es256,
            KeyMaterial::Rsa { .. } => JwkAlg::Rs256,
        }
    }

    /// Whether this key may verify a JWS whose header says `alg`: the key type must fit, and a
    /// key that declares `alg` must declare the same one (RFC 7517 §4.4).
    pub fn accepts(&self, alg: JwkAlg) -> bool {
        self.alg() == alg && self.alg.is_none_or(|a| a == alg)
    }

    /// Verifies `signature` over `message` with this key for `alg`. `false` for a type mismatch.
    pub fn verify(&self, alg: JwkAlg, message: &[u8], sig: &[u8]) -> bool {
        if !self.accepts(alg) {
            return false;
        }
        match &self.material {
            KeyMaterial::EcP256(point) => {
                // RFC 7518 §3.4: the JWS signature is the 64-byte fixed-width r || s.
                sig.len() == 64
                    && signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                        .verify(message, sig)
                        .is_ok()
            }
            KeyMaterial::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
        }
    }
}

/// A key left out of the set at load, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the document's `keys` array.
    pub index: usize,
    pub kid: Option<String>,
    pub reason: &'static str,
}

/// Why a JWKS document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("JWKS document is not a JSON object with a \"keys\" array")]
    NotAKeySet,
    #[error("JWKS has more than {MAX_JWKS_KEYS} keys")]
    TooManyKeys,
    #[error("JWKS key #{index}: {reason}")]
    BadKey { index: usize, reason: &'static str },
    #[error("JWKS key #{index}: duplicate kid")]
    DuplicateKid { index: usize },
    #[error("JWKS has no usable signing key (ES256 P-256 or RS256)")]
    NoUsableKey,
}

/// The identity management server's signing keys, looked up by `kid`.
#[derive(Debug, Clone)]
pub struct Jwks {
    keys: Vec<Jwk>,
    skipped: Vec<SkippedKey>,
}

impl Jwks {
    /// Parses a JWK Set document (RFC 7517 §5).
    pub fn from_json(document: &str) -> Result<Self, JwksError> {
        if document.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let value: Value = serde_json::from_str(document).map_err(|_| JwksError::NotAKeySet)?;
        let entries = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NotAKeySet)?;
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        let mut keys: Vec<Jwk> = Vec::new();
        let mut skipped = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match parse_key(entry) {
                Ok(Parsed::Key(key)) => {
                    if key.kid.is_some() && keys.iter().any(|k| k.kid == key.kid) {
                        return Err(JwksError::DuplicateKid { index });
                    }
                    keys.push(key);
                }
                Ok(Parsed::Skip(reason)) => skipped.push(SkippedKey {
                    index,
                    kid: entry.get("kid").and_then(Value::as_str).map(str::to_owned),
                    reason,
                }),
                Err(reason) => return Err(JwksError::BadKey { index, reason }),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(Jwks { keys, skipped })
    }

    /// The usable keys.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Keys of the document that were left out, with reasons (for a startup log line).
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// The keys that may verify a token with header `kid` and `alg`.
    ///
    /// With a `kid`, exactly the key of that `kid` (RFC 7515 §4.1.4), which must fit `alg`.
    /// Without one, every key that fits `alg`; the caller tries each (bounded by
    /// [`MAX_JWKS_KEYS`]).
    pub fn candidates(&self, kid: Option<&str>, alg: JwkAlg) -> Result<Vec<&Jwk>, AuthError> {
        match kid {
            Some(kid) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| k.kid.as_deref() == Some(kid))
                    .ok_or(AuthError::UnknownKey)?;
                if key.accepts(alg) {
                    Ok(vec![key])
                } else {
                    Err(AuthError::KeyAlgorithmMismatch)
                }
            }
            None => {
                let found: Vec<&Jwk> = self.keys.iter().filter(|k| k.accepts(alg)).collect();
                if found.is_empty() {
                    Err(AuthError::UnknownKey)
                } else {
                    Ok(found)
                }
            }
        }
    }
}

impl Jwk {
    /// Parses one JWK (RFC 7517 §4); unsupported keys are errors here.
    pub fn from_json(document: &str) -> Result<Self, JwksError> {
        let value: Value = serde_json::from_str(document).map_err(|_| JwksError::BadKey {
            index: 0,
            reason: "not a JSON object",
        })?;
        match parse_key(&value) {
            Ok(Parsed::Key(key)) => Ok(key),
            Ok(Parsed::Skip(reason)) | Err(reason) => Err(JwksError::BadKey { index: 0, reason }),
        }
    }
}

enum Parsed {
    Key(Jwk),
    Skip(&'static str),
}

fn opt_str<'a>(entry: &'a Value, name: &str) -> Result<Option<&'a str>, &'static str> {
    match entry.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err("a member that must be a string is not"),
    }
}

fn required_b64(entry: &Value, name: &str) -> Result<Vec<u8>, &'static str> {
    let text = entry
        .get(name)
        .and_then(Value::as_str)
        .ok_or("a required key parameter is missing")?;
    base64url_decode(text).ok_or("a key parameter is not base64url")
}

fn parse_key(entry: &Value) -> Result<Parsed, &'static str> {
    if !entry.is_object() {
        return Err("not a JSON object");
    }
    let kid = opt_str(entry, "kid")?.map(str::to_owned);
    let kty = opt_str(entry, "kty")?.ok_or("kty is missing")?;
    if let Some(use_) = opt_str(entry, "use")? {
        if use_ != "sig" {
            return Ok(Parsed::Skip("use is not \"sig\""));
        }
    }
    if let Some(ops) = entry.get("key_ops") {
        let ops = ops.as_array().ok_or("key_ops is not an array")?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return Ok(Parsed::Skip("key_ops does not include \"verify\""));
        }
    }
    let alg = match opt_str(entry, "alg")? {
        None => None,
        Some(name) => match JwkAlg::from_name(name) {
            Some(a) => Some(a),
            None => return Ok(Parsed::Skip("alg is not ES256 or RS256")),
        },
    };
    let material = match kty {
        "EC" => {
            if opt_str(entry, "crv")? != Some("P-256") {
                return Ok(Parsed::Skip("EC curve is not P-256"));
            }
            if alg == Some(JwkAlg::Rs256) {
                return Err("EC key declares alg RS256");
            }
            if entry.get("d").is_some() {
                return Err("a private key was published in the key set");
            }
            let x = required_b64(entry, "x")?;
            let y = required_b64(entry, "y")?;
            // RFC 7518 §6.2.1.2/3: x and y are the full 32-byte coordinates.
            if x.len() != 32 || y.len() != 32 {
                return Err("EC coordinates are not 32 bytes");
            }
            let mut point = [0u8; 65];
            point[0] = 0x04;
            point[1..33].copy_from_slice(&x);
            point[33..].copy_from_slice(&y);
            if !point_on_p256(&point) {
                return Err("EC point is not on P-256");
            }
            KeyMaterial::EcP256(point)
        }
        "RSA" => {
            if alg == Some(JwkAlg::Es256) {
                return Err("RSA key declares alg ES256");
            }
            if entry.get("d").is_some() {
                return Err("a private key was published in the key set");
            }
            let n = strip_leading_zeros(required_b64(entry, "n")?);
            let e = strip_leading_zeros(required_b64(entry, "e")?);
            let n_bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
            if !(2048..=8192).contains(&n_bits) {
                return Err("RSA modulus is not 2048 to 8192 bits");
            }
            if e.is_empty() || e.len() > 4 || e.last().is_none_or(|b| b & 1 == 0) || e == [1] {
                return Err("RSA exponent is not an odd value of at most 32 bits");
            }
            KeyMaterial::Rsa { n, e }
        }
        _ => return Ok(Parsed::Skip("kty is not EC or RSA")),
    };
    Ok(Parsed::Key(Jwk { kid, alg, material }))
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// Checks that `point` is a valid P-256 point. ring offers no direct validator, but its ECDH
/// performs full public-key validation (SP 800-56A 5.6.2.3) of the peer point, so one ephemeral
/// agreement is used as the check; it runs once per key at load.
fn point_on_p256(point: &[u8; 65]) -> bool {
    let rng = SystemRandom::new();
    let Ok(ours) = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng) else {
        return false;
    };
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, point);
    agreement::agree_ephemeral(ours, &peer, |_| ()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The P-256 key of RFC 7515 Appendix A.3.
    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn ec(kid: &str) -> String {
        format!(r#"{{"kty":"EC","crv":"P-256","x":"{EC_X}","y":"{EC_Y}","kid":"{kid}"}}"#)
    }

    #[test]
    fn parses_ec_key_and_skips_unsupported_ones() {
        let doc = format!(
            r#"{{"keys":[{},{{"kty":"oct","k":"AAAA","kid":"h"}},{{"kty":"EC","crv":"P-384","x":"","y":"","kid":"p384"}},{{"kty":"RSA","use":"enc","n":"","e":"AQAB","kid":"enc"}}]}}"#,
            ec("a")
        );
        let set = Jwks::from_json(&doc).expect("valid set");
        assert_eq!(set.keys().len(), 1);
        assert_eq!(set.keys()[0].kid(), Some("a"));
        let reasons: Vec<_> = set.skipped().iter().map(|s| s.index).collect();
        assert_eq!(reasons, vec![1, 2, 3]);
    }

    #[test]
    fn rejects_bad_material_duplicates_and_empty_sets() {
        let off_curve =
            format!(r#"{{"keys":[{{"kty":"EC","crv":"P-256","x":"{EC_X}","y":"{EC_X}"}}]}}"#);
        assert!(matches!(
            Jwks::from_json(&off_curve),
            Err(JwksError::BadKey { index: 0, .. })
        ));
        let dup = format!(r#"{{"keys":[{},{}]}}"#, ec("a"), ec("a"));
        assert_eq!(
            Jwks::from_json(&dup).unwrap_err(),
            JwksError::DuplicateKid { index: 1 }
        );
        assert_eq!(
            Jwks::from_json(r#"{"keys":[]}"#).unwrap_err(),
            JwksError::NoUsableKey
        );
        assert_eq!(Jwks::from_json("[]").unwrap_err(), JwksError::NotAKeySet);
        let small_rsa = r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#;
        assert!(matches!(
            Jwks::from_json(small_rsa),
            Err(JwksError::BadKey { .. })
        ));
    }

    #[test]
    fn lookup_by_kid_and_by_alg() {
        let set = Jwks::from_json(&format!(r#"{{"keys":[{}]}}"#, ec("a"))).expect("valid set");
        assert!(set.candidates(Some("a"), JwkAlg::Es256).is_ok());
        assert_eq!(
            set.candidates(Some("b"), JwkAlg::Es256).unwrap_err(),
            AuthError::UnknownKey
        );
        assert_eq!(
            set.candidates(Some("a"), JwkAlg::Rs256).unwrap_err(),
            AuthError::KeyAlgorithmMismatch
        );
        assert_eq!(set.candidates(None, JwkAlg::Es256).map(|v| v.len()), Ok(1));
        assert_eq!(
            set.candidates(None, JwkAlg::Rs256).unwrap_err(),
            AuthError::UnknownKey
        );
    }
}
