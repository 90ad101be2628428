//! Subscriptions to key events — **our extension** (distribution; see `kms::events` for what a
//! subscription receives and `state::outbox` for the replicated outbox and offsets). A party of
//! the service listener manages its own subscriptions here: requests are validated before
//! proposing (a bad one is a 400 that changes nothing), a principal only ever sees, replaces or
//! removes its own subscriptions, and a group filter may only name groups its ACL entry allows.
//! Delivery is `actors::distribution`. Every change is audited (`SubscriptionChanged`).

use super::core::{Actor, NodeError};
use super::parties::Parties;
use crate::audit::AuditKind;
use crate::kms::events::{EventKind, Subscription, MAX_SUBSCRIPTIONS_PER_PRINCIPAL};
use crate::state::{Command, SubscriptionStatus};

impl Parties {
    /// Creates subscription `id` for `principal`, or replaces it if `principal` already owns
    /// it (the acknowledged offset is kept). Returns the subscription with its delivery state.
    ///
    /// Errors: `Invalid` (malformed id, URL, kinds or filter), `Conflict` (the id belongs to
    /// another principal), `Forbidden` (no ACL entry, or a filtered group the entry does not
    /// allow).
    pub async fn subscribe(
        &self,
        principal: &str,
        id: &str,
        callback_url: &str,
        kinds: &[EventKind],
        group_filter: Option<&[String]>,
        actor: &Actor,
    ) -> Result<SubscriptionStatus, NodeError> {
        let sub = Subscription::new(id, principal, callback_url, kinds, group_filter)
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        self.read_barrier().await?;
        let acl = self
            .acl_entry_local(principal)?
            .ok_or_else(|| NodeError::Forbidden(format!("{principal} has no ACL entry")))?;
        if let Some(g) = sub
            .group_filter
            .iter()
            .flatten()
            .find(|g| !acl.allows_group(g))
        {
            return Err(NodeError::Forbidden(format!(
                "{principal} is not entitled to group {g}"
            )));
        }
        let existing = self.state().subscription(id)?;
        if let Some(old) = &existing {
            if old.subscription.principal != principal {
                return Err(NodeError::Conflict(format!(
                    "subscription id {id} is taken; choose another"
                )));
            }
        } else {
            let held = self
                .state()
                .subscriptions()?
                .iter()
                .filter(|s| s.subscription.principal == principal)
                .count();
            if held >= MAX_SUBSCRIPTIONS_PER_PRINCIPAL {
                return Err(NodeError::Quota(format!(
                    "{principal} holds {held} subscriptions, the most it may hold \
                     ({MAX_SUBSCRIPTIONS_PER_PRINCIPAL}); remove one first"
                )));
            }
        }
        self.propose_ok(Command::PutSubscription {
            id: sub.id.clone(),
            principal: sub.principal.clone(),
            callback_url: sub.callback_url.clone(),
            kinds: sub.kinds.clone(),
            group_filter: sub.group_filter.clone(),
        })
        .await?;
        self.audit_admin(
            AuditKind::SubscriptionChanged,
            actor,
            Some(principal),
            "subscriptions",
            Some(format!(
                "{} {id} -> {}",
                if existing.is_some() {
                    "replaced"
                } else {
                    "created"
                },
                sub.callback_url
            )),
        );
        // Applied on this node: its state holds the subscription (unless a removal raced in).
        self.state().subscription(id)?.ok_or_else(|| {
            NodeError::Conflict(format!("subscription {id} was removed concurrently"))
        })
    }

    /// `principal`'s subscriptions with their delivery state, read linearizably, by id.
    pub async fn subscriptions_of(
        &self,
        principal: &str,
    ) -> Result<Vec<SubscriptionStatus>, NodeError> {
        self.read_barrier().await?;
        Ok(self
            .state()
            .subscriptions()?
            .into_iter()
            .filter(|s| s.subscription.principal == principal)
            .collect())
    }

    /// Removes `principal`'s subscription `id`; `NotFound` if there is none or it is
    /// another principal's (which is not revealed).
    pub async fn unsubscribe(
        &self,
        principal: &str,
        id: &str,
        actor: &Actor,
    ) -> Result<(), NodeError> {
        self.read_barrier().await?;
        let not_found = || NodeError::NotFound(format!("no subscription {id}"));
        match self.state().subscription(id)? {
            Some(s) if s.subscription.principal == principal => {}
            _ => return Err(not_found()),
        }
        match self
            .propose(Command::RemoveSubscription { id: id.to_owned() })
            .await?
        {
            crate::state::Outcome::Applied => {}
            // Removed concurrently (by this principal: nobody else may).
            crate::state::Outcome::Rejected(_) => return Err(not_found()),
        }
        self.audit_admin(
            AuditKind::SubscriptionChanged,
            actor,
            Some(principal),
            "subscriptions",
            Some(format!("removed {id}")),
        );
        Ok(())
    }
}
