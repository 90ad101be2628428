use ring::rand::SystemRandom;

use super::*;
use crate::crypto::seal::BarrierKey;
use crate::kms::group::GroupKeyVersion;
use crate::state::command::{decode, try_encode, Envelope, Outcome};
use crate::state::test_util::Log;

const G: &str = "fire-brigade-7";
const KEY: &str = "gms.example.org\u{0}4f1c-retry";

fn new_version(version: u32) -> GroupKeyVersion {
    GroupKeyVersion::generate(
        &SystemRandom::new(),
        &BarrierKey::from_bytes(&[0x24; 32]).unwrap(),
        G,
        version,
        1_700_000_000,
        None,
    )
    .unwrap()
}

fn keyed(key: &str, fingerprint: &[u8], command: Command) -> Command {
    Command::Idempotent {
        key: key.into(),
        fingerprint: fingerprint.to_vec(),
        command: Box::new(command),
    }
}

fn create(version: u32) -> Command {
    Command::CreateGroupKey {
        group_id: G.into(),
        version: new_version(version),
    }
}

#[test]
fn a_repeated_key_makes_one_version_and_keeps_the_first_result() {
    let mut l = Log::new();
    let first = create(1);
    let Command::CreateGroupKey { version: v1, .. } = &first else {
        unreachable!()
    };
    let v1 = v1.clone();
    l.ok(keyed(KEY, b"create fire-brigade-7", first));
    // The client got a 503 and sends the same request again: the proposer made a new GMK.
    l.ok(keyed(KEY, b"create fire-brigade-7", create(1)));
    l.ok(keyed(KEY, b"create fire-brigade-7", create(2)));
    let group = l.s.group(G).unwrap().unwrap();
    assert_eq!(group.versions.len(), 1, "a repeat wrote a version");
    assert_eq!(group.versions[0], v1, "the first GMK stays");
    let rec = l.s.idempotency_record(KEY).unwrap().unwrap();
    assert_eq!(
        rec.result,
        IdempotentResult::GroupKeyVersion {
            group_id: G.into(),
            version: 1
        }
    );
    // One event for the one version.
    assert_eq!(
        l.s.newest_event_id().unwrap(),
        0,
        "no subscriber, no events"
    );

    // Another key is another request: the rotation happens.
    l.ok(keyed(
        "gms.example.org\u{0}other",
        b"create fire-brigade-7",
        create(2),
    ));
    assert_eq!(l.s.group(G).unwrap().unwrap().versions.len(), 2);
    // Without a key, every request writes.
    l.ok(create(3));
    assert_eq!(l.s.group(G).unwrap().unwrap().versions.len(), 3);
}

#[test]
fn a_key_reused_for_another_request_is_refused_and_a_refusal_is_not_remembered() {
    let mut l = Log::new();
    // Refused inner command (version 2 of an unknown group): nothing is recorded...
    let why = l.rejected(keyed(KEY, b"fp", create(2)));
    assert!(why.contains("unknown group"), "{why}");
    assert!(l.s.idempotency_record(KEY).unwrap().is_none());
    // ...so the retry runs.
    l.ok(keyed(KEY, b"fp", create(1)));
    let why = l.rejected(keyed(KEY, b"another request", create(2)));
    assert!(why.contains("another request"), "{why}");
    assert!(l
        .rejected(keyed("k2", b"fp", keyed("k3", b"fp", create(2))))
        .contains("nested"));
    assert!(l
        .rejected(keyed("", b"fp", create(2)))
        .contains("idempotency key"));
    l.ok(keyed(KEY, b"fp", create(1)));
    assert_eq!(l.s.group(G).unwrap().unwrap().versions.len(), 1);
}

#[test]
fn only_the_newest_keys_are_remembered() {
    let mut l = Log::new();
    l.community("kms.example.org");
    let revoke = |i: u64| Command::RevokeIdentity {
        kms_uri: "kms.example.org".into(),
        identity: format!("sip:user{i}@example.org"),
        at_unix: 1,
        reason: "lost".into(),
    };
    for i in 0..MAX_KEYS + 2 {
        l.ok(keyed(&format!("admin\u{0}{i}"), b"fp", revoke(i)));
    }
    assert!(l.s.idempotency_record("admin\u{0}0").unwrap().is_none());
    assert!(l.s.idempotency_record("admin\u{0}1").unwrap().is_none());
    assert!(l.s.idempotency_record("admin\u{0}2").unwrap().is_some());
    let newest = format!("admin\u{0}{}", MAX_KEYS + 1);
    assert_eq!(
        l.s.idempotency_record(&newest).unwrap().unwrap().result,
        IdempotentResult::Done
    );
    // records + order entries + the counter
    assert_eq!(l.s.read().idempotency.len() as u64, 2 * MAX_KEYS + 1);
}

#[test]
fn the_keyed_envelope_has_version_4_and_older_binaries_refuse_it() {
    let env = Envelope::new(9, keyed(KEY, b"fp", create(1)));
    assert_eq!(env.version, 4);
    let bytes = try_encode(&env).unwrap();
    assert_eq!(decode(&bytes).unwrap(), env);
    // The variant index follows the sixteen earlier variants.
    assert_eq!(bytes[2], 16);
    let mut l = Log::new();
    let old = Envelope {
        version: 3,
        ..env.clone()
    };
    assert!(matches!(
        l.s.apply(1, &old).unwrap(),
        Some(Outcome::Rejected(_))
    ));
    l.next = 2;
    assert_eq!(l.apply(keyed(KEY, b"fp", create(1))), Outcome::Applied);
}
