//! F_p² = F_p[i], i² = −1 (RFC 6508 §2.1: p ≡ 3 mod 4 makes −1 a non-residue), and the
//! projective representation PF_p that RFC 6508 §2.1 and §3.2 use for pairing values:
//! x0 + i·x1 is only meaningful up to an F_p* factor and is represented by x1/x0.
//!
//! Multiplication is Karatsuba (3 F_p products), squaring uses (x0 + x1)(x0 − x1) (2 products).
//! Everything is constant-time except the explicitly `*_vartime` exponentiation by a public
//! exponent.

use super::fp::Fp;
use crypto_bigint::U1024;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// x0 + i·x1.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Fp2 {
    pub c0: Fp,
    pub c1: Fp,
}

impl zeroize::DefaultIsZeroes for Fp2 {}

impl Fp2 {
    pub const ZERO: Self = Self {
        c0: Fp::ZERO,
        c1: Fp::ZERO,
    };
    pub const ONE: Self = Self {
        c0: Fp::ONE,
        c1: Fp::ZERO,
    };

    #[inline(always)]
    pub const fn new(c0: Fp, c1: Fp) -> Self {
        Self { c0, c1 }
    }

    /// Karatsuba: (a0 + i a1)(b0 + i b1) = (a0b0 − a1b1) + i((a0 + a1)(b0 + b1) − a0b0 − a1b1).
    #[inline(always)]
    pub fn mul(&self, rhs: &Self) -> Self {
        if !Fp::batched() {
            let v0 = self.c0 * rhs.c0;
            let v1 = self.c1 * rhs.c1;
            let t = (self.c0 + self.c1) * (rhs.c0 + rhs.c1);
            return Self {
                c0: v0 - v1,
                c1: t - v0 - v1,
            };
        }
        let s0 = self.c0 + self.c1;
        let s1 = rhs.c0 + rhs.c1;
        let [v0, v1, t] = Fp::mul_n([&self.c0, &self.c1, &s0], [&rhs.c0, &rhs.c1, &s1]);
        Self {
            c0: v0 - v1,
            c1: t - v0 - v1,
        }
    }

    /// (a0 + i a1)² = (a0 + a1)(a0 − a1) + i·2a0a1.
    #[inline(always)]
    pub fn square(&self) -> Self {
        if !Fp::batched() {
            let c0 = (self.c0 + self.c1) * (self.c0 - self.c1);
            let c1 = (self.c0 * self.c1).double();
            return Self { c0, c1 };
        }
        let s = self.c0 + self.c1;
        let d = self.c0 - self.c1;
        let [c0, m] = Fp::mul_n([&s, &self.c0], [&d, &self.c1]);
        Self { c0, c1: m.double() }
    }

    /// Multiplication by (1 + i·t), the normalised PF_p representative of t (2 products).
    #[inline(always)]
    pub fn mul_by_one_plus_it(&self, t: &Fp) -> Self {
        let [x, y] = Fp::mul_n([&self.c1, &self.c0], [t, t]);
        Self {
            c0: self.c0 - x,
            c1: self.c1 + y,
        }
    }

    /// x0 − i·x1. For x ≠ 0 this is x^−1 times the F_p element x0² + x1², so in PF_p it is
    /// the inverse of x (a free inversion for exponentiations read in PF_p).
    #[inline(always)]
    pub fn conjugate(&self) -> Self {
        Self {
            c0: self.c0,
            c1: -self.c1,
        }
    }

    /// The PF_p value x1/x0 (RFC 6508 §2.1), in constant time. If x0 = 0 — impossible for
    /// an element of order dividing q, which is odd — the result is 0 rather than a panic;
    /// callers compare it with expected values, so a bogus input simply fails that check.
    pub fn to_pfp(&self) -> Fp {
        let (inv, ok) = self.c0.invert();
        Fp::conditional_select(&Fp::ZERO, &(self.c1 * inv), ok)
    }

    /// self^e for a public exponent (square-and-multiply, variable time in `e` only).
    pub fn pow_vartime(&self, e: &U1024) -> Self {
        let mut acc = Self::ONE;
        let bits = e.bit_width_vartime();
        for i in (0..bits).rev() {
            acc = acc.square();
            if e.bit_vartime(i) {
                acc = acc.mul(self);
            }
        }
        acc
    }
}

impl ConditionallySelectable for Fp2 {
    #[inline(always)]
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Self {
            c0: Fp::conditional_select(&a.c0, &b.c0, choice),
            c1: Fp::conditional_select(&a.c1, &b.c1, choice),
        }
    }
}

impl ConstantTimeEq for Fp2 {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.c0.ct_eq(&other.c0) & self.c1.ct_eq(&other.c1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(a: u64, b: u64) -> Fp2 {
        Fp2::new(Fp::from_u64(a), Fp::from_u64(b))
    }

    #[test]
    fn mul_square_agree_and_i_squared_is_minus_one() {
        let x = sample(7, 11);
        assert_eq!(x.square(), x.mul(&x));
        let i = sample(0, 1);
        assert_eq!(i.square(), Fp2::new(-Fp::ONE, Fp::ZERO));
        // x·conj(x) lies in F_p.
        let conj = Fp2::new(x.c0, -x.c1);
        assert_eq!(x.mul(&conj).c1, Fp::ZERO);
        assert_eq!(
            x.pow_vartime(&U1024::from_u64(5)),
            x.square().square().mul(&x)
        );
        let t = Fp::from_u64(9);
        assert_eq!(x.mul_by_one_plus_it(&t), x.mul(&Fp2::new(Fp::ONE, t)));
    }

    #[test]
    fn pfp_projection_ignores_fp_factors() {
        let x = sample(3, 5);
        assert_eq!(
            x.to_pfp(),
            x.mul(&Fp2::new(Fp::from_u64(1234), Fp::ZERO)).to_pfp()
        );
        assert_eq!(Fp2::new(Fp::ZERO, Fp::ONE).to_pfp(), Fp::ZERO);
    }
}
