//! Montgomery multiplication of 1024-bit residues with AVX-512 IFMA (`vpmadd52luq`/
//! `vpmadd52huq`): the [`super::mont::Backend::Ifma`] backend, and the radix-2^52 forms it
//! works on.
//!
//! The operands keep the public representation of [`super::Fp`] (16 words of 64 bits,
//! Montgomery form with R = 2^1024); each product converts them to 20 limbs of 52 bits, lanes
//! of three 512-bit vectors (24 lanes, the top four zero):
//!
//! * a as it is, b as b·2^16 (< 2^1040, so it still fits in 20 limbs);
//! * 20 steps of "almost Montgomery multiplication": per limb b_i, t += a·b_i + m·u with
//!   u = t_0·(−m^−1) mod 2^52, then t /= 2^52 (the vector moves down by one lane). The low
//!   halves of the 52×52-bit products go to the lane of the limb, the high halves to the next
//!   one, and are added after the move. The lanes are not carried during the loop (each stays
//!   below 2^60: at most 80 terms below 2^52); only lane 0's carry is, in a scalar register;
//! * the result is (a·b·2^16 + U·m)/2^1040 with U < 2^1040, i.e. a·b·2^−1024 mod m, and below
//!   a + m < 2m; after carrying the lanes and packing to 64-bit words, one subtraction of m
//!   selected by a mask ([`super::mont::final_sub`]) makes it canonical, equal to the other
//!   backends' result.
//!
//! [`mul_n`] runs N independent products in one loop so that their dependency chains (the
//! scalar u of each step waits for the previous step's vector sums) overlap.
//!
//! Nothing branches on or indexes by the values: the IFMA instructions, the lane moves and the
//! scalar arithmetic take the same time whatever the operands.

use core::arch::x86_64::{
    __m512i, _mm512_alignr_epi64, _mm512_castsi512_si128, _mm512_loadu_si512,
    _mm512_madd52hi_epu64, _mm512_madd52lo_epu64, _mm512_set1_epi64, _mm512_setzero_si512,
    _mm512_storeu_si512, _mm_cvtsi128_si64,
};

use super::mont::{final_sub, Modulus};
use super::LIMBS;

/// Limbs of 52 bits in a product's operands.
pub(crate) const L52: usize = 20;
/// Lanes of the three vectors that hold them.
pub(crate) const LANES: usize = 24;
const MASK52: u64 = (1 << 52) - 1;

/// x·2^shift (shift < 52, x·2^shift < 2^1040) as 20 limbs of 52 bits, padded to 24 lanes.
#[inline(always)]
pub(crate) const fn to_radix52(x: &[u64; LIMBS], shift: u32) -> [u64; LANES] {
    let mut out = [0u64; LANES];
    let mut k = 0;
    while k < L52 {
        // Limb k holds bits [52k − shift, 52k − shift + 52) of x.
        let start = 52 * k as i64 - shift as i64;
        out[k] = if start < 0 {
            (x[0] << shift) & MASK52
        } else {
            let w = (start / 64) as usize;
            let s = (start % 64) as u32;
            let lo = x[w] >> s;
            let hi = if s > 12 && w + 1 < LIMBS {
                x[w + 1] << (64 - s)
            } else {
                0
            };
            (lo | hi) & MASK52
        };
        k += 1;
    }
    out
}

/// 20 carried limbs of 52 bits (a value below 2^1040) as 17 words of 64 bits.
#[inline(always)]
fn from_radix52(l: &[u64; LANES]) -> [u64; LIMBS + 1] {
    let mut out = [0u64; LIMBS + 1];
    let mut acc: u128 = 0;
    let mut bits = 0;
    let mut w = 0;
    for &limb in l.iter().take(L52) {
        acc |= u128::from(limb) << bits;
        bits += 52;
        // Loop positions only (public): the same for every value.
        if bits >= 64 {
            out[w] = acc as u64;
            acc >>= 64;
            bits -= 64;
            w += 1;
        }
    }
    out[w] = acc as u64;
    out
}

/// One vector load of lanes 8j..8j+8.
#[inline(always)]
unsafe fn load(x: &[u64; LANES], j: usize) -> __m512i {
    // SAFETY: lanes 8j..8j+8 lie inside x for j < 3 (callers pass 0, 1, 2).
    unsafe { _mm512_loadu_si512(x.as_ptr().add(8 * j).cast()) }
}

/// N products a_k·b_k·2^−1024 mod m, each operand below m.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512 IFMA.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) unsafe fn mul_n<const N: usize>(
    a: [&[u64; LIMBS]; N],
    b: [&[u64; LIMBS]; N],
    n: &Modulus,
) -> [[u64; LIMBS]; N] {
    let zero = _mm512_setzero_si512();
    let mut a52 = [[0u64; LANES]; N];
    let mut b52 = [[0u64; LANES]; N];
    for k in 0..N {
        a52[k] = to_radix52(a[k], 0);
        b52[k] = to_radix52(b[k], 16);
    }
    // SAFETY: j < 3 in every `load`.
    let (m0, m1, m2) = unsafe { (load(&n.m52, 0), load(&n.m52, 1), load(&n.m52, 2)) };
    let mut av = [[zero; 3]; N];
    for k in 0..N {
        // SAFETY: as above.
        av[k] = unsafe { [load(&a52[k], 0), load(&a52[k], 1), load(&a52[k], 2)] };
    }
    let mut t = [[zero; 3]; N];
    // Lane 0's pending carry, per product.
    let mut carry = [0u64; N];
    let m_lo = n.m52[0];
    for i in 0..L52 {
        let mut bv = [zero; N];
        let mut uv = [zero; N];
        for k in 0..N {
            let bi = b52[k][i];
            let a_lo = a52[k][0];
            let lane0 = _mm_cvtsi128_si64(_mm512_castsi512_si128(t[k][0])) as u64;
            // Lane 0 of t + a·b_i with its carry; u clears its low 52 bits.
            let x = lane0
                .wrapping_add(carry[k])
                .wrapping_add(a_lo.wrapping_mul(bi) & MASK52);
            let u = x.wrapping_mul(n.k52) & MASK52;
            carry[k] = x.wrapping_add(m_lo.wrapping_mul(u) & MASK52) >> 52;
            bv[k] = _mm512_set1_epi64(bi as i64);
            uv[k] = _mm512_set1_epi64(u as i64);
        }
        for k in 0..N {
            let [t0, t1, t2] = t[k];
            let [a0, a1, a2] = av[k];
            let t0 = _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(t0, a0, bv[k]), m0, uv[k]);
            let t1 = _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(t1, a1, bv[k]), m1, uv[k]);
            let t2 = _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(t2, a2, bv[k]), m2, uv[k]);
            // t /= 2^52: lane 0 (now ≡ 0 mod 2^52, its carry kept in `carry`) drops out.
            let t0 = _mm512_alignr_epi64::<1>(t1, t0);
            let t1 = _mm512_alignr_epi64::<1>(t2, t1);
            let t2 = _mm512_alignr_epi64::<1>(zero, t2);
            // The high halves belong one lane up, i.e. to the lane of the limb after the move.
            let t0 = _mm512_madd52hi_epu64(_mm512_madd52hi_epu64(t0, a0, bv[k]), m0, uv[k]);
            let t1 = _mm512_madd52hi_epu64(_mm512_madd52hi_epu64(t1, a1, bv[k]), m1, uv[k]);
            let t2 = _mm512_madd52hi_epu64(_mm512_madd52hi_epu64(t2, a2, bv[k]), m2, uv[k]);
            t[k] = [t0, t1, t2];
        }
    }
    let mut out = [[0u64; LIMBS]; N];
    for k in 0..N {
        let mut lanes = [0u64; LANES];
        for (j, v) in t[k].iter().enumerate() {
            // SAFETY: lanes 8j..8j+8 of `lanes`, j < 3.
            unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().add(8 * j).cast(), *v) };
        }
        // Carry the lanes (the value is below 2m < 2^1025: nothing leaves lane 19).
        let mut c = carry[k];
        for l in lanes.iter_mut().take(L52) {
            let x = l.wrapping_add(c);
            *l = x & MASK52;
            c = x >> 52;
        }
        let mut w = from_radix52(&lanes);
        out[k] = final_sub(&w, &n.m);
        zeroize::Zeroize::zeroize(&mut lanes);
        zeroize::Zeroize::zeroize(&mut w);
    }
    zeroize::Zeroize::zeroize(&mut a52);
    zeroize::Zeroize::zeroize(&mut b52);
    out
}

/// a·b·2^−1024 mod m.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512 IFMA.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) unsafe fn mul(a: &[u64; LIMBS], b: &[u64; LIMBS], n: &Modulus) -> [u64; LIMBS] {
    // SAFETY: the caller guarantees the CPU features.
    unsafe { mul_n::<1>([a], [b], n)[0] }
}
