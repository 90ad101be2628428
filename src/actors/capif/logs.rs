//! CAPIF invocation logs (TS 29.222 `Logging_API_Invocation_API`, TS 23.222 8.19): every
//! `ss-kir` invocation by a CAPIF invoker is spooled on this node and sent to the CCF as
//! `POST {ccf}/api-invocation-logs/v1/{aefId}/logs`, one `InvocationLog` per invoker and batch.
//!
//! - The request path pushes the record into memory ([`LogSpool::record`]), wakes the writer
//!   and waits until the record is on disk ([`LogSpool::durable`]) before it answers: a node
//!   killed right after an answer still holds that answer's record. KM-S never waits on the
//!   CCF: the writer is a task of its own, apart from the shipper.
//! - The writer ([`run_writer`]) appends new records to the spool file
//!   `capif-log-spool.jsonl` in the data directory and fsyncs it, every record pushed
//!   meanwhile in one write (group commit). The file is rewritten (temporary file, fsync,
//!   rename) after a delivery or a drop. A record the writer cannot make durable within
//!   [`DURABLE_WAIT`] (a failing disk) gets its invocation answered 503.
//! - The shipper ([`run_shipper`]) sends what is spooled and on disk to the CCF. A record
//!   whose invocation was answered 503 because it did not reach the disk in time is amended
//!   to 503 ([`LogSpool::refused`]) and may then go before it reaches the disk: the CCF is
//!   told the answer actually sent, never the one computed before the refusal.
//! - The spool is bounded (`log_spool_max`): a full spool drops the oldest record and counts
//!   it (`sealkm_capif_logs_dropped_total`).
//! - A batch goes when an invoker has `log_batch` records or every `log_flush_ms`; a failed
//!   send (transport, timeout, 5xx) is retried with backoff doubling up to 60 s. A batch the
//!   CCF refuses with a 4xx is dropped and counted (it would never be accepted).
//! - Records hold the invoker id, the security method, status, time, latency and source
//!   address: never a query string, a body or key material.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Capif;
use crate::kms::capif::spool::{Spool, SpoolEntry};
use crate::kms::capif::{invocation_log, Invocation};

/// The spool file's name in the data directory.
pub const SPOOL_FILE: &str = "capif-log-spool.jsonl";

/// How long an invocation waits for its record to reach the disk before it is refused.
pub const DURABLE_WAIT: Duration = Duration::from_secs(2);

/// Longest wait between two attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

struct Inner {
    spool: Spool,
    /// Pushed but not yet appended to the file.
    unsynced: VecDeque<SpoolEntry>,
    /// The file must be rewritten from `spool` (after a delivery, a drop or an amendment).
    rewrite: bool,
    /// Records not yet durable whose invocation was answered 503 ([`LogSpool::refused`]):
    /// their status is final, so they may be shipped before they reach the disk.
    settled: std::collections::BTreeSet<u64>,
}

/// The spool of one node (see module docs).
pub struct LogSpool {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// Wakes the shipper (records to send).
    wake: tokio::sync::Notify,
    /// Wakes the writer (records to write, or the file to rewrite).
    write: tokio::sync::Notify,
    /// Every record with a sequence number below this is on disk (or delivered, or dropped).
    synced: tokio::sync::watch::Sender<u64>,
    delivered: AtomicU64,
    dropped: AtomicU64,
    failures: AtomicU64,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LogSpool {
    /// Opens the spool file at `path` (missing: empty; unreadable lines are skipped).
    pub fn open(path: &Path, max: usize) -> std::io::Result<Self> {
        let mut entries = Vec::new();
        match std::fs::File::open(path) {
            Ok(f) => {
                for line in std::io::BufReader::new(f).lines() {
                    if let Ok(e) = serde_json::from_str::<SpoolEntry>(&line?) {
                        entries.push(e);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let spool = Spool::new(max, entries);
        let dropped = spool.dropped();
        let synced = tokio::sync::watch::Sender::new(spool.next_seq());
        Ok(Self {
            path: path.to_owned(),
            inner: Mutex::new(Inner {
                spool,
                unsynced: VecDeque::new(),
                rewrite: dropped > 0,
                settled: Default::default(),
            }),
            wake: tokio::sync::Notify::new(),
            write: tokio::sync::Notify::new(),
            synced,
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(dropped),
            failures: AtomicU64::new(0),
        })
    }

    /// Spools one invocation (no I/O; the writer writes it) and returns its sequence number,
    /// for [`LogSpool::durable`].
    pub fn record(&self, invocation: Invocation) -> u64 {
        let (seq, dropped) = {
            let mut g = lock(&self.inner);
            let (entry, dropped) = g.spool.push(invocation);
            if dropped > 0 {
                g.rewrite = true;
                g.unsynced.clear();
                // The oldest entries went: so do their settled marks.
                let oldest = g.spool.entries().next().map_or(u64::MAX, |e| e.seq);
                g.settled.retain(|s| *s >= oldest);
            } else {
                g.unsynced.push_back(entry.clone());
            }
            (entry.seq, dropped)
        };
        if dropped > 0 {
            self.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        }
        self.write.notify_one();
        seq
    }

    /// Waits until record `seq` is on disk; false if that took longer than `wait`.
    pub async fn durable(&self, seq: u64, wait: Duration) -> bool {
        let mut rx = self.synced.subscribe();
        let done = tokio::time::timeout(wait, rx.wait_for(|&next| next > seq))
            .await
            .is_ok_and(|r| r.is_ok());
        done
    }

    /// Record `seq` could not be made durable in time and its invocation was answered `status`
    /// (503) instead of what the record says: the record is amended (and the file rewritten
    /// with it), so the CCF learns the answer actually sent.
    pub fn refused(&self, seq: u64, status: u16) {
        {
            let mut g = lock(&self.inner);
            if g.spool.amend(seq, status) {
                g.settled.insert(seq);
                g.rewrite = true;
            }
        }
        self.write.notify_one();
    }

    /// The next batch to ship: only records on disk, or settled by [`LogSpool::refused`]; a
    /// record whose answer may still turn into a 503 waits.
    fn next_batch(&self, batch: usize) -> Option<(String, Vec<SpoolEntry>)> {
        let durable_below = *self.synced.borrow();
        let g = lock(&self.inner);
        g.spool.next_batch(batch, |e| {
            e.seq < durable_below || g.settled.contains(&e.seq)
        })
    }

    /// Records spooled, delivered and dropped, and failed sends, for status and metrics.
    pub fn status(&self) -> Value {
        json!({
            "spooled": lock(&self.inner).spool.len(),
            "delivered": self.delivered.load(Ordering::Relaxed),
            "dropped": self.dropped.load(Ordering::Relaxed),
            "failedSends": self.failures.load(Ordering::Relaxed),
        })
    }

    /// (delivered, dropped, failed sends) since start.
    pub fn counters(&self) -> (u64, u64, u64) {
        (
            self.delivered.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }

    /// Writes what changed to the file and fsyncs it (blocking: call off the runtime); then
    /// every record pushed before the call is on disk, and `synced` says so.
    fn persist(&self) -> std::io::Result<()> {
        let (rewrite, lines, next) = {
            let mut g = lock(&self.inner);
            let next = g.spool.next_seq();
            if g.rewrite {
                g.rewrite = false;
                g.unsynced.clear();
                (true, g.spool.entries().cloned().collect::<Vec<_>>(), next)
            } else {
                (false, g.unsynced.drain(..).collect(), next)
            }
        };
        if !rewrite && lines.is_empty() {
            self.mark_synced(next);
            return Ok(());
        }
        let mut text = String::new();
        for e in &lines {
            text.push_str(&serde_json::to_string(e).unwrap_or_default());
            text.push('\n');
        }
        // Every failure, also the first `?`, must reach the `match` below.
        let write = || -> std::io::Result<()> {
            if rewrite {
                let tmp = self.path.with_extension("jsonl.tmp");
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(text.as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&tmp, &self.path)?;
                match self.path.parent() {
                    Some(dir) => std::fs::File::open(dir)?.sync_all(),
                    None => Ok(()),
                }
            } else {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?;
                f.write_all(text.as_bytes())?;
                f.sync_data()
            }
        };
        let res = write();
        match res {
            Ok(()) => self.mark_synced(next),
            // Not written: try the whole file again next round.
            Err(_) => lock(&self.inner).rewrite = true,
        }
        res
    }

    fn mark_synced(&self, next: u64) {
        self.synced.send_if_modified(|s| {
            let newer = next > *s;
            if newer {
                *s = next;
            }
            newer
        });
    }
}

/// Persists the spool off the runtime.
async fn persist(capif: &Arc<Capif>) {
    let c = capif.clone();
    match actix_rt::task::spawn_blocking(move || c.logs.persist()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "writing the CAPIF log spool failed"),
        Err(e) => tracing::error!(error = %e, "the CAPIF log spool writer stopped"),
    }
}

/// What one delivery attempt did.
enum Sent {
    Delivered,
    Refused,
    Failed,
    NotPublished,
}

/// Sends the next batch, if any.
async fn send_batch(capif: &Arc<Capif>) -> Option<Sent> {
    let cfg = &capif.cfg;
    let (invoker, batch) = capif.logs.next_batch(cfg.log_batch)?;
    let Ok(Some(api_id)) = capif.api_id() else {
        return Some(Sent::NotPublished);
    };
    let list: Vec<Invocation> = batch.iter().map(|e| e.invocation.clone()).collect();
    let body = invocation_log(&cfg.aef_id, &api_id, &invoker, &list);
    let path = format!("/api-invocation-logs/v1/{}/logs", cfg.aef_id);
    let seqs: Vec<u64> = batch.iter().map(|e| e.seq).collect();
    let outcome = match capif.send("POST", &path, Some(&body)).await {
        Ok((200..=204, _)) => Sent::Delivered,
        Ok((status, _)) => {
            tracing::warn!(
                status,
                records = seqs.len(),
                "the CCF refused an invocation log batch; dropped"
            );
            Sent::Refused
        }
        Err(e) => {
            tracing::warn!(error = %e, "sending invocation logs to the CCF failed; kept for retry");
            Sent::Failed
        }
    };
    let logs = &capif.logs;
    match outcome {
        Sent::Delivered | Sent::Refused => {
            let mut g = lock(&logs.inner);
            g.spool.remove(&seqs);
            for s in &seqs {
                g.settled.remove(s);
            }
            g.rewrite = true;
            let counter = match outcome {
                Sent::Delivered => &logs.delivered,
                _ => &logs.dropped,
            };
            counter.fetch_add(seqs.len() as u64, Ordering::Relaxed);
        }
        _ => {
            logs.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
    Some(outcome)
}

/// The writer of this node's spool file (see module docs). Spawn on the node's runtime.
pub async fn run_writer(capif: Arc<Capif>) {
    let period = Duration::from_millis(capif.cfg.log_flush_ms);
    loop {
        tokio::select! {
            _ = capif.logs.write.notified() => {}
            _ = tokio::time::sleep(period) => {}
        }
        persist(&capif).await;
        capif.logs.wake.notify_one();
    }
}

/// The shipper of this node's spool (see module docs). Spawn on the node's runtime.
pub async fn run_shipper(capif: Arc<Capif>) {
    let period = Duration::from_millis(capif.cfg.log_flush_ms);
    let mut backoff = period;
    let mut next_try = Instant::now();
    let mut last_flush = Instant::now();
    loop {
        tokio::select! {
            _ = capif.logs.wake.notified() => {}
            _ = tokio::time::sleep(period) => {}
        }
        let (empty, full) = {
            let g = lock(&capif.logs.inner);
            (
                g.spool.is_empty(),
                g.spool.has_full_batch(capif.cfg.log_batch),
            )
        };
        let now = Instant::now();
        if empty || now < next_try || !(full || now >= last_flush + period) {
            continue;
        }
        last_flush = now;
        // Send batches until the spool is empty or a send fails (bounded per round).
        for _ in 0..64 {
            match send_batch(&capif).await {
                None => break,
                Some(Sent::Delivered | Sent::Refused) => backoff = period,
                Some(Sent::Failed) => {
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    break;
                }
                Some(Sent::NotPublished) => break,
            }
        }
        capif.logs.write.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kms::capif::test_invocation as inv;

    #[tokio::test]
    async fn a_record_is_durable_only_once_written_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SPOOL_FILE);
        let logs = LogSpool::open(&path, 10).unwrap();
        let a = logs.record(inv("a"));
        let b = logs.record(inv("b"));
        assert!(!logs.durable(a, Duration::from_millis(20)).await);
        logs.persist().unwrap();
        assert!(logs.durable(a, Duration::ZERO).await);
        assert!(logs.durable(b, Duration::ZERO).await);
        let c = logs.record(inv("c"));
        assert!(!logs.durable(c, Duration::from_millis(20)).await);
        logs.persist().unwrap();
        assert!(logs.durable(c, Duration::ZERO).await);
        // What was acknowledged as durable is there after a restart, and numbering goes on.
        let again = LogSpool::open(&path, 10).unwrap();
        let who: Vec<String> = lock(&again.inner)
            .spool
            .entries()
            .map(|e| e.invocation.api_invoker_id.clone())
            .collect();
        assert_eq!(who, ["a", "b", "c"]);
        assert_eq!(again.record(inv("d")), 3);
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_written_is_never_reported_durable() {
        let dir = tempfile::tempdir().unwrap();
        // The spool's folder is gone: every write fails.
        let path = dir.path().join("gone").join(SPOOL_FILE);
        let logs = LogSpool::open(&path, 10).unwrap();
        let a = logs.record(inv("a"));
        assert!(logs.persist().is_err());
        assert!(!logs.durable(a, Duration::from_millis(20)).await);
        // Once the folder is back, the next round rewrites the whole file.
        std::fs::create_dir(dir.path().join("gone")).unwrap();
        logs.persist().unwrap();
        assert!(logs.durable(a, Duration::ZERO).await);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[tokio::test]
    async fn a_refused_record_ships_as_503_and_an_unsettled_one_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone").join(SPOOL_FILE);
        let logs = LogSpool::open(&path, 10).unwrap();
        let a = logs.record(inv("a"));
        let b = logs.record(inv("b"));
        assert!(logs.persist().is_err());
        // Neither is on disk nor settled: nothing ships.
        assert!(logs.next_batch(10).is_none());
        // a's invocation was answered 503: it ships, saying 503; b still waits.
        logs.refused(a, 503);
        let (who, batch) = logs.next_batch(10).unwrap();
        assert_eq!(who, "a");
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].invocation.result, 503);
        // Once the disk is back, the file holds the amended record, and b ships too.
        std::fs::create_dir(dir.path().join("gone")).unwrap();
        logs.persist().unwrap();
        assert!(logs.durable(b, Duration::ZERO).await);
        let text = std::fs::read_to_string(&path).unwrap();
        let first: SpoolEntry = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!((first.seq, first.invocation.result), (a, 503));
        let (who, _) = logs.next_batch(10).unwrap();
        assert_eq!(who, "a");
        lock(&logs.inner).spool.remove(&[a]);
        assert_eq!(logs.next_batch(10).unwrap().0, "b");
    }

    #[test]
    fn a_settled_record_pushed_out_of_a_full_spool_leaves_no_mark() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogSpool::open(&dir.path().join(SPOOL_FILE), 1).unwrap();
        let a = logs.record(inv("a"));
        logs.refused(a, 503);
        assert!(lock(&logs.inner).settled.contains(&a));
        logs.record(inv("b"));
        assert!(lock(&logs.inner).settled.is_empty());
    }
}
