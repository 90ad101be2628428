//! Key events and subscriptions to them — **our extension** (the distribution of ARCHITECTURE
//! plan §3: notifications carry metadata only; keys are fetched over the authenticated
//! interface).
//!
//! This module owns what an [`Event`] says and which events a [`Subscription`] receives; it is
//! pure. The replicated outbox that numbers, stores, acknowledges and trims events is
//! `state::outbox`. An event never carries key material: only the kind, what it is about
//! (group id and version, KMS and certificate URI, or identity) and the time given by the
//! command that caused it.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::acl::AclEntry;
use super::group::validate_group_id;

/// Longest subscription id, in bytes.
pub const MAX_SUBSCRIPTION_ID_BYTES: usize = 255;
/// Longest callback URL, in bytes.
pub const MAX_CALLBACK_URL_BYTES: usize = 2048;
/// Most groups in one subscription's filter.
pub const MAX_GROUP_FILTER: usize = 4096;
/// Subscriptions one principal may hold (a quota on the replicated state; replacing one of
/// its own is always allowed).
pub const MAX_SUBSCRIPTIONS_PER_PRINCIPAL: usize = 16;

/// What happened. Serialized (JSON) in kebab-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// Version 1 of a group key was created.
    GroupKeyCreated,
    /// A group got a new key version (2, 3, …).
    GroupKeyRotated,
    GroupKeyRevoked,
    /// A group key version's expiry was set or cleared.
    GroupKeyExpirySet,
    /// A community got a new KMS certificate (serial > 1).
    CertificateRotated,
    CertificateRevoked,
    IdentityRevoked,
    /// A group key version's expiry time has passed (noted once, by the leader's sweeper).
    GroupKeyExpired,
    /// A partner KMS certificate was imported (or approved) as `External`; the subject is the
    /// partner's KMS URI and the certificate id.
    PartnerCertificateImported,
    /// A partner certificate fetched over KM-E waits for an operator's approval.
    PartnerCertificateStaged,
    PartnerCertificateRevoked,
    PartnerCertificateRemoved,
    /// A version of a federated group a partner shares with us arrived over KM-E and was
    /// imported (read-only here); the subject names the partner's KMS URI and the GMK-ID.
    /// The version's `group-key-created` / `group-key-rotated` event comes with it, as for our
    /// own versions.
    FederatedKeyImported,
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventSubject {
    GroupKey {
        group_id: String,
        version: u32,
    },
    Certificate {
        kms_uri: String,
        cert_uri: String,
    },
    Identity {
        kms_uri: String,
        identity: String,
    },
    /// A federated group key version imported from the partner KMS `partner_kms_uri`.
    FederatedGroupKey {
        group_id: String,
        version: u32,
        gmk_id: u32,
        partner_kms_uri: String,
    },
}

/// One committed key event (metadata only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, 3, … in commit order, across all kinds (assigned by the outbox).
    pub id: u64,
    pub kind: EventKind,
    pub subject: EventSubject,
    /// The time the causing command carries (for a certificate rotation, the new
    /// certificate's ValidFrom, which the proposer sets to its time); `None` when it carries
    /// none (a certificate revocation: that command predates the outbox and its encoding is
    /// fixed).
    pub at_unix: Option<u64>,
}

impl Event {
    /// The group an event is about, if any.
    pub fn group_id(&self) -> Option<&str> {
        match &self.subject {
            EventSubject::GroupKey { group_id, .. }
            | EventSubject::FederatedGroupKey { group_id, .. } => Some(group_id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubscriptionError {
    #[error("invalid subscription id: {0}")]
    InvalidId(&'static str),
    #[error("invalid callback URL: {0}")]
    InvalidCallback(&'static str),
    #[error("a subscription needs at least one event kind")]
    NoKinds,
    #[error("invalid group filter: {0}")]
    InvalidFilter(String),
}

fn validate_id(id: &str) -> Result<(), SubscriptionError> {
    if id.is_empty() {
        return Err(SubscriptionError::InvalidId("empty"));
    }
    if id.len() > MAX_SUBSCRIPTION_ID_BYTES {
        return Err(SubscriptionError::InvalidId("longer than 255 bytes"));
    }
    if id.contains('/') || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(SubscriptionError::InvalidId(
            "not printable or contains '/'",
        ));
    }
    Ok(())
}

fn validate_callback(url: &str) -> Result<(), SubscriptionError> {
    if url.len() > MAX_CALLBACK_URL_BYTES {
        return Err(SubscriptionError::InvalidCallback("too long"));
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(SubscriptionError::InvalidCallback(
            "must be an https:// URL",
        ));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(SubscriptionError::InvalidCallback("no host"));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(SubscriptionError::InvalidCallback("not printable"));
    }
    Ok(())
}

/// A subscriber: who (the principal, for access control), where notifications go, which
/// kinds, and optionally which groups. `kinds` and `group_filter` are sorted and deduplicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub principal: String,
    pub callback_url: String,
    pub kinds: Vec<EventKind>,
    /// `None`: every group the principal may read. Only restricts group events.
    pub group_filter: Option<Vec<String>>,
}

impl Subscription {
    /// A validated subscription in canonical form.
    pub fn new(
        id: &str,
        principal: &str,
        callback_url: &str,
        kinds: &[EventKind],
        group_filter: Option<&[String]>,
    ) -> Result<Self, SubscriptionError> {
        validate_id(id)?;
        validate_callback(callback_url)?;
        if kinds.is_empty() {
            return Err(SubscriptionError::NoKinds);
        }
        let mut kinds = kinds.to_vec();
        kinds.sort();
        kinds.dedup();
        let group_filter = match group_filter {
            None => None,
            Some(groups) => {
                if groups.is_empty() || groups.len() > MAX_GROUP_FILTER {
                    return Err(SubscriptionError::InvalidFilter(format!(
                        "between 1 and {MAX_GROUP_FILTER} groups (or no filter)"
                    )));
                }
                for g in groups {
                    validate_group_id(g)
                        .map_err(|e| SubscriptionError::InvalidFilter(e.to_string()))?;
                }
                let mut groups = groups.to_vec();
                groups.sort();
                groups.dedup();
                Some(groups)
            }
        };
        Ok(Self {
            id: id.to_owned(),
            principal: principal.to_owned(),
            callback_url: callback_url.to_owned(),
            kinds,
            group_filter,
        })
    }

    /// Does this subscriber receive `event`, given its principal's current ACL entry? Nothing
    /// without an entry; a group event only for a group the entry allows and the filter names
    /// (if there is a filter); other events by kind alone.
    pub fn matches(&self, event: &Event, acl: Option<&AclEntry>) -> bool {
        let Some(acl) = acl else {
            return false;
        };
        if !self.kinds.contains(&event.kind) {
            return false;
        }
        match event.group_id() {
            None => true,
            Some(g) => {
                acl.allows_group(g)
                    && self
                        .group_filter
                        .as_ref()
                        .is_none_or(|f| f.iter().any(|x| x == g))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kms::acl::Role;

    fn group_event(kind: EventKind, g: &str) -> Event {
        Event {
            id: 1,
            kind,
            subject: EventSubject::GroupKey {
                group_id: g.into(),
                version: 1,
            },
            at_unix: Some(5),
        }
    }

    #[test]
    fn validation_and_canonical_form() {
        let k = [EventKind::GroupKeyRevoked, EventKind::GroupKeyCreated];
        let s = Subscription::new("s1", "p", "https://h/cb", &[k[0], k[1], k[0]], None).unwrap();
        assert_eq!(
            s.kinds,
            vec![EventKind::GroupKeyCreated, EventKind::GroupKeyRevoked]
        );
        let f = ["b".to_owned(), "a".to_owned(), "b".to_owned()];
        let s = Subscription::new("s1", "p", "https://h", &k, Some(&f)).unwrap();
        assert_eq!(s.group_filter, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert!(Subscription::new("", "p", "https://h", &k, None).is_err());
        assert!(Subscription::new("a/b", "p", "https://h", &k, None).is_err());
        assert!(Subscription::new("s", "p", "http://h", &k, None).is_err());
        assert!(Subscription::new("s", "p", "https://", &k, None).is_err());
        assert!(Subscription::new("s", "p", "https://h/a b", &k, None).is_err());
        assert!(Subscription::new("s", "p", "https://h", &[], None).is_err());
        assert!(Subscription::new("s", "p", "https://h", &k, Some(&[])).is_err());
        assert!(Subscription::new("s", "p", "https://h", &k, Some(&["*".into()])).is_err());
    }

    #[test]
    fn matching_by_kind_group_filter_and_acl() {
        let acl = AclEntry::new("p", Role::Gms, &["a".into(), "b".into()]).unwrap();
        let kinds = [EventKind::GroupKeyCreated, EventKind::IdentityRevoked];
        let all = Subscription::new("s", "p", "https://h", &kinds, None).unwrap();
        let only_b = Subscription::new("s", "p", "https://h", &kinds, Some(&["b".into()])).unwrap();
        let created_a = group_event(EventKind::GroupKeyCreated, "a");
        assert!(all.matches(&created_a, Some(&acl)));
        assert!(!only_b.matches(&created_a, Some(&acl)));
        assert!(only_b.matches(&group_event(EventKind::GroupKeyCreated, "b"), Some(&acl)));
        assert!(!all.matches(&group_event(EventKind::GroupKeyRevoked, "a"), Some(&acl)));
        assert!(
            !all.matches(&group_event(EventKind::GroupKeyCreated, "c"), Some(&acl)),
            "the ACL bounds what a subscriber learns"
        );
        assert!(!all.matches(&created_a, None), "no ACL entry, no events");
        let revoked = Event {
            id: 2,
            kind: EventKind::IdentityRevoked,
            subject: EventSubject::Identity {
                kms_uri: "k".into(),
                identity: "sip:a".into(),
            },
            at_unix: Some(1),
        };
        assert!(
            only_b.matches(&revoked, Some(&acl)),
            "filter restricts group events only"
        );
    }

    #[test]
    fn kind_names() {
        assert_eq!(
            serde_json::to_string(&EventKind::GroupKeyExpirySet).unwrap(),
            "\"group-key-expiry-set\""
        );
        assert_eq!(
            serde_json::to_string(&EventKind::FederatedKeyImported).unwrap(),
            "\"federated-key-imported\""
        );
    }

    #[test]
    fn a_federated_key_event_is_a_group_event_for_the_acl_and_filter() {
        let acl = AclEntry::new("p", Role::ValServer, &["a".into()]).unwrap();
        let kinds = [EventKind::FederatedKeyImported];
        let sub = Subscription::new("s", "p", "https://h", &kinds, None).unwrap();
        let imported = |g: &str| Event {
            id: 3,
            kind: EventKind::FederatedKeyImported,
            subject: EventSubject::FederatedGroupKey {
                group_id: g.into(),
                version: 2,
                gmk_id: 7,
                partner_kms_uri: "kms.partner.test".into(),
            },
            at_unix: Some(9),
        };
        assert_eq!(imported("a").group_id(), Some("a"));
        assert!(sub.matches(&imported("a"), Some(&acl)));
        assert!(
            !sub.matches(&imported("b"), Some(&acl)),
            "not a group it may read"
        );
    }
}
