//! The replicated CAPIF state as the services see it (TS 29.222; TS 29.549 clause 8): the
//! CCF's `apiId` of our `ss-kir` publication and the invokers the CCF revoked. The CCF links
//! themselves (publishing, authorisation look-ups, invocation logs) are `actors::capif`'s.

use super::core::{Actor, NodeError};
use super::parties::Parties;
use crate::audit::AuditKind;
use crate::state::Command;

impl Parties {
    /// The CCF's `apiId` of `api_name` as this node applied it (after a read barrier, or for
    /// status and logs where a lagging answer is harmless).
    pub fn capif_api_id_local(&self, api_name: &str) -> Result<Option<String>, NodeError> {
        Ok(self.state().capif_api_id(api_name)?)
    }

    /// Whether the CCF revoked `invoker`, as this node applied it: call after a read barrier.
    pub fn capif_revoked_local(&self, invoker: &str) -> Result<bool, NodeError> {
        Ok(self.state().capif_revoked(invoker)?.is_some())
    }

    /// Records (`Some`) or forgets (`None`) the CCF's `apiId` of `api_name`; no proposal when
    /// it is already so.
    pub async fn capif_set_publication(
        &self,
        api_name: &str,
        api_id: Option<String>,
        actor: &Actor,
    ) -> Result<(), NodeError> {
        self.read_barrier().await?;
        if self.capif_api_id_local(api_name)? == api_id {
            return Ok(());
        }
        self.propose_ok(Command::SetCapifPublication {
            api_name: api_name.to_owned(),
            api_id: api_id.clone(),
        })
        .await?;
        self.audit_admin(
            AuditKind::AdminConfigChanged,
            actor,
            None,
            "capif-publication",
            Some(format!("{api_name} {}", api_id.as_deref().unwrap_or("-"))),
        );
        Ok(())
    }

    /// The CCF revoked `invoker`: replicated, so every node refuses it after its next barrier.
    pub async fn capif_revoke(&self, invoker: &str, actor: &Actor) -> Result<(), NodeError> {
        if invoker.is_empty() || invoker.len() > 256 || invoker.chars().any(char::is_control) {
            return Err(NodeError::Invalid("apiInvokerId is not a valid id".into()));
        }
        self.propose_ok(Command::RevokeCapifInvoker {
            api_invoker_id: invoker.to_owned(),
            at_unix: self.now(),
        })
        .await?;
        self.audit_admin(
            AuditKind::AdminConfigChanged,
            actor,
            Some(invoker),
            "capif-revocation",
            None,
        );
        Ok(())
    }

    /// An operator lifts the revocation of `invoker` (404 when it is not revoked).
    pub async fn capif_reinstate(&self, invoker: &str, actor: &Actor) -> Result<(), NodeError> {
        self.read_barrier().await?;
        if !self.capif_revoked_local(invoker)? {
            return Err(NodeError::NotFound(format!(
                "invoker {invoker} is not revoked"
            )));
        }
        self.propose_ok(Command::ReinstateCapifInvoker {
            api_invoker_id: invoker.to_owned(),
        })
        .await?;
        self.audit_admin(
            AuditKind::AdminConfigChanged,
            actor,
            Some(invoker),
            "capif-reinstatement",
            None,
        );
        Ok(())
    }
}
