//! The state machine: the KMS state in `sled`, changed only by [`StateMachine::apply`].
//!
//! `apply` is a deterministic function of (state, index, envelope): no clock, no RNG, no I/O
//! beyond the sled transaction that writes the change *and* the applied index together, so a
//! crash between two entries leaves a state that replay from `applied_index() + 1` completes
//! exactly once. A refused command (unknown community, ...) is an [`Outcome::Rejected`] — the
//! same answer on every replica — and still advances the applied index; an I/O failure is a
//! [`StateError`] and the node must stop rather than diverge.
//!
//! Trees: `communities` (kms_uri → bincode `Community`), `revocations`
//! (kms_uri ‖ 0x00 ‖ identity → bincode `Revocation`), `meta` (applied index, barrier check),
//! `members` (Raft node id, big endian → peer address; written by membership changes).
//! `snapshot` adds `__sealkm_restore` (the restore marker), which is not state: snapshots skip
//! it and [`StateMachine::digest`] does not iterate it.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use thiserror::Error;

use super::command::{Command, Envelope, Outcome, COMMAND_VERSION};
use crate::kms::community::Community;

/// Key of the applied index in the [`META_TREE`] (snapshots check it).
pub(crate) const APPLIED_KEY: &[u8] = b"applied_index";
pub(crate) const META_TREE: &str = "meta";
const BARRIER_KEY: &[u8] = b"barrier_check";

#[derive(Debug, Error)]
pub enum StateError {
    #[error("state store I/O error: {0}")]
    Store(#[from] sled::Error),
    #[error("state store holds an undecodable record under {0}")]
    Corrupt(String),
    #[error("entry {index} is not the next one (applied index is {applied})")]
    OutOfOrder { index: u64, applied: u64 },
    #[error("command version {0} is unknown to this binary")]
    UnknownVersion(u16),
}

/// An identity revocation (TS 33.180: a revoked user gets no further key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub at_unix: u64,
    pub reason: String,
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(v, bincode::config::standard()).unwrap_or_default()
}

fn dec<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, StateError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|_| StateError::Corrupt(what.to_owned()))
}

fn revocation_key(kms_uri: &str, identity: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(kms_uri.len() + 1 + identity.len());
    k.extend_from_slice(kms_uri.as_bytes());
    k.push(0);
    k.extend_from_slice(identity.as_bytes());
    k
}

/// The replicated KMS state.
#[derive(Clone)]
pub struct StateMachine {
    db: sled::Db,
    communities: sled::Tree,
    revocations: sled::Tree,
    meta: sled::Tree,
    members: sled::Tree,
}

type TxResult<T> = Result<T, ConflictableTransactionError<StateError>>;

impl StateMachine {
    /// Opens (or creates) the state in `db`.
    pub fn open(db: sled::Db) -> Result<Self, StateError> {
        Ok(Self {
            communities: db.open_tree("communities")?,
            revocations: db.open_tree("revocations")?,
            meta: db.open_tree(META_TREE)?,
            members: db.open_tree("members")?,
            db,
        })
    }

    /// The whole store, for snapshots (`state::snapshot` streams and restores every tree).
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Index of the last applied entry (0 for a new state).
    pub fn applied_index(&self) -> Result<u64, StateError> {
        match self.meta.get(APPLIED_KEY)? {
            None => Ok(0),
            Some(v) => {
                let arr: [u8; 8] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| StateError::Corrupt("applied index".into()))?;
                Ok(u64::from_be_bytes(arr))
            }
        }
    }

    /// Applies entry `index`. Entries at or below the applied index are skipped (replay is
    /// idempotent); a gap is an error.
    pub fn apply(&self, index: u64, env: &Envelope) -> Result<Option<Outcome>, StateError> {
        if env.version > COMMAND_VERSION {
            return Err(StateError::UnknownVersion(env.version));
        }
        let applied = self.applied_index()?;
        if index <= applied {
            return Ok(None);
        }
        if index != applied + 1 {
            return Err(StateError::OutOfOrder { index, applied });
        }
        let res = (&self.communities, &self.revocations, &self.meta).transaction(|(c, r, m)| {
            let outcome = apply_in_tx(c, r, m, &env.command)?;
            m.insert(APPLIED_KEY, &index.to_be_bytes())?;
            Ok(outcome)
        });
        match res {
            Ok(o) => Ok(Some(o)),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StateError::Store(e)),
        }
    }

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
        let applied = self.applied_index()?;
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
        let res = (&self.communities, &self.revocations, &self.meta).transaction(|(c, r, m)| {
            let mut outs = Vec::with_capacity(todo.len());
            for (_, env) in todo {
                outs.push(match env {
                    Some(env) => Some(apply_in_tx(c, r, m, &env.command)?),
                    None => None,
                });
            }
            m.insert(APPLIED_KEY, &last.to_be_bytes())?;
            Ok(outs)
        });
        match res {
            Ok(outs) => {
                let mut all = vec![None; skip];
                all.extend(outs);
                Ok(all)
            }
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StateError::Store(e)),
        }
    }

    /// Advances the applied index over a log entry that carries no command (a new leader's
    /// empty entry, a membership change). Same ordering rules as [`StateMachine::apply`].
    pub fn apply_empty(&self, index: u64) -> Result<(), StateError> {
        let applied = self.applied_index()?;
        if index <= applied {
            return Ok(());
        }
        if index != applied + 1 {
            return Err(StateError::OutOfOrder { index, applied });
        }
        self.meta.insert(APPLIED_KEY, &index.to_be_bytes())?;
        Ok(())
    }

    /// Applies a membership change at `index`: records the peer addresses of added nodes and
    /// forgets removed ones, with the applied index, in one transaction.
    pub fn apply_members(
        &self,
        index: u64,
        added: &[(u64, String)],
        removed: &[u64],
    ) -> Result<(), StateError> {
        let applied = self.applied_index()?;
        if index <= applied {
            return Ok(());
        }
        if index != applied + 1 {
            return Err(StateError::OutOfOrder { index, applied });
        }
        let res = (&self.members, &self.meta).transaction(|(mb, m)| {
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

    /// Peer addresses recorded by membership changes, by node id.
    pub fn members(&self) -> Result<Vec<(u64, String)>, StateError> {
        let mut out = Vec::new();
        for kv in self.members.iter() {
            let (k, v) = kv?;
            let id: [u8; 8] = k
                .as_ref()
                .try_into()
                .map_err(|_| StateError::Corrupt("member id".into()))?;
            let addr = String::from_utf8(v.to_vec())
                .map_err(|_| StateError::Corrupt("member address".into()))?;
            out.push((u64::from_be_bytes(id), addr));
        }
        Ok(out)
    }

    /// Makes everything applied so far durable against a process crash (sled's flush is not
    /// an fsync; durability against power loss comes from the Raft log).
    pub fn flush(&self) -> Result<(), StateError> {
        self.db.flush()?;
        Ok(())
    }

    pub fn community(&self, kms_uri: &str) -> Result<Option<Community>, StateError> {
        self.communities
            .get(kms_uri.as_bytes())?
            .map(|v| dec("community", &v))
            .transpose()
    }

    pub fn communities(&self) -> Result<Vec<Community>, StateError> {
        self.communities
            .iter()
            .values()
            .map(|v| dec("community", &v?))
            .collect()
    }

    pub fn revocation(
        &self,
        kms_uri: &str,
        identity: &str,
    ) -> Result<Option<Revocation>, StateError> {
        self.revocations
            .get(revocation_key(kms_uri, identity))?
            .map(|v| dec("revocation", &v))
            .transpose()
    }

    pub fn barrier_check(&self) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.meta.get(BARRIER_KEY)?.map(|v| v.to_vec()))
    }

    /// SHA-256 over every tree's keys and values in order: equal digests mean equal states.
    /// The trees are listed here by name (a new state tree must be added); the restore
    /// marker tree is deliberately not one of them.
    pub fn digest(&self) -> Result<[u8; 32], StateError> {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for (name, tree) in [
            ("communities", &self.communities),
            ("revocations", &self.revocations),
            (META_TREE, &self.meta),
            ("members", &self.members),
        ] {
            ctx.update(name.as_bytes());
            for kv in tree.iter() {
                let (k, v) = kv?;
                ctx.update(&(k.len() as u64).to_be_bytes());
                ctx.update(&k);
                ctx.update(&(v.len() as u64).to_be_bytes());
                ctx.update(&v);
            }
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        Ok(out)
    }
}

fn get_community(c: &TransactionalTree, kms_uri: &str) -> TxResult<Option<Community>> {
    match c.get(kms_uri.as_bytes())? {
        None => Ok(None),
        Some(v) => dec("community", &v)
            .map(Some)
            .map_err(ConflictableTransactionError::Abort),
    }
}

fn apply_in_tx(
    c: &TransactionalTree,
    r: &TransactionalTree,
    m: &TransactionalTree,
    cmd: &Command,
) -> TxResult<Outcome> {
    let rejected = |s: String| Ok(Outcome::Rejected(s));
    match cmd {
        Command::CreateCommunity { kms_uri, period } => match get_community(c, kms_uri)? {
            Some(existing) if existing.period == *period => Ok(Outcome::Applied),
            Some(_) => rejected(format!(
                "community {kms_uri} exists with other key period parameters"
            )),
            None => {
                c.insert(
                    kms_uri.as_bytes(),
                    enc(&Community::new(kms_uri.clone(), *period)),
                )?;
                Ok(Outcome::Applied)
            }
        },
        Command::AddCertificate {
            kms_uri,
            certificate,
        } => {
            let Some(mut community) = get_community(c, kms_uri)? else {
                return rejected(format!("unknown community {kms_uri}"));
            };
            if community.certificate(&certificate.cert_uri).is_some() {
                return rejected(format!("certificate {} exists", certificate.cert_uri));
            }
            if community.next_cert_uri().0 != certificate.serial {
                return rejected(format!(
                    "certificate serial {} is not the next one",
                    certificate.serial
                ));
            }
            community.certificates.push(certificate.clone());
            community.cache_num += 1;
            c.insert(kms_uri.as_bytes(), enc(&community))?;
            Ok(Outcome::Applied)
        }
        Command::RevokeCertificate { kms_uri, cert_uri } => {
            let Some(mut community) = get_community(c, kms_uri)? else {
                return rejected(format!("unknown community {kms_uri}"));
            };
            let Some(cert) = community.certificate_mut(cert_uri) else {
                return rejected(format!("unknown certificate {cert_uri}"));
            };
            if cert.revoked {
                return rejected(format!("certificate {cert_uri} is already revoked"));
            }
            cert.revoked = true;
            community.cache_num += 1;
            c.insert(kms_uri.as_bytes(), enc(&community))?;
            Ok(Outcome::Applied)
        }
        Command::RevokeIdentity {
            kms_uri,
            identity,
            at_unix,
            reason,
        } => {
            if get_community(c, kms_uri)?.is_none() {
                return rejected(format!("unknown community {kms_uri}"));
            }
            let rev = Revocation {
                at_unix: *at_unix,
                reason: reason.clone(),
            };
            r.insert(revocation_key(kms_uri, identity), enc(&rev))?;
            Ok(Outcome::Applied)
        }
        Command::ReinstateIdentity { kms_uri, identity } => {
            if r.remove(revocation_key(kms_uri, identity))?.is_none() {
                return rejected(format!("{identity} is not revoked"));
            }
            Ok(Outcome::Applied)
        }
        Command::SetBarrierCheck { sealed } => {
            if m.get(BARRIER_KEY)?.is_some() {
                return rejected("barrier check already set".into());
            }
            m.insert(BARRIER_KEY, sealed.as_slice())?;
            Ok(Outcome::Applied)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kms::period::PeriodParams;

    fn env(request_id: u64, command: Command) -> Envelope {
        Envelope {
            version: COMMAND_VERSION,
            request_id,
            command,
        }
    }

    fn log() -> Vec<Envelope> {
        let period = PeriodParams {
            period_s: 100,
            offset_s: 0,
        };
        vec![
            env(
                1,
                Command::CreateCommunity {
                    kms_uri: "k".into(),
                    period,
                },
            ),
            env(
                2,
                Command::RevokeIdentity {
                    kms_uri: "k".into(),
                    identity: "sip:a".into(),
                    at_unix: 5,
                    reason: "r".into(),
                },
            ),
            env(
                3,
                Command::RevokeIdentity {
                    kms_uri: "nope".into(),
                    identity: "sip:a".into(),
                    at_unix: 5,
                    reason: "r".into(),
                },
            ),
            env(
                4,
                Command::ReinstateIdentity {
                    kms_uri: "k".into(),
                    identity: "sip:b".into(),
                },
            ),
        ]
    }

    fn temp_state() -> StateMachine {
        StateMachine::open(sled::Config::new().temporary(true).open().unwrap()).unwrap()
    }

    #[test]
    fn apply_is_ordered_idempotent_and_deterministic() {
        let a = temp_state();
        let outcomes: Vec<_> = log()
            .iter()
            .enumerate()
            .map(|(i, e)| a.apply(i as u64 + 1, e).unwrap())
            .collect();
        assert_eq!(outcomes[0], Some(Outcome::Applied));
        assert_eq!(outcomes[1], Some(Outcome::Applied));
        assert!(
            matches!(outcomes[2], Some(Outcome::Rejected(_))),
            "unknown community is refused"
        );
        assert!(
            matches!(outcomes[3], Some(Outcome::Rejected(_))),
            "not revoked"
        );
        assert_eq!(
            a.applied_index().unwrap(),
            4,
            "refusals still advance the index"
        );
        assert!(a.revocation("k", "sip:a").unwrap().is_some());
        // Replay of an applied entry is skipped; a gap is an error.
        assert_eq!(a.apply(2, &log()[1]).unwrap(), None);
        assert!(matches!(
            a.apply(6, &log()[0]),
            Err(StateError::OutOfOrder {
                index: 6,
                applied: 4
            })
        ));
        // Another replica applying the same log reaches the same digest.
        let b = temp_state();
        for (i, e) in log().iter().enumerate() {
            b.apply(i as u64 + 1, e).unwrap();
        }
        assert_eq!(a.digest().unwrap(), b.digest().unwrap());
        b.apply_empty(5).unwrap();
        assert_ne!(
            a.digest().unwrap(),
            b.digest().unwrap(),
            "the applied index is part of the state"
        );
    }

    #[test]
    fn an_unknown_version_is_refused_before_anything_changes() {
        let a = temp_state();
        let mut e = log()[0].clone();
        e.version = COMMAND_VERSION + 1;
        assert!(matches!(a.apply(1, &e), Err(StateError::UnknownVersion(_))));
        assert_eq!(a.applied_index().unwrap(), 0);
        assert!(a.communities().unwrap().is_empty());
    }

    #[test]
    fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = StateMachine::open(sled::open(dir.path()).unwrap()).unwrap();
            s.apply(1, &log()[0]).unwrap();
            s.flush().unwrap();
        }
        let s = StateMachine::open(sled::open(dir.path()).unwrap()).unwrap();
        assert_eq!(s.applied_index().unwrap(), 1);
        assert!(s.community("k").unwrap().is_some());
    }
}
