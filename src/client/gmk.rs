//! The GMK I_MESSAGE of TS 33.180 E.1 for parties (GMS, members): the pure functions live in
//! [`crate::kms::gmk_message`], shared with KM-E's federated group keys.

pub use crate::kms::gmk_message::*;
