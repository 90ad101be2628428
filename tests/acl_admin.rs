//! `sealkm acl` over the admin API: entries are validated before proposing (400, nothing
//! changes), replicated through Raft, and survive a restart.

mod common;

use common::{run_sealkm, Env};

fn acl(env: &Env, url: &str, args: &[&str]) -> std::process::Output {
    let token = env.admin_token();
    let ca = env.ca();
    let mut all: Vec<&std::ffi::OsStr> = vec![
        "acl".as_ref(),
        "--url".as_ref(),
        url.as_ref(),
        "--cacert".as_ref(),
        ca.as_os_str(),
        "--token".as_ref(),
        token.as_ref(),
    ];
    all.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
    run_sealkm(all)
}

fn listed(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn acl_entries_are_validated_replicated_and_durable() {
    let env = Env::new(|c| c);
    let node = env.start();
    let set = acl(
        &env,
        &node.url,
        &[
            "set",
            "--principal",
            "val1.example.org",
            "--role",
            "val-server",
            "--group",
            "g2",
            "--group",
            "g1",
            "--group",
            "g1",
        ],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let v = listed(&acl(&env, &node.url, &["list"]));
    assert_eq!(
        v["acl"],
        serde_json::json!([{"principal": "val1.example.org", "role": "val-server", "groups": ["g1", "g2"]}]),
        "canonical form: sorted, without duplicates"
    );
    // Refused before proposing: nothing changes.
    for bad in [
        vec!["set", "--principal", "x.example.org", "--role", "root"],
        vec!["set", "--principal", "", "--role", "gms"],
        vec![
            "set",
            "--principal",
            "y.example.org",
            "--role",
            "gms",
            "--group",
            "a/b",
        ],
    ] {
        let out = acl(&env, &node.url, &bad);
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("400"),
            "{bad:?}"
        );
    }
    assert_eq!(
        listed(&acl(&env, &node.url, &["list"]))["acl"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Durable: a restarted node still has it; removal replicates too.
    node.stop();
    let node = env.start();
    assert_eq!(
        listed(&acl(&env, &node.url, &["list"]))["acl"][0]["principal"],
        "val1.example.org"
    );
    let rm = acl(
        &env,
        &node.url,
        &["remove", "--principal", "val1.example.org"],
    );
    assert!(rm.status.success());
    assert_eq!(
        listed(&acl(&env, &node.url, &["list"]))["acl"],
        serde_json::json!([])
    );
    // Without the admin credential: 401.
    let out = run_sealkm([
        "acl",
        "--url",
        &node.url,
        "--cacert",
        env.ca().to_str().unwrap(),
        "--token",
        "nope",
        "list",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}
