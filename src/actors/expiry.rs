//! The group key expiry sweeper: on the leader only, once a second, notes every group key
//! version whose expiry time has passed (`NoteGroupKeyExpired` through Raft), so subscribers
//! get one `group-key-expired` event per version. The decision is
//! `StateMachine::unnoted_expired_group_keys`; apply refuses a second note, so a new leader
//! that sweeps again, or two sweeps racing, never emit an event twice.

use std::sync::Arc;
use std::time::Duration;

use crate::node::KmsNode;

/// How often the leader looks for expired versions.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Runs until the process stops (spawn it on the node's actix system).
pub async fn run(node: Arc<KmsNode>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !node.store().status().role.is_leader() {
            continue;
        }
        match node.note_expired_group_keys().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(versions = n, "group key versions noted expired"),
            Err(e) => tracing::warn!(error = %e, "group key expiry sweep failed; retrying"),
        }
    }
}
