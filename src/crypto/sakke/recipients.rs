//! Fixed-base tables of the receiver points [b]P + Z_S that one public key meets more than once
//! (RFC 6508 §6.2.1 R_(b,S) = [r]([b]P + Z_S); §6.2.2 recomputes it to check the message).
//!
//! Without such a table, [r]([b]P + Z_S) is [r·b]P + [r]Z_S: two fixed-base multiplications and
//! an inversion. With it, one. A table has 5,472 points (1.3 MiB): building it takes as many
//! point additions as 32 walks of it, plus their conversion to affine form, and a sender meets
//! many identifiers once, so a receiver's table is built at its
//! second use, not its first (as the ECCSI KPAK tables are): a recipient met once costs nothing
//! extra, and a stream of ever-new identifiers never triggers a build. At most [`CAPACITY`]
//! identifiers per public key are remembered, most recent first. Everything here is public
//! (b, Z_S and the table); the multiplication by the table is constant-time in r.

use std::sync::{Arc, Mutex, PoisonError};

use super::{p_table, Z_WINDOW};
use crate::crypto::curve::table::FixedBaseTable;
use crate::crypto::curve::{AffinePoint, JacobianPoint};
use crate::crypto::fp::{Fq, FP_BYTES};

/// Identifiers remembered per public key (seen once, or with their table).
pub(super) const CAPACITY: usize = 8;

enum Slot {
    Seen,
    Built(Arc<FixedBaseTable<Z_WINDOW>>),
}

/// The remembered receivers of one public key (by b, the identifier mod q), most recent first.
#[derive(Default)]
pub(super) struct Recipients(Mutex<Vec<([u8; FP_BYTES], Slot)>>);

impl Recipients {
    /// The table of [b]P + Z if this is at least the second use of b with this key; `None` on
    /// the first (and when [b]P + Z = ∞, b ≡ −z_S, for which no RSK exists).
    pub(super) fn table(&self, z: &AffinePoint, b: &Fq) -> Option<Arc<FixedBaseTable<Z_WINDOW>>> {
        let key = b.to_be_bytes();
        {
            let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            match cache.iter().position(|(k, _)| *k == key) {
                None => {
                    cache.insert(0, (key, Slot::Seen));
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
        // Second use: build outside the lock (other calls go on meanwhile).
        let table = Arc::new(FixedBaseTable::new(&receiver_point_vartime(z, b)?));
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, slot)) = cache.iter_mut().find(|(k, _)| *k == key) {
            *slot = Slot::Built(Arc::clone(&table));
        }
        Some(table)
    }

    /// Whether b has a table now (tests).
    #[cfg(test)]
    pub(super) fn has_table(&self, b: &Fq) -> bool {
        let key = b.to_be_bytes();
        let cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .iter()
            .any(|(k, s)| *k == key && matches!(s, Slot::Built(_)))
    }
}

/// [b]P + Z for public b and Z; `None` if it is the point at infinity.
fn receiver_point_vartime(z: &AffinePoint, b: &Fq) -> Option<AffinePoint> {
    p_table()
        .mul(b)
        .add_vartime(&JacobianPoint::from_affine(z))
        .to_affine_vartime()
}
