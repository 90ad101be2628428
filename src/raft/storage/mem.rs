//! [`MemLogStore`]: the in-memory log store. Clones share one log, which models a process
//! restart over the same disk (every write here counts as synced).

use std::sync::{Arc, Mutex, MutexGuard};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState};

use super::{check_append, check_range, check_term, size_limit, LogStore, Meta, StoreError};

#[derive(Debug, Default)]
struct Core {
    meta: Meta,
    /// Entries after the truncation point, consecutive.
    entries: Vec<Entry>,
    synced_writes: u64,
}

impl Core {
    fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.meta.truncated.0, |e| e.index)
    }
}

/// The in-memory [`LogStore`].
#[derive(Debug, Clone, Default)]
pub struct MemLogStore {
    core: Arc<Mutex<Core>>,
}

impl MemLogStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new store whose conf state lists `voters` (how a fresh cluster is bootstrapped).
    pub fn with_voters(voters: &[u64]) -> Self {
        Self::with_conf_state(ConfState {
            voters: voters.to_vec(),
            ..ConfState::default()
        })
    }

    /// A new store whose bootstrap configuration is `cs` (joint or with learners alike).
    pub fn with_conf_state(cs: ConfState) -> Self {
        let s = Self::new();
        {
            let mut core = s.core();
            core.meta.conf_state = cs.clone();
            core.meta.initial_conf = cs;
            core.meta.conf_index = Some(0);
        }
        s
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock cannot leave the core half-written: every write
        // below computes first and assigns last.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl raft::Storage for MemLogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(self.core().meta.raft_state())
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let core = self.core();
        let truncated = core.meta.truncated.0;
        check_range(low, high, truncated, core.last_index())?;
        let lo = (low - truncated - 1) as usize;
        let hi = (high - truncated - 1) as usize;
        let mut out = core.entries[lo..hi].to_vec();
        if let Some(max) = size_limit(max_size.into()) {
            // Like raft-rs: at least one entry, then stop before exceeding the limit.
            let mut size = 0u64;
            let keep = out
                .iter()
                .take_while(|e| {
                    size += u64::from(protobuf::Message::compute_size(*e));
                    size <= max
                })
                .count();
            out.truncate(keep.max(1));
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let core = self.core();
        if let Some(t) = check_term(idx, &core.meta, core.last_index())? {
            return Ok(t);
        }
        Ok(core.entries[(idx - core.meta.truncated.0 - 1) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.core().meta.truncated.0 + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.core().last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        self.core().meta.snapshot(request_index)
    }
}

impl LogStore for MemLogStore {
    fn append(&mut self, entries: &[Entry], hs: Option<&HardState>) -> Result<(), StoreError> {
        let mut core = self.core();
        let truncated = core.meta.truncated.0;
        if let Some(first) = check_append(entries, truncated, core.last_index())? {
            core.entries.truncate((first - truncated - 1) as usize);
            core.entries.extend_from_slice(entries);
        }
        if let Some(hs) = hs {
            core.meta.hard_state = hs.clone();
        }
        core.synced_writes += 1;
        Ok(())
    }

    fn set_commit(&mut self, commit: u64) -> Result<(), StoreError> {
        self.core().meta.hard_state.commit = commit;
        Ok(())
    }

    fn set_conf_state(&mut self, index: u64, cs: &ConfState) -> Result<(), StoreError> {
        let mut core = self.core();
        core.meta.conf_state = cs.clone();
        core.meta.conf_index = Some(index);
        core.synced_writes += 1;
        Ok(())
    }

    fn conf_state_index(&self) -> Option<u64> {
        self.core().meta.conf_index
    }

    fn initial_conf_state(&self) -> ConfState {
        self.core().meta.initial_conf.clone()
    }

    fn apply_snapshot(&mut self, meta: &SnapshotMetadata) -> Result<(), StoreError> {
        let mut core = self.core();
        core.meta.install_snapshot(meta)?;
        core.entries.clear();
        core.synced_writes += 1;
        Ok(())
    }

    fn compact(&mut self, index: u64) -> Result<(), StoreError> {
        let mut core = self.core();
        let last = core.last_index();
        let Some(index) = core.meta.check_compact(index, last)? else {
            return Ok(());
        };
        let truncated = core.meta.truncated.0;
        let term = core.entries[(index - truncated - 1) as usize].term;
        core.entries.drain(..(index - truncated) as usize);
        core.meta.truncated = (index, term);
        core.synced_writes += 1;
        Ok(())
    }

    fn snapshot_metadata(&self) -> SnapshotMetadata {
        self.core().meta.snapshot.clone()
    }

    fn offer_snapshot(&mut self, snap: Snapshot) -> Result<(), StoreError> {
        let mut core = self.core();
        if snap.get_metadata().index > core.meta.snapshot.index {
            core.meta.snapshot = snap.get_metadata().clone();
            core.synced_writes += 1;
        }
        core.meta.offered = Some(snap);
        Ok(())
    }

    fn synced_writes(&self) -> u64 {
        self.core().synced_writes
    }
}
