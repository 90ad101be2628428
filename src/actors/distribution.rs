//! The Distributor — **our extension** (distribution of key events to subscribers).
//!
//! Every node runs one, an actix actor ([`Distributor`], in `distribution/distributor.rs`) on
//! its own arbiter; it works only while its node is the Raft leader. It learns of commits and
//! of leadership from the key store's progress watch ([`super::progress`]), not by polling: a
//! node that loses leadership forgets its retry state and starts nothing new, and the new
//! leader first makes a read barrier, then takes over from the replicated offsets. For each
//! subscription it reads the events after the subscription's acknowledged offset from the
//! replicated outbox ([`crate::state::StateMachine::events_for`]), POSTs them as one JSON
//! [`Notification`] of at most [`MAX_BATCH`] events to the callback URL over mutual TLS (client
//! certificate: the node's service listener certificate; trust roots: the service listener's
//! `client_ca`), and on a 2xx answer proposes `AckEvents { up_to_event_id: page.next_after }`
//! through Raft. The next batch is read only after that ack is applied, so each subscriber sees
//! its events in id order with at most one batch in flight. A failure (connection, TLS,
//! timeout, non-2xx, or the ack not committing) is retried after an exponential, jittered
//! backoff ([`Backoff`]: 200 ms doubling to 30 s) of that subscriber alone.
//!
//! Guarantees: **at-least-once, in order per subscriber, nothing lost on a leader change** —
//! the events and offsets are replicated, so a new leader redelivers everything not yet
//! acknowledged (a subscriber deduplicates by event id). Notifications carry metadata and event
//! ids only, never key material (keys are fetched over the authenticated read APIs). A
//! subscriber whose backlog overflowed (`state::outbox::MAX_BACKLOG`) gets a notification with
//! `"must_resync": true` — it must re-read the current state through the read APIs — and the
//! ack of that notification clears the flag. Events of kinds or groups a subscriber does not
//! receive are acknowledged without a notification, so they never hold the outbox back for
//! long: once [`ACK_SLACK`] of them are pending (or at the first round of a term), not one Raft
//! proposal per subscriber per event.
//!
//! Cost with many subscriptions: a write reaches every subscription's offset only through the
//! outbox, so a commit must not cost a proposal (and a round) per subscriber. The leader keeps
//! per subscriber how far it examined the outbox ([`Schedule::examined`], soft state): an
//! examined stretch without a matching event is not read again, and only acknowledged once it
//! is [`ACK_SLACK`] events long (the backlog bound is four times that, so no subscriber is told
//! to resync for events it does not receive). A round skips a subscriber with nothing after its
//! examined point without reading the outbox, rounds for commits run only when an event was
//! appended, and a finished delivery runs a round for its own subscriber only.
//!
//! The decisions are pure and live here ([`plan`], [`Backoff`], [`Schedule`]); the actor is
//! the thin shell with the HTTP client, the Raft proposals and the wake-ups.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::ServiceListenerConfig;
use crate::kms::events::{Event, EventKind, EventSubject};
use crate::state::EventPage;
use crate::tls::TlsError;

mod distributor;

pub use distributor::{start, Delivered, Distributor, DistributorView, Inspect, Round, Rounded};

/// Most events in one notification.
pub const MAX_BATCH: usize = 100;
/// First retry delay after a failure.
pub const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Bound of one notification POST (connect, send, answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Events a subscriber does not receive that may wait for their silent ack: a quarter of the
/// backlog bound, so the ack always comes long before the bound would force a resync.
pub const ACK_SLACK: u64 = crate::state::MAX_BACKLOG / 4;
const _: () = assert!(ACK_SLACK > 0 && ACK_SLACK * 4 <= crate::state::MAX_BACKLOG);

/// What a callback receives (POST, `application/json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub subscription_id: String,
    /// In id order; ids are the outbox's (1, 2, 3, … across all kinds, with gaps for events
    /// this subscriber does not receive). A redelivered event keeps its id.
    pub events: Vec<NotificationEvent>,
    /// The backlog overflowed and events were skipped: re-read the current state through the
    /// read APIs.
    pub must_resync: bool,
}

/// One event of a notification (metadata only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationEvent {
    pub id: u64,
    /// group-key-created, group-key-rotated, group-key-revoked, group-key-expiry-set,
    /// group-key-expired, certificate-rotated, certificate-revoked, identity-revoked,
    /// partner-certificate-imported, partner-certificate-staged, partner-certificate-revoked,
    /// partner-certificate-removed, federated-key-imported.
    #[schema(value_type = String)]
    pub kind: EventKind,
    pub subject: NotificationSubject,
    /// The time the causing change carries, if any.
    pub at_unix: Option<u64>,
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum NotificationSubject {
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
    /// A federated group key version imported over KM-E from the partner KMS
    /// `partner_kms_uri` (GMK-ID in hex, as the group key APIs show it; never key material).
    FederatedGroupKey {
        group_id: String,
        version: u32,
        gmk_id: String,
        partner_kms_uri: String,
    },
}

impl From<&Event> for NotificationEvent {
    fn from(e: &Event) -> Self {
        let subject = match &e.subject {
            EventSubject::GroupKey { group_id, version } => NotificationSubject::GroupKey {
                group_id: group_id.clone(),
                version: *version,
            },
            EventSubject::Certificate { kms_uri, cert_uri } => NotificationSubject::Certificate {
                kms_uri: kms_uri.clone(),
                cert_uri: cert_uri.clone(),
            },
            EventSubject::Identity { kms_uri, identity } => NotificationSubject::Identity {
                kms_uri: kms_uri.clone(),
                identity: identity.clone(),
            },
            EventSubject::FederatedGroupKey {
                group_id,
                version,
                gmk_id,
                partner_kms_uri,
            } => NotificationSubject::FederatedGroupKey {
                group_id: group_id.clone(),
                version: *version,
                gmk_id: format!("{gmk_id:08x}"),
                partner_kms_uri: partner_kms_uri.clone(),
            },
        };
        Self {
            id: e.id,
            kind: e.kind,
            subject,
            at_unix: e.at_unix,
        }
    }
}

/// What to do next for one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing new.
    Idle,
    /// Only events it does not receive were appended: acknowledge them without a
    /// notification (so the outbox can be trimmed).
    Ack { up_to: u64 },
    /// Send this notification; on success acknowledge up to `up_to`.
    Deliver {
        notification: Notification,
        up_to: u64,
    },
}

/// The next step of subscription `id` acknowledged up to `acked`, given the page of events
/// after its examined point (at or after `acked`; everything between is known not to be
/// for it). Skipped events are acknowledged silently once `slack` of them (or more) wait;
/// fewer wait as [`Step::Idle`] (the caller remembers `page.next_after` as examined).
pub fn plan(id: &str, acked: u64, page: &EventPage, slack: u64) -> Step {
    if page.must_resync || !page.events.is_empty() {
        Step::Deliver {
            notification: Notification {
                subscription_id: id.to_owned(),
                events: page.events.iter().map(NotificationEvent::from).collect(),
                must_resync: page.must_resync,
            },
            up_to: page.next_after.max(acked),
        }
    } else if page.next_after > acked && page.next_after - acked >= slack.max(1) {
        Step::Ack {
            up_to: page.next_after,
        }
    } else {
        Step::Idle
    }
}

/// Exponential backoff with jitter: after the `n`-th consecutive failure (n ≥ 1) the delay is
/// `min(max, base · 2^(n−1))`, of which the upper half is scaled by `jitter` ∈ [0, 1) (so
/// retries of many subscribers spread out, and a delay is never below half its step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: BACKOFF_BASE,
            max: BACKOFF_MAX,
        }
    }
}

impl Backoff {
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let step = self
            .base
            .saturating_mul(1u32 << (failures - 1).min(20))
            .min(self.max);
        let half = step / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct SubState {
    failures: u32,
    not_before: Option<Instant>,
    in_flight: bool,
}

/// Per-subscriber delivery bookkeeping of the leader: one attempt in flight per subscriber,
/// and after failures, not before the backoff delay. Pure (the caller passes the time).
#[derive(Debug, Default)]
pub struct Schedule {
    backoff: Backoff,
    subs: HashMap<String, SubState>,
    /// Per subscriber, the outbox id up to which it was examined and found to hold nothing
    /// for it (soft: a new leader starts from the acknowledged offsets).
    examined: HashMap<String, u64>,
}

impl Schedule {
    pub fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            subs: HashMap::new(),
            examined: HashMap::new(),
        }
    }

    /// Where reading the outbox for `id`, acknowledged up to `acked`, resumes: its examined
    /// point, or `acked` when that is further.
    pub fn examined(&self, id: &str, acked: u64) -> u64 {
        self.examined.get(id).map_or(acked, |&e| e.max(acked))
    }

    /// The outbox up to `up_to` holds nothing more for `id`.
    pub fn set_examined(&mut self, id: &str, up_to: u64) {
        let e = self.examined.entry(id.to_owned()).or_default();
        *e = (*e).max(up_to);
    }

    /// May an attempt for `id` start at `now`?
    pub fn due(&self, id: &str, now: Instant) -> bool {
        match self.subs.get(id) {
            None => true,
            Some(s) => !s.in_flight && s.not_before.is_none_or(|t| now >= t),
        }
    }

    pub fn started(&mut self, id: &str) {
        self.subs.entry(id.to_owned()).or_default().in_flight = true;
    }

    /// The attempt succeeded: no backoff any more.
    pub fn succeeded(&mut self, id: &str) {
        if let Some(s) = self.subs.get_mut(id) {
            *s = SubState::default();
        }
    }

    /// The attempt failed at `now`: returns the delay before the next one.
    pub fn failed(&mut self, id: &str, now: Instant, jitter: f64) -> Duration {
        let s = self.subs.entry(id.to_owned()).or_default();
        s.in_flight = false;
        s.failures = s.failures.saturating_add(1);
        let d = self.backoff.delay(s.failures, jitter);
        s.not_before = Some(now + d);
        d
    }

    /// The earliest time after `now` at which a subscriber backing off may be tried again
    /// (`None`: no such subscriber; one whose delay has passed is due at its next round).
    pub fn next_retry(&self, now: Instant) -> Option<Instant> {
        self.subs
            .values()
            .filter(|s| !s.in_flight)
            .filter_map(|s| s.not_before)
            .filter(|&t| t > now)
            .min()
    }

    /// Subscribers with consecutive failures, and how many, by id.
    pub fn failing(&self) -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = self
            .subs
            .iter()
            .filter(|(_, s)| s.failures > 0)
            .map(|(id, s)| (id.clone(), s.failures))
            .collect();
        v.sort();
        v
    }

    /// Consecutive failures of `id`.
    pub fn failures(&self, id: &str) -> u32 {
        self.subs.get(id).map_or(0, |s| s.failures)
    }

    /// Forgets subscriptions that no longer exist (attempts in flight are kept until they
    /// report).
    pub fn retain(&mut self, exists: impl Fn(&str) -> bool) {
        self.subs.retain(|id, s| s.in_flight || exists(id));
        self.examined.retain(|id, _| exists(id));
    }

    /// Leadership lost: forget every backoff (attempts in flight still report).
    pub fn reset(&mut self) {
        self.examined.clear();
        self.subs.retain(|_, s| s.in_flight);
        for s in self.subs.values_mut() {
            s.failures = 0;
            s.not_before = None;
        }
    }
}

/// The mutual-TLS client config of notifications: the service listener's certificate and key,
/// trusting its `client_ca`.
pub fn client_tls(s: &ServiceListenerConfig) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    crate::tls::peer_client_config(&s.tls_cert, &s.tls_key, &s.client_ca).map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64, group: &str) -> Event {
        Event {
            id,
            kind: EventKind::GroupKeyCreated,
            subject: EventSubject::GroupKey {
                group_id: group.into(),
                version: 1,
            },
            at_unix: Some(7),
        }
    }

    fn page(events: Vec<Event>, next_after: u64, must_resync: bool) -> EventPage {
        EventPage {
            events,
            next_after,
            missed: false,
            must_resync,
        }
    }

    #[test]
    fn plan_delivers_new_events_and_acks_up_to_the_last_examined() {
        let p = page(vec![event(4, "g"), event(6, "g")], 7, false);
        match plan("s", 3, &p, ACK_SLACK) {
            Step::Deliver {
                notification,
                up_to,
            } => {
                assert_eq!(up_to, 7, "skipped event 7 is covered by the ack");
                assert_eq!(notification.subscription_id, "s");
                assert!(!notification.must_resync);
                let ids: Vec<u64> = notification.events.iter().map(|e| e.id).collect();
                assert_eq!(ids, vec![4, 6]);
            }
            other => panic!("expected a delivery, got {other:?}"),
        }
    }

    #[test]
    fn plan_acks_skipped_events_silently_and_idles_when_nothing_is_new() {
        assert_eq!(
            plan("s", 3, &page(vec![], 9, false), 1),
            Step::Ack { up_to: 9 }
        );
        assert_eq!(plan("s", 9, &page(vec![], 9, false), 1), Step::Idle);
        assert_eq!(plan("s", 9, &page(vec![], 9, false), 0), Step::Idle);
    }

    #[test]
    fn plan_lets_skipped_events_wait_for_their_ack_up_to_the_slack() {
        let acked = 100;
        let short = page(vec![], acked + ACK_SLACK - 1, false);
        assert_eq!(plan("s", acked, &short, ACK_SLACK), Step::Idle);
        let long = page(vec![], acked + ACK_SLACK, false);
        assert_eq!(
            plan("s", acked, &long, ACK_SLACK),
            Step::Ack {
                up_to: acked + ACK_SLACK
            }
        );
    }

    #[test]
    fn the_schedule_resumes_reading_at_the_examined_point_until_leadership_is_lost() {
        let mut s = Schedule::new(Backoff::default());
        assert_eq!(s.examined("a", 5), 5);
        s.set_examined("a", 40);
        s.set_examined("a", 30);
        assert_eq!(s.examined("a", 5), 40, "never moves back");
        assert_eq!(s.examined("a", 50), 50, "an ack beyond it wins");
        s.set_examined("b", 7);
        s.retain(|id| id == "a");
        assert_eq!(s.examined("b", 0), 0, "a removed subscription is forgotten");
        s.reset();
        assert_eq!(s.examined("a", 5), 5, "a new term starts from the offsets");
    }

    #[test]
    fn plan_tells_an_overflowed_subscriber_to_resync_even_without_events() {
        match plan("s", 12_000, &page(vec![], 12_000, true), ACK_SLACK) {
            Step::Deliver {
                notification,
                up_to,
            } => {
                assert!(notification.must_resync);
                assert!(notification.events.is_empty());
                assert_eq!(up_to, 12_000, "the ack at the offset clears the flag");
            }
            other => panic!("expected a delivery, got {other:?}"),
        }
    }

    #[test]
    fn notification_json_has_metadata_only() {
        let n = Notification {
            subscription_id: "s".into(),
            events: vec![NotificationEvent::from(&event(5, "g1"))],
            must_resync: false,
        };
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "subscription_id": "s",
                "events": [{
                    "id": 5,
                    "kind": "group-key-created",
                    "subject": {"type": "group-key", "group_id": "g1", "version": 1},
                    "at_unix": 7
                }],
                "must_resync": false
            })
        );
        let back: Notification = serde_json::from_value(v).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_jitter_stays_in_the_upper_half() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, 0.3), Duration::ZERO);
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(200));
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(2, 1.0), Duration::from_millis(400));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(800));
        assert_eq!(b.delay(9, 1.0), Duration::from_secs(30), "capped");
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX, 0.0), Duration::from_secs(15));
        for j in [0.0, 0.25, 0.5, 0.999] {
            let d = b.delay(4, j);
            assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(1600));
        }
    }

    #[test]
    fn schedule_keeps_one_attempt_in_flight_and_backs_off_per_subscriber() {
        let mut s = Schedule::new(Backoff::default());
        let t0 = Instant::now();
        assert!(s.due("a", t0) && s.due("b", t0));
        s.started("a");
        assert!(!s.due("a", t0), "one batch in flight");
        assert!(s.due("b", t0), "others unaffected");
        let d1 = s.failed("a", t0, 1.0);
        assert_eq!(d1, Duration::from_millis(200));
        assert!(!s.due("a", t0));
        assert!(s.due("a", t0 + d1));
        s.started("a");
        let d2 = s.failed("a", t0 + d1, 1.0);
        assert_eq!(d2, Duration::from_millis(400));
        assert_eq!(s.failures("a"), 2);
        s.started("a");
        s.succeeded("a");
        assert_eq!(s.failures("a"), 0);
        assert!(s.due("a", t0));
    }

    #[test]
    fn schedule_tells_the_earliest_retry_ahead_and_who_is_failing() {
        let mut s = Schedule::new(Backoff::default());
        let t0 = Instant::now();
        assert_eq!(s.next_retry(t0), None);
        s.started("a");
        let da = s.failed("a", t0, 1.0);
        s.started("b");
        s.failed("b", t0, 1.0);
        let db = s.failed("b", t0, 1.0);
        s.started("c");
        assert_eq!(s.next_retry(t0), Some(t0 + da), "a: 200 ms, b: 400 ms");
        assert_eq!(s.next_retry(t0 + da), Some(t0 + db), "a is due, not ahead");
        assert_eq!(s.next_retry(t0 + db), None);
        s.started("a");
        assert_eq!(
            s.next_retry(t0),
            Some(t0 + db),
            "in flight: no retry to wait for"
        );
        assert_eq!(s.failing(), vec![("a".into(), 1), ("b".into(), 2)]);
        s.succeeded("a");
        assert_eq!(s.failing(), vec![("b".into(), 2)]);
    }

    #[test]
    fn schedule_forgets_removed_subscriptions_and_resets_on_leadership_loss() {
        let mut s = Schedule::new(Backoff::default());
        let t0 = Instant::now();
        s.started("gone");
        s.failed("gone", t0, 0.0);
        s.started("busy");
        s.retain(|id| id != "gone" && id != "busy");
        assert_eq!(s.failures("gone"), 0, "removed subscription forgotten");
        assert!(!s.due("busy", t0), "an attempt in flight still reports");
        s.started("x");
        s.failed("x", t0, 0.0);
        s.reset();
        assert!(s.due("x", t0), "a new leader starts without backoff");
    }
}
