//! The Raft-facing writes of the state machine beyond [`StateMachine::apply`]: a whole round
//! of committed entries in one transaction ([`StateMachine::apply_batch`]) and membership
//! changes with the peer addresses they record ([`StateMachine::apply_members`]).

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{apply_checked, Abort, StateError, StateMachine, APPLIED_KEY};
use crate::state::command::{Envelope, Outcome, COMMAND_VERSION};

impl StateMachine {
    /// Applies consecutive entries (`None`: an entry without a command) in ONE sled
    /// transaction with the new applied index: a whole Raft round costs one state-store write.
    /// Returns one outcome per item (`None` for replayed or empty entries). Entries at or
    /// below the applied index are skipped; the rest must follow it without a gap.
    pub fn apply_batch(
        &self,
        items: &[(u64, Option<&Envelope>)],
    ) -> Result<Vec<Option<Outcome>>, StateError> {
        for (_, env) in items {
            if let Some(env) = env {
                if env.version > COMMAND_VERSION {
                    return Err(StateError::UnknownVersion(env.version));
                }
            }
        }
        let t = self.read();
        let applied = t.applied_index()?;
        let skip = items.iter().take_while(|(i, _)| *i <= applied).count();
        let todo = &items[skip..];
        let Some(last) = todo.last().map(|t| t.0) else {
            return Ok(vec![None; items.len()]);
        };
        for (n, (index, _)) in todo.iter().enumerate() {
            if *index != applied + 1 + n as u64 {
                return Err(StateError::OutOfOrder {
                    index: *index,
                    applied: applied + n as u64,
                });
            }
        }
        let res = t.transaction(|tx| {
            for env in todo.iter().filter_map(|(_, env)| *env) {
                apply_checked(tx, env)?;
            }
            tx.meta.insert(APPLIED_KEY, &last.to_be_bytes())?;
            Ok(())
        });
        match res {
            Ok(()) => {
                let mut all = vec![None; skip];
                all.extend(todo.iter().map(|(_, env)| env.map(|_| Outcome::Applied)));
                Ok(all)
            }
            // A refusal aborted the whole batch, so nothing of it was written: apply the
            // entries one by one, each refusal then writing only its applied index.
            Err(TransactionError::Abort(Abort::Reject(_))) => {
                drop(t); // `apply` takes the trees itself
                let mut all = vec![None; skip];
                for (index, env) in todo {
                    all.push(match env {
                        Some(env) => self.apply(*index, env)?,
                        None => {
                            self.apply_empty(*index)?;
                            None
                        }
                    });
                }
                Ok(all)
            }
            Err(TransactionError::Abort(Abort::Fail(e))) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StateError::Store(e)),
        }
    }

    /// Applies a membership change at `index`: records the peer addresses of added nodes and
    /// forgets removed ones, with the applied index, in one transaction.
    pub fn apply_members(
        &self,
        index: u64,
        added: &[(u64, String)],
        removed: &[u64],
    ) -> Result<(), StateError> {
        let t = self.read();
        let applied = t.applied_index()?;
        if index <= applied {
            return Ok(());
        }
        if index != applied + 1 {
            return Err(StateError::OutOfOrder { index, applied });
        }
        let res = (&t.members, &t.meta).transaction(|(mb, m)| {
            for (id, addr) in added {
                mb.insert(&id.to_be_bytes(), addr.as_bytes())?;
            }
            for id in removed {
                mb.remove(&id.to_be_bytes())?;
            }
            m.insert(APPLIED_KEY, &index.to_be_bytes())?;
            Ok::<_, ConflictableTransactionError<StateError>>(())
        });
        match res {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StateError::Store(e)),
        }
    }
}
