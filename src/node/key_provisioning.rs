//! SEAL key provisioning (TS 33.434 cl. 5.8): a VAL server pushes key information for a VAL
//! service, client, device or user. The caller has checked the token's `SKeyProv` claim; here
//! the key id is validated, the information sealed under the barrier key (bound to principal
//! and key id) *before* proposing, and stored replicated. The plaintext is zeroized by the
//! caller's buffer type; it is never logged or audited.
//!
//! A push may name a VAL service and a target VAL user or UE (command version 5); then
//! [`Parties::key_info_for`] answers it to `SS_KeyInfoRetrieval` (TS 29.549 7.6.1) under the
//! rule of [`crate::kms::key_provisioning::choose`], audited before it leaves the node.

use super::core::{Actor, NodeError};
use super::parties::Parties;
use crate::audit::{AuditEvent, AuditKind};
use crate::crypto::secret::SecretVec;
use crate::kms::acl::AclEntry;
use crate::kms::key_provisioning::{
    choose, seal_key_info, validate_key_id, validate_val_id, Retrieval, MAX_RECORDS_PER_PRINCIPAL,
    MAX_SEALED_INFO_BYTES,
};
use crate::state::Command;

/// The VAL service (and target VAL user or UE) a push is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValTarget {
    pub val_service_id: String,
    pub val_tgt_ue: Option<String>,
}

/// Key information retrieved for a VAL service (`Debug` does not show it).
pub struct KeyInfo {
    /// The VAL server that pushed it.
    pub principal: String,
    pub val_service_id: String,
    pub val_tgt_ue: Option<String>,
    pub info: SecretVec,
    pub at_unix: u64,
}

impl core::fmt::Debug for KeyInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyInfo")
            .field("principal", &self.principal)
            .field("val_service_id", &self.val_service_id)
            .field("val_tgt_ue", &self.val_tgt_ue)
            .finish_non_exhaustive()
    }
}

/// Largest plaintext key information: the sealed form adds a nonce and a tag.
pub const MAX_KEY_INFO_BYTES: usize = MAX_SEALED_INFO_BYTES - 64;

impl Parties {
    /// Stores `info` pushed by `principal` under `key_id` (replacing an earlier push of the
    /// same id), for `target` if given. Returns once it is applied on this node.
    pub async fn put_key_provisioning(
        &self,
        principal: &str,
        key_id: &str,
        info: &[u8],
        target: Option<&ValTarget>,
        actor: &Actor,
    ) -> Result<u64, NodeError> {
        validate_key_id(key_id).map_err(|e| NodeError::Invalid(e.to_string()))?;
        if let Some(t) = target {
            validate_val_id("val_service_id", &t.val_service_id)
                .map_err(|e| NodeError::Invalid(e.to_string()))?;
            if let Some(u) = &t.val_tgt_ue {
                validate_val_id("val_tgt_ue", u).map_err(|e| NodeError::Invalid(e.to_string()))?;
            }
        }
        if info.is_empty() || info.len() > MAX_KEY_INFO_BYTES {
            return Err(NodeError::Invalid(format!(
                "key information must be 1 to {MAX_KEY_INFO_BYTES} bytes"
            )));
        }
        if self.state().key_provisioning(principal, key_id)?.is_none()
            && self
                .state()
                .key_provisioning_count(principal, MAX_RECORDS_PER_PRINCIPAL)?
                >= MAX_RECORDS_PER_PRINCIPAL
        {
            return Err(NodeError::Quota(format!(
                "{principal} keeps {MAX_RECORDS_PER_PRINCIPAL} key information records, the \
                 most it may keep"
            )));
        }
        let sealed = seal_key_info(&self.barrier, principal, key_id, info, &self.rng)?;
        let at_unix = self.now();
        let command = match target {
            None => Command::PutKeyProvisioning {
                principal: principal.to_owned(),
                key_id: key_id.to_owned(),
                sealed_info: sealed,
                at_unix,
            },
            Some(t) => Command::PutServiceKeyProvisioning {
                principal: principal.to_owned(),
                key_id: key_id.to_owned(),
                sealed_info: sealed,
                at_unix,
                val_service_id: t.val_service_id.clone(),
                val_tgt_ue: t.val_tgt_ue.clone(),
            },
        };
        self.propose_ok(command).await?;
        self.audit_log()
            .record(AuditEvent {
                kind: AuditKind::KeyProvisioned,
                actor: actor.0.clone(),
                identity: Some(principal.to_owned()),
                key_period: None,
                community: None,
                detail: Some(match target {
                    None => format!("key id {key_id}, {} bytes", info.len()),
                    Some(t) => format!(
                        "key id {key_id}, {} bytes, val service {}{}",
                        info.len(),
                        t.val_service_id,
                        t.val_tgt_ue
                            .as_deref()
                            .map(|u| format!(", target {u}"))
                            .unwrap_or_default()
                    ),
                }),
            })
            .await
            .map_err(|e| NodeError::Internal(format!("audit: {e}")))?;
        Ok(at_unix)
    }

    /// `SS_KeyInfoRetrieval`: the key information that answers `acl`'s principal for `target`,
    /// read from this node's applied state — the caller made the request's read barrier (it
    /// read `acl` after it). Forbidden when not entitled, NotFound when nothing visible was
    /// pushed; the delivery is audited (synced) before it is returned.
    pub async fn key_info_for(
        &self,
        acl: &AclEntry,
        target: &ValTarget,
        actor: &Actor,
    ) -> Result<KeyInfo, NodeError> {
        let service = target.val_service_id.as_str();
        let refs = self
            .state()
            .service_key_refs(service, target.val_tgt_ue.as_deref())?;
        let r = match choose(acl, service, &refs) {
            Retrieval::Found(r) => r,
            Retrieval::NoRecord => {
                return Err(NodeError::NotFound(format!(
                    "no key information for VAL service {service}{}",
                    target
                        .val_tgt_ue
                        .as_deref()
                        .map(|u| format!(" and target {u}"))
                        .unwrap_or_default()
                )))
            }
            Retrieval::NotEntitled => {
                return Err(NodeError::Forbidden(format!(
                    "{} is not entitled to VAL service {service}",
                    acl.principal
                )))
            }
        };
        let rec = self
            .state()
            .key_provisioning(&r.principal, &r.key_id)?
            .ok_or_else(|| {
                NodeError::Internal(format!(
                    "the index names a missing record {} / {}",
                    r.principal, r.key_id
                ))
            })?;
        let info = rec.open(&self.barrier).map_err(|e| {
            NodeError::Internal(format!("opening key information {}: {e}", r.key_id))
        })?;
        self.audit_log()
            .record(AuditEvent {
                kind: AuditKind::KeyInfoRetrieved,
                actor: actor.0.clone(),
                identity: Some(r.principal.clone()),
                key_period: None,
                community: None,
                detail: Some(format!(
                    "key id {}, val service {service}{}",
                    r.key_id,
                    r.val_tgt_ue
                        .as_deref()
                        .map(|u| format!(", target {u}"))
                        .unwrap_or_default()
                )),
            })
            .await
            .map_err(|e| NodeError::Internal(format!("audit: {e}")))?;
        Ok(KeyInfo {
            principal: r.principal.clone(),
            val_service_id: r.val_service_id.clone(),
            val_tgt_ue: r.val_tgt_ue.clone(),
            info,
            at_unix: r.at_unix,
        })
    }
}
