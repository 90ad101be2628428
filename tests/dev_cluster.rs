//! `sealkm dev` as a newcomer uses it: three node processes come up, `cluster.json` lists
//! them, `sealkm cluster status` shows one leader and equal digests, a killed node shows as
//! unreachable while the other two keep serving, and its `restart` command brings it back.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{run_sealkm, BIN};

fn status(dir: &std::path::Path) -> serde_json::Value {
    let out = run_sealkm([
        "cluster".as_ref(),
        "--dir".as_ref(),
        dir.as_os_str(),
        "status".as_ref(),
        "--json".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

fn roles(v: &serde_json::Value) -> Vec<(u64, String)> {
    let mut r: Vec<(u64, String)> = v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["id"].as_u64().unwrap(),
                n["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    r.sort();
    r
}

/// Stops a process on drop, also when the test panics: SIGTERM (so `sealkm dev` stops its
/// nodes), then wait.
struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a child process this test started.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

#[test]
fn dev_starts_three_processes_that_cluster_status_shows() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("dev");
    let mut dev = Stop(
        Command::new(BIN)
            .args(["dev", "--addr", "127.0.0.1:0", "--dir"])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dev"),
    );
    let mut lines = BufReader::new(dev.0.stdout.take().expect("stdout")).lines();
    let mut started = 0;
    for line in lines.by_ref() {
        let line = line.expect("line");
        if line.starts_with("sealkm dev: node ") {
            started += 1;
        }
        if line.starts_with("files in ") {
            break;
        }
    }
    assert_eq!(started, 3, "three nodes by default");
    std::thread::spawn(move || for _ in lines {});

    let cluster: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("cluster.json")).expect("cluster.json"),
    )
    .expect("json");
    let nodes = cluster["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        for key in [
            "id", "pid", "km_uu", "service", "peer", "data_dir", "restart",
        ] {
            assert!(!n[key].is_null(), "cluster.json lacks {key}: {n}");
        }
    }

    // One leader, everyone agrees on the state.
    let v = common::cluster::poll(|| {
        let v = status(&dir);
        let r = roles(&v);
        let leaders = r.iter().filter(|(_, role)| role == "leader").count();
        let digests: std::collections::BTreeSet<_> = v["nodes"]
            .as_array()?
            .iter()
            .map(|n| n["digest"].to_string())
            .collect();
        (leaders == 1 && r.len() == 3 && digests.len() == 1).then_some(v)
    });
    let text = run_sealkm([
        "cluster".as_ref(),
        "--dir".as_ref(),
        dir.as_os_str(),
        "status".as_ref(),
    ]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("leader") && text.contains("follower"),
        "{text}"
    );

    // The dev GMS and VAL server are certified and granted: play them with the CLI.
    let cli = |args: &[&str]| -> String {
        let mut full = vec!["client", "--dir", dir.to_str().unwrap()];
        full.extend_from_slice(args);
        let out = run_sealkm(&full);
        assert!(
            out.status.success(),
            "sealkm {full:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(cli(&["gms", "keyprov"]).contains("gms.sealkm.test"));
    let created: serde_json::Value =
        serde_json::from_str(&cli(&["gms", "group-key", "create", "dev-group"])).unwrap();
    let msg = tmp.path().join("msg.bin");
    let built = cli(&[
        "gms",
        "imessage",
        "--group",
        "dev-group",
        "--to",
        "sip:alice@sealkm.test",
        "--out",
        msg.to_str().unwrap(),
    ]);
    let opened = cli(&[
        "--user",
        "sip:alice@sealkm.test",
        "imessage",
        "open",
        "--file",
        msg.to_str().unwrap(),
        "--from",
        "gms.sealkm.test",
    ]);
    let fingerprint = |text: &str| {
        text.rsplit("GMK fingerprint ")
            .next()
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(
        fingerprint(&built),
        fingerprint(&opened),
        "{built}\n{opened}"
    );
    assert!(opened.contains(&format!("GMK-ID {}", created["gmk_id"].as_str().unwrap())));
    let read: serde_json::Value =
        serde_json::from_str(&cli(&["val", "group-key", "get", "dev-group"])).unwrap();
    assert_eq!(read["gmk"], created["gmk"]);

    // Kill a follower: the others report it unreachable.
    let leader = roles(&v)
        .into_iter()
        .find(|(_, r)| r == "leader")
        .unwrap()
        .0;
    let victim = nodes
        .iter()
        .find(|n| n["id"].as_u64() != Some(leader))
        .expect("a follower");
    let vid = victim["id"].as_u64().unwrap();
    // SAFETY: kill(2) on a node process this test's dev run started.
    unsafe {
        libc::kill(victim["pid"].as_u64().unwrap() as i32, libc::SIGKILL);
    }
    common::cluster::poll(|| {
        let r = roles(&status(&dir));
        r.contains(&(vid, "unreachable".to_owned())).then_some(())
    });

    // Its restart command brings it back as a follower.
    let argv: Vec<String> = victim["restart"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let _again = Stop(
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("restart"),
    );
    common::cluster::poll(|| {
        let r = roles(&status(&dir));
        r.contains(&(vid, "follower".to_owned())).then_some(())
    });
}

#[test]
fn dev_with_two_domains_federates_them_and_the_printed_walk_through_works() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("dev2");
    let mut dev = Stop(
        Command::new(BIN)
            .args([
                "dev",
                "--domains",
                "2",
                "--nodes",
                "1",
                "--addr",
                "127.0.0.1:0",
                "--dir",
            ])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dev"),
    );
    let stderr = dev.0.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    let mut lines = BufReader::new(dev.0.stdout.take().expect("stdout")).lines();
    let mut federated = false;
    for line in lines.by_ref() {
        let line = line.expect("line");
        federated |= line.starts_with("sealkm dev: two federated domains");
        if line.starts_with("Ctrl-C stops every node of both domains") {
            break;
        }
    }
    if !federated {
        drop(dev);
        panic!("no federated start: {}", errors.join().unwrap_or_default());
    }
    std::thread::spawn(move || for _ in lines {});
    let (a, b) = (dir.join("a"), dir.join("b"));
    let run = |args: &[&std::ffi::OsStr]| {
        let out = run_sealkm(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {text}");
        text
    };
    let s = |x: &str| std::ffi::OsString::from(x);
    // Each domain lists the other's certificate.
    let listed = run(&[&s("federation"), &s("--dir"), a.as_os_str(), &s("list")]);
    assert!(listed.contains("kms.partner.test"), "{listed}");
    let listed = run(&[&s("federation"), &s("--dir"), b.as_os_str(), &s("list")]);
    assert!(listed.contains("kms.sealkm.test"), "{listed}");
    // The walk-through: GMS of A -> bob of B.
    let msg = tmp.path().join("msg.bin");
    let sent = run(&[
        &s("client"),
        &s("gms"),
        &s("--dir"),
        a.as_os_str(),
        &s("imessage"),
        &s("--to"),
        &s("sip:bob@partner.test"),
        &s("--out"),
        msg.as_os_str(),
    ]);
    assert!(sent.contains("(kms.partner.test)"), "{sent}");
    let opened = run(&[
        &s("client"),
        &s("--dir"),
        b.as_os_str(),
        &s("--user"),
        &s("sip:bob@partner.test"),
        &s("imessage"),
        &s("open"),
        &s("--file"),
        msg.as_os_str(),
        &s("--from"),
        &s(sealkm::dev::DEV_GMS),
    ]);
    let fp = |t: &str| {
        t.split("GMK fingerprint ")
            .nth(1)
            .map(|f| f.trim().to_owned())
    };
    assert_eq!(fp(&opened), fp(&sent), "{opened}");
    // KM-E: a version of the group A shares reaches B (delivered at the latest by a refresh).
    let created = run(&[
        &s("client"),
        &s("gms"),
        &s("--dir"),
        a.as_os_str(),
        &s("group-key"),
        &s("create"),
        &s("fed-group"),
    ]);
    run(&[&s("federation"), &s("--dir"), a.as_os_str(), &s("refresh")]);
    let got = run(&[
        &s("client"),
        &s("val"),
        &s("--dir"),
        b.as_os_str(),
        &s("group-key"),
        &s("get"),
        &s("fed-group"),
    ]);
    let gmk = |t: &str| {
        let v: serde_json::Value = serde_json::from_str(t.trim()).expect("JSON");
        v["gmk"].as_str().expect("gmk").to_owned()
    };
    assert_eq!(gmk(&got), gmk(&created), "{got}");
    // A visiting user of B gets a key set of A with B's token.
    let ks = run(&[
        &s("client"),
        &s("--dir"),
        a.as_os_str(),
        &s("--token"),
        &s(run(&[
            &s("token"),
            &s("--dir"),
            b.as_os_str(),
            &s("--user"),
            &s("sip:bob@partner.test"),
        ])
        .trim()),
        &s("keyprov"),
    ]);
    assert!(
        ks.contains("kms.sealkm.test") || ks.contains("KmsKeySet"),
        "{ks}"
    );
}
