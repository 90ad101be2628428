//! The Raft foundation (ARCHITECTURE §5): a narrow log-store seam with an in-memory and a
//! raft-engine implementation ([`storage`]), and a pure driver around `raft::RawNode` that owns
//! the one Ready loop, group commit, apply and ReadIndex ([`node`]).
//!
//! Nothing here starts a thread, reads a clock or opens a socket: the cluster shell feeds ticks
//! and peer messages in and carries the returned messages out. That keeps every Raft scenario a
//! deterministic unit test (see [`testnet`] under `cfg(test)`).

pub mod node;
pub mod storage;

#[cfg(test)]
mod scenarios;
#[cfg(test)]
pub(crate) mod testnet;

pub use node::{
    Applied, Applier, ConfChangeContext, DriverError, Output, PeerProgress, RaftDriver,
};
pub use storage::{EngineLogStore, LogStore, MemLogStore, StoreError};
