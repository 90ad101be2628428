//! Command-line operations that talk to running nodes (the binary's subcommands call these).

pub mod cluster;
pub mod party;
