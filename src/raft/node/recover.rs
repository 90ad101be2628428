//! The configuration a restarted node starts from (issue 10, item 8). The conf state is
//! persisted in the Raft log store when a conf change is applied, while the state machine
//! records the same entry's applied index in its own store; a crash can keep one and lose the
//! other. raft-rs replays from the state machine's applied index over the stored conf state,
//! so a conf state *ahead* of the applied index makes it replay a change onto a configuration
//! that already holds it (refused: "already joint", "not joint" — the node halted on every
//! restart), and one *behind* would never be corrected (the entry is not replayed).
//!
//! So before raft-rs starts, the conf state is brought to exactly the applied index: from
//! the newest configuration known as of an index at or below it — the stored one when it is
//! not ahead, else the last snapshot's, else the bootstrap one — plus the conf changes in the
//! log after that, up to the applied index. raft-rs then replays the rest as usual.

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType};
use raft::{Config, GetEntriesContext, RawNode};

use super::DriverError;
use crate::raft::storage::{LogStore, MemLogStore};

/// Most bytes of log read at once while looking for conf changes.
const SCAN_BYTES: u64 = 4 * 1024 * 1024;

/// Makes the store's conf state the configuration as of `applied`. Writes only when it
/// differs from what is stored (or the stored one is ahead).
pub(super) fn conf_state_at_applied<S: LogStore>(
    id: u64,
    store: &mut S,
    applied: u64,
) -> Result<(), DriverError> {
    let stored_index = store.conf_state_index();
    let stored = store.initial_state()?.conf_state;
    let snap = store.snapshot_metadata();
    let (base_index, base) = match stored_index {
        Some(i) if i <= applied && i >= snap.index => (i, stored.clone()),
        _ if snap.index > 0 && snap.index <= applied => (snap.index, snap.get_conf_state().clone()),
        _ if snap.index == 0 && store.initial_conf_state() != ConfState::default() => {
            (0, store.initial_conf_state())
        }
        // No configuration is known as of an index at or below the applied one (a new
        // joining node, or a log from before these were recorded): leave it to raft-rs.
        _ => return Ok(()),
    };
    let changes = conf_entries(store, base_index, applied)?;
    let at_applied = if changes.is_empty() {
        base
    } else {
        fold(id, base, &changes)?
    };
    if at_applied != stored || stored_index.is_none_or(|i| i > applied) {
        store.set_conf_state(applied, &at_applied)?;
    }
    Ok(())
}

/// The conf change entries in `(after, upto]`.
fn conf_entries<S: LogStore>(store: &S, after: u64, upto: u64) -> Result<Vec<Entry>, DriverError> {
    let mut out = Vec::new();
    let mut low = after + 1;
    while low <= upto {
        let batch = store.entries(low, upto + 1, SCAN_BYTES, GetEntriesContext::empty(false))?;
        let Some(last) = batch.last().map(|e| e.index) else {
            break;
        };
        out.extend(
            batch
                .into_iter()
                .filter(|e| e.get_entry_type() != EntryType::EntryNormal),
        );
        low = last + 1;
    }
    Ok(out)
}

/// Applies `changes` to `base` the way raft-rs does, on a scratch node.
fn fold(id: u64, base: ConfState, changes: &[Entry]) -> Result<ConfState, DriverError> {
    let config = Config {
        id,
        ..Config::default()
    };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let mut scratch = RawNode::new(&config, MemLogStore::with_conf_state(base), &logger)?;
    for e in changes {
        let refused = |e: &Entry, reason: String| DriverError::ConfChange {
            index: e.index,
            reason,
        };
        let res = match e.get_entry_type() {
            EntryType::EntryConfChange => {
                let cc = ConfChange::parse_from_bytes(&e.data)
                    .map_err(|err| refused(e, err.to_string()))?;
                scratch.apply_conf_change(&cc)
            }
            EntryType::EntryConfChangeV2 => {
                let cc = ConfChangeV2::parse_from_bytes(&e.data)
                    .map_err(|err| refused(e, err.to_string()))?;
                scratch.apply_conf_change(&cc)
            }
            EntryType::EntryNormal => continue,
        };
        res.map_err(|err| refused(e, err.to_string()))?;
    }
    Ok(scratch.raft.prs().conf().to_conf_state())
}
