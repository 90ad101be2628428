//! The state machine: the KMS state in `sled`, changed only by [`StateMachine::apply`].
//!
//! `apply` is a deterministic function of (state, index, envelope): no clock, no RNG, no I/O
//! beyond the sled transaction that writes the change *and* the applied index together, so a
//! crash between two entries leaves a state that replay from `applied_index() + 1` completes
//! exactly once. A refused command (unknown community, ...) is an [`Outcome::Rejected`] — the
//! same answer on every replica — and still advances the applied index; an I/O failure is a
//! [`StateError`] and the node must stop rather than diverge.
//!
//! A refusal aborts the command's transaction (nothing it wrote stays) and then records the
//! applied index alone, so a refused command changes nothing but the index.
//!
//! Trees: `communities` (kms_uri → bincode `Community`), `revocations`
//! (kms_uri ‖ 0x00 ‖ identity → bincode `Revocation`), `meta` (applied index, barrier check,
//! outbox counters), `members` (Raft node id, big endian → peer address; written by membership
//! changes); version-2 trees `acl`, `groups`, `key_provisioning` (see [`super::groups`]) and
//! `outbox`, `subscriptions`, `sub_offsets` (see [`super::outbox`]); version-4 tree
//! `idempotency` (see [`super::idempotency`]); version-5 tree `partners` (see
//! [`super::partners`]) and index keys in `key_provisioning` (see [`super::key_records`]);
//! version-7 tree `capif` (see [`super::capif`]).
//! Key events of the
//! community commands (certificate rotated or revoked, identity revoked) go to the outbox too.
//! These are the trees of the current generation (`trees`): a snapshot restore fills the next
//! one and swaps it in whole. `__sealkm_restore` (the restore marker and the generation) is
//! not state: snapshots skip it and [`StateMachine::digest`] does not iterate it.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use thiserror::Error;

use super::command::{Command, Envelope, Outcome, COMMAND_VERSION};
use super::{capif, groups, idempotency, key_records, outbox, partners};
use crate::kms::community::Community;
use crate::kms::events::{EventKind, EventSubject};

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
    #[error("a state record cannot be encoded: {0}")]
    Encode(String),
}

/// An identity revocation (TS 33.180: a revoked user gets no further key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub at_unix: u64,
    pub reason: String,
}

/// Encodes a record inside a transaction: a value that cannot be encoded aborts it as a
/// failure (never an empty record).
pub(super) fn enc<T: Serialize>(v: &T) -> TxResult<Vec<u8>> {
    bincode::serde::encode_to_vec(v, bincode::config::standard())
        .map_err(|e| Abort::fail(StateError::Encode(e.to_string())))
}

pub(super) fn dec<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, StateError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|_| StateError::Corrupt(what.to_owned()))
}

/// [`dec`] inside a transaction: an undecodable record aborts it as a failure.
pub(super) fn dec_tx<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> TxResult<T> {
    dec(what, bytes).map_err(Abort::fail)
}

/// Why a command's transaction was aborted.
#[derive(Debug)]
pub(super) enum Abort {
    /// Refused by the state: the same on every replica, becomes [`Outcome::Rejected`].
    Reject(String),
    /// The store failed or holds garbage: the node must stop.
    Fail(StateError),
}

impl Abort {
    pub(super) fn fail(e: StateError) -> ConflictableTransactionError<Abort> {
        ConflictableTransactionError::Abort(Abort::Fail(e))
    }
}

/// Refuses the command: its transaction is aborted, nothing it wrote stays.
pub(super) fn reject<T>(why: impl Into<String>) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(Abort::Reject(
        why.into(),
    )))
}

/// The trees of one apply transaction.
pub(super) struct Tx<'a> {
    pub communities: &'a TransactionalTree,
    pub revocations: &'a TransactionalTree,
    pub meta: &'a TransactionalTree,
    pub acl: &'a TransactionalTree,
    pub groups: &'a TransactionalTree,
    pub key_provisioning: &'a TransactionalTree,
    pub subscriptions: &'a TransactionalTree,
    pub outbox: &'a TransactionalTree,
    pub sub_offsets: &'a TransactionalTree,
    pub idempotency: &'a TransactionalTree,
    pub partners: &'a TransactionalTree,
    pub capif: &'a TransactionalTree,
}

/// Applies one command inside a transaction, refusing an envelope older than the command.
pub(super) fn apply_checked(tx: &Tx, env: &Envelope) -> TxResult<()> {
    if env.version < env.command.min_version() {
        return reject(format!(
            "command needs envelope version {}, the entry has {}",
            env.command.min_version(),
            env.version
        ));
    }
    apply_in_tx(tx, &env.command, env.version)
}

fn revocation_key(kms_uri: &str, identity: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(kms_uri.len() + 1 + identity.len());
    k.extend_from_slice(kms_uri.as_bytes());
    k.push(0);
    k.extend_from_slice(identity.as_bytes());
    k
}

/// The replicated KMS state. Clones share one current generation of trees
/// ([`trees::Trees`]): every read takes it under a read lock for the whole call, and a
/// snapshot restore swaps it under the write lock, so no call sees two generations.
#[derive(Clone)]
pub struct StateMachine {
    db: sled::Db,
    trees: Arc<RwLock<Trees>>,
    /// Decoded communities with the stored bytes they came from (see
    /// [`StateMachine::community_shared`]).
    decoded: Arc<std::sync::Mutex<DecodedCommunities>>,
}

/// Per KMS URI: the stored bytes and the community decoded from them.
type DecodedCommunities = HashMap<String, (sled::IVec, Arc<Community>)>;

pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<Abort>>;

impl StateMachine {
    /// Opens (or creates) the state in `db`: its recorded generation, after dropping the
    /// trees of any other (a restore a crash cut before or after its switch).
    pub fn open(db: sled::Db) -> Result<Self, StateError> {
        let generation = trees::recorded_generation(&db)?;
        trees::drop_other_generations(&db, generation)?;
        Ok(Self {
            trees: Arc::new(RwLock::new(Trees::open(&db, generation)?)),
            db,
            decoded: Arc::default(),
        })
    }

    /// The whole store, for snapshots (`state::snapshot` streams and restores every tree).
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The current generation's trees, held for the caller's whole read. Not recursive (a
    /// restore waiting to swap is not starved by overlapping readers): a holder must not
    /// call another method that takes it, so methods work on the guard's [`Trees`].
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Trees> {
        self.trees.read()
    }

    /// Makes `next` the current generation (the caller recorded it durably first) and
    /// returns the previous one. Waits for the reads in progress, blocks new ones only for
    /// the swap itself. The caller must hold no read guard.
    pub(crate) fn swap_generation(&self, next: Trees) -> Trees {
        std::mem::replace(&mut *self.trees.write(), next)
    }

    /// Index of the last applied entry (0 for a new state).
    pub fn applied_index(&self) -> Result<u64, StateError> {
        self.read().applied_index()
    }

    /// Applies entry `index`. Entries at or below the applied index are skipped (replay is
    /// idempotent); a gap is an error.
    pub fn apply(&self, index: u64, env: &Envelope) -> Result<Option<Outcome>, StateError> {
        if env.version > COMMAND_VERSION {
            return Err(StateError::UnknownVersion(env.version));
        }
        let t = self.read();
        let applied = t.applied_index()?;
        if index <= applied {
            return Ok(None);
        }
        if index != applied + 1 {
            return Err(StateError::OutOfOrder { index, applied });
        }
        let res = t.transaction(|tx| {
            apply_checked(tx, env)?;
            tx.meta.insert(APPLIED_KEY, &index.to_be_bytes())?;
            Ok(())
        });
        match res {
            Ok(()) => Ok(Some(Outcome::Applied)),
            Err(TransactionError::Abort(Abort::Reject(why))) => {
                // Nothing of the command was written; the index alone advances.
                t.meta.insert(APPLIED_KEY, &index.to_be_bytes())?;
                Ok(Some(Outcome::Rejected(why)))
            }
            Err(TransactionError::Abort(Abort::Fail(e))) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StateError::Store(e)),
        }
    }

    /// Advances the applied index over a log entry that carries no command (a new leader's
    /// empty entry, a membership change). Same ordering rules as [`StateMachine::apply`].
    pub fn apply_empty(&self, index: u64) -> Result<(), StateError> {
        let t = self.read();
        let applied = t.applied_index()?;
        if index <= applied {
            return Ok(());
        }
        if index != applied + 1 {
            return Err(StateError::OutOfOrder { index, applied });
        }
        t.meta.insert(APPLIED_KEY, &index.to_be_bytes())?;
        Ok(())
    }

    /// Peer addresses recorded by membership changes, by node id.
    pub fn members(&self) -> Result<Vec<(u64, String)>, StateError> {
        let mut out = Vec::new();
        for kv in self.read().members.iter() {
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
        self.read()
            .communities
            .get(kms_uri.as_bytes())?
            .map(|v| dec("community", &v))
            .transpose()
    }

    /// [`StateMachine::community`], shared: every request reads its community, so the decoded
    /// value is kept beside the stored bytes it came from and reused while the stored bytes
    /// are the same (compared on every call: nothing to invalidate, a restore included).
    pub fn community_shared(&self, kms_uri: &str) -> Result<Option<Arc<Community>>, StateError> {
        let Some(raw) = self.read().communities.get(kms_uri.as_bytes())? else {
            return Ok(None);
        };
        let mut decoded = self.decoded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((bytes, c)) = decoded.get(kms_uri) {
            if *bytes == raw {
                return Ok(Some(c.clone()));
            }
        }
        let c = Arc::new(dec::<Community>("community", &raw)?);
        decoded.insert(kms_uri.to_owned(), (raw, c.clone()));
        Ok(Some(c))
    }

    pub fn communities(&self) -> Result<Vec<Community>, StateError> {
        self.read()
            .communities
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
        self.read()
            .revocations
            .get(revocation_key(kms_uri, identity))?
            .map(|v| dec("revocation", &v))
            .transpose()
    }

    pub fn barrier_check(&self) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.read().meta.get(BARRIER_KEY)?.map(|v| v.to_vec()))
    }

    /// SHA-256 over every tree's keys and values in order: equal digests mean equal states.
    /// The trees are listed here by name (a new state tree must be added); the restore
    /// marker tree is deliberately not one of them. The version-2 trees count only when they
    /// hold something, so a state that never applied a version-2 command has the digest an
    /// older binary computes for it (cluster status compares digests across nodes).
    pub fn digest(&self) -> Result<[u8; 32], StateError> {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let t = self.read();
        for (name, tree, always) in [
            ("communities", &t.communities, true),
            ("revocations", &t.revocations, true),
            (META_TREE, &t.meta, true),
            ("members", &t.members, true),
            ("acl", &t.acl, false),
            ("groups", &t.groups, false),
            ("key_provisioning", &t.key_provisioning, false),
            ("subscriptions", &t.subscriptions, false),
            ("outbox", &t.outbox, false),
            ("sub_offsets", &t.sub_offsets, false),
            ("idempotency", &t.idempotency, false),
            ("partners", &t.partners, false),
            ("capif", &t.capif, false),
        ] {
            if !always && tree.is_empty() {
                continue;
            }
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

impl Trees {
    /// Index of the last applied entry (0 for a new state).
    pub(crate) fn applied_index(&self) -> Result<u64, StateError> {
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

    /// Runs `f` in one sled transaction over every tree of the state.
    pub(super) fn transaction<T>(
        &self,
        f: impl Fn(&Tx) -> TxResult<T>,
    ) -> Result<T, TransactionError<Abort>> {
        let t = self;
        let trees = (
            &t.communities,
            &t.revocations,
            &t.meta,
            &t.acl,
            &t.groups,
            &t.key_provisioning,
            &t.subscriptions,
            &t.outbox,
            &t.sub_offsets,
            &t.idempotency,
            &t.partners,
            &t.capif,
        );
        trees.transaction(|(c, r, m, a, g, kp, s, o, so, id, pa, ca)| {
            f(&Tx {
                communities: c,
                revocations: r,
                meta: m,
                acl: a,
                groups: g,
                key_provisioning: kp,
                subscriptions: s,
                outbox: o,
                sub_offsets: so,
                idempotency: id,
                partners: pa,
                capif: ca,
            })
        })
    }
}

fn get_community(c: &TransactionalTree, kms_uri: &str) -> TxResult<Option<Community>> {
    match c.get(kms_uri.as_bytes())? {
        None => Ok(None),
        Some(v) => dec_tx("community", &v).map(Some),
    }
}

/// `envelope_version` is the entry's: the subscription limit depends on it.
pub(super) fn apply_in_tx(tx: &Tx, cmd: &Command, envelope_version: u16) -> TxResult<()> {
    let (c, r, m) = (tx.communities, tx.revocations, tx.meta);
    match cmd {
        Command::CreateCommunity { kms_uri, period } => match get_community(c, kms_uri)? {
            Some(existing) if existing.period == *period => Ok(()),
            Some(_) => reject(format!(
                "community {kms_uri} exists with other key period parameters"
            )),
            None => {
                c.insert(
                    kms_uri.as_bytes(),
                    enc(&Community::new(kms_uri.clone(), *period))?,
                )?;
                Ok(())
            }
        },
        Command::AddCertificate {
            kms_uri,
            certificate,
        } => {
            let Some(mut community) = get_community(c, kms_uri)? else {
                return reject(format!("unknown community {kms_uri}"));
            };
            if community.certificate(&certificate.cert_uri).is_some() {
                return reject(format!("certificate {} exists", certificate.cert_uri));
            }
            if community.next_cert_uri().0 != certificate.serial {
                return reject(format!(
                    "certificate serial {} is not the next one",
                    certificate.serial
                ));
            }
            community.certificates.push(certificate.clone());
            community.cache_num += 1;
            c.insert(kms_uri.as_bytes(), enc(&community)?)?;
            if certificate.serial > 1 {
                outbox::emit(
                    tx,
                    EventKind::CertificateRotated,
                    EventSubject::Certificate {
                        kms_uri: kms_uri.clone(),
                        cert_uri: certificate.cert_uri.clone(),
                    },
                    // The proposer sets ValidFrom to its time of the rotation.
                    Some(certificate.valid_from_unix),
                )?;
            }
            Ok(())
        }
        Command::RevokeCertificate { kms_uri, cert_uri } => {
            let Some(mut community) = get_community(c, kms_uri)? else {
                return reject(format!("unknown community {kms_uri}"));
            };
            let Some(cert) = community.certificate_mut(cert_uri) else {
                return reject(format!("unknown certificate {cert_uri}"));
            };
            if cert.revoked {
                return reject(format!("certificate {cert_uri} is already revoked"));
            }
            cert.revoked = true;
            community.cache_num += 1;
            c.insert(kms_uri.as_bytes(), enc(&community)?)?;
            outbox::emit(
                tx,
                EventKind::CertificateRevoked,
                EventSubject::Certificate {
                    kms_uri: kms_uri.clone(),
                    cert_uri: cert_uri.clone(),
                },
                // The version-1 command carries no time.
                None,
            )
        }
        Command::RevokeIdentity {
            kms_uri,
            identity,
            at_unix,
            reason,
        } => {
            if get_community(c, kms_uri)?.is_none() {
                return reject(format!("unknown community {kms_uri}"));
            }
            let rev = Revocation {
                at_unix: *at_unix,
                reason: reason.clone(),
            };
            r.insert(revocation_key(kms_uri, identity), enc(&rev)?)?;
            outbox::emit(
                tx,
                EventKind::IdentityRevoked,
                EventSubject::Identity {
                    kms_uri: kms_uri.clone(),
                    identity: identity.clone(),
                },
                Some(*at_unix),
            )
        }
        Command::ReinstateIdentity { kms_uri, identity } => {
            if r.remove(revocation_key(kms_uri, identity))?.is_none() {
                return reject(format!("{identity} is not revoked"));
            }
            Ok(())
        }
        Command::SetBarrierCheck { sealed } => {
            if m.get(BARRIER_KEY)?.is_some() {
                return reject("barrier check already set");
            }
            m.insert(BARRIER_KEY, sealed.as_slice())?;
            Ok(())
        }
        Command::PutAclEntry {
            principal,
            role,
            groups: g,
        } => groups::put_acl_entry(tx, principal, *role, g),
        Command::RemoveAclEntry { principal } => groups::remove_acl_entry(tx, principal),
        Command::CreateGroupKey { group_id, version } => {
            groups::create_group_key(tx, group_id, version)
        }
        Command::RevokeGroupKey {
            group_id,
            version,
            at_unix,
        } => groups::revoke_group_key(tx, group_id, *version, *at_unix),
        Command::SetGroupKeyExpiry {
            group_id,
            version,
            expires_unix,
            at_unix,
        } => groups::set_group_key_expiry(tx, group_id, *version, *expires_unix, *at_unix),
        Command::PutKeyProvisioning {
            principal,
            key_id,
            sealed_info,
            at_unix,
        } => groups::put_key_provisioning(tx, principal, key_id, sealed_info, *at_unix),
        Command::PutSubscription {
            id,
            principal,
            callback_url,
            kinds,
            group_filter,
        } => outbox::put_subscription(
            tx,
            id,
            principal,
            callback_url,
            kinds,
            group_filter.as_deref(),
            outbox::subscription_limit(envelope_version),
        ),
        Command::RemoveSubscription { id } => outbox::remove_subscription(tx, id),
        Command::AckEvents {
            subscription_id,
            up_to_event_id,
        } => outbox::ack_events(tx, subscription_id, *up_to_event_id),
        Command::NoteGroupKeyExpired {
            group_id,
            version,
            at_unix,
        } => groups::note_group_key_expired(tx, group_id, *version, *at_unix),
        Command::Idempotent {
            key,
            fingerprint,
            command,
        } => idempotency::apply(tx, key, fingerprint, command, envelope_version),
        Command::ImportPartnerCertificate {
            certificate,
            rotate,
            at_unix,
        } => partners::import(tx, certificate, *rotate, *at_unix),
        Command::RevokePartnerCertificate { id } => partners::revoke(tx, id),
        Command::RemovePartnerCertificate { id } => partners::remove(tx, id),
        Command::StagePartnerCertificate { certificate } => partners::stage(tx, certificate),
        Command::ApprovePartnerCertificate { id, at_unix } => partners::approve(tx, id, *at_unix),
        Command::NoteFederatedDelivery {
            partner,
            group_id,
            version,
        } => partners::note_delivery(tx, partner, group_id, *version),
        Command::ImportFederatedGroupKey {
            partner,
            group_id,
            version,
        } => groups::import_federated_group_key(tx, partner, group_id, version),
        Command::PutServiceKeyProvisioning {
            principal,
            key_id,
            sealed_info,
            at_unix,
            val_service_id,
            val_tgt_ue,
        } => key_records::put_service_key_provisioning(
            tx,
            principal,
            key_id,
            sealed_info,
            *at_unix,
            val_service_id,
            val_tgt_ue.as_deref(),
        ),
        Command::SetCapifPublication { api_name, api_id } => {
            capif::set_publication(tx, api_name, api_id.as_deref())
        }
        Command::RevokeCapifInvoker {
            api_invoker_id,
            at_unix,
        } => capif::revoke_invoker(tx, api_invoker_id, *at_unix),
        Command::ReinstateCapifInvoker { api_invoker_id } => {
            capif::reinstate_invoker(tx, api_invoker_id)
        }
    }
}

mod batch;
pub(crate) mod trees;

use trees::Trees;

#[cfg(test)]
mod tests;
