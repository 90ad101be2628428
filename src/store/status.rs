//! [`StoreStatus`]: what a node knows of the cluster, as `sealkm cluster status`, `/readyz`
//! and `/metrics` show it; refreshed by the key store after every Ready round.

use raft::StateRole;
use serde::Serialize;

use super::applier::StateApplier;
use crate::raft::{EngineLogStore, LogStore, RaftDriver};

/// This node's part in the cluster, as the status shows it (`"leader"`, `"follower"`,
/// `"candidate"`, `"learner"` in JSON, unchanged from when it was a string). Decide with
/// [`NodeRole::is_leader`] or a `match`, never by comparing text.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    Leader,
    #[default]
    Follower,
    /// Candidate or pre-candidate: an election is under way.
    Candidate,
    /// A non-voting member catching up.
    Learner,
}

impl NodeRole {
    /// The role of a node in raft-rs state `role`, `learner` when it is a learner of the
    /// current configuration.
    pub fn of(role: StateRole, learner: bool) -> Self {
        match role {
            StateRole::Leader => Self::Leader,
            StateRole::Candidate | StateRole::PreCandidate => Self::Candidate,
            StateRole::Follower if learner => Self::Learner,
            StateRole::Follower => Self::Follower,
        }
    }

    pub fn is_leader(self) -> bool {
        self == Self::Leader
    }

    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Follower => "follower",
            Self::Candidate => "candidate",
            Self::Learner => "learner",
        }
    }
}

impl std::fmt::Display for NodeRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    pub role: NodeRole,
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
    /// Set while the Raft log cannot be written for lack of space, or a disk is below its
    /// free-space reserve (writes are refused).
    #[serde(default)]
    pub disk_full: Option<String>,
}

/// What the actors that follow the key store wait for ([`super::KeyStoreHandle::watch`]): the
/// applied index, this node's role and the term. Published after a Ready round only when one
/// of them changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreProgress {
    /// The index of the last entry applied to the state machine.
    pub applied: u64,
    pub role: NodeRole,
    pub term: u64,
}

impl StoreProgress {
    /// The progress part of a status.
    pub fn of(s: &StoreStatus) -> Self {
        Self {
            applied: s.applied,
            role: s.role,
            term: s.term,
        }
    }
}

/// The status of `d`; `peers` are the transport's peers, `waiting` the requests held.
pub fn of(
    d: &RaftDriver<EngineLogStore, StateApplier>,
    peers: &[u64],
    waiting: usize,
) -> StoreStatus {
    let cs = d.conf_state();
    let role = NodeRole::of(d.role(), cs.learners.contains(&d.id()));
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
        role,
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
        disk_full: d.disk_full().or(d.low_space()).map(str::to_owned),
    }
}

fn sorted(ids: &[u64]) -> Vec<u64> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_is_typed_and_its_json_name_unchanged() {
        let s = StoreStatus {
            role: NodeRole::of(StateRole::Follower, true),
            ..StoreStatus::default()
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["role"], "learner");
        for (role, name) in [
            (NodeRole::of(StateRole::Leader, false), "leader"),
            (NodeRole::of(StateRole::PreCandidate, false), "candidate"),
            (NodeRole::of(StateRole::Follower, false), "follower"),
        ] {
            assert_eq!(serde_json::to_value(role).unwrap(), name);
            assert_eq!(
                serde_json::from_value::<NodeRole>(name.into()).unwrap(),
                role
            );
        }
        assert!(NodeRole::Leader.is_leader() && !NodeRole::Learner.is_leader());
    }
}
