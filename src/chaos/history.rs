//! The recorded history of a chaos workload (JSON lines) and its pairing into operations.
//!
//! The first line is a [`Meta`] record (`"type": "meta"`): the run's key space, so the checker
//! can ask every node about keys the workload might have touched. Every other line is an
//! [`Event`]: an `invoke` and later exactly one completion of the same `process` — `ok` (the
//! answer is known), `fail` (the operation certainly had no effect: refused, or never sent) or
//! `unknown` (a timeout, a cut connection, or a 503 on a write: it may or may not have taken
//! effect). A process runs one operation at a time; after an `unknown` the workload continues
//! under a new process id (the old one may still be "in flight" forever), as Jepsen does.
//!
//! Times are nanoseconds of a monotonic clock since the workload started.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

/// The operations of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Func {
    /// SEAL-X1 `POST groups/{g}/keys` (create version 1 or rotate); ok value
    /// `{"version", "gmk_id"}`.
    GkRotate,
    /// SEAL-X1 `GET groups/{g}/keys`; ok value `{"version": current or 0, "versions":
    /// [[version, gmk_id], ...]}`.
    GkRead,
    /// Admin `POST acl` of a principal; invoke value: its groups.
    AclSet,
    /// Admin `GET acl`; ok value: the principal's groups, or `null` without an entry.
    AclRead,
    /// Admin `POST communities/{c}/revocations` of an identity.
    Revoke,
    /// Admin `revocations/query` of one identity; ok value: revoked (bool).
    RevRead,
    /// KM-UU `keyprov` as the identity; ok value: refused as revoked (bool) — a read of the
    /// same key as `revoke`.
    Keyprov,
}

impl Func {
    /// Whether the operation changes the replicated state.
    pub fn is_write(self) -> bool {
        matches!(self, Func::GkRotate | Func::AclSet | Func::Revoke)
    }

    pub fn name(self) -> &'static str {
        match self {
            Func::GkRotate => "gk_rotate",
            Func::GkRead => "gk_read",
            Func::AclSet => "acl_set",
            Func::AclRead => "acl_read",
            Func::Revoke => "revoke",
            Func::RevRead => "rev_read",
            Func::Keyprov => "keyprov",
        }
    }
}

/// What a line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Invoke,
    Ok,
    Fail,
    Unknown,
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub process: u64,
    /// Nanoseconds since the workload started (monotonic).
    pub time_ns: u64,
    pub f: Func,
    pub key: String,
    #[serde(default)]
    pub value: serde_json::Value,
    /// The node the request went to (1-based), or 0 when not known.
    #[serde(default)]
    pub node: u64,
    /// Why it failed or is unknown (status or transport error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The key space of a run: every key the workload may touch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub seed: u64,
    /// Wall-clock time (Unix milliseconds) of `time_ns` 0, to line faults up with the history.
    pub start_unix_ms: u64,
    pub community: String,
    pub groups: Vec<String>,
    pub principals: Vec<String>,
    pub identities: Vec<String>,
}

#[derive(Deserialize)]
struct MetaLine {
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    meta: Meta,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok(serde_json::Value),
    Fail,
    /// Not answered: may have taken effect at any time after its call, or never.
    Unknown,
}

/// One operation: an invocation and its completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub process: u64,
    pub f: Func,
    pub key: String,
    pub input: serde_json::Value,
    pub outcome: Outcome,
    pub call_ns: u64,
    /// Completion time; `None` for an unknown outcome (it may take effect at any later time).
    pub ret_ns: Option<u64>,
    pub node: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HistoryError {
    #[error("line {0}: {1}")]
    Parse(usize, String),
    #[error("the history has no meta line first")]
    NoMeta,
    #[error("process {0}: a completion without an invocation (line {1})")]
    Orphan(u64, usize),
    #[error("process {0}: invoked again before its operation completed (line {1})")]
    Overlap(u64, usize),
    #[error("process {0}: completion of {1} {2:?} does not match its invocation of {3} {4:?}")]
    Mismatch(u64, &'static str, String, &'static str, String),
}

/// Reads a history: its meta line and its events.
pub fn read(r: impl BufRead) -> Result<(Meta, Vec<Event>), HistoryError> {
    let mut meta = None;
    let mut events = Vec::new();
    for (n, line) in r.lines().enumerate() {
        let line = line.map_err(|e| HistoryError::Parse(n + 1, e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        if meta.is_none() {
            let m: MetaLine = serde_json::from_str(&line)
                .map_err(|e| HistoryError::Parse(n + 1, e.to_string()))?;
            if m.kind != "meta" {
                return Err(HistoryError::NoMeta);
            }
            meta = Some(m.meta);
            continue;
        }
        events.push(
            serde_json::from_str(&line).map_err(|e| HistoryError::Parse(n + 1, e.to_string()))?,
        );
    }
    Ok((meta.ok_or(HistoryError::NoMeta)?, events))
}

/// The meta line's JSON text.
pub fn meta_line(m: &Meta) -> String {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("type".into(), "meta".into());
    }
    v.to_string()
}

/// Pairs each invocation with its process's next completion. An invocation never completed
/// (the workload was stopped) counts as unknown.
pub fn pair(events: &[Event]) -> Result<Vec<Op>, HistoryError> {
    let mut open: BTreeMap<u64, (usize, &Event)> = BTreeMap::new();
    let mut ops: Vec<(usize, Op)> = Vec::new();
    for (n, e) in events.iter().enumerate() {
        if e.kind == Kind::Invoke {
            if open.insert(e.process, (n, e)).is_some() {
                return Err(HistoryError::Overlap(e.process, n + 2));
            }
            continue;
        }
        let (at, inv) = open
            .remove(&e.process)
            .ok_or(HistoryError::Orphan(e.process, n + 2))?;
        if inv.f != e.f || inv.key != e.key {
            return Err(HistoryError::Mismatch(
                e.process,
                e.f.name(),
                e.key.clone(),
                inv.f.name(),
                inv.key.clone(),
            ));
        }
        let (outcome, ret_ns) = match e.kind {
            Kind::Ok => (Outcome::Ok(e.value.clone()), Some(e.time_ns)),
            Kind::Fail => (Outcome::Fail, Some(e.time_ns)),
            _ => (Outcome::Unknown, None),
        };
        ops.push((at, op_of(inv, outcome, ret_ns)));
    }
    for (_, (at, inv)) in open {
        ops.push((at, op_of(inv, Outcome::Unknown, None)));
    }
    ops.sort_by_key(|(at, _)| *at);
    Ok(ops.into_iter().map(|(_, op)| op).collect())
}

fn op_of(inv: &Event, outcome: Outcome, ret_ns: Option<u64>) -> Op {
    Op {
        process: inv.process,
        f: inv.f,
        key: inv.key.clone(),
        input: inv.value.clone(),
        outcome,
        call_ns: inv.time_ns,
        ret_ns,
        node: inv.node,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: Kind, process: u64, t: u64, f: Func, key: &str) -> Event {
        Event {
            kind,
            process,
            time_ns: t,
            f,
            key: key.into(),
            value: serde_json::Value::Null,
            node: 1,
            error: None,
        }
    }

    #[test]
    fn pairs_by_process_and_reads_back_what_it_wrote() {
        let events = vec![
            ev(Kind::Invoke, 1, 1, Func::Revoke, "a"),
            ev(Kind::Invoke, 2, 2, Func::RevRead, "a"),
            ev(Kind::Ok, 2, 3, Func::RevRead, "a"),
            ev(Kind::Unknown, 1, 4, Func::Revoke, "a"),
            ev(Kind::Invoke, 3, 5, Func::AclSet, "p"),
        ];
        let meta = Meta {
            seed: 7,
            groups: vec!["g".into()],
            ..Meta::default()
        };
        let mut text = meta_line(&meta) + "\n";
        for e in &events {
            text += &(serde_json::to_string(e).unwrap() + "\n");
        }
        let (m, back) = read(text.as_bytes()).unwrap();
        assert_eq!((m, &back), (meta, &events));
        let ops = pair(&back).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!((ops[0].f, ops[0].ret_ns), (Func::Revoke, None));
        assert_eq!(ops[0].outcome, Outcome::Unknown);
        assert_eq!((ops[1].call_ns, ops[1].ret_ns), (2, Some(3)));
        // Never completed: unknown.
        assert_eq!(ops[2].outcome, Outcome::Unknown);
    }

    #[test]
    fn malformed_histories_are_refused() {
        let orphan = [ev(Kind::Ok, 1, 1, Func::Revoke, "a")];
        assert_eq!(pair(&orphan), Err(HistoryError::Orphan(1, 2)));
        let overlap = [
            ev(Kind::Invoke, 1, 1, Func::Revoke, "a"),
            ev(Kind::Invoke, 1, 2, Func::Revoke, "b"),
        ];
        assert_eq!(pair(&overlap), Err(HistoryError::Overlap(1, 3)));
        let other = [
            ev(Kind::Invoke, 1, 1, Func::Revoke, "a"),
            ev(Kind::Ok, 1, 2, Func::Revoke, "b"),
        ];
        assert!(matches!(pair(&other), Err(HistoryError::Mismatch(..))));
        assert!(matches!(read(&b"{}\n"[..]), Err(HistoryError::Parse(1, _))));
        let no_meta = serde_json::to_string(&ev(Kind::Invoke, 1, 1, Func::Revoke, "a")).unwrap();
        assert!(read(no_meta.as_bytes()).is_err());
    }
}
