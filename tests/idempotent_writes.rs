//! `Idempotency-Key` on writes, with a real process: a write answered 503 may still commit,
//! so a client retries with the same key and must get the first result, not a second write.
//! Group key creation (SEAL-X1) and an admin certificate rotation.

mod common;

use common::parties::{block, grant, identity, token};
use common::Env;
use sealkm::dev::{self, DEV_GMS, DEV_KMS_URI};
use serde_json::{json, Value};

/// POST `body` to `url` over `tls` with a bearer token and an optional `Idempotency-Key`.
fn post(
    tls: rustls::ClientConfig,
    bearer: &str,
    url: &str,
    key: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let client = sealkm::client::http_client(tls);
    block(async {
        let mut req = client.post(url).bearer_auth(bearer);
        if let Some(k) = key {
            req = req.insert_header(("Idempotency-Key", k));
        }
        let mut resp = req.send_json(&body).await.expect("request");
        let bytes = resp.body().limit(1 << 20).await.expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (resp.status().as_u16(), json)
    })
}

#[test]
fn a_repeated_write_with_the_same_key_answers_the_first_result() {
    let env = Env::new(|t| t);
    let node = env.start();
    let dir = env.dir();
    grant(dir, &node.url, DEV_GMS, "gms", &["*"]);
    let (cert, key) = identity(dir, "gms");
    let gms_tls =
        || sealkm::client::party_tls(&dir.join(dev::CA_CERT), Some((&cert, &key))).unwrap();
    let gms_token = token(dir, DEV_GMS, &[]);
    let service = node.service_url.as_deref().expect("service listener");
    let keys = format!("{service}/seal-x1/v1/groups/g-idem/keys");
    let create = |k: Option<&str>, body: Value| post(gms_tls(), &gms_token, &keys, k, body);

    let (s1, first) = create(Some("create-g-idem-1"), json!({}));
    assert_eq!(s1, 201, "{first}");
    assert_eq!(first["version"], 1);
    // The retry of a request whose answer was lost: the same version and GMK, no version 2.
    let (s2, again) = create(Some("create-g-idem-1"), json!({}));
    assert_eq!(s2, 201, "{again}");
    assert_eq!(again["version"], 1);
    assert_eq!(again["gmk"], first["gmk"]);
    assert_eq!(again["gmk_id"], first["gmk_id"]);
    // The same key for another request is a conflict; a bad key is refused.
    let (s3, other) = create(Some("create-g-idem-1"), json!({"ttl_s": 60}));
    assert_eq!(s3, 409, "{other}");
    let (s4, bad) = create(Some("bad key with spaces"), json!({}));
    assert_eq!(s4, 400, "{bad}");
    // A new key (or none) is a new request: a rotation.
    let (s5, rotated) = create(Some("rotate-g-idem-2"), json!({}));
    assert_eq!((s5, rotated["version"].clone()), (201, json!(2)));
    let (s6, none) = create(None, json!({}));
    assert_eq!((s6, none["version"].clone()), (201, json!(3)));

    // An admin rotation repeated with its key gives the first certificate, no third one.
    let admin_tls = || sealkm::tls::client_config(&env.ca()).unwrap();
    let admin = env.admin_token();
    let rotate = format!(
        "{}/admin/v1/communities/{DEV_KMS_URI}/certificates",
        node.url
    );
    let body = json!({"validity_days": 30});
    let (r1, c1) = post(admin_tls(), &admin, &rotate, Some("rot-1"), body.clone());
    assert_eq!(r1, 200, "{c1}");
    let (r2, c2) = post(admin_tls(), &admin, &rotate, Some("rot-1"), body.clone());
    assert_eq!(r2, 200, "{c2}");
    assert_eq!(c2["cert_uri"], c1["cert_uri"]);
    let (r3, c3) = post(admin_tls(), &admin, &rotate, Some("rot-2"), body);
    assert_eq!(r3, 200, "{c3}");
    assert_ne!(c3["cert_uri"], c1["cert_uri"]);
}
