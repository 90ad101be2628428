//! Montgomery multiplication of 1024-bit (16-limb) residues for the fixed moduli p and q
//! (RFC 6508 parameter set 1), specialised for speed (issue 15, item 3).
//!
//! All backends compute the same value as crypto-bigint's `ConstMontyForm` multiplication,
//! a·b·2^−1024 mod m for a, b < m, by coarsely integrated operand scanning (CIOS: per word b_i,
//! t += a·b_i, then t += m·u with u = t_0·(−m^−1) mod 2^64 and a shift by one word), followed by
//! one subtraction of m selected by a mask. Nothing branches on or indexes by the values.
//!
//! * [`Backend::Ifma`]: radix 2^52 with AVX-512 IFMA (`super::ifma`, a different but equivalent
//!   reduction: 20 steps of 52 bits on b·2^16), chosen at run time when the CPU announces
//!   AVX-512F and IFMA (valgrind's emulated CPU does not, so there detection picks `Adx`);
//! * [`Backend::Adx`]: x86-64 `mulx`/`adcx`/`adox` in `core::arch::asm!` — two independent carry
//!   chains per row — chosen at run time when the CPU has BMI2 and ADX (and no IFMA);
//! * [`Backend::Portable`]: the same CIOS with `u128` products, for every other target;
//! * [`Backend::CryptoBigint`]: crypto-bigint's own multiplication, kept for comparison.
//!
//! Bound: p < 0.6·2^1024 (q < 2^1022), so with a, b < m the running t stays below 2^1088 before
//! each reduction and below 2m after it; 17 words hold it.

use core::sync::atomic::{AtomicU8, Ordering};

use super::LIMBS;

/// A modulus with its Montgomery constant −m^−1 mod 2^64, and both in radix 2^52 for the
/// IFMA backend.
pub(crate) struct Modulus {
    pub(crate) m: [u64; LIMBS],
    pub(crate) minv: u64,
    /// m in 20 limbs of 52 bits (24 lanes, the top four zero).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) m52: [u64; 24],
    /// −m^−1 mod 2^52.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) k52: u64,
}

impl Modulus {
    pub(crate) const fn new(m: [u64; LIMBS]) -> Self {
        // Newton's iteration for m_0^−1 mod 2^64 (m_0 odd): each step doubles the correct bits.
        let m0 = m[0];
        let mut inv: u64 = 1;
        let mut i = 0;
        while i < 6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(m0.wrapping_mul(inv)));
            i += 1;
        }
        Self {
            m,
            minv: inv.wrapping_neg(),
            m52: radix52(&m),
            k52: inv.wrapping_neg() & ((1 << 52) - 1),
        }
    }
}

/// m as 20 limbs of 52 bits in 24 lanes (m < 2^1024).
const fn radix52(m: &[u64; LIMBS]) -> [u64; 24] {
    let mut out = [0u64; 24];
    let mut k = 0;
    while k < 20 {
        let start = 52 * k;
        let (w, s) = (start / 64, (start % 64) as u32);
        let lo = m[w] >> s;
        let hi = if s > 12 && w + 1 < LIMBS {
            m[w + 1] << (64 - s)
        } else {
            0
        };
        out[k] = (lo | hi) & ((1 << 52) - 1);
        k += 1;
    }
    out
}

/// Which implementation [`mul`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Backend {
    /// crypto-bigint's `ConstMontyForm` multiplication.
    CryptoBigint = 1,
    /// CIOS with `u128` products.
    Portable = 2,
    /// CIOS with x86-64 `mulx`/`adcx`/`adox`.
    Adx = 3,
    /// Radix 2^52 with AVX-512 IFMA (`fp::ifma`).
    Ifma = 4,
}

static BACKEND: AtomicU8 = AtomicU8::new(0);

/// The fastest backend this CPU supports.
pub fn detect() -> Backend {
    if has_ifma() {
        return Backend::Ifma;
    }
    if crate::crypto::has_mulx_adx() {
        return Backend::Adx;
    }
    Backend::Portable
}

/// Whether the CPU (as announced by CPUID, with the OS saving the vector state) has AVX-512F
/// and AVX-512 IFMA. Valgrind's emulated CPU announces neither.
pub fn has_ifma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512ifma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The backend in use (detected on first use).
#[inline(always)]
pub fn backend() -> Backend {
    match BACKEND.load(Ordering::Relaxed) {
        1 => Backend::CryptoBigint,
        2 => Backend::Portable,
        3 => Backend::Adx,
        4 => Backend::Ifma,
        _ => {
            let b = detect();
            BACKEND.store(b as u8, Ordering::Relaxed);
            b
        }
    }
}

/// Selects the backend for the whole process (benchmarks compare old and new in one run).
/// `Adx` on a CPU without BMI2/ADX, or `Ifma` on one without AVX-512 IFMA, falls back to the
/// detected backend.
pub fn set_backend(b: Backend) {
    let b = match b {
        Backend::Adx if !crate::crypto::has_mulx_adx() => detect(),
        Backend::Ifma if !has_ifma() => detect(),
        b => b,
    };
    BACKEND.store(b as u8, Ordering::Relaxed);
}

/// Selects `b` without checking the CPU: for running the ADX backend under valgrind, whose
/// emulated CPU executes `mulx`/`adcx`/`adox` but does not announce ADX (tests/ctgrind.rs).
///
/// # Safety
/// The CPU must execute the backend's instructions.
#[doc(hidden)]
pub unsafe fn force_backend(b: Backend) {
    BACKEND.store(b as u8, Ordering::Relaxed);
}

/// t − m if t ≥ m else t, for t < 2m held in 17 words; branch-free.
#[inline(always)]
pub(super) fn final_sub(t: &[u64; LIMBS + 1], m: &[u64; LIMBS]) -> [u64; LIMBS] {
    let mut r = [0u64; LIMBS];
    let mut borrow = 0u64;
    for i in 0..LIMBS {
        let (d, b1) = t[i].overflowing_sub(m[i]);
        let (d, b2) = d.overflowing_sub(borrow);
        r[i] = d;
        borrow = u64::from(b1 | b2);
    }
    // t − m < 0 iff the borrow out of the 17th word is set: t16 − borrow underflows.
    let (_, under) = t[LIMBS].overflowing_sub(borrow);
    // Through `black_box`: otherwise LLVM, knowing the mask is 0 or all ones, compiles the
    // select below into a branch (tests/ctgrind.rs found it doing so).
    let keep_t = core::hint::black_box(0u64.wrapping_sub(u64::from(under)));
    let mut out = [0u64; LIMBS];
    for i in 0..LIMBS {
        out[i] = (t[i] & keep_t) | (r[i] & !keep_t);
    }
    out
}

/// x·y + a + b, which never exceeds 2^128 − 1. Wrapping adds: an overflow check would be a
/// branch on the values in builds with overflow checks (tests).
#[inline(always)]
fn mac(x: u64, y: u64, a: u64, b: u64) -> u128 {
    u128::from(x)
        .wrapping_mul(u128::from(y))
        .wrapping_add(u128::from(a))
        .wrapping_add(u128::from(b))
}

/// CIOS with `u128` products.
#[inline]
pub(crate) fn mul_portable(a: &[u64; LIMBS], b: &[u64; LIMBS], n: &Modulus) -> [u64; LIMBS] {
    let m = &n.m;
    let mut t = [0u64; LIMBS + 1];
    for &bi in b.iter() {
        // t += a·b_i (fits in 17 words: see the module docs).
        let mut carry = 0u64;
        for j in 0..LIMBS {
            let s = mac(a[j], bi, t[j], carry);
            t[j] = s as u64;
            carry = (s >> 64) as u64;
        }
        t[LIMBS] = t[LIMBS].wrapping_add(carry);
        // t = (t + m·u) / 2^64.
        let u = t[0].wrapping_mul(n.minv);
        let s = mac(m[0], u, t[0], 0);
        let mut carry = (s >> 64) as u64;
        for j in 1..LIMBS {
            let s = mac(m[j], u, t[j], carry);
            t[j - 1] = s as u64;
            carry = (s >> 64) as u64;
        }
        let s = u128::from(t[LIMBS]).wrapping_add(u128::from(carry));
        t[LIMBS - 1] = s as u64;
        t[LIMBS] = (s >> 64) as u64;
    }
    let out = final_sub(&t, m);
    zeroize::Zeroize::zeroize(&mut t);
    out
}

/// a·b·2^−1024 mod m with the selected backend (`CryptoBigint` is handled by the caller).
#[inline(always)]
pub(crate) fn mul(a: &[u64; LIMBS], b: &[u64; LIMBS], n: &Modulus, be: Backend) -> [u64; LIMBS] {
    #[cfg(target_arch = "x86_64")]
    {
        if be == Backend::Ifma {
            // SAFETY: `Ifma` is only ever selected when the CPU has AVX-512F and IFMA.
            return unsafe { super::ifma::mul(a, b, n) };
        }
        if be == Backend::Adx {
            // SAFETY: `Adx` is only ever selected when the CPU has BMI2 and ADX.
            return unsafe { adx::mul(a, b, n) };
        }
    }
    let _ = be;
    mul_portable(a, b, n)
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod adx {
    use super::{final_sub, Modulus, LIMBS};

    /// One step of t += a·b_i: word j of a times rdx, the low half added into t_j on the CF
    /// chain, the previous high half on the OF chain.
    macro_rules! mul_step {
        ($j:literal, $hi:literal, $prev:literal) => {
            concat!(
                "mulx ",
                $hi,
                ", r8, qword ptr [{a} + 8*",
                $j,
                "]\n",
                "adcx r8, qword ptr [{t} + 8*",
                $j,
                "]\n",
                "adox r8, ",
                $prev,
                "\n",
                "mov qword ptr [{t} + 8*",
                $j,
                "], r8\n",
            )
        };
    }

    /// One step of t = (t + m·u)/2^64: as [`mul_step`], the sum stored one word lower.
    macro_rules! red_step {
        ($j:literal, $hi:literal, $prev:literal) => {
            concat!(
                "mulx ",
                $hi,
                ", r8, qword ptr [{m} + 8*",
                $j,
                "]\n",
                "adcx r8, qword ptr [{t} + 8*",
                $j,
                "]\n",
                "adox r8, ",
                $prev,
                "\n",
                "mov qword ptr [{t} + 8*",
                $j,
                " - 8], r8\n",
            )
        };
    }

    /// CIOS, one `asm!` block per word of b. The high halves alternate between r10 and r11.
    ///
    /// # Safety
    /// The CPU must support BMI2 and ADX.
    #[inline]
    #[target_feature(enable = "bmi2,adx")]
    pub(crate) unsafe fn mul(a: &[u64; LIMBS], b: &[u64; LIMBS], n: &Modulus) -> [u64; LIMBS] {
        let mut t = [0u64; LIMBS + 1];
        for &bi in b.iter() {
            // SAFETY: reads a[0..16] and m[0..16], reads and writes t[0..17]; clobbers only
            // the declared registers and the flags.
            unsafe {
                core::arch::asm!(
                    // t += a·b_i. xor clears CF and OF and the "previous high half".
                    "xor r11d, r11d",
                    mul_step!(0, "r10", "r11"),
                    mul_step!(1, "r11", "r10"),
                    mul_step!(2, "r10", "r11"),
                    mul_step!(3, "r11", "r10"),
                    mul_step!(4, "r10", "r11"),
                    mul_step!(5, "r11", "r10"),
                    mul_step!(6, "r10", "r11"),
                    mul_step!(7, "r11", "r10"),
                    mul_step!(8, "r10", "r11"),
                    mul_step!(9, "r11", "r10"),
                    mul_step!(10, "r10", "r11"),
                    mul_step!(11, "r11", "r10"),
                    mul_step!(12, "r10", "r11"),
                    mul_step!(13, "r11", "r10"),
                    mul_step!(14, "r10", "r11"),
                    mul_step!(15, "r11", "r10"),
                    // t_16 += last high half + both carries (no overflow: module docs).
                    "mov r8, qword ptr [{t} + 128]",
                    "mov r9d, 0",
                    "adcx r8, r9",
                    "adox r8, r11",
                    "mov qword ptr [{t} + 128], r8",
                    // u = t_0·(−m^−1) mod 2^64, then t = (t + m·u)/2^64.
                    "mov rdx, qword ptr [{t}]",
                    "imul rdx, {minv}",
                    "xor r11d, r11d",
                    // Word 0 of t + m·u is zero by the choice of u: only its carries matter.
                    "mulx r10, r8, qword ptr [{m}]",
                    "adcx r8, qword ptr [{t}]",
                    "adox r8, r11",
                    red_step!(1, "r11", "r10"),
                    red_step!(2, "r10", "r11"),
                    red_step!(3, "r11", "r10"),
                    red_step!(4, "r10", "r11"),
                    red_step!(5, "r11", "r10"),
                    red_step!(6, "r10", "r11"),
                    red_step!(7, "r11", "r10"),
                    red_step!(8, "r10", "r11"),
                    red_step!(9, "r11", "r10"),
                    red_step!(10, "r10", "r11"),
                    red_step!(11, "r11", "r10"),
                    red_step!(12, "r10", "r11"),
                    red_step!(13, "r11", "r10"),
                    red_step!(14, "r10", "r11"),
                    red_step!(15, "r11", "r10"),
                    // t_15 = t_16 + last high half + both carries; t_16 = what overflows.
                    "mov r8, qword ptr [{t} + 128]",
                    "mov r9d, 0",
                    "adcx r8, r9",
                    "adox r8, r11",
                    "mov qword ptr [{t} + 120], r8",
                    "mov r8d, 0",
                    "adcx r8, r9",
                    "adox r8, r9",
                    "mov qword ptr [{t} + 128], r8",
                    a = in(reg) a.as_ptr(),
                    m = in(reg) n.m.as_ptr(),
                    t = in(reg) t.as_mut_ptr(),
                    minv = in(reg) n.minv,
                    inout("rdx") bi => _,
                    out("r8") _,
                    out("r9") _,
                    out("r10") _,
                    out("r11") _,
                    options(nostack),
                );
            }
        }
        let out = final_sub(&t, &n.m);
        zeroize::Zeroize::zeroize(&mut t);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PMonty, QMonty, P, P_MONT, Q, Q_MONT};
    use super::*;
    use crypto_bigint::{Uint, U1024};
    use proptest::prelude::*;

    /// crypto-bigint's Montgomery product of two Montgomery-form words (both < m).
    fn reference_p(a: &[u64; LIMBS], b: &[u64; LIMBS]) -> [u64; LIMBS] {
        let x = PMonty::from_montgomery(Uint::from_words(*a));
        let y = PMonty::from_montgomery(Uint::from_words(*b));
        *x.mul(&y).as_montgomery().as_words()
    }

    fn reference_q(a: &[u64; LIMBS], b: &[u64; LIMBS]) -> [u64; LIMBS] {
        let x = QMonty::from_montgomery(Uint::from_words(*a));
        let y = QMonty::from_montgomery(Uint::from_words(*b));
        *x.mul(&y).as_montgomery().as_words()
    }

    /// Every backend this CPU has, on (a, b), against crypto-bigint.
    fn check(a: &[u64; LIMBS], b: &[u64; LIMBS]) {
        let want_p = reference_p(a, b);
        assert_eq!(mul_portable(a, b, &P_MONT), want_p);
        let want_q = reference_q(&reduce(a, &Q), &reduce(b, &Q));
        assert_eq!(
            mul_portable(&reduce(a, &Q), &reduce(b, &Q), &Q_MONT),
            want_q
        );
        #[cfg(target_arch = "x86_64")]
        if detect() == Backend::Adx {
            // SAFETY: the CPU has BMI2 and ADX.
            unsafe {
                assert_eq!(adx::mul(a, b, &P_MONT), want_p);
                assert_eq!(adx::mul(&reduce(a, &Q), &reduce(b, &Q), &Q_MONT), want_q);
            }
        }
        #[cfg(target_arch = "x86_64")]
        if has_ifma() {
            let (aq, bq) = (reduce(a, &Q), reduce(b, &Q));
            // SAFETY: the CPU has AVX-512F and IFMA.
            unsafe {
                assert_eq!(super::super::ifma::mul(a, b, &P_MONT), want_p);
                assert_eq!(super::super::ifma::mul(&aq, &bq, &Q_MONT), want_q);
                // Two and three products at once, in every position.
                let [x, y] = super::super::ifma::mul_n::<2>([a, &aq], [b, &bq], &P_MONT);
                assert_eq!(x, want_p);
                assert_eq!(y, reference_p(&aq, &bq));
                let [x, y, z] =
                    super::super::ifma::mul_n::<3>([&aq, &bq, &aq], [&bq, &aq, &aq], &Q_MONT);
                assert_eq!(x, want_q);
                assert_eq!(y, want_q);
                assert_eq!(z, reference_q(&aq, &aq));
            }
        }
    }

    fn reduce(x: &[u64; LIMBS], m: &U1024) -> [u64; LIMBS] {
        let nz = crypto_bigint::NonZero::new(*m).expect("modulus is nonzero");
        *Uint::from_words(*x).rem(&nz).as_words()
    }

    fn below_p(words: [u64; LIMBS]) -> [u64; LIMBS] {
        reduce(&words, &P)
    }

    #[test]
    fn montgomery_constants() {
        assert_eq!(P_MONT.m[0].wrapping_mul(P_MONT.minv), u64::MAX);
        assert_eq!(Q_MONT.m[0].wrapping_mul(Q_MONT.minv), u64::MAX);
    }

    #[test]
    fn edge_values_match_crypto_bigint() {
        let pm1 = *P.wrapping_sub(&U1024::ONE).as_words();
        let pm2 = *P.wrapping_sub(&U1024::from_u64(2)).as_words();
        let one = *U1024::ONE.as_words();
        let zero = [0u64; LIMBS];
        let high = below_p([u64::MAX; LIMBS]);
        let vals = [pm1, pm2, one, zero, high];
        for a in &vals {
            for b in &vals {
                check(a, b);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn backends_match_crypto_bigint(a in any::<[u64; LIMBS]>(), b in any::<[u64; LIMBS]>()) {
            check(&below_p(a), &below_p(b));
        }

        #[test]
        fn squares_match_crypto_bigint(a in any::<[u64; LIMBS]>()) {
            let a = below_p(a);
            check(&a, &a);
        }
    }
}
