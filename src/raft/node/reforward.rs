//! Proposals lost with a leader, proposed again (issue 10, item 11). A write through a
//! follower is forwarded to the leader as a raft-rs `MsgProp`; if that leader dies before the
//! entry commits, nothing tells the follower, and its caller used to wait for its timeout
//! although a new leader was there within an election.
//!
//! Re-proposing must never apply one request twice (the commands are not idempotent), so a
//! proposal is proposed again only once it provably cannot commit any more:
//! - every outgoing `MsgProp` is stamped with the proposer's term `t` (raft-rs sends them with
//!   term 0, "local", which any node accepts and forwards at any term). Stamped, only the
//!   leader of exactly term `t` can append it: a node of a later term ignores it, a node of
//!   an earlier term drops it (it then knows no leader), and a follower never forwards it
//!   (the driver drops it, see [`RaftDriver::step`](super::RaftDriver::step)). So every copy
//!   of the entry that can ever exist has term `t`;
//! - terms never decrease along a log, so once this node has applied an entry of a term
//!   greater than `t`, every entry of term `t` that will ever be committed is committed and
//!   applied already. A proposal of term `t` not applied by then never will be: it is
//!   proposed again, under the current term, and the same rule then holds for the new copy.
//!
//! The caller's deadline still bounds everything: [`RaftDriver::forget`](super::RaftDriver::forget)
//! drops the proposal here too.

use std::collections::BTreeMap;

use raft::eraftpb::{Message, MessageType};

use super::{Applier, RaftDriver};
use crate::raft::storage::LogStore;

/// This node's forwarded proposals not yet applied, by request id: the term of the only leader that
/// can append them (`None` until the forwarding message is stamped) and the command's bytes.
pub(super) type Unconfirmed = BTreeMap<u64, (Option<u64>, Vec<u8>)>;

impl<S: LogStore, A: Applier> RaftDriver<S, A> {
    /// Records a proposal just handed to raft-rs and forwarded to a leader (the caller
    /// checks that this node does not lead). A leader's own proposal is not proposed again: its entry is lost only when this node loses the
    /// leadership, and its caller is answered by the timeout as before.
    pub(super) fn track_proposal(&mut self, request_id: u64, data: Vec<u8>) {
        self.unconfirmed.insert(request_id, (None, data));
    }

    /// Stamps the forwarded proposals among `messages` with this node's term, and records
    /// that term for the proposals they carry.
    pub(super) fn stamp_proposals(&mut self, messages: &mut [Message]) {
        let term = self.term();
        let mut any = false;
        for m in messages
            .iter_mut()
            .filter(|m| m.get_msg_type() == MessageType::MsgPropose)
        {
            m.term = term;
            any = true;
        }
        if any {
            for (sent, _) in self.unconfirmed.values_mut().filter(|(t, _)| t.is_none()) {
                *sent = Some(term);
            }
        }
    }

    /// A stamped proposal reaching a follower is dropped: raft-rs would forward it, and may
    /// only forward unstamped ones. (It cannot happen with one leader per term; a stale or
    /// forged message must not stop the node.)
    pub(super) fn misrouted_proposal(&self, msg: &Message) -> bool {
        msg.get_msg_type() == MessageType::MsgPropose && msg.term != 0 && !self.is_leader()
    }

    /// Proposes again every proposal that can no longer commit (see the module docs).
    pub(super) fn reforward(&mut self) {
        let applied_term = self.applied_term;
        let due: Vec<u64> = self
            .unconfirmed
            .iter()
            .filter(|(_, (t, _))| t.is_some_and(|t| t < applied_term))
            .map(|(rid, _)| *rid)
            .collect();
        for rid in due {
            let Some((term, data)) = self.unconfirmed.remove(&rid) else {
                continue;
            };
            if !self.pending.contains(&rid) {
                continue;
            }
            if self.propose(rid, data.clone()).is_err() {
                // No leader yet: try again after the next round.
                self.unconfirmed.insert(rid, (term, data));
            }
        }
    }
}
