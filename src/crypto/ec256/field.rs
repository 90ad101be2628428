//! The P-256 base field F_p, p = 2^256 − 2^224 + 2^192 + 2^96 − 1 (SP 800-186 §3.2.1.3; the
//! curve RFC 6507 §3.2 fixes for ECCSI), in Montgomery form with R = 2^256 over 4×64-bit limbs.
//!
//! Multiplication is a·b·R^−1 mod p by coarsely integrated operand scanning (CIOS). Since
//! p ≡ −1 (mod 2^64), the Montgomery constant −p^−1 mod 2^64 is 1: each reduction word u is
//! simply the low word of the running sum. Two backends compute the same value:
//!
//! * [`Portable`]: `u128` products, for every target (also a `const fn`, for the constants);
//! * [`Adx`] (x86-64): `mulx`/`adcx`/`adox` in `core::arch::asm!` (module `adx`), with a
//!   dedicated squaring, used only after the CPU was seen to have BMI2 and ADX (see
//!   [`super::backend`]).
//!
//! Addition and subtraction are shared by both backends: on x86-64 short `asm!` carry chains
//! with `cmovnc` / a masked p (baseline instructions, module `adx`), elsewhere the Rust forms
//! (`add_portable`, `sub_portable`, which the tests compare with them).
//!
//! Every operation is constant time: no branch or memory index depends on a value; the final
//! conditional subtractions are mask selects or `cmov`. Values are kept fully reduced (< p).

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// Limbs of p, least significant first.
pub(crate) const P: [u64; 4] = [
    0xFFFF_FFFF_FFFF_FFFF,
    0x0000_0000_FFFF_FFFF,
    0x0000_0000_0000_0000,
    0xFFFF_FFFF_0000_0001,
];

/// R² mod p (R = 2^256), for conversion into Montgomery form.
const R2: [u64; 4] = [
    0x0000_0000_0000_0003,
    0xFFFF_FFFB_FFFF_FFFF,
    0xFFFF_FFFF_FFFF_FFFE,
    0x0000_0004_FFFF_FFFD,
];

/// A field element in Montgomery form (value·R mod p), always below p.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fe(pub(crate) [u64; 4]);

/// The field multiplication a backend provides; everything else is shared.
pub trait FieldMul: Copy {
    /// a·b·R^−1 mod p for a, b < p.
    fn mul(a: &Fe, b: &Fe) -> Fe;
    /// a²·R^−1 mod p.
    #[inline(always)]
    fn square(a: &Fe) -> Fe {
        Self::mul(a, a)
    }
}

/// The `u128` backend.
#[derive(Clone, Copy, Debug)]
pub struct Portable;

impl FieldMul for Portable {
    #[inline(always)]
    fn mul(a: &Fe, b: &Fe) -> Fe {
        Fe(mul_portable(&a.0, &b.0))
    }
}

/// The `mulx`/`adcx`/`adox` backend. Crate-private (like this module); the crate uses it only
/// through `super::backend`, which selects it only when the CPU has BMI2 and ADX (or a test
/// forced it on a CPU that executes them).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub struct Adx(pub(super) ());

#[cfg(target_arch = "x86_64")]
impl FieldMul for Adx {
    #[inline(always)]
    fn mul(a: &Fe, b: &Fe) -> Fe {
        // SAFETY: `Adx` is crate-private and used only when `super::backend` selected it, which
        // happens only where the CPU has BMI2 and ADX (or a test forced it on a CPU that
        // executes them): the instructions are available.
        Fe(unsafe { super::adx::mul(&a.0, &b.0) })
    }

    #[inline(always)]
    fn square(a: &Fe) -> Fe {
        // SAFETY: as for `mul`.
        Fe(unsafe { super::adx::sqr(&a.0) })
    }
}

/// x·y + a + b, which never exceeds 2^128 − 1. Wrapping: an overflow check would be a branch
/// on the values in builds with overflow checks (tests).
#[inline(always)]
const fn mac(x: u64, y: u64, a: u64, b: u64) -> u128 {
    (x as u128)
        .wrapping_mul(y as u128)
        .wrapping_add(a as u128)
        .wrapping_add(b as u128)
}

/// t − p if t ≥ p else t, for t < 2p held in 5 words; branch-free.
#[inline(always)]
const fn final_sub(t: [u64; 5]) -> [u64; 4] {
    let mut r = [0u64; 4];
    let mut borrow = 0u64;
    let mut i = 0;
    while i < 4 {
        let (d, b1) = t[i].overflowing_sub(P[i]);
        let (d, b2) = d.overflowing_sub(borrow);
        r[i] = d;
        borrow = (b1 | b2) as u64;
        i += 1;
    }
    let (_, under) = t[4].overflowing_sub(borrow);
    select_mask(&t, &r, 0u64.wrapping_sub(under as u64))
}

/// `a` where mask is all ones, `b` where it is zero (first four words of `a`).
#[inline(always)]
const fn select_mask(a: &[u64; 5], b: &[u64; 4], mask: u64) -> [u64; 4] {
    [
        (a[0] & mask) | (b[0] & !mask),
        (a[1] & mask) | (b[1] & !mask),
        (a[2] & mask) | (b[2] & !mask),
        (a[3] & mask) | (b[3] & !mask),
    ]
}

/// CIOS Montgomery multiplication with `u128` products (−p^−1 mod 2^64 = 1).
#[inline(always)]
pub(crate) const fn mul_portable(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut t = [0u64; 5];
    let mut i = 0;
    while i < 4 {
        let bi = b[i];
        let mut carry = 0u64;
        let mut j = 0;
        while j < 4 {
            let s = mac(a[j], bi, t[j], carry);
            t[j] = s as u64;
            carry = (s >> 64) as u64;
            j += 1;
        }
        let top = (t[4] as u128).wrapping_add(carry as u128);
        t[4] = top as u64;
        let extra = (top >> 64) as u64;
        // u = t_0 (Montgomery constant 1); t = (t + p·u) / 2^64.
        let u = t[0];
        let s = mac(P[0], u, t[0], 0);
        let mut carry = (s >> 64) as u64;
        let mut j = 1;
        while j < 4 {
            let s = mac(P[j], u, t[j], carry);
            t[j - 1] = s as u64;
            carry = (s >> 64) as u64;
            j += 1;
        }
        let s = (t[4] as u128)
            .wrapping_add(carry as u128)
            .wrapping_add((extra as u128) << 64);
        t[3] = s as u64;
        t[4] = (s >> 64) as u64;
        i += 1;
    }
    final_sub(t)
}

impl Fe {
    pub const ZERO: Fe = Fe([0; 4]);
    /// 1 in Montgomery form: R mod p = 2^256 − p.
    pub const ONE: Fe = Fe([
        0x0000_0000_0000_0001,
        0xFFFF_FFFF_0000_0000,
        0xFFFF_FFFF_FFFF_FFFF,
        0x0000_0000_FFFF_FFFE,
    ]);

    /// From canonical limbs (value < p), into Montgomery form.
    pub const fn from_canonical(limbs: [u64; 4]) -> Fe {
        Fe(mul_portable(&limbs, &R2))
    }

    /// From 32 big-endian octets; `None` (in constant time) when the value is not below p.
    pub fn from_be_bytes(bytes: &[u8; 32]) -> subtle::CtOption<Fe> {
        let mut l = [0u64; 4];
        for (i, limb) in l.iter_mut().enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[32 - 8 * (i + 1)..32 - 8 * i]);
            *limb = u64::from_be_bytes(w);
        }
        // l < p iff l − p borrows.
        let mut borrow = 0u64;
        for (x, m) in l.iter().zip(P.iter()) {
            let (d, b1) = x.overflowing_sub(*m);
            let (_, b2) = d.overflowing_sub(borrow);
            borrow = u64::from(b1 | b2);
        }
        let fe = Fe::from_canonical(l);
        subtle::CtOption::new(fe, Choice::from(borrow as u8))
    }

    /// 32 big-endian octets of the canonical value.
    pub fn to_be_bytes(self) -> [u8; 32] {
        let l = mul_portable(&self.0, &[1, 0, 0, 0]);
        let mut out = [0u8; 32];
        for (i, limb) in l.iter().enumerate() {
            out[32 - 8 * (i + 1)..32 - 8 * i].copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    /// a + b mod p.
    #[inline(always)]
    pub fn add(&self, b: &Fe) -> Fe {
        #[cfg(target_arch = "x86_64")]
        {
            Fe(super::adx::add(&self.0, &b.0))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self.add_portable(b)
        }
    }

    /// a + b mod p in Rust (the reference for the tests; the only one off x86-64).
    #[inline(always)]
    #[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
    pub(crate) fn add_portable(&self, b: &Fe) -> Fe {
        let mut t = [0u64; 5];
        let mut carry = 0u64;
        for (i, w) in t.iter_mut().take(4).enumerate() {
            let s = u128::from(self.0[i])
                .wrapping_add(u128::from(b.0[i]))
                .wrapping_add(u128::from(carry));
            *w = s as u64;
            carry = (s >> 64) as u64;
        }
        t[4] = carry;
        Fe(final_sub(t))
    }

    /// 2a mod p.
    #[inline(always)]
    pub fn double(&self) -> Fe {
        self.add(self)
    }

    /// a − b mod p.
    #[inline(always)]
    pub fn sub(&self, b: &Fe) -> Fe {
        #[cfg(target_arch = "x86_64")]
        {
            Fe(super::adx::sub(&self.0, &b.0))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self.sub_portable(b)
        }
    }

    /// a − b mod p in Rust (the reference for the tests; the only one off x86-64).
    #[inline(always)]
    #[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
    pub(crate) fn sub_portable(&self, b: &Fe) -> Fe {
        let mut d = [0u64; 4];
        let mut borrow = 0u64;
        for (i, w) in d.iter_mut().enumerate() {
            let (x, b1) = self.0[i].overflowing_sub(b.0[i]);
            let (x, b2) = x.overflowing_sub(borrow);
            *w = x;
            borrow = u64::from(b1 | b2);
        }
        // Add p back under a mask when the subtraction borrowed.
        let mask = core::hint::black_box(0u64.wrapping_sub(borrow));
        let mut carry = 0u64;
        for (w, m) in d.iter_mut().zip(P.iter()) {
            let s = u128::from(*w)
                .wrapping_add(u128::from(m & mask))
                .wrapping_add(u128::from(carry));
            *w = s as u64;
            carry = (s >> 64) as u64;
        }
        Fe(d)
    }

    /// −a mod p.
    #[inline(always)]
    pub fn neg(&self) -> Fe {
        Fe::ZERO.sub(self)
    }

    /// Whether a = 0, in constant time.
    #[inline(always)]
    pub fn is_zero(&self) -> Choice {
        let acc = self.0[0] | self.0[1] | self.0[2] | self.0[3];
        acc.ct_eq(&0)
    }

    /// a^(p−2) = a^−1 (0 for a = 0), by a fixed addition chain: 255 squarings and 12
    /// multiplications; the exponent is public, so the sequence never depends on a.
    pub fn invert<M: FieldMul>(&self) -> Fe {
        let sqn = |x: &Fe, n: usize| {
            let mut y = *x;
            for _ in 0..n {
                y = M::square(&y);
            }
            y
        };
        // x_k = a^(2^k − 1).
        let x1 = *self;
        let x2 = M::mul(&M::square(&x1), &x1);
        let x3 = M::mul(&M::square(&x2), &x1);
        let x6 = M::mul(&sqn(&x3, 3), &x3);
        let x12 = M::mul(&sqn(&x6, 6), &x6);
        let x15 = M::mul(&sqn(&x12, 3), &x3);
        let x30 = M::mul(&sqn(&x15, 15), &x15);
        let x32 = M::mul(&sqn(&x30, 2), &x2);
        // p − 2 = 1^32 0^31 1 0^96 1^94 0 1 (most significant bit first).
        let mut t = M::mul(&sqn(&x32, 32), &x1);
        t = sqn(&t, 96);
        t = M::mul(&sqn(&t, 32), &x32);
        t = M::mul(&sqn(&t, 32), &x32);
        t = M::mul(&sqn(&t, 30), &x30);
        M::mul(&sqn(&t, 2), &x1)
    }
}

impl ConditionallySelectable for Fe {
    #[inline(always)]
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Fe([
            u64::conditional_select(&a.0[0], &b.0[0], choice),
            u64::conditional_select(&a.0[1], &b.0[1], choice),
            u64::conditional_select(&a.0[2], &b.0[2], choice),
            u64::conditional_select(&a.0[3], &b.0[3], choice),
        ])
    }
}

impl ConstantTimeEq for Fe {
    #[inline(always)]
    fn ct_eq(&self, other: &Self) -> Choice {
        let d = (self.0[0] ^ other.0[0])
            | (self.0[1] ^ other.0[1])
            | (self.0[2] ^ other.0[2])
            | (self.0[3] ^ other.0[3]);
        d.ct_eq(&0)
    }
}

impl PartialEq for Fe {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Fe {}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_bigint::{NonZero, U256};
    use proptest::prelude::*;

    /// The reference: crypto-bigint's modular arithmetic on canonical values.
    fn modulus() -> NonZero<U256> {
        NonZero::new(U256::from_words(P)).expect("p is nonzero")
    }

    fn canonical(x: [u64; 4]) -> U256 {
        U256::from_words(x).rem(&modulus())
    }

    fn fe(x: &U256) -> Fe {
        Fe::from_canonical(*x.as_words())
    }

    fn value(f: &Fe) -> U256 {
        U256::from_words(mul_portable(&f.0, &[1, 0, 0, 0]))
    }

    fn check(x: [u64; 4], y: [u64; 4]) {
        let (a, b) = (canonical(x), canonical(y));
        let (fa, fb) = (fe(&a), fe(&b));
        let want = a.mul_mod(&b, &modulus());
        let want_sq = a.mul_mod(&a, &modulus());
        let pm = Portable::mul(&fa, &fb);
        let ps = Portable::square(&fa);
        assert_eq!(value(&pm), want);
        assert_eq!(value(&ps), want_sq);
        // Fully reduced: the limbs are below p.
        assert!(U256::from_words(pm.0) < U256::from_words(P));
        assert!(U256::from_words(ps.0) < U256::from_words(P));
        #[cfg(target_arch = "x86_64")]
        if super::super::adx_if_available().is_some() {
            // The same limbs as the portable field (both fully reduced).
            assert_eq!(Adx::mul(&fa, &fb).0, pm.0);
            assert_eq!(Adx::mul(&fb, &fa).0, pm.0);
            assert_eq!(Adx::square(&fa).0, ps.0);
            assert_eq!(Adx::mul(&fa, &fa).0, ps.0);
            // And on the canonical limbs taken as Montgomery forms (edge limbs such as p − 1
            // reach the multiplication unchanged).
            let (ra, rb) = (Fe(*a.as_words()), Fe(*b.as_words()));
            assert_eq!(Adx::mul(&ra, &rb).0, Portable::mul(&ra, &rb).0);
            assert_eq!(Adx::square(&ra).0, Portable::square(&ra).0);
        }
        assert_eq!(value(&fa.add(&fb)), a.add_mod(&b, &modulus()));
        assert_eq!(fa.add(&fb), fa.add_portable(&fb));
        assert_eq!(fa.sub(&fb), fa.sub_portable(&fb));
        let (ra, rb) = (Fe(*a.as_words()), Fe(*b.as_words()));
        assert_eq!(ra.add(&rb), ra.add_portable(&rb));
        assert_eq!(ra.sub(&rb), ra.sub_portable(&rb));
        assert!(U256::from_words(ra.add(&rb).0) < U256::from_words(P));
        assert!(U256::from_words(ra.sub(&rb).0) < U256::from_words(P));
        assert_eq!(value(&fa.sub(&fb)), a.sub_mod(&b, &modulus()));
        assert_eq!(value(&fa.neg()), U256::ZERO.sub_mod(&a, &modulus()));
    }

    #[test]
    fn constants() {
        assert_eq!(Fe::from_canonical([1, 0, 0, 0]), Fe::ONE);
        assert_eq!(value(&Fe::ONE), U256::ONE);
        // R² mod p: 2^512 mod p computed by crypto-bigint.
        let r = U256::MAX.rem(&modulus()).add_mod(&U256::ONE, &modulus());
        assert_eq!(*r.mul_mod(&r, &modulus()).as_words(), R2);
        let mut pm1 = [0u8; 32];
        pm1.copy_from_slice(&U256::from_words(P).wrapping_sub(&U256::ONE).to_be_bytes());
        assert!(bool::from(Fe::from_be_bytes(&pm1).is_some()));
        assert_eq!(Fe::from_be_bytes(&pm1).unwrap().to_be_bytes(), pm1);
        let mut p = pm1;
        p[31] += 1;
        assert!(bool::from(Fe::from_be_bytes(&p).is_none()));
    }

    #[test]
    fn edge_values_match_crypto_bigint() {
        let pm1 = *U256::from_words(P).wrapping_sub(&U256::ONE).as_words();
        let pm2 = *U256::from_words(P)
            .wrapping_sub(&U256::from_u64(2))
            .as_words();
        let vals = [pm1, pm2, [1, 0, 0, 0], [0; 4], [u64::MAX; 4], P];
        for a in vals {
            for b in vals {
                check(a, b);
            }
        }
    }

    #[test]
    fn inversion() {
        let mut x = U256::from_u64(0x1234_5678);
        for _ in 0..20 {
            x = x
                .mul_mod(&x, &modulus())
                .add_mod(&U256::from_u64(3), &modulus());
            let inv = fe(&x).invert::<Portable>();
            assert_eq!(value(&Portable::mul(&fe(&x), &inv)), U256::ONE);
            #[cfg(target_arch = "x86_64")]
            if super::super::adx_if_available().is_some() {
                assert_eq!(fe(&x).invert::<Adx>(), inv);
            }
        }
        assert_eq!(Fe::ZERO.invert::<Portable>(), Fe::ZERO);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn backends_match_crypto_bigint(a in any::<[u64; 4]>(), b in any::<[u64; 4]>()) {
            check(a, b);
            check(a, a);
        }
    }
}
