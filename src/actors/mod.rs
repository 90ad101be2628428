//! Actors (ARCHITECTURE §6): long-lived owners of mutable state behind bounded queues.
//!
//! | module | owns |
//! |--------|------|
//! | [`store`] | the `KeyStore`: Raft, the state machine, the peer transport, on its own arbiter; publishes its progress (applied index, role, term) on a watch |
//! | [`progress`] | the store's progress watch as actor messages |
//! | [`snapshot_fetch`] | pulling and serving snapshot files in bounded chunks between peers |
//! | [`distribution`] | the leader's delivery of key events to subscribers (retry state) |
//! | [`peer`] | the peer listener (mTLS): Raft messages, snapshot chunks, status |
//! | [`expiry`] | the leader's group key expiry sweeper (a task, no state of its own) |

pub mod distribution;
pub mod expiry;
pub mod peer;
pub mod progress;
pub mod snapshot_fetch;
pub mod store;

pub use store::{
    KeyStoreHandle, MemberChange, StoreError, StoreOptions, StoreProgress, StoreStatus,
};
