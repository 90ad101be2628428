//! Which exposures of key material already have a durable audit record (ARCHITECTURE §7).
//!
//! The audit promise is about exposure: no key set or group key leaves the node before a
//! synced record says that this principal received it. A second delivery of the *same* thing
//! to the *same* principal (same event: kind, actor, identity, period, community, detail)
//! exposes nothing new, so once the first record is synced a repeat is recorded (queued, synced
//! lazily within the writer's `LAZY_SYNC`, flushed at exit) but not waited for. This set remembers the synced
//! exposures of this process: it starts empty (after a restart every first delivery waits
//! again) and is bounded (two generations; a forgotten entry only means one more wait).
//!
//! Pure data: the writer is not touched here.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::OnceLock;

use super::AuditEvent;

/// Entries per generation; at most twice this many are remembered.
pub const GENERATION_ENTRIES: usize = 32 * 1024;

/// The identity of an exposure: 128 bits of two SipHash-1-3 functions under random keys of
/// this process, over every field of the event. Nobody outside the process knows the keys, so
/// nobody can make a new exposure collide with a remembered one (which would spare it its
/// wait); SHA-256 over the event's JSON did the same at about ten times the cost per request.
pub type ExposureKey = (u64, u64);

/// The key of `event` (all its fields, each delimited).
pub fn key_of(event: &AuditEvent) -> ExposureKey {
    static KEYS: OnceLock<(RandomState, RandomState)> = OnceLock::new();
    let (a, b) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
    let hash = |keys: &RandomState| {
        let mut h = keys.build_hasher();
        std::mem::discriminant(&event.kind).hash(&mut h);
        event.actor.hash(&mut h);
        event.identity.hash(&mut h);
        event.key_period.hash(&mut h);
        event.community.hash(&mut h);
        event.detail.hash(&mut h);
        h.finish()
    };
    (hash(a), hash(b))
}

/// Exposures with a synced record, in two generations.
#[derive(Debug, Default)]
pub struct ExposureSet {
    current: HashSet<ExposureKey>,
    previous: HashSet<ExposureKey>,
    limit: usize,
}

impl ExposureSet {
    /// A set remembering at most `2 × per_generation` exposures.
    pub fn new(per_generation: usize) -> Self {
        ExposureSet {
            current: HashSet::new(),
            previous: HashSet::new(),
            limit: per_generation.max(1),
        }
    }

    /// Whether `key` has a synced record (refreshing it into the current generation).
    pub fn contains(&mut self, key: &ExposureKey) -> bool {
        if self.current.contains(key) {
            return true;
        }
        if self.previous.remove(key) {
            self.insert(*key);
            return true;
        }
        false
    }

    /// Notes that `key`'s record is synced.
    pub fn insert(&mut self, key: ExposureKey) {
        if self.current.len() >= self.limit {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key);
    }

    /// Entries remembered now.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;

    fn delivery(actor: &str, period: u64) -> AuditEvent {
        AuditEvent {
            kind: AuditKind::KeySetDelivered,
            actor: actor.into(),
            identity: Some("sip:alice@example.org".into()),
            key_period: Some(period),
            community: Some("kms.example.org".into()),
            detail: Some("cert-1".into()),
        }
    }

    #[test]
    fn a_key_names_the_whole_event() {
        let k = key_of(&delivery("alice", 7));
        assert_eq!(k, key_of(&delivery("alice", 7)));
        assert_ne!(k, key_of(&delivery("bob", 7)), "another principal");
        assert_ne!(k, key_of(&delivery("alice", 8)), "another period");
        let mut other_kind = delivery("alice", 7);
        other_kind.kind = AuditKind::GroupKeyDelivered;
        assert_ne!(k, key_of(&other_kind));
    }

    #[test]
    fn only_inserted_keys_are_known() {
        let mut s = ExposureSet::new(4);
        let k = key_of(&delivery("alice", 1));
        assert!(!s.contains(&k));
        s.insert(k);
        assert!(s.contains(&k));
        assert!(!s.contains(&key_of(&delivery("alice", 2))));
    }

    #[test]
    fn it_stays_bounded_and_keeps_what_is_used() {
        let mut s = ExposureSet::new(4);
        let hot = key_of(&delivery("hot", 0));
        s.insert(hot);
        for p in 0..100 {
            s.insert(key_of(&delivery("cold", p)));
            assert!(
                s.contains(&hot),
                "a key in use is refreshed, never forgotten"
            );
            assert!(s.len() <= 8);
        }
        // An old cold key was forgotten: it only waits again.
        assert!(!s.contains(&key_of(&delivery("cold", 0))));
    }
}
