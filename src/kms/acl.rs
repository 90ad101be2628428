//! Access control for the server-to-server interfaces — **our extension** (TS 33.434 5.3.1 and
//! 5.8.1 only require that the KMS checks "the requester's authorisation"; how is left open).
//!
//! This module owns the rules: a principal is named by the SAN of its TLS client certificate
//! (a string, compared exactly), has one [`Role`], and a list of group ids it may read
//! ([`ALL_GROUPS`] = every group). Group access is decided by that list alone, whatever the
//! role: an `admin` principal reads only the groups it is given. Pure: the replicated `acl`
//! tree stores one [`AclEntry`] per principal; [`Acl`] is the in-memory view for decisions.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::group::validate_group_id;

/// The group pattern that grants every group.
pub const ALL_GROUPS: &str = "*";
/// Longest principal name (a certificate SAN), in bytes.
pub const MAX_PRINCIPAL_BYTES: usize = 1024;
/// Most group entries one principal may list.
pub const MAX_GROUPS_PER_ENTRY: usize = 4096;

/// What a principal is to the KMS. Serialized (JSON, config) in kebab-case: `val-server`,
/// `gms`, `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A VAL server over KM-S (TS 33.434 5.3, 5.8): key material requests, key provisioning.
    ValServer,
    /// The group management server over SEAL-X1.
    Gms,
    /// Operators' tooling.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ValServer => "val-server",
            Role::Gms => "gms",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AclError;
    fn from_str(s: &str) -> Result<Self, AclError> {
        match s {
            "val-server" => Ok(Role::ValServer),
            "gms" => Ok(Role::Gms),
            "admin" => Ok(Role::Admin),
            _ => Err(AclError::UnknownRole),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AclError {
    #[error("invalid principal: {0}")]
    InvalidPrincipal(&'static str),
    #[error("invalid group pattern: {0}")]
    InvalidGroup(String),
    #[error("too many groups (at most {MAX_GROUPS_PER_ENTRY})")]
    TooManyGroups,
    #[error("unknown role (val-server, gms or admin)")]
    UnknownRole,
}

/// Checks a principal name: non-empty, at most [`MAX_PRINCIPAL_BYTES`], no control characters.
pub fn validate_principal(principal: &str) -> Result<(), AclError> {
    if principal.is_empty() {
        return Err(AclError::InvalidPrincipal("empty"));
    }
    if principal.len() > MAX_PRINCIPAL_BYTES {
        return Err(AclError::InvalidPrincipal("too long"));
    }
    if principal.chars().any(char::is_control) {
        return Err(AclError::InvalidPrincipal("contains control characters"));
    }
    Ok(())
}

/// One principal's entry. `groups` is sorted and free of duplicates (see [`AclEntry::new`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclEntry {
    pub principal: String,
    pub role: Role,
    pub groups: Vec<String>,
}

impl AclEntry {
    /// A validated entry in canonical form (groups sorted, duplicates removed), so equal
    /// grants are equal records on every replica.
    pub fn new(principal: &str, role: Role, groups: &[String]) -> Result<Self, AclError> {
        validate_principal(principal)?;
        if groups.len() > MAX_GROUPS_PER_ENTRY {
            return Err(AclError::TooManyGroups);
        }
        for g in groups {
            if g != ALL_GROUPS {
                validate_group_id(g).map_err(|e| AclError::InvalidGroup(e.to_string()))?;
            }
        }
        let mut groups = groups.to_vec();
        groups.sort();
        groups.dedup();
        Ok(Self {
            principal: principal.to_owned(),
            role,
            groups,
        })
    }

    pub fn allows_group(&self, group_id: &str) -> bool {
        self.groups.iter().any(|g| g == ALL_GROUPS || g == group_id)
    }
}

/// The access control list: entries by principal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    entries: BTreeMap<String, AclEntry>,
}

impl Acl {
    pub fn from_entries(entries: impl IntoIterator<Item = AclEntry>) -> Self {
        Self {
            entries: entries
                .into_iter()
                .map(|e| (e.principal.clone(), e))
                .collect(),
        }
    }

    /// Adds or replaces the entry of its principal.
    pub fn put(&mut self, entry: AclEntry) {
        self.entries.insert(entry.principal.clone(), entry);
    }

    pub fn remove(&mut self, principal: &str) -> Option<AclEntry> {
        self.entries.remove(principal)
    }

    pub fn entry(&self, principal: &str) -> Option<&AclEntry> {
        self.entries.get(principal)
    }

    /// May `principal` read `group_id`? False for an unknown principal.
    pub fn allows_group(&self, principal: &str, group_id: &str) -> bool {
        self.entries
            .get(principal)
            .is_some_and(|e| e.allows_group(group_id))
    }

    pub fn role_of(&self, principal: &str) -> Option<Role> {
        self.entries.get(principal).map(|e| e.role)
    }

    pub fn entries(&self) -> impl Iterator<Item = &AclEntry> {
        self.entries.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn decisions_by_principal_and_group() {
        let mut acl = Acl::from_entries([
            AclEntry::new(
                "val1.example.org",
                Role::ValServer,
                &groups(&["b", "a", "a"]),
            )
            .unwrap(),
            AclEntry::new("gms.example.org", Role::Gms, &groups(&["*"])).unwrap(),
            AclEntry::new("ops", Role::Admin, &[]).unwrap(),
        ]);
        assert_eq!(
            acl.entry("val1.example.org").unwrap().groups,
            groups(&["a", "b"])
        );
        assert!(acl.allows_group("val1.example.org", "a"));
        assert!(!acl.allows_group("val1.example.org", "c"));
        assert!(acl.allows_group("gms.example.org", "anything"));
        assert!(
            !acl.allows_group("ops", "a"),
            "admin reads only listed groups"
        );
        assert!(!acl.allows_group("stranger", "a"));
        assert!(!acl.allows_group("VAL1.example.org", "a"), "exact match");
        assert_eq!(acl.role_of("gms.example.org"), Some(Role::Gms));
        assert_eq!(acl.role_of("stranger"), None);
        acl.put(AclEntry::new("val1.example.org", Role::ValServer, &groups(&["c"])).unwrap());
        assert!(acl.allows_group("val1.example.org", "c"));
        assert!(!acl.allows_group("val1.example.org", "a"));
        assert!(acl.remove("val1.example.org").is_some());
        assert_eq!(acl.role_of("val1.example.org"), None);
    }

    #[test]
    fn validation() {
        assert!(AclEntry::new("", Role::Gms, &[]).is_err());
        assert!(AclEntry::new("a\nb", Role::Gms, &[]).is_err());
        assert!(AclEntry::new(&"x".repeat(1025), Role::Gms, &[]).is_err());
        assert!(AclEntry::new("p", Role::Gms, &groups(&["a/b"])).is_err());
        assert!(AclEntry::new("p", Role::Gms, &groups(&[""])).is_err());
        assert!(AclEntry::new("p", Role::Gms, &vec!["g".to_owned(); 4097]).is_err());
    }

    #[test]
    fn role_names() {
        for r in [Role::ValServer, Role::Gms, Role::Admin] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        assert!("root".parse::<Role>().is_err());
    }
}
