//! Access-token verification: a JWT (RFC 7519) in JWS compact serialisation (RFC 7515 §7.1),
//! signed with ES256 or RS256 (RFC 7518 §3.4, §3.3) by the identity management server
//! (TS 33.434 5.3.1; token contents TS 33.434 Annex A, claims per RFC 7519 §4.1).
//!
//! The verifier is pure: [`TokenVerifier::verify`] takes the current time as a parameter and
//! performs no I/O. The order of checks is:
//!
//! 1. size bound ([`MAX_TOKEN_BYTES`]) before any decoding;
//! 2. structure: exactly three base64url parts (a five-part JWE is refused), a JSON object header
//!    without `crit` (RFC 7515 §4.1.11: we understand no extension, so any is refused);
//! 3. `alg` is ES256 or RS256 — never `none`, never HMAC (the "algorithm confusion" attack uses
//!    a public key as an HMAC secret), and the key chosen by `kid` must be of the same type
//!    (RFC 7517 §4.4); keys come only from the configured set (`jku`, `jwk`, `x5u` are ignored);
//! 4. the signature over `header.payload` with ring;
//! 5. claims (RFC 7519 §4.1): `iss` equals, `aud` equals or contains, `exp` required and not
//!    past, `nbf` and `iat` not in the future — all with a bounded leeway — then the configured
//!    identity claim and key management scope.
//!
//! Duplicate claim names: serde_json keeps the lexically last member, which RFC 7519 §4
//! permits.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::party::PartyPolicy;
use super::{base64url_decode, jwks::JwkAlg, AuthError, Jwks};

/// Upper bound on a token's length; larger tokens are refused before decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Upper bound on the configurable clock-skew leeway.
pub const MAX_LEEWAY_S: u64 = 300;

fn default_leeway_s() -> u64 {
    60
}

fn default_scope_claim() -> String {
    "scope".to_owned()
}

/// What a token must say to be accepted; part of the node configuration (`[auth]`).
///
/// `identity_claim` and `required_scope` have no default: TS 33.434 Annex A does not fix them
/// for SEAL, so the operator names them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPolicy {
    /// Expected `iss` (the identity management server).
    pub issuer: String,
    /// This key management server's name in `aud`.
    pub audience: String,
    /// Allowed clock skew for `exp`, `nbf` and `iat`, at most [`MAX_LEEWAY_S`].
    #[serde(default = "default_leeway_s")]
    pub leeway_s: u64,
    /// The claim carrying the VAL user / service identity.
    pub identity_claim: String,
    /// The claim carrying scopes: a space-separated string (RFC 8693 §4.2) or an array.
    #[serde(default = "default_scope_claim")]
    pub scope_claim: String,
    /// The scope that grants SEAL key management.
    pub required_scope: String,
}

/// A [`TokenPolicy`] that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("auth policy: {0} must not be empty")]
    Empty(&'static str),
    #[error("auth policy: leeway_s is above {MAX_LEEWAY_S}")]
    LeewayTooLarge,
    #[error("auth policy: required_scope must be a single scope token (no spaces)")]
    ScopeHasSpace,
    #[error("auth policy: the party scope must differ from the KM-UU required_scope")]
    SameScope,
    #[error("auth policy: {0}")]
    Invalid(&'static str),
}

impl TokenPolicy {
    /// Checks the bounds the verifier relies on.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (name, value) in [
            ("issuer", &self.issuer),
            ("audience", &self.audience),
            ("identity_claim", &self.identity_claim),
            ("scope_claim", &self.scope_claim),
            ("required_scope", &self.required_scope),
        ] {
            if value.is_empty() {
                return Err(PolicyError::Empty(name));
            }
        }
        if self.leeway_s > MAX_LEEWAY_S {
            return Err(PolicyError::LeewayTooLarge);
        }
        if self.required_scope.contains(' ') {
            return Err(PolicyError::ScopeHasSpace);
        }
        Ok(())
    }
}

/// What an accepted token says.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// The value of the configured identity claim.
    pub identity: String,
    /// `sub`, if present.
    pub subject: Option<String>,
    /// The granted scopes, in token order.
    pub scopes: Vec<String>,
    /// `exp`, in Unix seconds.
    pub expires_at: u64,
    /// The whole claims set.
    pub claims: Map<String, Value>,
    /// Set for a visiting user's token (a trusted partner identity provider's, see
    /// [`super::visiting`]); `None` for our own identity management server's.
    pub visiting: Option<Visiting>,
}

/// Where a visiting user's token comes from and what it may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visiting {
    /// The partner identity provider's `iss`.
    pub issuer: String,
    /// Our communities its users may get key material from; empty: all.
    pub communities: Vec<String>,
}

impl Visiting {
    /// Whether this visitor may get key material of community `kms_uri`.
    pub fn may_use(&self, kms_uri: &str) -> bool {
        self.communities.is_empty() || self.communities.iter().any(|c| c == kms_uri)
    }
}

impl VerifiedToken {
    /// Whether claim `name` is present with a meaningful value: `true`, a non-empty string,
    /// array or object, or a number. `false`, `null` and empty values do not count. Used for
    /// the TS 33.434 5.8 `SKeyProv` check on key provisioning requests.
    pub fn has_claim(&self, name: &str) -> bool {
        match self.claims.get(name) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(Value::Number(_)) => true,
        }
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Which interface a token is presented to: the two kinds of tokens are told apart by scope
/// (and, when configured, audience), see [`super::party`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenUse {
    /// KM-UU (a KM client user): `[auth.token]` audience and `required_scope`; a token that
    /// carries the party scope is refused.
    KmUu,
    /// The service listener (a party): the party audience and scope.
    Party,
}

/// Verifies access tokens against one identity management server's keys and a policy.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    jwks: Jwks,
    policy: TokenPolicy,
    party: PartyPolicy,
}

impl TokenVerifier {
    /// Builds a verifier with the default [`PartyPolicy`]; the policy is validated here.
    pub fn new(jwks: Jwks, policy: TokenPolicy) -> Result<Self, PolicyError> {
        policy.validate()?;
        let party = PartyPolicy::default();
        party.validate(&policy)?;
        Ok(TokenVerifier {
            jwks,
            policy,
            party,
        })
    }

    /// The same verifier with `party` as the party policy (validated against the KM-UU one).
    pub fn with_party(mut self, party: PartyPolicy) -> Result<Self, PolicyError> {
        party.validate(&self.policy)?;
        self.party = party;
        Ok(self)
    }

    /// The same policies over another key set (a reloaded JWKS).
    pub fn with_jwks(&self, jwks: Jwks) -> Self {
        TokenVerifier {
            jwks,
            policy: self.policy.clone(),
            party: self.party.clone(),
        }
    }

    /// The KM-UU policy in force.
    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// The party policy in force.
    pub fn party(&self) -> &PartyPolicy {
        &self.party
    }

    /// The key set in force.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// Verifies a KM-UU `token` (the bearer credential, without the scheme) at `now_unix_s`.
    pub fn verify(&self, token: &str, now_unix_s: u64) -> Result<VerifiedToken, AuthError> {
        self.verify_for(token, now_unix_s, TokenUse::KmUu)
    }

    /// Verifies `token` for the interface `use_` at `now_unix_s`.
    pub fn verify_for(
        &self,
        token: &str,
        now_unix_s: u64,
        use_: TokenUse,
    ) -> Result<VerifiedToken, AuthError> {
        let claims = self.verify_signature(token)?;
        let expect = match use_ {
            TokenUse::KmUu => Expect {
                audience: &self.policy.audience,
                scope: &self.policy.required_scope,
                refused_scope: Some(&self.party.scope),
            },
            TokenUse::Party => Expect {
                audience: self.party.audience(&self.policy),
                scope: &self.party.scope,
                refused_scope: None,
            },
        };
        self.check_claims(claims, now_unix_s, &expect)
    }

    /// Steps 1–4: structure, algorithm, key, signature. Returns the decoded claims set.
    fn verify_signature(&self, token: &str) -> Result<Map<String, Value>, AuthError> {
        verify_jws(&self.jwks, token)
    }

    /// Step 5: registered claims, identity and scope.
    fn check_claims(
        &self,
        claims: Map<String, Value>,
        now_unix_s: u64,
        expect: &Expect<'_>,
    ) -> Result<VerifiedToken, AuthError> {
        let policy = &self.policy;
        let leeway = policy.leeway_s;

        // RFC 7519 §4.1.1: case-sensitive string comparison.
        if claims.get("iss").and_then(Value::as_str) != Some(policy.issuer.as_str()) {
            return Err(AuthError::WrongIssuer);
        }
        // RFC 7519 §4.1.3: a single string or an array of strings.
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == expect.audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expect.audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(AuthError::WrongAudience);
        }
        let expires_at =
            numeric_date(&claims, "exp")?.ok_or(AuthError::InvalidClaim("exp is required"))?;
        // Valid while now < exp + leeway (RFC 7519 §4.1.4).
        if now_unix_s >= expires_at.saturating_add(leeway) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = numeric_date(&claims, "nbf")? {
            if nbf > now_unix_s.saturating_add(leeway) {
                return Err(AuthError::NotYetValid);
            }
        }
        if let Some(iat) = numeric_date(&claims, "iat")? {
            if iat > now_unix_s.saturating_add(leeway) {
                return Err(AuthError::InvalidClaim("iat is in the future"));
            }
            if iat > expires_at {
                return Err(AuthError::InvalidClaim("iat is after exp"));
            }
        }
        let subject = match claims.get("sub") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(AuthError::InvalidClaim("sub is not a string")),
        };
        let identity = match claims.get(&policy.identity_claim) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(AuthError::MissingIdentity),
        };
        let scopes = scopes(claims.get(&policy.scope_claim))?;
        if !scopes.iter().any(|s| s == expect.scope) {
            return Err(AuthError::MissingScope);
        }
        if let Some(refused) = expect.refused_scope {
            if scopes.iter().any(|s| s == refused) {
                return Err(AuthError::WrongInterface);
            }
        }
        Ok(VerifiedToken {
            identity,
            subject,
            scopes,
            expires_at,
            claims,
            visiting: None,
        })
    }
}

/// Steps 1–4 of the module docs over `jwks`: structure, algorithm, key, signature. Returns the
/// decoded claims set, not yet checked (the CAPIF token verifier shares this).
pub(crate) fn verify_jws(jwks: &Jwks, token: &str) -> Result<Map<String, Value>, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TokenTooLarge {
            max_bytes: MAX_TOKEN_BYTES,
        });
    }
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::MalformedToken("not a three-part compact JWS"));
    };
    let header = decode_object(header_b64, "header is not base64url JSON object")?;
    if header.contains_key("crit") {
        return Err(AuthError::MalformedToken(
            "critical header extensions are not supported",
        ));
    }
    let alg = match header.get("alg") {
        Some(Value::String(name)) => {
            JwkAlg::from_name(name).ok_or(AuthError::UnsupportedAlgorithm)?
        }
        Some(_) => return Err(AuthError::MalformedToken("alg is not a string")),
        None => return Err(AuthError::MalformedToken("alg is missing")),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(AuthError::MalformedToken("kid is not a string")),
    };
    let keys = jwks.candidates(kid, alg)?;
    let signature =
        base64url_decode(sig_b64).ok_or(AuthError::MalformedToken("signature is not base64url"))?;
    if signature.is_empty() {
        return Err(AuthError::MalformedToken("signature is empty"));
    }
    // RFC 7515 §5.2 step 8: the signing input is ASCII(header_b64 '.' payload_b64).
    let signing_input = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    if !keys
        .iter()
        .any(|key| key.verify(alg, signing_input, &signature))
    {
        return Err(AuthError::BadSignature);
    }
    decode_object(payload_b64, "claims set is not base64url JSON object")
}

/// What [`TokenVerifier::check_claims`] requires of one interface's tokens.
struct Expect<'a> {
    audience: &'a str,
    scope: &'a str,
    /// A scope that marks a token for another interface.
    refused_scope: Option<&'a str>,
}

fn decode_object(part: &str, reason: &'static str) -> Result<Map<String, Value>, AuthError> {
    let bytes = base64url_decode(part).ok_or(AuthError::MalformedToken(reason))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AuthError::MalformedToken(reason)),
    }
}

/// RFC 7519 §2 NumericDate: seconds since the epoch, possibly fractional; the fraction is
/// dropped. Negative or non-numeric values are invalid.
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, AuthError> {
    let invalid = match name {
        "exp" => "exp is not a NumericDate",
        "nbf" => "nbf is not a NumericDate",
        _ => "iat is not a NumericDate",
    };
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                        Ok(Some(f as u64))
                    }
                    _ => Err(AuthError::InvalidClaim(invalid)),
                }
            }
        }
        Some(_) => Err(AuthError::InvalidClaim(invalid)),
    }
}

/// The scope claim: a space-separated string (RFC 8693 §4.2, RFC 6749 §3.3) or an array of
/// strings. A missing claim grants nothing.
pub(crate) fn scopes(value: Option<&Value>) -> Result<Vec<String>, AuthError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(AuthError::InvalidClaim("scope array holds a non-string"))
            })
            .collect(),
        Some(_) => Err(AuthError::InvalidClaim("scope is not a string or an array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7515 Appendix A.3: ES256 key and the example JWS.
    const A3_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    const A3_JWS: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

    fn verifier() -> TokenVerifier {
        let policy = TokenPolicy {
            issuer: "joe".into(),
            audience: "kms".into(),
            leeway_s: 0,
            identity_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scope: "km".into(),
        };
        TokenVerifier::new(Jwks::from_json(A3_JWKS).expect("RFC key"), policy).expect("policy")
    }

    #[test]
    fn rfc7515_a3_signature_verifies() {
        let claims = verifier()
            .verify_signature(A3_JWS)
            .expect("RFC 7515 A.3 verifies");
        assert_eq!(claims.get("iss").and_then(Value::as_str), Some("joe"));
        assert_eq!(
            claims.get("exp").and_then(Value::as_u64),
            Some(1_300_819_380)
        );
    }

    #[test]
    fn rfc7515_a3_with_one_signature_bit_flipped_fails() {
        let tampered = A3_JWS.replace("Kg6NU1Q", "Kg6NU1A");
        assert_eq!(
            verifier().verify_signature(&tampered),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn policy_bounds() {
        let mut policy = verifier().policy().clone();
        policy.leeway_s = MAX_LEEWAY_S + 1;
        assert_eq!(policy.validate(), Err(PolicyError::LeewayTooLarge));
        policy.leeway_s = 0;
        policy.required_scope = "a b".into();
        assert_eq!(policy.validate(), Err(PolicyError::ScopeHasSpace));
        policy.required_scope = String::new();
        assert_eq!(policy.validate(), Err(PolicyError::Empty("required_scope")));
    }

    #[test]
    fn policy_deserialises_with_defaults() {
        let policy: TokenPolicy = serde_json::from_str(
            r#"{"issuer":"i","audience":"a","identity_claim":"uid","required_scope":"km"}"#,
        )
        .expect("policy");
        assert_eq!(policy.leeway_s, 60);
        assert_eq!(policy.scope_claim, "scope");
        assert!(serde_json::from_str::<TokenPolicy>(r#"{"issuer":"i","audience":"a"}"#).is_err());
    }

    #[test]
    fn numeric_dates_accept_fractions_and_refuse_negatives() {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"exp":1.5,"nbf":-1,"iat":"x"}"#).expect("json");
        assert_eq!(numeric_date(&claims, "exp"), Ok(Some(1)));
        assert!(numeric_date(&claims, "nbf").is_err());
        assert!(numeric_date(&claims, "iat").is_err());
    }
}
