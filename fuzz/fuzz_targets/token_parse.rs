//! Fuzzes the access token (JWT, RFC 7519 / JWS compact, RFC 7515) verifier: it must never
//! panic, and it accepts only what a key of its JWK Set signed.
//!
//! The first byte picks the mode. Even: the rest, as text, is a bearer token (structure,
//! base64url, header, algorithm and key selection, signature — nothing is signed by our key, so
//! nothing may be accepted). Odd: the rest is a claims set (JSON) that the fuzzer's own
//! development identity provider signs, so the claim checks (issuer, audience, times, identity,
//! scopes) are reached; an accepted token names the identity its claims carry.
//!
//! Run (nightly): `cd fuzz && mkdir -p corpus/token_parse && cp seeds/token/* corpus/token_parse/
//! && cargo +nightly fuzz run token_parse corpus/token_parse -- -max_total_time=300
//! -max_len=8192`. The stable-Rust stand-in is tests/auth_tokens.rs.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealkm::auth::{DevIdp, TokenPolicy, TokenVerifier};

/// The fixed time of every verification (the claims seeds are valid at it).
const NOW: u64 = 1_800_000_000;

fn policy() -> TokenPolicy {
    TokenPolicy {
        issuer: "https://idms.example.org".into(),
        audience: "kms.example.org".into(),
        leeway_s: 60,
        identity_claim: "sub".into(),
        scope_claim: "scope".into(),
        required_scope: "3gpp:seal:km".into(),
    }
}

fn fixture() -> &'static (DevIdp, TokenVerifier) {
    static FIXTURE: OnceLock<(DevIdp, TokenVerifier)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let idp = DevIdp::generate("fuzz-key").expect("key");
        let verifier = TokenVerifier::new(idp.jwks().expect("jwks"), policy()).expect("policy");
        (idp, verifier)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (idp, verifier) = fixture();
    if mode % 2 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else {
            return;
        };
        assert!(
            verifier.verify(token, NOW).is_err(),
            "a token not signed by our key was accepted"
        );
        return;
    }
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    let Ok(token) = idp.mint(&claims) else {
        return;
    };
    if let Ok(verified) = verifier.verify(&token, NOW) {
        assert_eq!(
            claims.get("sub").and_then(|s| s.as_str()),
            Some(verified.identity.as_str())
        );
        assert!(verified.expires_at.saturating_add(60) > NOW);
        assert!(verified.has_scope("3gpp:seal:km"));
    }
});
