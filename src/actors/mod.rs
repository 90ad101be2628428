//! The leader's actors (ARCHITECTURE §6), above the node services: long-lived owners of
//! mutable state behind bounded mailboxes. The `KeyStore` actor they follow is
//! [`crate::store`]; the peer network is [`crate::net`].
//!
//! | module | owns |
//! |--------|------|
//! | [`progress`] | the key store's progress watch as actor messages (how the actors below wake) |
//! | [`distribution`] | the leader's delivery of key events to subscribers: the `Distributor`, an actix actor on its own arbiter, supervised (retry state); wakes on commits, leadership changes and its earliest retry deadline |
//! | [`expiry`] | the leader's group key expiry sweeper: an actix actor on its own arbiter, supervised (no state but when to wake); wakes on leadership, commits (at most once a second), the next expiry, at least every 60 s |

pub mod distribution;
pub mod expiry;
pub mod progress;
