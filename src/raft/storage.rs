//! The Raft log seam: [`LogStore`] is `raft::Storage` (what raft-rs reads) plus the few writes
//! the driver makes (what the Ready loop persists). It owns the log entries, the hard state, the
//! conf state, the metadata of the last applied snapshot and the truncation point of the log.
//! It does not own the state machine or snapshot data: a snapshot built elsewhere is only
//! *offered* here so that `Storage::snapshot` can hand it to raft-rs.
//!
//! Two implementations share one conformance suite (`suite`, run against both):
//! [`MemLogStore`] for tests and [`EngineLogStore`] over raft-engine, where one synced
//! `LogBatch` is one fsync (ARCHITECTURE §5).
//!
//! Invariants every implementation keeps:
//! - `first_index() == truncated_index + 1`, and `term(truncated_index)` stays answerable, so
//!   raft-rs can match the entry just before the first one it still has.
//! - The log is compacted only up to an index a snapshot covers (`compact` refuses otherwise):
//!   the state machine must always be rebuildable from that snapshot plus the log.
//! - Malformed requests (a gap, an overwrite of compacted entries) are errors, never panics:
//!   the entries come from peers.

mod engine;
mod mem;
#[cfg(test)]
mod suite;

pub use engine::EngineLogStore;
pub use mem::MemLogStore;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{StorageError, NO_LIMIT};

/// Why the log store refused or failed a write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("raft log engine: {0}")]
    Engine(#[from] raft_engine::Error),
    #[error("entries start at {first}, but the log is compacted up to {truncated}")]
    AppendCompacted { first: u64, truncated: u64 },
    #[error("entries start at {first}, leaving a gap after the last index {last}")]
    AppendGap { first: u64, last: u64 },
    #[error("entries are not consecutive at index {0}")]
    AppendNotConsecutive(u64),
    #[error("compaction to {index} is not covered by a snapshot (snapshot index {snapshot})")]
    CompactNotCovered { index: u64, snapshot: u64 },
    #[error("compaction to {index} is beyond the last index {last}")]
    CompactBeyondLog { index: u64, last: u64 },
    #[error("snapshot at {index} is older than the log's truncation point {truncated}")]
    SnapshotOutOfDate { index: u64, truncated: u64 },
    #[error("stored record {0} is corrupt")]
    Corrupt(&'static str),
    #[error("raft log: {0}")]
    Raft(#[from] raft::Error),
}

impl StoreError {
    /// The write failed for lack of space (ENOSPC, a quota, raft-engine's own `Full`): it
    /// may succeed later, unlike a corrupt record or a malformed request.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Engine(raft_engine::Error::Full) => true,
            StoreError::Engine(raft_engine::Error::Io(e)) => is_no_space(e),
            StoreError::Engine(raft_engine::Error::Other(e)) => {
                e.downcast_ref::<std::io::Error>().is_some_and(is_no_space)
            }
            _ => false,
        }
    }
}

fn is_no_space(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

impl From<StoreError> for raft::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Raft(r) => r,
            other => raft::Error::Store(StorageError::Other(Box::new(other))),
        }
    }
}

/// The writes the Ready loop makes, on top of what raft-rs reads through `raft::Storage`.
pub trait LogStore: raft::Storage {
    /// Appends `entries` (dropping any conflicting tail from `entries[0].index` on) and, if
    /// given, persists `hs`, in ONE synced write: after it returns, both survive a crash.
    fn append(&mut self, entries: &[Entry], hs: Option<&HardState>) -> Result<(), StoreError>;

    /// Records a newer commit index (from a `LightReady`). Not synced: the commit index is
    /// recomputed by the cluster after a crash, and the driver raises it to the state
    /// machine's applied index on restart.
    fn set_commit(&mut self, commit: u64) -> Result<(), StoreError>;

    /// Persists the conf state as of log entry `index` (it includes every conf change up to
    /// `index` and none after), both in ONE synced write. The index lets a restart tell
    /// whether the state machine, persisted separately, applied the latest conf change.
    fn set_conf_state(&mut self, index: u64, cs: &ConfState) -> Result<(), StoreError>;

    /// The index the persisted conf state is as of ([`LogStore::set_conf_state`]; a
    /// snapshot's index after [`LogStore::apply_snapshot`]; 0 for the bootstrap
    /// configuration). `None` when unknown: a new log of a joining node, or a log written
    /// before the index was recorded.
    fn conf_state_index(&self) -> Option<u64>;

    /// The configuration the cluster was bootstrapped with (empty for a node that joined, or
    /// for logs written before it was recorded). It is the configuration as of index 0.
    fn initial_conf_state(&self) -> ConfState;

    /// Installs the metadata of a snapshot the state machine has restored: the whole log is
    /// replaced by the snapshot's (index, term), the conf state becomes the snapshot's, and
    /// the commit index and term are raised to it. Synced.
    fn apply_snapshot(&mut self, meta: &SnapshotMetadata) -> Result<(), StoreError>;

    /// Discards the entries up to and including `index`; `index` must be covered by the last
    /// snapshot (`index <= snapshot_metadata().index`). Compacting below the current truncation
    /// point is a no-op.
    fn compact(&mut self, index: u64) -> Result<(), StoreError>;

    /// Metadata of the last snapshot installed with [`LogStore::apply_snapshot`] or recorded
    /// with [`LogStore::offer_snapshot`] (index 0 when there is none).
    fn snapshot_metadata(&self) -> SnapshotMetadata;

    /// Offers a snapshot built by the state machine, so `Storage::snapshot` can serve it to a
    /// lagging peer. Its metadata is persisted (it then covers compaction); the data is held
    /// in memory only, since the state machine can rebuild it.
    fn offer_snapshot(&mut self, snap: Snapshot) -> Result<(), StoreError>;

    /// How many synced writes this store has made (for group-commit checks and metrics).
    fn synced_writes(&self) -> u64;

    /// Microseconds spent in synced writes so far (0 where nothing is synced).
    fn sync_micros(&self) -> u64 {
        0
    }
}

/// State shared by both implementations: everything but the entries themselves.
#[derive(Debug, Clone, Default)]
struct Meta {
    hard_state: HardState,
    conf_state: ConfState,
    /// The log index `conf_state` is as of (`None`: not recorded).
    conf_index: Option<u64>,
    /// The bootstrap configuration (as of index 0).
    initial_conf: ConfState,
    /// Last snapshot's metadata (index 0 if none).
    snapshot: SnapshotMetadata,
    /// The last discarded index and its term: `first_index() == truncated.0 + 1`.
    truncated: (u64, u64),
    /// A snapshot ready to be sent (memory only).
    offered: Option<Snapshot>,
}

impl Meta {
    fn raft_state(&self) -> raft::RaftState {
        raft::RaftState::new(self.hard_state.clone(), self.conf_state.clone())
    }

    /// `Storage::snapshot`: the offered snapshot if it is recent enough, otherwise "try
    /// later" (the cluster builds one); never another error, which would halt raft-rs.
    fn snapshot(&self, request_index: u64) -> raft::Result<Snapshot> {
        match &self.offered {
            Some(s) if s.get_metadata().index >= request_index => Ok(s.clone()),
            _ => Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            )),
        }
    }

    /// The effect of installing a snapshot on everything but the entries.
    fn install_snapshot(&mut self, meta: &SnapshotMetadata) -> Result<(), StoreError> {
        if meta.index < self.truncated.0 {
            return Err(StoreError::SnapshotOutOfDate {
                index: meta.index,
                truncated: self.truncated.0,
            });
        }
        self.snapshot = meta.clone();
        self.truncated = (meta.index, meta.term);
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.conf_state = meta.get_conf_state().clone();
        self.conf_index = Some(meta.index);
        Ok(())
    }

    /// Checks a compaction request; `Ok(None)` means nothing to do.
    fn check_compact(&self, index: u64, last: u64) -> Result<Option<u64>, StoreError> {
        if index <= self.truncated.0 {
            return Ok(None);
        }
        if index > self.snapshot.index {
            return Err(StoreError::CompactNotCovered {
                index,
                snapshot: self.snapshot.index,
            });
        }
        if index > last {
            return Err(StoreError::CompactBeyondLog { index, last });
        }
        Ok(Some(index))
    }
}

/// Checks that `entries` can be appended to a log spanning (truncated, last]; returns the
/// index of the first entry, or `None` for an empty append.
fn check_append(entries: &[Entry], truncated: u64, last: u64) -> Result<Option<u64>, StoreError> {
    let Some(first) = entries.first().map(|e| e.index) else {
        return Ok(None);
    };
    if first <= truncated {
        return Err(StoreError::AppendCompacted { first, truncated });
    }
    if first > last + 1 {
        return Err(StoreError::AppendGap { first, last });
    }
    for (i, e) in entries.iter().enumerate() {
        if e.index != first + i as u64 {
            return Err(StoreError::AppendNotConsecutive(e.index));
        }
    }
    Ok(Some(first))
}

/// Checks `entries(low, high)` bounds against a log spanning (truncated, last].
fn check_range(low: u64, high: u64, truncated: u64, last: u64) -> raft::Result<()> {
    if low <= truncated {
        return Err(raft::Error::Store(StorageError::Compacted));
    }
    if high > last + 1 || low > high {
        return Err(raft::Error::Store(StorageError::Unavailable));
    }
    Ok(())
}

/// Checks `term(idx)` against a log spanning (truncated, last]; `Some(term)` when the answer
/// is the truncation point's own term.
fn check_term(idx: u64, meta: &Meta, last: u64) -> raft::Result<Option<u64>> {
    if idx == meta.truncated.0 {
        return Ok(Some(meta.truncated.1));
    }
    if idx < meta.truncated.0 {
        return Err(raft::Error::Store(StorageError::Compacted));
    }
    if idx > last {
        return Err(raft::Error::Store(StorageError::Unavailable));
    }
    Ok(None)
}

/// raft-rs passes `NO_LIMIT` (u64::MAX) for "no size limit".
fn size_limit(max_size: Option<u64>) -> Option<u64> {
    max_size.filter(|&m| m != NO_LIMIT)
}
