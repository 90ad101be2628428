//! The apply half of [`RaftDriver`]: committed entries in order — normal entries in batches
//! (one state-store transaction per run of them), membership changes one by one, with the
//! replicated peer addresses they carry — and the answers to this node's proposals.

use std::collections::HashSet;

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType};

use super::{apply_err, Applier, ConfChangeContext, DriverError, Output, RaftDriver};
use crate::raft::storage::LogStore;

/// One normal entry of a batch: its index, the entry itself (`None`: empty; moved, its bytes
/// are not copied) and whether this node proposed it.
type BatchItem = (u64, Option<Entry>, bool);

impl<S: LogStore, A: Applier> RaftDriver<S, A> {
    pub(super) fn apply_entries(
        &mut self,
        entries: Vec<Entry>,
        out: &mut Output<A::Outcome>,
    ) -> Result<(), DriverError> {
        // While a snapshot is built off this thread the state must stay at its index.
        if self.building.is_some() {
            self.deferred.extend(entries);
            return Ok(());
        }
        // Consecutive normal entries are applied as one batch (one state-store transaction);
        // a conf change ends a batch.
        let mut batch: Vec<BatchItem> = Vec::new();
        let last_term = entries.last().map(|e| e.term);
        for entry in entries {
            let index = entry.index;
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => batch.push((index, None, false)),
                EntryType::EntryNormal => {
                    let mine = entry.context.as_ref() == self.id.to_be_bytes().as_slice();
                    batch.push((index, Some(entry), mine));
                }
                _ => {
                    self.apply_batch(std::mem::take(&mut batch), out)?;
                    self.apply_conf_entry(entry, out)?;
                }
            }
        }
        self.apply_batch(batch, out)?;
        if let Some(term) = last_term {
            self.applied_term = term;
        }
        Ok(())
    }

    fn apply_batch(
        &mut self,
        batch: Vec<BatchItem>,
        out: &mut Output<A::Outcome>,
    ) -> Result<(), DriverError> {
        let Some(last) = batch.last().map(|b| b.0) else {
            return Ok(());
        };
        let items: Vec<(u64, Option<&[u8]>)> = batch
            .iter()
            .map(|(i, entry, _)| (*i, entry.as_ref().map(|e| e.data.as_ref())))
            .collect();
        // An unknown version or a corrupt command is the applier's error: the driver stops
        // there (the applier applied nothing of the failed batch).
        let results = self
            .applier
            .apply_batch(&items)
            .map_err(|e| apply_err(last, e))?;
        for ((_, _, mine), applied) in batch.into_iter().zip(results) {
            let (Some(applied), true) = (applied, mine) else {
                continue;
            };
            self.unconfirmed.remove(&applied.request_id);
            if let Some(outcome) = applied.outcome {
                if self.pending.remove(&applied.request_id) {
                    out.applied.push((applied.request_id, outcome));
                }
            }
        }
        self.applied_index = last;
        Ok(())
    }

    fn apply_conf_entry(
        &mut self,
        entry: Entry,
        out: &mut Output<A::Outcome>,
    ) -> Result<(), DriverError> {
        let index = entry.index;
        match entry.get_entry_type() {
            EntryType::EntryConfChange => {
                let cc = ConfChange::parse_from_bytes(&entry.data).map_err(|e| {
                    DriverError::ConfChange {
                        index,
                        reason: e.to_string(),
                    }
                })?;
                self.apply_conf_change(index, &cc, &entry.context, out)?;
            }
            EntryType::EntryConfChangeV2 => {
                let cc = ConfChangeV2::parse_from_bytes(&entry.data).map_err(|e| {
                    DriverError::ConfChange {
                        index,
                        reason: e.to_string(),
                    }
                })?;
                self.apply_conf_change(index, &cc, &entry.context, out)?;
            }
            EntryType::EntryNormal => {}
        }
        self.applied_index = index;
        Ok(())
    }

    fn apply_conf_change(
        &mut self,
        index: u64,
        cc: &impl raft_proto::ConfChangeI,
        context: &[u8],
        out: &mut Output<A::Outcome>,
    ) -> Result<(), DriverError> {
        let ctx = ConfChangeContext::decode(context)
            .map_err(|reason| DriverError::ConfChange { index, reason })?;
        let before = self.conf_state();
        let cs = self
            .node
            .apply_conf_change(cc)
            .map_err(|e| DriverError::ConfChange {
                index,
                reason: e.to_string(),
            })?;
        self.node.mut_store().set_conf_state(index, &cs)?;
        let members = |c: &ConfState| -> HashSet<u64> {
            c.voters
                .iter()
                .chain(&c.learners)
                .chain(&c.voters_outgoing)
                .chain(&c.learners_next)
                .copied()
                .collect()
        };
        let (old, new) = (members(&before), members(&cs));
        let mut removed: Vec<u64> = old.difference(&new).copied().collect();
        removed.sort_unstable();
        let added: Vec<(u64, String)> = ctx
            .addresses
            .into_iter()
            .filter(|(id, _)| new.contains(id))
            .collect();
        self.applier
            .apply_members(index, &added, &removed)
            .map_err(|e| apply_err(index, e))?;
        out.membership_changed = true;
        if !added.is_empty() {
            self.snapshot_for_new_member = true;
        }
        if ctx.proposer == self.id && self.pending.remove(&ctx.request_id) {
            let outcome = self.applier.membership_applied();
            out.applied.push((ctx.request_id, outcome));
        }
        Ok(())
    }
}
