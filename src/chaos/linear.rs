//! Linearizability of one key's operations: the Wing–Gong search with Lowe's memoisation of
//! (linearized set, state), as Porcupine implements it. The caller partitions a history per key
//! first (Porcupine's P-compositionality: a history is linearizable iff each key's is), so each
//! search is small.
//!
//! Models ([`Action`]): a register (`Put` / `Get` of a value; ACL entries, revocations as a
//! per-identity flag) and a counter bumped by one per write (`Bump`; a group's current version:
//! a rotation answered with version n needs the state n − 1). An operation without a return
//! time (outcome unknown) may be linearized at any point after its call — including after
//! everything else, which is the same as never having taken effect.

use std::collections::HashSet;

/// What one operation did to, or saw of, the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Register write: the state becomes the value.
    Put(String),
    /// Register read that saw the value.
    Get(String),
    /// Counter increment; `Some(n)`: answered with the new value n.
    Bump(Option<u64>),
}

/// One operation on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinOp {
    pub call: u64,
    /// `None`: unknown outcome (returns after everything).
    pub ret: Option<u64>,
    pub action: Action,
}

/// The answer of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order exists; the longest prefix of operations (by index) the search managed to
    /// linearize, to help reading the failure.
    NotLinearizable {
        longest: Vec<usize>,
    },
    /// The search stopped after its step budget.
    Inconclusive,
}

fn step(state: &str, a: &Action) -> Option<String> {
    match a {
        Action::Put(v) => Some(v.clone()),
        Action::Get(v) => (v == state).then(|| state.to_owned()),
        Action::Bump(answer) => {
            let n: u64 = state.parse().ok()?;
            match answer {
                Some(m) if *m != n + 1 => None,
                _ => Some((n + 1).to_string()),
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Entry {
    op: usize,
    is_call: bool,
    /// Index of the matching entry (return for a call, call for a return).
    matching: usize,
    prev: usize,
    next: usize,
}

/// Searches for a linearization of `ops` starting from `init`, giving up after `budget`
/// steps.
pub fn check(ops: &[LinOp], init: &str, budget: u64) -> Verdict {
    let n = ops.len();
    if n == 0 {
        return Verdict::Linearizable;
    }
    // Entries in time order; at equal times calls come first (the operations overlap).
    // Unknown returns come after everything.
    let mut order: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        order.push((o.call, 0, i, true));
        match o.ret {
            Some(r) => order.push((r.max(o.call), 1, i, false)),
            None => order.push((u64::MAX, 1, i, false)),
        }
    }
    order.sort();
    // Node 0 is the list head; entries are 1..=2n.
    let mut list: Vec<Entry> = Vec::with_capacity(2 * n + 1);
    list.push(Entry {
        op: usize::MAX,
        is_call: false,
        matching: 0,
        prev: 0,
        next: 1,
    });
    let mut call_at = vec![0usize; n];
    let mut ret_at = vec![0usize; n];
    for (k, &(_, _, op, is_call)) in order.iter().enumerate() {
        let idx = k + 1;
        if is_call {
            call_at[op] = idx;
        } else {
            ret_at[op] = idx;
        }
        list.push(Entry {
            op,
            is_call,
            matching: 0,
            prev: k,
            next: if idx == 2 * n { usize::MAX } else { idx + 1 },
        });
    }
    for i in 0..n {
        list[call_at[i]].matching = ret_at[i];
        list[ret_at[i]].matching = call_at[i];
    }

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut state = init.to_owned();
    let mut cache: HashSet<(Vec<u64>, String)> = HashSet::new();
    let mut calls: Vec<(usize, String)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut entry = list[0].next;
    let mut steps = 0u64;

    // Unlinks a call entry and its return.
    fn lift(list: &mut [Entry], e: usize) {
        let (p, nx) = (list[e].prev, list[e].next);
        list[p].next = nx;
        if nx != usize::MAX {
            list[nx].prev = p;
        }
        let m = list[e].matching;
        let (p, nx) = (list[m].prev, list[m].next);
        list[p].next = nx;
        if nx != usize::MAX {
            list[nx].prev = p;
        }
    }
    // Links them back (reverse order of lift).
    fn unlift(list: &mut [Entry], e: usize) {
        let m = list[e].matching;
        let (p, nx) = (list[m].prev, list[m].next);
        list[p].next = m;
        if nx != usize::MAX {
            list[nx].prev = m;
        }
        let (p, nx) = (list[e].prev, list[e].next);
        list[p].next = e;
        if nx != usize::MAX {
            list[nx].prev = e;
        }
    }

    while list[0].next != usize::MAX {
        steps += 1;
        if steps > budget {
            return Verdict::Inconclusive;
        }
        if entry == usize::MAX {
            // Cannot happen: a call is always followed by its own return.
            return Verdict::Inconclusive;
        }
        let e = list[entry];
        if e.is_call {
            if let Some(next_state) = step(&state, &ops[e.op].action) {
                let mut lin = linearized.clone();
                lin[e.op / 64] |= 1 << (e.op % 64);
                if cache.insert((lin.clone(), next_state.clone())) {
                    calls.push((entry, std::mem::replace(&mut state, next_state)));
                    linearized = lin;
                    lift(&mut list, entry);
                    entry = list[0].next;
                    if calls.len() > longest.len() {
                        longest = calls.iter().map(|(c, _)| list[*c].op).collect();
                    }
                    continue;
                }
            }
            entry = e.next;
        } else {
            // A return whose call is not linearized yet: undo the last choice.
            let Some((c, old)) = calls.pop() else {
                longest.sort_unstable();
                return Verdict::NotLinearizable { longest };
            };
            state = old;
            let op = list[c].op;
            linearized[op / 64] &= !(1 << (op % 64));
            unlift(&mut list, c);
            entry = list[c].next;
        }
    }
    Verdict::Linearizable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call: u64, ret: Option<u64>, action: Action) -> LinOp {
        LinOp { call, ret, action }
    }
    fn put(v: &str) -> Action {
        Action::Put(v.into())
    }
    fn get(v: &str) -> Action {
        Action::Get(v.into())
    }
    const B: u64 = 1_000_000;

    #[test]
    fn register_orders() {
        // Sequential: write a, read a, write b, read b.
        let ok = [
            op(0, Some(1), put("a")),
            op(2, Some(3), get("a")),
            op(4, Some(5), put("b")),
            op(6, Some(7), get("b")),
        ];
        assert_eq!(check(&ok, "0", B), Verdict::Linearizable);
        // A stale read: b was written and acknowledged before the read began.
        let stale = [
            op(0, Some(1), put("a")),
            op(2, Some(3), put("b")),
            op(4, Some(5), get("a")),
        ];
        assert!(matches!(
            check(&stale, "0", B),
            Verdict::NotLinearizable { .. }
        ));
        // The same read overlapping the second write may see either.
        let concurrent = [
            op(0, Some(1), put("a")),
            op(2, Some(6), put("b")),
            op(4, Some(5), get("a")),
            op(7, Some(8), get("b")),
        ];
        assert_eq!(check(&concurrent, "0", B), Verdict::Linearizable);
        // A read of a value never written.
        assert!(matches!(
            check(&[op(0, Some(1), get("x"))], "0", B),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn unknown_writes_may_apply_late_or_never() {
        // Unknown write of b, then reads a (it has not applied yet), then b (it has).
        let late = [
            op(0, Some(1), put("a")),
            op(2, None, put("b")),
            op(3, Some(4), get("a")),
            op(5, Some(6), get("b")),
        ];
        assert_eq!(check(&late, "0", B), Verdict::Linearizable);
        // Never applied.
        let never = [
            op(0, Some(1), put("a")),
            op(2, None, put("b")),
            op(9, Some(10), get("a")),
        ];
        assert_eq!(check(&never, "0", B), Verdict::Linearizable);
        // But once seen it cannot be unseen.
        let flicker = [
            op(0, Some(1), put("a")),
            op(2, None, put("b")),
            op(3, Some(4), get("b")),
            op(5, Some(6), get("a")),
        ];
        assert!(matches!(
            check(&flicker, "0", B),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn counter_versions() {
        let ok = [
            op(0, Some(1), Action::Bump(Some(1))),
            op(2, None, Action::Bump(None)),
            op(3, Some(4), Action::Bump(Some(3))),
            op(5, Some(6), get("3")),
        ];
        assert_eq!(check(&ok, "0", B), Verdict::Linearizable);
        // Two rotations both answered version 1.
        let twice = [
            op(0, Some(1), Action::Bump(Some(1))),
            op(2, Some(3), Action::Bump(Some(1))),
        ];
        assert!(matches!(
            check(&twice, "0", B),
            Verdict::NotLinearizable { .. }
        ));
        // An acknowledged rotation lost: a later read sees the older version.
        let lost = [
            op(0, Some(1), Action::Bump(Some(1))),
            op(2, Some(3), Action::Bump(Some(2))),
            op(4, Some(5), get("1")),
        ];
        assert!(matches!(
            check(&lost, "0", B),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn overlapping_operations_and_the_budget() {
        // 14 concurrent writes of distinct values, then a read of an early one: it must be
        // ordered last among them.
        let mut ops: Vec<LinOp> = (0..14)
            .map(|i| op(i, Some(100 + i), put(&i.to_string())))
            .collect();
        ops.push(op(500, Some(501), get("3")));
        assert_eq!(check(&ops, "x", 50_000_000), Verdict::Linearizable);
        assert_eq!(check(&ops, "x", 10), Verdict::Inconclusive);
        ops.push(op(600, Some(601), get("4")));
        assert!(matches!(
            check(&ops, "x", 50_000_000),
            Verdict::NotLinearizable { .. }
        ));
    }
}
