//! Moving a snapshot file in bounded chunks: [`read_chunk`] on the sender, and
//! [`SnapshotReceiver`], which writes in-order chunks to `recv-<index>.tmp` and installs the
//! file as `snap-<index>.bin` only once it verified it against the descriptor and itself.
//! The network side (who asks for which chunk) is the caller's.
//!
//! A receive cut short (a dead sender, a timeout, a restart) keeps its partial file next to
//! the descriptor it belongs to (`recv-<index>.desc`): a new receiver for the same
//! descriptor continues at [`SnapshotReceiver::received`] instead of offset 0.
//!
//! A file being served is leased: every [`read_chunk`] touches `snap-<index>.lease`, and
//! pruning keeps a snapshot whose lease is younger than [`SERVE_LEASE`], so a follower's
//! fetch is not cut by the snapshots its sender writes meanwhile.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{
    corrupt, parse_name, snapshot_path, sync_dir, verify_snapshot, SnapshotDescriptor,
    SnapshotError, MAX_CHUNK_BYTES, MIN_FILE_BYTES,
};

/// How long a served snapshot file is kept from pruning after its last chunk was read.
pub const SERVE_LEASE: Duration = Duration::from_secs(300);

pub(super) fn receive_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("recv-{index}.tmp"))
}

/// The descriptor a partial `recv-<index>.tmp` belongs to.
fn receive_desc_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("recv-{index}.desc"))
}

pub(super) fn lease_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("snap-{index}.lease"))
}

/// Whether snapshot `index` was served within [`SERVE_LEASE`] of `now` (a lease time in the
/// future, after a clock step back, counts as recent).
pub(super) fn leased(dir: &Path, index: u64, now: SystemTime) -> bool {
    let Ok(touched) = fs::metadata(lease_path(dir, index)).and_then(|m| m.modified()) else {
        return false;
    };
    now.duration_since(touched)
        .map_or(true, |age| age < SERVE_LEASE)
}

/// Records that snapshot `index` is being served now.
fn touch_lease(dir: &Path, index: u64) -> std::io::Result<()> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lease_path(dir, index))?
        .set_modified(SystemTime::now())
}

/// Deletes partial receives (`recv-<i>.tmp`, `recv-<i>.desc`) of indexes below `index`:
/// a newer snapshot is installed, they will not be resumed.
pub(super) fn prune_received(dir: &Path, index: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix("recv-") else {
            continue;
        };
        let as_snap = format!("snap-{rest}");
        let old = parse_name(&as_snap, "tmp")
            .or_else(|| parse_name(&as_snap, "desc"))
            .is_some_and(|i| i < index);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Up to `min(max_len, MAX_CHUNK_BYTES)` bytes of `snap-<index>.bin` from `offset`; empty
/// past the end. Serving a chunk renews the file's lease (see [`SERVE_LEASE`]).
pub fn read_chunk(
    dir: &Path,
    index: u64,
    offset: u64,
    max_len: usize,
) -> Result<Vec<u8>, SnapshotError> {
    let mut file = File::open(snapshot_path(dir, index))?;
    if let Err(e) = touch_lease(dir, index) {
        tracing::warn!(error = %e, index, "cannot renew the lease of a served snapshot");
    }
    let len = file.metadata()?.len();
    if offset >= len {
        return Ok(Vec::new());
    }
    let n = (max_len.min(MAX_CHUNK_BYTES) as u64).min(len - offset);
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(n as usize);
    file.take(n).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Receives a snapshot described by a [`SnapshotDescriptor`] as in-order chunks into
/// `dir/recv-<index>.tmp`; [`SnapshotReceiver::finish`] verifies it and makes it
/// `snap-<index>.bin`. Dropped before `finish`, it keeps the partial file for a later
/// receiver of the same descriptor; a failed `finish` deletes it. One receiver per index at a
/// time.
pub struct SnapshotReceiver {
    dir: PathBuf,
    desc: SnapshotDescriptor,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    received: u64,
    /// Delete the partial file on drop (set once `finish` starts: a bad file is not resumed).
    discard: bool,
}

impl SnapshotReceiver {
    /// Starts receiving, or resumes the partial file an earlier receiver of the same
    /// descriptor left: [`SnapshotReceiver::received`] is where to continue.
    pub fn new(dir: &Path, desc: &SnapshotDescriptor) -> Result<Self, SnapshotError> {
        if desc.size < MIN_FILE_BYTES {
            return Err(corrupt(format!(
                "descriptor size {} is below the smallest snapshot",
                desc.size
            )));
        }
        fs::create_dir_all(dir)?;
        let tmp = receive_path(dir, desc.index);
        let side = receive_desc_path(dir, desc.index);
        let same_desc = fs::read(&side)
            .ok()
            .and_then(|b| SnapshotDescriptor::decode(&b).ok())
            .is_some_and(|d| d == *desc);
        let partial = fs::metadata(&tmp).map(|m| m.len()).ok();
        let (file, received) = match partial {
            Some(len) if same_desc && len <= desc.size => {
                (OpenOptions::new().append(true).open(&tmp)?, len)
            }
            _ => {
                // The descriptor goes away before the data it described.
                match fs::remove_file(&side) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
                let file = File::create(&tmp)?;
                fs::write(&side, desc.encode())?;
                (file, 0)
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            desc: *desc,
            tmp,
            out: Some(BufWriter::with_capacity(256 * 1024, file)),
            received,
            discard: false,
        })
    }

    /// Bytes received so far: the offset the next chunk must start at.
    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn is_complete(&self) -> bool {
        self.received == self.desc.size
    }

    /// Appends a chunk that starts exactly where the previous one ended.
    pub fn write_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), SnapshotError> {
        if offset != self.received {
            return Err(SnapshotError::OutOfOrder {
                offset,
                expected: self.received,
            });
        }
        if data.len() > MAX_CHUNK_BYTES {
            return Err(SnapshotError::TooLarge(format!(
                "chunk of {} bytes (limit {MAX_CHUNK_BYTES})",
                data.len()
            )));
        }
        let end = self.received + data.len() as u64;
        if end > self.desc.size {
            return Err(SnapshotError::TooLarge(format!(
                "chunk ends at {end}, beyond the snapshot size {}",
                self.desc.size
            )));
        }
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| corrupt("receiver already finished"))?;
        if let Err(e) = out.write_all(data) {
            // What reached the file is unknown: do not resume from it.
            self.discard = true;
            return Err(e.into());
        }
        self.received = end;
        Ok(())
    }

    /// Checks the size, the file's own checksum and structure, and that both its trailer and
    /// header match the descriptor; then syncs and renames it to `snap-<index>.bin`. On any
    /// failure the partial file is deleted (the next receiver starts over).
    pub fn finish(mut self) -> Result<PathBuf, SnapshotError> {
        self.discard = true;
        if !self.is_complete() {
            return Err(corrupt(format!(
                "incomplete: {} of {} bytes",
                self.received, self.desc.size
            )));
        }
        let out = self
            .out
            .take()
            .ok_or_else(|| corrupt("receiver already finished"))?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        let v = verify_snapshot(&self.tmp)?;
        if v.size != self.desc.size || v.sha256 != self.desc.sha256 {
            return Err(SnapshotError::ChecksumMismatch);
        }
        if v.meta.index != self.desc.index {
            return Err(SnapshotError::WrongIndex {
                expected: self.desc.index,
                found: v.meta.index,
            });
        }
        if v.meta.term != self.desc.term {
            return Err(corrupt(format!(
                "term {} in the file, descriptor says {}",
                v.meta.term, self.desc.term
            )));
        }
        let path = snapshot_path(&self.dir, self.desc.index);
        fs::rename(&self.tmp, &path)?;
        sync_dir(&self.dir)?;
        prune_received(&self.dir, self.desc.index);
        Ok(path)
    }
}

impl Drop for SnapshotReceiver {
    fn drop(&mut self) {
        if self.discard {
            // After a successful finish the file was renamed and this removes the
            // descriptor only.
            let _ = fs::remove_file(&self.tmp);
            let _ = fs::remove_file(receive_desc_path(&self.dir, self.desc.index));
        } else if let Some(out) = self.out.as_mut() {
            // Kept for a resume: what is buffered belongs to the partial file.
            let _ = out.flush();
        }
    }
}
