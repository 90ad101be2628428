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
//!   u = t_0·(−m^−1) mod 2^52, then t /= 2^52 (the vector moves down by one lane). The lanes
//!   are not carried during the loop (each stays below 2^60: at most 80 terms below 2^52);
//!   lane 0 is kept, with its carry, in a scalar register (see [`mul_n`]);
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
    __m512i, _mm512_alignr_epi64, _mm512_and_si512, _mm512_castsi512_si128, _mm512_loadu_si512,
    _mm512_madd52hi_epu64, _mm512_madd52lo_epu64, _mm512_maskz_permutex2var_epi64, _mm512_or_si512,
    _mm512_set1_epi64, _mm512_setzero_si512, _mm512_sllv_epi64, _mm512_srlv_epi64,
    _mm512_storeu_si512, _mm_extract_epi64,
};

use super::mont::{final_sub, Modulus};
use super::LIMBS;

/// Limbs of 52 bits in a product's operands.
pub(crate) const L52: usize = 20;
/// Lanes of the three vectors that hold them.
pub(crate) const LANES: usize = 24;
const MASK52: u64 = (1 << 52) - 1;

/// x·2^shift (shift < 52, x·2^shift < 2^1040) as 20 limbs of 52 bits, padded to 24 lanes:
/// the plain definition that [`to_radix52_v`] is tested against.
#[cfg(test)]
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

/// Where lane k of x·2^shift in radix 2^52 comes from: bits [52k − shift, 52k − shift + 52)
/// of x, i.e. word w = ⌊(52k − shift)/64⌋ shifted right by s = (52k − shift) mod 64, with word
/// w + 1 shifted left by 64 − s (a count of 64 gives 0). Word indexes run over x with a zero
/// word in front (−1 is that zero word); lanes 20..24 and indexes outside x are masked to zero.
struct Radix52Plan {
    lo_idx: [i64; LANES],
    hi_idx: [i64; LANES],
    lo_mask: [u8; 3],
    hi_mask: [u8; 3],
    sr: [u64; LANES],
    sl: [u64; LANES],
}

const fn radix52_plan(shift: i64) -> Radix52Plan {
    let mut p = Radix52Plan {
        lo_idx: [0; LANES],
        hi_idx: [0; LANES],
        lo_mask: [0; 3],
        hi_mask: [0; 3],
        sr: [0; LANES],
        sl: [64; LANES],
    };
    let mut k = 0;
    while k < L52 {
        let start = 52 * k as i64 - shift + 64; // bit position in [0] ‖ x
        let w = start / 64 - 1; // index into x, −1 for the zero word
        let s = start % 64;
        if w >= 0 && w < LIMBS as i64 {
            p.lo_idx[k] = w;
            p.lo_mask[k / 8] |= 1 << (k % 8);
        }
        if w + 1 < LIMBS as i64 {
            p.hi_idx[k] = w + 1;
            p.hi_mask[k / 8] |= 1 << (k % 8);
        }
        p.sr[k] = s as u64;
        p.sl[k] = (64 - s) as u64;
        k += 1;
    }
    p
}

const PLAN_A: Radix52Plan = radix52_plan(0);
const PLAN_B: Radix52Plan = radix52_plan(16);

/// [`to_radix52`] with vector permutes and shifts, as three vectors.
#[inline]
#[target_feature(enable = "avx512f")]
fn to_radix52_v(x: &[u64; LIMBS], plan: &Radix52Plan) -> [__m512i; 3] {
    // SAFETY: x has 16 words: two loads of 8.
    let (x0, x1) = unsafe {
        (
            _mm512_loadu_si512(x.as_ptr().cast()),
            _mm512_loadu_si512(x.as_ptr().add(8).cast()),
        )
    };
    let mask = _mm512_set1_epi64(MASK52 as i64);
    let mut out = [_mm512_setzero_si512(); 3];
    for (j, o) in out.iter_mut().enumerate() {
        // SAFETY: lanes 8j..8j+8 of 24-entry tables, j < 3.
        let (li, hi, sr, sl) = unsafe {
            (
                _mm512_loadu_si512(plan.lo_idx.as_ptr().add(8 * j).cast()),
                _mm512_loadu_si512(plan.hi_idx.as_ptr().add(8 * j).cast()),
                _mm512_loadu_si512(plan.sr.as_ptr().add(8 * j).cast()),
                _mm512_loadu_si512(plan.sl.as_ptr().add(8 * j).cast()),
            )
        };
        let lo = _mm512_maskz_permutex2var_epi64(plan.lo_mask[j], x0, li, x1);
        let hw = _mm512_maskz_permutex2var_epi64(plan.hi_mask[j], x0, hi, x1);
        let v = _mm512_or_si512(_mm512_srlv_epi64(lo, sr), _mm512_sllv_epi64(hw, sl));
        *o = _mm512_and_si512(v, mask);
    }
    out
}

/// 20 carried limbs of 52 bits (a value below 2^1040) as 17 words of 64 bits; straight-line
/// code (word w takes bits [64w, 64w + 64) from the limbs 64w/52 to 64w/52 + 2).
#[inline(always)]
fn from_radix52(l: &[u64; LANES]) -> [u64; LIMBS + 1] {
    macro_rules! word {
        ($w:literal) => {{
            const K: usize = 64 * $w / 52;
            const S: usize = 64 * $w - 52 * K;
            let mut v = l[K] >> S;
            if K + 1 < L52 {
                v |= l[K + 1] << (52 - S);
            }
            if S > 40 && K + 2 < L52 {
                v |= l[K + 2] << (104 - S);
            }
            v
        }};
    }
    [
        word!(0),
        word!(1),
        word!(2),
        word!(3),
        word!(4),
        word!(5),
        word!(6),
        word!(7),
        word!(8),
        word!(9),
        word!(10),
        word!(11),
        word!(12),
        word!(13),
        word!(14),
        word!(15),
        word!(16),
    ]
}

/// One vector load of lanes 8j..8j+8.
#[inline(always)]
unsafe fn load(x: &[u64; LANES], j: usize) -> __m512i {
    // SAFETY: lanes 8j..8j+8 lie inside x for j < 3 (callers pass 0, 1, 2).
    unsafe { _mm512_loadu_si512(x.as_ptr().add(8 * j).cast()) }
}

/// Lane 1 of a vector.
#[inline]
#[target_feature(enable = "avx512f")]
fn lane1(v: __m512i) -> u64 {
    _mm_extract_epi64::<1>(_mm512_castsi512_si128(v)) as u64
}

/// The high 52 bits of the 104-bit product x·y (x, y < 2^52).
#[inline(always)]
fn hi52(x: u64, y: u64) -> u64 {
    ((u128::from(x) * u128::from(y)) >> 52) as u64
}

/// The low 52 bits of x·y.
#[inline(always)]
fn lo52(x: u64, y: u64) -> u64 {
    x.wrapping_mul(y) & MASK52
}

/// x moved up by one lane across the three vectors (lane 0 becomes zero).
#[inline(always)]
fn up(x: &[u64; LANES]) -> [u64; LANES] {
    let mut out = [0u64; LANES];
    out[1..].copy_from_slice(&x[..LANES - 1]);
    out
}

/// N products a_k·b_k·2^−1024 mod m, each operand below m.
///
/// Lane 0 of the running sum lives in a scalar register: x_i, the full value of the lowest
/// limb in step i. Step i takes u = x_i·(−m^−1) mod 2^52, adds a·b_i + m·u to the vector
/// (low halves at their limb, high halves one lane up, through copies of a and m moved up by
/// one lane) and moves it down by a lane; the scalar meanwhile computes x_(i+1) from the
/// vector's lane 1 as it was *before* step i (which does not wait for u) plus the few products
/// that land on that lane, so the chain from one u to the next runs through scalar
/// multiplications only. The carry out of lane 0 is (x_i >> 52) + [x_i mod 2^52 ≠ 0], since
/// x_i + lo(m_0·u) is a multiple of 2^52 and below x_i + 2^52.
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
    let mut av = [[zero; 3]; N];
    let mut avu = [[zero; 3]; N];
    let mut a52 = [[0u64; LANES]; N];
    let mut b52 = [[0u64; LANES]; N];
    for k in 0..N {
        let [a0, a1, a2] = to_radix52_v(a[k], &PLAN_A);
        av[k] = [a0, a1, a2];
        // a moved up by one lane: the high halves of a_j·b_i land on lane j + 1.
        avu[k] = [
            _mm512_alignr_epi64::<7>(a0, zero),
            _mm512_alignr_epi64::<7>(a1, a0),
            _mm512_alignr_epi64::<7>(a2, a1),
        ];
        let bv = to_radix52_v(b[k], &PLAN_B);
        for j in 0..3 {
            // SAFETY: lanes 8j..8j+8 of 24, j < 3.
            unsafe {
                _mm512_storeu_si512(a52[k].as_mut_ptr().add(8 * j).cast(), av[k][j]);
                _mm512_storeu_si512(b52[k].as_mut_ptr().add(8 * j).cast(), bv[j]);
            }
        }
    }
    let m = &n.m52;
    let m_up = up(m);
    // SAFETY (every `load`): j < 3.
    let mv = unsafe { [load(m, 0), load(m, 1), load(m, 2)] };
    let mvu = unsafe { [load(&m_up, 0), load(&m_up, 1), load(&m_up, 2)] };
    let mut t = [[zero; 3]; N];
    let mut x = [0u64; N];
    for k in 0..N {
        x[k] = lo52(a52[k][0], b52[k][0]);
    }
    for i in 0..L52 {
        for k in 0..N {
            let (a0, a1, bi) = (a52[k][0], a52[k][1], b52[k][i]);
            let next_b = if i + 1 < L52 { b52[k][i + 1] } else { 0 };
            let xi = x[k];
            let u = xi.wrapping_mul(n.k52) & MASK52;
            let carry = (xi >> 52) + (((xi & MASK52) + MASK52) >> 52);
            let [t0, t1, t2] = t[k];
            // Lane 1 before this step, plus what lands on it: the next x.
            x[k] = lane1(t0)
                .wrapping_add(carry)
                .wrapping_add(lo52(a1, bi))
                .wrapping_add(hi52(a0, bi))
                .wrapping_add(lo52(a0, next_b))
                .wrapping_add(lo52(m[1], u))
                .wrapping_add(hi52(m[0], u));
            let bv = _mm512_set1_epi64(bi as i64);
            let uv = _mm512_set1_epi64(u as i64);
            let [a0v, a1v, a2v] = av[k];
            let [b0v, b1v, b2v] = avu[k];
            // The products of a do not wait for u.
            let t0 = _mm512_madd52hi_epu64(_mm512_madd52lo_epu64(t0, a0v, bv), b0v, bv);
            let t1 = _mm512_madd52hi_epu64(_mm512_madd52lo_epu64(t1, a1v, bv), b1v, bv);
            let t2 = _mm512_madd52hi_epu64(_mm512_madd52lo_epu64(t2, a2v, bv), b2v, bv);
            let t0 = _mm512_madd52hi_epu64(_mm512_madd52lo_epu64(t0, mv[0], uv), mvu[0], uv);
            let t1 = _mm512_madd52hi_epu64(_mm512_madd52lo_epu64(t1, mv[1], uv), mvu[1], uv);
            let t2 = _mm512_madd52hi_epu64(_mm512_madd52lo_epu64(t2, mv[2], uv), mvu[2], uv);
            // t /= 2^52 (lane 0 is the scalar's business).
            t[k] = [
                _mm512_alignr_epi64::<1>(t1, t0),
                _mm512_alignr_epi64::<1>(t2, t1),
                _mm512_alignr_epi64::<1>(zero, t2),
            ];
        }
    }
    let mut out = [[0u64; LIMBS]; N];
    for k in 0..N {
        let mut lanes = [0u64; LANES];
        for (j, v) in t[k].iter().enumerate() {
            // SAFETY: lanes 8j..8j+8 of `lanes`, j < 3.
            unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().add(8 * j).cast(), *v) };
        }
        lanes[0] = x[k];
        // Carry the lanes (the value is below 2m < 2^1025: nothing leaves lane 19).
        let mut c = 0u64;
        for l in lanes.iter_mut().take(L52) {
            let y = l.wrapping_add(c);
            *l = y & MASK52;
            c = y >> 52;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector conversion equals the scalar one (both shifts, all-ones and patterned words).
    #[test]
    fn radix52_vector_matches_scalar() {
        if !super::super::mont::has_ifma() {
            return;
        }
        let mut x = [u64::MAX; LIMBS];
        for round in 0..64u64 {
            for (shift, plan) in [(0, &PLAN_A), (16, &PLAN_B)] {
                let want = to_radix52(&x, shift);
                let mut got = [0u64; LANES];
                // SAFETY: the CPU has AVX-512F (checked above); three stores of 8 lanes.
                unsafe {
                    let v = to_radix52_v(&x, plan);
                    for (j, w) in v.iter().enumerate() {
                        _mm512_storeu_si512(got.as_mut_ptr().add(8 * j).cast(), *w);
                    }
                }
                assert_eq!(got, want, "shift {shift}");
                // Value 2^1024 − 1 only fits shifted by 16 into 1040 bits: fine for both here,
                // the top bits above 2^1040 are not asked for.
                let mut back = [0u64; LANES];
                back[..L52].copy_from_slice(&want[..L52]);
                if shift == 0 {
                    assert_eq!(from_radix52(&back)[..LIMBS], x[..]);
                }
            }
            for (i, w) in x.iter_mut().enumerate() {
                *w = w
                    .rotate_left(7 + i as u32)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(round);
            }
        }
    }
}
