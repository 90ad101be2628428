//! [`StoreStatus`]: what a node knows of the cluster, as `sealkm cluster status`, `/readyz`
//! and `/metrics` show it; refreshed by the key store after every Ready round.

use raft::StateRole;
use serde::Serialize;

use crate::raft::{EngineLogStore, LogStore, RaftDriver, StateApplier};

/// How far a peer's log matches the leader's.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PeerMatch {
    pub id: u64,
    pub matched: u64,
}

/// What this node knows of the cluster, refreshed after every round.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StoreStatus {
    pub id: u64,
    /// leader, follower, candidate, learner.
    pub role: String,
    pub leader_id: u64,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// Voters of the old configuration while in joint consensus.
    pub voters_outgoing: Vec<u64>,
    /// Leader only: how far each peer's log matches.
    pub matched: Vec<PeerMatch>,
    pub snapshot_index: u64,
    /// Synced raft-engine writes (one per group of proposals).
    pub fsyncs: u64,
    /// Microseconds spent in those synced writes.
    pub fsync_micros: u64,
    /// Requests waiting for Raft (proposals and reads).
    pub waiting: u64,
    /// Set once the store stopped after a fatal error.
    pub halted: Option<String>,
}

/// The status of `d`; `peers` are the transport's peers, `waiting` the requests held.
pub fn of(
    d: &RaftDriver<EngineLogStore, StateApplier>,
    peers: &[u64],
    waiting: usize,
) -> StoreStatus {
    let cs = d.conf_state();
    let role = match d.role() {
        StateRole::Leader => "leader",
        StateRole::Candidate | StateRole::PreCandidate => "candidate",
        StateRole::Follower if cs.learners.contains(&d.id()) => "learner",
        StateRole::Follower => "follower",
    };
    let matched = peers
        .iter()
        .copied()
        .filter_map(|id| {
            d.progress(id).map(|p| PeerMatch {
                id,
                matched: p.matched,
            })
        })
        .collect();
    StoreStatus {
        id: d.id(),
        role: role.into(),
        leader_id: d.leader_id(),
        term: d.term(),
        commit: d.commit_index(),
        applied: d.applied_index(),
        voters: sorted(&cs.voters),
        learners: sorted(&cs.learners),
        voters_outgoing: sorted(&cs.voters_outgoing),
        matched,
        snapshot_index: d.store().snapshot_metadata().index,
        fsyncs: d.store().synced_writes(),
        fsync_micros: d.store().sync_micros(),
        waiting: waiting as u64,
        halted: d.halted().map(str::to_owned),
    }
}

fn sorted(ids: &[u64]) -> Vec<u64> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v
}
