//! The one conformance suite for [`LogStore`] implementations (after openraft's storage
//! suite): every case is a generic function over a [`Harness`] that can reopen the same
//! backing storage, instantiated below for the in-memory and the raft-engine store.

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, Storage, StorageError};

use super::{EngineLogStore, LogStore, MemLogStore, StoreError};

/// Opens the store under test; a second `open` (after the previous store was dropped) sees
/// the same storage, as a restarted process would.
pub trait Harness {
    type S: LogStore;
    fn open(&mut self) -> Self::S;
}

pub struct MemHarness(MemLogStore);

impl Harness for MemHarness {
    type S = MemLogStore;
    fn open(&mut self) -> MemLogStore {
        self.0.clone()
    }
}

pub struct EngineHarness(tempfile::TempDir);

impl Harness for EngineHarness {
    type S = EngineLogStore;
    fn open(&mut self) -> EngineLogStore {
        EngineLogStore::open(self.0.path()).expect("open raft-engine store")
    }
}

fn ents(first: u64, last: u64, term: u64) -> Vec<Entry> {
    (first..=last)
        .map(|index| Entry {
            index,
            term,
            data: format!("e{index}t{term}").into_bytes().into(),
            ..Entry::default()
        })
        .collect()
}

fn all<S: LogStore>(s: &S) -> Vec<(u64, u64)> {
    let (first, last) = (s.first_index().unwrap(), s.last_index().unwrap());
    s.entries(first, last + 1, None, GetEntriesContext::empty(false))
        .unwrap()
        .iter()
        .map(|e| (e.index, e.term))
        .collect()
}

fn is_store_err(r: raft::Result<impl std::fmt::Debug>, want: StorageError) -> bool {
    matches!(r, Err(raft::Error::Store(e)) if e == want)
}

fn meta(index: u64, term: u64, voters: &[u64]) -> SnapshotMetadata {
    SnapshotMetadata {
        index,
        term,
        conf_state: Some(ConfState {
            voters: voters.to_vec(),
            ..ConfState::default()
        })
        .into(),
        ..SnapshotMetadata::default()
    }
}

pub fn initial_state_is_empty<H: Harness>(mut h: H) {
    let s = h.open();
    let rs = s.initial_state().unwrap();
    assert_eq!(rs.hard_state, HardState::default());
    assert_eq!(rs.conf_state, ConfState::default());
    assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (1, 0));
    assert_eq!(s.term(0).unwrap(), 0);
    assert!(is_store_err(s.term(1), StorageError::Unavailable));
    assert!(s
        .entries(1, 1, None, GetEntriesContext::empty(false))
        .unwrap()
        .is_empty());
    assert!(is_store_err(
        s.snapshot(0, 2),
        StorageError::SnapshotTemporarilyUnavailable
    ));
}

pub fn append_overwrites_conflicting_tail<H: Harness>(mut h: H) {
    let mut s = h.open();
    s.append(&ents(1, 5, 1), None).unwrap();
    s.append(&ents(4, 6, 2), None).unwrap();
    assert_eq!(
        all(&s),
        vec![(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]
    );
    // A shorter overwrite drops everything after it too.
    s.append(&ents(3, 3, 3), None).unwrap();
    assert_eq!(all(&s), vec![(1, 1), (2, 1), (3, 3)]);
    let data = s
        .entries(3, 4, None, GetEntriesContext::empty(false))
        .unwrap();
    assert_eq!(data[0].data.as_ref(), b"e3t3");
    assert!(matches!(
        s.append(&ents(5, 6, 3), None),
        Err(StoreError::AppendGap { first: 5, last: 3 })
    ));
    let mut holey = ents(4, 5, 3);
    holey[1].index = 7;
    assert!(matches!(
        s.append(&holey, None),
        Err(StoreError::AppendNotConsecutive(7))
    ));
    assert_eq!(
        s.last_index().unwrap(),
        3,
        "a refused append writes nothing"
    );
}

pub fn term_and_entries_bounds<H: Harness>(mut h: H) {
    let mut s = h.open();
    s.append(&ents(1, 5, 1), None).unwrap();
    let cx = || GetEntriesContext::empty(false);
    assert!(is_store_err(
        s.entries(0, 2, None, cx()),
        StorageError::Compacted
    ));
    assert!(is_store_err(
        s.entries(1, 7, None, cx()),
        StorageError::Unavailable
    ));
    assert!(is_store_err(s.term(6), StorageError::Unavailable));
    assert_eq!(s.entries(2, 6, None, cx()).unwrap().len(), 4);
    // A size limit still yields one entry, and stops before exceeding the limit.
    assert_eq!(s.entries(1, 6, Some(0), cx()).unwrap().len(), 1);
    let one = protobuf::Message::compute_size(&ents(1, 1, 1)[0]) as u64;
    assert_eq!(s.entries(1, 6, Some(2 * one), cx()).unwrap().len(), 2);
}

pub fn hard_and_conf_state_round_trip<H: Harness>(mut h: H) {
    let mut s = h.open();
    let hs = HardState {
        term: 4,
        vote: 2,
        commit: 3,
        ..HardState::default()
    };
    s.append(&ents(1, 3, 4), Some(&hs)).unwrap();
    let cs = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        ..ConfState::default()
    };
    s.set_conf_state(2, &cs).unwrap();
    s.set_commit(3).unwrap();
    assert_eq!(s.initial_state().unwrap().hard_state, hs);
    drop(s);
    let s = h.open();
    let rs = s.initial_state().unwrap();
    assert_eq!((rs.hard_state, rs.conf_state), (hs, cs));
    assert_eq!(
        s.conf_state_index(),
        Some(2),
        "the conf state's index travels with it"
    );
    assert_eq!(all(&s), vec![(1, 4), (2, 4), (3, 4)]);
}

pub fn compaction_only_behind_a_snapshot<H: Harness>(mut h: H) {
    let mut s = h.open();
    s.append(&ents(1, 10, 1), None).unwrap();
    s.append(&ents(9, 10, 2), None).unwrap();
    assert!(matches!(
        s.compact(5),
        Err(StoreError::CompactNotCovered {
            index: 5,
            snapshot: 0
        })
    ));
    let mut snap = Snapshot::default();
    snap.set_metadata(meta(9, 2, &[1]));
    s.offer_snapshot(snap).unwrap();
    s.compact(9).unwrap();
    assert_eq!(
        (s.first_index().unwrap(), s.last_index().unwrap()),
        (10, 10)
    );
    assert_eq!(s.term(9).unwrap(), 2, "the truncation point keeps its term");
    assert!(is_store_err(s.term(8), StorageError::Compacted));
    assert!(is_store_err(
        s.entries(9, 11, None, GetEntriesContext::empty(false)),
        StorageError::Compacted
    ));
    s.compact(3).unwrap(); // behind the truncation point: nothing to do
    assert!(matches!(
        s.compact(10),
        Err(StoreError::CompactNotCovered { .. })
    ));
    assert!(matches!(
        s.append(&ents(8, 8, 3), None),
        Err(StoreError::AppendCompacted { .. })
    ));
    drop(s);
    let mut s = h.open();
    assert_eq!(all(&s), vec![(10, 2)]);
    assert_eq!(s.term(9).unwrap(), 2);
    s.append(&ents(11, 12, 2), None).unwrap();
    assert_eq!(s.last_index().unwrap(), 12);
}

pub fn snapshot_metadata_replaces_the_log<H: Harness>(mut h: H) {
    let mut s = h.open();
    s.append(&ents(1, 10, 1), None).unwrap();
    s.apply_snapshot(&meta(20, 3, &[1, 2, 3])).unwrap();
    assert_eq!(
        (s.first_index().unwrap(), s.last_index().unwrap()),
        (21, 20)
    );
    assert_eq!(s.term(20).unwrap(), 3);
    let rs = s.initial_state().unwrap();
    assert_eq!((rs.hard_state.commit, rs.hard_state.term), (20, 3));
    assert_eq!(rs.conf_state.voters, vec![1, 2, 3]);
    assert_eq!(s.conf_state_index(), Some(20));
    assert_eq!(s.snapshot_metadata().index, 20);
    assert!(matches!(
        s.apply_snapshot(&meta(15, 3, &[1])),
        Err(StoreError::SnapshotOutOfDate { .. })
    ));
    // Applied metadata is not a sendable snapshot: only an offered one is.
    assert!(is_store_err(
        s.snapshot(20, 2),
        StorageError::SnapshotTemporarilyUnavailable
    ));
    s.append(&ents(21, 22, 3), None).unwrap();
    let mut snap = Snapshot::default();
    snap.set_metadata(meta(22, 3, &[1, 2, 3]));
    snap.data = b"state".to_vec().into();
    s.offer_snapshot(snap).unwrap();
    assert_eq!(s.snapshot(21, 2).unwrap().data.as_ref(), b"state");
    assert!(is_store_err(
        s.snapshot(23, 2),
        StorageError::SnapshotTemporarilyUnavailable
    ));
    drop(s);
    let s = h.open();
    assert_eq!(s.snapshot_metadata().index, 22);
    assert_eq!(all(&s), vec![(21, 3), (22, 3)]);
    assert_eq!(s.term(20).unwrap(), 3);
}

/// A crash right after a synced write (the store dropped with no further write) keeps every
/// synced batch whole, including the tail an overwrite dropped.
pub fn reopen_keeps_the_last_synced_batch<H: Harness>(mut h: H) {
    let mut s = h.open();
    let hs1 = HardState {
        term: 1,
        vote: 1,
        commit: 0,
        ..HardState::default()
    };
    s.append(&ents(1, 3, 1), Some(&hs1)).unwrap();
    let hs2 = HardState {
        term: 2,
        vote: 3,
        commit: 2,
        ..HardState::default()
    };
    s.append(&ents(3, 4, 2), Some(&hs2)).unwrap();
    drop(s);
    let mut s = h.open();
    assert_eq!(all(&s), vec![(1, 1), (2, 1), (3, 2), (4, 2)]);
    assert_eq!(s.initial_state().unwrap().hard_state, hs2);
    s.append(&ents(2, 2, 3), None).unwrap();
    drop(s);
    let s = h.open();
    assert_eq!(all(&s), vec![(1, 1), (2, 3)]);
}

macro_rules! conformance {
    ($name:ident, $harness:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn initial_state_is_empty() {
                super::initial_state_is_empty($harness);
            }
            #[test]
            fn append_overwrites_conflicting_tail() {
                super::append_overwrites_conflicting_tail($harness);
            }
            #[test]
            fn term_and_entries_bounds() {
                super::term_and_entries_bounds($harness);
            }
            #[test]
            fn hard_and_conf_state_round_trip() {
                super::hard_and_conf_state_round_trip($harness);
            }
            #[test]
            fn compaction_only_behind_a_snapshot() {
                super::compaction_only_behind_a_snapshot($harness);
            }
            #[test]
            fn snapshot_metadata_replaces_the_log() {
                super::snapshot_metadata_replaces_the_log($harness);
            }
            #[test]
            fn reopen_keeps_the_last_synced_batch() {
                super::reopen_keeps_the_last_synced_batch($harness);
            }
        }
    };
}

conformance!(mem, MemHarness(MemLogStore::new()));
conformance!(
    engine,
    EngineHarness(tempfile::tempdir().expect("temp dir"))
);
