//! Audit log (being written).
