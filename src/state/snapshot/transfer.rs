//! Moving a snapshot file in bounded chunks: [`read_chunk`] on the sender, and
//! [`SnapshotReceiver`], which writes in-order chunks to `recv-<index>.tmp` and installs the
//! file as `snap-<index>.bin` only once it verified it against the descriptor and itself.
//! The network side (who asks for which chunk) is the caller's.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{
    corrupt, snapshot_path, sync_dir, verify_snapshot, SnapshotDescriptor, SnapshotError,
    MAX_CHUNK_BYTES, MIN_FILE_BYTES,
};

pub(super) fn receive_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("recv-{index}.tmp"))
}

/// Up to `min(max_len, MAX_CHUNK_BYTES)` bytes of `snap-<index>.bin` from `offset`; empty
/// past the end.
pub fn read_chunk(
    dir: &Path,
    index: u64,
    offset: u64,
    max_len: usize,
) -> Result<Vec<u8>, SnapshotError> {
    let mut file = File::open(snapshot_path(dir, index))?;
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
/// `snap-<index>.bin`. Dropped before `finish`, it deletes the partial file. One receiver per
/// index at a time.
pub struct SnapshotReceiver {
    dir: PathBuf,
    desc: SnapshotDescriptor,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    received: u64,
}

impl SnapshotReceiver {
    pub fn new(dir: &Path, desc: &SnapshotDescriptor) -> Result<Self, SnapshotError> {
        if desc.size < MIN_FILE_BYTES {
            return Err(corrupt(format!(
                "descriptor size {} is below the smallest snapshot",
                desc.size
            )));
        }
        fs::create_dir_all(dir)?;
        let tmp = receive_path(dir, desc.index);
        let file = File::create(&tmp)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            desc: *desc,
            tmp,
            out: Some(BufWriter::with_capacity(256 * 1024, file)),
            received: 0,
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
        out.write_all(data)?;
        self.received = end;
        Ok(())
    }

    /// Checks the size, the file's own checksum and structure, and that both its trailer and
    /// header match the descriptor; then syncs and renames it to `snap-<index>.bin`.
    pub fn finish(mut self) -> Result<PathBuf, SnapshotError> {
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
        Ok(path)
    }
}

impl Drop for SnapshotReceiver {
    fn drop(&mut self) {
        // After a successful finish the file was renamed and this is a no-op.
        let _ = fs::remove_file(&self.tmp);
    }
}
