//! Input hygiene against a real `sealkm` process (issue 10, item 4): a request's `KmsUri` must
//! name the community that serves it; group ids in paths are decoded strictly (two invalid
//! UTF-8 ids no longer alias); `ttl_s` is bounded; admin names with control characters are
//! refused; and a refused admin command leaves the Raft log as it was (applied index unchanged).

mod common;

use common::cluster::ureq_like::Agent;
use common::parties::{call, client, grant, token};
use common::{error_code, key_set, Env};
use sealkm::dev::DEV_GMS;
use sealkm::kms::xml::kms_error::KmsErrorCode;
use serde_json::json;

const ALICE: &str = "sip:alice@sealkm.test";
const NS: &str = "urn:3gpp:ns:mcsecKMSInterface:1.0";

fn request(kms_uri: &str) -> String {
    format!(
        r#"<KmsRequest xmlns="{NS}" Version="1.1.0"><UserUri>{ALICE}</UserUri><KmsUri>{kms_uri}</KmsUri></KmsRequest>"#
    )
}

#[actix_rt::test]
async fn kms_uri_must_name_the_community_that_serves_the_request() {
    let env = Env::new(|c| {
        c.replace(
            "[keyprov]",
            "[[community]]\nkms_uri = \"kms2.sealkm.test\"\nuser_key_period_s = 86400\n\n[keyprov]",
        )
    });
    let node = env.start();
    let c = node.client(&env.ca(), Some(env.token(ALICE)));
    let to_kms2 = [("Host", "kms2.sealkm.test")];

    // Named right (bare, as a URL, by the host the request was sent to): served.
    for named in [
        "kms2.sealkm.test",
        "https://KMS2.sealkm.test/keymanagement/identity/v1/keyprov",
    ] {
        let r = c
            .post_with("keyprov", Some(request(named)), &to_kms2)
            .await
            .unwrap();
        assert_eq!(key_set(&r).kms_uri, "kms2.sealkm.test", "{named}");
    }
    let r = c
        .post("keyprov", Some(request("kms.sealkm.test")))
        .await
        .unwrap();
    assert_eq!(key_set(&r).kms_uri, "kms.sealkm.test");

    // A request for the default community sent to kms2 would get kms2's keys: refused.
    for wrong in ["kms.sealkm.test", "https://elsewhere.example/x"] {
        let r = c
            .post_with("keyprov", Some(request(wrong)), &to_kms2)
            .await
            .unwrap();
        assert_eq!(
            (r.status, error_code(&r)),
            (403, KmsErrorCode::Forbidden),
            "{wrong}"
        );
    }
    let r = c
        .post("keyprov", Some(request("kms2.sealkm.test")))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
}

fn admin(env: &Env) -> Agent {
    Agent::new(&env.ca(), env.admin_token())
}

fn applied(env: &Env, url: &str) -> u64 {
    let (status, v) = admin(env)
        .get(&format!("{url}/admin/v1/status"))
        .expect("status");
    assert_eq!(status, 200, "{v}");
    v["applied"].as_u64().expect("applied index")
}

#[test]
fn refused_admin_commands_leave_the_log_unchanged() {
    let env = Env::new(|c| c);
    let node = env.start();
    let url = &node.url;
    let a = admin(&env);
    let communities = format!("{url}/admin/v1/communities");
    let before = applied(&env, url);

    let refused: [(String, serde_json::Value); 7] = [
        // Refused by the state machine when applied (committed all the same before).
        (
            format!("{communities}/nope.example/revocations"),
            json!({"identity": "sip:a@sealkm.test"}),
        ),
        (
            format!("{communities}/kms.sealkm.test/revocations/delete"),
            json!({"identity": "sip:never-revoked@sealkm.test"}),
        ),
        (
            format!("{communities}/kms.sealkm.test/certificates/99/revoke"),
            json!({}),
        ),
        (
            format!("{url}/admin/v1/acl/delete"),
            json!({"principal": "nobody.example.org"}),
        ),
        // Control characters in an identity or a reason (accepted and committed before).
        (
            format!("{communities}/kms.sealkm.test/revocations"),
            json!({"identity": "sip:a\u{1b}[2J@sealkm.test"}),
        ),
        (
            format!("{communities}/kms.sealkm.test/revocations"),
            json!({"identity": "sip:a@sealkm.test\n"}),
        ),
        (
            format!("{communities}/kms.sealkm.test/revocations"),
            json!({"identity": "sip:a@sealkm.test", "reason": "x\u{0}y"}),
        ),
    ];
    for (target, body) in &refused {
        let (status, v) = a.post(target, body).expect("admin call");
        assert_eq!(
            (status, applied(&env, url)),
            (400, before),
            "{target} {body}: {v} (status, applied index)"
        );
    }

    // The measure works: one accepted command moves the applied index.
    let (status, v) = a
        .post(
            &format!("{communities}/kms.sealkm.test/revocations"),
            &json!({"identity": "sip:mallory@sealkm.test", "reason": "lost"}),
        )
        .unwrap();
    assert_eq!(status, 200, "{v}");
    assert!(applied(&env, url) > before);
}

/// A started node and the dev GMS, granted every group, as a client of its service listener.
fn gms_on_one_node(env: &Env) -> (common::Node, sealkm::client::party::PartyClient) {
    let node = env.start();
    grant(env.dir(), &node.url, DEV_GMS, "gms", &["*"]);
    let service = node.service_url.as_deref().expect("service listener");
    let gms = client(
        env.dir(),
        service,
        Some("gms"),
        Some(token(env.dir(), DEV_GMS, &[])),
    );
    (node, gms)
}

#[test]
fn group_ids_are_decoded_strictly_and_ttl_is_bounded() {
    let env = Env::new(|t| t);
    let (_node, gms) = gms_on_one_node(&env);
    // %FF and %FE used to decode (lossily) to the same U+FFFD group: both are refused now.
    for raw in ["%FF", "%FE", "a%C3"] {
        let r = call(
            &gms,
            "POST",
            &format!("/seal-x1/v1/groups/{raw}/keys"),
            Some(json!({})),
        );
        assert_eq!(r.status, 400, "{raw}: {}", r.json);
        let r = call(
            &gms,
            "GET",
            &format!("/seal-x1/v1/groups/{raw}/keys/current"),
            None,
        );
        assert_eq!(r.status, 400, "{raw}: {}", r.json);
    }
    // A valid percent-encoded id is the id it spells.
    let r = call(
        &gms,
        "POST",
        "/seal-x1/v1/groups/grp%3A%C3%BC/keys",
        Some(json!({})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["group_id"], "grp:ü");

    // ttl_s: positive and at most ten years.
    for ttl in [json!(0), json!(u64::MAX), json!(10 * 365 * 86_400 + 1)] {
        let r = call(
            &gms,
            "POST",
            "/seal-x1/v1/groups/g-ttl/keys",
            Some(json!({ "ttl_s": ttl })),
        );
        assert_eq!(r.status, 400, "ttl_s {ttl}: {}", r.json);
    }
    let r = call(
        &gms,
        "POST",
        "/seal-x1/v1/groups/g-ttl/keys",
        Some(json!({ "ttl_s": 3600 })),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(
        r.json["version"], 1,
        "the refused creations made no version"
    );
}

/// SEAL-X1 group key changes are decided on a copy before proposing: revoking a revoked
/// version, setting the expiry of a revoked or expired version, or an expiry beyond ten years
/// is refused and leaves the applied index unchanged (they used to be committed as refusals).
#[test]
fn refused_group_key_changes_leave_the_log_unchanged() {
    let env = Env::new(|t| t);
    let (node, gms) = gms_on_one_node(&env);
    let g = "/seal-x1/v1/groups/g-refused/keys";
    for _ in 0..2 {
        let r = call(&gms, "POST", g, Some(json!({})));
        assert_eq!(r.status, 201, "{}", r.json);
    }
    let r = call(&gms, "POST", &format!("{g}/2/revoke"), None);
    assert_eq!(r.status, 200, "{}", r.json);
    // Version 1 expires at once (an expiry in the past).
    let r = call(
        &gms,
        "PUT",
        &format!("{g}/1/expiry"),
        Some(json!({"expires_unix": 1})),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let url = &node.url;
    let before = applied(&env, url);
    let far = common::unix_now() + 10 * 365 * 86_400 + 86_400;
    let refused = [
        ("POST", format!("{g}/2/revoke"), None, 400),
        (
            "PUT",
            format!("{g}/2/expiry"),
            Some(json!({"expires_unix": far - 86_400 * 400})),
            400,
        ),
        (
            "PUT",
            format!("{g}/1/expiry"),
            Some(json!({"expires_unix": null})),
            400,
        ),
        ("POST", format!("{g}/9/revoke"), None, 404),
    ];
    for (method, path, body, want) in refused {
        let r = call(&gms, method, &path, body.clone());
        assert_eq!(
            (r.status, applied(&env, url)),
            (want, before),
            "{path} {body:?}: {} (status, applied index)",
            r.json
        );
    }
    // A third version, then an expiry beyond ten years for it: refused as well.
    let r = call(&gms, "POST", g, Some(json!({})));
    assert_eq!(r.status, 201, "{}", r.json);
    let before = applied(&env, url);
    let r = call(
        &gms,
        "PUT",
        &format!("{g}/3/expiry"),
        Some(json!({ "expires_unix": far })),
    );
    assert_eq!((r.status, applied(&env, url)), (400, before), "{}", r.json);
}

/// Parties cannot grow the replicated state without bound: a principal holds at most
/// `MAX_SUBSCRIPTIONS_PER_PRINCIPAL` subscriptions (429 beyond, nothing written); replacing one
/// of its own is still allowed.
#[test]
fn a_principal_holds_a_bounded_number_of_subscriptions() {
    use sealkm::kms::events::MAX_SUBSCRIPTIONS_PER_PRINCIPAL as MAX;
    let env = Env::new(|t| t);
    let (node, gms) = gms_on_one_node(&env);
    let sub = |id: String| json!({"id": id, "callback_url": "https://127.0.0.1:9/cb", "kinds": ["identity-revoked"]});
    for i in 0..MAX {
        let r = call(
            &gms,
            "POST",
            "/seal-x1/v1/subscriptions",
            Some(sub(format!("s{i}"))),
        );
        assert_eq!(r.status, 201, "{i}: {}", r.json);
    }
    let before = applied(&env, &node.url);
    let r = call(
        &gms,
        "POST",
        "/seal-x1/v1/subscriptions",
        Some(sub("one-too-many".into())),
    );
    assert_eq!(
        (r.status, applied(&env, &node.url)),
        (429, before),
        "{}",
        r.json
    );
    assert!(
        r.json["error"].as_str().unwrap_or("").contains("quota"),
        "{}",
        r.json
    );
    let r = call(
        &gms,
        "POST",
        "/seal-x1/v1/subscriptions",
        Some(sub("s0".into())),
    );
    assert_eq!(r.status, 201, "replacing its own: {}", r.json);
}
