//! [`StateApplier`]: the [`Applier`] over the sled [`StateMachine`] — committed commands,
//! membership addresses, and snapshots as files in the node's snapshot directory
//! ([`crate::state::snapshot`]). The Raft snapshot message carries only a small descriptor;
//! the file itself is fetched in chunks before the message is stepped, so `restore` finds it
//! on local disk.

use std::path::PathBuf;

use raft::eraftpb::{Snapshot, SnapshotMetadata};

use crate::raft::node::{Applied, Applier, SnapshotJob};
use crate::raft::storage::{LogStore, StoreError};
use crate::state::command::{self, DecodeError};
use crate::state::snapshot::{self, SnapshotDescriptor, SnapshotError};
use crate::state::{Envelope, Outcome, StateError, StateMachine};

/// Errors of [`StateApplier`] beyond the state machine's own.
#[derive(Debug, thiserror::Error)]
pub enum StateApplierError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Log(#[from] StoreError),
    /// A committed entry this binary cannot read (a newer command version, or corrupt): the
    /// node stops before it rather than skip it.
    #[error("entry {index}: {source}")]
    Decode { index: u64, source: DecodeError },
    #[error(
        "the state was restored to {applied}, beyond the log, and snapshot file {index} is missing"
    )]
    MissingSnapshot { applied: u64, index: u64 },
}

/// The [`Applier`] over the sled [`StateMachine`].
pub struct StateApplier {
    state: StateMachine,
    snap_dir: PathBuf,
}

impl StateApplier {
    /// Opens the applier; a restore that a crash interrupted is completed first.
    pub fn new(state: StateMachine, snap_dir: PathBuf) -> Result<Self, StateApplierError> {
        if let Some(index) = state.resume_interrupted_restore(&snap_dir)? {
            tracing::warn!(index, "completed a snapshot restore interrupted by a crash");
        }
        Ok(Self { state, snap_dir })
    }

    /// Without snapshots (tests of the log path only).
    pub fn open(db: sled::Db) -> Result<Self, StateError> {
        Ok(Self {
            state: StateMachine::open(db)?,
            snap_dir: PathBuf::new(),
        })
    }

    pub fn state(&self) -> &StateMachine {
        &self.state
    }

    /// The file of snapshot `index` is on local disk.
    pub fn has_snapshot_file(&self, index: u64) -> bool {
        snapshot::snapshot_path(&self.snap_dir, index).is_file()
    }

    /// Brings the state and the log together after a crash:
    /// - a crash between restoring a snapshot into the state and recording it in the log
    ///   leaves the state ahead of the log: record the snapshot's metadata in the log now;
    /// - a power loss can take back sled writes the log compaction relied on (sled's flush is
    ///   not an fsync), leaving the state behind the log's first entry: restore the state
    ///   from the snapshot file that covered the compaction (written and fsynced first).
    pub fn recover<S: LogStore>(&self, mut store: S) -> Result<S, StateApplierError> {
        let applied = self.state.applied_index()?;
        let snap = store.snapshot_metadata().index;
        if applied < snap {
            tracing::warn!(
                applied,
                snapshot = snap,
                "state behind the compacted log: restoring the snapshot"
            );
            self.state.restore_snapshot(&self.snap_dir, snap)?;
            return Ok(store);
        }
        let last = store.last_index().map_err(StoreError::from)?;
        if applied > last {
            let path = snapshot::snapshot_path(&self.snap_dir, applied);
            if !path.is_file() {
                return Err(StateApplierError::MissingSnapshot {
                    applied,
                    index: applied,
                });
            }
            let meta = snapshot::read_meta(&path)?;
            store.apply_snapshot(&meta)?;
        }
        Ok(store)
    }

    /// The snapshot recorded in the log, if its file is still here (after a restart), ready
    /// to be offered again.
    pub fn existing_snapshot<S: LogStore>(&self, store: &S) -> Option<Snapshot> {
        let meta = store.snapshot_metadata();
        if meta.index == 0 {
            return None;
        }
        let path = snapshot::snapshot_path(&self.snap_dir, meta.index);
        let v = snapshot::verify_snapshot(&path).ok()?;
        if v.meta.index != meta.index {
            return None;
        }
        let desc = SnapshotDescriptor {
            index: v.meta.index,
            term: v.meta.term,
            size: v.size,
            sha256: v.sha256,
        };
        let mut snap = Snapshot::default();
        snap.set_metadata(meta);
        snap.data = desc.encode().into();
        Some(snap)
    }
}

fn decode(index: u64, data: &[u8]) -> Result<Envelope, StateApplierError> {
    command::decode(data).map_err(|source| StateApplierError::Decode { index, source })
}

impl Applier for StateApplier {
    type Error = StateApplierError;
    type Outcome = Outcome;

    fn applied_index(&self) -> Result<u64, StateApplierError> {
        Ok(self.state.applied_index()?)
    }

    fn apply(&mut self, index: u64, data: &[u8]) -> Result<Applied<Outcome>, StateApplierError> {
        let env = decode(index, data)?;
        let outcome = self.state.apply(index, &env)?;
        Ok(Applied {
            request_id: env.request_id,
            outcome,
        })
    }

    fn membership_applied(&self) -> Outcome {
        Outcome::Applied
    }

    fn apply_empty(&mut self, index: u64) -> Result<(), StateApplierError> {
        Ok(self.state.apply_empty(index)?)
    }

    /// Decodes the whole batch first; an entry that does not decode ends it: the entries
    /// before it are applied, then the error is returned.
    fn apply_batch(
        &mut self,
        items: &[(u64, Option<&[u8]>)],
    ) -> Result<Vec<Option<Applied<Outcome>>>, StateApplierError> {
        let mut envs = Vec::with_capacity(items.len());
        let mut failed = None;
        for (index, data) in items {
            match data.map(|d| decode(*index, d)).transpose() {
                Ok(env) => envs.push((*index, env)),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let refs: Vec<(u64, Option<&Envelope>)> =
            envs.iter().map(|(i, e)| (*i, e.as_ref())).collect();
        let outcomes = self.state.apply_batch(&refs)?;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(envs
            .iter()
            .zip(outcomes)
            .map(|((_, env), outcome)| {
                env.as_ref().map(|env| Applied {
                    request_id: env.request_id,
                    outcome,
                })
            })
            .collect())
    }

    fn apply_members(
        &mut self,
        index: u64,
        added: &[(u64, String)],
        removed: &[u64],
    ) -> Result<(), StateApplierError> {
        Ok(self.state.apply_members(index, added, removed)?)
    }

    fn build_snapshot(&mut self, meta: &SnapshotMetadata) -> Result<Vec<u8>, StateApplierError> {
        // The file must survive a power loss before the log behind it is compacted.
        self.state.flush()?;
        let desc = snapshot::write_snapshot(&self.state, &self.snap_dir, meta)?;
        Ok(desc.encode())
    }

    /// The same build on another thread: the state is shared (sled and the tree generation
    /// behind an `Arc`), and the driver applies nothing until the job is done.
    fn snapshot_job(&self, meta: &SnapshotMetadata) -> Option<SnapshotJob> {
        let (state, dir, meta) = (self.state.clone(), self.snap_dir.clone(), meta.clone());
        Some(Box::new(move || {
            state.flush().map_err(|e| e.to_string())?;
            snapshot::write_snapshot(&state, &dir, &meta)
                .map(|desc| desc.encode())
                .map_err(|e| e.to_string())
        }))
    }

    fn restore(&mut self, snap: &Snapshot) -> Result<(), StateApplierError> {
        let desc = SnapshotDescriptor::decode(&snap.data)?;
        let index = snap.get_metadata().index;
        if desc.index != index {
            return Err(SnapshotError::Corrupt(format!(
                "descriptor for {} in the snapshot message of {index}",
                desc.index
            ))
            .into());
        }
        self.state.restore_snapshot(&self.snap_dir, index)?;
        Ok(())
    }
}

/// The conformance suite of the state seam, run on sled in memory (`temporary`) and on disk
/// with a reopen between writes, as `storage::suite` is for the log seam.
#[cfg(test)]
mod suite {
    use super::*;
    use crate::raft::testnet::create_community;
    use crate::state::command::COMMAND_VERSION;
    use crate::state::Command;

    /// The logged bytes of a community creation with request id `rid`.
    fn env(rid: u64) -> Vec<u8> {
        bytes(&create_community(rid))
    }

    fn bytes(e: &Envelope) -> Vec<u8> {
        command::try_encode(e).unwrap()
    }

    fn outcome(a: &Option<Applied<Outcome>>) -> Option<Outcome> {
        a.as_ref().and_then(|a| a.outcome.clone())
    }

    /// Ordered, gap-free, idempotent apply; `reopen` simulates a restart between writes.
    fn conformance(mut open: impl FnMut() -> StateApplier, persistent: bool) {
        let mut a = open();
        assert_eq!(a.applied_index().unwrap(), 0);
        assert_eq!(a.apply(1, &env(1)).unwrap().request_id, 1);
        assert!(a.apply(1, &env(1)).unwrap().outcome.is_none(), "a replay");
        a.apply_empty(2).unwrap();
        a.apply_members(3, &[(4, "127.0.0.1:9004".into())], &[])
            .unwrap();
        assert_eq!(a.applied_index().unwrap(), 3);
        // Replay of applied entries changes nothing and reports nothing.
        let digest = a.state().digest().unwrap();
        assert!(a.apply(1, &env(1)).unwrap().outcome.is_none());
        a.apply_empty(2).unwrap();
        assert_eq!(a.state().digest().unwrap(), digest);
        // A gap is refused and changes nothing.
        assert!(a.apply(5, &env(5)).is_err());
        assert!(a.apply_members(5, &[], &[4]).is_err());
        assert_eq!(a.state().digest().unwrap(), digest);
        if persistent {
            a.state().flush().unwrap();
            drop(a);
            a = open();
            assert_eq!(a.applied_index().unwrap(), 3, "resumes after a restart");
            assert_eq!(a.state().digest().unwrap(), digest);
        }
        assert!(a.apply(4, &env(4)).unwrap().outcome.is_some());
        a.apply_members(5, &[], &[4]).unwrap();
        assert!(a.state().members().unwrap().is_empty());
        assert_eq!(a.state().communities().unwrap().len(), 2);
        // A batch: replayed items report nothing, new ones in order, one applied index.
        let (e5, e6, e8) = (env(5), env(6), env(8));
        let outs = a
            .apply_batch(&[
                (5, Some(e5.as_slice())),
                (6, Some(e6.as_slice())),
                (7, None),
                (8, Some(e8.as_slice())),
            ])
            .unwrap();
        assert!(outcome(&outs[0]).is_none(), "index 5 was applied before");
        assert_eq!(outs[0].as_ref().map(|a| a.request_id), Some(5));
        assert!(outcome(&outs[1]).is_some() && outs[2].is_none() && outcome(&outs[3]).is_some());
        assert_eq!(a.applied_index().unwrap(), 8);
        assert_eq!(a.state().communities().unwrap().len(), 4);
        // A refusal inside a batch refuses only its own entry.
        let refused = bytes(&Envelope {
            version: COMMAND_VERSION,
            request_id: 99,
            command: Command::ReinstateIdentity {
                kms_uri: "kms5.example.org".into(),
                identity: "sip:never-revoked@example.org".into(),
            },
        });
        let (e10, e11) = (env(10), env(11));
        let outs = a
            .apply_batch(&[
                (9, Some(e10.as_slice())),
                (10, Some(refused.as_slice())),
                (11, Some(e11.as_slice())),
            ])
            .unwrap();
        assert_eq!(outcome(&outs[0]), Some(Outcome::Applied));
        assert!(matches!(outcome(&outs[1]), Some(Outcome::Rejected(_))));
        assert_eq!(outs[1].as_ref().map(|a| a.request_id), Some(99));
        assert_eq!(outcome(&outs[2]), Some(Outcome::Applied));
        assert_eq!(a.applied_index().unwrap(), 11);
        assert_eq!(a.state().communities().unwrap().len(), 6);
        // A gap inside a batch is refused whole.
        let digest = a.state().digest().unwrap();
        assert!(a
            .apply_batch(&[(12, None), (14, Some(e8.as_slice()))])
            .is_err());
        assert_eq!(a.state().digest().unwrap(), digest);
        assert_eq!(a.applied_index().unwrap(), 11);
        // Bytes that are no command stop the batch there: the entries before it are applied.
        let (e12, e14) = (env(12), env(14));
        let err = a
            .apply_batch(&[
                (12, Some(e12.as_slice())),
                (13, Some(b"\xff\xff\xff".as_slice())),
                (14, Some(e14.as_slice())),
            ])
            .unwrap_err();
        assert!(
            matches!(err, StateApplierError::Decode { index: 13, .. }),
            "{err}"
        );
        assert_eq!(a.applied_index().unwrap(), 12);
    }

    #[test]
    fn in_memory_sled() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let mut db = Some(db);
        conformance(
            || StateApplier::open(db.take().expect("opened once")).unwrap(),
            false,
        );
    }

    #[test]
    fn sled_on_disk_with_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        conformance(
            || {
                let state = StateMachine::open(sled::open(&path).unwrap()).unwrap();
                StateApplier::new(state, dir.path().join("snap")).unwrap()
            },
            true,
        );
    }
}
