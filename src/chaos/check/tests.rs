//! Crafted histories: one good run passes; each kind of anomaly is found.

use super::*;
use serde_json::json;

const G: &str = "g1";
const P: &str = "p1";
const U: &str = "sip:u1@chaos";
const U2: &str = "sip:u2@chaos";

fn meta() -> Meta {
    Meta {
        seed: 1,
        groups: vec![G.into()],
        principals: vec![P.into()],
        identities: vec![U.into(), U2.into()],
        ..Meta::default()
    }
}

fn op(
    process: u64,
    call: u64,
    ret: Option<u64>,
    f: Func,
    key: &str,
    input: serde_json::Value,
    outcome: Outcome,
) -> Op {
    Op {
        process,
        f,
        key: key.into(),
        input,
        outcome,
        call_ns: call,
        ret_ns: ret,
        node: 1,
    }
}

fn ok(x: serde_json::Value) -> Outcome {
    Outcome::Ok(x)
}

/// A good run: two rotations, an ACL set and a revocation, reads on the way, one unknown
/// ACL write that never applied and one unknown revocation that did.
fn good_ops() -> Vec<Op> {
    vec![
        op(
            1,
            0,
            Some(10),
            Func::GkRotate,
            G,
            json!(null),
            ok(json!({"version": 1, "gmk_id": "0000aaaa"})),
        ),
        op(
            2,
            5,
            Some(15),
            Func::AclSet,
            P,
            json!(["a"]),
            ok(json!(["a"])),
        ),
        op(
            3,
            6,
            Some(16),
            Func::Revoke,
            U,
            json!(null),
            ok(json!(null)),
        ),
        op(
            1,
            20,
            Some(30),
            Func::GkRead,
            G,
            json!(null),
            ok(json!({"version": 1, "versions": [[1, "0000aaaa"]]})),
        ),
        op(
            2,
            20,
            Some(30),
            Func::AclRead,
            P,
            json!(null),
            ok(json!(["a"])),
        ),
        op(
            3,
            20,
            Some(30),
            Func::RevRead,
            U,
            json!(null),
            ok(json!(true)),
        ),
        op(
            4,
            21,
            Some(31),
            Func::Keyprov,
            U2,
            json!(null),
            ok(json!(false)),
        ),
        op(
            1,
            40,
            Some(50),
            Func::GkRotate,
            G,
            json!(null),
            ok(json!({"version": 2, "gmk_id": "0000bbbb"})),
        ),
        op(2, 40, None, Func::AclSet, P, json!(["b"]), Outcome::Unknown),
        op(5, 41, None, Func::Revoke, U2, json!(null), Outcome::Unknown),
        op(
            6,
            42,
            Some(43),
            Func::AclSet,
            P,
            json!(["c"]),
            Outcome::Fail,
        ),
        op(
            7,
            60,
            Some(70),
            Func::AclRead,
            P,
            json!(null),
            ok(json!(["a"])),
        ),
    ]
}

fn good_node(id: u64) -> NodeState {
    NodeState {
        id,
        acl: [(P.to_string(), vec!["a".to_string()])].into(),
        revoked: [U.to_string(), U2.to_string()].into(),
        groups: [(
            G.to_string(),
            vec![(1, "0000aaaa".to_string()), (2, "0000bbbb".to_string())],
        )]
        .into(),
        digest: Some("d".into()),
        applied: Some(9),
        halted: None,
    }
}

fn nodes() -> Vec<NodeState> {
    (1..=3).map(good_node).collect()
}

fn violations(ops: &[Op], nodes: &[NodeState]) -> Vec<String> {
    check(&meta(), ops, nodes).violations
}

#[test]
fn a_good_history_passes() {
    let f = check(&meta(), &good_ops(), &nodes());
    assert_eq!(f.violations, Vec::<String>::new());
    // Four keys; every operation but the failed ACL write and the unknown one nobody read (it
    // may always come last), and each node's final read of each key.
    assert_eq!(f.keys_checked, 4);
    assert_eq!(f.ops_checked, good_ops().len() - 2 + 3 * 4);
}

#[test]
fn a_lost_acknowledged_write_fails() {
    // Node 2 lost the acknowledged revocation of U.
    let mut ns = nodes();
    ns[1].revoked.remove(U);
    let v = violations(&good_ops(), &ns);
    assert!(
        v.iter()
            .any(|m| m.contains("node 2: acknowledged revocation of sip:u1@chaos")),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|m| m.contains("revocation of sip:u1@chaos: not linearizable")),
        "{v:?}"
    );

    // Node 3 lost the acknowledged version 2.
    let mut ns = nodes();
    ns[2].groups.get_mut(G).unwrap().pop();
    let v = violations(&good_ops(), &ns);
    assert!(
        v.iter()
            .any(|m| m.contains("node 3: acknowledged version 2")),
        "{v:?}"
    );

    // Every node lost the acknowledged ACL value: only the final reads notice (no unknown
    // write could explain "null").
    let mut ns = nodes();
    for n in &mut ns {
        n.acl.clear();
    }
    let v = violations(&good_ops(), &ns);
    assert!(
        v.iter()
            .any(|m| m.contains("ACL entry p1: not linearizable")),
        "{v:?}"
    );
}

#[test]
fn a_stale_read_fails() {
    // After version 2 was acknowledged, a read began and saw version 1.
    let mut ops = good_ops();
    ops.push(op(
        8,
        80,
        Some(90),
        Func::GkRead,
        G,
        json!(null),
        ok(json!({"version": 1, "versions": [[1, "0000aaaa"]]})),
    ));
    let v = violations(&ops, &nodes());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].contains("current version of group g1: not linearizable"),
        "{v:?}"
    );

    // A revocation read as absent after it was acknowledged.
    let mut ops = good_ops();
    ops.push(op(
        8,
        80,
        Some(90),
        Func::RevRead,
        U,
        json!(null),
        ok(json!(false)),
    ));
    let v = violations(&ops, &nodes());
    assert!(
        v.iter()
            .any(|m| m.contains("revocation of sip:u1@chaos: not linearizable")),
        "{v:?}"
    );
}

#[test]
fn a_divergent_version_fails() {
    // Node 2 holds another GMK-ID for version 2.
    let mut ns = nodes();
    ns[1].groups.get_mut(G).unwrap()[1].1 = "0000cccc".into();
    ns[1].digest = Some("e".into());
    let v = violations(&good_ops(), &ns);
    assert!(
        v.iter()
            .any(|m| m.contains("group g1 version 2 has 2 GMK-IDs")),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|m| m.contains("the nodes' state digests differ")),
        "{v:?}"
    );

    // A gap in a node's versions.
    let mut ns = nodes();
    ns[0].groups.get_mut(G).unwrap()[1].0 = 3;
    let v = violations(&good_ops(), &ns);
    assert!(
        v.iter()
            .any(|m| m.contains("node 1: group g1 has versions [1, 3]")),
        "{v:?}"
    );

    // Two acknowledged rotations that both answered version 2.
    let mut ops = good_ops();
    ops.push(op(
        9,
        100,
        Some(110),
        Func::GkRotate,
        G,
        json!(null),
        ok(json!({"version": 2, "gmk_id": "0000bbbb"})),
    ));
    let v = violations(&ops, &nodes());
    assert!(
        v.iter()
            .any(|m| m.contains("current version of group g1: not linearizable")),
        "{v:?}"
    );
}

#[test]
fn a_read_of_an_uninvoked_value_fails() {
    let mut ops = good_ops();
    ops.push(op(
        8,
        80,
        Some(90),
        Func::AclRead,
        P,
        json!(null),
        ok(json!(["zzz"])),
    ));
    let v = violations(&ops, &nodes());
    assert!(
        v.iter()
            .any(|m| m.contains("read ACL p1 = [\"zzz\"], a value never written")),
        "{v:?}"
    );

    // A node holds a revocation nobody asked for, and a version nobody made.
    let mut ns = nodes();
    ns[2].revoked.insert("sip:never@chaos".into());
    ns[2]
        .groups
        .get_mut(G)
        .unwrap()
        .push((3, "0000dddd".into()));
    let v = violations(&good_ops(), &ns);
    assert!(
        v.iter().any(|m| m
            .contains("node 3: sip:never@chaos is revoked but its revocation was never invoked")),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|m| m.contains("node 3: group g1 has 3 versions, but only 2 rotations")),
        "{v:?}"
    );

    // A keyprov refused as revoked for an identity nobody revoked.
    let mut ops = good_ops();
    ops.push(op(
        8,
        1,
        Some(2),
        Func::Keyprov,
        "sip:other@chaos",
        json!(null),
        ok(json!(true)),
    ));
    let v = violations(&ops, &nodes());
    assert!(
        v.iter()
            .any(|m| m.contains("saw sip:other@chaos revoked (keyprov)")),
        "{v:?}"
    );
}

#[test]
fn a_halted_node_fails() {
    let mut ns = nodes();
    ns[0].halted = Some("disk".into());
    let v = violations(&good_ops(), &ns);
    assert_eq!(v, vec!["node 1 is halted: disk".to_string()]);
}
