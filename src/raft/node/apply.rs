//! The apply half of [`RaftDriver`]: committed entries in order — normal entries in batches
//! (one state-store transaction per run of them), membership changes one by one, with the
//! replicated peer addresses they carry — and the answers to this node's proposals.

use std::collections::HashSet;

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType};

use super::{apply_err, Applier, ConfChangeContext, DriverError, Output, RaftDriver};
use crate::raft::storage::LogStore;
use crate::state::command;
use crate::state::{Envelope, Outcome};

impl<S: LogStore, A: Applier> RaftDriver<S, A> {
    pub(super) fn apply_entries(
        &mut self,
        entries: Vec<Entry>,
        out: &mut Output,
    ) -> Result<(), DriverError> {
        // Consecutive normal entries are applied as one batch (one state-store transaction);
        // a conf change ends a batch.
        let mut batch: Vec<(u64, Option<Envelope>, bool)> = Vec::new();
        let last_term = entries.last().map(|e| e.term);
        for entry in entries {
            let index = entry.index;
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => batch.push((index, None, false)),
                EntryType::EntryNormal => {
                    // An unknown version or a corrupt command stops here, before apply
                    // (everything before it is applied).
                    let env = match command::decode(&entry.data) {
                        Ok(env) => env,
                        Err(source) => {
                            self.apply_batch(std::mem::take(&mut batch), out)?;
                            return Err(DriverError::Decode { index, source });
                        }
                    };
                    let mine = entry.context.as_ref() == self.id.to_be_bytes().as_slice();
                    batch.push((index, Some(env), mine));
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
        batch: Vec<(u64, Option<Envelope>, bool)>,
        out: &mut Output,
    ) -> Result<(), DriverError> {
        let Some(last) = batch.last().map(|b| b.0) else {
            return Ok(());
        };
        let items: Vec<(u64, Option<&Envelope>)> =
            batch.iter().map(|(i, e, _)| (*i, e.as_ref())).collect();
        let outcomes = self
            .applier
            .apply_batch(&items)
            .map_err(|e| apply_err(last, e))?;
        for ((_, env, mine), outcome) in batch.into_iter().zip(outcomes) {
            if let (Some(env), true) = (&env, mine) {
                self.unconfirmed.remove(&env.request_id);
            }
            if let (Some(env), Some(outcome), true) = (env, outcome, mine) {
                if self.pending.remove(&env.request_id) {
                    out.applied.push((env.request_id, outcome));
                }
            }
        }
        self.applied_index = last;
        Ok(())
    }

    fn apply_conf_entry(&mut self, entry: Entry, out: &mut Output) -> Result<(), DriverError> {
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
        out: &mut Output,
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
            out.applied.push((ctx.request_id, Outcome::Applied));
        }
        Ok(())
    }
}
