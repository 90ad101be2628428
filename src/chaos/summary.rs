//! The summary of a chaos run (pure): operations ok / failed / unknown per kind, availability,
//! the longest stretch without an acknowledged write, and the injected faults on the history's
//! clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::history::{Func, Meta, Op, Outcome};

/// One injected fault, as `scripts/chaos/run.sh` records it (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub fault: String,
    /// Nodes it hit.
    #[serde(default)]
    pub nodes: Vec<u64>,
    pub start_unix_ms: u64,
    pub healed_unix_ms: Option<u64>,
    /// Milliseconds from the fault until a leader other than the one hit was reported
    /// (faults of the leader).
    #[serde(default)]
    pub new_leader_ms: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub unknown: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub per_op: BTreeMap<&'static str, Counts>,
    pub total: Counts,
    /// Share of operations answered ok.
    pub availability: f64,
    /// The longest time (ms) without any acknowledged write, inside the run.
    pub longest_write_gap_ms: u64,
    pub faults: Vec<Fault>,
}

pub fn summarize(ops: &[Op], faults: Vec<Fault>) -> Summary {
    let mut s = Summary {
        faults,
        ..Summary::default()
    };
    let mut write_acks: Vec<u64> = vec![0];
    let mut end = 0;
    for o in ops {
        let c = s.per_op.entry(o.f.name()).or_default();
        for c in [c, &mut s.total] {
            match o.outcome {
                Outcome::Ok(_) => c.ok += 1,
                Outcome::Fail => c.fail += 1,
                Outcome::Unknown => c.unknown += 1,
            }
        }
        end = end.max(o.ret_ns.unwrap_or(o.call_ns));
        if matches!(o.outcome, Outcome::Ok(_)) && o.f.is_write() {
            write_acks.extend(o.ret_ns);
        }
    }
    write_acks.push(end);
    write_acks.sort_unstable();
    s.longest_write_gap_ms = write_acks
        .windows(2)
        .map(|w| (w[1] - w[0]) / 1_000_000)
        .max()
        .unwrap_or(0);
    let n = s.total.ok + s.total.fail + s.total.unknown;
    s.availability = if n > 0 {
        s.total.ok as f64 / n as f64
    } else {
        0.0
    };
    s
}

/// The summary as text (a Markdown table of operations, then the faults).
pub fn render(meta: &Meta, s: &Summary) -> String {
    let mut t = String::from("| operation | ok | failed | unknown |\n|---|---:|---:|---:|\n");
    let row =
        |name: &str, c: &Counts| format!("| {name} | {} | {} | {} |\n", c.ok, c.fail, c.unknown);
    for f in [
        Func::GkRotate,
        Func::GkRead,
        Func::AclSet,
        Func::AclRead,
        Func::Revoke,
        Func::RevRead,
        Func::Keyprov,
    ] {
        if let Some(c) = s.per_op.get(f.name()) {
            t += &row(f.name(), c);
        }
    }
    t += &row("**all**", &s.total);
    t += &format!(
        "\navailability (ok / all operations): {:.1} %; longest time without an acknowledged write: {:.1} s\n",
        s.availability * 100.0,
        s.longest_write_gap_ms as f64 / 1000.0
    );
    if !s.faults.is_empty() {
        t += "\n| at (s) | fault | nodes | healed after (s) | new leader after (s) |\n|---:|---|---|---:|---:|\n";
        for f in &s.faults {
            let at = f.start_unix_ms.saturating_sub(meta.start_unix_ms) as f64 / 1000.0;
            let healed = f.healed_unix_ms.map_or("-".into(), |h| {
                format!("{:.1}", h.saturating_sub(f.start_unix_ms) as f64 / 1000.0)
            });
            let leader = f
                .new_leader_ms
                .map_or("-".into(), |l| format!("{:.1}", l as f64 / 1000.0));
            let nodes: Vec<String> = f.nodes.iter().map(u64::to_string).collect();
            t += &format!(
                "| {at:.1} | {} | {} | {healed} | {leader} |\n",
                f.fault,
                nodes.join(", ")
            );
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(f: Func, call: u64, ret: Option<u64>, outcome: Outcome) -> Op {
        Op {
            process: 0,
            f,
            key: "k".into(),
            input: serde_json::Value::Null,
            outcome,
            call_ns: call,
            ret_ns: ret,
            node: 1,
        }
    }

    #[test]
    fn counts_availability_and_the_longest_write_gap() {
        let ms = 1_000_000;
        let ok = || Outcome::Ok(serde_json::Value::Null);
        let ops = [
            op(Func::Revoke, 0, Some(100 * ms), ok()),
            op(Func::RevRead, 0, Some(200 * ms), ok()),
            op(Func::AclSet, 150 * ms, None, Outcome::Unknown),
            op(Func::AclSet, 200 * ms, Some(2_100 * ms), ok()),
            op(Func::Revoke, 2_200 * ms, Some(2_500 * ms), Outcome::Fail),
        ];
        let s = summarize(&ops, vec![]);
        assert_eq!(
            s.total,
            Counts {
                ok: 3,
                fail: 1,
                unknown: 1
            }
        );
        assert_eq!(
            s.per_op["acl_set"],
            Counts {
                ok: 1,
                fail: 0,
                unknown: 1
            }
        );
        assert_eq!(s.availability, 0.6);
        assert_eq!(s.longest_write_gap_ms, 2_000);
        let text = render(&Meta::default(), &s);
        assert!(text.contains("| revoke | 1 | 1 | 0 |"), "{text}");
        assert!(
            text.contains("availability (ok / all operations): 60.0 %"),
            "{text}"
        );
    }
}
