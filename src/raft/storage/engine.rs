//! [`EngineLogStore`]: the log store over raft-engine (TiKV's Raft log store). One `Engine`
//! per node directory, the log as raft group [`REGION`]. Each write the driver makes is one
//! `LogBatch` written with `sync = true`, i.e. one fsync: after it returns, it survives power
//! loss, and a crash between two writes leaves the last synced batch whole (raft-engine
//! recovers by dropping a torn tail).

use std::path::Path;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState};
use raft_engine::{Command, Config, Engine, LogBatch, MessageExt};

use super::{check_append, check_range, check_term, size_limit, LogStore, Meta, StoreError};

/// The raft group id of this node's log inside its engine (one group per node).
pub const REGION: u64 = 1;

const KEY_HARD_STATE: &[u8] = b"hard_state";
const KEY_CONF_STATE: &[u8] = b"conf_state";
/// 8 bytes, big endian: the log index the conf state is as of (written with it).
const KEY_CONF_INDEX: &[u8] = b"conf_index";
/// The bootstrap configuration (as of index 0).
const KEY_INITIAL_CONF: &[u8] = b"initial_conf_state";
const KEY_SNAPSHOT: &[u8] = b"snapshot_meta";
/// 16 bytes: truncated index and term, big endian.
const KEY_TRUNCATED: &[u8] = b"truncated";

/// Tells raft-engine how to find the index of a raft-rs entry.
pub struct EntryExt;

impl MessageExt for EntryExt {
    type Entry = Entry;

    fn index(e: &Entry) -> u64 {
        e.index
    }
}

/// The raft-engine [`LogStore`].
pub struct EngineLogStore {
    engine: Engine,
    /// A cache of what is persisted under the metadata keys (reads never hit the engine).
    meta: Meta,
    synced_writes: u64,
    /// Total time spent in synced writes (fsync latency for metrics).
    sync_micros: u64,
}

impl EngineLogStore {
    /// Opens (or creates) the log in `dir` and loads its metadata.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let cfg = Config {
            dir: dir.to_string_lossy().into_owned(),
            ..Config::default()
        };
        let engine = Engine::open(cfg)?;
        let mut meta = Meta {
            hard_state: engine
                .get_message(REGION, KEY_HARD_STATE)?
                .unwrap_or_default(),
            conf_state: engine
                .get_message(REGION, KEY_CONF_STATE)?
                .unwrap_or_default(),
            snapshot: engine
                .get_message(REGION, KEY_SNAPSHOT)?
                .unwrap_or_default(),
            initial_conf: engine
                .get_message(REGION, KEY_INITIAL_CONF)?
                .unwrap_or_default(),
            ..Meta::default()
        };
        if let Some(v) = engine.get(REGION, KEY_TRUNCATED) {
            meta.truncated = decode_truncated(&v)?;
        }
        if let Some(v) = engine.get(REGION, KEY_CONF_INDEX) {
            let b: [u8; 8] = v
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("conf state index"))?;
            meta.conf_index = Some(u64::from_be_bytes(b));
        }
        Ok(Self {
            engine,
            meta,
            synced_writes: 0,
            sync_micros: 0,
        })
    }

    /// Opens the log in `dir` and, if it is new, records `voters` as its conf state (how a
    /// fresh cluster is bootstrapped).
    pub fn open_with_voters(dir: &Path, voters: &[u64]) -> Result<Self, StoreError> {
        let mut s = Self::open(dir)?;
        if s.meta.conf_state == ConfState::default() && s.last() == 0 {
            let cs = ConfState {
                voters: voters.to_vec(),
                ..ConfState::default()
            };
            let mut batch = LogBatch::default();
            batch.put_message(REGION, KEY_CONF_STATE.to_vec(), &cs)?;
            batch.put_message(REGION, KEY_INITIAL_CONF.to_vec(), &cs)?;
            batch.put(REGION, KEY_CONF_INDEX.to_vec(), 0u64.to_be_bytes().to_vec())?;
            s.write(&mut batch)?;
            s.meta.conf_state = cs.clone();
            s.meta.initial_conf = cs;
            s.meta.conf_index = Some(0);
        }
        Ok(s)
    }

    fn last(&self) -> u64 {
        // An empty memtable (new log, or everything compacted) ends at the truncation point.
        self.engine
            .last_index(REGION)
            .filter(|&l| l > self.meta.truncated.0)
            .unwrap_or(self.meta.truncated.0)
    }

    fn write(&mut self, batch: &mut LogBatch) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        self.engine.write(batch, true)?;
        self.synced_writes += 1;
        self.sync_micros += started.elapsed().as_micros() as u64;
        Ok(())
    }
}

fn encode_truncated((index, term): (u64, u64)) -> Vec<u8> {
    let mut v = index.to_be_bytes().to_vec();
    v.extend_from_slice(&term.to_be_bytes());
    v
}

fn decode_truncated(v: &[u8]) -> Result<(u64, u64), StoreError> {
    let (i, t) = v
        .split_at_checked(8)
        .ok_or(StoreError::Corrupt("truncated state"))?;
    let index: [u8; 8] = i
        .try_into()
        .map_err(|_| StoreError::Corrupt("truncated state"))?;
    let term: [u8; 8] = t
        .try_into()
        .map_err(|_| StoreError::Corrupt("truncated state"))?;
    Ok((u64::from_be_bytes(index), u64::from_be_bytes(term)))
}

fn engine_err(e: raft_engine::Error) -> raft::Error {
    raft::Error::from(StoreError::Engine(e))
}

impl raft::Storage for EngineLogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(self.meta.raft_state())
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        check_range(low, high, self.meta.truncated.0, self.last())?;
        let mut out = Vec::with_capacity((high - low) as usize);
        let max = size_limit(max_size.into()).map(|m| usize::try_from(m).unwrap_or(usize::MAX));
        // raft-engine returns at least one entry and stops before exceeding `max`, as
        // raft-rs expects.
        self.engine
            .fetch_entries_to::<EntryExt>(REGION, low, high, max, &mut out)
            .map_err(engine_err)?;
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if let Some(t) = check_term(idx, &self.meta, self.last())? {
            return Ok(t);
        }
        match self
            .engine
            .get_entry::<EntryExt>(REGION, idx)
            .map_err(engine_err)?
        {
            Some(e) => Ok(e.term),
            None => Err(raft::Error::Store(raft::StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.meta.truncated.0 + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        self.meta.snapshot(request_index)
    }
}

impl LogStore for EngineLogStore {
    fn append(&mut self, entries: &[Entry], hs: Option<&HardState>) -> Result<(), StoreError> {
        check_append(entries, self.meta.truncated.0, self.last())?;
        let mut batch = LogBatch::default();
        // raft-engine drops the existing tail from the first appended index on.
        batch.add_entries::<EntryExt>(REGION, entries)?;
        if let Some(hs) = hs {
            batch.put_message(REGION, KEY_HARD_STATE.to_vec(), hs)?;
        }
        self.write(&mut batch)?;
        if let Some(hs) = hs {
            self.meta.hard_state = hs.clone();
        }
        Ok(())
    }

    fn set_commit(&mut self, commit: u64) -> Result<(), StoreError> {
        let mut hs = self.meta.hard_state.clone();
        hs.commit = commit;
        let mut batch = LogBatch::default();
        batch.put_message(REGION, KEY_HARD_STATE.to_vec(), &hs)?;
        // Deliberately not synced (see the trait): it rides on the next synced batch.
        self.engine.write(&mut batch, false)?;
        self.meta.hard_state = hs;
        Ok(())
    }

    fn set_conf_state(&mut self, index: u64, cs: &ConfState) -> Result<(), StoreError> {
        let mut batch = LogBatch::default();
        batch.put_message(REGION, KEY_CONF_STATE.to_vec(), cs)?;
        batch.put(
            REGION,
            KEY_CONF_INDEX.to_vec(),
            index.to_be_bytes().to_vec(),
        )?;
        self.write(&mut batch)?;
        self.meta.conf_state = cs.clone();
        self.meta.conf_index = Some(index);
        Ok(())
    }

    fn conf_state_index(&self) -> Option<u64> {
        self.meta.conf_index
    }

    fn initial_conf_state(&self) -> ConfState {
        self.meta.initial_conf.clone()
    }

    fn apply_snapshot(&mut self, meta: &SnapshotMetadata) -> Result<(), StoreError> {
        let mut next = self.meta.clone();
        next.install_snapshot(meta)?;
        let mut batch = LogBatch::default();
        // The snapshot replaces the whole log: drop every entry, even past its index.
        let clear_to = self.last().max(meta.index) + 1;
        batch.add_command(REGION, Command::Compact { index: clear_to });
        batch.put_message(REGION, KEY_SNAPSHOT.to_vec(), &next.snapshot)?;
        batch.put(
            REGION,
            KEY_TRUNCATED.to_vec(),
            encode_truncated(next.truncated),
        )?;
        batch.put_message(REGION, KEY_HARD_STATE.to_vec(), &next.hard_state)?;
        batch.put_message(REGION, KEY_CONF_STATE.to_vec(), &next.conf_state)?;
        batch.put(
            REGION,
            KEY_CONF_INDEX.to_vec(),
            meta.index.to_be_bytes().to_vec(),
        )?;
        self.write(&mut batch)?;
        self.meta = next;
        Ok(())
    }

    fn compact(&mut self, index: u64) -> Result<(), StoreError> {
        let Some(index) = self.meta.check_compact(index, self.last())? else {
            return Ok(());
        };
        let term = raft::Storage::term(self, index)?;
        let mut batch = LogBatch::default();
        // The truncation point and the compaction land together, so a crash never leaves a
        // log whose first index and truncated term disagree.
        batch.add_command(REGION, Command::Compact { index: index + 1 });
        batch.put(
            REGION,
            KEY_TRUNCATED.to_vec(),
            encode_truncated((index, term)),
        )?;
        self.write(&mut batch)?;
        self.meta.truncated = (index, term);
        Ok(())
    }

    fn snapshot_metadata(&self) -> SnapshotMetadata {
        self.meta.snapshot.clone()
    }

    fn offer_snapshot(&mut self, snap: Snapshot) -> Result<(), StoreError> {
        if snap.get_metadata().index > self.meta.snapshot.index {
            let mut batch = LogBatch::default();
            batch.put_message(REGION, KEY_SNAPSHOT.to_vec(), snap.get_metadata())?;
            self.write(&mut batch)?;
            self.meta.snapshot = snap.get_metadata().clone();
        }
        self.meta.offered = Some(snap);
        Ok(())
    }

    fn synced_writes(&self) -> u64 {
        self.synced_writes
    }

    fn sync_micros(&self) -> u64 {
        self.sync_micros
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bootstrap configuration is the base a restart rebuilds the conf state from
    /// (`node::recover`), so it must survive a reopen, apart from the current one.
    #[test]
    fn the_bootstrap_configuration_and_the_conf_index_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = EngineLogStore::open_with_voters(dir.path(), &[1, 2, 3]).unwrap();
        assert_eq!(s.conf_state_index(), Some(0));
        let joint = ConfState {
            voters: vec![1, 2, 3, 4],
            voters_outgoing: vec![1, 2, 3],
            ..ConfState::default()
        };
        s.set_conf_state(7, &joint).unwrap();
        drop(s);
        let s = EngineLogStore::open_with_voters(dir.path(), &[1, 2, 3]).unwrap();
        assert_eq!(s.conf_state_index(), Some(7));
        assert_eq!(s.meta.conf_state, joint);
        assert_eq!(s.initial_conf_state().voters, vec![1, 2, 3]);
        let other = tempfile::tempdir().unwrap();
        let joined = EngineLogStore::open(other.path()).unwrap();
        assert_eq!(
            joined.conf_state_index(),
            None,
            "a joining node knows no configuration"
        );
    }
}
