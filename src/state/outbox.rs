//! The replicated outbox of key events, the subscriptions and their acknowledged offsets —
//! **our extension** (distribution, ARCHITECTURE plan §3: at-least-once, in order per
//! subscriber, idempotent by event id, nothing lost on a leader change because all of it is
//! replicated). What an event says and which ones a subscriber gets is `kms::events`; this
//! module numbers, stores, acknowledges and trims them, inside the apply transaction.
//!
//! Trees: `outbox` (event id, u64 big endian → bincode [`Event`]), `subscriptions` (id → bincode
//! [`Subscription`]), `sub_offsets` (id → bincode stored offset: the raw acknowledged event id
//! and the `must_resync` flag, see below). Meta keys: `outbox_last_id` (newest event id),
//! `outbox_trimmed` (every id up to it is gone), `subscription_count`, `sub_residues` and
//! `sub_residue` ‖ residue (the trim index, see `index`). Transactions cannot iterate a
//! tree, so everything apply needs is found by key: nothing it does visits every
//! subscription, and emit, ack, put and remove read and write a bounded number of records
//! whether there is 1 subscription or [`MAX_SUBSCRIPTIONS`]. The index is built on
//! `MAX_BACKLOG + 1`: changing [`MAX_BACKLOG`] needs a migration of the stored state.
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
//! - `AckEvents` moves a subscriber's offset forward (an ack below its effective offset is
//!   stale or duplicate and changes nothing) and clears `must_resync`.
//! - Backlog bound: a subscriber's backlog is every event after its offset, matching or not
//!   (those are what it keeps in the outbox; the distributor acks [`EventPage::next_after`],
//!   which covers skipped events). When an append makes it exceed [`MAX_BACKLOG`], its offset
//!   jumps to the newest event and `must_resync` is set: the distributor must tell it to
//!   resynchronise from the read APIs before delivering anything else. Applied lazily: the
//!   stored offset keeps what was acknowledged and every read derives the jumps from it and
//!   the newest id (`index::effective`), which gives exactly what jumping at each append
//!   gives.
//! - Trim: after every ack, removal and append, events up to the smallest effective offset of
//!   all subscribers (all of them when there is none) are removed. Hence the outbox never
//!   holds more than [`MAX_BACKLOG`] events.
//!
//! Layouts: before `subscription_count`, the state kept the sorted ids in meta key
//! `subscription_ids` and jumped offsets at each append (every append visited every
//! subscription, which capped them at 1,000). Such a state (a reopened node, a restored
//! snapshot) reads the same (its offsets never lag by more than [`MAX_BACKLOG`], so the lazy
//! rule leaves them as they are) and is migrated by the first transaction that touches the
//! outbox (`index`). The stored bytes differ from then on, and so do they between an old
//! and a new binary applying the same subscription commands (offsets no longer jumped, the
//! list replaced by the count and the index): during a rolling upgrade, nodes that hold
//! subscriptions show different state digests until all run this binary (what they return
//! stays the same). A new binary proposes `PutSubscription` in a version-8 envelope, which an
//! old node does not know: it stops rather than apply it (`state::command`), so no replica
//! ever refuses a subscription that another accepted; in an envelope below 8 (an old log) the
//! limit stays 1,000 ([`subscription_limit`]). An old binary would misread a
//! state of this layout, so a snapshot of one carries snapshot format version 2, which it
//! refuses (`state::snapshot`): a lagging old node must be upgraded to install it. No
//! downgrade once migrated.

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
/// Most subscriptions. Apply costs do not grow with their number (see `index`); what
/// bounds it is the readers that list them all (the distributor's round, the API's count
/// per principal).
pub const MAX_SUBSCRIPTIONS: usize = 10_000;
/// Most subscriptions a `PutSubscription` in an envelope below version 8 may make: the limit
/// of the binaries before this layout, so their log replays as it was applied.
pub const MAX_SUBSCRIPTIONS_BEFORE_V8: usize = 1_000;

/// The subscription limit of a `PutSubscription` carried in an envelope of `version`.
pub fn subscription_limit(envelope_version: u16) -> usize {
    if envelope_version >= 8 {
        MAX_SUBSCRIPTIONS
    } else {
        MAX_SUBSCRIPTIONS_BEFORE_V8
    }
}

const LAST_ID_KEY: &[u8] = b"outbox_last_id";
const TRIMMED_KEY: &[u8] = b"outbox_trimmed";

/// A subscriber's stored offset (tree `sub_offsets`): the raw acknowledged event id and flag;
/// what they stand for is `index::effective` of them.
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

/// The stored offset of subscription `id`, `None` if there is no such subscription.
fn offset_tx(tx: &Tx, id: &str) -> TxResult<Option<Offset>> {
    match tx.sub_offsets.get(id.as_bytes())? {
        None => Ok(None),
        Some(v) => dec_tx("subscription offset", &v).map(Some),
    }
}

fn put_offset(tx: &Tx, id: &str, off: Offset) -> TxResult<()> {
    tx.sub_offsets.insert(id.as_bytes(), enc(&off)?)?;
    Ok(())
}

/// Removes the events every subscriber has passed (all of them when there is none).
fn trim(tx: &Tx, last: u64) -> TxResult<()> {
    let min = index::min_effective(tx, last)?;
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

/// Appends a key event (if anyone subscribes) and trims; the backlog bound needs no write
/// (the lazy rule of `index`).
pub(super) fn emit(
    tx: &Tx,
    kind: EventKind,
    subject: EventSubject,
    at_unix: Option<u64>,
) -> TxResult<()> {
    if index::count_tx(tx)? == 0 {
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
    trim(tx, id)
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
    limit: usize,
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
    let count = index::count_tx(tx)?;
    match tx.subscriptions.get(id.as_bytes())? {
        Some(v) => {
            let old: Subscription = dec_tx("subscription", &v)?;
            if old.principal != principal {
                return reject(format!("subscription {id} belongs to another principal"));
            }
        }
        None => {
            if count >= limit as u64 {
                return reject(format!("at most {limit} subscriptions"));
            }
            index::put_count(tx, count + 1)?;
            let start = Offset {
                acked: meta_u64_tx(tx.meta, LAST_ID_KEY)?,
                must_resync: false,
            };
            index::add_offset(tx, start.acked)?;
            put_offset(tx, id, start)?;
        }
    }
    tx.subscriptions.insert(id.as_bytes(), enc(&sub)?)?;
    Ok(())
}

pub(super) fn remove_subscription(tx: &Tx, id: &str) -> TxResult<()> {
    let count = index::count_tx(tx)?;
    let Some(off) = offset_tx(tx, id)? else {
        return reject(format!("unknown subscription {id}"));
    };
    index::remove_offset(tx, off.acked)?;
    index::put_count(tx, count.saturating_sub(1))?;
    tx.subscriptions.remove(id.as_bytes())?;
    tx.sub_offsets.remove(id.as_bytes())?;
    trim(tx, meta_u64_tx(tx.meta, LAST_ID_KEY)?)
}

pub(super) fn ack_events(tx: &Tx, id: &str, up_to: u64) -> TxResult<()> {
    // Migrates a state of the id-list layout first: the residue counts must exist.
    index::count_tx(tx)?;
    let Some(stored) = offset_tx(tx, id)? else {
        return reject(format!("unknown subscription {id}"));
    };
    let last = meta_u64_tx(tx.meta, LAST_ID_KEY)?;
    if up_to > last {
        return reject(format!("event {up_to} does not exist (newest is {last})"));
    }
    if up_to < index::effective(stored, last).acked {
        // A duplicate or late acknowledgement (at-least-once delivery): nothing changes.
        return Ok(());
    }
    let acked = Offset {
        acked: up_to,
        must_resync: false,
    };
    index::move_offset(tx, stored.acked, up_to)?;
    put_offset(tx, id, acked)?;
    trim(tx, last)
}

/// Whether `meta` holds subscriptions in the layout a binary before `subscription_count`
/// cannot read (snapshots of such a state carry a newer format version).
pub(crate) fn has_counted_layout(meta: &sled::Tree) -> Result<bool, StateError> {
    Ok(meta.contains_key(index::COUNT_KEY)?)
}

fn meta_u64(t: &Trees, key: &[u8]) -> Result<u64, StateError> {
    match t.meta.get(key)? {
        None => Ok(0),
        Some(v) => u64_value(META_TREE, &v),
    }
}

/// `sub` with its effective offset once the newest event is `last`.
fn status(t: &Trees, sub: Subscription, last: u64) -> Result<SubscriptionStatus, StateError> {
    let stored: Offset = match t.sub_offsets.get(sub.id.as_bytes())? {
        Some(v) => dec("subscription offset", &v)?,
        None => return Err(StateError::Corrupt(format!("offset of {}", sub.id))),
    };
    let off = index::effective(stored, last);
    Ok(SubscriptionStatus {
        subscription: sub,
        acked: off.acked,
        must_resync: off.must_resync,
    })
}

fn subscription(t: &Trees, id: &str) -> Result<Option<SubscriptionStatus>, StateError> {
    match t.subscriptions.get(id.as_bytes())? {
        None => Ok(None),
        Some(v) => status(t, dec("subscription", &v)?, meta_u64(t, LAST_ID_KEY)?).map(Some),
    }
}

impl StateMachine {
    /// Every subscription with its delivery state, by id.
    pub fn subscriptions(&self) -> Result<Vec<SubscriptionStatus>, StateError> {
        let t = self.read();
        let last = meta_u64(&t, LAST_ID_KEY)?;
        let mut out = Vec::new();
        for v in t.subscriptions.iter().values() {
            out.push(status(&t, dec("subscription", &v?)?, last)?);
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

mod index;
#[cfg(test)]
mod tests;
