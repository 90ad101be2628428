//! Key management domain logic (pure: no I/O).

pub mod xml;
