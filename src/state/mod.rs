//! The replicated state machine: versioned commands ([`command`]) and their deterministic
//! application to the sled store ([`machine`]; ACL, group keys and key provisioning in
//! [`groups`], pushes for a VAL service indexed for TS 29.549 retrieval in [`key_records`], the key-event outbox and subscriptions in [`outbox`]), and snapshots of that
//! store as files ([`snapshot`]); CAPIF publication ids and revoked invokers in [`capif`].

pub mod capif;
pub mod command;
pub mod groups;
pub mod idempotency;
pub mod key_records;
pub mod machine;
pub mod outbox;
pub mod partners;
pub mod snapshot;
#[cfg(test)]
pub(crate) mod test_util;

pub use command::{Command, Envelope, Outcome};
pub use groups::ExpiryScan;
pub use machine::{StateError, StateMachine};
pub use outbox::{EventPage, SubscriptionStatus, MAX_BACKLOG};
pub use snapshot::{
    read_chunk, read_meta, snapshot_path, verify_snapshot, write_snapshot, SnapshotDescriptor,
    SnapshotError, SnapshotReceiver, VerifiedSnapshot, MAX_CHUNK_BYTES,
};
