use raft::eraftpb::SnapshotMetadata;
use ring::rand::SystemRandom;

use crate::crypto::seal::BarrierKey;
use crate::kms::acl::Role;
use crate::kms::group::{open_gmk, GroupKeyVersion};
use crate::kms::key_provisioning::seal_key_info;
use crate::state::command::Command;
use crate::state::snapshot::write_snapshot;
use crate::state::test_util::{temp_state, Log};

const G: &str = "fire-brigade-7";

fn barrier() -> BarrierKey {
    BarrierKey::from_bytes(&[0x24; 32]).unwrap()
}

fn new_version(group_id: &str, version: u32, now: u64, ttl: Option<u64>) -> GroupKeyVersion {
    GroupKeyVersion::generate(
        &SystemRandom::new(),
        &barrier(),
        group_id,
        version,
        now,
        ttl,
    )
    .unwrap()
}

fn create(group_id: &str, version: GroupKeyVersion) -> Command {
    Command::CreateGroupKey {
        group_id: group_id.into(),
        version,
    }
}

#[test]
fn acl_entries_put_replace_remove() {
    let mut l = Log::new();
    l.acl("val1.example.org", Role::ValServer, &["b", "a"]);
    let e = l.s.acl_entry("val1.example.org").unwrap().unwrap();
    assert_eq!(
        (e.role, e.groups.clone()),
        (Role::ValServer, vec!["a".into(), "b".into()])
    );
    l.acl("val1.example.org", Role::Gms, &["*"]);
    let acl = l.s.acl().unwrap();
    assert_eq!(acl.role_of("val1.example.org"), Some(Role::Gms));
    assert!(acl.allows_group("val1.example.org", "anything"));
    let why = l.rejected(Command::PutAclEntry {
        principal: String::new(),
        role: Role::Admin,
        groups: vec![],
    });
    assert!(why.contains("principal"), "{why}");
    assert!(l
        .rejected(Command::PutAclEntry {
            principal: "p".into(),
            role: Role::Admin,
            groups: vec!["a/b".into()],
        })
        .contains("group"));
    l.ok(Command::RemoveAclEntry {
        principal: "val1.example.org".into(),
    });
    assert!(l.s.acl_entry("val1.example.org").unwrap().is_none());
    assert!(l
        .rejected(Command::RemoveAclEntry {
            principal: "val1.example.org".into(),
        })
        .contains("no ACL entry"));
}

#[test]
fn group_key_create_rotate_and_reject() {
    let mut l = Log::new();
    let v1 = new_version(G, 1, 1000, None);
    l.ok(create(G, v1.clone()));
    let g = l.s.group(G).unwrap().unwrap();
    assert_eq!(g.versions, vec![v1.clone()]);
    assert_eq!(g.current(1000).unwrap().version, 1);
    // The stored sealed GMK opens to the proposer's GMK.
    let gmk = open_gmk(&barrier(), G, g.version(1).unwrap()).unwrap();
    assert_eq!(open_gmk(&barrier(), G, &v1).unwrap(), gmk);

    assert!(l
        .rejected(create(G, new_version(G, 1, 1001, None)))
        .contains("not the next"));
    assert!(l
        .rejected(create(G, new_version(G, 3, 1001, None)))
        .contains("not the next"));
    assert!(l
        .rejected(create("other", new_version("other", 2, 1, None)))
        .contains("unknown group"));
    // A version made for a valid id, proposed for an invalid one.
    assert!(l
        .rejected(create("a/b", new_version(G, 1, 1, None)))
        .contains("group id"));
    let mut revoked = new_version(G, 2, 1001, None);
    revoked.revoked = true;
    assert!(l.rejected(create(G, revoked)).contains("revoked"));

    let v2 = new_version(G, 2, 2000, Some(500));
    l.ok(create(G, v2));
    let g = l.s.group(G).unwrap().unwrap();
    assert_eq!(g.current(2100).unwrap().version, 2);
    assert_eq!(g.current(2500).unwrap().version, 1, "v2 expired");
    l.ok(create("second", new_version("second", 1, 5, None)));
    let ids: Vec<_> =
        l.s.groups()
            .unwrap()
            .into_iter()
            .map(|g| g.group_id)
            .collect();
    assert_eq!(ids, vec![G.to_owned(), "second".to_owned()]);
    assert!(l.s.group("none").unwrap().is_none());
}

#[test]
fn group_key_revoke_and_expiry() {
    let mut l = Log::new();
    l.ok(create(G, new_version(G, 1, 1000, None)));
    l.ok(create(G, new_version(G, 2, 1100, None)));
    let revoke = |version| Command::RevokeGroupKey {
        group_id: G.into(),
        version,
        at_unix: 1200,
    };
    let expiry = |version, expires_unix, at_unix| Command::SetGroupKeyExpiry {
        group_id: G.into(),
        version,
        expires_unix,
        at_unix,
    };
    assert!(l
        .rejected(Command::RevokeGroupKey {
            group_id: "nope".into(),
            version: 1,
            at_unix: 1,
        })
        .contains("unknown group"));
    assert!(l.rejected(revoke(7)).contains("no key version 7"));
    l.ok(revoke(2));
    assert!(l.rejected(revoke(2)).contains("already revoked"));
    assert_eq!(
        l.s.group(G)
            .unwrap()
            .unwrap()
            .current(1300)
            .unwrap()
            .version,
        1
    );
    assert!(l.rejected(expiry(2, Some(5000), 1300)).contains("revoked"));
    assert!(l
        .rejected(Command::SetGroupKeyExpiry {
            group_id: "nope".into(),
            version: 1,
            expires_unix: None,
            at_unix: 1,
        })
        .contains("unknown group"));
    l.ok(expiry(1, Some(1400), 1300));
    let g = l.s.group(G).unwrap().unwrap();
    assert_eq!(g.version(1).unwrap().expires_unix, Some(1400));
    assert!(g.current(1400).is_none());
    // Expired at 1400: not made current again.
    assert!(l.rejected(expiry(1, None, 1400)).contains("expired"));
    l.ok(expiry(1, None, 1399));
    assert!(l.s.group(G).unwrap().unwrap().current(5000).is_some());
}

#[test]
fn the_expiry_scan_tells_what_is_due_and_when_to_look_again() {
    let mut l = Log::new();
    l.ok(create(G, new_version(G, 1, 1000, Some(100))));
    l.ok(create(G, new_version(G, 2, 1000, Some(300))));
    l.ok(create("other", new_version("other", 1, 1000, Some(200))));
    l.ok(create("forever", new_version("forever", 1, 1000, None)));
    let scan = l.s.group_key_expiries(1050).unwrap();
    assert!(scan.due.is_empty());
    assert_eq!(scan.next, Some(1100), "the earliest over every group");
    let scan = l.s.group_key_expiries(1100).unwrap();
    assert_eq!(scan.due, vec![(G.to_owned(), 1)]);
    assert_eq!(scan.next, Some(1200));
    l.ok(Command::NoteGroupKeyExpired {
        group_id: G.into(),
        version: 1,
        at_unix: 1100,
    });
    let scan = l.s.group_key_expiries(1250).unwrap();
    assert_eq!(
        scan.due,
        vec![("other".to_owned(), 1)],
        "noted: not due again"
    );
    assert_eq!(scan.next, Some(1300));
    assert_eq!(l.s.unnoted_expired_group_keys(1250).unwrap(), scan.due);
    assert_eq!(l.s.group_key_expiries(1300).unwrap().next, None);
}

#[test]
fn key_provisioning_needs_a_val_server() {
    let rng = SystemRandom::new();
    let mut l = Log::new();
    let sealed = seal_key_info(&barrier(), "val1", "svc", b"info", &rng).unwrap();
    let push = |principal: &str, key_id: &str, sealed_info: Vec<u8>| Command::PutKeyProvisioning {
        principal: principal.into(),
        key_id: key_id.into(),
        sealed_info,
        at_unix: 77,
    };
    assert!(l
        .rejected(push("val1", "svc", sealed.clone()))
        .contains("not a VAL server"));
    l.acl("gms", Role::Gms, &["*"]);
    assert!(l
        .rejected(push("gms", "svc", sealed.clone()))
        .contains("not a VAL server"));
    l.acl("val1", Role::ValServer, &[]);
    assert!(l
        .rejected(push("val1", "a/b", sealed.clone()))
        .contains("key id"));
    assert!(l.rejected(push("val1", "svc", vec![])).contains("bytes"));
    assert!(l
        .rejected(push("val1", "svc", vec![0; 64 * 1024 + 1]))
        .contains("bytes"));
    l.ok(push("val1", "svc", sealed.clone()));
    let rec = l.s.key_provisioning("val1", "svc").unwrap().unwrap();
    assert_eq!((rec.at_unix, rec.sealed_info.clone()), (77, sealed));
    assert_eq!(rec.open(&barrier()).unwrap().expose(), b"info");
    assert!(l.s.key_provisioning("val1", "other").unwrap().is_none());
    // A push replaces the previous one.
    let again = seal_key_info(&barrier(), "val1", "svc", b"info 2", &rng).unwrap();
    l.ok(push("val1", "svc", again));
    let rec = l.s.key_provisioning("val1", "svc").unwrap().unwrap();
    assert_eq!(rec.open(&barrier()).unwrap().expose(), b"info 2");
}

/// Two replicas that differ only in one group key version have different digests.
#[test]
fn digest_covers_the_new_trees() {
    let v = new_version(G, 1, 1000, None);
    let mut other = v.clone();
    other.gmk_id ^= 1;
    let (mut a, mut b) = (Log::new(), Log::new());
    a.ok(create(G, v.clone()));
    b.ok(create(G, other));
    assert_ne!(a.s.digest().unwrap(), b.s.digest().unwrap());
    let mut c = Log::new();
    c.ok(create(G, v));
    assert_eq!(a.s.digest().unwrap(), c.s.digest().unwrap());
    // ACL, key provisioning, subscriptions, offsets and the outbox count as well.
    let mut d = Log::new();
    let mut e = Log::new();
    d.acl("p", Role::Gms, &["*"]);
    e.acl("p", Role::Gms, &["a"]);
    assert_ne!(d.s.digest().unwrap(), e.s.digest().unwrap());
}

#[test]
fn snapshots_carry_the_new_trees() {
    let rng = SystemRandom::new();
    let mut l = Log::new();
    l.community("k");
    l.acl("val1", Role::ValServer, &[G]);
    l.ok(create(G, new_version(G, 1, 1000, Some(60))));
    l.ok(Command::PutKeyProvisioning {
        principal: "val1".into(),
        key_id: "svc".into(),
        sealed_info: seal_key_info(&barrier(), "val1", "svc", b"i", &rng).unwrap(),
        at_unix: 1,
    });
    l.ok(Command::PutSubscription {
        id: "s1".into(),
        principal: "val1".into(),
        callback_url: "https://val1/cb".into(),
        kinds: vec![crate::kms::events::EventKind::GroupKeyRotated],
        group_filter: None,
    });
    l.ok(create(G, new_version(G, 2, 1100, None)));
    assert_eq!(l.s.outbox_len().unwrap(), 1);
    let index = l.s.applied_index().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let meta = SnapshotMetadata {
        index,
        term: 2,
        ..SnapshotMetadata::default()
    };
    let desc = write_snapshot(&l.s, dir.path(), &meta).unwrap();
    let dst = temp_state();
    dst.restore_snapshot(dir.path(), desc.index).unwrap();
    assert_eq!(dst.digest().unwrap(), l.s.digest().unwrap());
    assert_eq!(dst.group(G).unwrap(), l.s.group(G).unwrap());
    assert_eq!(
        dst.acl_entry("val1").unwrap(),
        l.s.acl_entry("val1").unwrap()
    );
    assert!(dst.key_provisioning("val1", "svc").unwrap().is_some());
    assert_eq!(dst.subscriptions().unwrap(), l.s.subscriptions().unwrap());
    assert_eq!(
        dst.events_for("s1", 0, 10).unwrap(),
        l.s.events_for("s1", 0, 10).unwrap()
    );
    assert_eq!(dst.outbox_len().unwrap(), 1);
}

#[test]
fn a_federated_import_adds_the_version_with_its_created_and_imported_events() {
    use crate::kms::events::{EventKind as K, EventSubject};
    let mut l = Log::new();
    l.community("k");
    l.acl("val1", Role::ValServer, &[G]);
    l.ok(Command::PutSubscription {
        id: "s1".into(),
        principal: "val1".into(),
        callback_url: "https://val1/cb".into(),
        kinds: vec![K::GroupKeyCreated, K::FederatedKeyImported],
        group_filter: None,
    });
    let import = |version: GroupKeyVersion| Command::ImportFederatedGroupKey {
        partner: "kms.partner.test".into(),
        group_id: G.into(),
        version,
    };
    let v1 = new_version(G, 1, 1000, None);
    let gmk_id = v1.gmk_id;
    l.ok(import(v1.clone()));
    assert_eq!(l.s.group(G).unwrap().unwrap().versions, vec![v1.clone()]);
    let page = l.s.events_for("s1", 0, 10).unwrap().unwrap();
    let got: Vec<_> = page
        .events
        .iter()
        .map(|e| (e.kind, e.subject.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                K::GroupKeyCreated,
                EventSubject::GroupKey {
                    group_id: G.into(),
                    version: 1
                }
            ),
            (
                K::FederatedKeyImported,
                EventSubject::FederatedGroupKey {
                    group_id: G.into(),
                    version: 1,
                    gmk_id,
                    partner_kms_uri: "kms.partner.test".into()
                }
            ),
        ]
    );
    // Refused like a creation (the same version again, or one out of order): no event.
    let before = l.s.outbox_len().unwrap();
    l.rejected(import(v1));
    l.rejected(import(new_version(G, 3, 1100, None)));
    assert_eq!(l.s.outbox_len().unwrap(), before);
}
