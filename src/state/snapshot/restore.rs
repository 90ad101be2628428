//! Replacing a state with a snapshot file, crash-safe and atomic for readers.
//!
//! Order: verify the whole file (checksum, structure, applied index) while the state is
//! untouched → set the restore marker (tree [`MARKER_TREE`], key `restoring` = index) and
//! flush → drop leftovers of the next generation → insert the records into the NEXT
//! generation's trees (see `machine::trees`) in bounded `sled::Batch`es → flush → record the
//! new generation and remove the marker in one batch → flush → swap the generation readers
//! use → drop the old generation's trees. Readers keep reading the current generation until
//! the swap, so they never see a cleared or half-filled state. A crash before the switch
//! leaves the old generation current and the marker set, and
//! [`StateMachine::resume_interrupted_restore`] redoes the restore from the same file; a
//! crash after it leaves old trees that `StateMachine::open` drops.
//!
//! The marker lives in its own tree, which is not state: snapshots skip it (and refuse any
//! reserved tree name in a file), and `StateMachine::digest` does not iterate it.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;

use super::{check_tree_name, open_reader, snapshot_path, verify_file, SnapshotError};
use crate::state::machine::trees::{
    self, physical_name, tree_handle, Trees, CONTROL_TREE, GENERATION_KEY,
};
use crate::state::machine::{StateMachine, APPLIED_KEY};

/// The tree that holds the restore marker and the generation; never part of the state.
pub(crate) const MARKER_TREE: &str = CONTROL_TREE;
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
    /// Readers see the old state until the new one is complete. On an error after the
    /// marker is set, the old state stays current and the marker stays.
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
        let old = self.read().generation;
        let next = old
            .checked_add(1)
            .ok_or_else(|| SnapshotError::Corrupt("state generation overflows".into()))?;
        // Leftovers of a restore a crash cut.
        trees::drop_generation(db, next)?;
        // The second pass re-checks everything as it goes (the file could have changed in
        // place); a failure leaves the marker set and the old generation current.
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
                        tree: tree_handle(db, &physical_name(next, &rec.tree))?,
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
        let fresh = Trees::open(db, next)?;
        let applied = match fresh.meta.get(APPLIED_KEY)? {
            Some(v) => super::decode_applied(&v)?,
            None => 0,
        };
        if applied != index {
            return Err(SnapshotError::WrongIndex {
                expected: index,
                found: applied,
            });
        }
        db.flush()?;
        // The switch: one atomic batch, durable before readers see the new generation.
        let mut switch = sled::Batch::default();
        switch.insert(GENERATION_KEY, &next.to_be_bytes());
        switch.remove(MARKER_KEY);
        marker_tree(self)?.apply_batch(switch)?;
        db.flush()?;
        drop(self.swap_generation(fresh));
        // No reader holds the old trees any more: the swap waited for them.
        trees::drop_other_generations(db, next)?;
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
