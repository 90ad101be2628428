//! A node's files are private: the data directory (state, Raft log, snapshots) 0700 with
//! nothing readable by group or others inside, the audit file 0600 — also when they existed
//! with wider modes — and the unseal key given in `SEALKM_UNSEAL_KEY` is gone from the
//! process's environment once it is read.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn node_files_are_private_and_the_unseal_key_leaves_the_environment() {
    let env = common::Env::new(|c| c.replace("unseal_key_file = \"unseal.key\"\n", ""));
    let key = std::fs::read_to_string(env.dir().join("unseal.key"))
        .expect("key")
        .trim()
        .to_owned();
    // A data directory and an audit file left with wide modes (by an older version).
    let data = env.dir().join("node1-data");
    std::fs::create_dir(&data).expect("data dir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let audit = env.dir().join("node1-audit.jsonl");
    std::fs::write(&audit, "").expect("audit file");
    std::fs::set_permissions(&audit, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let node = common::Node::start(&env.config(), &[("SEALKM_UNSEAL_KEY", key.as_str())]);
    let environ =
        std::fs::read(format!("/proc/{}/environ", node.child.id())).expect("read environ");
    assert!(
        !environ.windows(key.len()).any(|w| w == key.as_bytes()),
        "the unseal key is still in the node's environment"
    );
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&audit), 0o600);
    let inside = walk(&data);
    assert!(inside.len() > 3, "the node wrote its state: {inside:?}");
    for p in inside {
        assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
    }
    node.stop();
}
