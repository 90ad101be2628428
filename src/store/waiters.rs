//! The requests a [`KeyStore`](super::KeyStore) holds while Raft works on them: proposals
//! waiting for their entry to be applied, and reads waiting for a linearizable read point.
//! Plain bookkeeping, no I/O and no clock (deadlines are in ticks), tested on its own.
//!
//! Reads are batched (ARCHITECTURE §5): every read that arrives between two Ready rounds
//! shares one ReadIndex request; once Raft answers with a read index, the batch is released
//! when the state machine has applied up to it.
//!
//! ReadIndex contexts are unique in the cluster: raft-rs keys pending reads by context on the
//! leader, where a follower's forwarded read and the leader's own meet, and silently drops a
//! second read with a context already pending. A context is this node's id, a random nonce
//! drawn when the key store starts, and a counter ([`ReadContext`]), so neither another node
//! nor this node before a restart can issue the same bytes.

use std::collections::{BTreeMap, HashMap};

use tokio::sync::oneshot;

use super::StoreError;
use crate::state::Outcome;

/// The answer to a proposal.
pub type WriteReply = oneshot::Sender<Result<Outcome, StoreError>>;
/// The answer to a read barrier.
pub type ReadReply = oneshot::Sender<Result<(), StoreError>>;

struct Waiter<R> {
    reply: R,
    deadline: u64,
}

/// Length of an encoded [`ReadContext`].
const READ_CONTEXT_LEN: usize = 24;

/// A ReadIndex context: `node ‖ nonce ‖ counter`, 8 bytes each, big endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadContext {
    pub node: u64,
    pub nonce: u64,
    pub counter: u64,
}

impl ReadContext {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(READ_CONTEXT_LEN);
        v.extend_from_slice(&self.node.to_be_bytes());
        v.extend_from_slice(&self.nonce.to_be_bytes());
        v.extend_from_slice(&self.counter.to_be_bytes());
        v
    }

    /// `None` for anything that is not exactly a context (raft-rs echoes it back; only this
    /// node's own contexts come back here, but the bytes are not trusted).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let b: &[u8; READ_CONTEXT_LEN] = bytes.try_into().ok()?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_be_bytes(w)
        };
        Some(Self {
            node: word(0),
            nonce: word(1),
            counter: word(2),
        })
    }
}

/// Everything waiting, with deadlines in ticks.
pub struct Waiters {
    writes: HashMap<u64, Waiter<WriteReply>>,
    /// Reads not yet sent to Raft.
    queued: Vec<Waiter<ReadReply>>,
    /// Read batches sent to Raft, by ReadIndex context.
    issued: HashMap<u64, Vec<Waiter<ReadReply>>>,
    /// Read batches with a read index, waiting for apply, by that index.
    ready: BTreeMap<u64, Vec<Waiter<ReadReply>>>,
    /// This node's id and start nonce: the first two words of every context it issues.
    node: u64,
    nonce: u64,
    next_ctx: u64,
}

impl Waiters {
    /// The waiters of node `node`; `nonce` is drawn at random when the key store starts.
    pub fn new(node: u64, nonce: u64) -> Self {
        Self {
            writes: HashMap::new(),
            queued: Vec::new(),
            issued: HashMap::new(),
            ready: BTreeMap::new(),
            node,
            nonce,
            next_ctx: 0,
        }
    }

    pub fn add_write(&mut self, request_id: u64, reply: WriteReply, deadline: u64) {
        self.writes.insert(request_id, Waiter { reply, deadline });
    }

    /// Answers the proposal `request_id`, if it is still waiting.
    pub fn finish_write(&mut self, request_id: u64, res: Result<Outcome, StoreError>) {
        if let Some(w) = self.writes.remove(&request_id) {
            let _ = w.reply.send(res);
        }
    }

    pub fn queue_read(&mut self, reply: ReadReply, deadline: u64) {
        self.queued.push(Waiter { reply, deadline });
    }

    /// Takes the queued reads as one batch and returns its ReadIndex context, or `None`
    /// when nothing is queued.
    pub fn issue_reads(&mut self) -> Option<Vec<u8>> {
        if self.queued.is_empty() {
            return None;
        }
        self.next_ctx += 1;
        let batch = std::mem::take(&mut self.queued);
        self.issued.insert(self.next_ctx, batch);
        let ctx = ReadContext {
            node: self.node,
            nonce: self.nonce,
            counter: self.next_ctx,
        };
        Some(ctx.encode())
    }

    /// Fails every queued (not yet issued) read.
    pub fn fail_queued_reads(&mut self, err: &StoreError) {
        for w in self.queued.drain(..) {
            let _ = w.reply.send(Err(err.clone()));
        }
    }

    /// Raft answered the batch `ctx` with read index `index`.
    pub fn read_index(&mut self, ctx: &[u8], index: u64) {
        let Some(ctx) = ReadContext::decode(ctx) else {
            return;
        };
        if (ctx.node, ctx.nonce) != (self.node, self.nonce) {
            return;
        }
        if let Some(batch) = self.issued.remove(&ctx.counter) {
            self.ready.entry(index).or_default().extend(batch);
        }
    }

    /// Releases every read whose read index is applied.
    pub fn applied(&mut self, applied: u64) {
        let later = self.ready.split_off(&(applied + 1));
        for (_, batch) in std::mem::replace(&mut self.ready, later) {
            for w in batch {
                let _ = w.reply.send(Ok(()));
            }
        }
    }

    /// Fails everything whose deadline has passed at tick `now`; returns the request ids of
    /// the proposals it failed, for the caller to forget in Raft too.
    #[must_use]
    pub fn expire(&mut self, now: u64) -> Vec<u64> {
        let expired: Vec<u64> = self
            .writes
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            self.finish_write(*id, Err(StoreError::Timeout));
        }
        let expire_reads = |batch: &mut Vec<Waiter<ReadReply>>| {
            let (old, keep): (Vec<_>, Vec<_>) = std::mem::take(batch)
                .into_iter()
                .partition(|w| w.deadline <= now);
            *batch = keep;
            for w in old {
                let _ = w.reply.send(Err(StoreError::Timeout));
            }
        };
        expire_reads(&mut self.queued);
        for batch in self.issued.values_mut().chain(self.ready.values_mut()) {
            expire_reads(batch);
        }
        self.issued.retain(|_, b| !b.is_empty());
        self.ready.retain(|_, b| !b.is_empty());
        expired
    }

    /// How many requests are waiting (for metrics).
    pub fn waiting(&self) -> usize {
        self.writes.len()
            + self.queued.len()
            + self.issued.values().map(Vec::len).sum::<usize>()
            + self.ready.values().map(Vec::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(w: &mut Waiters, deadline: u64) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        w.queue_read(tx, deadline);
        rx
    }

    #[test]
    fn reads_are_batched_and_released_once_applied() {
        let mut w = Waiters::new(1, 7);
        let mut a = read(&mut w, 10);
        let mut b = read(&mut w, 10);
        let ctx = w.issue_reads().expect("a batch");
        assert!(w.issue_reads().is_none(), "one batch for both reads");
        w.read_index(&ctx, 7);
        w.applied(6);
        assert!(
            a.try_recv().is_err() && b.try_recv().is_err(),
            "not applied yet"
        );
        w.applied(7);
        assert_eq!(a.try_recv().expect("answered"), Ok(()));
        assert_eq!(b.try_recv().expect("answered"), Ok(()));
        assert_eq!(w.waiting(), 0);
    }

    #[test]
    fn unanswered_reads_and_writes_time_out() {
        let mut w = Waiters::new(1, 7);
        let mut r = read(&mut w, 5);
        let _ = w.issue_reads();
        let (tx, mut wr) = oneshot::channel();
        w.add_write(9, tx, 5);
        assert!(w.expire(4).is_empty());
        assert!(r.try_recv().is_err() && wr.try_recv().is_err());
        assert_eq!(
            w.expire(5),
            vec![9],
            "the timed-out proposal, to forget in Raft"
        );
        assert_eq!(r.try_recv().expect("answered"), Err(StoreError::Timeout));
        assert_eq!(wr.try_recv().expect("answered"), Err(StoreError::Timeout));
        assert_eq!(w.waiting(), 0);
    }

    #[test]
    fn a_write_is_answered_once_with_its_outcome() {
        let mut w = Waiters::new(1, 7);
        let (tx, mut rx) = oneshot::channel();
        w.add_write(3, tx, 100);
        w.finish_write(4, Ok(Outcome::Applied));
        assert!(rx.try_recv().is_err(), "another request's outcome");
        w.finish_write(3, Ok(Outcome::Rejected("no".into())));
        assert_eq!(
            rx.try_recv().expect("answered"),
            Ok(Outcome::Rejected("no".into()))
        );
    }

    #[test]
    fn a_foreign_read_context_is_ignored() {
        let mut w = Waiters::new(1, 7);
        let mut r = read(&mut w, 10);
        let _ = w.issue_reads();
        w.read_index(b"xyz", 1);
        w.read_index(&99u64.to_be_bytes(), 1);
        let other_node = ReadContext {
            node: 2,
            nonce: 7,
            counter: 1,
        };
        let before_restart = ReadContext {
            node: 1,
            nonce: 8,
            counter: 1,
        };
        w.read_index(&other_node.encode(), 1);
        w.read_index(&before_restart.encode(), 1);
        w.applied(5);
        assert!(r.try_recv().is_err());
    }

    #[test]
    fn contexts_of_two_nodes_or_two_starts_never_collide() {
        let mut seen = std::collections::HashSet::new();
        for (node, nonce) in [(1, 5), (2, 5), (1, 6)] {
            let mut w = Waiters::new(node, nonce);
            for _ in 0..100 {
                let _rx = read(&mut w, 10);
                let ctx = w.issue_reads().expect("a batch");
                assert_eq!(
                    ReadContext::decode(&ctx).map(|c| (c.node, c.nonce)),
                    Some((node, nonce))
                );
                assert!(seen.insert(ctx), "a context was issued twice");
            }
        }
    }
}

/// Item 6 of issue 10: a follower's read batch and the leader's own, issued in the same
/// round, must both be answered (raft-rs drops a second pending ReadIndex with the same
/// context).
#[cfg(test)]
mod cluster_contexts {
    use super::*;
    use crate::raft::testnet::{mem_drivers, Net};

    #[test]
    fn a_followers_read_and_the_leaders_read_are_both_answered() {
        let mut net = Net::new(mem_drivers(3));
        net.elect(1);
        net.tick_heartbeat();
        let mut waiters: Vec<Waiters> = vec![Waiters::new(1, 0x5eed), Waiters::new(2, 0xcafe)];
        let mut replies = Vec::new();
        for (w, id) in waiters.iter_mut().zip([1u64, 2]) {
            let (tx, rx) = oneshot::channel();
            w.queue_read(tx, 100);
            replies.push(rx);
            let ctx = w.issue_reads().expect("a batch");
            net.driver(id).read_index(ctx).unwrap();
        }
        net.settle();
        net.tick_heartbeat();
        for (w, id) in waiters.iter_mut().zip([1u64, 2]) {
            for rs in net.reads.get(&id).into_iter().flatten() {
                w.read_index(&rs.request_ctx, rs.index);
            }
            w.applied(net.driver(id).applied_index());
        }
        for (rx, id) in replies.iter_mut().zip([1u64, 2]) {
            assert_eq!(
                rx.try_recv(),
                Ok(Ok(())),
                "the read on node {id} is answered"
            );
        }
    }
}
