use super::*;
use crate::auth::DevIdp;

const NOW: u64 = 1_800_000_000;

fn ours() -> TokenPolicy {
    TokenPolicy {
        issuer: "https://idms.a.test".into(),
        audience: "sealkm".into(),
        leeway_s: 30,
        identity_claim: "seal_user_id".into(),
        scope_claim: "scope".into(),
        required_scope: "3gpp:seal:km".into(),
    }
}

fn partner() -> (DevIdp, VisitingIdp, TokenPolicy) {
    let idp = DevIdp::generate("b-1").unwrap();
    let cfg = VisitingIdpConfig {
        issuer: "https://idms.b.test".into(),
        jwks_file: "unused".into(),
        domains: vec!["b.test".into()],
        communities: vec!["kms.a.test".into()],
    };
    let v = VisitingIdp::new(&cfg, idp.jwks().unwrap(), &ours(), &PartyPolicy::default()).unwrap();
    let policy = TokenPolicy {
        issuer: cfg.issuer.clone(),
        ..ours()
    };
    (idp, v, policy)
}

#[test]
fn a_partner_token_is_accepted_for_its_domains_only() {
    let (idp, v, policy) = partner();
    let mint = |user: &str| {
        idp.mint_for(&policy, user, "3gpp:seal:km", NOW, 600)
            .unwrap()
    };
    let t = v.verify(&mint("sip:bob@b.test"), NOW).unwrap();
    assert_eq!(t.identity, "sip:bob@b.test");
    let visiting = t.visiting.expect("marked visiting");
    assert_eq!(visiting.issuer, "https://idms.b.test");
    assert!(visiting.may_use("kms.a.test"));
    assert!(!visiting.may_use("kms.other.test"));
    assert!(v.verify(&mint("sip:bob@east.b.test"), NOW).is_ok());
    for outside in ["sip:eve@a.test", "sip:eve@evilb.test", "tel:+1234", "bob"] {
        assert_eq!(
            v.verify(&mint(outside), NOW),
            Err(AuthError::OutsideVisitingDomains),
            "{outside}"
        );
    }
    assert!(AuthError::OutsideVisitingDomains.is_forbidden());
}

#[test]
fn everything_else_is_checked_as_for_our_own_tokens() {
    let (idp, v, policy) = partner();
    // Expired, party scope, our issuer, another key.
    let expired = idp
        .mint_for(&policy, "sip:bob@b.test", "3gpp:seal:km", NOW - 10_000, 600)
        .unwrap();
    assert_eq!(v.verify(&expired, NOW), Err(AuthError::Expired));
    let party = idp
        .mint_for(
            &policy,
            "sip:bob@b.test",
            "3gpp:seal:km 3gpp:seal:km:party",
            NOW,
            600,
        )
        .unwrap();
    assert_eq!(v.verify(&party, NOW), Err(AuthError::WrongInterface));
    let as_ours = idp
        .mint_for(&ours(), "sip:bob@b.test", "3gpp:seal:km", NOW, 600)
        .unwrap();
    assert_eq!(v.verify(&as_ours, NOW), Err(AuthError::WrongIssuer));
    let other = DevIdp::generate("b-1").unwrap();
    let forged = other
        .mint_for(&policy, "sip:bob@b.test", "3gpp:seal:km", NOW, 600)
        .unwrap();
    assert_eq!(v.verify(&forged, NOW), Err(AuthError::BadSignature));
    assert_eq!(
        unverified_issuer(&forged).as_deref(),
        Some("https://idms.b.test")
    );
    assert_eq!(unverified_issuer("a.b"), None);
}

#[test]
fn a_visiting_provider_needs_its_own_issuer_and_a_domain() {
    let idp = DevIdp::generate("b-1").unwrap();
    let mut cfg = VisitingIdpConfig {
        issuer: ours().issuer,
        jwks_file: "unused".into(),
        domains: vec!["b.test".into()],
        communities: Vec::new(),
    };
    let p = PartyPolicy::default();
    assert!(VisitingIdp::new(&cfg, idp.jwks().unwrap(), &ours(), &p).is_err());
    cfg.issuer = "https://idms.b.test".into();
    cfg.domains.clear();
    assert!(VisitingIdp::new(&cfg, idp.jwks().unwrap(), &ours(), &p).is_err());
    cfg.domains = vec!["not a domain".into()];
    assert!(VisitingIdp::new(&cfg, idp.jwks().unwrap(), &ours(), &p).is_err());
}
