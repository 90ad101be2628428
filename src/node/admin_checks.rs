//! Checks made before an admin command is proposed, so that a command the state machine would
//! refuse never reaches the Raft log: names by the rules of `kms::names` (no control
//! characters, bounded lengths), then the state the command needs, read after a read barrier
//! (a known community, a certificate not yet revoked, an identity that is revoked before it is
//! reinstated, an ACL entry that exists before it is removed).
//!
//! The state machine still checks the state when it applies (a concurrent change may come
//! between the check and the commit); these checks only keep refusals out of the log, and they
//! answer with the same refusal (`NodeError::Rejected`, the apply-time reason) as before.

use super::core::{NodeCore, NodeError};
use crate::kms::names::{validate_identity, validate_kms_uri, validate_reason, NameError};

fn invalid(e: NameError) -> NodeError {
    NodeError::Invalid(e.to_string())
}

impl NodeCore {
    /// The community `kms_uri` as this node has applied it after a read barrier, or the
    /// apply-time refusal for an unknown one.
    async fn admin_community(
        &self,
        kms_uri: &str,
    ) -> Result<crate::kms::community::Community, NodeError> {
        validate_kms_uri(kms_uri).map_err(invalid)?;
        self.read_barrier().await?;
        self.state()
            .community(kms_uri)?
            .ok_or_else(|| NodeError::Rejected(format!("unknown community {kms_uri}")))
    }

    /// Before `RevokeIdentity`: valid names and a known community.
    pub(super) async fn check_revoke_identity(
        &self,
        kms_uri: &str,
        identity: &str,
        reason: &str,
    ) -> Result<(), NodeError> {
        validate_identity(identity).map_err(invalid)?;
        validate_reason(reason).map_err(invalid)?;
        validate_kms_uri(kms_uri).map_err(invalid)?;
        // Communities are only ever added: one this node has applied exists in the committed
        // state, so no read barrier is needed for it (a revocation is the hot admin write).
        // Only a community not seen here yet costs a barrier.
        if self.state().community(kms_uri)?.is_some() {
            return Ok(());
        }
        self.admin_community(kms_uri).await.map(drop)
    }

    /// Before `ReinstateIdentity`: valid names, a known community, and the identity revoked.
    pub(super) async fn check_reinstate_identity(
        &self,
        kms_uri: &str,
        identity: &str,
    ) -> Result<(), NodeError> {
        validate_identity(identity).map_err(invalid)?;
        self.admin_community(kms_uri).await?;
        if self.state().revocation(kms_uri, identity)?.is_none() {
            return Err(NodeError::Rejected(format!("{identity} is not revoked")));
        }
        Ok(())
    }

    /// Before `RevokeCertificate`: a known community holding the certificate, not yet revoked.
    pub(super) async fn check_revoke_certificate(
        &self,
        kms_uri: &str,
        cert_uri: &str,
    ) -> Result<(), NodeError> {
        let community = self.admin_community(kms_uri).await?;
        match community.certificate(cert_uri) {
            None => Err(NodeError::Rejected(format!(
                "unknown certificate {cert_uri}"
            ))),
            Some(c) if c.revoked => Err(NodeError::Rejected(format!(
                "certificate {cert_uri} is already revoked"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Before `RemoveAclEntry`: the principal has an entry.
    pub(super) async fn check_acl_remove(&self, principal: &str) -> Result<(), NodeError> {
        crate::kms::acl::validate_principal(principal)
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        self.read_barrier().await?;
        if self.state().acl_entry(principal)?.is_none() {
            return Err(NodeError::Rejected(format!("no ACL entry for {principal}")));
        }
        Ok(())
    }
}
