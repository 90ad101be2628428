//! A short seeded chaos run (issue 13): `scripts/chaos/run.sh` with the binary under test —
//! a local 3-node cluster, the recorded workload on every node for 90 s, kill -9 of a node, of
//! the leader, of every node, SIGSTOP of the leader and a rolling restart in a seeded
//! rotation, then `sealkm chaos check`: no violation (no lost acknowledged write, nothing
//! invented, gapless versions with one GMK-ID each, linearizable reads, equal digests, no node
//! halted), each fault kind injected, and the workload really ran (every kind of operation
//! acknowledged at least once).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sealkm");
const FAULTS: [&str; 5] = ["kill", "kill-leader", "pause", "kill-all", "restart"];

#[test]
fn a_seeded_chaos_run_finds_no_violation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/chaos/run.sh"))
        .args(["--target", "local", "--faults", &FAULTS.join(",")])
        .args(["--duration", "90", "--seed", "13", "--keep", "--dir"])
        .arg(&run)
        .env("SEALKM_BIN", BIN)
        .output()
        .expect("run scripts/chaos/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chaos run failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    println!("{stdout}");
    assert!(stdout.contains("chaos check: OK, no violation"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).expect("report.json"))
            .expect("report JSON");
    assert_eq!(report["violations"], serde_json::json!([]));
    let faults = report["summary"]["faults"].as_array().expect("faults");
    for kind in FAULTS {
        assert!(
            faults
                .iter()
                .any(|f| f["fault"] == kind && f["healed_unix_ms"].is_u64()),
            "no healed {kind} in {faults:?}"
        );
    }
    for f in faults
        .iter()
        .filter(|f| f["fault"] == "kill-leader" || f["fault"] == "pause")
    {
        assert!(f["new_leader_ms"].is_u64(), "no new leader after {f}");
    }
    let per_op = &report["summary"]["per_op"];
    for op in [
        "gk_rotate",
        "gk_read",
        "acl_set",
        "acl_read",
        "revoke",
        "rev_read",
        "keyprov",
    ] {
        assert!(
            per_op[op]["ok"].as_u64().unwrap_or(0) > 0,
            "no acknowledged {op}: {per_op}"
        );
    }
    let nodes = report["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3);
    assert!(nodes.iter().all(|n| n["halted"].is_null()));
}
