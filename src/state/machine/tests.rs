use super::*;
use crate::kms::period::PeriodParams;

fn env(request_id: u64, command: Command) -> Envelope {
    Envelope {
        version: COMMAND_VERSION,
        request_id,
        command,
    }
}

fn log() -> Vec<Envelope> {
    let period = PeriodParams {
        period_s: 100,
        offset_s: 0,
    };
    vec![
        env(
            1,
            Command::CreateCommunity {
                kms_uri: "k".into(),
                period,
            },
        ),
        env(
            2,
            Command::RevokeIdentity {
                kms_uri: "k".into(),
                identity: "sip:a".into(),
                at_unix: 5,
                reason: "r".into(),
            },
        ),
        env(
            3,
            Command::RevokeIdentity {
                kms_uri: "nope".into(),
                identity: "sip:a".into(),
                at_unix: 5,
                reason: "r".into(),
            },
        ),
        env(
            4,
            Command::ReinstateIdentity {
                kms_uri: "k".into(),
                identity: "sip:b".into(),
            },
        ),
    ]
}

fn temp_state() -> StateMachine {
    StateMachine::open(sled::Config::new().temporary(true).open().unwrap()).unwrap()
}

#[test]
fn apply_is_ordered_idempotent_and_deterministic() {
    let a = temp_state();
    let outcomes: Vec<_> = log()
        .iter()
        .enumerate()
        .map(|(i, e)| a.apply(i as u64 + 1, e).unwrap())
        .collect();
    assert_eq!(outcomes[0], Some(Outcome::Applied));
    assert_eq!(outcomes[1], Some(Outcome::Applied));
    assert!(
        matches!(outcomes[2], Some(Outcome::Rejected(_))),
        "unknown community is refused"
    );
    assert!(
        matches!(outcomes[3], Some(Outcome::Rejected(_))),
        "not revoked"
    );
    assert_eq!(
        a.applied_index().unwrap(),
        4,
        "refusals still advance the index"
    );
    assert!(a.revocation("k", "sip:a").unwrap().is_some());
    // Replay of an applied entry is skipped; a gap is an error.
    assert_eq!(a.apply(2, &log()[1]).unwrap(), None);
    assert!(matches!(
        a.apply(6, &log()[0]),
        Err(StateError::OutOfOrder {
            index: 6,
            applied: 4
        })
    ));
    // Another replica applying the same log reaches the same digest.
    let b = temp_state();
    for (i, e) in log().iter().enumerate() {
        b.apply(i as u64 + 1, e).unwrap();
    }
    assert_eq!(a.digest().unwrap(), b.digest().unwrap());
    b.apply_empty(5).unwrap();
    assert_ne!(
        a.digest().unwrap(),
        b.digest().unwrap(),
        "the applied index is part of the state"
    );
}

#[test]
fn an_unknown_version_is_refused_before_anything_changes() {
    let a = temp_state();
    let mut e = log()[0].clone();
    e.version = COMMAND_VERSION + 1;
    assert!(matches!(a.apply(1, &e), Err(StateError::UnknownVersion(_))));
    assert_eq!(a.applied_index().unwrap(), 0);
    assert!(a.communities().unwrap().is_empty());
}

#[test]
fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = StateMachine::open(sled::open(dir.path()).unwrap()).unwrap();
        s.apply(1, &log()[0]).unwrap();
        s.flush().unwrap();
    }
    let s = StateMachine::open(sled::open(dir.path()).unwrap()).unwrap();
    assert_eq!(s.applied_index().unwrap(), 1);
    assert!(s.community("k").unwrap().is_some());
}

#[test]
fn a_refusal_writes_only_the_applied_index() {
    let a = temp_state();
    let b = temp_state();
    for (i, e) in log().iter().take(2).enumerate() {
        a.apply(i as u64 + 1, e).unwrap();
        b.apply(i as u64 + 1, e).unwrap();
    }
    let refused = [
        Command::RevokeCertificate {
            kms_uri: "k".into(),
            cert_uri: "k/cert/9".into(),
        },
        Command::RevokeGroupKey {
            group_id: "g".into(),
            version: 1,
            at_unix: 1,
        },
        Command::AckEvents {
            subscription_id: "s".into(),
            up_to_event_id: 1,
        },
    ];
    for (i, c) in refused.into_iter().enumerate() {
        let index = 3 + i as u64;
        let out = a.apply(index, &Envelope::new(9, c)).unwrap();
        assert!(matches!(out, Some(Outcome::Rejected(_))), "{out:?}");
        b.apply_empty(index).unwrap();
    }
    assert_eq!(a.digest().unwrap(), b.digest().unwrap());
}

#[test]
fn an_envelope_below_its_commands_version_is_refused() {
    let a = temp_state();
    let e = Envelope {
        version: 1,
        request_id: 1,
        command: Command::RemoveAclEntry {
            principal: "p".into(),
        },
    };
    match a.apply(1, &e).unwrap() {
        Some(Outcome::Rejected(why)) => assert!(why.contains("version 2"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(a.applied_index().unwrap(), 1);
}

/// Rolling upgrade: until a version-2 command is applied, this binary writes for the
/// version-1 commands exactly what the previous one did (no outbox, no new meta keys), and the
/// digest ignores the empty new trees.
#[test]
fn version_1_commands_without_subscribers_write_no_new_state() {
    use crate::kms::community::Certificate;
    let a = temp_state();
    let cert = |serial: u32| Certificate {
        serial,
        cert_uri: format!("k/cert/{serial}"),
        valid_from_unix: 10 * u64::from(serial),
        valid_to_unix: 1000,
        revoked: false,
        pub_enc_key: vec![1],
        pub_auth_key: vec![2],
        sealed_master: vec![3],
    };
    let mut cmds: Vec<Command> = log().into_iter().map(|e| e.command).collect();
    cmds.extend([
        Command::SetBarrierCheck { sealed: vec![1] },
        Command::AddCertificate {
            kms_uri: "k".into(),
            certificate: cert(1),
        },
        Command::AddCertificate {
            kms_uri: "k".into(),
            certificate: cert(2),
        },
        Command::RevokeCertificate {
            kms_uri: "k".into(),
            cert_uri: "k/cert/1".into(),
        },
    ]);
    for (i, c) in cmds.into_iter().enumerate() {
        let e = Envelope::new(i as u64, c);
        assert_eq!(e.version, 1);
        a.apply(i as u64 + 1, &e).unwrap();
    }
    let a_trees = a.read();
    for t in [
        &a_trees.acl,
        &a_trees.groups,
        &a_trees.key_provisioning,
        &a_trees.subscriptions,
        &a_trees.outbox,
        &a_trees.sub_offsets,
        &a_trees.idempotency,
        &a_trees.partners,
        &a_trees.capif,
    ] {
        assert!(t.is_empty());
    }
    let meta_keys: Vec<_> = a_trees
        .meta
        .iter()
        .keys()
        .map(|k| k.unwrap().to_vec())
        .collect();
    assert_eq!(meta_keys, vec![APPLIED_KEY.to_vec(), BARRIER_KEY.to_vec()]);
    // The digest is the pre-version-2 digest: the four original trees only.
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (name, tree) in [
        ("communities", &a_trees.communities),
        ("revocations", &a_trees.revocations),
        (META_TREE, &a_trees.meta),
        ("members", &a_trees.members),
    ] {
        ctx.update(name.as_bytes());
        for kv in tree.iter() {
            let (k, v) = kv.unwrap();
            ctx.update(&(k.len() as u64).to_be_bytes());
            ctx.update(&k);
            ctx.update(&(v.len() as u64).to_be_bytes());
            ctx.update(&v);
        }
    }
    drop(a_trees);
    assert_eq!(a.digest().unwrap().as_slice(), ctx.finish().as_ref());
}
