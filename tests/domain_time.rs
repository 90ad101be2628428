//! Time edges of the pure domain, with explicit times: key-period roll-over, certificate
//! validity windows and access-token expiry / not-before around the leeway.

use sealkm::auth::{AuthError, DevIdp, TokenPolicy, TokenVerifier};
use sealkm::kms::community::{Certificate, Community};
use sealkm::kms::period::{PeriodParams, NTP_UNIX_OFFSET_S};
use serde_json::json;

#[test]
fn period_rolls_over_exactly_at_the_boundary() {
    for (period_s, offset_s) in [
        (2_592_000, 0),
        (2_592_000, 86_400),
        (16_777_215, 0),
        (10, 3),
    ] {
        let p = PeriodParams { period_s, offset_s };
        for n in [1u64, 1_500, 1_501] {
            // NTP seconds: the last second of period n and the first of n + 1.
            let boundary = (n + 1) * period_s + offset_s;
            assert_eq!(p.period_at_ntp(boundary - 1), Some(n), "{p:?} n={n}");
            assert_eq!(p.period_at_ntp(boundary), Some(n + 1), "{p:?} n={n}");
            assert_eq!(p.period_at_ntp(boundary - period_s), Some(n), "{p:?} n={n}");
            assert_eq!(p.period_at_ntp(boundary - period_s - 1), Some(n - 1));
            // The same edges in Unix time, where representable.
            if let Some(b_unix) = p.start_unix(n + 1) {
                assert_eq!(b_unix + NTP_UNIX_OFFSET_S, boundary);
                assert_eq!(p.end_unix(n), Some(b_unix));
                assert_eq!(p.period_at_unix(b_unix - 1), Some(n));
                assert_eq!(p.period_at_unix(b_unix), Some(n + 1));
            }
        }
        // Before the offset there is no period.
        if offset_s > 0 {
            assert_eq!(p.period_at_ntp(offset_s - 1), None);
            assert_eq!(p.period_at_ntp(offset_s), Some(0));
        }
    }
}

#[test]
fn period_of_today_round_trips() {
    let p = PeriodParams {
        period_s: 2_592_000,
        offset_s: 0,
    };
    let now = 1_767_225_600; // 2026-01-01T00:00:00Z
    let n = p.period_at_unix(now).unwrap();
    let (start, end) = (p.start_unix(n).unwrap(), p.end_unix(n).unwrap());
    assert!(start <= now && now < end);
    assert_eq!(end - start, 2_592_000);
    assert_eq!(p.period_at_unix(start), Some(n));
    assert_eq!(p.period_at_unix(end - 1), Some(n));
    assert_eq!(p.period_at_unix(end), Some(n + 1));
}

fn cert(serial: u32, from: u64, to: u64) -> Certificate {
    Certificate {
        serial,
        cert_uri: format!("kms.example.org/cert/{serial}"),
        valid_from_unix: from,
        valid_to_unix: to,
        revoked: false,
        pub_enc_key: vec![],
        pub_auth_key: vec![],
        sealed_master: vec![],
    }
}

#[test]
fn certificate_validity_edges() {
    let c = cert(1, 1_000, 2_000);
    assert!(!c.is_valid_at(999));
    assert!(c.is_valid_at(1_000));
    assert!(c.is_valid_at(1_999));
    assert!(!c.is_valid_at(2_000));

    let mut community = Community::new(
        "kms.example.org".into(),
        PeriodParams {
            period_s: 100,
            offset_s: 0,
        },
    );
    community.certificates.push(cert(1, 1_000, 2_000));
    // A rotation whose certificate starts exactly when the first ends.
    community.certificates.push(cert(2, 2_000, 3_000));
    assert!(community.issuing_certificate(999).is_err());
    assert_eq!(community.issuing_certificate(1_000).unwrap().serial, 1);
    assert_eq!(community.issuing_certificate(1_999).unwrap().serial, 1);
    assert_eq!(community.issuing_certificate(2_000).unwrap().serial, 2);
    assert_eq!(community.issuing_certificate(2_999).unwrap().serial, 2);
    assert!(community.issuing_certificate(3_000).is_err());

    // Live (for the certificate cache): until ValidTo, exclusive.
    let live = |community: &Community, t| {
        community
            .live_certificates(t)
            .map(|c| c.serial)
            .collect::<Vec<_>>()
    };
    assert_eq!(live(&community, 1_999), vec![1, 2]);
    assert_eq!(live(&community, 2_000), vec![2]);
    assert_eq!(live(&community, 2_999), vec![2]);
    assert!(live(&community, 3_000).is_empty());

    // Revoked: never issues, even inside its window, but stays live.
    community.certificates[1].revoked = true;
    assert!(community.issuing_certificate(2_500).is_err());
    assert_eq!(live(&community, 2_500), vec![2]);
}

const LEEWAY: u64 = 60;

fn setup() -> (DevIdp, TokenVerifier, TokenPolicy) {
    let idp = DevIdp::generate("k1").unwrap();
    let policy = TokenPolicy {
        issuer: "https://idms.example".into(),
        audience: "kms".into(),
        leeway_s: LEEWAY,
        identity_claim: "uid".into(),
        scope_claim: "scope".into(),
        required_scope: "km".into(),
    };
    let v = TokenVerifier::new(idp.jwks().unwrap(), policy.clone()).unwrap();
    (idp, v, policy)
}

fn token(idp: &DevIdp, extra: serde_json::Value) -> String {
    let mut claims = json!({
        "iss": "https://idms.example",
        "aud": "kms",
        "uid": "sip:alice@example.org",
        "scope": "km",
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k.as_str()] = v.clone();
    }
    idp.mint(&claims).unwrap()
}

#[test]
fn token_expiry_at_exp_plus_leeway() {
    let (idp, v, _) = setup();
    let exp = 1_000_000u64;
    let t = token(&idp, json!({ "exp": exp, "iat": exp - 600 }));
    // Valid while now < exp + leeway.
    assert!(v.verify(&t, exp - LEEWAY - 1).is_ok());
    assert!(v.verify(&t, exp - 1).is_ok());
    assert!(v.verify(&t, exp).is_ok());
    assert!(v.verify(&t, exp + LEEWAY - 1).is_ok());
    assert_eq!(v.verify(&t, exp + LEEWAY), Err(AuthError::Expired));
    assert_eq!(v.verify(&t, exp + LEEWAY + 1), Err(AuthError::Expired));

    // With no leeway, exp itself is already expired.
    let (idp0, _, mut policy) = setup();
    policy.leeway_s = 0;
    let v0 = TokenVerifier::new(idp0.jwks().unwrap(), policy).unwrap();
    let t0 = token(&idp0, json!({ "exp": exp }));
    assert!(v0.verify(&t0, exp - 1).is_ok());
    assert_eq!(v0.verify(&t0, exp), Err(AuthError::Expired));
}

#[test]
fn token_not_before_and_issued_at_around_the_leeway() {
    let (idp, v, _) = setup();
    let nbf = 2_000_000u64;
    let t = token(&idp, json!({ "nbf": nbf, "exp": nbf + 3_600 }));
    // Accepted once now + leeway reaches nbf.
    assert_eq!(v.verify(&t, nbf - LEEWAY - 1), Err(AuthError::NotYetValid));
    assert!(v.verify(&t, nbf - LEEWAY).is_ok());
    assert!(v.verify(&t, nbf).is_ok());

    let iat = 3_000_000u64;
    let t = token(&idp, json!({ "iat": iat, "exp": iat + 3_600 }));
    assert!(matches!(
        v.verify(&t, iat - LEEWAY - 1),
        Err(AuthError::InvalidClaim(_))
    ));
    assert!(v.verify(&t, iat - LEEWAY).is_ok());

    // A missing exp is refused whatever the time.
    let t = token(&idp, json!({ "iat": iat }));
    assert!(matches!(v.verify(&t, iat), Err(AuthError::InvalidClaim(_))));
}
