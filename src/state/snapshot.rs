//! State machine snapshots as files (ARCHITECTURE §5 snapshots): what a lagging or new node
//! installs instead of replaying a compacted log.
//!
//! This module owns the snapshot FILE: its format, writing one from a [`StateMachine`]
//! ([`write_snapshot`]), reading it back in bounded chunks for transfer ([`read_chunk`]),
//! receiving chunks into a verified file ([`SnapshotReceiver`]), and replacing a state with a
//! file's contents atomically for readers ([`StateMachine::restore_snapshot`]: a fresh tree
//! generation swapped in whole, crash-safe through a restore marker,
//! see `restore`). It does not move bytes between nodes and does not touch the Raft log: what
//! travels inside raft's `Snapshot.data` is only the small [`SnapshotDescriptor`].
//!
//! The state grows without bound, so a snapshot is never a whole-state value in memory: it is
//! streamed record by record, and every read is bounded.
//!
//! File `snap-<index>.bin` (integers big-endian):
//!
//! ```text
//! header   "SEALKMSN" | format version u32 | meta_len u32 | SnapshotMetadata (protobuf)
//!          | SHA-256(header so far)                         -- read_meta verifies this alone
//! records  { 0x01 | name_len u32 | tree name | key_len u32 | key | value_len u32 | value }*
//! end      0x00 | record count u64
//! trailer  SHA-256(everything before the trailer)           -- == SnapshotDescriptor.sha256
//! ```
//!
//! Format version 1, or 2 for a state whose outbox has the subscription-count layout (the same
//! file: a binary that knows only 1 refuses it rather than misread the state, see
//! [`super::outbox`]).
//!
//! Every sled tree of the state's current generation is included under its logical name
//! (sorted, so equal states give equal files); reserved trees (`__sealkm_*`: the restore
//! marker, other generations) never are. The applied index is a record of the `meta` tree
//! and must equal the header's index.

#[cfg(test)]
mod generations_tests;
mod restore;
#[cfg(test)]
mod tests;
mod transfer;

pub use transfer::{read_chunk, SnapshotReceiver, SERVE_LEASE};

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use protobuf::Message as _;
use raft::eraftpb::SnapshotMetadata;
use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::machine::trees::{tree_handle, RESERVED_PREFIX};
use super::machine::{StateError, StateMachine, APPLIED_KEY, META_TREE};
use super::outbox;

/// Largest chunk [`read_chunk`] returns and [`SnapshotReceiver::write_chunk`] accepts.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;
/// Largest key or value a snapshot may hold; a longer length in a file is corruption.
pub const MAX_RECORD_BYTES: u32 = 64 * 1024 * 1024;
/// Largest tree name.
const MAX_TREE_NAME_BYTES: u32 = 1024;
/// Largest encoded `SnapshotMetadata` (a conf state of a few node ids).
const MAX_META_BYTES: u32 = 64 * 1024;
const MAGIC: &[u8; 8] = b"SEALKMSN";
const FORMAT_VERSION: u32 = 1;
/// The same format, for a state whose outbox has the subscription-count layout
/// ([`super::outbox`]): a binary older than that layout would misread such a state, and
/// refuses the file for its unknown version instead (it must be upgraded to install it).
const FORMAT_VERSION_COUNTED_SUBSCRIPTIONS: u32 = 2;
const TAG_RECORD: u8 = 1;
const TAG_END: u8 = 0;
const HASH_LEN: usize = 32;
/// Smallest possible file: empty metadata, no record.
const MIN_FILE_BYTES: u64 = (MAGIC.len() + 4 + 4 + HASH_LEN + 1 + 8 + HASH_LEN) as u64;
/// Largest encoded descriptor (four fields, the hash dominates).
const MAX_DESCRIPTOR_BYTES: usize = 128;

#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("snapshot I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
    #[error("snapshot checksum mismatch")]
    ChecksumMismatch,
    #[error("snapshot index mismatch: expected {expected}, found {found}")]
    WrongIndex { expected: u64, found: u64 },
    #[error("snapshot format version {0} is unknown to this binary")]
    UnknownVersion(u32),
    #[error("snapshot chunk at offset {offset}, expected offset {expected}")]
    OutOfOrder { offset: u64, expected: u64 },
    #[error("snapshot too large: {0}")]
    TooLarge(String),
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<sled::Error> for SnapshotError {
    fn from(e: sled::Error) -> Self {
        SnapshotError::State(StateError::Store(e))
    }
}

fn corrupt(why: impl Into<String>) -> SnapshotError {
    SnapshotError::Corrupt(why.into())
}

/// What a snapshot file is, small enough to travel inside raft's `Snapshot.data`: the
/// receiver fetches `size` bytes in chunks and checks them against `sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDescriptor {
    pub index: u64,
    pub term: u64,
    /// File size in bytes, trailer included.
    pub size: u64,
    /// The file's trailer: SHA-256 of every byte before it.
    pub sha256: [u8; 32],
}

impl SnapshotDescriptor {
    /// The bincode (standard configuration) encoding of the descriptor, written by hand so
    /// that it cannot fail: four fields, varint integers, the hash as 32 raw octets.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 * 9 + 9 + HASH_LEN);
        for v in [self.index, self.term, self.size] {
            put_varint(&mut out, v);
        }
        out.extend_from_slice(&self.sha256);
        out
    }

    /// Decodes peer-supplied bytes: bounded, exact length, never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotError> {
        if bytes.len() > MAX_DESCRIPTOR_BYTES {
            return Err(corrupt("descriptor too long"));
        }
        let cfg = bincode::config::standard().with_limit::<MAX_DESCRIPTOR_BYTES>();
        let (d, used): (Self, usize) = bincode::serde::decode_from_slice(bytes, cfg)
            .map_err(|e| corrupt(format!("descriptor: {e}")))?;
        if used != bytes.len() {
            return Err(corrupt("trailing bytes after descriptor"));
        }
        Ok(d)
    }
}

/// bincode's variable-length integer (standard configuration, little endian).
fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if let Ok(v) = u16::try_from(v) {
        out.push(251);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = u32::try_from(v) {
        out.push(252);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// `dir/snap-<index>.bin`: where a complete, verified snapshot lives.
pub fn snapshot_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("snap-{index}.bin"))
}

/// Parses `snap-<index>.<ext>`.
fn parse_name(name: &str, ext: &str) -> Option<u64> {
    let digits = name
        .strip_prefix("snap-")?
        .strip_suffix(ext)?
        .strip_suffix('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// A writer that hashes what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    ctx: Context,
}

impl<W: Write> HashingWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.ctx.update(bytes);
        self.inner.write_all(bytes)
    }

    fn put_len(&mut self, len: usize, limit: u32, what: &str) -> Result<(), SnapshotError> {
        match u32::try_from(len) {
            Ok(l) if l <= limit => Ok(self.put(&l.to_be_bytes())?),
            _ => Err(SnapshotError::TooLarge(format!(
                "{what} of {len} bytes (limit {limit})"
            ))),
        }
    }
}

fn encode_meta(meta: &SnapshotMetadata) -> Result<Vec<u8>, SnapshotError> {
    meta.write_to_bytes()
        .map_err(|e| corrupt(format!("snapshot metadata: {e}")))
}

/// Writes the state as `dir/snap-<meta.index>.bin` (through a synced temporary file and a
/// rename) and prunes older snapshots, keeping the newest previous one. The state's applied
/// index must be `meta.index`, and nothing may be applied while this runs (it is checked
/// before and after).
pub fn write_snapshot(
    state: &StateMachine,
    dir: &Path,
    meta: &SnapshotMetadata,
) -> Result<SnapshotDescriptor, SnapshotError> {
    let applied = state.applied_index()?;
    if applied != meta.index {
        return Err(SnapshotError::WrongIndex {
            expected: meta.index,
            found: applied,
        });
    }
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("snap-{}.tmp", meta.index));
    let written = write_file(state, &tmp, meta).and_then(|d| {
        let applied = state.applied_index()?;
        if applied != meta.index {
            return Err(SnapshotError::WrongIndex {
                expected: meta.index,
                found: applied,
            });
        }
        Ok(d)
    });
    let desc = match written {
        Ok(d) => d,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    fs::rename(&tmp, snapshot_path(dir, meta.index))?;
    sync_dir(dir)?;
    prune(dir, meta.index);
    Ok(desc)
}

fn write_file(
    state: &StateMachine,
    path: &Path,
    meta: &SnapshotMetadata,
) -> Result<SnapshotDescriptor, SnapshotError> {
    let file = File::create(path)?;
    let mut w = HashingWriter {
        inner: BufWriter::with_capacity(256 * 1024, file),
        ctx: Context::new(&SHA256),
    };
    let meta_bytes = encode_meta(meta)?;
    // One generation for the whole file (a restore cannot swap it meanwhile).
    let trees = state.read();
    let version = if outbox::has_counted_layout(&trees.meta)? {
        FORMAT_VERSION_COUNTED_SUBSCRIPTIONS
    } else {
        FORMAT_VERSION
    };
    w.put(MAGIC)?;
    w.put(&version.to_be_bytes())?;
    w.put_len(meta_bytes.len(), MAX_META_BYTES, "snapshot metadata")?;
    w.put(&meta_bytes)?;
    let header_hash = w.ctx.clone().finish();
    w.put(header_hash.as_ref())?;

    let db = state.db();
    let mut count: u64 = 0;
    for (name, physical) in trees.names(db) {
        let tree = tree_handle(db, &physical)?;
        for kv in tree.iter() {
            let (k, v) = kv?;
            w.put(&[TAG_RECORD])?;
            w.put_len(name.len(), MAX_TREE_NAME_BYTES, "tree name")?;
            w.put(&name)?;
            w.put_len(k.len(), MAX_RECORD_BYTES, "key")?;
            w.put(&k)?;
            w.put_len(v.len(), MAX_RECORD_BYTES, "value")?;
            w.put(&v)?;
            count += 1;
        }
    }
    w.put(&[TAG_END])?;
    w.put(&count.to_be_bytes())?;
    let mut sha256 = [0u8; HASH_LEN];
    sha256.copy_from_slice(w.ctx.finish().as_ref());
    let mut out = w.inner;
    out.write_all(&sha256)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(SnapshotDescriptor {
        index: meta.index,
        term: meta.term,
        size: file.metadata()?.len(),
        sha256,
    })
}

/// Deletes `snap-*.bin` older than `index` except the newest of them and those being served
/// (lease younger than [`SERVE_LEASE`]), leftover `snap-*.tmp` older than `index`, stale
/// leases, and partial receives of older indexes. Best effort: the new snapshot is already
/// durable.
fn prune(dir: &Path, index: u64) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "snapshot pruning: cannot list the snapshot directory");
            return;
        }
    };
    let mut older = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(i) = parse_name(name, "bin").filter(|&i| i < index) {
            older.push(i);
        } else if parse_name(name, "tmp").is_some_and(|i| i < index) {
            let _ = fs::remove_file(entry.path());
        }
    }
    older.sort_unstable();
    older.pop(); // the newest previous snapshot stays
    let now = SystemTime::now();
    for i in older {
        if transfer::leased(dir, i, now) {
            tracing::debug!(index = i, "snapshot pruning: kept while it is being served");
            continue;
        }
        if let Err(e) = fs::remove_file(snapshot_path(dir, i)) {
            tracing::warn!(error = %e, index = i, "snapshot pruning: cannot delete");
        }
        let _ = fs::remove_file(transfer::lease_path(dir, i));
    }
    transfer::prune_received(dir, index);
}

/// One record of a snapshot file.
struct Record {
    tree: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

/// Streams a snapshot file: the header on open, then [`SnapshotReader::next_record`] until
/// `None`, which is only returned once the record count and the trailer checksum matched.
/// Every length is checked against its limit and the bytes left before any allocation.
struct SnapshotReader<R: Read> {
    r: R,
    ctx: Context,
    pos: u64,
    /// Where the trailer starts.
    body_end: u64,
    meta: SnapshotMetadata,
    records: u64,
    /// The checked trailer, once `next_record` returned `None`.
    trailer: [u8; HASH_LEN],
    done: bool,
}

impl<R: Read> SnapshotReader<R> {
    /// Reads and checks the header of a file of `len` bytes.
    fn new(r: R, len: u64) -> Result<Self, SnapshotError> {
        if len < MIN_FILE_BYTES {
            return Err(corrupt(format!("file of {len} bytes is too short")));
        }
        let mut s = Self {
            r,
            ctx: Context::new(&SHA256),
            pos: 0,
            body_end: len - HASH_LEN as u64,
            meta: SnapshotMetadata::default(),
            records: 0,
            trailer: [0u8; HASH_LEN],
            done: false,
        };
        if s.take(MAGIC.len() as u64)? != MAGIC {
            return Err(corrupt("not a snapshot file (bad magic)"));
        }
        let version = s.u32()?;
        if version != FORMAT_VERSION && version != FORMAT_VERSION_COUNTED_SUBSCRIPTIONS {
            return Err(SnapshotError::UnknownVersion(version));
        }
        let meta_len = s.len(MAX_META_BYTES, "snapshot metadata")?;
        let meta_bytes = s.take(meta_len)?;
        let expected = s.ctx.clone().finish();
        if s.take(HASH_LEN as u64)? != expected.as_ref() {
            return Err(SnapshotError::ChecksumMismatch);
        }
        s.meta = SnapshotMetadata::parse_from_bytes(&meta_bytes)
            .map_err(|e| corrupt(format!("snapshot metadata: {e}")))?;
        Ok(s)
    }

    /// Reads `n` hashed bytes of the body; `n` is checked against what is left first.
    fn take(&mut self, n: u64) -> Result<Vec<u8>, SnapshotError> {
        if n > self.body_end - self.pos {
            return Err(corrupt("a length runs past the end of the file"));
        }
        let n = usize::try_from(n).map_err(|_| corrupt("length overflows"))?;
        let mut buf = vec![0u8; n];
        self.r.read_exact(&mut buf)?;
        self.ctx.update(&buf);
        self.pos += n as u64;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        self.take(N as u64)?
            .try_into()
            .map_err(|_| corrupt("short read"))
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn len(&mut self, limit: u32, what: &str) -> Result<u64, SnapshotError> {
        let l = self.u32()?;
        if l > limit {
            return Err(corrupt(format!("{what} length {l} exceeds {limit}")));
        }
        Ok(u64::from(l))
    }

    fn next_record(&mut self) -> Result<Option<Record>, SnapshotError> {
        if self.done {
            return Ok(None);
        }
        let [tag] = self.array::<1>()?;
        match tag {
            TAG_RECORD => {
                let n = self.len(MAX_TREE_NAME_BYTES, "tree name")?;
                let tree = self.take(n)?;
                let n = self.len(MAX_RECORD_BYTES, "key")?;
                let key = self.take(n)?;
                let n = self.len(MAX_RECORD_BYTES, "value")?;
                let value = self.take(n)?;
                self.records += 1;
                Ok(Some(Record { tree, key, value }))
            }
            TAG_END => {
                let count = u64::from_be_bytes(self.array()?);
                if count != self.records {
                    return Err(corrupt(format!(
                        "{} records, but the file says {count}",
                        self.records
                    )));
                }
                if self.pos != self.body_end {
                    return Err(corrupt("bytes after the end record"));
                }
                let mut trailer = [0u8; HASH_LEN];
                self.r.read_exact(&mut trailer)?;
                let actual = std::mem::replace(&mut self.ctx, Context::new(&SHA256)).finish();
                if actual.as_ref() != trailer {
                    return Err(SnapshotError::ChecksumMismatch);
                }
                self.trailer = trailer;
                self.done = true;
                Ok(None)
            }
            other => Err(corrupt(format!("unknown record tag {other}"))),
        }
    }
}

fn open_reader(file: File) -> Result<SnapshotReader<BufReader<File>>, SnapshotError> {
    let len = file.metadata()?.len();
    SnapshotReader::new(BufReader::with_capacity(256 * 1024, file), len)
}

/// Reads the raft metadata (index, term, conf state) from a snapshot's header only; the
/// header has its own checksum.
pub fn read_meta(path: &Path) -> Result<SnapshotMetadata, SnapshotError> {
    Ok(open_reader(File::open(path)?)?.meta)
}

/// A snapshot file that passed [`verify_snapshot`].
#[derive(Debug, Clone)]
pub struct VerifiedSnapshot {
    pub meta: SnapshotMetadata,
    pub size: u64,
    pub sha256: [u8; 32],
    pub records: u64,
}

/// Reads the whole file once: structure, limits, the applied-index record against the
/// header, and the trailer checksum.
pub fn verify_snapshot(path: &Path) -> Result<VerifiedSnapshot, SnapshotError> {
    verify_file(File::open(path)?)
}

fn verify_file(file: File) -> Result<VerifiedSnapshot, SnapshotError> {
    let size = file.metadata()?.len();
    let mut r = open_reader(file)?;
    let mut applied = 0;
    while let Some(rec) = r.next_record()? {
        check_tree_name(&rec.tree)?;
        if rec.tree == META_TREE.as_bytes() && rec.key == APPLIED_KEY {
            applied = decode_applied(&rec.value)?;
        }
    }
    if applied != r.meta.index {
        return Err(corrupt(format!(
            "applied index {applied} in the file, header says {}",
            r.meta.index
        )));
    }
    Ok(VerifiedSnapshot {
        meta: r.meta,
        size,
        sha256: r.trailer,
        records: r.records,
    })
}

fn decode_applied(value: &[u8]) -> Result<u64, SnapshotError> {
    let arr: [u8; 8] = value
        .try_into()
        .map_err(|_| corrupt("applied index record"))?;
    Ok(u64::from_be_bytes(arr))
}

/// Tree names in a file come from a peer: the reserved names (the restore marker, other
/// generations) are never among them.
fn check_tree_name(name: &[u8]) -> Result<(), SnapshotError> {
    if name.starts_with(RESERVED_PREFIX.as_bytes()) {
        return Err(corrupt("a reserved tree name is not snapshot data"));
    }
    Ok(())
}
