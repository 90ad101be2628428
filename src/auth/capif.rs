//! CAPIF OAUTH (TS 33.122 6.5.2.3 and Annex C): an API invoker's bearer token, issued and
//! signed by the CAPIF core function (CCF), verified against the CCF's configured keys. The
//! JWS checks are the identity management server's ([`super::jwt::verify_jws`]: three parts,
//! ES256 or RS256 only, no `crit`, key from the configured set); the claims are CAPIF's:
//! `exp` required (leeway at most 30 s), `nbf`/`iat` not in the future, `iss` and `aud` only
//! when configured, a scope granting `<aefId>:<apiName>` ([`crate::kms::capif::scope_grants`]),
//! and the invoker id from `client_id`, else `sub` (the open-source CCF puts it in `sub`).
//!
//! The CCF's keys come as a JWKS or as PEM public keys (`PUBLIC KEY` or a `CERTIFICATE`):
//! [`load_keys`].

use serde_json::{json, Map, Value};

use super::jwt::{numeric_date, scopes, verify_jws};
use super::{base64url_encode, AuthError, Jwks};
use crate::kms::capif::scope_grants;

/// What a CCF token must say, besides its signature.
#[derive(Debug, Clone)]
pub struct CcfTokenVerifier {
    jwks: Jwks,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_s: u64,
    aef_id: String,
}

/// An accepted CCF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapifToken {
    /// The `apiInvokerId` (`client_id`, else `sub`).
    pub invoker: String,
    pub expires_at: u64,
    /// `iat`, if present.
    pub issued_at: Option<u64>,
}

impl CcfTokenVerifier {
    pub fn new(
        jwks: Jwks,
        issuer: Option<String>,
        audience: Option<String>,
        leeway_s: u64,
        aef_id: &str,
    ) -> Self {
        Self {
            jwks,
            issuer,
            audience,
            leeway_s: leeway_s.min(30),
            aef_id: aef_id.to_owned(),
        }
    }

    /// Verifies `token` for `api_name` of this AEF at `now`.
    pub fn verify(&self, token: &str, now: u64, api_name: &str) -> Result<CapifToken, AuthError> {
        let claims = verify_jws(&self.jwks, token)?;
        self.check(&claims, now, api_name)
    }

    fn check(
        &self,
        claims: &Map<String, Value>,
        now: u64,
        api_name: &str,
    ) -> Result<CapifToken, AuthError> {
        let leeway = self.leeway_s;
        let exp = numeric_date(claims, "exp")?.ok_or(AuthError::InvalidClaim("exp is required"))?;
        if now >= exp.saturating_add(leeway) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = numeric_date(claims, "nbf")? {
            if nbf > now.saturating_add(leeway) {
                return Err(AuthError::NotYetValid);
            }
        }
        let iat = numeric_date(claims, "iat")?;
        if iat.is_some_and(|i| i > now.saturating_add(leeway)) {
            return Err(AuthError::InvalidClaim("iat is in the future"));
        }
        if let Some(iss) = &self.issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(iss.as_str()) {
                return Err(AuthError::WrongIssuer);
            }
        }
        if let Some(aud) = &self.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => a == aud,
                Some(Value::Array(l)) => l.iter().any(|a| a.as_str() == Some(aud.as_str())),
                _ => false,
            };
            if !ok {
                return Err(AuthError::WrongAudience);
            }
        }
        let invoker = ["client_id", "sub"]
            .iter()
            .find_map(|c| match claims.get(*c) {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            })
            .ok_or(AuthError::MissingIdentity)?;
        if !scope_grants(&scopes(claims.get("scope"))?, &self.aef_id, api_name) {
            return Err(AuthError::MissingScope);
        }
        Ok(CapifToken {
            invoker,
            expires_at: exp,
            issued_at: iat,
        })
    }
}

/// Why the CCF's key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{0}")]
    Jwks(#[from] super::jwks::JwksError),
    #[error("no usable PEM public key (RSA, or EC P-256)")]
    NoKey,
    #[error("PEM: {0}")]
    Pem(String),
}

/// The CCF's token keys from a JWKS document or PEM text (public keys or certificates).
pub fn load_keys(text: &str) -> Result<Jwks, KeyFileError> {
    if text.trim_start().starts_with('{') {
        return Ok(Jwks::from_json(text)?);
    }
    let mut keys = Vec::new();
    let mut reader = std::io::BufReader::new(text.as_bytes());
    for item in rustls_pemfile::read_all(&mut reader) {
        let spki: Vec<u8> = match item.map_err(|e| KeyFileError::Pem(e.to_string()))? {
            rustls_pemfile::Item::SubjectPublicKeyInfo(k) => k.as_ref().to_vec(),
            rustls_pemfile::Item::X509Certificate(c) => {
                let (_, cert) = x509_parser::parse_x509_certificate(c.as_ref())
                    .map_err(|e| KeyFileError::Pem(e.to_string()))?;
                cert.public_key().raw.to_vec()
            }
            _ => continue,
        };
        if let Some(jwk) = jwk_of_spki(&spki) {
            keys.push(jwk);
        }
    }
    if keys.is_empty() {
        return Err(KeyFileError::NoKey);
    }
    Ok(Jwks::from_json(&json!({ "keys": keys }).to_string())?)
}

/// A JWK (JSON) of a DER SubjectPublicKeyInfo: RSA, or EC on P-256.
fn jwk_of_spki(der: &[u8]) -> Option<Value> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    const P256: &str = "1.2.840.10045.3.1.7";
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der).ok()?;
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => {
            let strip = |b: &[u8]| {
                let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
                b[i..].to_vec()
            };
            Some(json!({
                "kty": "RSA",
                "n": base64url_encode(&strip(rsa.modulus)),
                "e": base64url_encode(&strip(rsa.exponent)),
            }))
        }
        PublicKey::EC(point) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let p = point.data();
            (curve.as_deref() == Some(P256) && p.len() == 65 && p[0] == 4).then(|| {
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": base64url_encode(&p[1..33]),
                    "y": base64url_encode(&p[33..]),
                })
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> CcfTokenVerifier {
        let kp = rcgen::KeyPair::generate().unwrap();
        let jwks = load_keys(&kp.public_key_pem()).unwrap();
        CcfTokenVerifier::new(jwks, None, None, 10, "aef1")
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn pem_keys_load() {
        let kp = rcgen::KeyPair::generate().unwrap();
        assert_eq!(load_keys(&kp.public_key_pem()).unwrap().keys().len(), 1);
        assert!(load_keys("-----BEGIN NOTHING-----\n-----END NOTHING-----\n").is_err());
    }

    #[test]
    fn claims_rule() {
        let v = verifier();
        let ok = claims(json!({"exp": 1000, "sub": "INV1", "scope": "3gpp#aef1:ss-kir"}));
        assert_eq!(v.check(&ok, 1005, "ss-kir").unwrap().invoker, "INV1");
        assert_eq!(v.check(&ok, 1010, "ss-kir"), Err(AuthError::Expired));
        let cid =
            claims(json!({"exp": 1000, "sub": "x", "client_id": "INV2", "scope": "aef1:ss-kir"}));
        assert_eq!(v.check(&cid, 1, "ss-kir").unwrap().invoker, "INV2");
        let wrong_aef = claims(json!({"exp": 1000, "sub": "I", "scope": "3gpp#aef2:ss-kir"}));
        assert_eq!(
            v.check(&wrong_aef, 1, "ss-kir"),
            Err(AuthError::MissingScope)
        );
        let no_exp = claims(json!({"sub": "I", "scope": "3gpp#aef1:ss-kir"}));
        assert!(v.check(&no_exp, 1, "ss-kir").is_err());
        let no_id = claims(json!({"exp": 1000, "scope": "3gpp#aef1:ss-kir"}));
        assert_eq!(
            v.check(&no_id, 1, "ss-kir"),
            Err(AuthError::MissingIdentity)
        );
        let iss = CcfTokenVerifier {
            issuer: Some("ccf".into()),
            ..v.clone()
        };
        assert_eq!(iss.check(&ok, 1, "ss-kir"), Err(AuthError::WrongIssuer));
    }
}
