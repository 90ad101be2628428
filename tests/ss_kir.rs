//! TS 29.549 `SS_KeyInfoRetrieval` (`GET /ss-kir/v1/key-records`) with a real node over mutual
//! TLS: what SEAL key provisioning pushed for a VAL service is answered as `ValKeyInfo`, the
//! newest push wins, the retrieval rule (own pushes, or the service granted in the ACL), and
//! every refusal as `application/problem+json` with the status the API lists.

mod common;

use base64::Engine;
use common::parties::{block, call, client, grant, http_call_with, identity, token};
use common::Env;
use sealkm::dev::{self, DEV_VAL};
use serde_json::{json, Value};

const VAL2: &str = "val2.sealkm.test";
const VAL3: &str = "val3.sealkm.test";

struct Setup {
    env: Env,
    node: common::Node,
}

/// An answer: status, content type, JSON body (`Null` if not JSON).
struct Reply {
    status: u16,
    content_type: String,
    json: Value,
    retry_after: Option<String>,
}

impl Setup {
    /// `val` may push (no service granted); `val2` is a VAL server granted nothing; `val3` is
    /// granted every service (`*`).
    fn new() -> Self {
        Self::with(|t| t)
    }

    /// [`Setup::new`] with the node's config edited by `tweak`.
    fn with(tweak: impl FnOnce(String) -> String) -> Self {
        let env = Env::new(tweak);
        let node = env.start();
        for (stem, name) in [("val2", VAL2), ("val3", VAL3)] {
            dev::issue_party(env.dir(), stem, &[name.to_owned()]).expect("issue party");
        }
        grant(env.dir(), &node.url, DEV_VAL, "val-server", &["g-other"]);
        grant(env.dir(), &node.url, VAL2, "val-server", &[]);
        grant(env.dir(), &node.url, VAL3, "val-server", &["*"]);
        Self { env, node }
    }

    fn service(&self) -> &str {
        self.node.service_url.as_deref().expect("service listener")
    }

    fn push(&self, body: Value) {
        let c = client(
            self.env.dir(),
            self.service(),
            Some("val"),
            Some(token(self.env.dir(), DEV_VAL, &[("SKeyProv", json!(true))])),
        );
        let r = call(&c, "POST", "/km-s/v1/key-provisioning", Some(body));
        assert_eq!(r.status, 201, "{}", r.json);
    }

    /// GET `path` as the party of certificate `stem` with a token for `name` (either may be
    /// left out), with an optional `Accept` header.
    fn get(
        &self,
        stem: Option<&str>,
        name: Option<&str>,
        path: &str,
        accept: Option<&str>,
    ) -> Reply {
        let dir = self.env.dir();
        let files = stem.map(|s| identity(dir, s));
        let tls = sealkm::client::party_tls(
            &dir.join(dev::CA_CERT),
            files.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        )
        .expect("tls");
        let url = format!("{}{path}", self.service());
        let tok = name.map(|n| token(dir, n, &[]));
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let a = block(http_call_with(
            tls,
            "GET",
            &url,
            tok.as_deref(),
            &headers,
            None,
        ));
        Reply {
            status: a.status,
            retry_after: a.retry_after,
            content_type: a.content_type,
            json: serde_json::from_slice(&a.body).unwrap_or(Value::Null),
        }
    }

    fn get_as(&self, who: &str, query: &str) -> Reply {
        let (stem, name) = match who {
            "val" => ("val", DEV_VAL),
            "val2" => ("val2", VAL2),
            _ => ("val3", VAL3),
        };
        self.get(
            Some(stem),
            Some(name),
            &format!("/ss-kir/v1/key-records{query}"),
            None,
        )
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A problem answer: its status, media type and body `status` agree.
fn assert_problem(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "{}", r.json);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.json);
    assert_eq!(r.json["status"], status, "{}", r.json);
    assert!(
        r.json["title"].is_string() && r.json["detail"].is_string(),
        "{}",
        r.json
    );
}

#[test]
fn pushed_key_information_is_retrieved_newest_first_within_the_grant() {
    let s = Setup::new();
    s.push(json!({"key_id": "k1", "key_info": b64(b"first"), "val_service_id": "svc-a"}));
    let r = s.get_as("val", "?val-service-id=svc-a");
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(
        r.json["userUri"], DEV_VAL,
        "no target: the pushing VAL server"
    );
    assert_eq!(r.json["valService"], "svc-a");
    assert_eq!(r.json["keyInfo"], b64(b"first"));
    assert!(r.json.get("valTgtUe").is_none(), "{}", r.json);

    // A second push for the service (another key id) replaces the answer.
    s.push(json!({"key_id": "k2", "key_info": b64(b"second"), "val_service_id": "svc-a"}));
    assert_eq!(
        s.get_as("val", "?val-service-id=svc-a").json["keyInfo"],
        b64(b"second")
    );

    // A push for a target answers only for that target.
    s.push(
        json!({"key_id": "k3", "key_info": b64(b"for ue1"), "val_service_id": "svc-a",
                  "val_tgt_ue": "sip:ue1@example.org"}),
    );
    let r = s.get_as(
        "val",
        "?val-service-id=svc-a&val-tgt-ue=sip%3Aue1%40example.org",
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["userUri"], "sip:ue1@example.org");
    assert_eq!(r.json["valTgtUe"], "sip:ue1@example.org");
    assert_eq!(r.json["keyInfo"], b64(b"for ue1"));
    assert_eq!(
        s.get_as("val", "?val-service-id=svc-a").json["keyInfo"],
        b64(b"second")
    );

    // A VAL server granted every service reads it; one granted nothing does not.
    let r = s.get_as("val3", "?val-service-id=svc-a");
    assert_eq!(
        (r.status, &r.json["keyInfo"]),
        (200, &json!(b64(b"second")))
    );
    assert_problem(&s.get_as("val2", "?val-service-id=svc-a"), 403);
    // Granted, nothing pushed: 404; not granted and no push of its own: 403 either way.
    assert_problem(&s.get_as("val3", "?val-service-id=svc-unknown"), 404);
    assert_problem(&s.get_as("val2", "?val-service-id=svc-unknown"), 403);
    assert_problem(
        &s.get_as(
            "val3",
            "?val-service-id=svc-a&val-tgt-ue=sip%3Aue2%40example.org",
        ),
        404,
    );
}

#[test]
fn refusals_are_problem_details() {
    let s = Setup::new();
    s.push(json!({"key_id": "k1", "key_info": b64(b"x"), "val_service_id": "svc-a"}));
    // val-service-id missing or invalid: 400 naming it.
    for query in [
        "",
        "?val-tgt-ue=u",
        "?val-service-id=",
        "?val-service-id=a&val-service-id=b",
    ] {
        let r = s.get_as("val", query);
        assert_problem(&r, 400);
        assert_eq!(
            r.json["invalidParams"][0]["param"], "val-service-id",
            "{query}"
        );
    }
    let r = s.get_as("val", "?val-service-id=svc-a&val-tgt-ue=");
    assert_problem(&r, 400);
    assert_eq!(r.json["invalidParams"][0]["param"], "val-tgt-ue");
    // An Accept that excludes JSON: 406.
    let path = "/ss-kir/v1/key-records?val-service-id=svc-a";
    assert_problem(
        &s.get(Some("val"), Some(DEV_VAL), path, Some("application/xml")),
        406,
    );
    let ok = s.get(Some("val"), Some(DEV_VAL), path, Some("application/json"));
    assert_eq!(ok.status, 200, "{}", ok.json);
    // No token, no client certificate: 401 (before the query is even looked at).
    assert_problem(
        &s.get(Some("val"), None, "/ss-kir/v1/key-records", None),
        401,
    );
    assert_problem(&s.get(None, Some(DEV_VAL), path, None), 401);
    // Certificate and token of different parties: 403.
    assert_problem(&s.get(Some("val2"), Some(DEV_VAL), path, None), 403);
    // The push route keeps its own error body.
    let c = client(
        s.env.dir(),
        s.service(),
        Some("val"),
        Some(token(s.env.dir(), DEV_VAL, &[])),
    );
    let r = call(
        &c,
        "POST",
        "/km-s/v1/key-provisioning",
        Some(json!({"key_id": "k", "key_info": "AAAA"})),
    );
    assert_eq!(r.status, 403);
    assert!(r.json["error"].is_string(), "{}", r.json);
    // A target without a service is refused at push time.
    let c = client(
        s.env.dir(),
        s.service(),
        Some("val"),
        Some(token(s.env.dir(), DEV_VAL, &[("SKeyProv", json!(true))])),
    );
    let r = call(
        &c,
        "POST",
        "/km-s/v1/key-provisioning",
        Some(json!({"key_id": "k", "key_info": "AAAA", "val_tgt_ue": "u"})),
    );
    assert_eq!(r.status, 400, "{}", r.json);
}

#[test]
fn a_caller_beyond_its_retrieval_burst_gets_429_problem_details() {
    let s = Setup::with(|t| t.replace("[admission]\n", "[admission]\nretrieval_burst = 3\n"));
    s.push(json!({"key_id": "k1", "key_info": b64(b"x"), "val_service_id": "svc-a"}));
    for _ in 0..3 {
        assert_eq!(s.get_as("val", "?val-service-id=svc-a").status, 200);
    }
    let r = s.get_as("val", "?val-service-id=svc-a");
    assert_problem(&r, 429);
    let wait: u64 = r
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(wait >= 1, "{wait}");
    // Admission is per caller: another VAL server is still served.
    assert_eq!(s.get_as("val3", "?val-service-id=svc-a").status, 200);
}

#[test]
fn the_openapi_document_lists_ss_kir() {
    let s = Setup::new();
    let r = s.get(Some("val"), Some(DEV_VAL), "/openapi.json", None);
    assert_eq!(r.status, 200);
    let op = &r.json["paths"]["/ss-kir/v1/key-records"]["get"];
    assert!(op.is_object(), "documented");
    for status in [
        "200", "400", "401", "403", "404", "406", "429", "500", "503",
    ] {
        assert!(op["responses"][status].is_object(), "{status} documented");
    }
    assert!(r.json["components"]["schemas"]["ValKeyInfo"].is_object());
    assert!(r.json["components"]["schemas"]["ProblemDetails"].is_object());
}
