//! The layout that keeps apply costs flat in the number of subscriptions: the limit, the lazy
//! backlog rule against the eager one, the trim, replicas, and states of the id-list layout.

use std::collections::BTreeMap;

use super::super::index::{COUNT_KEY, LEGACY_IDS_KEY};
use super::super::{MAX_BACKLOG, MAX_SUBSCRIPTIONS};
use super::{ack, revoke_identity, subscribe, ALL};
use crate::kms::acl::Role;
use crate::state::command::Command;
use crate::state::snapshot::write_snapshot;
use crate::state::test_util::{temp_state, Log};
use crate::state::StateMachine;

#[test]
fn ten_thousand_subscriptions_are_accepted_and_no_more() {
    assert_eq!(MAX_SUBSCRIPTIONS, 10_000);
    let mut l = Log::new();
    l.community("k");
    l.acl("gms", Role::Gms, &["*"]);
    for i in 0..MAX_SUBSCRIPTIONS {
        l.ok(subscribe(&format!("s{i}"), "gms", &ALL, None));
    }
    assert!(l
        .rejected(subscribe("one-more", "gms", &ALL, None))
        .contains("at most 10000 subscriptions"));
    // Updating one that exists is not a new one.
    l.ok(subscribe("s7", "gms", &ALL, Some(&["g"])));
    l.ok(revoke_identity(1));
    l.ok(revoke_identity(2));
    assert_eq!(l.s.outbox_len().unwrap(), 2);
    // Everyone but s9999 acknowledges: the outbox keeps what s9999 has not.
    for i in 0..MAX_SUBSCRIPTIONS - 1 {
        l.ok(ack(&format!("s{i}"), 2));
    }
    assert_eq!(l.s.outbox_len().unwrap(), 2);
    l.ok(ack("s9999", 1));
    assert_eq!(l.s.outbox_len().unwrap(), 1);
    l.ok(Command::RemoveSubscription { id: "s9999".into() });
    assert_eq!(l.s.outbox_len().unwrap(), 0);
    l.ok(subscribe("one-more", "gms", &ALL, None));
    assert!(l
        .rejected(subscribe("two-more", "gms", &ALL, None))
        .contains("at most"));
    let all = l.s.subscriptions().unwrap();
    assert_eq!(all.len(), MAX_SUBSCRIPTIONS);
    assert!(all.iter().all(|s| s.acked == 2 && !s.must_resync));
}

/// What the state did before the lazy rule: every append visits every subscriber.
#[derive(Default)]
struct Eager {
    subs: BTreeMap<String, (u64, bool)>,
    last: u64,
    trimmed: u64,
}

impl Eager {
    fn emit(&mut self) {
        if self.subs.is_empty() {
            return;
        }
        self.last += 1;
        for off in self.subs.values_mut() {
            if self.last - off.0 > MAX_BACKLOG {
                *off = (self.last, true);
            }
        }
        self.trim();
    }

    fn ack(&mut self, id: &str, up_to: u64) {
        let off = self.subs.get_mut(id).unwrap();
        if up_to >= off.0 {
            *off = (up_to, false);
            self.trim();
        }
    }

    fn trim(&mut self) {
        let min = self.subs.values().map(|o| o.0).min().unwrap_or(self.last);
        self.trimmed = self.trimmed.max(min);
    }

    fn check(&self, s: &StateMachine) {
        for (id, off) in &self.subs {
            let st = s.subscription(id).unwrap().unwrap();
            assert_eq!((st.acked, st.must_resync), *off, "{id} at {}", self.last);
        }
        assert_eq!(s.newest_event_id().unwrap(), self.last);
        assert_eq!(s.outbox_len().unwrap(), self.last - self.trimmed);
        assert!(s.outbox_len().unwrap() <= MAX_BACKLOG);
        assert_eq!(s.read().outbox.len() as u64, self.last - self.trimmed);
    }
}

#[test]
fn the_lazy_backlog_rule_gives_what_the_eager_one_gave() {
    let mut l = Log::new();
    let mut m = Eager::default();
    l.community("k");
    l.acl("gms", Role::Gms, &["*"]);
    for id in ["dead", "live", "slow"] {
        l.ok(subscribe(id, "gms", &ALL, None));
        m.subs.insert(id.into(), (0, false));
    }
    // 2.5 × MAX_BACKLOG + 3 events.
    let n = 2 * MAX_BACKLOG + MAX_BACKLOG / 2 + 3;
    for i in 1..=n {
        l.ok(revoke_identity(i));
        m.emit();
        if i % 700 == 0 {
            l.ok(ack("live", i));
            m.ack("live", i);
        }
        if i % 13_001 == 0 {
            // Behind its effective offset once it jumped: a stale ack, nothing changes.
            l.ok(ack("slow", i - 12_000));
            m.ack("slow", i - 12_000);
        }
        if i == 3_000 {
            l.ok(subscribe("late", "gms", &ALL, None));
            m.subs.insert("late".into(), (3_000, false));
        }
        if i % 997 == 0 || (i % MAX_BACKLOG) < 3 {
            m.check(&l.s);
        }
    }
    m.check(&l.s);
    // By hand: "dead" started at 0 and never acknowledged. It jumped at event 10,001 (the
    // backlog became 10,001 > MAX_BACKLOG) to 10,001, and again at 20,002 to 20,002; the next
    // jump would be at 30,003 > 25,003.
    assert_eq!(n, 25_003);
    let dead = l.s.subscription("dead").unwrap().unwrap();
    assert_eq!((dead.acked, dead.must_resync), (20_002, true));
    // "live" acked 24,500; "late" started at 3,000 and jumped at 13,001 and 23,002.
    let late = l.s.subscription("late").unwrap().unwrap();
    assert_eq!((late.acked, late.must_resync), (23_002, true));
    assert_eq!(l.s.outbox_len().unwrap(), n - 20_002);
    let page = l.s.events_for("dead", dead.acked, 2).unwrap().unwrap();
    assert!(page.must_resync && !page.missed);
    assert_eq!(page.events[0].id, 20_003);
    // A stale ack changes nothing; an ack at the effective offset clears the flag.
    l.ok(ack("dead", 20_001));
    m.ack("dead", 20_001);
    m.check(&l.s);
    l.ok(ack("dead", 20_002));
    m.ack("dead", 20_002);
    m.check(&l.s);
    assert!(!l.s.subscription("dead").unwrap().unwrap().must_resync);
    // Everyone at the newest: the outbox is empty, and the next event is the only one held.
    for id in ["dead", "live", "slow", "late"] {
        l.ok(ack(id, n));
        m.ack(id, n);
    }
    m.check(&l.s);
    assert_eq!(l.s.outbox_len().unwrap(), 0);
    assert_eq!(l.s.read().outbox.len(), 0);
    l.ok(revoke_identity(n + 1));
    m.emit();
    m.check(&l.s);
    assert_eq!(l.s.outbox_len().unwrap(), 1);
}

#[test]
fn replicas_with_many_subscriptions_and_jumps_agree() {
    let run = || {
        let mut l = Log::new();
        l.community("k");
        l.acl("gms", Role::Gms, &["*"]);
        for i in 0..50 {
            l.ok(subscribe(&format!("s{i}"), "gms", &ALL, None));
        }
        for i in 1..=MAX_BACKLOG + 5 {
            l.ok(revoke_identity(i));
            if i % 1_000 == 0 {
                l.ok(ack(&format!("s{}", i / 1_000), i));
            }
        }
        l.ok(Command::RemoveSubscription { id: "s3".into() });
        l.ok(ack("s4", MAX_BACKLOG + 5));
        (l.s.digest().unwrap(), l.s.subscriptions().unwrap())
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
}

/// Rewrites `s` into the id-list layout of the binary before `subscription_count`: the sorted
/// id list in meta, no count, no residue index (its offsets are the eager ones already when
/// no subscriber lags by more than MAX_BACKLOG).
fn to_legacy_layout(s: &StateMachine) {
    let t = s.read();
    let ids: Vec<String> = t
        .subscriptions
        .iter()
        .keys()
        .map(|k| String::from_utf8(k.unwrap().to_vec()).unwrap())
        .collect();
    for k in t.meta.iter().keys() {
        let k = k.unwrap();
        if k.starts_with(b"sub_residue") || k.as_ref() == COUNT_KEY {
            t.meta.remove(k).unwrap();
        }
    }
    t.meta
        .insert(LEGACY_IDS_KEY, super::super::index::legacy_ids_record(&ids))
        .unwrap();
}

#[test]
fn a_state_of_the_id_list_layout_reads_the_same_and_migrates() {
    let build = |l: &mut Log| {
        l.community("k");
        l.acl("gms", Role::Gms, &["*"]);
        for id in ["b", "a", "c"] {
            l.ok(subscribe(id, "gms", &ALL, None));
        }
        for i in 1..=5 {
            l.ok(revoke_identity(i));
        }
        l.ok(ack("a", 3));
        l.ok(ack("b", 5));
    };
    let (mut old, mut new) = (Log::new(), Log::new());
    build(&mut old);
    build(&mut new);
    let before = new.s.subscriptions().unwrap();
    to_legacy_layout(&old.s);
    assert_ne!(old.s.digest().unwrap(), new.s.digest().unwrap());
    // Read as it stands, from a snapshot of it and after a reopen-like restore.
    assert_eq!(old.s.subscriptions().unwrap(), before);
    let dir = tempfile::tempdir().unwrap();
    let meta = raft::eraftpb::SnapshotMetadata {
        index: old.s.applied_index().unwrap(),
        term: 1,
        ..Default::default()
    };
    let desc = write_snapshot(&old.s, dir.path(), &meta).unwrap();
    let format = |dir: &std::path::Path, index: u64| {
        let bytes = std::fs::read(dir.join(format!("snap-{index}.bin"))).unwrap();
        u32::from_be_bytes(bytes[8..12].try_into().unwrap())
    };
    // Not migrated yet: the format an older binary reads.
    assert_eq!(format(dir.path(), desc.index), 1);
    let restored = temp_state();
    restored.restore_snapshot(dir.path(), desc.index).unwrap();
    assert_eq!(restored.subscriptions().unwrap(), before);
    assert_eq!(
        restored.events_for("c", 0, 10).unwrap(),
        new.s.events_for("c", 0, 10).unwrap()
    );
    assert_eq!(restored.outbox_len().unwrap(), 5);
    // The first command that touches the outbox migrates it: from then on the stored state is
    // the one the new layout builds, byte for byte, whichever command it was.
    let mut restored = Log {
        next: old.next,
        s: restored,
    };
    for l in [&mut old, &mut new, &mut restored] {
        l.ok(ack("c", 4));
        l.ok(revoke_identity(6));
        l.ok(Command::RemoveSubscription { id: "a".into() });
    }
    assert!(old.s.read().meta.get(LEGACY_IDS_KEY).unwrap().is_none());
    assert_eq!(old.s.digest().unwrap(), new.s.digest().unwrap());
    assert_eq!(restored.s.digest().unwrap(), new.s.digest().unwrap());
    assert_eq!(old.s.outbox_len().unwrap(), 2);
    // Migrated: snapshots say so, so an older binary refuses them; they restore here.
    let dir = tempfile::tempdir().unwrap();
    let meta = raft::eraftpb::SnapshotMetadata {
        index: new.s.applied_index().unwrap(),
        term: 1,
        ..Default::default()
    };
    let desc = write_snapshot(&new.s, dir.path(), &meta).unwrap();
    assert_eq!(format(dir.path(), desc.index), 2);
    let again = temp_state();
    again.restore_snapshot(dir.path(), desc.index).unwrap();
    assert_eq!(again.digest().unwrap(), new.s.digest().unwrap());
    // An empty id list migrates too (other commands first), and a rejected command's
    // migration is undone with it.
    let mut l = Log::new();
    l.community("k");
    l.acl("gms", Role::Gms, &["*"]);
    l.ok(subscribe("x", "gms", &ALL, None));
    to_legacy_layout(&l.s);
    assert!(l.rejected(ack("nope", 0)).contains("unknown subscription"));
    assert!(l.s.read().meta.get(LEGACY_IDS_KEY).unwrap().is_some());
    l.ok(revoke_identity(1));
    assert!(l.s.read().meta.get(LEGACY_IDS_KEY).unwrap().is_none());
    assert_eq!(l.s.outbox_len().unwrap(), 1);
    l.ok(Command::RemoveSubscription { id: "x".into() });
    assert_eq!(l.s.outbox_len().unwrap(), 0);
    assert!(!super::super::has_counted_layout(&l.s.read().meta).unwrap());
    let meta_keys: Vec<Vec<u8>> =
        l.s.read()
            .meta
            .iter()
            .keys()
            .map(|k| k.unwrap().to_vec())
            .collect();
    assert!(
        meta_keys.iter().all(|k| !k.starts_with(b"sub")),
        "no subscription left, no index key left"
    );
}

#[test]
fn a_subscription_in_an_envelope_below_version_8_keeps_the_old_limit() {
    use crate::state::command::{Envelope, Outcome};
    let mut l = Log::new();
    l.community("k");
    l.acl("gms", Role::Gms, &["*"]);
    for i in 0..super::super::MAX_SUBSCRIPTIONS_BEFORE_V8 {
        l.ok(subscribe(&format!("s{i}"), "gms", &ALL, None));
    }
    // The same command as an old binary proposed it (version 2): refused at 1,000 …
    let mut old = Envelope::new(0, subscribe("old", "gms", &ALL, None));
    assert_eq!(old.version, 8);
    old.version = 2;
    let idx = l.next;
    l.next += 1;
    match l
        .s
        .apply(idx, &old)
        .unwrap()
        .expect("a new index is applied")
    {
        Outcome::Rejected(why) => assert!(why.contains("at most 1000 subscriptions"), "{why}"),
        other => panic!("{other:?}"),
    }
    // … and accepted as this binary proposes it.
    l.ok(subscribe("new", "gms", &ALL, None));
    assert_eq!(l.s.subscriptions().unwrap().len(), 1_001);
}
