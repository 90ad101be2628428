//! Fixed-base tables of the KPAKs that pair validation (RFC 6507 §5.1.2) meets more than once.
//!
//! A table turns the public half of validation into [HS⁻¹]KPAK with no doublings (see
//! [`super::EccsiSigner::new`]), but costs about as much as a few validations to build, and a
//! node or client meets few KPAKs (its own communities' and its partners'). So a KPAK's table is
//! built at its second validation, not its first: a client validating once pays nothing extra,
//! and a stream of ever-new KPAKs never triggers a build. At most [`CAPACITY`] KPAKs are
//! remembered, most recent first. Everything here is public.

use std::sync::{Arc, Mutex, PoisonError};

use super::super::ec256::{self, BaseTable, Point, POINT_LEN};

/// KPAKs remembered (seen once, or with their table).
pub(super) const CAPACITY: usize = 8;

enum Slot {
    Seen,
    Built(Arc<BaseTable>),
}

/// The remembered KPAKs, most recent first.
pub(super) struct KpakTables(Mutex<Vec<([u8; POINT_LEN], Slot)>>);

/// The process's cache.
pub(super) static TABLES: KpakTables = KpakTables::new();

impl KpakTables {
    pub(super) const fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    /// The table of `kpak` (its SEC1 encoding `bytes`) if this is at least its second
    /// validation; `None` on the first (the caller validates without a table).
    pub(super) fn table(&self, kpak: &Point, bytes: &[u8; POINT_LEN]) -> Option<Arc<BaseTable>> {
        {
            let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            match cache.iter().position(|(k, _)| k == bytes) {
                None => {
                    cache.insert(0, (*bytes, Slot::Seen));
                    cache.truncate(CAPACITY);
                    return None;
                }
                Some(i) => {
                    let entry = cache.remove(i);
                    let built = match &entry.1 {
                        Slot::Built(t) => Some(Arc::clone(t)),
                        Slot::Seen => None,
                    };
                    cache.insert(0, entry);
                    if built.is_some() {
                        return built;
                    }
                }
            }
        }
        // Second sighting: build outside the lock (other validations go on meanwhile).
        let table = Arc::new(ec256::base_table_vartime(kpak)?);
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, slot)) = cache.iter_mut().find(|(k, _)| k == bytes) {
            *slot = Slot::Built(Arc::clone(&table));
        }
        Some(table)
    }

    /// Whether `bytes` has a table now (tests).
    #[cfg(test)]
    pub(super) fn has_table(&self, bytes: &[u8; POINT_LEN]) -> bool {
        let cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .iter()
            .any(|(k, s)| k == bytes && matches!(s, Slot::Built(_)))
    }
}
