//! The service listener with real processes: who may call it (certificate + token naming the
//! same party + ACL role), what a VAL server may read (KM-S), SEAL key provisioning with
//! `SKeyProv`, and that refusals change nothing.

mod common;

use common::parties::{block, call, client, digest, grant, km_client, token};
use common::Env;
use sealkm::dev::{DEV_GMS, DEV_VAL};
use serde_json::json;

const GMS: &str = "gms";
const VAL: &str = "val";

struct Setup {
    env: Env,
    node: common::Node,
}

impl Setup {
    fn new() -> Self {
        let env = Env::new(|t| t);
        let node = env.start();
        grant(env.dir(), &node.url, DEV_GMS, "gms", &["*"]);
        grant(
            env.dir(),
            &node.url,
            DEV_VAL,
            "val-server",
            &["g-allowed", "g-unknown"],
        );
        Self { env, node }
    }

    fn service(&self) -> &str {
        self.node.service_url.as_deref().expect("service listener")
    }

    fn gms(&self) -> sealkm::client::party::PartyClient {
        client(
            self.env.dir(),
            self.service(),
            Some(GMS),
            Some(token(self.env.dir(), DEV_GMS, &[])),
        )
    }

    fn val(&self, extra: &[(&str, serde_json::Value)]) -> sealkm::client::party::PartyClient {
        client(
            self.env.dir(),
            self.service(),
            Some(VAL),
            Some(token(self.env.dir(), DEV_VAL, extra)),
        )
    }

    fn digest(&self) -> String {
        digest(self.env.dir(), &self.node.url)
    }
}

#[test]
fn certificate_and_token_must_both_name_the_same_granted_party() {
    let s = Setup::new();
    let dir = s.env.dir();
    let path = "/km-s/v1/groups/g-allowed/keys";
    // The right pair gets through to the (unknown) group.
    assert_eq!(call(&s.val(&[]), "GET", path, None).status, 404);
    // A certificate without a token.
    let r = call(
        &client(dir, s.service(), Some(VAL), None),
        "GET",
        path,
        None,
    );
    assert_eq!(r.status, 401, "{}", r.json);
    // A token without a certificate.
    let r = call(
        &client(dir, s.service(), None, Some(token(dir, DEV_VAL, &[]))),
        "GET",
        path,
        None,
    );
    assert_eq!(r.status, 401, "{}", r.json);
    assert!(r.json["error"]
        .as_str()
        .unwrap()
        .contains("client certificate"));
    // The GMS's certificate with the VAL server's token: different parties.
    let r = call(
        &client(dir, s.service(), Some(GMS), Some(token(dir, DEV_VAL, &[]))),
        "GET",
        path,
        None,
    );
    assert_eq!(r.status, 403, "{}", r.json);
    assert!(r.json["error"]
        .as_str()
        .unwrap()
        .contains("different parties"));
    // A party with a certificate and token of its own but no ACL entry.
    sealkm::dev::issue_party(dir, "stranger", &["stranger.sealkm.test".into()]).unwrap();
    let r = call(
        &client(
            dir,
            s.service(),
            Some("stranger"),
            Some(token(dir, "stranger.sealkm.test", &[])),
        ),
        "GET",
        path,
        None,
    );
    assert_eq!(r.status, 403, "{}", r.json);
    // The right party on the wrong interface: a VAL server is not the GMS.
    let r = call(
        &s.val(&[]),
        "POST",
        "/seal-x1/v1/groups/g-allowed/keys",
        None,
    );
    assert_eq!(r.status, 403, "{}", r.json);
    // The KM documents follow the same rule.
    let kc = km_client(
        dir,
        s.service(),
        "/km-s/v1/keymanagement",
        GMS,
        token(dir, DEV_VAL, &[]),
    );
    assert_eq!(block(kc.post("init", None)).unwrap().status, 403);
}

#[test]
fn val_server_reads_only_entitled_groups_and_bad_requests_change_nothing() {
    let s = Setup::new();
    let gms = s.gms();
    for g in ["g-allowed", "g-other"] {
        let r = call(
            &gms,
            "POST",
            &format!("/seal-x1/v1/groups/{g}/keys"),
            Some(json!({})),
        );
        assert_eq!(r.status, 201, "{}", r.json);
    }
    let created = call(&gms, "GET", "/seal-x1/v1/groups/g-allowed/keys/1", None);
    assert_eq!(created.status, 200);
    let val = s.val(&[]);
    let r = call(&val, "GET", "/km-s/v1/groups/g-allowed/keys/current", None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["gmk"], created.json["gmk"]);
    assert_eq!(r.json["gmk_id"], created.json["gmk_id"]);
    assert_eq!(r.json["current"], true);

    let before = s.digest();
    let refusals: &[(&str, &str, Option<&[u8]>, u16)] = &[
        ("GET", "/km-s/v1/groups/g-other/keys/current", None, 403),
        ("GET", "/km-s/v1/groups/g-other/keys", None, 403),
        ("GET", "/km-s/v1/groups/g-unknown/keys/current", None, 404),
        ("GET", "/km-s/v1/groups/g-allowed/keys/7", None, 404),
        ("GET", "/km-s/v1/groups/g-allowed/keys/zero", None, 400),
        ("GET", "/km-s/v1/groups/g-allowed/keys/0", None, 400),
        ("GET", "/km-s/v1/groups/a%20b/keys/current", None, 400),
        ("POST", "/km-s/v1/key-provisioning", Some(b"{not json"), 400),
        (
            "POST",
            "/km-s/v1/key-provisioning",
            Some(br#"{"key_id":"k","key_info":"@@"}"#),
            400,
        ),
        (
            "POST",
            "/km-s/v1/key-provisioning",
            Some(br#"{"key_id":"a/b","key_info":"AAAA"}"#),
            400,
        ),
        (
            "POST",
            "/km-s/v1/key-provisioning",
            Some(br#"{"key_id":"k","key_info":"AAAA","x":1}"#),
            400,
        ),
    ];
    let skp = s.val(&[("SKeyProv", json!(true))]);
    for (method, path, body, want) in refusals {
        let r = block(skp.call_raw(method, path, body.map(<[u8]>::to_vec))).unwrap();
        assert_eq!(r.status, *want, "{method} {path}: {}", r.json);
        assert!(
            r.json["error"].is_string(),
            "{method} {path}: a reason is given"
        );
    }
    // Too large: 413, before anything is read past the limit.
    let huge = format!(r#"{{"key_id":"k","key_info":"{}"}}"#, "A".repeat(200_000));
    let r =
        block(skp.call_raw("POST", "/km-s/v1/key-provisioning", Some(huge.into_bytes()))).unwrap();
    assert_eq!(r.status, 413, "{}", r.json);
    let r = block(gms.call_raw(
        "POST",
        "/seal-x1/v1/groups/g-x/keys",
        Some(vec![b' '; 10_000]),
    ))
    .unwrap();
    assert_eq!(r.status, 413, "{}", r.json);
    assert_eq!(s.digest(), before, "refused requests changed the state");
}

#[test]
fn seal_key_provisioning_needs_the_skeyprov_claim() {
    let s = Setup::new();
    let body = json!({"key_id": "svc-key-1", "key_info": "c2VjcmV0IGtleSBpbmZv"});
    let before = s.digest();
    let r = call(
        &s.val(&[]),
        "POST",
        "/km-s/v1/key-provisioning",
        Some(body.clone()),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    assert!(r.json["error"].as_str().unwrap().contains("SKeyProv"));
    let r = call(
        &s.val(&[("SKeyProv", json!(false))]),
        "POST",
        "/km-s/v1/key-provisioning",
        Some(body.clone()),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    assert_eq!(s.digest(), before, "a refused push changed the state");
    let r = call(
        &s.val(&[("SKeyProv", json!(true))]),
        "POST",
        "/km-s/v1/key-provisioning",
        Some(body),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["result"], "acknowledged");
    assert_eq!(r.json["key_id"], "svc-key-1");
    assert_ne!(s.digest(), before, "the push is stored");
}

#[test]
fn group_key_lifecycle_never_hands_out_an_unusable_version_as_current() {
    let s = Setup::new();
    let gms = s.gms();
    let g = "/seal-x1/v1/groups/g-allowed/keys";
    let v1 = call(&gms, "POST", g, Some(json!({})));
    assert_eq!(v1.status, 201);
    assert_eq!(v1.json["version"], 1);
    let tag = u32::from_str_radix(v1.json["gmk_id"].as_str().unwrap(), 16).unwrap() >> 28;
    assert_eq!(tag, 0, "GMK purpose tag");
    let v2 = call(&gms, "POST", g, None);
    assert_eq!(v2.status, 201, "{}", v2.json);
    assert_eq!(v2.json["version"], 2);
    assert_ne!(v2.json["gmk"], v1.json["gmk"]);
    let cur = call(&gms, "GET", &format!("{g}/current"), None);
    assert_eq!(cur.json["version"], 2);
    // Revoke v2: v1 is current again; v2 stays readable as a past version.
    let r = call(&gms, "POST", &format!("{g}/2/revoke"), None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["current_version"], 1);
    let old = call(&gms, "GET", &format!("{g}/2"), None);
    assert_eq!(
        (old.json["revoked"].as_bool(), old.json["current"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(
        call(&gms, "POST", &format!("{g}/2/revoke"), None).status,
        400
    );
    // Expire v1: a later expiry is recorded; one in the past takes effect at once.
    let now = common::unix_now();
    let r = call(
        &gms,
        "PUT",
        &format!("{g}/1/expiry"),
        Some(json!({"expires_unix": now + 3600})),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["versions"][0]["expires_unix"], now + 3600);
    assert_eq!(r.json["current_version"], 1);
    let r = call(
        &gms,
        "PUT",
        &format!("{g}/1/expiry"),
        Some(json!({"expires_unix": now - 1})),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(r.json["current_version"].is_null(), "{}", r.json);
    let r = call(&gms, "GET", &format!("{g}/current"), None);
    assert_eq!(r.status, 404, "{}", r.json);
    // An expired version is never made current again.
    let r = call(
        &gms,
        "PUT",
        &format!("{g}/1/expiry"),
        Some(json!({"expires_unix": null})),
    );
    assert_eq!(r.status, 400, "{}", r.json);
    assert_eq!(call(&gms, "GET", &format!("{g}/current"), None).status, 404);
    assert_eq!(
        call(&gms, "POST", &format!("{g}/9/revoke"), None).status,
        404
    );
    // A rotation makes a usable version current again.
    let v3 = call(&gms, "POST", g, Some(json!({"ttl_s": 3600})));
    assert_eq!(v3.json["version"], 3);
    assert_eq!(
        call(&gms, "GET", &format!("{g}/current"), None).json["version"],
        3
    );
}

#[test]
fn the_openapi_document_is_served_and_matches_the_checked_in_one() {
    let s = Setup::new();
    let r = call(
        &client(s.env.dir(), s.service(), None, None),
        "GET",
        "/openapi.json",
        None,
    );
    assert_eq!(r.status, 200);
    let checked_in: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r.json, checked_in);
    for path in [
        "/km-s/v1/key-provisioning",
        "/seal-x1/v1/groups/{group_id}/keys",
    ] {
        assert!(r.json["paths"][path].is_object(), "{path} documented");
    }
}
