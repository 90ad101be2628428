//! The audit writer: one background thread owns the file; callers hand it events through a
//! bounded channel so that recording never waits for the disk in the common case.
//!
//! **Invariant:** an event accepted by [`AuditLog::record`] is never dropped by the log. When
//! the queue is full, `record` blocks until the writer makes room (back-pressure rather than
//! loss). `record` returning `Ok` means *queued*; [`AuditLog::flush`] returning `Ok` means
//! everything recorded before it is written and `fdatasync`ed. After a write or sync failure
//! the writer stops and every later call returns [`AuditError::WriterFailed`]: a caller that
//! must not act unaudited (key delivery) treats that as "refuse the request".

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use super::{
    check_line, encode_line, io, AuditError, AuditEvent, GENESIS_HASH, MAX_LINE_BYTES,
    MAX_NODE_ID_BYTES,
};

/// Capacity of the queue between callers and the writer thread.
pub const AUDIT_QUEUE_CAPACITY: usize = 4096;

/// Most messages handled between two syncs: a batch is whatever is queued, up to this.
pub const AUDIT_BATCH_MAX: usize = 512;

/// Buffer between the writer and the file.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Why the writer stopped: the operation and the I/O error kind (no paths, no content).
type Failure = (&'static str, ErrorKind);

enum Msg {
    Record(AuditEvent),
    /// Reply once everything queued before this message is synced.
    Flush(SyncSender<Result<(), Failure>>),
}

/// Where the chain continues.
struct ChainHead {
    next_seq: u64,
    prev: [u8; 32],
    last_ts_ms: u64,
}

/// A node's audit log, open for appending. Dropping it flushes and syncs what was recorded.
pub struct AuditLog {
    tx: Option<SyncSender<Msg>>,
    worker: Option<JoinHandle<()>>,
    failure: Arc<OnceLock<Failure>>,
    path: PathBuf,
    records_at_open: u64,
    truncated_tail_bytes: u64,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("records_at_open", &self.records_at_open)
            .field("failed", &self.failure.get().is_some())
            .finish()
    }
}

impl AuditLog {
    /// Opens (or creates) the audit file at `path` and starts the writer thread.
    ///
    /// An existing file's last complete line is checked against its own hash and the chain
    /// continues from it (use [`super::verify_file`] for the whole file). An incomplete final
    /// line left by a crash is cut off; [`AuditLog::truncated_tail_bytes`] tells how much.
    /// `clock` gives Unix milliseconds; it is called on the writer thread, and timestamps are
    /// kept non-decreasing.
    pub fn open(
        path: impl AsRef<Path>,
        node_id: &str,
        clock: impl Fn() -> u64 + Send + 'static,
    ) -> Result<AuditLog, AuditError> {
        if node_id.is_empty() || node_id.len() > MAX_NODE_ID_BYTES {
            return Err(AuditError::BadNodeId);
        }
        let path = path.as_ref().to_path_buf();
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io("opening the audit file"))?;
        if !existed {
            sync_parent_dir(&path)?;
        }
        let (head, truncated_tail_bytes) = resume(&mut file)?;
        let records_at_open = head.next_seq - 1;

        let (tx, rx) = mpsc::sync_channel(AUDIT_QUEUE_CAPACITY);
        let failure = Arc::new(OnceLock::new());
        let thread_failure = Arc::clone(&failure);
        let node = node_id.to_owned();
        let worker = std::thread::Builder::new()
            .name("sealkm-audit".into())
            .spawn(move || run(rx, file, node, head, clock, &thread_failure))
            .map_err(io("starting the audit writer"))?;
        Ok(AuditLog {
            tx: Some(tx),
            worker: Some(worker),
            failure,
            path,
            records_at_open,
            truncated_tail_bytes,
        })
    }

    /// Queues `event`. Does not wait for the disk unless the queue is full, in which case it
    /// blocks until there is room: audit records are never dropped. Text fields longer than
    /// [`super::MAX_FIELD_BYTES`] are cut.
    pub fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        let tx = self.tx.as_ref().ok_or_else(|| self.failed())?;
        match tx.try_send(Msg::Record(event.bounded())) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(msg)) => tx.send(msg).map_err(|_| self.failed()),
            Err(TrySendError::Disconnected(_)) => Err(self.failed()),
        }
    }

    /// Waits until every event recorded before this call is written and synced.
    pub fn flush(&self) -> Result<(), AuditError> {
        let tx = self.tx.as_ref().ok_or_else(|| self.failed())?;
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        tx.send(Msg::Flush(reply_tx)).map_err(|_| self.failed())?;
        match reply_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err((op, kind))) => Err(AuditError::WriterFailed { op, kind }),
            Err(_) => Err(self.failed()),
        }
    }

    /// The file this log appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of records the file held when it was opened.
    pub fn records_at_open(&self) -> u64 {
        self.records_at_open
    }

    /// Bytes of an incomplete final line removed at open (0 normally); worth a warning.
    pub fn truncated_tail_bytes(&self) -> u64 {
        self.truncated_tail_bytes
    }

    fn failed(&self) -> AuditError {
        let (op, kind) = self
            .failure
            .get()
            .copied()
            .unwrap_or(("running", ErrorKind::Other));
        AuditError::WriterFailed { op, kind }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain the queue, sync, and exit.
        drop(self.tx.take());
        if let Some(worker) = self.worker.take() {
            // A panicked writer has nothing left to flush; there is no one to report to.
            let _ = worker.join();
        }
    }
}

fn sync_parent_dir(path: &Path) -> Result<(), AuditError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing the audit directory"))
}

/// Finds the chain head from the file's tail, cutting an incomplete final line.
fn resume(file: &mut File) -> Result<(ChainHead, u64), AuditError> {
    let empty = ChainHead {
        next_seq: 1,
        prev: GENESIS_HASH,
        last_ts_ms: 0,
    };
    let len = file.metadata().map_err(io("reading audit metadata"))?.len();
    if len == 0 {
        return Ok((empty, 0));
    }
    // An incomplete line and the last complete line each fit in MAX_LINE_BYTES.
    let window = len.min(2 * MAX_LINE_BYTES as u64 + 1);
    let start = len - window;
    let mut buf = vec![0u8; usize::try_from(window).unwrap_or(0)];
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_exact(&mut buf))
        .map_err(io("reading the audit tail"))?;
    let complete_len = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let partial = (buf.len() - complete_len) as u64;
    if partial >= MAX_LINE_BYTES as u64 || (complete_len == 0 && start > 0) {
        return Err(AuditError::CorruptTail {
            reason: "final line is too long",
        });
    }
    if partial > 0 {
        file.set_len(len - partial)
            .and_then(|_| file.sync_all())
            .map_err(io("cutting an incomplete audit line"))?;
    }
    if complete_len == 0 {
        return Ok((empty, partial));
    }
    let complete = &buf[..complete_len - 1];
    let line_start = complete
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    if line_start == 0 && start > 0 {
        return Err(AuditError::CorruptTail {
            reason: "last line is too long",
        });
    }
    let info =
        check_line(&complete[line_start..]).map_err(|reason| AuditError::CorruptTail { reason })?;
    if info.seq == 0 || info.seq == u64::MAX {
        return Err(AuditError::CorruptTail {
            reason: "seq is out of range",
        });
    }
    let head = ChainHead {
        next_seq: info.seq + 1,
        prev: info.hash,
        last_ts_ms: info.ts_ms,
    };
    Ok((head, partial))
}

/// The writer thread: batches of queued messages, each batch written, flushed and synced
/// before its flush requests are answered.
fn run(
    rx: Receiver<Msg>,
    file: File,
    node: String,
    mut head: ChainHead,
    clock: impl Fn() -> u64,
    failure: &OnceLock<Failure>,
) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
    // Blocks for the first message of each batch; ends when every sender is gone and the
    // queue is drained.
    while let Ok(first) = rx.recv() {
        let mut waiters = Vec::new();
        let mut dirty = false;
        let mut result: Result<(), Failure> = Ok(());
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(event) => {
                    if result.is_ok() {
                        result = append(&mut out, &node, &mut head, &clock, &event);
                        dirty = true;
                    }
                }
                Msg::Flush(reply) => waiters.push(reply),
            }
            handled += 1;
            if handled < AUDIT_BATCH_MAX {
                next = rx.try_recv().ok();
            }
        }
        if result.is_ok() && dirty {
            result = out
                .flush()
                .map_err(|e| ("writing", e.kind()))
                .and_then(|()| out.get_ref().sync_data().map_err(|e| ("syncing", e.kind())));
        }
        if let Err(f) = result {
            // Record the cause before the channel closes, so callers can report it.
            let _ = failure.set(f);
        }
        for waiter in waiters {
            // A waiter that gave up is not an error.
            let _ = waiter.send(result);
        }
        if result.is_err() {
            return;
        }
    }
}

fn append(
    out: &mut BufWriter<File>,
    node: &str,
    head: &mut ChainHead,
    clock: &impl Fn() -> u64,
    event: &AuditEvent,
) -> Result<(), Failure> {
    let ts_ms = clock().max(head.last_ts_ms);
    let (line, hash) = encode_line(head.next_seq, ts_ms, node, &head.prev, event)
        .map_err(|_| ("encoding", ErrorKind::InvalidData))?;
    if line.len() > MAX_LINE_BYTES {
        return Err(("encoding", ErrorKind::InvalidData));
    }
    out.write_all(&line).map_err(|e| ("writing", e.kind()))?;
    head.next_seq += 1;
    head.prev = hash;
    head.last_ts_ms = ts_ms;
    Ok(())
}
