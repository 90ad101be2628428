//! SEAL key provisioning (TS 33.434 cl. 5.8): a VAL server pushes key information for a VAL
//! service, client, device or user. The caller has checked the token's `SKeyProv` claim; here
//! the key id is validated, the information sealed under the barrier key (bound to principal
//! and key id) *before* proposing, and stored replicated. The plaintext is zeroized by the
//! caller's buffer type; it is never logged or audited.

use super::core::{Actor, NodeError};
use super::parties::Parties;
use crate::audit::{AuditEvent, AuditKind};
use crate::kms::key_provisioning::{
    seal_key_info, validate_key_id, MAX_RECORDS_PER_PRINCIPAL, MAX_SEALED_INFO_BYTES,
};
use crate::state::Command;

/// Largest plaintext key information: the sealed form adds a nonce and a tag.
pub const MAX_KEY_INFO_BYTES: usize = MAX_SEALED_INFO_BYTES - 64;

impl Parties {
    /// Stores `info` pushed by `principal` under `key_id` (replacing an earlier push of the
    /// same id). Returns once it is applied on this node.
    pub async fn put_key_provisioning(
        &self,
        principal: &str,
        key_id: &str,
        info: &[u8],
        actor: &Actor,
    ) -> Result<u64, NodeError> {
        validate_key_id(key_id).map_err(|e| NodeError::Invalid(e.to_string()))?;
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
        self.propose_ok(Command::PutKeyProvisioning {
            principal: principal.to_owned(),
            key_id: key_id.to_owned(),
            sealed_info: sealed,
            at_unix,
        })
        .await?;
        self.audit_log()
            .record(AuditEvent {
                kind: AuditKind::KeyProvisioned,
                actor: actor.0.clone(),
                identity: Some(principal.to_owned()),
                key_period: None,
                community: None,
                detail: Some(format!("key id {key_id}, {} bytes", info.len())),
            })
            .await
            .map_err(|e| NodeError::Internal(format!("audit: {e}")))?;
        Ok(at_unix)
    }
}
