//! Replacing a state with a snapshot file, crash-safe.
//!
//! Order: verify the whole file (checksum, structure, applied index) while the state is
//! untouched → set the restore marker (tree [`MARKER_TREE`], key `restoring` = index) and
//! flush → clear every state tree → insert the records in bounded `sled::Batch`es → flush →
//! remove the marker → flush. A crash anywhere after the marker leaves it set, and
//! [`StateMachine::resume_interrupted_restore`] redoes the restore from the same file; until
//! then the state must not be served.
//!
//! The marker lives in its own tree so that clearing the state does not clear it. It is not
//! state: snapshots skip it (and refuse it in a file), and `StateMachine::digest` does not
//! iterate it.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;

use super::{
    check_tree_name, open_reader, snapshot_path, state_tree_names, tree_handle, verify_file,
    SnapshotError,
};
use crate::state::machine::StateMachine;

/// The tree that holds the restore marker; never part of the replicated state.
pub(crate) const MARKER_TREE: &str = "__sealkm_restore";
const MARKER_KEY: &[u8] = b"restoring";
/// Bounds of one insert batch (records and key + value bytes).
const BATCH_RECORDS: usize = 4096;
const BATCH_BYTES: usize = 8 * 1024 * 1024;

fn marker_tree(state: &StateMachine) -> Result<sled::Tree, SnapshotError> {
    Ok(state.db().open_tree(MARKER_TREE)?)
}

pub(super) fn set_marker(state: &StateMachine, index: u64) -> Result<(), SnapshotError> {
    marker_tree(state)?.insert(MARKER_KEY, &index.to_be_bytes())?;
    state.db().flush()?;
    Ok(())
}

/// A batch under construction for one tree.
struct Pending {
    name: Vec<u8>,
    tree: sled::Tree,
    batch: sled::Batch,
    records: usize,
    bytes: usize,
}

impl Pending {
    fn apply(&mut self) -> Result<(), SnapshotError> {
        if self.records > 0 {
            self.tree.apply_batch(std::mem::take(&mut self.batch))?;
            self.records = 0;
            self.bytes = 0;
        }
        Ok(())
    }
}

impl StateMachine {
    /// Replaces the whole state with `dir/snap-<index>.bin`. The file is verified in full
    /// before anything changes; the applied index afterwards is the file's (`index`).
    /// On an error after the marker is set, the state is partial and the marker stays.
    pub fn restore_snapshot(&self, dir: &Path, index: u64) -> Result<(), SnapshotError> {
        let file = File::open(snapshot_path(dir, index))?;
        // One open file for both passes: a rename over the path in between changes nothing.
        let mut second = file.try_clone()?;
        let verified = verify_file(file)?;
        if verified.meta.index != index {
            return Err(SnapshotError::WrongIndex {
                expected: index,
                found: verified.meta.index,
            });
        }
        second.seek(SeekFrom::Start(0))?;

        set_marker(self, index)?;
        let db = self.db();
        for name in state_tree_names(db) {
            tree_handle(db, &name)?.clear()?;
        }
        // The second pass re-checks everything as it goes (the file could have changed in
        // place); a failure leaves the marker set.
        let mut r = open_reader(second)?;
        if r.meta.index != index {
            return Err(SnapshotError::WrongIndex {
                expected: index,
                found: r.meta.index,
            });
        }
        let mut pending: Option<Pending> = None;
        while let Some(rec) = r.next_record()? {
            check_tree_name(&rec.tree)?;
            let p = match &mut pending {
                Some(p) if p.name == rec.tree => p,
                slot => {
                    if let Some(previous) = slot.as_mut() {
                        previous.apply()?;
                    }
                    slot.insert(Pending {
                        tree: tree_handle(db, &rec.tree)?,
                        name: rec.tree,
                        batch: sled::Batch::default(),
                        records: 0,
                        bytes: 0,
                    })
                }
            };
            p.records += 1;
            p.bytes += rec.key.len() + rec.value.len();
            p.batch.insert(rec.key, rec.value);
            if p.records >= BATCH_RECORDS || p.bytes >= BATCH_BYTES {
                p.apply()?;
            }
        }
        if let Some(p) = pending.as_mut() {
            p.apply()?;
        }
        let applied = self.applied_index()?;
        if applied != index {
            return Err(SnapshotError::WrongIndex {
                expected: index,
                found: applied,
            });
        }
        db.flush()?;
        marker_tree(self)?.remove(MARKER_KEY)?;
        db.flush()?;
        Ok(())
    }

    /// The index of a restore that was interrupted (marker set), if any.
    pub fn interrupted_restore(&self) -> Result<Option<u64>, SnapshotError> {
        match marker_tree(self)?.get(MARKER_KEY)? {
            None => Ok(None),
            Some(v) => {
                let arr: [u8; 8] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| SnapshotError::Corrupt("restore marker".into()))?;
                Ok(Some(u64::from_be_bytes(arr)))
            }
        }
    }

    /// On start: if a restore was interrupted by a crash, redoes it from
    /// `dir/snap-<index>.bin` and returns `Some(index)`. An error means the state is partial
    /// and must not be served.
    pub fn resume_interrupted_restore(&self, dir: &Path) -> Result<Option<u64>, SnapshotError> {
        let Some(index) = self.interrupted_restore()? else {
            return Ok(None);
        };
        self.restore_snapshot(dir, index)?;
        Ok(Some(index))
    }
}
