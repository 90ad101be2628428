//! KM-UU against a real `sealkm` process (issue 3): TS 33.180 Annex D documents over TLS with
//! access tokens, sealed storage across restarts, errors clients can read, admission control,
//! revocation, certificate rotation and the audit chain.

mod common;

use common::{error_code, init_cert, key_set};

use common::{Env, Node};
use sealkm::client::validate_key_set;
use sealkm::kms::xml::certificate::CertRole;
use sealkm::kms::xml::kms_error::KmsErrorCode;
use sealkm::kms::xml::response::{KmsMessageDoc, KmsResponseBody};

const ALICE: &str = "sip:alice@sealkm.test";
const BOB: &str = "sip:bob@sealkm.test";

fn ntp_hex_now_plus(periods: i64, period_s: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ntp = (now + periods * period_s + 2_208_988_800) as u64;
    format!("{:016X}", ntp << 32)
}

#[actix_rt::test]
async fn key_sets_validate_are_deterministic_and_survive_restart() {
    let env = Env::new(|c| c);
    let node = env.start();
    let c = node.client(&env.ca(), Some(env.token(ALICE)));

    let cert = init_cert(&c.post("init", None).await.unwrap());
    assert_eq!(cert.role, CertRole::Root);
    assert_eq!(cert.kms_uri, sealkm::dev::DEV_KMS_URI);
    assert_eq!(cert.user_id_format, "2");

    let ks = key_set(&c.post("keyprov", None).await.unwrap());
    assert_eq!(ks.user_uri, ALICE);
    assert_eq!(ks.cert_uri, cert.cert_uri);
    validate_key_set(&cert, &ks).expect("key set validates against the certificate");

    // Same identity and period: the same keys, by path with the URI percent-encoded or raw,
    // and with an explicit NTP time (either hex case).
    let again = key_set(
        &c.post("keyprov/sip%3Aalice%40sealkm.test", None)
            .await
            .unwrap(),
    );
    assert_eq!(again, ks);
    let t = ntp_hex_now_plus(0, 2_592_000);
    let by_time = key_set(
        &c.post(
            &format!("keyprov/sip:alice@sealkm.test/{}", t.to_lowercase()),
            None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(by_time.key_period_no, ks.key_period_no);
    assert_eq!(by_time, ks);
    // The next period is inside the default window and gives another, valid key set.
    let next = key_set(
        &c.post(
            &format!(
                "keyprov/sip%3Aalice%40sealkm.test/{}",
                ntp_hex_now_plus(1, 2_592_000)
            ),
            None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(next.key_period_no, ks.key_period_no + 1);
    assert_ne!(next.user_decrypt_key, ks.user_decrypt_key);
    validate_key_set(&cert, &next).unwrap();

    // A KmsRequest body naming the same user is accepted (Version 1.0.0, zone-less Time, URL KmsUri).
    let body = format!(
        r#"<KmsRequest xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0" Version="1.0.0"><UserUri>{ALICE}</UserUri><KmsUri>https://kms.sealkm.test/keymanagement</KmsUri><Time>2026-01-01T00:00:00</Time><ClientReqUrl>https://kms.sealkm.test/keymanagement/identity/v1/keyprov</ClientReqUrl></KmsRequest>"#
    );
    assert_eq!(key_set(&c.post("keyprov", Some(body)).await.unwrap()), ks);

    // Restart: same certificate, same key set.
    node.stop();
    let node = env.start();
    let c = node.client(&env.ca(), Some(env.token(ALICE)));
    assert_eq!(init_cert(&c.post("init", None).await.unwrap()), cert);
    assert_eq!(key_set(&c.post("keyprov", None).await.unwrap()), ks);
}

#[actix_rt::test]
async fn errors_are_kms_errors_with_the_right_status_and_change_nothing() {
    let env = Env::new(|c| c);
    let node = env.start();

    // No token: 401 with WWW-Authenticate.
    let anon = node.client(&env.ca(), None);
    let r = anon.post("keyprov", None).await.unwrap();
    assert_eq!(r.status, 401);
    assert!(r
        .www_authenticate
        .as_deref()
        .unwrap_or("")
        .starts_with("Bearer"));
    assert_eq!(error_code(&r), KmsErrorCode::Unauthorized);

    // A forged token: 401.
    let mut forged = env.token(ALICE);
    // Change one character in the middle of the signature (never a no-op).
    let i = forged.len() - 20;
    let swapped = if &forged[i..=i] == "A" { "B" } else { "A" };
    forged.replace_range(i..=i, swapped);
    let r = node
        .client(&env.ca(), Some(forged))
        .post("init", None)
        .await
        .unwrap();
    assert_eq!(r.status, 401);

    let c = node.client(&env.ca(), Some(env.token(ALICE)));
    // Another identity, in the path or in the body: 403.
    let r = c
        .post("keyprov/sip%3Abob%40sealkm.test", None)
        .await
        .unwrap();
    assert_eq!((r.status, error_code(&r)), (403, KmsErrorCode::Forbidden));
    let body = format!(
        r#"<KmsRequest xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0" Version="1.1.0"><UserUri>{BOB}</UserUri><KmsUri>kms.sealkm.test</KmsUri></KmsRequest>"#
    );
    assert_eq!(c.post("keyprov", Some(body)).await.unwrap().status, 403);
    // Malformed XML: 400.
    let r = c
        .post("keyprov", Some("<KmsRequest><UserUri>".into()))
        .await
        .unwrap();
    assert_eq!((r.status, error_code(&r)), (400, KmsErrorCode::BadRequest));
    // Over the body limit: 413.
    let big = format!("<KmsRequest>{}</KmsRequest>", "x".repeat(70 * 1024));
    assert_eq!(c.post("keyprov", Some(big)).await.unwrap().status, 413);
    // Bad time segment and a period outside the window: 400 with a reason.
    assert_eq!(
        c.post("keyprov/sip%3Aalice%40sealkm.test/XYZ", None)
            .await
            .unwrap()
            .status,
        400
    );
    let far = ntp_hex_now_plus(5, 2_592_000);
    let r = c
        .post(&format!("keyprov/sip%3Aalice%40sealkm.test/{far}"), None)
        .await
        .unwrap();
    assert_eq!(
        (r.status, error_code(&r)),
        (400, KmsErrorCode::PeriodOutOfWindow)
    );
    // Unknown resource: 404.
    assert_eq!(c.post("nope", None).await.unwrap().status, 404);

    // None of this changed the state: the admin status shows only bootstrap entries.
    let applied_before = admin_status(&node, &env).await;
    let _ = c
        .post("keyprov/sip%3Abob%40sealkm.test", None)
        .await
        .unwrap();
    assert_eq!(admin_status(&node, &env).await, applied_before);
}

async fn admin(
    node: &Node,
    env: &Env,
    post: bool,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let tls = sealkm::tls::client_config(&env.ca()).unwrap();
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(std::sync::Arc::new(tls)))
        .finish();
    let url = format!("{}/admin/v1/{path}", node.url);
    let req = if post {
        client.post(url)
    } else {
        client.get(url)
    }
    .insert_header(("Authorization", format!("Bearer {}", env.admin_token())));
    let mut resp = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .unwrap();
    let v: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    (resp.status().as_u16(), v)
}

async fn admin_status(node: &Node, env: &Env) -> serde_json::Value {
    let (s, v) = admin(node, env, false, "status", None).await;
    assert_eq!(s, 200);
    v
}

#[actix_rt::test]
async fn revocation_rotation_and_audit() {
    let env = Env::new(|c| c);
    let node = env.start();
    let c = node.client(&env.ca(), Some(env.token(ALICE)));
    let first = init_cert(&c.post("init", None).await.unwrap());
    let ks1 = key_set(&c.post("keyprov", None).await.unwrap());

    // Revoke Alice: 403 with IdentityRevoked; Bob unaffected; reinstate restores the same keys.
    let kms = "kms.sealkm.test";
    let (s, _) = admin(
        &node,
        &env,
        true,
        &format!("communities/{kms}/revocations"),
        Some(serde_json::json!({"identity": ALICE, "reason": "lost device"})),
    )
    .await;
    assert_eq!(s, 200);
    let r = c.post("keyprov", None).await.unwrap();
    assert_eq!(
        (r.status, error_code(&r)),
        (403, KmsErrorCode::IdentityRevoked)
    );
    let bob = node.client(&env.ca(), Some(env.token(BOB)));
    assert_eq!(bob.post("keyprov", None).await.unwrap().status, 200);
    // The revocation query names exactly the revoked ones, in query order.
    let query = format!("communities/{kms}/revocations/query");
    let (s, v) = admin(
        &node,
        &env,
        true,
        &query,
        Some(serde_json::json!({"identities": [BOB, ALICE]})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        serde_json::json!({"revoked": [ALICE], "not_revoked": [BOB]})
    );
    let too_many: Vec<String> = (0..1001).map(|i| format!("sip:{i}@x")).collect();
    let (s, _) = admin(
        &node,
        &env,
        true,
        &query,
        Some(serde_json::json!({ "identities": too_many })),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = admin(
        &node,
        &env,
        true,
        "communities/nope.example/revocations/query",
        Some(serde_json::json!({"identities": [ALICE]})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = admin(
        &node,
        &env,
        true,
        &format!("communities/{kms}/revocations/delete"),
        Some(serde_json::json!({"identity": ALICE})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(key_set(&c.post("keyprov", None).await.unwrap()), ks1);
    let (_, v) = admin(
        &node,
        &env,
        true,
        &query,
        Some(serde_json::json!({"identities": [ALICE]})),
    )
    .await;
    assert_eq!(v["not_revoked"], serde_json::json!([ALICE]));

    // Bad admin input: 400 and nothing changes; wrong credential: 401.
    let before = admin_status(&node, &env).await;
    let (s, _) = admin(
        &node,
        &env,
        true,
        &format!("communities/{kms}/certificates"),
        Some(serde_json::json!({"validity_days": 0})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = admin(
        &node,
        &env,
        true,
        &format!("communities/{kms}/certificates"),
        Some(serde_json::json!({"nonsense": 1})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(admin_status(&node, &env).await, before);

    // Rotate: init gives the new certificate, new key sets name it, the cache lists both.
    let (s, v) = admin(
        &node,
        &env,
        true,
        &format!("communities/{kms}/certificates"),
        Some(serde_json::json!({"validity_days": 30})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let second = init_cert(&c.post("init", None).await.unwrap());
    assert_ne!(second.cert_uri, first.cert_uri);
    assert_ne!(second.pub_auth_key, first.pub_auth_key);
    let ks2 = key_set(&c.post("keyprov", None).await.unwrap());
    assert_eq!(ks2.cert_uri, second.cert_uri);
    validate_key_set(&second, &ks2).unwrap();
    let cache = c.post("certcache", None).await.unwrap();
    let KmsResponseBody::Message(KmsMessageDoc::CertCache {
        cache_num,
        certificates,
    }) = cache.doc.body
    else {
        panic!("expected KmsCertCache")
    };
    assert_eq!(certificates.len(), 2);
    let up_to_date = c
        .post(&format!("certcache/{cache_num}"), None)
        .await
        .unwrap();
    let KmsResponseBody::Message(KmsMessageDoc::CertCache { certificates, .. }) =
        up_to_date.doc.body
    else {
        panic!("expected KmsCertCache")
    };
    assert!(
        certificates.is_empty(),
        "a current cache number gets no certificates"
    );

    // Revoke the new certificate: the old one (still valid) issues again.
    let (s, _) = admin(
        &node,
        &env,
        true,
        &format!("communities/{kms}/certificates/2/revoke"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(key_set(&c.post("keyprov", None).await.unwrap()), ks1);

    // The audit file holds an intact chain once the node has stopped.
    node.stop();
    let out = std::process::Command::new(common::BIN)
        .args(["audit", "verify"])
        .arg(env.dir().join("node1-audit.jsonl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ok:"), "{text}");
    let audit = std::fs::read_to_string(env.dir().join("node1-audit.jsonl")).unwrap();
    assert!(
        audit.contains("identity_revoked") && audit.contains("key_set_delivered"),
        "{audit}"
    );
    let ssk_hex = hex::encode_upper(ks1.user_signing_key_ssk.expose());
    assert!(
        !audit.to_uppercase().contains(&ssk_hex),
        "no secret in the audit file"
    );
}

#[actix_rt::test]
async fn admission_control_sheds_a_greedy_identity_with_retry_after() {
    let env = Env::new(|c| c.replace("per_identity_burst = 20", "per_identity_burst = 1"));
    let node = env.start();
    let c = node.client(&env.ca(), Some(env.token(ALICE)));
    assert_eq!(c.post("keyprov", None).await.unwrap().status, 200);
    // A cached key set is not cold work: still served.
    assert_eq!(c.post("keyprov", None).await.unwrap().status, 200);
    // A second cold issuance in the same window is shed.
    let r = c
        .post(
            &format!(
                "keyprov/sip%3Aalice%40sealkm.test/{}",
                ntp_hex_now_plus(1, 2_592_000)
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, error_code(&r)),
        (429, KmsErrorCode::TooManyRequests)
    );
    assert!(
        r.retry_after
            .as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            >= 1
    );
    // Others are not starved.
    let bob = node.client(&env.ca(), Some(env.token(BOB)));
    assert_eq!(bob.post("keyprov", None).await.unwrap().status, 200);
}

#[test]
fn wrong_unseal_key_refuses_to_start_and_env_key_overrides_file() {
    let env = Env::new(|c| c);
    let node = env.start();
    node.stop();
    let wrong = "11".repeat(32);
    let err = Node::start_failing(&env.config(), &[("SEALKM_UNSEAL_KEY", &wrong)]);
    assert!(err.contains("unseal key does not match"), "{err}");
    let err = Node::start_failing(&env.config(), &[("SEALKM_UNSEAL_KEY", "zz")]);
    assert!(err.contains("64 hex digits"), "{err}");
    // The right key through the environment works.
    let right = std::fs::read_to_string(env.dir().join("unseal.key")).unwrap();
    let node = Node::start(&env.config(), &[("SEALKM_UNSEAL_KEY", right.trim())]);
    node.stop();
}

#[test]
fn master_secrets_are_sealed_at_rest() {
    let env = Env::new(|c| c);
    let node = env.start();
    node.stop();
    // Unseal the stored certificate with the barrier key (as a node does), then look for the
    // clear master secrets and the barrier key in every file the node wrote.
    let cfg = sealkm::config::NodeConfig::load(&env.config()).unwrap();
    let barrier = sealkm::node::bootstrap::load_unseal_key(cfg.unseal_key_file.as_deref()).unwrap();
    let db = sled::open(cfg.data_dir.join("state")).unwrap();
    let state = sealkm::state::StateMachine::open(db).unwrap();
    let community = state.community(sealkm::dev::DEV_KMS_URI).unwrap().unwrap();
    let cert = &community.certificates[0];
    let masters = sealkm::kms::master::MasterSecrets::unseal(
        &barrier,
        &sealkm::kms::community::master_aad(&cert.cert_uri),
        &cert.sealed_master,
    )
    .expect("the stored blob opens with the barrier key");
    let ksak = masters.ksak.to_bytes().expose().to_vec();
    let z = masters.z.to_bytes().expose().to_vec();
    drop(state);
    let key = hex::decode(
        std::fs::read_to_string(env.dir().join("unseal.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let mut files = walk(&env.dir().join("node1-data"));
    files.push(env.dir().join("node1-audit.jsonl"));
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        for (what, secret) in [
            ("KSAK", &ksak[..]),
            ("z_T", &z[..32]),
            ("barrier key", &key[..]),
        ] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{what} in clear in {}",
                path.display()
            );
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[actix_rt::test]
async fn the_host_name_selects_the_community() {
    let env = Env::new(|c| {
        c.replace(
            "[keyprov]",
            "[[community]]\nkms_uri = \"kms2.sealkm.test\"\nuser_key_period_s = 86400\n\n[keyprov]",
        )
    });
    let node = env.start();
    let c = node.client(&env.ca(), Some(env.token(ALICE)));
    let default = init_cert(&c.post("init", None).await.unwrap());
    assert_eq!(default.kms_uri, "kms.sealkm.test");
    let other = c
        .post_with("init", None, &[("Host", "kms2.sealkm.test:443")])
        .await
        .unwrap();
    let other = init_cert(&other);
    assert_eq!(other.kms_uri, "kms2.sealkm.test");
    assert_eq!(other.user_key_period, 86_400);
    assert_ne!(
        other.pub_auth_key, default.pub_auth_key,
        "each community has its own master secrets"
    );
    let ks = key_set(
        &c.post_with("keyprov", None, &[("Host", "KMS2.sealkm.test")])
            .await
            .unwrap(),
    );
    assert_eq!(ks.kms_uri, "kms2.sealkm.test");
    validate_key_set(&other, &ks).unwrap();
    // An unknown host name falls back to the default community.
    let fallback = init_cert(
        &c.post_with("init", None, &[("Host", "elsewhere.example")])
            .await
            .unwrap(),
    );
    assert_eq!(fallback.kms_uri, "kms.sealkm.test");
}

#[test]
fn the_committed_cluster_config_checks_with_generated_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("node1.toml");
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/cluster-config/node1.toml"
    ))
    .unwrap();
    // Same config, on a free port so the test never collides with a running node.
    std::fs::write(
        &cfg,
        committed.replace("addr = \"127.0.0.1:8443\"", "addr = \"127.0.0.1:0\""),
    )
    .unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(common::BIN)
            .args(args)
            .output()
            .unwrap()
    };
    let gen = tmp.path().join("generated");
    let out = run(&[
        "config".as_ref(),
        "generate".as_ref(),
        "--dir".as_ref(),
        gen.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["config".as_ref(), "check".as_ref(), cfg.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And it serves.
    let node = Node::start(&cfg, &[]);
    node.stop();
}

#[test]
fn the_committed_three_and_five_node_configs_check_with_generated_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-config");
    let gen = tmp.path().join("generated");
    let out = std::process::Command::new(common::BIN)
        .args(["config", "generate", "--nodes", "5", "--dir"])
        .arg(&gen)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (size, n) in [("three", 3), ("five", 5)] {
        std::fs::create_dir_all(tmp.path().join(size)).unwrap();
        for k in 1..=n {
            let name = format!("{size}/node{k}.toml");
            let cfg = tmp.path().join(&name);
            std::fs::copy(root.join(&name), &cfg).unwrap();
            let out = std::process::Command::new(common::BIN)
                .args(["config", "check"])
                .arg(&cfg)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let c = sealkm::config::NodeConfig::load(&cfg).unwrap();
            assert!(c
                .raft
                .as_ref()
                .is_some_and(|r| r.id == k && r.peers.len() == n as usize - 1));
            assert!(
                c.client_listener.tls_cert.exists(),
                "{name}: no certificate"
            );
        }
    }
}

#[test]
fn the_committed_federation_configs_check_with_generated_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-config");
    // What cluster-config/federation/README.md says to run, into the same relative place.
    let gen = tmp.path().join("generated/federation");
    let out = std::process::Command::new(common::BIN)
        .args([
            "config",
            "generate",
            "--domains",
            "2",
            "--nodes",
            "3",
            "--dir",
        ])
        .arg(&gen)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap();
    let mut kme_listeners = Vec::new();
    for (d, kms, partner, other) in [
        ("a", "kms.sealkm.test", "kms.partner.test", "b"),
        ("b", "kms.partner.test", "kms.sealkm.test", "a"),
    ] {
        std::fs::create_dir_all(tmp.path().join("federation").join(d)).unwrap();
        for k in 1..=3u64 {
            let name = format!("federation/{d}/node{k}.toml");
            let cfg = tmp.path().join(&name);
            std::fs::copy(root.join(&name), &cfg).unwrap();
            let out = std::process::Command::new(common::BIN)
                .args(["config", "check"])
                .arg(&cfg)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let c = sealkm::config::NodeConfig::load(&cfg).unwrap();
            assert!(c
                .raft
                .as_ref()
                .is_some_and(|r| r.id == k && r.peers.len() == 2));
            assert_eq!(c.communities[0].kms_uri, kms, "{name}");
            // Separate CAs: its own, not the partner's.
            assert!(
                canon(&c.client_listener.tls_cert).starts_with(canon(&gen.join(d))),
                "{name}"
            );
            let fed = c.federation.as_ref().expect("a [federation] section");
            assert!(
                canon(&fed.client_cert).starts_with(canon(&gen.join(d))),
                "{name}"
            );
            assert_eq!(fed.partners.len(), 1, "{name}");
            let p = &fed.partners[0];
            assert_eq!(p.kms_uri, partner, "{name}");
            assert_eq!(
                std::fs::read(&p.ca).unwrap(),
                std::fs::read(gen.join(other).join("kme-ca.pem")).unwrap(),
                "{name}: the partner's KM-E CA is pinned"
            );
            assert_eq!(c.auth.visiting.len(), 1, "{name}");
            assert!(canon(&c.auth.visiting[0].jwks_file).starts_with(canon(&gen.join(other))));
            kme_listeners.push((d, fed.listener.addr.clone(), p.url.clone()));
        }
    }
    // Each domain's partner URL is the other domain's node 1 KM-E listener.
    let node1 = |d: &str| {
        kme_listeners
            .iter()
            .find(|(x, ..)| *x == d)
            .map(|(_, addr, _)| format!("https://{addr}"))
            .unwrap()
    };
    for (d, _, url) in &kme_listeners {
        let other = if *d == "a" { "b" } else { "a" };
        assert_eq!(url, &node1(other));
    }
}
