//! Membership steps (ARCHITECTURE §5): a learner is added with a simple change (it does not
//! vote); a voter is promoted or removed with an explicit ConfChangeV2 that enters joint
//! consensus, which is left with its own empty change. [`build`] checks a step against the
//! current configuration and builds the change; pure, so every refusal is unit-tested.

use raft::eraftpb::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
};
use serde::Serialize;

use super::StoreError;

/// A membership change step (`sealkm cluster join|leave` sequences them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MemberChange {
    /// Add a non-voting learner that catches up before it is promoted.
    AddLearner { id: u64, peer: String },
    /// Make a learner a voter (enters joint consensus; leave it with `LeaveJoint`).
    Promote { id: u64 },
    /// Remove a node (enters joint consensus when it is a voter).
    Remove { id: u64 },
    /// Leave joint consensus.
    LeaveJoint,
}

/// The change for `change` under configuration `cs`, with the peer addresses it adds.
pub fn build(
    cs: &ConfState,
    change: MemberChange,
) -> Result<(ConfChangeV2, Vec<(u64, String)>), StoreError> {
    let joint = !cs.voters_outgoing.is_empty();
    let single = |t: ConfChangeType, id: u64| {
        let mut s = ConfChangeSingle::default();
        s.set_change_type(t);
        s.node_id = id;
        s
    };
    let mut cc = ConfChangeV2::default();
    cc.set_transition(ConfChangeTransition::Explicit);
    let mut addrs = Vec::new();
    match change {
        MemberChange::LeaveJoint => {
            if !joint {
                return Err(StoreError::Invalid("not in joint consensus".into()));
            }
            // An empty V2 change leaves the joint configuration.
            cc = ConfChangeV2::default();
        }
        _ if joint => {
            return Err(StoreError::Invalid(
                "in joint consensus: leave it first".into(),
            ))
        }
        MemberChange::AddLearner { id, peer } => {
            if id == 0 || cs.voters.contains(&id) || cs.learners.contains(&id) {
                return Err(StoreError::Invalid(format!(
                    "node {id} is already a member"
                )));
            }
            addrs.push((id, peer));
            // A learner does not vote: a simple change, no joint consensus needed.
            cc.set_transition(ConfChangeTransition::Auto);
            cc.set_changes(vec![single(ConfChangeType::AddLearnerNode, id)].into());
        }
        MemberChange::Promote { id } => {
            if !cs.learners.contains(&id) {
                return Err(StoreError::Invalid(format!("node {id} is not a learner")));
            }
            cc.set_changes(vec![single(ConfChangeType::AddNode, id)].into());
        }
        MemberChange::Remove { id } => {
            if !cs.voters.contains(&id) && !cs.learners.contains(&id) {
                return Err(StoreError::Invalid(format!("node {id} is not a member")));
            }
            if cs.voters == [id] {
                return Err(StoreError::Invalid("cannot remove the last voter".into()));
            }
            cc.set_changes(vec![single(ConfChangeType::RemoveNode, id)].into());
        }
    }
    Ok((cc, addrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(voters: &[u64], learners: &[u64], outgoing: &[u64]) -> ConfState {
        ConfState {
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            voters_outgoing: outgoing.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn a_learner_is_a_simple_change_carrying_its_address() {
        let (cc, addrs) = build(
            &cs(&[1, 2, 3], &[], &[]),
            MemberChange::AddLearner {
                id: 4,
                peer: "127.0.0.1:9004".into(),
            },
        )
        .unwrap();
        assert_eq!(cc.get_transition(), ConfChangeTransition::Auto);
        assert_eq!(cc.changes.len(), 1);
        assert_eq!(
            cc.changes[0].get_change_type(),
            ConfChangeType::AddLearnerNode
        );
        assert_eq!(addrs, vec![(4, "127.0.0.1:9004".to_string())]);
    }

    #[test]
    fn voter_changes_enter_joint_consensus_explicitly_and_leave_it_with_an_empty_change() {
        let (cc, _) = build(&cs(&[1, 2, 3], &[4], &[]), MemberChange::Promote { id: 4 }).unwrap();
        assert_eq!(cc.get_transition(), ConfChangeTransition::Explicit);
        assert_eq!(cc.changes[0].get_change_type(), ConfChangeType::AddNode);
        let (cc, _) = build(&cs(&[1, 2, 3], &[], &[]), MemberChange::Remove { id: 2 }).unwrap();
        assert_eq!(cc.get_transition(), ConfChangeTransition::Explicit);
        let (leave, _) = build(&cs(&[1, 3], &[], &[1, 2, 3]), MemberChange::LeaveJoint).unwrap();
        assert!(leave.changes.is_empty());
    }

    #[test]
    fn refusals() {
        let three = cs(&[1, 2, 3], &[], &[]);
        let bad = |c: &ConfState, m| build(c, m).is_err();
        assert!(bad(
            &three,
            MemberChange::AddLearner {
                id: 2,
                peer: "x:1".into()
            }
        ));
        assert!(bad(
            &three,
            MemberChange::AddLearner {
                id: 0,
                peer: "x:1".into()
            }
        ));
        assert!(
            bad(&three, MemberChange::Promote { id: 3 }),
            "not a learner"
        );
        assert!(bad(&three, MemberChange::Remove { id: 9 }), "not a member");
        assert!(bad(&three, MemberChange::LeaveJoint), "not joint");
        assert!(
            bad(&cs(&[1], &[], &[]), MemberChange::Remove { id: 1 }),
            "last voter"
        );
        let joint = cs(&[1, 3], &[], &[1, 2, 3]);
        assert!(bad(&joint, MemberChange::Promote { id: 4 }), "joint first");
        assert!(bad(&joint, MemberChange::Remove { id: 3 }), "joint first");
    }
}
