//! Audit log (ARCHITECTURE §7): hash chain, resume, and tamper / truncation detection.

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sealkm::audit::{
    verify_file, AuditError, AuditEvent, AuditKind, AuditLog, AUDIT_QUEUE_CAPACITY, GENESIS_HASH,
};

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

/// Queues `e` without waiting for it to be synced.
fn queue(log: &AuditLog, e: AuditEvent) {
    drop(log.submit(e).expect("queued"));
}

fn write_events(path: &std::path::Path, count: u64) {
    let log = AuditLog::open(path, "node-1", ticking_clock(1_700_000_000_000)).expect("open");
    for n in 0..count {
        queue(&log, event(AuditKind::KeySetDelivered, n));
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
            queue(&log, event(AuditKind::CertificateCreated, n));
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
        queue(&log, event(AuditKind::IdentityRevoked, 99));
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
        queue(&log, event(AuditKind::IdentityReinstated, 7));
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
    let per_thread = 3_000u64; // more than the queue holds in total
    let chunk = AUDIT_QUEUE_CAPACITY as u64 / 4;
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut n = 0;
                while n < per_thread {
                    // A chunk queued, then waited for as a whole: the queue never overflows.
                    let mut last = None;
                    for _ in 0..chunk.min(per_thread - n) {
                        last = Some(
                            log.submit(event(AuditKind::GroupKeyDelivered, t * per_thread + n))
                                .expect("queued"),
                        );
                        n += 1;
                    }
                    last.expect("a record").wait().expect("durable");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    assert_eq!(verify_file(&path).expect("valid").records, 2 * per_thread);
}

/// A writer hook that, while armed, reports each synced batch and waits to be released
/// before the batch is acknowledged.
struct Gate {
    armed: Arc<std::sync::atomic::AtomicBool>,
    reached: std::sync::mpsc::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
}

fn gated_log(path: &std::path::Path) -> (AuditLog, Gate) {
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (reached_tx, reached) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let hook_armed = armed.clone();
    let log = AuditLog::open_with_sync_hook(
        path,
        "node-1",
        ticking_clock(0),
        Box::new(move || {
            if hook_armed.load(Ordering::SeqCst) {
                let _ = reached_tx.send(());
                let _ = release_rx.lock().unwrap().recv();
            }
        }),
    )
    .expect("open");
    (
        log,
        Gate {
            armed,
            reached,
            release,
        },
    )
}

impl Gate {
    fn open(&self) {
        self.armed.store(false, Ordering::SeqCst);
        let _ = self.release.send(());
    }
}

#[test]
fn a_record_resolves_only_once_its_batch_is_synced() {
    use futures_util::FutureExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let (log, gate) = gated_log(&path);
    let mut durable = log
        .submit(event(AuditKind::KeySetDelivered, 1))
        .expect("queued");
    gate.reached.recv().expect("the batch was synced");
    // Written and synced, but not acknowledged yet: not durable as far as the caller knows.
    assert!((&mut durable).now_or_never().is_none());
    gate.open();
    durable.wait().expect("durable");
    assert_eq!(verify_file(&path).expect("valid").records, 1);
}

#[test]
fn a_full_queue_refuses_at_once_and_loses_nothing_it_took() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let (log, gate) = gated_log(&path);
    // The writer takes the first record and is held after syncing it.
    let first = log
        .submit(event(AuditKind::KeySetDelivered, 0))
        .expect("queued");
    gate.reached.recv().expect("first batch synced");
    let mut taken = vec![first];
    let refused = loop {
        match log.submit(event(AuditKind::KeySetDelivered, taken.len() as u64)) {
            Ok(d) => taken.push(d),
            Err(e) => break e,
        }
        assert!(
            taken.len() <= AUDIT_QUEUE_CAPACITY + 1,
            "the queue never filled"
        );
    };
    // Refused without waiting for the (held) writer.
    assert!(matches!(refused, AuditError::Unavailable), "{refused:?}");
    assert_eq!(refused.to_string(), "audit unavailable: its queue is full");
    assert_eq!(taken.len(), AUDIT_QUEUE_CAPACITY + 1);
    gate.open();
    for d in taken {
        d.wait().expect("durable");
    }
    assert_eq!(
        verify_file(&path).expect("valid").records,
        AUDIT_QUEUE_CAPACITY as u64 + 1
    );
}

/// The child side of [`an_exit_flushes_what_was_queued`]: queues records behind a held batch,
/// then exits the process; an exit handler registered after the log's opens the gate.
#[test]
fn exit_child() {
    let Ok(path) = std::env::var("SEALKM_AUDIT_EXIT_CHILD") else {
        return;
    };
    static RELEASE: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<()>>> =
        std::sync::OnceLock::new();
    extern "C" fn release_gate() {
        if let Some(tx) = RELEASE.get() {
            let _ = tx.lock().map(|tx| tx.send(()));
        }
    }
    let (log, gate) = gated_log(std::path::Path::new(&path));
    queue(&log, event(AuditKind::KeySetDelivered, 0));
    gate.reached.recv().expect("first batch synced");
    gate.armed.store(false, Ordering::SeqCst);
    for n in 1..1000 {
        queue(&log, event(AuditKind::KeySetDelivered, n));
    }
    let _ = RELEASE.set(std::sync::Mutex::new(gate.release.clone()));
    // atexit handlers run in reverse order: this one (opening the gate) before the audit's.
    // SAFETY: registers a plain extern "C" function without arguments.
    unsafe {
        libc::atexit(release_gate);
    }
    std::process::exit(0);
}

#[test]
fn an_exit_flushes_what_was_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["exit_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("SEALKM_AUDIT_EXIT_CHILD", &path)
        .output()
        .expect("run the child");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(verify_file(&path).expect("valid").records, 1000);
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

/// Runs `fut` to completion on a one-thread runtime of its own.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(fut)
}

#[test]
fn a_repeated_exposure_is_recorded_but_waits_only_the_first_time() {
    use futures_util::FutureExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let (log, gate) = gated_log(&path);
    let delivery = event(AuditKind::KeySetDelivered, 1);

    // First exposure: queued, synced, held before acknowledgement: not resolved.
    let mut first = Box::pin(log.record_exposure(delivery.clone()));
    assert!((&mut first).now_or_never().is_none());
    gate.reached.recv().expect("the batch was synced");
    assert!(
        (&mut first).now_or_never().is_none(),
        "the first delivery waits for its own record"
    );
    gate.open();
    block_on(first).expect("durable");

    // The same exposure again: resolves at once (its record is on disk already), and its own
    // record is still written.
    let repeat = log.record_exposure(delivery.clone()).now_or_never();
    assert!(
        matches!(repeat, Some(Ok(()))),
        "a repeat does not wait: {repeat:?}"
    );
    // Another principal's delivery is a new exposure: it waits for its record like the first.
    let mut other = event(AuditKind::KeySetDelivered, 1);
    other.actor = "someone-else".into();
    block_on(log.record_exposure(other)).expect("durable");
    log.flush().expect("flushed");
    assert_eq!(verify_file(&path).expect("valid").records, 3);
}

#[test]
fn a_queued_record_is_synced_lazily_without_anyone_waiting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let (synced_tx, synced) = std::sync::mpsc::channel();
    let log = AuditLog::open_with_sync_hook(
        &path,
        "node-1",
        ticking_clock(0),
        Box::new(move || {
            let _ = synced_tx.send(());
        }),
    )
    .expect("open");
    log.queue(event(AuditKind::GroupKeyDelivered, 0))
        .expect("queued");
    // Nobody waits, yet a sync comes by itself (within LAZY_SYNC).
    synced.recv().expect("a lazy sync happened");
    assert_eq!(verify_file(&path).expect("valid").records, 1);
    // A waited-for record syncs at once and carries the queued ones before it.
    log.queue(event(AuditKind::GroupKeyDelivered, 1))
        .expect("queued");
    block_on(log.record(event(AuditKind::KeySetDelivered, 2))).expect("durable");
    assert_eq!(verify_file(&path).expect("valid").records, 3);
    // Dropping the log syncs what is queued.
    log.queue(event(AuditKind::GroupKeyDelivered, 3))
        .expect("queued");
    drop(log);
    assert_eq!(verify_file(&path).expect("valid").records, 4);
}
