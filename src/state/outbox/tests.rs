use super::MAX_BACKLOG;
use crate::kms::acl::Role;
use crate::kms::community::Certificate;
use crate::kms::events::{Event, EventKind, EventSubject};
use crate::kms::group::GroupKeyVersion;
use crate::kms::key_provisioning::MAX_SEALED_INFO_BYTES;
use crate::state::command::Command;
use crate::state::test_util::Log;

mod scale;

const ALL: [EventKind; 7] = [
    EventKind::GroupKeyCreated,
    EventKind::GroupKeyRotated,
    EventKind::GroupKeyRevoked,
    EventKind::GroupKeyExpirySet,
    EventKind::CertificateRotated,
    EventKind::CertificateRevoked,
    EventKind::IdentityRevoked,
];

/// A version as the proposer would send it (the sealed bytes are opaque to apply).
fn version(n: u32, created: u64) -> GroupKeyVersion {
    GroupKeyVersion {
        version: n,
        gmk_id: 0x0100_0000 + n,
        sealed_gmk: vec![0xC5; 45],
        created_unix: created,
        expires_unix: None,
        revoked: false,
    }
}

fn create(group_id: &str, n: u32, created: u64) -> Command {
    Command::CreateGroupKey {
        group_id: group_id.into(),
        version: version(n, created),
    }
}

fn subscribe(id: &str, principal: &str, kinds: &[EventKind], filter: Option<&[&str]>) -> Command {
    Command::PutSubscription {
        id: id.into(),
        principal: principal.into(),
        callback_url: format!("https://{principal}/events"),
        kinds: kinds.to_vec(),
        group_filter: filter.map(|f| f.iter().map(|g| (*g).to_owned()).collect()),
    }
}

fn ack(id: &str, up_to: u64) -> Command {
    Command::AckEvents {
        subscription_id: id.into(),
        up_to_event_id: up_to,
    }
}

fn revoke_identity(i: u64) -> Command {
    Command::RevokeIdentity {
        kms_uri: "k".into(),
        identity: format!("sip:u{i}@example.org"),
        at_unix: 5000 + i,
        reason: "lost".into(),
    }
}

fn ids(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

fn cert(serial: u32) -> Certificate {
    Certificate {
        serial,
        cert_uri: format!("k/cert/{serial}"),
        valid_from_unix: 100 * u64::from(serial),
        valid_to_unix: 100_000,
        revoked: false,
        pub_enc_key: vec![4; 257],
        pub_auth_key: vec![4; 65],
        sealed_master: vec![0xD7; 60],
    }
}

#[test]
fn nothing_is_appended_without_subscribers() {
    let mut l = Log::new();
    l.community("k");
    l.ok(create("g", 1, 10));
    l.ok(revoke_identity(1));
    assert_eq!(l.s.newest_event_id().unwrap(), 0);
    assert_eq!(l.s.outbox_len().unwrap(), 0);
    l.acl("gms", Role::Gms, &["*"]);
    l.ok(subscribe("s", "gms", &ALL, None));
    assert_eq!(l.s.subscription("s").unwrap().unwrap().acked, 0);
    l.ok(create("g", 2, 20));
    // Subscribed after the first events: starts at the newest, receives what follows.
    let page = l.s.events_for("s", 0, 10).unwrap().unwrap();
    assert_eq!(ids(&page.events), vec![1]);
    assert_eq!(page.events[0].kind, EventKind::GroupKeyRotated);
}

#[test]
fn certificate_and_identity_commands_emit_events() {
    let mut l = Log::new();
    l.community("k");
    l.acl("val1", Role::ValServer, &[]);
    l.ok(subscribe("s", "val1", &ALL, None));
    let add = |serial| Command::AddCertificate {
        kms_uri: "k".into(),
        certificate: cert(serial),
    };
    l.ok(add(1));
    l.ok(add(2));
    l.ok(Command::RevokeCertificate {
        kms_uri: "k".into(),
        cert_uri: "k/cert/1".into(),
    });
    l.ok(revoke_identity(1));
    l.ok(Command::ReinstateIdentity {
        kms_uri: "k".into(),
        identity: "sip:u1@example.org".into(),
    });
    // Refused commands emit nothing.
    l.rejected(add(2));
    l.rejected(Command::RevokeCertificate {
        kms_uri: "k".into(),
        cert_uri: "k/cert/1".into(),
    });
    let page = l.s.events_for("s", 0, 100).unwrap().unwrap();
    let certificate = |c: &str| EventSubject::Certificate {
        kms_uri: "k".into(),
        cert_uri: c.into(),
    };
    let expected = vec![
        Event {
            id: 1,
            kind: EventKind::CertificateRotated,
            subject: certificate("k/cert/2"),
            at_unix: Some(200),
        },
        Event {
            id: 2,
            kind: EventKind::CertificateRevoked,
            subject: certificate("k/cert/1"),
            at_unix: None,
        },
        Event {
            id: 3,
            kind: EventKind::IdentityRevoked,
            subject: EventSubject::Identity {
                kms_uri: "k".into(),
                identity: "sip:u1@example.org".into(),
            },
            at_unix: Some(5001),
        },
    ];
    assert_eq!(page.events, expected);
    assert_eq!(
        (page.next_after, page.missed, page.must_resync),
        (3, false, false)
    );
}

#[test]
fn group_events_are_ordered_and_carry_no_key_material() {
    let mut l = Log::new();
    l.acl("gms", Role::Gms, &["*"]);
    l.ok(subscribe("s", "gms", &ALL, None));
    l.ok(create("g", 1, 10));
    l.ok(create("g", 2, 20));
    l.ok(Command::SetGroupKeyExpiry {
        group_id: "g".into(),
        version: 2,
        expires_unix: Some(99),
        at_unix: 30,
    });
    l.ok(Command::RevokeGroupKey {
        group_id: "g".into(),
        version: 1,
        at_unix: 40,
    });
    let page = l.s.events_for("s", 0, 100).unwrap().unwrap();
    let seen: Vec<_> = page
        .events
        .iter()
        .map(|e| (e.id, e.kind, e.group_id().unwrap().to_owned(), e.at_unix))
        .collect();
    let g = || "g".to_owned();
    assert_eq!(
        seen,
        vec![
            (1, EventKind::GroupKeyCreated, g(), Some(10)),
            (2, EventKind::GroupKeyRotated, g(), Some(20)),
            (3, EventKind::GroupKeyExpirySet, g(), Some(30)),
            (4, EventKind::GroupKeyRevoked, g(), Some(40)),
        ]
    );
    // Stored records hold metadata only: none holds the sealed GMK (0xC5 × 45).
    for kv in l.s.read().outbox.iter() {
        let (_, v) = kv.unwrap();
        assert!(!v.windows(8).any(|w| w == [0xC5; 8]));
    }
}

#[test]
fn filtering_by_kind_group_and_acl_and_paging() {
    let mut l = Log::new();
    l.acl("gms", Role::Gms, &["*"]);
    l.acl("val1", Role::ValServer, &["a", "b"]);
    l.ok(subscribe("all", "gms", &ALL, None));
    l.ok(subscribe(
        "rot-b",
        "val1",
        &[EventKind::GroupKeyRotated],
        Some(&["b"]),
    ));
    l.ok(subscribe(
        "val1-any",
        "val1",
        &[EventKind::GroupKeyCreated, EventKind::GroupKeyRotated],
        None,
    ));
    for (n, g) in [
        (1, "a"),
        (1, "b"),
        (1, "c"),
        (2, "a"),
        (2, "b"),
        (2, "c"),
        (3, "b"),
    ] {
        l.ok(create(g, n, u64::from(n)));
    }
    let page = |id, after, limit| l.s.events_for(id, after, limit).unwrap().unwrap();
    assert_eq!(ids(&page("all", 0, 100).events), vec![1, 2, 3, 4, 5, 6, 7]);
    let rot_b = page("rot-b", 0, 100);
    assert_eq!(ids(&rot_b.events), vec![5, 7]);
    assert_eq!(rot_b.next_after, 7);
    // The ACL bounds what a subscription without a filter sees: group c is not val1's.
    assert_eq!(ids(&page("val1-any", 0, 100).events), vec![1, 2, 4, 5, 7]);
    // Paging: next_after is the last examined id, so skipped events are acknowledged too.
    let p1 = page("rot-b", 0, 1);
    assert_eq!((ids(&p1.events), p1.next_after), (vec![5], 5));
    let p2 = page("rot-b", p1.next_after, 1);
    assert_eq!((ids(&p2.events), p2.next_after), (vec![7], 7));
    let p3 = page("rot-b", p2.next_after, 1);
    assert!(p3.events.is_empty());
    assert_eq!(p3.next_after, 7);
    assert!(page("rot-b", 0, 0).events.is_empty());
    assert!(l.s.events_for("nope", 0, 10).unwrap().is_none());
    // Removing the principal's ACL entry stops its events (metadata included).
    l.ok(Command::RemoveAclEntry {
        principal: "val1".into(),
    });
    assert!(l
        .s
        .events_for("val1-any", 0, 100)
        .unwrap()
        .unwrap()
        .events
        .is_empty());
}

#[test]
fn acks_move_forward_and_trim_what_everyone_acknowledged() {
    let mut l = Log::new();
    l.acl("gms", Role::Gms, &["*"]);
    l.ok(subscribe("s1", "gms", &ALL, None));
    l.ok(subscribe("s2", "gms", &ALL, None));
    for n in 1..=5 {
        l.ok(create("g", n, u64::from(n)));
    }
    assert_eq!(l.s.outbox_len().unwrap(), 5);
    assert!(l.rejected(ack("s1", 6)).contains("does not exist"));
    assert!(l.rejected(ack("nope", 1)).contains("unknown subscription"));
    l.ok(ack("s1", 3));
    assert_eq!(l.s.subscription("s1").unwrap().unwrap().acked, 3);
    assert_eq!(l.s.outbox_len().unwrap(), 5, "s2 still needs them");
    l.ok(ack("s2", 2));
    assert_eq!(l.s.outbox_len().unwrap(), 3);
    // A stale (duplicate, late) ack is accepted and changes nothing.
    l.ok(ack("s1", 1));
    assert_eq!(l.s.subscription("s1").unwrap().unwrap().acked, 3);
    assert_eq!(l.s.outbox_len().unwrap(), 3);
    let page = l.s.events_for("s2", 0, 100).unwrap().unwrap();
    assert!(page.missed, "events up to 2 are gone");
    assert_eq!(ids(&page.events), vec![3, 4, 5]);
    // Removing the laggard trims up to the remaining subscriber.
    l.ok(Command::RemoveSubscription { id: "s2".into() });
    assert_eq!(l.s.outbox_len().unwrap(), 2);
    assert!(l.s.subscription("s2").unwrap().is_none());
    assert!(l
        .rejected(Command::RemoveSubscription { id: "s2".into() })
        .contains("unknown"));
    l.ok(ack("s1", 5));
    assert_eq!(l.s.outbox_len().unwrap(), 0);
    assert_eq!(l.s.read().outbox.len(), 0);
    // The last subscriber leaving empties everything; ids keep counting for later ones.
    l.ok(create("g", 6, 6));
    assert_eq!(l.s.outbox_len().unwrap(), 1);
    l.ok(Command::RemoveSubscription { id: "s1".into() });
    assert_eq!(l.s.outbox_len().unwrap(), 0);
    assert!(l.s.subscriptions().unwrap().is_empty());
    l.ok(create("g", 7, 7));
    assert_eq!(l.s.newest_event_id().unwrap(), 6, "no subscriber, no event");
    assert_eq!(l.s.read().outbox.len(), 0);
}

#[test]
fn subscription_rules() {
    let mut l = Log::new();
    assert!(l
        .rejected(subscribe("s", "gms", &ALL, None))
        .contains("no ACL entry"));
    l.acl("gms", Role::Gms, &["a"]);
    l.acl("other", Role::Gms, &["*"]);
    assert!(l
        .rejected(subscribe("s", "gms", &ALL, Some(&["b"])))
        .contains("may not read group b"));
    assert!(l
        .rejected(subscribe("s", "gms", &[], None))
        .contains("event kind"));
    assert!(l
        .rejected(Command::PutSubscription {
            id: "s".into(),
            principal: "gms".into(),
            callback_url: "http://plain".into(),
            kinds: ALL.to_vec(),
            group_filter: None,
        })
        .contains("https"));
    l.ok(subscribe("s", "gms", &ALL, Some(&["a"])));
    l.ok(create("a", 1, 1));
    l.ok(create("a", 2, 2));
    l.ok(ack("s", 1));
    // An update keeps the offset; another principal cannot take the id over.
    l.ok(subscribe("s", "gms", &[EventKind::GroupKeyRevoked], None));
    let st = l.s.subscription("s").unwrap().unwrap();
    assert_eq!(
        (st.acked, st.subscription.kinds.clone()),
        (1, vec![EventKind::GroupKeyRevoked])
    );
    assert!(l
        .rejected(subscribe("s", "other", &ALL, None))
        .contains("another principal"));
    assert_eq!(l.s.subscriptions().unwrap().len(), 1);
}

#[test]
fn backlog_bound_marks_must_resync_and_keeps_the_outbox_bounded() {
    let mut l = Log::new();
    l.community("k");
    l.acl("gms", Role::Gms, &["*"]);
    l.ok(subscribe("live", "gms", &ALL, None));
    l.ok(subscribe("dead", "gms", &ALL, None));
    for i in 1..=MAX_BACKLOG {
        l.ok(revoke_identity(i));
        if i % 1000 == 0 {
            l.ok(ack("live", i));
        }
    }
    let dead = l.s.subscription("dead").unwrap().unwrap();
    assert_eq!(
        (dead.acked, dead.must_resync),
        (0, false),
        "exactly at the bound"
    );
    assert_eq!(l.s.outbox_len().unwrap(), MAX_BACKLOG);
    l.ok(revoke_identity(MAX_BACKLOG + 1));
    let dead = l.s.subscription("dead").unwrap().unwrap();
    assert_eq!((dead.acked, dead.must_resync), (MAX_BACKLOG + 1, true));
    let live = l.s.subscription("live").unwrap().unwrap();
    assert_eq!((live.acked, live.must_resync), (MAX_BACKLOG, false));
    assert_eq!(
        l.s.outbox_len().unwrap(),
        1,
        "trimmed to the live subscriber"
    );
    assert_eq!(l.s.read().outbox.len(), 1);
    let page = l.s.events_for("dead", dead.acked, 10).unwrap().unwrap();
    assert!(page.must_resync && page.events.is_empty());
    // After resynchronising the subscriber acks where it stands: the flag clears.
    l.ok(ack("dead", MAX_BACKLOG + 1));
    let dead = l.s.subscription("dead").unwrap().unwrap();
    assert!(!dead.must_resync);
    l.ok(revoke_identity(MAX_BACKLOG + 2));
    let page = l.s.events_for("dead", dead.acked, 10).unwrap().unwrap();
    assert_eq!(ids(&page.events), vec![MAX_BACKLOG + 2]);
    assert!(!page.must_resync);
}

#[test]
fn replicas_applying_the_same_log_agree() {
    let run = || {
        let mut l = Log::new();
        l.community("k");
        l.acl("gms", Role::Gms, &["*"]);
        l.ok(subscribe("s", "gms", &ALL, None));
        l.ok(create("g", 1, 1));
        l.ok(revoke_identity(1));
        l.ok(ack("s", 1));
        l.acl("val1", Role::ValServer, &[]);
        l.ok(Command::PutKeyProvisioning {
            principal: "val1".into(),
            key_id: "k".into(),
            sealed_info: vec![1; MAX_SEALED_INFO_BYTES],
            at_unix: 1,
        });
        l.s.digest().unwrap()
    };
    assert_eq!(run(), run());
}
