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

use std::sync::Arc;

use super::{p_table, Z_WINDOW};
use crate::crypto::curve::table::FixedBaseTable;
use crate::crypto::curve::{AffinePoint, JacobianPoint};
use crate::crypto::fp::{Fq, FP_BYTES};
use crate::crypto::second_use::SecondUse;

/// Identifiers remembered per public key (seen once, or with their table).
pub(super) const CAPACITY: usize = 8;

/// The remembered receivers of one public key (by b, the identifier mod q), most recent first
/// ([`SecondUse`]).
pub(super) struct Recipients(SecondUse<[u8; FP_BYTES], FixedBaseTable<Z_WINDOW>>);

impl Default for Recipients {
    fn default() -> Self {
        Self(SecondUse::new(CAPACITY))
    }
}

impl Recipients {
    /// The table of [b]P + Z if this is at least the second use of b with this key; `None` on
    /// the first (and when [b]P + Z = ∞, b ≡ −z_S, for which no RSK exists).
    pub(super) fn table(&self, z: &AffinePoint, b: &Fq) -> Option<Arc<FixedBaseTable<Z_WINDOW>>> {
        self.0.get(&b.to_be_bytes(), || {
            Some(FixedBaseTable::new(&receiver_point_vartime(z, b)?))
        })
    }

    /// Whether b has a table now (tests).
    #[cfg(test)]
    pub(super) fn has_table(&self, b: &Fq) -> bool {
        self.0.has(&b.to_be_bytes())
    }
}

/// [b]P + Z for public b and Z; `None` if it is the point at infinity.
fn receiver_point_vartime(z: &AffinePoint, b: &Fq) -> Option<AffinePoint> {
    p_table()
        .mul(b)
        .add_vartime(&JacobianPoint::from_affine(z))
        .to_affine_vartime()
}
