//! The peer network (ARCHITECTURE §5–§7): what carries Raft between nodes, outside the pure
//! Raft core. [`transport`]: the Raft message wire format, per-peer bounded send queues over
//! mutual TLS and the receiving route; [`snapshot_fetch`]: snapshot files pulled and served in
//! bounded chunks. The peer listener that mounts both is `api::peer`.

pub mod snapshot_fetch;
pub mod transport;
