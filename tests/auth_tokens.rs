//! Access-token verification (TS 33.434 5.3.1, 5.8; RFC 7519 / 7515 / 7518 / 6750): accepted
//! ES256 and RS256 tokens, and each refusal mapped to its `AuthError` variant.

use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RsaPublicKeyComponents, RSA_PKCS1_SHA256};
use serde_json::{json, Value};

use sealkm::auth::{
    base64url_encode as b64, bearer_token, AuthError, DevIdp, Jwks, TokenPolicy, TokenVerifier,
    MAX_TOKEN_BYTES,
};

/// A fixed 2048-bit RSA test key (PKCS#8 DER, made with `openssl genpkey -algorithm RSA`).
const RSA_PKCS8: &[u8] = include_bytes!("keys/rs256-test-key.pk8.der");

const NOW: u64 = 1_750_000_000;
const ISS: &str = "https://idm.example.org";
const AUD: &str = "sealkm.example.org";

fn policy() -> TokenPolicy {
    TokenPolicy {
        issuer: ISS.into(),
        audience: AUD.into(),
        leeway_s: 60,
        identity_claim: "val_user_id".into(),
        scope_claim: "scope".into(),
        required_scope: "3gpp:seal:km".into(),
    }
}

struct Fixture {
    idp: DevIdp,
    rsa: RsaKeyPair,
    rsa_jwk: Value,
    verifier: TokenVerifier,
}

fn fixture() -> Fixture {
    let idp = DevIdp::generate("ec-1").expect("EC key");
    let rsa = RsaKeyPair::from_pkcs8(RSA_PKCS8).expect("RSA test key");
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public());
    let rsa_jwk = json!({"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
        "n": b64(&public.n), "e": b64(&public.e)});
    let mut doc: Value = serde_json::from_str(&idp.jwks_json()).expect("dev JWKS");
    doc["keys"]
        .as_array_mut()
        .expect("keys")
        .push(rsa_jwk.clone());
    let jwks = Jwks::from_json(&doc.to_string()).expect("JWKS");
    let verifier = TokenVerifier::new(jwks, policy()).expect("verifier");
    Fixture {
        idp,
        rsa,
        rsa_jwk,
        verifier,
    }
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": AUD, "sub": "alice", "iat": NOW - 600, "exp": NOW + 300,
        "val_user_id": "sip:alice@example.org", "scope": "openid 3gpp:seal:km",
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().expect("object").remove(key);
    base
}

fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

fn rs256(key: &RsaKeyPair, header: &Value, claims: &Value) -> String {
    let input = unsigned(header, claims);
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("RSA sign");
    format!("{input}.{}", b64(&sig))
}

fn es256(f: &Fixture, claims: &Value) -> String {
    f.idp.mint(claims).expect("mint")
}

fn verify(f: &Fixture, token: &str) -> Result<sealkm::auth::VerifiedToken, AuthError> {
    f.verifier.verify(token, NOW)
}

#[test]
fn es256_token_is_accepted() {
    let f = fixture();
    let ok = verify(&f, &es256(&f, &claims())).expect("valid ES256 token");
    assert_eq!(ok.identity, "sip:alice@example.org");
    assert_eq!(ok.subject.as_deref(), Some("alice"));
    assert_eq!(ok.scopes, vec!["openid", "3gpp:seal:km"]);
    assert_eq!(ok.expires_at, NOW + 300);
}

#[test]
fn dev_idp_mint_for_matches_the_policy() {
    let f = fixture();
    let token = f
        .idp
        .mint_for(&policy(), "sip:bob@example.org", "3gpp:seal:km", NOW, 60)
        .expect("mint");
    let ok = verify(&f, &token).expect("valid");
    assert_eq!(ok.identity, "sip:bob@example.org");
}

#[test]
fn rs256_token_is_accepted_with_and_without_kid() {
    let f = fixture();
    let with_kid = rs256(&f.rsa, &json!({"alg": "RS256", "kid": "rsa-1"}), &claims());
    assert_eq!(
        verify(&f, &with_kid).expect("RS256 with kid").identity,
        "sip:alice@example.org"
    );
    let no_kid = rs256(&f.rsa, &json!({"alg": "RS256", "typ": "JWT"}), &claims());
    assert!(verify(&f, &no_kid).is_ok());
}

#[test]
fn tampered_payload_is_a_bad_signature() {
    let f = fixture();
    for token in [
        es256(&f, &claims()),
        rs256(&f.rsa, &json!({"alg": "RS256", "kid": "rsa-1"}), &claims()),
    ] {
        let parts: Vec<&str> = token.split('.').collect();
        let other = claims().to_string().replace("alice@", "mallory@");
        let forged = format!("{}.{}.{}", parts[0], b64(other.as_bytes()), parts[2]);
        assert_eq!(verify(&f, &forged).unwrap_err(), AuthError::BadSignature);
    }
}

#[test]
fn tampered_signature_is_a_bad_signature() {
    let f = fixture();
    let token = es256(&f, &claims());
    let (head, sig) = token.rsplit_once('.').expect("three parts");
    let mut raw = sealkm::auth::base64url_decode(sig).expect("b64");
    raw[10] ^= 0x01;
    let forged = format!("{head}.{}", b64(&raw));
    assert_eq!(verify(&f, &forged).unwrap_err(), AuthError::BadSignature);
}

#[test]
fn alg_none_is_refused() {
    let f = fixture();
    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": "ec-1"}),
    ] {
        let token = format!("{}.", unsigned(&header, &claims()));
        assert_eq!(
            verify(&f, &token).unwrap_err(),
            AuthError::UnsupportedAlgorithm
        );
        let token = format!("{}.AAAA", unsigned(&header, &claims()));
        assert_eq!(
            verify(&f, &token).unwrap_err(),
            AuthError::UnsupportedAlgorithm
        );
    }
}

#[test]
fn hs256_with_the_public_key_as_secret_is_refused() {
    let f = fixture();
    // The classic algorithm-confusion forgery: HMAC keyed with the published public key.
    for secret in [f.rsa_jwk.to_string(), f.idp.jwks_json()] {
        for header in [
            json!({"alg": "HS256", "kid": "rsa-1"}),
            json!({"alg": "HS256"}),
        ] {
            let input = unsigned(&header, &claims());
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
            let tag = ring::hmac::sign(&key, input.as_bytes());
            let token = format!("{input}.{}", b64(tag.as_ref()));
            assert_eq!(
                verify(&f, &token).unwrap_err(),
                AuthError::UnsupportedAlgorithm
            );
        }
    }
    // Other algorithm names, including case variants, are refused the same way.
    for alg in ["es256", "ES384", "PS256", "RS512", "EdDSA"] {
        let token = format!("{}.AAAA", unsigned(&json!({"alg": alg}), &claims()));
        assert_eq!(
            verify(&f, &token).unwrap_err(),
            AuthError::UnsupportedAlgorithm
        );
    }
}

#[test]
fn unknown_kid_and_mismatched_key_type() {
    let f = fixture();
    let token = rs256(
        &f.rsa,
        &json!({"alg": "RS256", "kid": "rotated-away"}),
        &claims(),
    );
    assert_eq!(verify(&f, &token).unwrap_err(), AuthError::UnknownKey);
    // RS256 header naming the EC key.
    let token = rs256(&f.rsa, &json!({"alg": "RS256", "kid": "ec-1"}), &claims());
    assert_eq!(
        verify(&f, &token).unwrap_err(),
        AuthError::KeyAlgorithmMismatch
    );
}

#[test]
fn wrong_issuer() {
    let f = fixture();
    for claims in [
        with(claims(), "iss", json!("https://evil.example")),
        with(claims(), "iss", json!([ISS])),
        without(claims(), "iss"),
    ] {
        assert_eq!(
            verify(&f, &es256(&f, &claims)).unwrap_err(),
            AuthError::WrongIssuer
        );
    }
}

#[test]
fn wrong_audience_and_audience_lists() {
    let f = fixture();
    for claims in [
        with(claims(), "aud", json!("other-kms")),
        with(claims(), "aud", json!(["a", "b"])),
        without(claims(), "aud"),
    ] {
        assert_eq!(
            verify(&f, &es256(&f, &claims)).unwrap_err(),
            AuthError::WrongAudience
        );
    }
    let list = with(claims(), "aud", json!(["gms", AUD]));
    assert!(verify(&f, &es256(&f, &list)).is_ok());
}

#[test]
fn expiry_with_leeway() {
    let f = fixture();
    let token = es256(&f, &with(claims(), "exp", json!(NOW - 30)));
    assert!(
        verify(&f, &token).is_ok(),
        "30 s past exp is inside the 60 s leeway"
    );
    let token = es256(&f, &with(claims(), "exp", json!(NOW - 61)));
    assert_eq!(verify(&f, &token).unwrap_err(), AuthError::Expired);
    let at_limit = es256(&f, &with(claims(), "exp", json!(NOW - 60)));
    assert_eq!(verify(&f, &at_limit).unwrap_err(), AuthError::Expired);
    let token = es256(&f, &without(claims(), "exp"));
    assert!(matches!(
        verify(&f, &token),
        Err(AuthError::InvalidClaim(_))
    ));
}

#[test]
fn not_before_and_issued_at_in_the_future() {
    let f = fixture();
    let token = es256(&f, &with(claims(), "nbf", json!(NOW + 120)));
    assert_eq!(verify(&f, &token).unwrap_err(), AuthError::NotYetValid);
    let token = es256(&f, &with(claims(), "nbf", json!(NOW + 30)));
    assert!(verify(&f, &token).is_ok(), "nbf inside the leeway");
    let token = es256(&f, &with(claims(), "iat", json!(NOW + 120)));
    assert_eq!(
        verify(&f, &token).unwrap_err(),
        AuthError::InvalidClaim("iat is in the future")
    );
    let token = es256(&f, &with(claims(), "iat", json!(NOW + 30)));
    assert!(verify(&f, &token).is_ok(), "iat inside the leeway");
}

#[test]
fn missing_identity_claim() {
    let f = fixture();
    for claims in [
        without(claims(), "val_user_id"),
        with(claims(), "val_user_id", json!("")),
        with(claims(), "val_user_id", json!(42)),
    ] {
        assert_eq!(
            verify(&f, &es256(&f, &claims)).unwrap_err(),
            AuthError::MissingIdentity
        );
    }
}

#[test]
fn missing_scope_and_scope_as_array() {
    let f = fixture();
    for claims in [
        without(claims(), "scope"),
        with(claims(), "scope", json!("openid 3gpp:seal:km:extra")),
        with(claims(), "scope", json!(["openid"])),
    ] {
        let err = verify(&f, &es256(&f, &claims)).unwrap_err();
        assert_eq!(err, AuthError::MissingScope);
        assert!(err.is_forbidden());
    }
    let array = with(claims(), "scope", json!(["openid", "3gpp:seal:km"]));
    let ok = verify(&f, &es256(&f, &array)).expect("array scope");
    assert!(ok.has_scope("3gpp:seal:km"));
}

#[test]
fn skeyprov_claim_presence() {
    let f = fixture();
    let ok = verify(&f, &es256(&f, &with(claims(), "SKeyProv", json!(true)))).expect("valid");
    assert!(ok.has_claim("SKeyProv"));
    for value in [json!(false), json!(""), json!(null)] {
        let ok = verify(&f, &es256(&f, &with(claims(), "SKeyProv", value))).expect("valid");
        assert!(!ok.has_claim("SKeyProv"));
    }
    let ok = verify(&f, &es256(&f, &claims())).expect("valid");
    assert!(!ok.has_claim("SKeyProv"));
}

#[test]
fn oversize_token_is_refused_before_decoding() {
    let f = fixture();
    let padded = with(claims(), "pad", json!("x".repeat(MAX_TOKEN_BYTES)));
    let token = es256(&f, &padded);
    assert!(token.len() > MAX_TOKEN_BYTES);
    assert_eq!(
        verify(&f, &token).unwrap_err(),
        AuthError::TokenTooLarge {
            max_bytes: MAX_TOKEN_BYTES
        }
    );
}

#[test]
fn garbage_is_malformed() {
    let f = fixture();
    let valid = es256(&f, &claims());
    let five_parts = format!("{valid}.AAAA.BBBB");
    let bad_header = format!("!!!.{}", valid.split_once('.').expect("dot").1);
    let header_not_object = format!("{}.e30.AAAA", b64(b"[1,2]"));
    let crit = format!(
        "{}.AAAA",
        unsigned(
            &json!({"alg": "ES256", "crit": ["exp"], "exp": 1}),
            &claims()
        )
    );
    for token in [
        "garbage",
        "a.b",
        "...",
        five_parts.as_str(),
        bad_header.as_str(),
        header_not_object.as_str(),
        crit.as_str(),
    ] {
        assert!(
            matches!(verify(&f, token), Err(AuthError::MalformedToken(_))),
            "{token:.40}"
        );
    }
    assert_eq!(verify(&f, "").unwrap_err(), AuthError::MissingToken);
}

#[test]
fn bearer_header_to_verified_token() {
    let f = fixture();
    let token = es256(&f, &claims());
    let header = format!("bearer {token}");
    let extracted = bearer_token(&header).expect("bearer");
    assert_eq!(extracted, token);
    assert!(verify(&f, extracted).is_ok());
}

#[test]
fn errors_never_echo_the_token() {
    let f = fixture();
    let token = es256(&f, &with(claims(), "exp", json!(NOW - 3600)));
    let err = verify(&f, &token).unwrap_err();
    let shown = format!("{err} {err:?}");
    for part in token.split('.') {
        assert!(!shown.contains(part), "error text contains a token part");
    }
    assert!(!shown.contains("alice"));
}

#[test]
fn km_uu_and_party_tokens_are_told_apart() {
    use sealkm::auth::{PartyPolicy, TokenUse};
    let f = fixture();
    let party = PartyPolicy {
        scope: "3gpp:seal:km:party".into(),
        audience: Some("sealkm-parties".into()),
        ..PartyPolicy::default()
    };
    let v = f.verifier.clone().with_party(party).expect("party policy");
    let user = es256(&f, &claims());
    let party_claims = with(
        with(claims(), "scope", json!("3gpp:seal:km:party")),
        "aud",
        json!("sealkm-parties"),
    );
    let party_token = es256(&f, &party_claims);
    // Each kind on its own interface.
    assert!(v.verify_for(&user, NOW, TokenUse::KmUu).is_ok());
    assert!(v.verify_for(&party_token, NOW, TokenUse::Party).is_ok());
    // A KM-UU token on the service listener: wrong audience, and without the audience, no
    // party scope.
    assert_eq!(
        v.verify_for(&user, NOW, TokenUse::Party),
        Err(AuthError::WrongAudience)
    );
    let user_with_party_aud = es256(&f, &with(claims(), "aud", json!(["sealkm-parties"])));
    assert_eq!(
        v.verify_for(&user_with_party_aud, NOW, TokenUse::Party),
        Err(AuthError::MissingScope)
    );
    // A party token on KM-UU: refused, also when it names both audiences and both scopes.
    assert_eq!(
        v.verify_for(&party_token, NOW, TokenUse::KmUu),
        Err(AuthError::WrongAudience)
    );
    let both = es256(
        &f,
        &with(
            with(claims(), "scope", json!("3gpp:seal:km 3gpp:seal:km:party")),
            "aud",
            json!([AUD, "sealkm-parties"]),
        ),
    );
    assert_eq!(
        v.verify_for(&both, NOW, TokenUse::KmUu),
        Err(AuthError::WrongInterface)
    );
    assert!(AuthError::WrongInterface.is_forbidden());
    // The party scope must differ from the KM-UU one.
    let same = PartyPolicy {
        scope: "3gpp:seal:km".into(),
        ..PartyPolicy::default()
    };
    assert!(f.verifier.clone().with_party(same).is_err());
}
