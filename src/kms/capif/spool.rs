//! The invocation log spool, pure (TS 23.222 8.19 NOTE 1 allows batched, asynchronous logs):
//! entries in arrival order, at most `max`; a push into a full spool drops the oldest entry and
//! counts it. Batches are per invoker (a TS 29.222 `InvocationLog` names one `apiInvokerId`):
//! the invoker of the oldest entry, up to `batch` of its entries, oldest first. The file that
//! makes it durable is the shell's (`actors::capif`).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::Invocation;

/// One spooled invocation and its sequence number (unique within a node's spool).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolEntry {
    pub seq: u64,
    pub invocation: Invocation,
}

#[derive(Debug)]
pub struct Spool {
    entries: VecDeque<SpoolEntry>,
    max: usize,
    next_seq: u64,
    dropped: u64,
}

impl Spool {
    /// A spool holding `entries` (as read back from its file; the oldest beyond `max` dropped
    /// and counted).
    pub fn new(max: usize, entries: Vec<SpoolEntry>) -> Self {
        let next_seq = entries.iter().map(|e| e.seq + 1).max().unwrap_or(0);
        let mut s = Spool {
            entries: VecDeque::new(),
            max: max.max(1),
            next_seq,
            dropped: 0,
        };
        for e in entries {
            s.entries.push_back(e);
            s.trim();
        }
        s
    }

    fn trim(&mut self) -> usize {
        let mut n = 0;
        while self.entries.len() > self.max {
            self.entries.pop_front();
            self.dropped += 1;
            n += 1;
        }
        n
    }

    /// Adds an invocation; returns the entry and how many old entries it pushed out.
    pub fn push(&mut self, invocation: Invocation) -> (SpoolEntry, usize) {
        let e = SpoolEntry {
            seq: self.next_seq,
            invocation,
        };
        self.next_seq += 1;
        self.entries.push_back(e.clone());
        let dropped = self.trim();
        (e, dropped)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The sequence number the next pushed entry gets: every entry pushed so far is below it.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries dropped because the spool was full, since this spool was made.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn entries(&self) -> impl Iterator<Item = &SpoolEntry> {
        self.entries.iter()
    }

    /// Whether some invoker has at least `batch` entries (a batch is due before the timer).
    pub fn has_full_batch(&self, batch: usize) -> bool {
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        self.entries.iter().any(|e| {
            let c = counts.entry(&e.invocation.api_invoker_id).or_default();
            *c += 1;
            *c >= batch
        })
    }

    /// The next batch among the entries `ready` admits (the shell's: on disk, or their
    /// status final): the oldest such entry's invoker and up to `batch` of its ready entries.
    pub fn next_batch(
        &self,
        batch: usize,
        ready: impl Fn(&SpoolEntry) -> bool,
    ) -> Option<(String, Vec<SpoolEntry>)> {
        let first = self.entries.iter().find(|e| ready(e))?;
        let invoker = first.invocation.api_invoker_id.clone();
        let list = self
            .entries
            .iter()
            .filter(|e| e.invocation.api_invoker_id == invoker && ready(e))
            .take(batch.max(1))
            .cloned()
            .collect();
        Some((invoker, list))
    }

    /// Sets the status of entry `seq` (the answer actually sent differed from the one
    /// recorded); false if it is no longer spooled.
    pub fn amend(&mut self, seq: u64, result: u16) -> bool {
        match self.entries.iter_mut().find(|e| e.seq == seq) {
            Some(e) => {
                e.invocation.result = result;
                true
            }
            None => false,
        }
    }

    /// Removes the entries of a delivered batch.
    pub fn remove(&mut self, seqs: &[u64]) {
        self.entries.retain(|e| !seqs.contains(&e.seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kms::capif::test_invocation as inv;

    #[test]
    fn bounded_drops_oldest_and_counts() {
        let mut s = Spool::new(3, Vec::new());
        for w in ["a", "b", "c"] {
            assert_eq!(s.push(inv(w)).1, 0);
        }
        assert_eq!(s.push(inv("d")).1, 1);
        assert_eq!(s.dropped(), 1);
        let who: Vec<_> = s
            .entries()
            .map(|e| e.invocation.api_invoker_id.clone())
            .collect();
        assert_eq!(who, ["b", "c", "d"]);
    }

    #[test]
    fn batches_are_per_invoker_oldest_first() {
        let mut s = Spool::new(10, Vec::new());
        for w in ["a", "b", "a", "a", "b"] {
            s.push(inv(w));
        }
        assert!(s.has_full_batch(3));
        assert!(!s.has_full_batch(4));
        let all = |_: &SpoolEntry| true;
        let (who, batch) = s.next_batch(2, all).unwrap();
        assert_eq!(who, "a");
        assert_eq!(batch.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 2]);
        s.remove(&[0, 2]);
        let (who, batch) = s.next_batch(5, all).unwrap();
        assert_eq!((who.as_str(), batch.len()), ("b", 2));
        // Only ready entries go: left are 1 (b), 3 (a), 4 (b); with 1 not ready, the oldest
        // ready entry is a's, and with 3 not ready either, b's batch is 4 alone.
        let (who, batch) = s.next_batch(5, |e| e.seq != 1).unwrap();
        assert_eq!(who, "a");
        assert_eq!(batch.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
        let (who, batch) = s.next_batch(5, |e| e.seq == 4).unwrap();
        assert_eq!(who, "b");
        assert_eq!(batch.iter().map(|e| e.seq).collect::<Vec<_>>(), [4]);
        assert!(s.next_batch(5, |_| false).is_none());
    }

    #[test]
    fn an_entry_is_amended_while_spooled() {
        let mut s = Spool::new(10, Vec::new());
        let (e, _) = s.push(inv("a"));
        assert_eq!(e.invocation.result, 200);
        assert!(s.amend(e.seq, 503));
        assert_eq!(s.entries().next().unwrap().invocation.result, 503);
        s.remove(&[e.seq]);
        assert!(!s.amend(e.seq, 503));
    }

    #[test]
    fn reloaded_spool_continues_sequence_and_bound() {
        let mut a = Spool::new(10, Vec::new());
        for _ in 0..4 {
            a.push(inv("x"));
        }
        let saved: Vec<_> = a.entries().cloned().collect();
        let mut b = Spool::new(2, saved);
        assert_eq!((b.len(), b.dropped()), (2, 2));
        assert_eq!(b.push(inv("y")).0.seq, 4);
    }
}
