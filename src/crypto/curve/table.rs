//! Constant-time fixed-base scalar multiplication with signed windows (used for [s]P in RSK
//! issue, RFC 6508 §6.1.1, and for [r·b]P + [r]Z_S in encapsulation, RFC 6508 §6.2.1).
//!
//! The table holds, for every W-bit window i, the affine points j·2^(W·i)·B for
//! j = 1..2^(W−1). A scalar is recoded into signed digits d_i ∈ [−2^(W−1), 2^(W−1)], so
//! [k]B = Σ d_i·2^(W·i)·B needs no doublings at all: one mixed addition per window.
//! Every row is scanned completely with masks (no secret-dependent index, branch or skipped
//! load: see [`row_masks`]), and the sign is applied by a constant-time conditional negation.
//!
//! Exceptional additions. Before window i the running sum is S_i·B with |S_i| < 2^(W·i), and
//! the table point is d_i·2^(W·i)·B with |d_i| ≥ 1 when it is added. Hence S_i ≡ ±d_i·2^(W·i)
//! (mod q) needs a nonzero multiple of q below (2^(W−1) + 1)·2^(W·i) in absolute value, which
//! exists only in the last window or two (q > 2^1021). Those windows use the complete
//! addition (one extra doubling and a select); the others only handle "running sum = ∞"
//! (a select) and "sum = ∞" (the formula gives Z = 0 by itself).

use super::{batch_to_affine_vartime, AffinePoint, JacobianPoint};
use crate::crypto::fp::{Fp, Fq, LIMBS};
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroize;

/// Bits in q: the scalar range is [0, q).
const Q_BITS: usize = 1022;

/// A fixed-base table for W-bit signed windows (2 ≤ W ≤ 8). Memory: ceil(1023/W)·2^(W−1)·256
/// octets (W = 8: 4 MiB; W = 7: 2.4 MiB; W = 6: 1.3 MiB). The base is public.
pub struct FixedBaseTable<const W: usize> {
    /// Row-major: window i, entry j ↦ (j+1)·2^(W·i)·B as x‖y Montgomery words.
    entries: Vec<[u64; 2 * LIMBS]>,
}

impl<const W: usize> FixedBaseTable<W> {
    const HALF: usize = {
        assert!(W >= 2 && W <= 8, "window width out of range");
        1 << (W - 1)
    };
    /// Enough windows for a 1022-bit scalar plus the final carry of the signed recoding.
    const WINDOWS: usize = windows_for(W);
    /// First window that may meet an exceptional (doubling) addition; see the module docs.
    const FIRST_COMPLETE: usize = (Q_BITS - 1 - W) / W;

    /// Builds the table for a public base point of order q (≈ 2^(W−1)·ceil(1023/W) mixed
    /// additions and one batched inversion).
    pub fn new(base: &AffinePoint) -> Self {
        let mut jac = Vec::with_capacity(Self::WINDOWS * Self::HALF);
        let mut b = *base;
        for _ in 0..Self::WINDOWS {
            let first = JacobianPoint::from_affine(&b);
            jac.push(first);
            let mut cur = first;
            for j in 1..Self::HALF {
                // (j+1)·b: the first step is a doubling, later ones never meet ±b (j < q).
                cur = if j == 1 {
                    cur.double()
                } else {
                    cur.add_mixed(&b)
                };
                jac.push(cur);
            }
            // Next window base: 2^W·b = 2·(2^(W−1)·b).
            b = cur.double().to_affine_vartime().unwrap_or_default();
        }
        let aff = batch_to_affine_vartime(&jac);
        let entries = aff
            .iter()
            .map(|p| {
                let mut e = [0u64; 2 * LIMBS];
                e[..LIMBS].copy_from_slice(p.x.words());
                e[LIMBS..].copy_from_slice(p.y.words());
                e
            })
            .collect();
        Self { entries }
    }

    /// Constant-time row scan: (|d|)·2^(W·i)·B, or (0, 0) when |d| = 0.
    #[inline(always)]
    fn lookup(&self, window: usize, abs: u64) -> AffinePoint {
        let mut masks = [0u64; MAX_ROW];
        let masks = &mut masks[..Self::HALF];
        row_masks(abs, masks);
        let row = &self.entries[window * Self::HALF..(window + 1) * Self::HALF];
        let mut acc = [0u64; 2 * LIMBS];
        for (e, &mask) in row.iter().zip(masks.iter()) {
            for k in 0..2 * LIMBS {
                acc[k] |= e[k] & mask;
            }
        }
        let mut x = [0u64; LIMBS];
        let mut y = [0u64; LIMBS];
        x.copy_from_slice(&acc[..LIMBS]);
        y.copy_from_slice(&acc[LIMBS..]);
        AffinePoint {
            x: Fp::from_words(x),
            y: Fp::from_words(y),
        }
    }

    /// [k]B in constant time (k secret). The result is ∞ only for k = 0.
    pub fn mul(&self, k: &Fq) -> JacobianPoint {
        let mut kw = k.to_uint().to_words();
        let mut acc = JacobianPoint::IDENTITY;
        let mut carry = 0u64;
        for i in 0..Self::WINDOWS {
            let (abs, neg) = signed_digit(&kw, i, W, &mut carry);
            let mut t = self.lookup(i, abs);
            t.y = Fp::conditional_select(&t.y, &-t.y, Choice::from(neg as u8));
            let sum = if i >= Self::FIRST_COMPLETE {
                acc.add_mixed_complete(&t)
            } else {
                acc.add_mixed(&t)
            };
            let is_zero = Choice::from((abs.wrapping_sub(1) >> 63) as u8);
            acc = JacobianPoint::conditional_select(&sum, &acc, is_zero);
        }
        kw.zeroize();
        acc
    }
}

/// Longest row a table may have (W ≤ 8).
pub(crate) const MAX_ROW: usize = 128;

/// Fills `masks` with the selection masks of one row scan (all ones for entry |d| − 1, zero
/// elsewhere) and hides them from the optimiser.
///
/// Without the barrier LLVM proves that each mask is 0 or all ones and compiles
/// `acc |= entry & mask` into "skip this entry unless it is the one": a branch on the secret
/// digit that also loads only the selected entry, so branch history, cache state and timing
/// follow the scalar (found with the fixed-vs-random timing test `benches/ct_rsk.rs`: fixed
/// scalars ran 5 % faster, their entries staying in cache). Once the masks have passed through
/// `black_box` they are opaque values: every entry is loaded and combined, for every digit.
#[inline(always)]
pub(crate) fn row_masks(abs: u64, masks: &mut [u64]) {
    for (j, m) in masks.iter_mut().enumerate() {
        let diff = (j as u64 + 1) ^ abs;
        *m = 0u64.wrapping_sub(diff.wrapping_sub(1) >> 63);
    }
    core::hint::black_box(masks);
}

/// Digit i of the signed W-bit recoding of the little-endian words `kw`, as (|d|, sign bit),
/// branch-free in the (secret) scalar: v = window bits + carry; the new carry is (v > 2^(W−1));
/// d = v − carry·2^W ∈ [−2^(W−1), 2^(W−1)]. Only the bit position (public) selects words.
#[inline(always)]
pub(crate) fn signed_digit(kw: &[u64; LIMBS], i: usize, w: usize, carry: &mut u64) -> (u64, u64) {
    let bit = i * w;
    let (word, off) = (bit / 64, bit % 64);
    let mut v = if word < LIMBS { kw[word] >> off } else { 0 };
    if off + w > 64 && word + 1 < LIMBS {
        v |= kw[word + 1] << (64 - off);
    }
    v = (v & ((1u64 << w) - 1)) + *carry;
    *carry = (1u64 << (w - 1)).wrapping_sub(v) >> 63;
    let digit = v.wrapping_sub(*carry << w);
    let neg = digit >> 63;
    let abs = (digit ^ 0u64.wrapping_sub(neg)).wrapping_add(neg);
    (abs, neg)
}

/// Number of W-bit signed windows for scalars below q.
pub(crate) const fn windows_for(w: usize) -> usize {
    (Q_BITS + w) / w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_bigint::U1024;

    #[test]
    fn table_multiplication_matches_double_and_add() {
        let g = AffinePoint::generator();
        let table = FixedBaseTable::<4>::new(&g);
        let gj = JacobianPoint::from_affine(&g);
        for k in [1u64, 2, 3, 7, 8, 9, 255, 0xFFFF_FFFF_FFFF_FFFF] {
            let a = table.mul(&Fq::from_u64(k)).to_affine_vartime().unwrap();
            let b = gj
                .mul_vartime(&U1024::from_u64(k))
                .to_affine_vartime()
                .unwrap();
            assert_eq!(a, b, "k = {k}");
        }
        // q − 1 (all windows busy, the top carry) gives −P; 0 gives ∞.
        let qm1 = Fq::ZERO - Fq::ONE;
        assert_eq!(table.mul(&qm1).to_affine_vartime().unwrap(), g.neg());
        assert!(table.mul(&Fq::ZERO).is_identity_vartime());
    }

    /// The scalars 2d·2^(W·(n−1)) mod q include one (for W = 6 and W = 8 alike) whose last
    /// window adds a point equal to the running sum: the complete addition must catch it.
    fn exceptional_scalars_for<const W: usize>() {
        let g = AffinePoint::generator();
        let table = FixedBaseTable::<W>::new(&g);
        let gj = JacobianPoint::from_affine(&g);
        let top = Fq::from_uint(&U1024::ONE.shl_vartime((W * (windows_for(W) - 1)) as u32));
        for d in 1..=(1u64 << (W - 1)) {
            let s = Fq::from_u64(2 * d) * top;
            let a = table.mul(&s).to_affine_vartime();
            let b = gj.mul_vartime(&s.to_uint()).to_affine_vartime();
            assert_eq!(a, b, "W = {W}, d = {d}");
        }
    }

    #[test]
    fn exceptional_last_window_w7() {
        exceptional_scalars_for::<7>();
    }

    #[test]
    fn exceptional_last_window_w6() {
        exceptional_scalars_for::<6>();
    }

    #[test]
    fn exceptional_last_window_w8() {
        exceptional_scalars_for::<8>();
    }
}
