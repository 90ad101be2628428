//! `sealkm audit verify` on a real node's audit file and `sealkm config check` on edited configs.

mod common;

use common::{run_sealkm, Env};

const USERS: [&str; 3] = [
    "sip:alice@sealkm.test",
    "sip:bob@sealkm.test",
    "sip:carol@sealkm.test",
];

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[actix_rt::test]
async fn audit_verify_accepts_the_nodes_file_and_names_an_edited_line() {
    let env = Env::new(|c| c);
    let node = env.start();
    for user in USERS {
        let c = node.client(&env.ca(), Some(env.token(user)));
        assert_eq!(c.post("keyprov", None).await.unwrap().status, 200);
    }
    node.stop();

    let audit = env.dir().join("node1-audit.jsonl");
    let out = run_sealkm([
        std::ffi::OsStr::new("audit"),
        "verify".as_ref(),
        audit.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok:"));

    // Change one byte in the middle of a middle line (not the first, not the last).
    let text = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "expected several records: {text}");
    let target = lines.len() / 2; // 0-based; never the first or the last line
    let line_no = target + 1;
    let mut bytes = text.clone().into_bytes();
    let start: usize = lines[..target].iter().map(|l| l.len() + 1).sum();
    let line = lines[target].as_bytes();
    // A letter or digit inside a string value, so the line stays well-formed JSON.
    let at = (line.len() / 2..line.len())
        .find(|&i| line[i].is_ascii_alphanumeric())
        .expect("an alphanumeric byte");
    bytes[start + at] = if line[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&audit, &bytes).unwrap();

    let out = run_sealkm([
        std::ffi::OsStr::new("audit"),
        "verify".as_ref(),
        audit.as_os_str(),
    ]);
    assert!(
        !out.status.success(),
        "an edited audit file must not verify"
    );
    let err = stderr(&out);
    assert!(err.contains(&format!("line {line_no}")), "{err}");
}

#[test]
fn config_check_names_what_is_wrong() {
    let env = Env::new(|c| c);
    let check = |text: &str| {
        let path = env.dir().join("check.toml");
        std::fs::write(&path, text).unwrap();
        run_sealkm([
            std::ffi::OsStr::new("config"),
            "check".as_ref(),
            path.as_os_str(),
        ])
    };
    let generated = std::fs::read_to_string(env.config()).unwrap();

    let out = check(&generated);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok:"));

    // An unknown key, at the top level and inside a table.
    let top = generated.replacen(
        "node_id = \"node1\"\n",
        "node_id = \"node1\"\nfrobnicate_level = 3\n",
        1,
    );
    assert_ne!(top, generated);
    let out = check(&top);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("frobnicate_level"),
        "{}",
        stderr(&out)
    );

    let in_table = generated.replacen(
        "periods_after = 1\n",
        "periods_after = 1\nperiods_sideways = 2\n",
        1,
    );
    assert_ne!(in_table, generated);
    let out = check(&in_table);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("periods_sideways"),
        "{}",
        stderr(&out)
    );

    // An empty required_scope.
    let empty_scope = generated.replacen(
        "required_scope = \"3gpp:seal:km\"",
        "required_scope = \"\"",
        1,
    );
    assert_ne!(empty_scope, generated);
    let out = check(&empty_scope);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("required_scope"), "{}", stderr(&out));
}

/// `sealkm health` (the container image's HEALTHCHECK): 0 when the URL answers 2xx over TLS
/// with the given CA, 1 with the reason otherwise (a wrong path, a CA that does not match).
#[actix_rt::test]
async fn health_succeeds_on_a_live_node_and_fails_otherwise() {
    let env = Env::new(|c| c);
    let node = env.start();
    let health = |url: String, ca: &std::path::Path| {
        run_sealkm([
            std::ffi::OsStr::new("health"),
            "--url".as_ref(),
            url.as_ref(),
            "--cacert".as_ref(),
            ca.as_os_str(),
        ])
    };
    let ok = health(format!("{}/healthz", node.url), &env.ca());
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("200"));

    let missing = health(format!("{}/no-such-path", node.url), &env.ca());
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("404"), "{}", stderr(&missing));

    let other_ca = sealkm::tls::DevCa::generate("another").expect("ca");
    let ca_file = env.dir().join("other-ca.pem");
    std::fs::write(&ca_file, &other_ca.cert_pem).expect("write ca");
    let untrusted = health(format!("{}/healthz", node.url), &ca_file);
    assert!(
        !untrusted.status.success(),
        "a foreign CA must not be trusted"
    );
    node.stop();
}
