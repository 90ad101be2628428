//! KMS-managed group keys — **our extension** over SEAL-X1 and KM-S (the TS 33.180 flow, where
//! the group management server generates GMKs itself, needs none of this). The rules of a
//! group's versions are `kms::group`; this module generates and seals a new GMK *before*
//! proposing it (every replica stores the same sealed bytes), proposes, and reads versions
//! linearizably. Handing out a GMK (opened from its seal) is audited first: a delivery that
//! cannot be audited is not made.

use std::ops::Deref;
use std::sync::Arc;

use super::core::{Actor, NodeCore, NodeError};
use crate::audit::{AuditEvent, AuditKind};
use crate::crypto::secret::SecretBytes;
use crate::kms::group::{
    open_gmk, validate_group_id, Group, GroupError, GroupKeyVersion, GMK_LEN, MAX_TTL_S,
    MAX_VERSIONS,
};
use crate::state::idempotency::{IdempotencyRecord, IdempotentResult};
use crate::state::{Command, Outcome};

/// How often a creation is retried when another proposer took the version number first.
const VERSION_RACE_RETRIES: usize = 3;

/// One version with its GMK opened (for the caller to hand out; zeroized on drop).
pub struct GroupKey {
    pub group_id: String,
    pub version: GroupKeyVersion,
    pub gmk: SecretBytes<GMK_LEN>,
    /// Whether this version is the group's current one at the time of the read.
    pub current: bool,
}

/// What one expiry sweep did ([`Groups::note_expired_group_keys`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpirySweep {
    /// Versions noted expired by this sweep.
    pub noted: usize,
    /// The earliest expiry (Unix seconds) of a version not revoked that had not passed when
    /// the sweep looked: when there is something to note again, unless the state changes.
    pub next_expiry: Option<u64>,
}

/// A write made idempotent by the client's `Idempotency-Key` (see `state::idempotency`): the
/// key in the principal's own name space (the name's length first, so principals cannot
/// collide) and a fingerprint of the request (a repeat must match it).
#[derive(Debug, Clone)]
pub struct Keyed {
    pub key: String,
    pub fingerprint: Vec<u8>,
}

impl Keyed {
    /// `parts` identify the request (not what the proposer generates for it: times, keys).
    pub fn new(actor: &Actor, client_key: &str, parts: &[&[u8]]) -> Self {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        Self {
            key: format!("{}:{}:{client_key}", actor.0.len(), actor.0),
            fingerprint: ctx.finish().as_ref().to_vec(),
        }
    }

    /// `command`, wrapped when the request has a key.
    pub fn wrap(keyed: Option<&Keyed>, command: Command) -> Command {
        match keyed {
            Some(k) => Command::Idempotent {
                key: k.key.clone(),
                fingerprint: k.fingerprint.clone(),
                command: Box::new(command),
            },
            None => command,
        }
    }

    /// The key was first used for another request (409).
    pub fn reused(&self) -> NodeError {
        NodeError::Conflict("the Idempotency-Key was used for another request".into())
    }
}

fn invalid(e: impl std::fmt::Display) -> NodeError {
    NodeError::Invalid(e.to_string())
}

/// The group key service of a node.
pub struct Groups {
    core: Arc<NodeCore>,
}

impl Deref for Groups {
    type Target = NodeCore;
    fn deref(&self) -> &NodeCore {
        &self.core
    }
}

impl Groups {
    pub(super) fn new(core: Arc<NodeCore>) -> Self {
        Self { core }
    }

    /// The group `group_id` as this node has applied it (call after a read barrier made for
    /// this request); `NotFound` if it has no key yet.
    pub fn group_local(&self, group_id: &str) -> Result<Group, NodeError> {
        self.state()
            .group(group_id)?
            .ok_or_else(|| NodeError::NotFound(format!("unknown group {group_id}")))
    }

    /// Creates version 1 of a new group, or rotates an existing group to its next version:
    /// a fresh 16-octet GMK and GMK-ID (GMK purpose tag), sealed, proposed. `ttl_s` sets an
    /// expiry. Returns the new version with its GMK.
    ///
    /// With an `idempotency_key` (the client's `Idempotency-Key`, scoped here to `actor`),
    /// the creation happens at most once: a repeat of the same request gets the version the
    /// first one created (a 503 means "unknown outcome; retry with the same key"), the same
    /// key for another request is a conflict.
    pub async fn create_group_key(
        &self,
        group_id: &str,
        ttl_s: Option<u64>,
        actor: &Actor,
        idempotency_key: Option<&str>,
    ) -> Result<GroupKey, NodeError> {
        validate_group_id(group_id).map_err(invalid)?;
        self.refuse_imported(group_id)?;
        if ttl_s == Some(0) {
            return Err(NodeError::Invalid("ttl_s must be positive".into()));
        }
        let ttl = ttl_s.map(u64::to_be_bytes);
        let keyed = idempotency_key.map(|k| {
            Keyed::new(
                actor,
                k,
                &[
                    b"create-group-key",
                    group_id.as_bytes(),
                    ttl.as_ref().map_or(&[][..], |t| &t[..]),
                ],
            )
        });
        for _ in 0..VERSION_RACE_RETRIES {
            self.read_barrier().await?;
            if let Some(k) = &keyed {
                if let Some(rec) = self.state().idempotency_record(&k.key)? {
                    return self.repeated_creation(&rec, k, group_id, actor).await;
                }
            }
            let next = self
                .state()
                .group(group_id)?
                .map_or(1, |g| g.next_version());
            if next > MAX_VERSIONS {
                return Err(NodeError::Quota(format!(
                    "group {group_id} has {MAX_VERSIONS} key versions, the most it may have"
                )));
            }
            let version = GroupKeyVersion::generate(
                &self.rng,
                &self.barrier,
                group_id,
                next,
                self.now(),
                ttl_s,
            )
            .map_err(invalid)?;
            let create = Command::CreateGroupKey {
                group_id: group_id.to_owned(),
                version: version.clone(),
            };
            match self.propose(Keyed::wrap(keyed.as_ref(), create)).await? {
                Outcome::Applied => {
                    if let Some(k) = &keyed {
                        // An earlier attempt with this key committed after all (its client
                        // was told 503): this one wrote nothing, answer the first.
                        let stored = self.state().group(group_id)?;
                        let ours = stored
                            .as_ref()
                            .and_then(|g| g.version(next))
                            .is_some_and(|v| *v == version);
                        if !ours {
                            let rec =
                                self.state().idempotency_record(&k.key)?.ok_or_else(|| {
                                    NodeError::Conflict(format!(
                                        "group {group_id} changed concurrently; retry"
                                    ))
                                })?;
                            return self.repeated_creation(&rec, k, group_id, actor).await;
                        }
                    }
                    let kind = if next == 1 {
                        AuditKind::GroupKeyCreated
                    } else {
                        AuditKind::GroupKeyRotated
                    };
                    self.audit_group(kind, actor, group_id, next, "created")
                        .await?;
                    let gmk = open_gmk(&self.barrier, group_id, &version).map_err(invalid)?;
                    return Ok(GroupKey {
                        group_id: group_id.to_owned(),
                        version,
                        gmk,
                        current: true,
                    });
                }
                Outcome::Rejected(r) => {
                    // A version race shows in the applied state, not in the reason's text:
                    // another proposer took `next` (its entry is applied before ours), so read
                    // again and retry.
                    let taken = self
                        .state()
                        .group(group_id)?
                        .is_some_and(|g| g.next_version() != next);
                    if taken {
                        continue;
                    }
                    return Err(NodeError::Rejected(r));
                }
            }
        }
        Err(NodeError::Conflict(format!(
            "group {group_id} is being rotated concurrently; retry"
        )))
    }

    /// The answer to a repeated creation: the version the first request with this key
    /// created, delivered (and audited) again.
    async fn repeated_creation(
        &self,
        rec: &IdempotencyRecord,
        keyed: &Keyed,
        group_id: &str,
        actor: &Actor,
    ) -> Result<GroupKey, NodeError> {
        let reused = || keyed.reused();
        if rec.fingerprint != keyed.fingerprint {
            return Err(reused());
        }
        let IdempotentResult::GroupKeyVersion {
            group_id: created_in,
            version,
        } = &rec.result
        else {
            return Err(reused());
        };
        if created_in != group_id {
            return Err(reused());
        }
        let group = self.group_local(group_id)?;
        let v = group.version(*version).ok_or_else(|| {
            NodeError::NotFound(format!("group {group_id} has no key version {version}"))
        })?;
        let gmk = open_gmk(&self.barrier, group_id, v)
            .map_err(|e| NodeError::Internal(format!("opening a sealed GMK of {group_id}: {e}")))?;
        self.audit_group(
            AuditKind::GroupKeyDelivered,
            actor,
            group_id,
            *version,
            "delivered again (repeated creation request)",
        )
        .await?;
        Ok(GroupKey {
            group_id: group_id.to_owned(),
            version: v.clone(),
            gmk,
            current: group.current(self.now()).map(|c| c.version) == Some(*version),
        })
    }

    /// Revokes one version; it is never current again (but stays readable as a past version).
    /// Call after a read barrier made for this request.
    pub async fn revoke_group_key(
        &self,
        group_id: &str,
        version: u32,
        actor: &Actor,
    ) -> Result<(), NodeError> {
        self.refuse_imported(group_id)?;
        let at_unix = self.now();
        // Decided on a copy first: a refused revocation never reaches the log.
        self.dry_run(group_id, |g| g.revoke(version))?;
        self.propose_ok(Command::RevokeGroupKey {
            group_id: group_id.to_owned(),
            version,
            at_unix,
        })
        .await?;
        self.audit_group(
            AuditKind::GroupKeyRevoked,
            actor,
            group_id,
            version,
            "revoked",
        )
        .await
    }

    /// Sets (or, with `None`, clears) a version's expiry. Call after a read barrier made for
    /// this request.
    pub async fn set_group_key_expiry(
        &self,
        group_id: &str,
        version: u32,
        expires_unix: Option<u64>,
        actor: &Actor,
    ) -> Result<(), NodeError> {
        self.refuse_imported(group_id)?;
        let at_unix = self.now();
        if expires_unix.is_some_and(|t| t > at_unix.saturating_add(MAX_TTL_S)) {
            return Err(invalid(format!(
                "expires_unix must be at most {MAX_TTL_S} seconds from now"
            )));
        }
        // Decided on a copy first (revoked, already expired): a refusal never reaches the log.
        self.dry_run(group_id, |g| g.set_expiry(version, expires_unix, at_unix))?;
        self.propose_ok(Command::SetGroupKeyExpiry {
            group_id: group_id.to_owned(),
            version,
            expires_unix,
            at_unix,
        })
        .await?;
        let detail = match expires_unix {
            Some(t) => format!("expires {t}"),
            None => "expiry cleared".to_owned(),
        };
        self.audit_group(
            AuditKind::GroupKeyExpirySet,
            actor,
            group_id,
            version,
            &detail,
        )
        .await
    }

    /// Runs `change` on a copy of the group before anything is proposed: 404 for an unknown
    /// group or version, the rule's refusal otherwise (the same reason apply would give).
    /// Reads this node's state: the caller made a read barrier for the request (the service
    /// interfaces do when they authenticate); apply checks again in any case.
    fn dry_run(
        &self,
        group_id: &str,
        change: impl FnOnce(&mut Group) -> Result<(), GroupError>,
    ) -> Result<(), NodeError> {
        let mut group = self.group_local(group_id)?;
        change(&mut group).map_err(|e| match e {
            GroupError::UnknownVersion { .. } => NodeError::NotFound(e.to_string()),
            other => NodeError::Rejected(other.to_string()),
        })
    }

    /// A version's GMK for `actor` (`None`: the current version), from a group read for this
    /// request. `NotFound` when the version does not exist or no version is current (every
    /// one is revoked or expired): an unusable version is never handed out as current.
    pub async fn group_key(
        &self,
        group: &Group,
        version: Option<u32>,
        actor: &Actor,
    ) -> Result<GroupKey, NodeError> {
        let now = self.now();
        let current = group.current(now).map(|v| v.version);
        let v = match version {
            None => group.current(now).ok_or_else(|| {
                NodeError::NotFound(format!(
                    "group {} has no current key (revoked or expired)",
                    group.group_id
                ))
            })?,
            Some(n) => group.version(n).ok_or_else(|| {
                NodeError::NotFound(format!("group {} has no key version {n}", group.group_id))
            })?,
        };
        let gmk = open_gmk(&self.barrier, &group.group_id, v).map_err(|e| {
            NodeError::Internal(format!("opening a sealed GMK of {}: {e}", group.group_id))
        })?;
        self.audit_group(
            AuditKind::GroupKeyDelivered,
            actor,
            &group.group_id,
            v.version,
            "delivered",
        )
        .await?;
        Ok(GroupKey {
            group_id: group.group_id.clone(),
            version: v.clone(),
            gmk,
            current: current == Some(v.version),
        })
    }

    /// Leader only: proposes `NoteGroupKeyExpired` for every version whose expiry has passed
    /// and that is not noted yet (one `group-key-expired` event each). Returns how many were
    /// noted and the earliest expiry still ahead (when to sweep again). A refusal (noted
    /// meanwhile, revoked) is not an error.
    pub async fn note_expired_group_keys(&self) -> Result<ExpirySweep, NodeError> {
        let now = self.now();
        let scan = self.state().group_key_expiries(now)?;
        let mut noted = 0;
        for (group_id, version) in scan.due {
            let outcome = self
                .propose(Command::NoteGroupKeyExpired {
                    group_id,
                    version,
                    at_unix: now,
                })
                .await?;
            if outcome == Outcome::Applied {
                noted += 1;
            }
        }
        Ok(ExpirySweep {
            noted,
            next_expiry: scan.next,
        })
    }

    /// Records a group key event and waits until it is durable (a GMK hand-out is answered
    /// only then).
    async fn audit_group(
        &self,
        kind: AuditKind,
        actor: &Actor,
        group_id: &str,
        version: u32,
        what: &str,
    ) -> Result<(), NodeError> {
        let event = AuditEvent {
            kind,
            actor: actor.0.clone(),
            identity: Some(group_id.to_owned()),
            key_period: None,
            community: None,
            detail: Some(format!("version {version} {what}")),
        };
        // A GMK handed out again to the same principal exposes nothing new once the first
        // record is synced (audit::exposure); every other event waits for its own record.
        let log = self.audit_log();
        let durable = if kind == AuditKind::GroupKeyDelivered {
            log.record_exposure(event).await
        } else {
            log.record(event).await
        };
        durable.map_err(|e| NodeError::Internal(format!("audit: {e}")))
    }
}
