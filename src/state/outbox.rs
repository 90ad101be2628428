//! The replicated outbox of key events, the subscriptions and their acknowledged offsets —
//! **our extension** (distribution, ARCHITECTURE plan §3: at-least-once, in order per
//! subscriber, idempotent by event id, nothing lost on a leader change because all of it is
//! replicated). What an event says and which ones a subscriber gets is `kms::events`; this
//! module numbers, stores, acknowledges and trims them, inside the apply transaction.
//!
//! Trees: `outbox` (event id, u64 big endian → bincode [`Event`]), `subscriptions` (id → bincode
//! [`Subscription`]), `sub_offsets` (id → bincode offset: acknowledged event id and the
//! `must_resync` flag). Meta keys: `outbox_last_id` (newest event id), `outbox_trimmed` (every
//! id up to it is gone), `subscription_ids` (sorted ids: transactions cannot iterate a tree).
//!
//! Rules, all deterministic in apply:
//! - A key event is appended by the command that causes it, in the same transaction, with the
//!   next id. **Only while at least one subscription exists**: with none, nothing is written
//!   (no id is used). Every event would be trimmed at once anyway, and this keeps a binary that
//!   knows the outbox writing exactly what an older binary writes for the old commands until
//!   the first `PutSubscription` (a version-2 command, proposed only after every node runs a
//!   binary that knows it), so replicas never diverge during a rolling upgrade.
//! - A new subscription starts after the newest event (it reads current state through the
//!   read APIs, not history).
//! - `AckEvents` moves a subscriber's offset forward (a stale or duplicate ack changes
//!   nothing) and clears `must_resync`.
//! - Backlog bound: a subscriber's backlog is every event after its offset, matching or not
//!   (those are what it keeps in the outbox; the distributor acks [`EventPage::next_after`],
//!   which covers skipped events). When an append makes it exceed [`MAX_BACKLOG`], its offset
//!   jumps to the newest event and `must_resync` is set: the distributor must tell it to
//!   resynchronise from the read APIs before delivering anything else.
//! - Trim: after every ack, removal and append, events up to the smallest offset of all
//!   subscribers (all of them when there is none) are removed. Hence the outbox never holds
//!   more than [`MAX_BACKLOG`] events.

use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;

use super::groups::acl_entry_tx;
use super::machine::trees::Trees;
use super::machine::{
    dec, dec_tx, enc, reject, Abort, StateError, StateMachine, Tx, TxResult, META_TREE,
};
use crate::kms::acl::AclEntry;
use crate::kms::events::{Event, EventKind, EventSubject, Subscription};

/// Most unacknowledged events one subscriber may have before it is marked `must_resync`.
pub const MAX_BACKLOG: u64 = 10_000;
/// Most subscriptions (every append visits each one).
pub const MAX_SUBSCRIPTIONS: usize = 1_000;

const LAST_ID_KEY: &[u8] = b"outbox_last_id";
const TRIMMED_KEY: &[u8] = b"outbox_trimmed";
const SUBSCRIPTION_IDS_KEY: &[u8] = b"subscription_ids";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Offset {
    acked: u64,
    must_resync: bool,
}

/// A subscription with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionStatus {
    pub subscription: Subscription,
    /// Every event up to this id is acknowledged (or skipped by a resync jump).
    pub acked: u64,
    /// The backlog overflowed: the subscriber must resynchronise; cleared by its next ack.
    pub must_resync: bool,
}

/// One page of [`StateMachine::events_for`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    /// Matching events in id order.
    pub events: Vec<Event>,
    /// The last id examined: acknowledging up to it skips the non-matching events too.
    pub next_after: u64,
    /// Events after `after` were trimmed already (`after` was behind the subscriber's offset).
    pub missed: bool,
    pub must_resync: bool,
}

fn u64_value(what: &str, v: &[u8]) -> Result<u64, StateError> {
    let arr: [u8; 8] = v
        .try_into()
        .map_err(|_| StateError::Corrupt(what.to_owned()))?;
    Ok(u64::from_be_bytes(arr))
}

fn meta_u64_tx(m: &TransactionalTree, key: &[u8]) -> TxResult<u64> {
    match m.get(key)? {
        None => Ok(0),
        Some(v) => u64_value(META_TREE, &v).map_err(Abort::fail),
    }
}

fn ids_tx(tx: &Tx) -> TxResult<Vec<String>> {
    match tx.meta.get(SUBSCRIPTION_IDS_KEY)? {
        None => Ok(Vec::new()),
        Some(v) => dec_tx("subscription ids", &v),
    }
}

fn put_ids(tx: &Tx, ids: &[String]) -> TxResult<()> {
    if ids.is_empty() {
        tx.meta.remove(SUBSCRIPTION_IDS_KEY)?;
    } else {
        tx.meta.insert(SUBSCRIPTION_IDS_KEY, enc(&ids)?)?;
    }
    Ok(())
}

fn offset_tx(tx: &Tx, id: &str) -> TxResult<Offset> {
    match tx.sub_offsets.get(id.as_bytes())? {
        None => Err(Abort::fail(StateError::Corrupt(format!(
            "subscription {id} has no offset"
        )))),
        Some(v) => dec_tx("subscription offset", &v),
    }
}

fn put_offset(tx: &Tx, id: &str, off: Offset) -> TxResult<()> {
    tx.sub_offsets.insert(id.as_bytes(), enc(&off)?)?;
    Ok(())
}

/// Removes the events every subscriber has passed (all of them when there is none).
fn trim(tx: &Tx, ids: &[String], last: u64) -> TxResult<()> {
    let mut min = last;
    for id in ids {
        min = min.min(offset_tx(tx, id)?.acked);
    }
    let trimmed = meta_u64_tx(tx.meta, TRIMMED_KEY)?;
    if min <= trimmed {
        return Ok(());
    }
    for e in trimmed + 1..=min {
        tx.outbox.remove(&e.to_be_bytes())?;
    }
    tx.meta.insert(TRIMMED_KEY, &min.to_be_bytes())?;
    Ok(())
}

/// Appends a key event (if anyone subscribes), applies the backlog bound, trims.
pub(super) fn emit(
    tx: &Tx,
    kind: EventKind,
    subject: EventSubject,
    at_unix: Option<u64>,
) -> TxResult<()> {
    let ids = ids_tx(tx)?;
    if ids.is_empty() {
        return Ok(());
    }
    let id = meta_u64_tx(tx.meta, LAST_ID_KEY)?.saturating_add(1);
    let event = Event {
        id,
        kind,
        subject,
        at_unix,
    };
    tx.outbox.insert(&id.to_be_bytes(), enc(&event)?)?;
    tx.meta.insert(LAST_ID_KEY, &id.to_be_bytes())?;
    for sid in &ids {
        let off = offset_tx(tx, sid)?;
        if id - off.acked.min(id) > MAX_BACKLOG {
            let jumped = Offset {
                acked: id,
                must_resync: true,
            };
            put_offset(tx, sid, jumped)?;
        }
    }
    trim(tx, &ids, id)
}

/// Creates or updates a subscription. The principal needs an ACL entry, and every group of the
/// filter must be one it may read. An update keeps the offset and may not change the principal.
pub(super) fn put_subscription(
    tx: &Tx,
    id: &str,
    principal: &str,
    callback_url: &str,
    kinds: &[EventKind],
    group_filter: Option<&[String]>,
) -> TxResult<()> {
    let sub = match Subscription::new(id, principal, callback_url, kinds, group_filter) {
        Ok(s) => s,
        Err(e) => return reject(e.to_string()),
    };
    let Some(acl) = acl_entry_tx(tx, principal)? else {
        return reject(format!("no ACL entry for {principal}"));
    };
    if let Some(g) = sub
        .group_filter
        .iter()
        .flatten()
        .find(|g| !acl.allows_group(g))
    {
        return reject(format!("{principal} may not read group {g}"));
    }
    let mut ids = ids_tx(tx)?;
    match ids.binary_search_by(|x| x.as_str().cmp(id)) {
        Ok(_) => {
            let old: Subscription = match tx.subscriptions.get(id.as_bytes())? {
                Some(v) => dec_tx("subscription", &v)?,
                None => {
                    return Err(Abort::fail(StateError::Corrupt(format!(
                        "subscription {id} is indexed but missing"
                    ))))
                }
            };
            if old.principal != principal {
                return reject(format!("subscription {id} belongs to another principal"));
            }
        }
        Err(pos) => {
            if ids.len() >= MAX_SUBSCRIPTIONS {
                return reject(format!("at most {MAX_SUBSCRIPTIONS} subscriptions"));
            }
            ids.insert(pos, id.to_owned());
            put_ids(tx, &ids)?;
            let start = Offset {
                acked: meta_u64_tx(tx.meta, LAST_ID_KEY)?,
                must_resync: false,
            };
            put_offset(tx, id, start)?;
        }
    }
    tx.subscriptions.insert(id.as_bytes(), enc(&sub)?)?;
    Ok(())
}

pub(super) fn remove_subscription(tx: &Tx, id: &str) -> TxResult<()> {
    let mut ids = ids_tx(tx)?;
    let Ok(pos) = ids.binary_search_by(|x| x.as_str().cmp(id)) else {
        return reject(format!("unknown subscription {id}"));
    };
    ids.remove(pos);
    put_ids(tx, &ids)?;
    tx.subscriptions.remove(id.as_bytes())?;
    tx.sub_offsets.remove(id.as_bytes())?;
    trim(tx, &ids, meta_u64_tx(tx.meta, LAST_ID_KEY)?)
}

pub(super) fn ack_events(tx: &Tx, id: &str, up_to: u64) -> TxResult<()> {
    let ids = ids_tx(tx)?;
    if ids.binary_search_by(|x| x.as_str().cmp(id)).is_err() {
        return reject(format!("unknown subscription {id}"));
    }
    let last = meta_u64_tx(tx.meta, LAST_ID_KEY)?;
    if up_to > last {
        return reject(format!("event {up_to} does not exist (newest is {last})"));
    }
    let off = offset_tx(tx, id)?;
    if up_to < off.acked {
        // A duplicate or late acknowledgement (at-least-once delivery): nothing changes.
        return Ok(());
    }
    let acked = Offset {
        acked: up_to,
        must_resync: false,
    };
    put_offset(tx, id, acked)?;
    trim(tx, &ids, last)
}

fn meta_u64(t: &Trees, key: &[u8]) -> Result<u64, StateError> {
    match t.meta.get(key)? {
        None => Ok(0),
        Some(v) => u64_value(META_TREE, &v),
    }
}

fn status(t: &Trees, sub: Subscription) -> Result<SubscriptionStatus, StateError> {
    let off: Offset = match t.sub_offsets.get(sub.id.as_bytes())? {
        Some(v) => dec("subscription offset", &v)?,
        None => return Err(StateError::Corrupt(format!("offset of {}", sub.id))),
    };
    Ok(SubscriptionStatus {
        subscription: sub,
        acked: off.acked,
        must_resync: off.must_resync,
    })
}

fn subscription(t: &Trees, id: &str) -> Result<Option<SubscriptionStatus>, StateError> {
    match t.subscriptions.get(id.as_bytes())? {
        None => Ok(None),
        Some(v) => status(t, dec("subscription", &v)?).map(Some),
    }
}

impl StateMachine {
    /// Every subscription with its delivery state, by id.
    pub fn subscriptions(&self) -> Result<Vec<SubscriptionStatus>, StateError> {
        let t = self.read();
        let mut out = Vec::new();
        for v in t.subscriptions.iter().values() {
            out.push(status(&t, dec("subscription", &v?)?)?);
        }
        Ok(out)
    }

    pub fn subscription(&self, id: &str) -> Result<Option<SubscriptionStatus>, StateError> {
        subscription(&self.read(), id)
    }

    /// Up to `limit` events after `after` that subscription `id` receives (by kind, group
    /// filter and its principal's current ACL), in id order; `None` for an unknown
    /// subscription. Scans at most the outbox, which holds at most [`MAX_BACKLOG`] events.
    pub fn events_for(
        &self,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Option<EventPage>, StateError> {
        let t = self.read();
        let Some(status) = subscription(&t, id)? else {
            return Ok(None);
        };
        let acl: Option<AclEntry> = t
            .acl
            .get(status.subscription.principal.as_bytes())?
            .map(|v| dec("acl entry", &v))
            .transpose()?;
        let trimmed = meta_u64(&t, TRIMMED_KEY)?;
        let last = meta_u64(&t, LAST_ID_KEY)?;
        let mut page = EventPage {
            events: Vec::new(),
            next_after: after.max(trimmed).min(last),
            missed: after < trimmed,
            must_resync: status.must_resync,
        };
        if limit == 0 {
            return Ok(Some(page));
        }
        let start = after.max(trimmed).saturating_add(1);
        for kv in t.outbox.range(start.to_be_bytes()..) {
            let (_, v) = kv?;
            let event: Event = dec("event", &v)?;
            page.next_after = event.id;
            if status.subscription.matches(&event, acl.as_ref()) {
                page.events.push(event);
                if page.events.len() >= limit {
                    break;
                }
            }
        }
        Ok(Some(page))
    }

    /// Number of events held in the outbox (at most [`MAX_BACKLOG`]).
    pub fn outbox_len(&self) -> Result<u64, StateError> {
        let t = self.read();
        let last = meta_u64(&t, LAST_ID_KEY)?;
        Ok(last.saturating_sub(meta_u64(&t, TRIMMED_KEY)?))
    }

    /// Id of the newest event ever appended (0: none).
    pub fn newest_event_id(&self) -> Result<u64, StateError> {
        meta_u64(&self.read(), LAST_ID_KEY)
    }
}

#[cfg(test)]
mod tests;
