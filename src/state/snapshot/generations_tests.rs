//! Restores into a fresh generation of trees: atomic for readers, and correct after a crash
//! at any step (before the switch the old state stays and the restore is redone; after it
//! the old trees are dropped on open).

use std::sync::atomic::{AtomicBool, Ordering};

use super::restore::{set_marker, MARKER_TREE};
use super::tests::{meta, populate, source, temp_state, KMS};
use super::*;
use crate::state::machine::trees::{physical_name, GENERATION_KEY};

/// Names of the trees in the store that are not of generation `g` (nor sled's or ours).
fn stale_trees(s: &StateMachine, g: u64) -> Vec<String> {
    s.db()
        .tree_names()
        .into_iter()
        .filter(|n| {
            n.as_ref() != b"__sled__default"
                && n.as_ref() != MARKER_TREE.as_bytes()
                && crate::state::machine::trees::logical_name(g, n).is_none()
        })
        .map(|n| String::from_utf8_lossy(&n).into_owned())
        .collect()
}

/// Item: a restore is atomic for readers. One thread installs two snapshots in turn (both
/// hold the community and the revocation of user1, at different indexes) while another reads
/// them: a reader must see one state or the other, never a cleared or half-refilled one.
#[test]
fn readers_never_see_a_restore_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let (_, a) = source(dir.path(), 3000);
    let (_, b) = source(dir.path(), 2000);
    assert_ne!(a.index, b.index);
    let dst = temp_state();
    dst.restore_snapshot(dir.path(), a.index).unwrap();
    let done = AtomicBool::new(false);
    let mut reads = 0u64;
    std::thread::scope(|scope| {
        let installer = scope.spawn(|| {
            for i in 0..16 {
                let index = if i % 2 == 0 { b.index } else { a.index };
                dst.restore_snapshot(dir.path(), index).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        while !done.load(Ordering::SeqCst) {
            let revoked = dst.revocation(KMS, "sip:user1@example.org");
            let community = dst.community(KMS);
            let applied = dst.applied_index();
            if installer.is_finished() && !done.load(Ordering::SeqCst) {
                break; // the installer failed: its panic is reported by the scope
            }
            assert!(
                revoked.unwrap().is_some(),
                "a revoked identity was not revoked"
            );
            assert!(community.unwrap().is_some(), "the community disappeared");
            let applied = applied.unwrap();
            assert!(
                applied == a.index || applied == b.index,
                "applied index {applied} is neither snapshot's"
            );
            reads += 1;
        }
    });
    assert!(reads > 0);
    assert_eq!(dst.interrupted_restore().unwrap(), None);
    // Only the current generation's trees are left in the store.
    assert_eq!(dst.read().generation, 17);
    assert!(
        stale_trees(&dst, 17).is_empty(),
        "{:?}",
        stale_trees(&dst, 17)
    );
}

/// A crash while the next generation is being filled: the old state is intact and served;
/// on restart the leftovers are dropped and the restore is redone from the file.
#[test]
fn a_crash_before_the_switch_keeps_the_old_state_and_the_restore_is_redone() {
    let dir = tempfile::tempdir().unwrap();
    let (src, desc) = source(dir.path(), 300);
    let data = tempfile::tempdir().unwrap();
    let old_digest;
    {
        let dst = StateMachine::open(sled::open(data.path()).unwrap()).unwrap();
        populate(&dst, 10);
        old_digest = dst.digest().unwrap();
        // The restore got as far as some records of generation 1.
        set_marker(&dst, desc.index).unwrap();
        let half = dst
            .db()
            .open_tree(physical_name(1, b"communities"))
            .unwrap();
        half.insert(b"half", b"written").unwrap();
        assert_eq!(
            dst.digest().unwrap(),
            old_digest,
            "readers still see the old state"
        );
        dst.flush().unwrap();
    }
    let dst = StateMachine::open(sled::open(data.path()).unwrap()).unwrap();
    assert_eq!(dst.digest().unwrap(), old_digest);
    assert!(
        stale_trees(&dst, 0).is_empty(),
        "{:?}",
        stale_trees(&dst, 0)
    );
    assert_eq!(dst.interrupted_restore().unwrap(), Some(desc.index));
    assert_eq!(
        dst.resume_interrupted_restore(dir.path()).unwrap(),
        Some(desc.index)
    );
    assert_eq!(dst.digest().unwrap(), src.digest().unwrap());
    assert_eq!(dst.read().generation, 1);
    assert!(
        stale_trees(&dst, 1).is_empty(),
        "{:?}",
        stale_trees(&dst, 1)
    );
}

/// A crash after the switch was recorded but before the old trees were dropped: the new
/// state is the one opened, and the old trees go.
#[test]
fn a_crash_after_the_switch_opens_the_new_state_and_drops_the_old_trees() {
    let dir = tempfile::tempdir().unwrap();
    let (src, desc) = source(dir.path(), 300);
    let data = tempfile::tempdir().unwrap();
    {
        let dst = StateMachine::open(sled::open(data.path()).unwrap()).unwrap();
        populate(&dst, 10);
        dst.restore_snapshot(dir.path(), desc.index).unwrap();
        // Put back what the crash would have left: old trees of generations 0 and 1.
        dst.db()
            .open_tree("communities")
            .unwrap()
            .insert(b"old", b"x")
            .unwrap();
        dst.db()
            .open_tree(physical_name(2, b"meta"))
            .unwrap()
            .insert(b"next", b"y")
            .unwrap();
        dst.flush().unwrap();
    }
    let dst = StateMachine::open(sled::open(data.path()).unwrap()).unwrap();
    assert_eq!(dst.read().generation, 1);
    assert_eq!(dst.digest().unwrap(), src.digest().unwrap());
    assert_eq!(dst.interrupted_restore().unwrap(), None);
    assert!(
        stale_trees(&dst, 1).is_empty(),
        "{:?}",
        stale_trees(&dst, 1)
    );
    // The recorded generation is what decides, and it is not state.
    let control = dst.db().open_tree(MARKER_TREE).unwrap();
    assert_eq!(
        control.get(GENERATION_KEY).unwrap().unwrap().as_ref(),
        1u64.to_be_bytes()
    );
    // A snapshot of it is the file it came from, byte for byte.
    let again = tempfile::tempdir().unwrap();
    let d2 = write_snapshot(&dst, again.path(), &meta(desc.index, 3)).unwrap();
    assert_eq!(d2, desc);
    assert!(dst
        .revocation(KMS, "sip:user1@example.org")
        .unwrap()
        .is_some());
}
