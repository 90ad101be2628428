//! sealkm: a key management server for 3GPP SEAL (TS 23.434, TS 33.434), serving the TS 33.180
//! Annex D KMS interface with RFC 6507 (ECCSI) and RFC 6508 (SAKKE) key material.
//!
//! Code map, lowest layer first (ARCHITECTURE.md "Layers"; `tests/layering.rs` checks that no
//! module uses a higher one):
//! - [`crypto`]: pure cryptography (ECCSI, SAKKE, MIKEY-SAKKE, 3GPP KDFs, sealing).
//! - [`raft`]: the Raft foundation: log stores (in-memory, raft-engine) and a pure driver that
//!   sees entries as bytes.
//! - [`kms`]: the pure KMS domain (communities, certificates, periods, key sets, XML documents;
//!   group keys, ACL, key events, key provisioning records).
//! - [`state`]: versioned commands and the deterministic state machine over sled.
//! - [`net`]: the peer network (Raft message transport, snapshot chunks).
//! - [`store`]: the `KeyStore` actor (Raft + state + peer network) and its peer listener.
//! - [`node`]: the KMS services (key sets, groups, parties, administration) and bootstrap.
//! - [`actors`]: the leader's actors (expiry sweeper, Distributor).
//! - [`api`]: the HTTP edge (KM-UU, service listener, admin, health) and the one error→status
//!   mapping.
//! - [`auth`]: access tokens (JWT/JWKS) and the development identity provider.
//! - [`audit`]: the node-local hash-chained audit file.
//! - [`client`]: a validating KM client.
//! - [`config`], [`clock`], [`tls`], [`dev`], [`selfcheck`], [`cli`], [`loadtool`], [`chaos`]:
//!   plumbing.

pub mod actors;
pub mod api;
pub mod audit;
pub mod auth;
pub mod chaos;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod dev;
pub mod kms;
pub mod loadtool;
pub mod net;
pub mod node;
pub mod raft;
pub mod selfcheck;
pub mod state;
pub mod store;
pub mod tls;
