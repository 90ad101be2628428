//! The audit writer: one background thread owns the file; callers hand it events through a
//! bounded channel and never wait for room in it.
//!
//! **Invariants:**
//! - [`AuditLog::record`] resolves `Ok` only once its event is written and `fdatasync`ed (the
//!   writer syncs a batch of whatever is queued, then acknowledges every record of it): a key
//!   delivery waits for it and is refused when it fails.
//! - No caller blocks: a full queue refuses at once with [`AuditError::Unavailable`] (a key
//!   delivery is then refused; nothing is dropped silently). [`AuditLog::submit`] queues
//!   without waiting for the disk. [`AuditLog::queue`] is for records nobody waits for
//!   (changes already committed, repeats of an exposure already on disk): they are written at
//!   once and synced within [`LAZY_SYNC`] (or with the next waited-for record), so they cost
//!   the disk one fdatasync per interval, not one each.
//! - Exits flush first: [`flush_open_logs`] syncs what every open log has queued; it runs at
//!   process exit (`atexit`, so `std::process::exit` on a fatal path and a return from `main`
//!   both flush), and a fatal path may call it itself. Dropping an [`AuditLog`] flushes too.
//! - After a write or sync failure the writer stops and every later call returns
//!   [`AuditError::WriterFailed`].

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::exposure::{self, ExposureSet, GENERATION_ENTRIES};
use super::{
    check_line, encode_line, io, AuditError, AuditEvent, GENESIS_HASH, MAX_LINE_BYTES,
    MAX_NODE_ID_BYTES,
};

/// Capacity of the queue between callers and the writer thread.
pub const AUDIT_QUEUE_CAPACITY: usize = 4096;

/// Most messages handled between two syncs: a batch is whatever is queued, up to this.
pub const AUDIT_BATCH_MAX: usize = 512;

/// How long [`flush_open_logs`] waits for each log at exit.
pub const EXIT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a record nobody waits for ([`AuditLog::queue`], a repeated exposure) stays
/// written but unsynced: such records share one fdatasync per this interval (or the next
/// waited-for record's) instead of costing one each.
pub const LAZY_SYNC: Duration = Duration::from_millis(10);

/// Buffer between the writer and the file.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Why the writer stopped: the operation and the I/O error kind (no paths, no content).
type Failure = (&'static str, ErrorKind);

/// Called on the writer thread after each batch is synced, before its records are
/// acknowledged (a test seam: it can hold a batch "not yet acknowledged").
pub type SyncHook = Box<dyn Fn() + Send + 'static>;

enum Msg {
    /// An event and, if someone waits, where to say it is durable.
    Record(AuditEvent, Option<oneshot::Sender<Result<(), Failure>>>),
    /// Reply once everything queued before this message is synced.
    Flush(SyncSender<Result<(), Failure>>),
}

/// Where the chain continues.
struct ChainHead {
    next_seq: u64,
    prev: [u8; 32],
    last_ts_ms: u64,
}

/// Every open log's queue, for [`flush_open_logs`].
static OPEN_LOGS: Mutex<Vec<(u64, SyncSender<Msg>)>> = Mutex::new(Vec::new());
static NEXT_LOG_ID: AtomicU64 = AtomicU64::new(1);
static AT_EXIT: Once = Once::new();

/// Flushes (writes and syncs) what every open audit log has queued, waiting at most
/// [`EXIT_FLUSH_TIMEOUT`] for each; returns how many logs confirmed. For exit paths: it runs
/// by itself at process exit, and a fatal path may call it before `std::process::exit`.
pub fn flush_open_logs() -> usize {
    let queues: Vec<SyncSender<Msg>> = OPEN_LOGS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(_, tx)| tx.clone())
        .collect();
    queues
        .iter()
        .filter(|tx| flush_queue(tx, EXIT_FLUSH_TIMEOUT).is_ok())
        .count()
}

extern "C" fn flush_at_exit() {
    // Never unwind into the C runtime.
    let _ = std::panic::catch_unwind(flush_open_logs);
}

/// Sends a flush request without blocking past `timeout` and waits for its answer.
fn flush_queue(tx: &SyncSender<Msg>, timeout: Duration) -> Result<(), Option<Failure>> {
    let deadline = Instant::now() + timeout;
    let (reply_tx, reply_rx) = mpsc::sync_channel(1);
    let mut msg = Msg::Flush(reply_tx);
    loop {
        match tx.try_send(msg) {
            Ok(()) => break,
            Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                msg = m;
                // Only on exit paths: the writer is draining the queue.
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return Err(None),
        }
    }
    let left = deadline.saturating_duration_since(Instant::now());
    match reply_rx.recv_timeout(left) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(f)) => Err(Some(f)),
        Err(_) => Err(None),
    }
}

/// Resolves once its record is written and synced (`Ok`), or with the writer's failure.
/// Dropping it does not withdraw the record.
#[must_use = "a record is durable only once its Durable resolves"]
pub struct Durable {
    rx: oneshot::Receiver<Result<(), Failure>>,
    failure: Arc<OnceLock<Failure>>,
}

impl Future for Durable {
    type Output = Result<(), AuditError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Ok(()))) => Poll::Ready(Ok(())),
            Poll::Ready(Ok(Err((op, kind)))) => {
                Poll::Ready(Err(AuditError::WriterFailed { op, kind }))
            }
            Poll::Ready(Err(_)) => Poll::Ready(Err(failed(&self.failure))),
        }
    }
}

impl Durable {
    /// Blocks the calling thread until the record is durable (for threads outside async
    /// code: tests, tools).
    pub fn wait(self) -> Result<(), AuditError> {
        match self.rx.blocking_recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err((op, kind))) => Err(AuditError::WriterFailed { op, kind }),
            Err(_) => Err(failed(&self.failure)),
        }
    }
}

/// A node's audit log, open for appending. Dropping it flushes and syncs what was recorded.
pub struct AuditLog {
    tx: Option<SyncSender<Msg>>,
    worker: Option<JoinHandle<()>>,
    failure: Arc<OnceLock<Failure>>,
    path: PathBuf,
    records_at_open: u64,
    truncated_tail_bytes: u64,
    id: u64,
    /// Exposures whose record is synced ([`AuditLog::record_exposure`]).
    exposed: Mutex<ExposureSet>,
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
    /// Opens (or creates, mode 0600) the audit file at `path` and starts the writer thread.
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
        Self::open_with_sync_hook(path, node_id, clock, Box::new(|| {}))
    }

    /// Like [`AuditLog::open`], with `hook` called after every batch's sync and before its
    /// records are acknowledged.
    pub fn open_with_sync_hook(
        path: impl AsRef<Path>,
        node_id: &str,
        clock: impl Fn() -> u64 + Send + 'static,
        hook: SyncHook,
    ) -> Result<AuditLog, AuditError> {
        if node_id.is_empty() || node_id.len() > MAX_NODE_ID_BYTES {
            return Err(AuditError::BadNodeId);
        }
        let path = path.as_ref().to_path_buf();
        let existed = path.exists();
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io("opening the audit file"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io("making the audit file private"))?;
        }
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
            .spawn(move || run(rx, file, node, head, clock, &thread_failure, hook))
            .map_err(io("starting the audit writer"))?;
        let id = NEXT_LOG_ID.fetch_add(1, Ordering::Relaxed);
        OPEN_LOGS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, tx.clone()));
        AT_EXIT.call_once(|| {
            // SAFETY: registers a plain `extern "C"` function with no arguments; it catches
            // every panic itself.
            unsafe {
                libc::atexit(flush_at_exit);
            }
        });
        Ok(AuditLog {
            tx: Some(tx),
            worker: Some(worker),
            failure,
            path,
            records_at_open,
            truncated_tail_bytes,
            id,
            exposed: Mutex::new(ExposureSet::new(GENERATION_ENTRIES)),
        })
    }

    /// Records `event` and resolves once it is written and synced: a key delivery awaits this
    /// before it answers. Never blocks: a full queue is [`AuditError::Unavailable`] at once.
    /// Text fields longer than [`super::MAX_FIELD_BYTES`] are cut.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        self.submit(event)?.await
    }

    /// Records a delivery of key material (`event`) and resolves once a record of this
    /// exposure is synced: the first time this process delivers the same thing to the same
    /// principal it waits for this record's sync, like [`AuditLog::record`]; a repeat of an
    /// exposure already on disk is queued ([`AuditLog::queue`]) and not waited for.
    /// See [`super::exposure`].
    pub async fn record_exposure(&self, event: AuditEvent) -> Result<(), AuditError> {
        if self.failure.get().is_some() {
            return Err(self.failed());
        }
        let key = exposure::key_of(&event);
        if self.exposed_set().contains(&key) {
            // A record of this exposure is on disk already: this one rides a lazy sync.
            return self.queue(event);
        }
        self.submit(event)?.await?;
        self.exposed_set().insert(key);
        Ok(())
    }

    /// Queues `event` for a record nobody waits for (a committed change, whose own record is
    /// the Raft log): written at once, synced within [`LAZY_SYNC`] or with the next record
    /// someone waits for, and by every exit. Never blocks: a full queue is
    /// [`AuditError::Unavailable`].
    pub fn queue(&self, event: AuditEvent) -> Result<(), AuditError> {
        let tx = self.tx.as_ref().ok_or_else(|| self.failed())?;
        match tx.try_send(Msg::Record(event.bounded(), None)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) if self.failure.get().is_none() => {
                Err(AuditError::Unavailable)
            }
            Err(_) => Err(self.failed()),
        }
    }

    fn exposed_set(&self) -> std::sync::MutexGuard<'_, ExposureSet> {
        self.exposed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `event` without waiting for the disk; the returned [`Durable`] resolves once it
    /// is synced (drop it if nobody needs to wait: the record stays queued, and exits flush).
    /// Never blocks: a full queue is [`AuditError::Unavailable`].
    pub fn submit(&self, event: AuditEvent) -> Result<Durable, AuditError> {
        let tx = self.tx.as_ref().ok_or_else(|| self.failed())?;
        let (done_tx, done_rx) = oneshot::channel();
        match tx.try_send(Msg::Record(event.bounded(), Some(done_tx))) {
            Ok(()) => Ok(Durable {
                rx: done_rx,
                failure: Arc::clone(&self.failure),
            }),
            Err(TrySendError::Full(_)) => {
                if self.failure.get().is_some() {
                    return Err(self.failed());
                }
                Err(AuditError::Unavailable)
            }
            Err(TrySendError::Disconnected(_)) => Err(self.failed()),
        }
    }

    /// Waits (blocking the thread) until every event recorded before this call is written and
    /// synced. For exit paths and tools, not for async workers.
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
        failed(&self.failure)
    }
}

fn failed(failure: &OnceLock<Failure>) -> AuditError {
    let (op, kind) = failure
        .get()
        .copied()
        .unwrap_or(("running", ErrorKind::Other));
    AuditError::WriterFailed { op, kind }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // The registry's sender must go too, or the writer would never see the queue close.
        OPEN_LOGS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != self.id);
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
    hook: SyncHook,
) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
    // Records written but not yet synced, none of them waited for: synced by this deadline.
    let mut lazy_until: Option<Instant> = None;
    // Blocks for the first message of each batch (or until a lazy sync is due); ends when
    // every sender is gone and the queue is drained.
    loop {
        let first = match lazy_until {
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => return,
            },
            Some(due) => match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    lazy_until = None;
                    match sync(&mut out) {
                        Ok(()) => hook(),
                        Err(f) => {
                            let _ = failure.set(f);
                            return;
                        }
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if let Err(f) = sync(&mut out) {
                        let _ = failure.set(f);
                    }
                    return;
                }
            },
        };
        let mut waiters = Vec::new();
        let mut acks = Vec::new();
        let mut dirty = false;
        let mut result: Result<(), Failure> = Ok(());
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(event, ack) => {
                    if result.is_ok() {
                        result = append(&mut out, &node, &mut head, &clock, &event);
                        dirty = true;
                    }
                    acks.extend(ack);
                }
                Msg::Flush(reply) => waiters.push(reply),
            }
            handled += 1;
            if handled < AUDIT_BATCH_MAX {
                next = rx.try_recv().ok();
            }
        }
        if result.is_ok() && dirty && acks.is_empty() && waiters.is_empty() {
            // Nobody waits for these: written now (a crash of this process loses nothing),
            // synced lazily with whatever follows.
            result = out.flush().map_err(|e| ("writing", e.kind()));
            if result.is_ok() {
                lazy_until.get_or_insert_with(|| Instant::now() + LAZY_SYNC);
                continue;
            }
        }
        dirty |= lazy_until.take().is_some();
        if result.is_ok() && dirty {
            result = sync(&mut out);
        }
        if let Err(f) = result {
            // Record the cause before the channel closes, so callers can report it.
            let _ = failure.set(f);
        }
        if result.is_ok() && dirty {
            hook();
        }
        for ack in acks {
            // A caller that stopped waiting is not an error.
            let _ = ack.send(result);
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

/// Writes what is buffered and syncs the file's data.
fn sync(out: &mut BufWriter<File>) -> Result<(), Failure> {
    out.flush().map_err(|e| ("writing", e.kind()))?;
    out.get_ref().sync_data().map_err(|e| ("syncing", e.kind()))
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
