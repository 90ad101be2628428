//! A development identity provider, for `sealkm dev` and tests: an ES256 (RFC 7518 §3.4) key
//! pair generated with ring, its public JWK Set (RFC 7517 §5), and JWT minting (RFC 7519, JWS
//! compact serialisation RFC 7515 §7.1). It stands in for the SEAL identity management server
//! of TS 33.434 5.2 / 5.3.1; it is not for production.
//!
//! The private key is kept as its PKCS#8 document ([`DevIdp::pkcs8_der`]) so the caller can
//! store it and load it again with [`DevIdp::from_pkcs8`]; this module does no file I/O.

use std::fmt;

use ring::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use serde_json::{json, Value};

use super::{base64url_encode, AuthError, Jwks, TokenPolicy};
use crate::crypto::secret::SecretVec;

/// A development token issuer holding one ES256 key.
pub struct DevIdp {
    kid: String,
    pkcs8: SecretVec,
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for DevIdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevIdp(kid={:?}, key=<redacted>)", self.kid)
    }
}

impl DevIdp {
    /// Generates a fresh P-256 key named `kid`.
    pub fn generate(kid: &str) -> Result<Self, AuthError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| AuthError::Signing("key generation failed"))?;
        Self::from_pkcs8(kid, doc.as_ref())
    }

    /// Loads a key saved from [`DevIdp::pkcs8_der`].
    pub fn from_pkcs8(kid: &str, pkcs8_der: &[u8]) -> Result<Self, AuthError> {
        if kid.is_empty() {
            return Err(AuthError::Signing("kid must not be empty"));
        }
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8_der, &rng)
            .map_err(|_| AuthError::Signing("not a P-256 PKCS#8 private key"))?;
        Ok(DevIdp {
            kid: kid.to_owned(),
            pkcs8: SecretVec::new(pkcs8_der.to_vec()),
            key,
            rng,
        })
    }

    /// The key's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as a PKCS#8 v1/v2 DER document, for the caller to store (mode 0600).
    pub fn pkcs8_der(&self) -> &SecretVec {
        &self.pkcs8
    }

    /// The public key as a JWK Set document.
    pub fn jwks_json(&self) -> String {
        // SEC 1 uncompressed point: 0x04 || x (32) || y (32).
        let point = self.key.public_key().as_ref();
        let (x, y) = point[1..].split_at(32);
        json!({
            "keys": [{
                "kty": "EC",
                "crv": "P-256",
                "x": base64url_encode(x),
                "y": base64url_encode(y),
                "kid": self.kid,
                "alg": "ES256",
                "use": "sig",
            }]
        })
        .to_string()
    }

    /// The public key as a parsed key set, ready for a [`super::TokenVerifier`].
    pub fn jwks(&self) -> Result<Jwks, AuthError> {
        Jwks::from_json(&self.jwks_json()).map_err(|_| AuthError::Signing("own JWKS is invalid"))
    }

    /// Signs `claims` (a JSON object) as an ES256 JWT with this key's `kid`.
    pub fn mint(&self, claims: &Value) -> Result<String, AuthError> {
        if !claims.is_object() {
            return Err(AuthError::Signing("claims must be a JSON object"));
        }
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let mut token = format!(
            "{}.{}",
            base64url_encode(header.to_string().as_bytes()),
            base64url_encode(claims.to_string().as_bytes())
        );
        let sig = self
            .key
            .sign(&self.rng, token.as_bytes())
            .map_err(|_| AuthError::Signing("signing failed"))?;
        token.push('.');
        token.push_str(&base64url_encode(sig.as_ref()));
        Ok(token)
    }

    /// Mints a token that `policy` accepts for `identity` with `scope` (space-separated),
    /// issued at `now_unix_s` and valid for `ttl_s` seconds. `sub` is set to `identity`.
    pub fn mint_for(
        &self,
        policy: &TokenPolicy,
        identity: &str,
        scope: &str,
        now_unix_s: u64,
        ttl_s: u64,
    ) -> Result<String, AuthError> {
        self.mint_with(policy, identity, scope, now_unix_s, ttl_s, &[])
    }

    /// Like [`DevIdp::mint_for`] with `extra` claims added (e.g. TS 33.434 `SKeyProv`).
    pub fn mint_with(
        &self,
        policy: &TokenPolicy,
        identity: &str,
        scope: &str,
        now_unix_s: u64,
        ttl_s: u64,
        extra: &[(&str, Value)],
    ) -> Result<String, AuthError> {
        let mut claims = serde_json::Map::new();
        claims.insert("iss".into(), json!(policy.issuer));
        claims.insert("aud".into(), json!(policy.audience));
        claims.insert("sub".into(), json!(identity));
        claims.insert("iat".into(), json!(now_unix_s));
        claims.insert("exp".into(), json!(now_unix_s.saturating_add(ttl_s)));
        claims.insert(policy.identity_claim.clone(), json!(identity));
        claims.insert(policy.scope_claim.clone(), json!(scope));
        for (k, v) in extra {
            claims.insert((*k).to_owned(), v.clone());
        }
        self.mint(&Value::Object(claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenVerifier;

    #[test]
    fn saved_key_reloads_and_mints_verifiable_tokens() {
        let idp = DevIdp::generate("dev-1").expect("keygen");
        let again = DevIdp::from_pkcs8("dev-1", idp.pkcs8_der().expose()).expect("reload");
        assert_eq!(idp.jwks_json(), again.jwks_json());
        let policy = TokenPolicy {
            issuer: "https://idm.example".into(),
            audience: "sealkm".into(),
            leeway_s: 30,
            identity_claim: "val_user_id".into(),
            scope_claim: "scope".into(),
            required_scope: "3gpp:seal:km".into(),
        };
        let verifier = TokenVerifier::new(idp.jwks().expect("jwks"), policy.clone()).expect("v");
        let token = again
            .mint_for(&policy, "alice@example", "openid 3gpp:seal:km", 1000, 600)
            .expect("mint");
        let ok = verifier.verify(&token, 1200).expect("valid");
        assert_eq!(ok.identity, "alice@example");
        assert_eq!(ok.expires_at, 1600);
        assert!(!format!("{idp:?}").contains(&base64url_encode(idp.pkcs8_der().expose())));
    }
}
