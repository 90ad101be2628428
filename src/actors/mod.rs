//! The leader's actors (ARCHITECTURE §6), above the node services: long-lived owners of
//! mutable state behind bounded mailboxes. The `KeyStore` actor they follow is
//! [`crate::store`]; the peer network is [`crate::net`].
//!
//! | module | owns |
//! |--------|------|
//! | [`progress`] | the key store's progress watch as actor messages (how the actors below wake) |
//! | [`distribution`] | the leader's delivery of key events to subscribers: the `Distributor`, an actix actor on its own arbiter, supervised (retry state); wakes on commits, leadership changes and its earliest retry deadline |
//! | [`federator`] | KM-E on the leader: fetches each partner's certificates (mutual TLS, pinned CA), stages new ones for approval, revokes what partners revoked; an actix actor on its own arbiter, supervised (per-partner status only); wakes on leadership, every `refresh_s`, and on `Refresh` |
//! | [`expiry`] | the leader's group key expiry sweeper: an actix actor on its own arbiter, supervised (no state but when to wake); wakes on leadership, commits (at most once a second), the next expiry, at least every 60 s |

pub mod distribution;
pub mod expiry;
pub mod federator;
pub mod progress;
