//! CAPIF (TS 29.549 clause 8, TS 29.222, TS 33.122) with a real node and the stand-in CCF of
//! `common::ccf` (no real CCF runs on these machines): registration, publication of `ss-kir`
//! (the `apiId` kept and shown, publishing again idempotent), serving while the CCF is away
//! and delivering the spooled invocation logs when it returns (without key material), OAUTH
//! tokens accepted and refused, PKI invokers authorised by `trustedInvokers` (unknown ones
//! refused while the CCF is away), and `revoke-authorization` (the CCF's certificate only;
//! effective at once).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use common::ccf::Ccf;
use common::cluster::ureq_like::Agent;
use common::cluster::Cluster;
use common::parties::{block, call, client, grant, http_call, token};
use common::{Env, Node};
use sealkm::dev::{self, DEV_VAL};
use serde_json::{json, Value};

const AEF: &str = "aef-sealkm-1";
const SECRET: &[u8] = b"SECRET-KEY-MATERIAL-7f3a9c";

struct Setup {
    ccf: Ccf,
    env: Env,
    node: Node,
}

struct Reply {
    status: u16,
    content_type: String,
    json: Value,
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds (no sleeping as
/// synchronisation: the condition is the event waited for).
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Setup {
    /// A node with `[capif]` towards a fresh stand-in CCF; `svc-1` has key information pushed
    /// by the dev VAL server.
    fn new(publish_at_start: bool) -> Self {
        Self::with(&format!("publish_at_start = {publish_at_start}\n"))
    }

    /// [`Setup::new`] with `extra` lines in `[capif]`.
    fn with(extra: &str) -> Self {
        let env = Env::new(|t| t);
        let ccf = Ccf::start(env.dir());
        let mut text = std::fs::read_to_string(env.config()).unwrap();
        text.push_str(&ccf.config_section(AEF, 100));
        text.push_str(extra);
        std::fs::write(env.config(), text).unwrap();
        let node = env.start();
        let s = Setup { ccf, env, node };
        grant(s.env.dir(), &s.node.url, DEV_VAL, "val-server", &[]);
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
            Some(json!({"key_id": "k1", "key_info": b64(SECRET), "val_service_id": "svc-1"})),
        );
        assert_eq!(r.status, 201, "{}", r.json);
        s
    }

    fn service(&self) -> &str {
        self.node.service_url.as_deref().expect("service listener")
    }

    fn admin(&self) -> Agent {
        Agent::new(&self.env.ca(), self.env.admin_token())
    }

    fn status(&self) -> Value {
        let (st, v) = self
            .admin()
            .get(&format!("{}/admin/v1/capif", self.node.url))
            .unwrap();
        assert_eq!(st, 200, "{v}");
        v
    }

    /// GET ss-kir for `svc-1` with an optional client certificate and bearer token.
    fn get(&self, cert: Option<(&Path, &Path)>, bearer: Option<String>) -> Reply {
        self.request(
            "GET",
            "/ss-kir/v1/key-records?val-service-id=svc-1",
            cert,
            bearer,
            None,
        )
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        cert: Option<(&Path, &Path)>,
        bearer: Option<String>,
        body: Option<Value>,
    ) -> Reply {
        self.request_alpn(method, path, cert, bearer, body, None)
    }

    /// [`Setup::request`] offering only `alpn` (`h2` or `http/1.1`) if given.
    fn request_alpn(
        &self,
        method: &str,
        path: &str,
        cert: Option<(&Path, &Path)>,
        bearer: Option<String>,
        body: Option<Value>,
        alpn: Option<&[u8]>,
    ) -> Reply {
        let mut tls = sealkm::client::party_tls(&self.env.ca(), cert).expect("tls");
        if let Some(a) = alpn {
            tls.alpn_protocols = vec![a.to_vec()];
        }
        let url = format!("{}{path}", self.service());
        let a = block(http_call(tls, method, &url, bearer.as_deref(), body));
        Reply {
            status: a.status,
            content_type: a.content_type,
            json: serde_json::from_slice(&a.body).unwrap_or(Value::Null),
        }
    }

    fn oauth(&self, invoker: &str) -> Reply {
        self.get(
            None,
            Some(self.ccf.token("ES256", &Ccf::claims(invoker, AEF))),
        )
    }

    fn grant_invoker(&self, invoker: &str) {
        grant(
            self.env.dir(),
            &self.node.url,
            &format!("capif:{invoker}"),
            "val-server",
            &["*"],
        );
    }

    fn sealkm(&self, args: &[&str]) -> std::process::Output {
        let dir = self.env.dir().to_str().unwrap().to_owned();
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(["--dir".into(), dir, "--url".into(), self.node.url.clone()]);
        common::run_sealkm(all)
    }
}

fn assert_problem(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "{}", r.json);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.json);
    assert_eq!(r.json["status"], status, "{}", r.json);
}

#[test]
fn publishes_serves_without_the_ccf_and_delivers_spooled_logs() {
    let mut s = Setup::new(true);
    // Published in the background at start; the apiId is in the replicated state.
    let api_id = wait_for(30, "the background publication", || {
        s.status()["apiId"].as_str().map(str::to_owned)
    });
    {
        let st = s.ccf.state.lock().unwrap();
        assert_eq!(st.posts, 1);
        let desc = &st.apis[&api_id];
        assert_eq!(desc["apiName"], "ss-kir");
        let p = &desc["aefProfiles"][0];
        assert_eq!(p["aefId"], AEF);
        assert_eq!(p["protocol"], "HTTP_1_1");
        assert_eq!(p["securityMethods"], json!(["PKI", "OAUTH"]));
        assert_eq!(p["versions"][0]["apiVersion"], "v1");
        assert_eq!(p["versions"][0]["resources"][0]["uri"], "/key-records");
    }
    // Publishing again is idempotent: the same apiId, an update, no second API.
    let out = s.sealkm(&["capif", "publish"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&api_id));
    {
        let st = s.ccf.state.lock().unwrap();
        assert_eq!((st.posts, st.puts, st.apis.len()), (1, 1, 1));
    }
    let out = s.sealkm(&["capif", "status"]);
    assert!(out.status.success());
    let shown: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(shown["apiId"], api_id.as_str());
    assert_eq!(shown["aefId"], AEF);

    // An OAUTH invoker reads the key record; its invocation reaches the CCF's log.
    s.grant_invoker("INV-A");
    let r = s.oauth("INV-A");
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["keyInfo"], b64(SECRET));
    let first = wait_for(30, "the first log record", || {
        let l = s.ccf.log_records("INV-A");
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(first[0]["apiId"], api_id.as_str());
    assert_eq!(first[0]["apiName"], "ss-kir");
    assert_eq!(first[0]["result"], "200");
    assert_eq!(first[0]["resourceName"], "key-records");

    // The CCF vanishes: ss-kir keeps answering, the records wait in the spool.
    s.ccf.stop();
    for _ in 0..3 {
        assert_eq!(s.oauth("INV-A").status, 200);
    }
    assert_eq!(s.oauth("INV-NOGRANT").status, 403);
    wait_for(30, "a failed send while the CCF is away", || {
        let l = &s.status()["logs"];
        (l["failedSends"].as_u64() >= Some(1) && l["spooled"].as_u64() >= Some(4)).then_some(())
    });
    // It returns: every spooled record is delivered, in order, per invoker.
    s.ccf.restart();
    let all = wait_for(90, "the spooled records", || {
        let l = s.ccf.log_records("INV-A");
        (l.len() >= 4).then_some(l)
    });
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(all.iter().all(|l| l["result"] == "200"));
    let refused = wait_for(30, "the refused invoker's record", || {
        let l = s.ccf.log_records("INV-NOGRANT");
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(refused[0]["result"], "403");
    // No log carries key material (neither the bytes nor their base64) nor the query.
    let text = serde_json::to_string(&s.ccf.state.lock().unwrap().logs).unwrap();
    assert!(!text.contains(&b64(SECRET)) && !text.contains("SECRET-KEY-MATERIAL"));
    assert!(!text.contains("svc-1"), "{text}");
    let status = s.status();
    assert_eq!(status["logs"]["dropped"], 0);

    // Unpublish withdraws it at the CCF and forgets the apiId.
    let out = s.sealkm(&["capif", "unpublish"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(s.ccf.state.lock().unwrap().apis.is_empty());
    assert_eq!(s.status()["apiId"], Value::Null);
}

#[test]
fn a_node_starts_and_serves_while_the_ccf_is_away_and_publishes_when_it_returns() {
    let env = Env::new(|t| t);
    let mut ccf = Ccf::start(env.dir());
    let mut text = std::fs::read_to_string(env.config()).unwrap();
    text.push_str(&ccf.config_section(AEF, 100));
    std::fs::write(env.config(), text).unwrap();
    ccf.stop();
    // The node starts (its listeners announce themselves) with the CCF gone.
    let node = env.start();
    let s = Setup { ccf, env, node };
    grant(s.env.dir(), &s.node.url, DEV_VAL, "val-server", &[]);
    s.grant_invoker("INV-S");
    let c = client(
        s.env.dir(),
        s.service(),
        Some("val"),
        Some(token(s.env.dir(), DEV_VAL, &[("SKeyProv", json!(true))])),
    );
    let body = json!({"key_id": "k1", "key_info": b64(SECRET), "val_service_id": "svc-1"});
    assert_eq!(
        call(&c, "POST", "/km-s/v1/key-provisioning", Some(body)).status,
        201
    );
    assert_eq!(s.oauth("INV-S").status, 200);
    assert_eq!(s.status()["apiId"], Value::Null);
    // An admin publication while the CCF is away: 503, nothing stored.
    let out = s.sealkm(&["capif", "publish"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("503"),
        "{out:?}"
    );
    let mut s = s;
    s.ccf.restart();
    let api_id = wait_for(90, "the background publication", || {
        s.status()["apiId"].as_str().map(str::to_owned)
    });
    assert!(s.ccf.state.lock().unwrap().apis.contains_key(&api_id));
    // The invocation made while the CCF was away reaches it, with the apiId.
    let logs = wait_for(60, "the spooled record", || {
        let l = s.ccf.log_records("INV-S");
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(logs[0]["apiId"], api_id.as_str());
}

#[test]
fn an_answered_invocation_is_logged_even_if_the_node_dies_right_after() {
    // This node publishes its API as HTTP/2 (it serves both versions).
    let mut s = Setup::with("publish_at_start = true\npublish_protocol = \"HTTP_2\"\n");
    let api_id = wait_for(30, "the background publication", || {
        s.status()["apiId"].as_str().map(str::to_owned)
    });
    let published = s.ccf.state.lock().unwrap().apis[&api_id].clone();
    assert_eq!(published["aefProfiles"][0]["protocol"], "HTTP_2");
    s.grant_invoker("INV-K");
    // With the CCF away nothing is delivered: each record lives only in the node's spool.
    s.ccf.stop();
    for _ in 0..3 {
        assert_eq!(s.oauth("INV-K").status, 200);
    }
    // Each record names the HTTP version its invocation came in.
    for alpn in [b"http/1.1".as_slice(), b"h2".as_slice()] {
        let bearer = Some(s.ccf.token("ES256", &Ccf::claims("INV-K", AEF)));
        let path = "/ss-kir/v1/key-records?val-service-id=svc-1";
        let r = s.request_alpn("GET", path, None, bearer, None, Some(alpn));
        assert_eq!(r.status, 200, "{}", r.json);
    }
    // kill -9 as soon as the last answer is in: no shipper round, no graceful stop.
    let _ = s.node.child.kill();
    let _ = s.node.child.wait();
    s.ccf.restart();
    s.node = s.env.start();
    let logs = wait_for(90, "the records answered before the kill", || {
        let l = s.ccf.log_records("INV-K");
        (l.len() >= 5).then_some(l)
    });
    assert_eq!(logs.len(), 5, "{logs:?}");
    assert!(logs.iter().all(|l| l["result"] == "200"));
    let versions: Vec<&str> = logs[3..]
        .iter()
        .map(|l| l["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["HTTP_1_1", "HTTP_2"]);
}

#[test]
fn a_full_spool_drops_the_oldest_records_and_counts_them() {
    let mut s = Setup::with("publish_at_start = true\nlog_spool_max = 2\n");
    wait_for(30, "the background publication", || {
        s.status()["apiId"].as_str().map(str::to_owned)
    });
    s.grant_invoker("INV-F");
    s.ccf.stop();
    let bearer = || Some(s.ccf.token("ES256", &Ccf::claims("INV-F", AEF)));
    // Three found (200), then two for a service nothing was pushed for (404): the spool keeps
    // the newest two.
    for _ in 0..3 {
        assert_eq!(s.get(None, bearer()).status, 200);
    }
    let missing = "/ss-kir/v1/key-records?val-service-id=svc-none";
    for _ in 0..2 {
        assert_eq!(s.request("GET", missing, None, bearer(), None).status, 404);
    }
    let logs = s.status()["logs"].clone();
    assert_eq!(
        (logs["dropped"].as_u64(), logs["spooled"].as_u64()),
        (Some(3), Some(2)),
        "{logs}"
    );
    let metrics = block({
        let tls = sealkm::client::party_tls(&s.env.ca(), None).unwrap();
        let http = sealkm::client::http_client(tls);
        let url = format!("{}/metrics", s.node.url);
        async move {
            let mut r = http.get(url).send().await.expect("metrics");
            String::from_utf8_lossy(&r.body().await.expect("body")).into_owned()
        }
    });
    assert!(
        metrics.contains("sealkm_capif_logs_dropped_total 3"),
        "{metrics}"
    );
    s.ccf.restart();
    let delivered = wait_for(60, "the two kept records", || {
        let l = s.ccf.log_records("INV-F");
        (l.len() >= 2).then_some(l)
    });
    let results: Vec<&str> = delivered
        .iter()
        .map(|l| l["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["404", "404"]);
}

#[test]
fn oauth_tokens_are_checked_against_the_ccf_keys_scope_and_time() {
    let s = Setup::new(false);
    s.grant_invoker("INV-O");
    let claims = Ccf::claims("INV-O", AEF);
    assert_eq!(s.get(None, Some(s.ccf.token("ES256", &claims))).status, 200);
    assert!(
        s.ccf.has_rs256(),
        "openssl makes the RS256 key (.ci/run installs it)"
    );
    assert_eq!(s.get(None, Some(s.ccf.token("RS256", &claims))).status, 200);
    // The invoker id from client_id when present.
    let mut cid = claims.clone();
    cid["sub"] = json!("someone-else");
    cid["client_id"] = json!("INV-O");
    assert_eq!(s.get(None, Some(s.ccf.token("ES256", &cid))).status, 200);
    // Bad signature: a token of another CCF.
    let other = Env::new(|t| t);
    let stranger = Ccf::start(other.dir());
    assert_problem(&s.get(None, Some(stranger.token("ES256", &claims))), 401);
    // Tampered payload.
    let good = s.ccf.token("ES256", &claims);
    let parts: Vec<&str> = good.split('.').collect();
    let mut evil = claims.clone();
    evil["sub"] = json!("INV-X");
    let evil_payload =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(evil.to_string().as_bytes());
    let tampered = format!("{}.{}.{}", parts[0], evil_payload, parts[2]);
    assert_problem(&s.get(None, Some(tampered)), 401);
    // Expired beyond the leeway.
    let mut expired = claims.clone();
    expired["exp"] = json!(common::unix_now() - 120);
    assert_problem(&s.get(None, Some(s.ccf.token("ES256", &expired))), 401);
    // Wrong scope: another AEF, another API, none.
    for scope in [
        json!("3gpp#aef-other:ss-kir"),
        json!(format!("3gpp#{AEF}:ss-upr")),
        Value::Null,
    ] {
        let mut c = claims.clone();
        c["scope"] = scope;
        assert_problem(&s.get(None, Some(s.ccf.token("ES256", &c))), 403);
    }
    // A valid token of an invoker without an ACL grant.
    assert_problem(
        &s.get(None, Some(s.ccf.token("ES256", &Ccf::claims("INV-Z", AEF)))),
        403,
    );
    // Neither certificate nor token.
    assert_problem(&s.get(None, None), 401);
    // A party token is not a CCF token.
    assert_problem(&s.get(None, Some(token(s.env.dir(), DEV_VAL, &[]))), 401);
    // The party path is unchanged with [capif].
    let (c, k) = dev::party_files(s.env.dir(), "val");
    let r = s.get(Some((&c, &k)), Some(token(s.env.dir(), DEV_VAL, &[])));
    assert_eq!(r.status, 200, "{}", r.json);
}

#[test]
fn pki_invokers_need_the_ccf_and_revocation_is_immediate() {
    let mut s = Setup::new(false);
    let (pc, pk) = s.ccf.invoker_cert("INV-P");
    let (uc, uk) = s.ccf.invoker_cert("INV-U");
    let (qc, qk) = s.ccf.invoker_cert("INV-Q");
    for i in ["INV-P", "INV-U", "INV-Q"] {
        s.grant_invoker(i);
    }
    s.ccf.trust("INV-P", AEF);
    s.ccf.trust("INV-Q", AEF);
    // Authorised by trustedInvokers on first use, then from the cache.
    let r = s.get(Some((&pc, &pk)), None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["keyInfo"], b64(SECRET));
    assert_eq!(s.get(Some((&pc, &pk)), None).status, 200);
    assert_eq!(s.ccf.state.lock().unwrap().trusted_lookups, 1);
    // Not trusted by the CCF: refused.
    assert_problem(&s.get(Some((&uc, &uk)), None), 403);
    // The CCF is away: the cached invoker is served, an unknown one refused (503).
    s.ccf.stop();
    assert_eq!(s.get(Some((&pc, &pk)), None).status, 200);
    assert_problem(&s.get(Some((&qc, &qk)), None), 503);
    s.ccf.restart();
    // The CCF failing (500) counts as away too.
    s.ccf.set_fail(true);
    assert_problem(&s.get(Some((&qc, &qk)), None), 503);
    s.ccf.set_fail(false);
    // A CCF slower than the node's CCF timeout counts as away too; the cached invoker is not
    // held up by it.
    let (rc, rk) = s.ccf.invoker_cert("INV-R");
    s.grant_invoker("INV-R");
    s.ccf.trust("INV-R", AEF);
    s.ccf.set_delay(Some(Duration::from_secs(30)));
    assert_problem(&s.get(Some((&rc, &rk)), None), 503);
    assert_eq!(s.get(Some((&pc, &pk)), None).status, 200);
    s.ccf.set_delay(None);
    assert_eq!(s.get(Some((&rc, &rk)), None).status, 200);
    assert_eq!(s.get(Some((&qc, &qk)), None).status, 200);

    // revoke-authorization: the CCF's certificate only.
    let body = json!({"revokeInfo": {"apiInvokerId": "INV-P", "aefId": AEF,
                                      "apiIds": [], "cause": "OVERLIMIT_USAGE"}});
    let path = "/aef-security/v1/revoke-authorization";
    assert_problem(
        &s.request("POST", path, None, None, Some(body.clone())),
        401,
    );
    let (vc, vk) = dev::party_files(s.env.dir(), "val");
    assert_problem(
        &s.request("POST", path, Some((&vc, &vk)), None, Some(body.clone())),
        403,
    );
    assert_problem(
        &s.request("POST", path, Some((&qc, &qk)), None, Some(body.clone())),
        403,
    );
    assert_eq!(
        s.get(Some((&pc, &pk)), None).status,
        200,
        "not revoked by a refused call"
    );
    let (cc, ck) = s.ccf.client_cert();
    let mut wrong_aef = body.clone();
    wrong_aef["revokeInfo"]["aefId"] = json!("aef-other");
    assert_problem(
        &s.request("POST", path, Some((&cc, &ck)), None, Some(wrong_aef)),
        400,
    );
    let r = s.request("POST", path, Some((&cc, &ck)), None, Some(body));
    assert_eq!(r.status, 204, "{}", r.json);
    // At once: the next request is refused, by certificate and by token alike.
    assert_problem(&s.get(Some((&pc, &pk)), None), 403);
    assert_problem(&s.oauth("INV-P"), 403);
    assert_eq!(s.get(Some((&qc, &qk)), None).status, 200);
    // The operator lifts it; the CCF's authorisation is fetched anew.
    let lookups = s.ccf.state.lock().unwrap().trusted_lookups;
    let out = s.sealkm(&["capif", "reinstate", "--invoker", "INV-P"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.get(Some((&pc, &pk)), None).status, 200);
    assert_eq!(s.ccf.state.lock().unwrap().trusted_lookups, lookups + 1);
    let again = s.sealkm(&["capif", "reinstate", "--invoker", "INV-P"]);
    assert!(!again.status.success(), "not revoked: 404");
}

/// `sealkm capif register` against `ccf` writing to `out_dir`.
fn register(env: &Env, ccf: &Ccf, out_dir: &Path, secret: &str) -> std::process::Output {
    let ca = env.dir().join("ccf-ca.pem");
    let args = [
        "capif",
        "register",
        "--ccf-url",
        &ccf.url(),
        "--ccf-ca",
        ca.to_str().unwrap(),
        "--reg-sec",
        secret,
        "--out-dir",
        out_dir.to_str().unwrap(),
    ];
    common::run_sealkm(args)
}

#[test]
fn provider_registration_stores_keys_certificates_and_ids() {
    let env = Env::new(|t| t);
    let ccf = Ccf::start(env.dir());
    let out_dir = env.dir().join("capif-provider");
    let out = register(&env, &ccf, &out_dir, "onboarding-secret");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("aef_id = \"AEF-"), "{stdout}");
    assert_eq!(ccf.state.lock().unwrap().registrations.len(), 1);
    for role in ["aef", "apf", "amf"] {
        let cert_pem = std::fs::read_to_string(out_dir.join(format!("{role}.crt"))).unwrap();
        let key_path = out_dir.join(format!("{role}.key"));
        let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
        // The certificate the CCF issued is for our key.
        let der = rustls_pemfile::certs(&mut cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        assert_eq!(
            cert.public_key().raw,
            rcgen::PublicKeyData::subject_public_key_info(&key).as_slice(),
            "{role}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{role}");
    }
    // The CCF answering 500: registration fails and writes no registration.
    ccf.set_fail(true);
    let again = env.dir().join("again");
    assert!(!register(&env, &ccf, &again, "x").status.success());
    assert!(!again.join("registration.json").exists());
}

#[test]
fn three_nodes_share_the_publication_and_refuse_a_revoked_invoker_at_once() {
    let ccf_dir = tempfile::tempdir().unwrap();
    let ccf = Ccf::start(ccf_dir.path());
    let section = format!("{}publish_at_start = false\n", ccf.config_section(AEF, 100));
    let c = Cluster::start(3, |_, text| format!("{text}{section}"));
    let dir = c.dir();
    grant(dir, c.url(1), DEV_VAL, "val-server", &[]);
    grant(dir, c.url(1), "capif:INV-P", "val-server", &["*"]);
    let push = client(
        dir,
        c.service_url(2),
        Some("val"),
        Some(token(dir, DEV_VAL, &[("SKeyProv", json!(true))])),
    );
    let r = call(
        &push,
        "POST",
        "/km-s/v1/key-provisioning",
        Some(json!({"key_id": "k1", "key_info": b64(SECRET), "val_service_id": "svc-1"})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    // Published through node 3; every node shows the same apiId.
    let out = common::run_sealkm([
        "capif",
        "publish",
        "--dir",
        dir.to_str().unwrap(),
        "--url",
        c.url(3),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api_id = ccf
        .state
        .lock()
        .unwrap()
        .apis
        .keys()
        .next()
        .cloned()
        .expect("published");
    for id in 1..=3 {
        let (st, v) = c
            .agent()
            .get(&format!("{}/admin/v1/capif", c.url(id)))
            .unwrap();
        assert_eq!(
            (st, v["apiId"].as_str()),
            (200, Some(api_id.as_str())),
            "node {id}"
        );
    }
    // A PKI invoker is served by every node, then revoked through one of them.
    ccf.trust("INV-P", AEF);
    let (pc, pk) = ccf.invoker_cert("INV-P");
    let (cc, ck) = ccf.client_cert();
    let get = |id: u32, cert: (&Path, &Path)| {
        let tls = sealkm::client::party_tls(&c.ca(), Some(cert)).unwrap();
        let http = sealkm::client::http_client(tls);
        let url = format!(
            "{}/ss-kir/v1/key-records?val-service-id=svc-1",
            c.service_url(id)
        );
        block(async move {
            http.get(url)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        })
    };
    for id in 1..=3 {
        assert_eq!(get(id, (&pc, &pk)), 200, "node {id}");
    }
    let tls = sealkm::client::party_tls(&c.ca(), Some((&cc, &ck))).unwrap();
    let http = sealkm::client::http_client(tls);
    let url = format!("{}/aef-security/v1/revoke-authorization", c.service_url(2));
    let body = json!({"revokeInfo": {"apiInvokerId": "INV-P", "aefId": AEF}});
    let status = block(async move {
        http.post(url)
            .send_json(&body)
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 204);
    // Refused at once on every node (each request reads after its barrier; no waiting).
    for id in 1..=3 {
        assert_eq!(get(id, (&pc, &pk)), 403, "node {id}");
    }
}
