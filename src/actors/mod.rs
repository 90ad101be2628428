//! Actors (ARCHITECTURE §6): long-lived owners of mutable state behind bounded queues.
//!
//! | module | owns |
//! |--------|------|
//! | [`store`] | the `KeyStore` actix actor: Raft, the state machine, the peer transport, on its own arbiter; publishes its progress (applied index, role, term) on a watch |
//! | [`progress`] | the store's progress watch as actor messages (how the actors below wake) |
//! | [`snapshot_fetch`] | pulling and serving snapshot files in bounded chunks between peers |
//! | [`distribution`] | the leader's delivery of key events to subscribers: the `Distributor`, an actix actor on its own arbiter, supervised (retry state); wakes on commits, leadership changes and its earliest retry deadline |
//! | [`peer`] | the peer listener (mTLS): Raft messages, snapshot chunks, status |
//! | [`expiry`] | the leader's group key expiry sweeper: an actix actor on its own arbiter, supervised (no state but when to wake); wakes on leadership, commits (at most once a second), the next expiry, at least every 60 s |

pub mod distribution;
pub mod expiry;
pub mod progress;
