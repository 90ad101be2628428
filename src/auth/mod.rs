//! Access tokens for the KMS interfaces.
//!
//! TS 33.434 5.3.1 requires every SEAL key management request (KM-UU, KM-S) to carry an OAuth 2.0
//! access token issued by the SEAL identity management server, and 5.8 additionally requires the
//! `SKeyProv` claim (Annex A.2.2.3) for key provisioning pushes. The token is a JWT (RFC 7519) in
//! JWS compact serialisation (RFC 7515 §7.1), sent as a bearer credential (RFC 6750 §2.1) and
//! signed by a key from the identity management server's JWK Set (RFC 7517, algorithms from
//! RFC 7518 §3.4 ES256 and §3.3 RS256).
//!
//! - [`jwks`]: parsing the identity management server's key set;
//! - [`jwt`]: the verifier — pure: the current time is a parameter, nothing here reads a clock or
//!   does I/O;
//! - [`party`]: who is a party of the service listener, and what its tokens must say;
//! - [`devidp`]: a development identity provider (`sealkm dev`, tests) that mints ES256 tokens.
//!
//! The claim that carries the VAL user identity and the name of the scope claim are
//! configuration ([`jwt::TokenPolicy`]): TS 33.434 Annex A names the tables but sealkm does not
//! assume the MCX (TS 33.180 B.8) names.
//!
//! A token is a credential: it never appears in an error, a log line or a `Debug` output.

pub mod capif;
pub mod devidp;
pub mod jwks;
pub mod jwt;
pub mod party;
pub mod visiting;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};

pub use devidp::DevIdp;
pub use jwks::{Jwk, JwkAlg, Jwks, JwksError, SkippedKey};
pub use jwt::{
    PolicyError, TokenPolicy, TokenUse, TokenVerifier, VerifiedToken, MAX_LEEWAY_S, MAX_TOKEN_BYTES,
};
pub use party::PartyPolicy;

/// Unpadded base64url (RFC 4648 §5), as JWS and JWK use it (RFC 7515 §2, RFC 7517 §1.1).
///
/// The decoder is strict: only the URL-safe alphabet, no padding, no whitespace, and the unused
/// low bits of the last character must be zero. A strict decoder gives every byte string exactly
/// one encoding, so a token cannot be altered in its encoding while still decoding to the same
/// bytes. (This is `base64`'s `URL_SAFE_NO_PAD`, spelled out so the strictness is visible here.)
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Unpadded base64url encoding (RFC 4648 §5) as used by JWS; public for clients and tests that
/// assemble tokens.
pub fn base64url_encode(bytes: &[u8]) -> String {
    BASE64URL.encode(bytes)
}

/// Strict unpadded base64url decoding; `None` if `text` is not canonical base64url (a character
/// outside the URL-safe alphabet, padding, whitespace, an impossible length, or non-zero trailing
/// bits).
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    BASE64URL.decode(text).ok()
}

/// Why a request's access token was refused. Every message is short, fixed text that is safe to
/// return to the client: no token bytes, no claim values, no key material.
///
/// The API layer maps variants (never message text) to HTTP statuses; [`AuthError::is_forbidden`]
/// and [`AuthError::rfc6750_error_code`] give the RFC 6750 §3.1 classification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No bearer token was presented (no `Authorization` header, or another scheme).
    #[error("no bearer access token was presented")]
    MissingToken,
    /// The token (or the `Authorization` header) is not well-formed.
    #[error("malformed access token: {0}")]
    MalformedToken(&'static str),
    /// The token is larger than [`MAX_TOKEN_BYTES`]; it was not decoded.
    #[error("access token is larger than {max_bytes} bytes")]
    TokenTooLarge { max_bytes: usize },
    /// The JWS `alg` is not ES256 or RS256 (this includes `none` and every HMAC algorithm).
    #[error("access token algorithm is not accepted (ES256 or RS256 only)")]
    UnsupportedAlgorithm,
    /// No key of the identity management server matches the token's `kid` / `alg`.
    #[error("access token signing key is unknown")]
    UnknownKey,
    /// The key named by `kid` is of another type or algorithm than the header's `alg`.
    #[error("access token algorithm does not match its signing key")]
    KeyAlgorithmMismatch,
    /// The signature does not verify.
    #[error("access token signature is invalid")]
    BadSignature,
    /// `exp` is past (beyond the allowed clock skew).
    #[error("access token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the allowed clock skew).
    #[error("access token is not yet valid")]
    NotYetValid,
    /// `iss` is missing or is not the configured identity management server.
    #[error("access token issuer is not accepted")]
    WrongIssuer,
    /// `aud` is missing or does not name this key management server.
    #[error("access token audience does not include this server")]
    WrongAudience,
    /// The configured key management scope is not granted by the token.
    #[error("access token does not grant the key management scope")]
    MissingScope,
    /// A party's token presented on KM-UU (it carries the party scope): party tokens are for
    /// the service listener only.
    #[error("access token is for the service listener, not for KM-UU")]
    WrongInterface,
    /// The configured identity claim is missing or is not a non-empty string.
    #[error("access token does not carry the user identity claim")]
    MissingIdentity,
    /// A registered claim is present but not of the form RFC 7519 §4.1 requires.
    #[error("access token claim is invalid: {0}")]
    InvalidClaim(&'static str),
    /// A visiting user's token (a trusted partner identity provider's) names a user outside
    /// the domains that provider may speak for.
    #[error("the visiting user's identity is outside the domains its identity provider serves")]
    OutsideVisitingDomains,
    /// The development identity provider could not create a key or a signature.
    #[error("token signing failed: {0}")]
    Signing(&'static str),
}

impl AuthError {
    /// `true` when the token is valid but does not authorise the request (HTTP 403,
    /// RFC 6750 `insufficient_scope`); every other variant is an authentication failure (401).
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            AuthError::MissingScope | AuthError::WrongInterface | AuthError::OutsideVisitingDomains
        )
    }

    /// The RFC 6750 §3.1 `error` code for the `WWW-Authenticate` header; `None` when the request
    /// carried no token at all (§3.1: no error code then) or the failure is server-side.
    pub fn rfc6750_error_code(&self) -> Option<&'static str> {
        match self {
            AuthError::MissingToken | AuthError::Signing(_) => None,
            AuthError::MissingScope
            | AuthError::WrongInterface
            | AuthError::OutsideVisitingDomains => Some("insufficient_scope"),
            AuthError::MalformedToken(_) | AuthError::TokenTooLarge { .. } => {
                Some("invalid_request")
            }
            _ => Some("invalid_token"),
        }
    }
}

/// Extracts the token from an `Authorization` header value (RFC 6750 §2.1:
/// `"Bearer" 1*SP b64token`; the scheme is case-insensitive per RFC 7235 §2.1).
///
/// A header with another scheme counts as no bearer token ([`AuthError::MissingToken`]); a
/// bearer header whose token is empty or has characters outside `b64token` is malformed.
pub fn bearer_token(authorization_header: &str) -> Result<&str, AuthError> {
    // A header longer than any acceptable token plus the scheme is refused before inspection.
    if authorization_header.len() > MAX_TOKEN_BYTES + 64 {
        return Err(AuthError::TokenTooLarge {
            max_bytes: MAX_TOKEN_BYTES,
        });
    }
    let value = authorization_header.trim_matches(|c| c == ' ' || c == '\t');
    if value.is_empty() {
        return Err(AuthError::MissingToken);
    }
    let (scheme, rest) = match value.find(' ') {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MissingToken);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(AuthError::MalformedToken("bearer credential is empty"));
    }
    if !is_b64token(token) {
        return Err(AuthError::MalformedToken(
            "bearer credential has invalid characters",
        ));
    }
    Ok(token)
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_rfc4648_vectors_without_padding() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, enc) in cases {
            assert_eq!(base64url_encode(raw), enc);
            assert_eq!(base64url_decode(enc).as_deref(), Some(raw));
        }
    }

    #[test]
    fn base64url_alphabet_round_trips() {
        let raw = [0xfb, 0xff, 0xbf];
        assert_eq!(base64url_encode(&raw), "-_-_");
        assert_eq!(base64url_decode("-_-_"), Some(raw.to_vec()));
    }

    #[test]
    fn base64url_rejects_padding_standard_alphabet_bad_length_and_trailing_bits() {
        assert_eq!(base64url_decode("Zg=="), None);
        assert_eq!(base64url_decode("Zm8="), None);
        assert_eq!(base64url_decode("+/+/"), None);
        assert_eq!(base64url_decode("Zm9vY"), None);
        assert_eq!(base64url_decode("Zh"), None); // 'h' leaves non-zero unused bits
        assert_eq!(base64url_decode("Zm9"), None); // '9' leaves non-zero unused bits
        assert_eq!(base64url_decode("Zm9 v"), None);
        assert_eq!(base64url_decode("Zm9v\n"), None);
        assert_eq!(base64url_decode(" Zm9v"), None);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Ok("abc.def.ghi"));
        assert_eq!(bearer_token("bEaReR   abc.def.ghi"), Ok("abc.def.ghi"));
        assert_eq!(bearer_token("  BEARER abc== "), Ok("abc=="));
    }

    #[test]
    fn other_schemes_and_empty_headers_are_missing_tokens() {
        assert_eq!(bearer_token(""), Err(AuthError::MissingToken));
        assert_eq!(
            bearer_token("Basic dXNlcjpwYXNz"),
            Err(AuthError::MissingToken)
        );
        assert_eq!(bearer_token("Bearerabc"), Err(AuthError::MissingToken));
    }

    #[test]
    fn malformed_bearer_credentials() {
        assert!(matches!(
            bearer_token("Bearer"),
            Err(AuthError::MalformedToken(_))
        ));
        assert!(matches!(
            bearer_token("Bearer   "),
            Err(AuthError::MalformedToken(_))
        ));
        assert!(matches!(
            bearer_token("Bearer a b"),
            Err(AuthError::MalformedToken(_))
        ));
        assert!(matches!(
            bearer_token("Bearer ==="),
            Err(AuthError::MalformedToken(_))
        ));
        assert!(matches!(
            bearer_token("Bearer a=b"),
            Err(AuthError::MalformedToken(_))
        ));
        let huge = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 100));
        assert!(matches!(
            bearer_token(&huge),
            Err(AuthError::TokenTooLarge { .. })
        ));
    }

    #[test]
    fn error_classification() {
        assert!(AuthError::MissingScope.is_forbidden());
        assert!(!AuthError::Expired.is_forbidden());
        assert_eq!(AuthError::MissingToken.rfc6750_error_code(), None);
        assert_eq!(
            AuthError::BadSignature.rfc6750_error_code(),
            Some("invalid_token")
        );
        assert_eq!(
            AuthError::MissingScope.rfc6750_error_code(),
            Some("insufficient_scope")
        );
    }
}
