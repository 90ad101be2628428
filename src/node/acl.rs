//! The access control list of the service interfaces (issue 5, TS 33.434 5.1: KM-S and SEAL-X1
//! requesters are authorised per principal): which role a principal (a client certificate's
//! SAN) has and which groups it may read. Replicated through Raft; managed over the admin API
//! (`sealkm acl`). Entries are validated here, before proposing, so a bad request is a 400 that
//! changes nothing.

use super::core::{Actor, NodeError};
use super::parties::Parties;
use crate::audit::AuditKind;
use crate::kms::acl::{AclEntry, Role};
use crate::state::Command;

impl Parties {
    /// Every ACL entry, read linearizably, by principal.
    pub async fn acl_entries(&self) -> Result<Vec<AclEntry>, NodeError> {
        self.read_barrier().await?;
        let mut entries: Vec<AclEntry> = self.state().acl()?.entries().cloned().collect();
        entries.sort_by(|a, b| a.principal.cmp(&b.principal));
        Ok(entries)
    }

    /// `principal`'s entry as this node has applied it: call after a read barrier.
    pub fn acl_entry_local(&self, principal: &str) -> Result<Option<AclEntry>, NodeError> {
        Ok(self.state().acl_entry(principal)?)
    }

    /// Grants `principal` the role `role` and read access to `groups` (replacing its entry).
    pub async fn acl_set(
        &self,
        principal: &str,
        role: &str,
        groups: &[String],
        actor: &Actor,
    ) -> Result<AclEntry, NodeError> {
        let role: Role = role
            .parse()
            .map_err(|e: crate::kms::acl::AclError| NodeError::Invalid(e.to_string()))?;
        let entry = AclEntry::new(principal, role, groups)
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        self.propose_ok(Command::PutAclEntry {
            principal: entry.principal.clone(),
            role: entry.role,
            groups: entry.groups.clone(),
        })
        .await?;
        self.audit_admin(
            AuditKind::AdminAclChanged,
            actor,
            Some(principal),
            "acl",
            Some(format!(
                "{} {}",
                entry.role.as_str(),
                entry.groups.join(",")
            )),
        );
        Ok(entry)
    }

    /// Removes `principal`'s entry.
    pub async fn acl_remove(&self, principal: &str, actor: &Actor) -> Result<(), NodeError> {
        self.check_acl_remove(principal).await?;
        self.propose_ok(Command::RemoveAclEntry {
            principal: principal.to_owned(),
        })
        .await?;
        self.audit_admin(
            AuditKind::AdminAclChanged,
            actor,
            Some(principal),
            "acl",
            Some("removed".into()),
        );
        Ok(())
    }
}
