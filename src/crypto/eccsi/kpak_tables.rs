//! Fixed-base tables of the KPAKs that pair validation (RFC 6507 §5.1.2) meets more than once.
//!
//! A table turns the public half of validation into [HS⁻¹]KPAK with no doublings (see
//! [`super::EccsiSigner::new`]), but costs about as much as a few validations to build, and a
//! node or client meets few KPAKs (its own communities' and its partners'). So a KPAK's table is
//! built at its second validation, not its first: a client validating once pays nothing extra,
//! and a stream of ever-new KPAKs never triggers a build. At most [`CAPACITY`] KPAKs are
//! remembered, most recent first. Everything here is public.

use std::sync::Arc;

use super::super::ec256::{self, BaseTable, Point, POINT_LEN};
use super::super::second_use::SecondUse;

/// KPAKs remembered (seen once, or with their table).
pub(super) const CAPACITY: usize = 8;

/// The remembered KPAKs (by SEC1 encoding), most recent first ([`SecondUse`]).
pub(super) struct KpakTables(SecondUse<[u8; POINT_LEN], BaseTable>);

/// The process's cache.
pub(super) static TABLES: KpakTables = KpakTables::new();

impl KpakTables {
    pub(super) const fn new() -> Self {
        Self(SecondUse::new(CAPACITY))
    }

    /// The table of `kpak` (its SEC1 encoding `bytes`) if this is at least its second
    /// validation; `None` on the first (the caller validates without a table).
    pub(super) fn table(&self, kpak: &Point, bytes: &[u8; POINT_LEN]) -> Option<Arc<BaseTable>> {
        self.0.get(bytes, || ec256::base_table_vartime(kpak))
    }

    /// Whether `bytes` has a table now (tests).
    #[cfg(test)]
    pub(super) fn has_table(&self, bytes: &[u8; POINT_LEN]) -> bool {
        self.0.has(bytes)
    }
}
