//! KM-UU access-token checks against a real `sealkm` process over HTTPS: every refused token
//! gets 401 with a `KmsError` (Unauthorized) and a `Bearer` challenge; a valid token for the
//! wrong identity or without the key management scope gets 403.

mod common;

use common::error_code;

use common::{unix_now, Env, Node};
use sealkm::client::KmReply;
use sealkm::kms::xml::kms_error::KmsErrorCode;
use serde_json::{Map, Value};

const ALICE: &str = "sip:alice@sealkm.test";
const BOB: &str = "sip:bob@sealkm.test";

fn assert_unauthorized(what: &str, reply: &KmReply) {
    assert_eq!(reply.status, 401, "{what}: {:?}", reply.doc.body);
    assert_eq!(error_code(reply), KmsErrorCode::Unauthorized, "{what}");
    let challenge = reply.www_authenticate.as_deref().unwrap_or("");
    assert!(
        challenge.starts_with("Bearer"),
        "{what}: WWW-Authenticate {challenge:?}"
    );
}

async fn keyprov_with(node: &Node, env: &Env, token: Option<String>) -> KmReply {
    node.client(&env.ca(), token)
        .post("keyprov", None)
        .await
        .expect("request")
}

fn mint(env: &Env, claims: Map<String, Value>) -> String {
    env.idp().mint(&Value::Object(claims)).expect("mint")
}

#[actix_rt::test]
async fn refused_tokens_are_401_with_a_bearer_challenge() {
    let env = Env::new(|c| c);
    let node = env.start();
    let now = unix_now();
    let leeway = env.policy().leeway_s;

    // Control: the untouched claims are accepted, so each case below fails for its one edit.
    let ok = keyprov_with(&node, &env, Some(mint(&env, env.claims(ALICE, now)))).await;
    assert_eq!(ok.status, 200, "{:?}", ok.doc.body);

    // Expired beyond the leeway.
    let mut c = env.claims(ALICE, now);
    c.insert("iat".into(), (now - 3600).into());
    c.insert("exp".into(), (now - leeway - 600).into());
    assert_unauthorized(
        "expired",
        &keyprov_with(&node, &env, Some(mint(&env, c))).await,
    );

    // Not yet valid: nbf well in the future.
    let mut c = env.claims(ALICE, now);
    c.insert("nbf".into(), (now + leeway + 300).into());
    c.insert("exp".into(), (now + 3600).into());
    assert_unauthorized(
        "nbf in the future",
        &keyprov_with(&node, &env, Some(mint(&env, c))).await,
    );

    // Wrong audience.
    let mut c = env.claims(ALICE, now);
    c.insert("aud".into(), "some-other-kms".into());
    assert_unauthorized(
        "wrong audience",
        &keyprov_with(&node, &env, Some(mint(&env, c))).await,
    );

    // Wrong issuer.
    let mut c = env.claims(ALICE, now);
    c.insert("iss".into(), "https://idms.attacker.test".into());
    assert_unauthorized(
        "wrong issuer",
        &keyprov_with(&node, &env, Some(mint(&env, c))).await,
    );

    // Signed by another key that claims the configured kid.
    let rogue = sealkm::auth::DevIdp::generate(sealkm::dev::DEV_IDP_KID).expect("keygen");
    let forged = rogue
        .mint(&Value::Object(env.claims(ALICE, now)))
        .expect("mint");
    assert_unauthorized(
        "wrong signature",
        &keyprov_with(&node, &env, Some(forged)).await,
    );

    // alg "none": unsigned, with an empty and with a non-empty signature part.
    let header = sealkm::auth::base64url_encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = sealkm::auth::base64url_encode(
        Value::Object(env.claims(ALICE, now)).to_string().as_bytes(),
    );
    for sig in ["", "AAAA"] {
        let token = format!("{header}.{payload}.{sig}");
        assert_unauthorized("alg none", &keyprov_with(&node, &env, Some(token)).await);
    }

    // No token at all, on every resource.
    assert_unauthorized("missing token", &keyprov_with(&node, &env, None).await);
    for path in ["init", "certcache"] {
        let r = node.client(&env.ca(), None).post(path, None).await.unwrap();
        assert_unauthorized(path, &r);
    }
}

#[actix_rt::test]
async fn wrong_identity_or_missing_scope_is_403() {
    let env = Env::new(|c| c);
    let node = env.start();
    let now = unix_now();

    // Bob's valid token for Alice's keyprov path: 403 Forbidden; for his own: 200.
    let bob = node.client(&env.ca(), Some(env.token(BOB)));
    let r = bob
        .post("keyprov/sip%3Aalice%40sealkm.test", None)
        .await
        .unwrap();
    assert_eq!((r.status, error_code(&r)), (403, KmsErrorCode::Forbidden));
    let r = bob
        .post("keyprov/sip:alice@sealkm.test", None)
        .await
        .unwrap();
    assert_eq!((r.status, error_code(&r)), (403, KmsErrorCode::Forbidden));
    let r = bob
        .post("keyprov/sip%3Abob%40sealkm.test", None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.doc.body);

    // A valid token without the key management scope: 403, as a string or an array.
    let mut c = env.claims(ALICE, now);
    c.insert("scope".into(), "openid profile".into());
    let r = keyprov_with(&node, &env, Some(mint(&env, c))).await;
    assert_eq!((r.status, error_code(&r)), (403, KmsErrorCode::Forbidden));
    let mut c = env.claims(ALICE, now);
    c.insert("scope".into(), serde_json::json!(["openid"]));
    let r = keyprov_with(&node, &env, Some(mint(&env, c))).await;
    assert_eq!(r.status, 403);
    let mut c = env.claims(ALICE, now);
    c.remove("scope");
    let r = keyprov_with(&node, &env, Some(mint(&env, c))).await;
    assert_eq!((r.status, error_code(&r)), (403, KmsErrorCode::Forbidden));
}
