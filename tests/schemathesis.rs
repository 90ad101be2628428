//! Schema conformance of the service listener (TS 29.549 `ss-kir`, KM-S, SEAL-X1 and their
//! subscriptions): schemathesis (PyPI, run as
//! `python3 -m schemathesis.cli`; `.ci/run` installs it when missing, and this test fails
//! without it) reads the
//! node's own `/openapi.json` and sends generated requests (examples, coverage and fuzzing
//! phases) to every operation under `/ss-kir/`, `/km-s/` and `/seal-x1/` over mutual TLS with
//! a granted VAL server's certificate and token (so SEAL-X1 answers 403, also documented).
//! Every answer must be documented (status, content type, body schema) and none may be a 5xx.

mod common;

use base64::Engine;
use common::parties::{call, client, grant, token};
use common::Env;
use sealkm::dev::{self, DEV_VAL};
use serde_json::json;

#[test]
fn service_listener_answers_match_the_openapi_document() {
    let env = Env::new(|t| t);
    let node = env.start();
    let service = node.service_url.clone().expect("service listener");
    grant(env.dir(), &node.url, DEV_VAL, "val-server", &["*"]);
    let push = client(
        env.dir(),
        &service,
        Some("val"),
        Some(token(env.dir(), DEV_VAL, &[("SKeyProv", json!(true))])),
    );
    let info = base64::engine::general_purpose::STANDARD.encode(b"key information");
    let r = call(
        &push,
        "POST",
        "/km-s/v1/key-provisioning",
        Some(json!({"key_id": "k1", "key_info": info, "val_service_id": "svc-a"})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    let (cert, key) = dev::party_files(env.dir(), "val");
    let bearer = format!("Authorization: Bearer {}", token(env.dir(), DEV_VAL, &[]));
    let report = env.dir().join("st-report");
    let out = std::process::Command::new("python3")
        .args(["-m", "schemathesis.cli", "run", &format!("{service}/openapi.json"), "--url", &service])
        .arg("--tls-verify")
        .arg(env.ca())
        .arg("--request-cert")
        .arg(&cert)
        .arg("--request-cert-key")
        .arg(&key)
        .args(["-H", &bearer])
        .args(["--include-path-regex", "^/(ss-kir|km-s|seal-x1)/"])

        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "60", "--workers", "1", "--no-color"])
        .arg("--report-dir")
        .arg(&report)
        .env("SCHEMATHESIS_HOOKS", "")
        // Its cache (`.schemathesis/`) goes to the temporary directory, not the work tree.
        .current_dir(env.dir())
        .output()
        .expect("python3 runs schemathesis (.ci/run installs it with pip)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}"
    );
    // It really tested the operation (a run that selected nothing would also exit 0).
    for op in [
        "GET /ss-kir/v1/key-records",
        "POST /km-s/v1/key-provisioning",
        "POST /seal-x1/v1/groups/{group_id}/keys",
    ] {
        assert!(stdout.contains(op), "{op} not exercised:\n{stdout}");
    }
}
