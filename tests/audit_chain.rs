//! Audit log (ARCHITECTURE §7): hash chain, resume, and tamper / truncation detection.

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sealkm::audit::{verify_file, AuditError, AuditEvent, AuditKind, AuditLog, GENESIS_HASH};

fn event(kind: AuditKind, n: u64) -> AuditEvent {
    let mut e = AuditEvent::new(kind, format!("val-server-{n}"));
    e.identity = Some(format!("sip:user{n}@example.org"));
    e.key_period = Some(n);
    e.community = Some("kms.example.org".into());
    e
}

/// A manual clock: each call returns the next millisecond.
fn ticking_clock(start_ms: u64) -> impl Fn() -> u64 + Send + 'static {
    let now = Arc::new(AtomicU64::new(start_ms));
    move || now.fetch_add(1, Ordering::Relaxed)
}

fn write_events(path: &std::path::Path, count: u64) {
    let log = AuditLog::open(path, "node-1", ticking_clock(1_700_000_000_000)).expect("open");
    for n in 0..count {
        log.record(event(AuditKind::KeySetDelivered, n))
            .expect("record");
    }
    log.flush().expect("flush");
}

fn lines(path: &std::path::Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn written_events_verify_with_the_right_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    write_events(&path, 10);
    let summary = verify_file(&path).expect("valid chain");
    assert_eq!(summary.records, 10);
    let last: serde_json::Value =
        serde_json::from_str(lines(&path).last().expect("a line")).expect("json");
    assert_eq!(last["hash"].as_str(), Some(summary.last_hash.as_str()));
    assert_eq!(last["seq"].as_u64(), Some(10));
    assert_eq!(last["node"].as_str(), Some("node-1"));
    assert_eq!(last["event"]["kind"].as_str(), Some("key_set_delivered"));
}

#[test]
fn empty_file_verifies_as_genesis() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    drop(AuditLog::open(&path, "n", ticking_clock(0)).expect("open"));
    let summary = verify_file(&path).expect("empty is valid");
    assert_eq!(summary.records, 0);
    assert_eq!(summary.last_hash, hex::encode(GENESIS_HASH));
}

#[test]
fn drop_flushes_what_was_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    {
        let log = AuditLog::open(&path, "node-1", ticking_clock(5)).expect("open");
        for n in 0..3 {
            log.record(event(AuditKind::CertificateCreated, n))
                .expect("record");
        }
    }
    assert_eq!(verify_file(&path).expect("valid").records, 3);
}

#[test]
fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    write_events(&path, 4);
    let before = verify_file(&path).expect("valid");
    {
        // A clock that went backwards: timestamps must still not decrease.
        let log = AuditLog::open(&path, "node-1", ticking_clock(1)).expect("reopen");
        assert_eq!(log.records_at_open(), 4);
        assert_eq!(log.truncated_tail_bytes(), 0);
        log.record(event(AuditKind::IdentityRevoked, 99))
            .expect("record");
        log.flush().expect("flush");
    }
    assert_eq!(verify_file(&path).expect("valid").records, 5);
    let fifth: serde_json::Value = serde_json::from_str(&lines(&path)[4]).expect("json");
    assert_eq!(fifth["seq"].as_u64(), Some(5));
    assert_eq!(fifth["prev"].as_str(), Some(before.last_hash.as_str()));
    assert!(fifth["ts_ms"].as_u64() >= Some(1_700_000_000_000));
}

#[test]
fn a_changed_byte_in_a_middle_line_is_reported_at_that_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    write_events(&path, 6);
    let mut text = lines(&path);
    text[2] = text[2].replace("user2@", "user9@");
    fs::write(&path, text.join("\n") + "\n").expect("write");
    match verify_file(&path) {
        Err(AuditError::Corrupt { line, .. }) => assert_eq!(line, 3),
        other => panic!("expected corruption at line 3, got {other:?}"),
    }
}

#[test]
fn a_deleted_line_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    write_events(&path, 6);
    let mut text = lines(&path);
    text.remove(3);
    fs::write(&path, text.join("\n") + "\n").expect("write");
    match verify_file(&path) {
        Err(AuditError::ChainBroken { line, .. }) => assert_eq!(line, 4),
        other => panic!("expected a broken chain at line 4, got {other:?}"),
    }
}

#[test]
fn a_truncated_final_line_is_reported_as_truncation_and_cut_on_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    write_events(&path, 5);
    let full = fs::read(&path).expect("read");
    let cut = full.len() - 40;
    fs::write(&path, &full[..cut]).expect("write");
    match verify_file(&path) {
        Err(AuditError::Truncated { line }) => assert_eq!(line, 5),
        other => panic!("expected truncation at line 5, got {other:?}"),
    }
    {
        let log = AuditLog::open(&path, "node-1", ticking_clock(1_800_000_000_000)).expect("open");
        assert_eq!(log.records_at_open(), 4);
        let partial_len = full.len()
            - 40
            - full[..cut]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
        assert_eq!(log.truncated_tail_bytes(), partial_len as u64);
        log.record(event(AuditKind::IdentityReinstated, 7))
            .expect("record");
        log.flush().expect("flush");
    }
    assert_eq!(verify_file(&path).expect("valid after repair").records, 5);
}

#[test]
fn a_corrupt_last_line_prevents_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    write_events(&path, 3);
    let text = fs::read_to_string(&path)
        .expect("read")
        .replace("user2@", "userX@");
    fs::write(&path, text).expect("write");
    let err = AuditLog::open(&path, "node-1", ticking_clock(0)).expect_err("tail is corrupt");
    assert!(matches!(err, AuditError::CorruptTail { .. }), "{err:?}");
}

#[test]
fn many_records_from_several_threads_all_land_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let log = Arc::new(AuditLog::open(&path, "node-1", ticking_clock(0)).expect("open"));
    let per_thread = 3_000u64; // more than the queue holds in total, to exercise back-pressure
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for n in 0..per_thread {
                    log.record(event(AuditKind::GroupKeyDelivered, t * per_thread + n))
                        .expect("record");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    log.flush().expect("flush");
    assert_eq!(verify_file(&path).expect("valid").records, 2 * per_thread);
}

#[test]
fn node_id_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    assert!(matches!(
        AuditLog::open(&path, "", ticking_clock(0)),
        Err(AuditError::BadNodeId)
    ));
}
