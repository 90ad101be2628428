//! The leader's actors (ARCHITECTURE §6), above the node services: long-lived owners of
//! mutable state behind bounded mailboxes. The `KeyStore` actor they follow is
//! [`crate::store`]; the peer network is [`crate::net`].
//!
//! | module | owns |
//! |--------|------|
//! | [`progress`] | the key store's progress watch as actor messages (how the actors below wake) |
//! | [`distribution`] | the leader's delivery of key events to subscribers: the `Distributor`, an actix actor on its own arbiter, supervised (retry state); wakes on commits, leadership changes and its earliest retry deadline |
//! | [`federator`] | KM-E on the leader: fetches each partner's certificates (mutual TLS, pinned CA), stages new ones for approval, revokes what partners revoked; an actix actor on its own arbiter, supervised (per-partner status only); wakes on leadership, every `refresh_s`, and on `Refresh` |
//! | [`capif`] | this KMS as a CAPIF AEF/APF (TS 29.549 clause 8): publishing `ss-kir` to the CCF (in the background at start on the leader, never blocking service), PKI invokers' authorisation fetched from the CCF and cached, and the invocation log spool (a durable bounded file per node) shipped to the CCF by a task on every node |
//! | [`expiry`] | the leader's group key expiry sweeper: an actix actor on its own arbiter, supervised (no state but when to wake); wakes on leadership, commits (at most once a second), the next expiry, at least every 60 s |

pub mod capif;
pub mod distribution;
pub mod expiry;
pub mod federator;
pub mod progress;
