//! g^r in PF_p for the fixed pairing value g = ⟨P, P⟩ (RFC 6508 §6.2.1 step 4: "g^r" means
//! (1 + i·g)^r in F_p² read as x1/x0, RFC 6508 §2.1).
//!
//! A fixed-base table with signed W-bit windows: entry (i, j) is the PF_p class of
//! (1 + i·g)^(j·2^(W·i)), stored normalised as 1 + i·t, so only t (one F_p element) is kept
//! and multiplying by an entry costs two F_p products. The inverse of a class is its conjugate
//! (x·conj(x) ∈ F_p), i.e. −t, which makes negative digits free; a zero digit scans to t = 0,
//! the class of 1. Rows are scanned completely with masks hidden from the optimiser
//! ([`row_masks`]): constant-time in r.

use crate::crypto::curve::table::{row_masks, signed_digit, windows_for};
use crate::crypto::fp::{Fp, Fq, LIMBS};
use crate::crypto::fp2::Fp2;
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroize;

const W: usize = 6;
const HALF: usize = 1 << (W - 1);

pub(crate) struct GPowTable {
    entries: Vec<[u64; LIMBS]>,
}

impl GPowTable {
    pub(crate) fn new(g: &Fp) -> Self {
        let windows = windows_for(W);
        let mut vals = Vec::with_capacity(windows * HALF);
        let mut base = Fp2::new(Fp::ONE, *g);
        for _ in 0..windows {
            let mut cur = base;
            vals.push(cur);
            for _ in 1..HALF {
                cur = cur.mul(&base);
                vals.push(cur);
            }
            // 2^W-th power of the window base = (2^(W−1)-th)²; renormalise to keep it 1 + i·t.
            let next = cur.square();
            let t = next.c1 * next.c0.invert_vartime().unwrap_or(Fp::ZERO);
            base = Fp2::new(Fp::ONE, t);
        }
        // Batch-normalise every entry to 1 + i·(c1/c0) with one inversion.
        let mut prefix = Vec::with_capacity(vals.len());
        let mut acc = Fp::ONE;
        for v in &vals {
            prefix.push(acc);
            acc = acc * v.c0;
        }
        let mut inv = acc.invert_vartime().unwrap_or(Fp::ZERO);
        let mut entries = vec![[0u64; LIMBS]; vals.len()];
        for i in (0..vals.len()).rev() {
            let c0inv = inv * prefix[i];
            inv = inv * vals[i].c0;
            entries[i] = *(vals[i].c1 * c0inv).words();
        }
        Self { entries }
    }

    #[inline(always)]
    fn lookup(&self, window: usize, abs: u64) -> Fp {
        let row = &self.entries[window * HALF..(window + 1) * HALF];
        let mut masks = [0u64; HALF];
        row_masks(abs, &mut masks);
        let mut acc = [0u64; LIMBS];
        for (e, &mask) in row.iter().zip(masks.iter()) {
            for k in 0..LIMBS {
                acc[k] |= e[k] & mask;
            }
        }
        Fp::from_words(acc)
    }

    /// g^r as the F_p element x1/x0, constant-time in r.
    pub(crate) fn pow(&self, r: &Fq) -> Fp {
        let mut kw = r.to_uint().to_words();
        let mut acc = Fp2::ONE;
        let mut carry = 0u64;
        for i in 0..windows_for(W) {
            let (abs, neg) = signed_digit(&kw, i, W, &mut carry);
            let t = self.lookup(i, abs);
            let t = Fp::conditional_select(&t, &-t, Choice::from(neg as u8));
            acc = acc.mul_by_one_plus_it(&t);
        }
        kw.zeroize();
        acc.to_pfp()
    }
}
