//! The replicated state machine: versioned commands ([`command`]) and their deterministic
//! application to the sled store ([`machine`]).

pub mod command;
pub mod machine;

pub use command::{Command, Envelope, Outcome};
pub use machine::{StateError, StateMachine};
pub mod snapshot;
