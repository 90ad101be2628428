//! The checker's pure core: a paired history ([`super::history::Op`]) and every node's state
//! after healing ([`NodeState`]) in, the violations out.
//!
//! - durability: every acknowledged revocation and group key version is on every node;
//! - nothing invented: no node (and no read) shows a revocation, ACL value or group version
//!   that was never invoked;
//! - group versions: on every node 1..=n without gaps, and one GMK-ID per (group, version)
//!   across nodes, acknowledged rotations and reads;
//! - linearizability per key ([`super::linear`]): ACL entries and revocations as registers,
//!   a group's current version as a counter; each node's final state joins the history as a
//!   read after every operation;
//! - every node at the same state digest, none halted.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::history::{Func, Meta, Op, Outcome};
use super::linear::{self, Action, LinOp, Verdict};

/// Steps one key's linearizability search may take before it is reported inconclusive.
pub const SEARCH_BUDGET: u64 = 20_000_000;

/// What one node holds of the run's key space after healing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeState {
    pub id: u64,
    /// Principal → groups, for the principals of the key space that have an entry.
    pub acl: BTreeMap<String, Vec<String>>,
    /// Identities of the key space that are revoked.
    pub revoked: BTreeSet<String>,
    /// Group → its versions `(version, gmk_id)`, for groups of the key space that exist.
    pub groups: BTreeMap<String, Vec<(u32, String)>>,
    pub digest: Option<String>,
    pub applied: Option<u64>,
    pub halted: Option<String>,
}

/// The checker's findings.
#[derive(Debug, Default, Serialize)]
pub struct Findings {
    pub violations: Vec<String>,
    /// Keys checked for linearizability, and operations in them.
    pub keys_checked: usize,
    pub ops_checked: usize,
}

/// The canonical text of an ACL value (sorted groups) or `null`.
fn acl_text(v: &serde_json::Value) -> String {
    match v.as_array() {
        Some(a) => {
            let mut g: Vec<&str> = a.iter().filter_map(|x| x.as_str()).collect();
            g.sort_unstable();
            serde_json::to_string(&g).unwrap_or_default()
        }
        None => "null".into(),
    }
}

fn acl_text_of(groups: &[String]) -> String {
    acl_text(&serde_json::json!(groups))
}

/// `(version, gmk_id)` of an acknowledged rotation.
fn rotated(v: &serde_json::Value) -> Option<(u32, String)> {
    Some((
        u32::try_from(v["version"].as_u64()?).ok()?,
        v["gmk_id"].as_str()?.to_owned(),
    ))
}

/// The versions a group read saw.
fn versions_read(v: &serde_json::Value) -> Vec<(u32, String)> {
    v["versions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some((
                        u32::try_from(p.get(0)?.as_u64()?).ok()?,
                        p.get(1)?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Checks a history against the nodes' final states.
pub fn check(meta: &Meta, ops: &[Op], nodes: &[NodeState]) -> Findings {
    let mut f = Findings::default();
    let v = &mut f.violations;
    let ok = |op: &Op| matches!(op.outcome, Outcome::Ok(_));
    let value = |op: &Op| match &op.outcome {
        Outcome::Ok(x) => x.clone(),
        _ => serde_json::Value::Null,
    };

    // What was invoked.
    let revokes_invoked: BTreeSet<&str> = ops
        .iter()
        .filter(|o| o.f == Func::Revoke)
        .map(|o| o.key.as_str())
        .collect();
    let mut acl_invoked: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut rotations: BTreeMap<&str, u32> = BTreeMap::new();
    for o in ops {
        match o.f {
            Func::AclSet => {
                acl_invoked
                    .entry(&o.key)
                    .or_default()
                    .insert(acl_text(&o.input));
            }
            Func::GkRotate => *rotations.entry(&o.key).or_default() += 1,
            _ => {}
        }
    }

    // One GMK-ID per (group, version): from acknowledged rotations, reads and every node.
    let mut gmk_ids: BTreeMap<(String, u32), BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut note = |g: &str, ver: u32, id: &str, who: String| {
        gmk_ids
            .entry((g.to_owned(), ver))
            .or_default()
            .entry(id.to_owned())
            .or_default()
            .push(who);
    };
    for o in ops.iter().filter(|o| ok(o)) {
        match o.f {
            Func::GkRotate => {
                if let Some((ver, id)) = rotated(&value(o)) {
                    note(
                        &o.key,
                        ver,
                        &id,
                        format!("rotation by process {}", o.process),
                    );
                }
            }
            Func::GkRead => {
                for (ver, id) in versions_read(&value(o)) {
                    note(&o.key, ver, &id, format!("read by process {}", o.process));
                }
            }
            _ => {}
        }
    }
    for n in nodes {
        for (g, vs) in &n.groups {
            for (ver, id) in vs {
                note(g, *ver, id, format!("node {}", n.id));
            }
        }
    }
    for ((g, ver), ids) in &gmk_ids {
        if ids.len() > 1 {
            let seen: Vec<String> = ids
                .iter()
                .map(|(id, who)| format!("{id} ({})", who.join(", ")))
                .collect();
            v.push(format!(
                "group {g} version {ver} has {} GMK-IDs: {}",
                ids.len(),
                seen.join("; ")
            ));
        }
    }

    // Reads that saw what nobody wrote.
    for o in ops.iter().filter(|o| ok(o)) {
        let x = value(o);
        match o.f {
            Func::AclRead if !x.is_null() => {
                let t = acl_text(&x);
                if !acl_invoked
                    .get(o.key.as_str())
                    .is_some_and(|s| s.contains(&t))
                {
                    v.push(format!(
                        "process {} read ACL {} = {t}, a value never written",
                        o.process, o.key
                    ));
                }
            }
            Func::RevRead | Func::Keyprov
                if x.as_bool() == Some(true) && !revokes_invoked.contains(o.key.as_str()) =>
            {
                v.push(format!(
                    "process {} saw {} revoked ({}), a revocation never invoked",
                    o.process,
                    o.key,
                    o.f.name()
                ));
            }
            Func::GkRead => {
                let cur = x["version"].as_u64().unwrap_or(0);
                let inv = u64::from(rotations.get(o.key.as_str()).copied().unwrap_or(0));
                if cur > inv {
                    v.push(format!(
                        "process {} read group {} at version {cur}, but only {inv} rotations were invoked",
                        o.process, o.key
                    ));
                }
            }
            _ => {}
        }
    }

    // Every node: durability, nothing invented, gapless versions, digest, halted.
    for n in nodes {
        for o in ops.iter().filter(|o| ok(o)) {
            match o.f {
                Func::Revoke if !n.revoked.contains(&o.key) => v.push(format!(
                    "node {}: acknowledged revocation of {} (process {}) is missing",
                    n.id, o.key, o.process
                )),
                Func::GkRotate => {
                    if let Some((ver, id)) = rotated(&value(o)) {
                        let has = n
                            .groups
                            .get(&o.key)
                            .is_some_and(|vs| vs.iter().any(|(w, _)| *w == ver));
                        if !has {
                            v.push(format!(
                                "node {}: acknowledged version {ver} ({id}) of group {} is missing",
                                n.id, o.key
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        for id in &n.revoked {
            if !revokes_invoked.contains(id.as_str()) {
                v.push(format!(
                    "node {}: {id} is revoked but its revocation was never invoked",
                    n.id
                ));
            }
        }
        for (p, groups) in &n.acl {
            let t = acl_text_of(groups);
            if !acl_invoked.get(p.as_str()).is_some_and(|s| s.contains(&t)) {
                v.push(format!(
                    "node {}: ACL {p} = {t}, a value never written",
                    n.id
                ));
            }
        }
        for (g, vs) in &n.groups {
            let mut nums: Vec<u32> = vs.iter().map(|(x, _)| *x).collect();
            nums.sort_unstable();
            let want: Vec<u32> = (1..=nums.len() as u32).collect();
            if nums != want {
                v.push(format!(
                    "node {}: group {g} has versions {nums:?}, not 1..={} without gaps",
                    n.id,
                    nums.len()
                ));
            }
            let inv = rotations.get(g.as_str()).copied().unwrap_or(0);
            if nums.len() as u32 > inv {
                v.push(format!(
                    "node {}: group {g} has {} versions, but only {inv} rotations were invoked",
                    n.id,
                    nums.len()
                ));
            }
        }
        if let Some(h) = &n.halted {
            v.push(format!("node {} is halted: {h}", n.id));
        }
        if n.digest.is_none() {
            v.push(format!("node {} reported no state digest", n.id));
        }
    }
    let digests: BTreeSet<(&Option<String>, &Option<u64>)> =
        nodes.iter().map(|n| (&n.digest, &n.applied)).collect();
    if digests.len() > 1 {
        let each: Vec<String> = nodes
            .iter()
            .map(|n| {
                format!(
                    "node {}: {} at {}",
                    n.id,
                    n.digest.as_deref().unwrap_or("-"),
                    n.applied.map_or("-".into(), |a| a.to_string())
                )
            })
            .collect();
        v.push(format!(
            "the nodes' state digests differ: {}",
            each.join("; ")
        ));
    }

    // Linearizability, per key.
    let end = ops
        .iter()
        .map(|o| o.ret_ns.unwrap_or(o.call_ns).max(o.call_ns))
        .max()
        .unwrap_or(0);
    let mut per_key: BTreeMap<(u8, String), Vec<LinOp>> = BTreeMap::new();
    for o in ops {
        let (space, action) = match (o.f, &o.outcome) {
            (Func::Revoke, Outcome::Fail) => continue,
            (Func::Revoke, _) => (0, Action::Put("true".into())),
            (Func::RevRead | Func::Keyprov, Outcome::Ok(x)) => match x.as_bool() {
                Some(b) => (0, Action::Get(b.to_string())),
                None => continue,
            },
            (Func::AclSet, Outcome::Fail) => continue,
            (Func::AclSet, _) => (1, Action::Put(acl_text(&o.input))),
            (Func::AclRead, Outcome::Ok(x)) => (1, Action::Get(acl_text(x))),
            (Func::GkRotate, Outcome::Fail) => continue,
            (Func::GkRotate, Outcome::Ok(x)) => {
                (2, Action::Bump(rotated(x).map(|(n, _)| u64::from(n))))
            }
            (Func::GkRotate, Outcome::Unknown) => (2, Action::Bump(None)),
            (Func::GkRead, Outcome::Ok(x)) => (
                2,
                Action::Get(x["version"].as_u64().unwrap_or(0).to_string()),
            ),
            _ => continue,
        };
        per_key
            .entry((space, o.key.clone()))
            .or_default()
            .push(LinOp {
                call: o.call_ns,
                ret: o.ret_ns,
                action,
            });
    }
    // Each node's final state: one read per key after everything, node after node.
    for (i, n) in nodes.iter().enumerate() {
        let t = end.saturating_add(1 + 2 * i as u64);
        let read = |a: String| LinOp {
            call: t,
            ret: Some(t),
            action: Action::Get(a),
        };
        for id in &meta.identities {
            per_key
                .entry((0, id.clone()))
                .or_default()
                .push(read(n.revoked.contains(id).to_string()));
        }
        for p in &meta.principals {
            let t = n.acl.get(p).map_or("null".into(), |g| acl_text_of(g));
            per_key.entry((1, p.clone())).or_default().push(read(t));
        }
        for g in &meta.groups {
            // The current version: the highest (the workload neither revokes nor expires).
            let cur = n
                .groups
                .get(g)
                .and_then(|vs| vs.iter().map(|(x, _)| *x).max())
                .unwrap_or(0);
            per_key
                .entry((2, g.clone()))
                .or_default()
                .push(read(cur.to_string()));
        }
    }
    // An unknown write whose value no read saw may always be ordered last (as if it never
    // happened): dropping it keeps the answer and the search small.
    for lops in per_key.values_mut() {
        let seen: BTreeSet<String> = lops
            .iter()
            .filter_map(|o| match &o.action {
                Action::Get(x) => Some(x.clone()),
                _ => None,
            })
            .collect();
        lops.retain(|o| {
            !(o.ret.is_none() && matches!(&o.action, Action::Put(x) if !seen.contains(x)))
        });
    }
    f.keys_checked = per_key.len();
    for ((space, key), lops) in &per_key {
        f.ops_checked += lops.len();
        let (what, init) = match space {
            0 => ("revocation of", "false"),
            1 => ("ACL entry", "null"),
            _ => ("current version of group", "0"),
        };
        match linear::check(lops, init, SEARCH_BUDGET) {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable { longest } => f.violations.push(format!(
                "{what} {key}: not linearizable ({} operations; at most {} could be ordered)",
                lops.len(),
                longest.len()
            )),
            Verdict::Inconclusive => f.violations.push(format!(
                "{what} {key}: linearizability undecided within {SEARCH_BUDGET} steps ({} operations)",
                lops.len()
            )),
        }
    }
    f
}

#[cfg(test)]
mod tests;
