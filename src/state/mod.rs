//! The replicated state machine: versioned commands ([`command`]) and their deterministic
//! application to the sled store ([`machine`]), and snapshots of that store as files
//! ([`snapshot`]).

pub mod command;
pub mod machine;
pub mod snapshot;

pub use command::{Command, Envelope, Outcome};
pub use machine::{StateError, StateMachine};
pub use snapshot::{
    read_chunk, read_meta, snapshot_path, verify_snapshot, write_snapshot, SnapshotDescriptor,
    SnapshotError, SnapshotReceiver, VerifiedSnapshot, MAX_CHUNK_BYTES,
};
