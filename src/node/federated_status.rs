//! Revocation and expiry of federated group key versions crossing KM-E (our extension: the
//! specs define no KMS-to-KMS interface, `../spec/FEDERATION.md` §4; issue 12 item 5).
//!
//! The sender reports, for each version of a shared group the partner already acknowledged,
//! its current revoked flag and expiry (`POST /km-e/v1/group-key-status`, a batch of
//! [`FederatedKeyStatus`]); the receiver applies each idempotently with its own replicated
//! commands (`RevokeGroupKey`, `SetGroupKeyExpiry`), so its subscribers get the same
//! `group-key-revoked` / `group-key-expiry-set` events as for its own groups and its VAL
//! servers and GMS see the version revoked or expiring like one of its own. A revocation is
//! never undone, and a revoked or expired version's expiry is never changed.
//!
//! Authentication: the status is not inside the I_MESSAGE (it changes after the GMK was
//! signed); it travels on the KM-E channel, mutual TLS with each side's pinned partner CA and
//! name ([`crate::api::km_e::PartnerPeer`]), and is accepted only for groups we accept from
//! that partner and only for a version whose GMK-ID matches the one imported from it.

use super::core::{Actor, NodeError};
use super::federation::Federation;
use crate::audit::AuditKind;
use crate::config::PartnerConfig;
use crate::state::Command;

/// A batch of delivered versions' statuses, the body of KM-E's
/// `POST /km-e/v1/group-key-status`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBatch {
    pub statuses: Vec<FederatedKeyStatus>,
}

/// A delivered version's current status, as KM-E carries it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedKeyStatus {
    pub group_id: String,
    pub version: u32,
    pub gmk_id: u32,
    pub revoked: bool,
    pub expires_unix: Option<u64>,
}

/// What applying one status changed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusApplied {
    /// Nothing to change.
    Unchanged,
    Revoked,
    ExpirySet,
}

/// One status's outcome, in the order of the batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StatusResult {
    Applied(StatusApplied),
    /// Refused for good (a group not accepted from the partner, a version not imported here,
    /// a change the group refuses): the reason. The partner does not send it again.
    Refused(String),
}

/// The answer of `POST /km-e/v1/group-key-status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusAnswer {
    pub results: Vec<StatusResult>,
}

impl Federation {
    /// Applies every status of `batch` from `partner` ([`Federation::apply_status`]): a status
    /// refused for good is answered as refused and does not hold up the others; an error that
    /// may pass (no leader, a timeout) fails the whole batch, which the partner sends again
    /// (each status is idempotent).
    pub async fn apply_batch(
        &self,
        partner: &PartnerConfig,
        batch: &StatusBatch,
        actor: &Actor,
    ) -> Result<StatusAnswer, NodeError> {
        let mut results = Vec::with_capacity(batch.statuses.len());
        for s in &batch.statuses {
            results.push(match self.apply_status(partner, s, actor).await {
                Ok(a) => StatusResult::Applied(a),
                Err(
                    e @ (NodeError::Forbidden(_)
                    | NodeError::Conflict(_)
                    | NodeError::Invalid(_)
                    | NodeError::NotFound(_)
                    | NodeError::Rejected(_)),
                ) => StatusResult::Refused(format!("{} version {}: {e}", s.group_id, s.version)),
                Err(e) => return Err(e),
            });
        }
        Ok(StatusAnswer { results })
    }

    /// The current status of every version of the groups shared with `partner` that it has
    /// acknowledged (read linearizably), in order per group.
    pub async fn delivered_status(
        &self,
        partner: &PartnerConfig,
    ) -> Result<Vec<FederatedKeyStatus>, NodeError> {
        let set = self.partners().await?;
        let mut out = Vec::new();
        for g in &partner.share_groups {
            let Some(group) = self.state().group(g)? else {
                continue;
            };
            let done = set.delivered(&partner.kms_uri, g);
            out.extend(
                group
                    .versions
                    .iter()
                    .filter(|v| v.version <= done)
                    .map(|v| FederatedKeyStatus {
                        group_id: g.clone(),
                        version: v.version,
                        gmk_id: v.gmk_id,
                        revoked: v.revoked,
                        expires_unix: v.expires_unix,
                    }),
            );
        }
        Ok(out)
    }

    /// Applies a status `partner` reports for a version it gave us: revokes it if the partner
    /// revoked it, else sets its expiry if it differs. Idempotent; never un-revokes (a
    /// status saying "not revoked" for a version revoked here changes nothing). `Forbidden`
    /// for a group not accepted from `partner`, `Conflict` for a version not imported or
    /// with another GMK-ID, or an expiry change the group refuses (already expired here).
    pub async fn apply_status(
        &self,
        partner: &PartnerConfig,
        status: &FederatedKeyStatus,
        actor: &Actor,
    ) -> Result<StatusApplied, NodeError> {
        if !partner.accept_groups.iter().any(|g| g == &status.group_id) {
            return Err(NodeError::Forbidden(format!(
                "group {} is not accepted from {}",
                status.group_id, partner.kms_uri
            )));
        }
        self.read_barrier().await?;
        let have = self
            .state()
            .group(&status.group_id)?
            .and_then(|g| g.version(status.version).cloned())
            .filter(|v| v.gmk_id == status.gmk_id)
            .ok_or_else(|| {
                NodeError::Conflict(format!(
                    "version {} of {} with GMK-ID {:08x} was not imported here",
                    status.version, status.group_id, status.gmk_id
                ))
            })?;
        if have.revoked {
            return Ok(StatusApplied::Unchanged);
        }
        let at_unix = self.now();
        let (command, applied, kind, detail) = if status.revoked {
            (
                Command::RevokeGroupKey {
                    group_id: status.group_id.clone(),
                    version: status.version,
                    at_unix,
                },
                StatusApplied::Revoked,
                AuditKind::GroupKeyRevoked,
                "revoked by the partner".to_owned(),
            )
        } else if have.expires_unix != status.expires_unix {
            if have.is_expired_at(at_unix) {
                // Expired here already: never current again, whatever the partner says.
                return Ok(StatusApplied::Unchanged);
            }
            (
                Command::SetGroupKeyExpiry {
                    group_id: status.group_id.clone(),
                    version: status.version,
                    expires_unix: status.expires_unix,
                    at_unix,
                },
                StatusApplied::ExpirySet,
                AuditKind::GroupKeyExpirySet,
                format!("expiry {:?} set by the partner", status.expires_unix),
            )
        } else {
            return Ok(StatusApplied::Unchanged);
        };
        self.propose_ok(command).await?;
        self.audit_admin(
            kind,
            actor,
            Some(&status.group_id),
            &partner.kms_uri,
            Some(format!("version {}: {detail}", status.version)),
        );
        Ok(applied)
    }
}
