//! The reduced Tate–Lichtenbaum pairing of RFC 6508 §3.2 on E: y² = x³ − 3x, parameter set 1.
//!
//! ⟨R, Q⟩ = f_R(ψ(Q))^((p+1)/q) read in PF_p (RFC 6508 §2.1), where ψ(x, y) = (−x, i·y) is the
//! distortion map and f_R the Miller function of the loop over the bits of q − 1:
//!
//! ```text
//! v = 1; C = R
//! for each bit of q − 1 below the top one:
//!     v = v² · (λ(Q_x + C_x) − C_y + i·Q_y),  λ the tangent slope at C;  C = 2C
//!     if the bit is 1:
//!         v = v · (λ(Q_x + C_x) − C_y + i·Q_y), λ the slope of the chord C, R;  C = C + R
//! t = v^((p+1)/q); return t_imag / t_real
//! ```
//!
//! Why this implementation is cheaper but gives the same value:
//! * C is kept in Jacobian coordinates and every line is multiplied by an F_p factor
//!   (2Y·Z³ for tangents, Z_(C+R) for chords) so no inversion is needed; F_p* factors vanish in
//!   PF_p, which is why RFC 6508 can drop denominators.
//! * The final exponent is only (p+1)/q = 4 (two squarings): in PF_p the (p−1) part of the
//!   "full" Tate exponent is not an identity — applying it gives g^(−2), not g.
//! * [`MillerLines`] separates the part that depends on R (the point arithmetic and the line
//!   coefficients) from the evaluation at Q, so a fixed first argument (an RSK) is processed
//!   once. It walks the NAF of q − 1 instead of its binary expansion: a subtraction step
//!   multiplies by the chord through C and −R (the vertical lines it would also need lie in
//!   F_p at ψ(Q)), so the Miller function and hence the reduced pairing are unchanged, with
//!   353 instead of 513 chord steps. The RFC-exact binary walk is [`pairing`]; tests check that
//!   both agree and that ⟨P, P⟩ = g.
//! * Evaluating normalised lines (c2 = 1), a tangent and the chord that follows it are
//!   multiplied together first: both have imaginary part Q_y, so their product costs two F_p
//!   products, and the step one F_p² product instead of two.
//! * [`MillerLines::eval_unreduced_times_pow_vartime`] multiplies a power x^e into the Miller
//!   loop, sharing its squarings (RSK validation: ⟨P, K⟩^a · ⟨Z, K⟩).
//! * The walk ends at C = [q − 1]R, which equals −R exactly when R has order q: a free
//!   subgroup check on the first argument ([`MillerLines::first_argument_has_order_q`]).
//!
//! The control flow depends only on the public bits of q − 1; the arithmetic is branch-free, so
//! the first argument may be secret (an RSK).

use super::curve::{AffinePoint, JacobianPoint};
use super::fp::{Fp, Q};
use super::fp2::Fp2;
use crypto_bigint::U1024;
use std::sync::OnceLock;
use subtle::Choice;
use zeroize::Zeroize;

/// One line function scaled into F_p: l(Q) = c0·Q_x + c1 + i·c2·Q_y.
#[derive(Clone, Copy, Default)]
struct Line {
    c0: Fp,
    c1: Fp,
    c2: Fp,
}

impl zeroize::DefaultIsZeroes for Line {}

impl Line {
    #[inline(always)]
    fn eval(&self, q: &AffinePoint) -> Fp2 {
        Fp2::new(self.c0 * q.x + self.c1, self.c2 * q.y)
    }
}

/// Digits of q − 1 below the leading 1, most significant first (public).
fn binary_digits() -> &'static [i8] {
    static D: OnceLock<Vec<i8>> = OnceLock::new();
    D.get_or_init(|| {
        let e = Q.wrapping_sub(&U1024::ONE);
        let top = e.bit_width_vartime() - 1;
        (0..top).rev().map(|i| i8::from(e.bit_vartime(i))).collect()
    })
}

/// The non-adjacent form of q − 1 below its leading 1, most significant first (public).
fn naf_digits() -> &'static [i8] {
    static D: OnceLock<Vec<i8>> = OnceLock::new();
    D.get_or_init(|| {
        let mut e = Q.wrapping_sub(&U1024::ONE);
        let mut digits = Vec::new();
        while !bool::from(e.is_zero()) {
            let d: i8 = if e.bit_vartime(0) {
                if e.bit_vartime(1) {
                    -1
                } else {
                    1
                }
            } else {
                0
            };
            e = match d {
                1 => e.wrapping_sub(&U1024::ONE),
                -1 => e.wrapping_add(&U1024::ONE),
                _ => e,
            };
            digits.push(d);
            e = e.shr_vartime(1);
        }
        digits.pop(); // the leading 1 is the starting point C = R
        digits.reverse();
        digits
    })
}

/// The Miller-loop lines of a first argument R, ready to be evaluated at any Q.
/// Secret when R is an RSK: zeroized on drop, never printed.
pub struct MillerLines {
    lines: Vec<Line>,
    digits: &'static [i8],
    order_q: Choice,
    /// Every c2 scaled to 1 (see [`MillerLines::normalize`]).
    normalized: bool,
}

impl Drop for MillerLines {
    fn drop(&mut self) {
        self.lines.zeroize();
    }
}

impl core::fmt::Debug for MillerLines {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MillerLines(..)")
    }
}

impl MillerLines {
    /// Precomputes the lines of R over the NAF of q − 1 (constant-time in R).
    pub fn new(r: &AffinePoint) -> Self {
        Self::with_digits(r, naf_digits())
    }

    fn with_digits(r: &AffinePoint, digits: &'static [i8]) -> Self {
        let neg_r = r.neg();
        let mut lines = Vec::with_capacity(digits.len() * 3 / 2);
        let mut c = JacobianPoint::from_affine(r);
        for &d in digits {
            // Tangent at C: λ = alpha/(2YZ); line·2YZ³ = alpha(Q_x·Z² + X) − 2Y² + i·Q_y·2YZ³.
            let (c2, alpha, delta, gamma) = c.double_with_parts();
            let [c0, ax, z3d] = Fp::mul_n([&alpha, &alpha, &c2.z], [&delta, &c.x, &delta]);
            lines.push(Line {
                c0,
                c1: ax - gamma.double(),
                c2: z3d,
            });
            c = c2;
            if d != 0 {
                // Chord through C and T = ±R: λ = r/(Z·H); line·Z3 = r(Q_x + T_x) − T_y·Z3 + i·Q_y·Z3.
                let t = if d > 0 { r } else { &neg_r };
                let (sum, _h, rr) = c.add_mixed_raw(t);
                let [rx, yz] = Fp::mul_n([&rr, &t.y], [&t.x, &sum.z]);
                lines.push(Line {
                    c0: rr,
                    c1: rx - yz,
                    c2: sum.z,
                });
                c = sum;
            }
        }
        let order_q = c.ct_eq_affine(&neg_r);
        Self {
            lines,
            digits,
            order_q,
            normalized: false,
        }
    }

    /// Divides every line by its c2 (an F_p factor, invisible in PF_p) using one constant-time
    /// inversion (Montgomery's trick, 5 products per line), so each later evaluation saves one
    /// product per line. Worth it for lines that are evaluated many times (P, Z_T).
    pub fn normalize(&mut self) {
        if self.normalized {
            return;
        }
        let mut prefix = Vec::with_capacity(self.lines.len());
        let mut acc = Fp::ONE;
        for l in &self.lines {
            prefix.push(acc);
            acc = acc * l.c2;
        }
        // A zero c2 (only for a degenerate Miller point) leaves garbage, never a panic.
        let (mut inv, _) = acc.invert();
        for (l, pre) in self.lines.iter_mut().zip(prefix.iter()).rev() {
            let [c2inv, next] = Fp::mul_n([&inv, &inv], [pre, &l.c2]);
            inv = next;
            let [c0, c1] = Fp::mul_n([&l.c0, &l.c1], [&c2inv, &c2inv]);
            *l = Line {
                c0,
                c1,
                c2: Fp::ONE,
            };
        }
        prefix.zeroize();
        self.normalized = true;
    }

    /// True iff [q − 1]R = −R, i.e. R has order q.
    pub fn first_argument_has_order_q(&self) -> Choice {
        self.order_q
    }

    /// ⟨R, Q⟩ as an F_p element (the PF_p representative t_imag/t_real).
    pub fn eval(&self, q: &AffinePoint) -> Fp {
        final_exponentiation(&self.eval_unreduced(q))
    }

    /// The Miller value f_R(ψ(Q)) before the final exponentiation: products of such values
    /// (and their powers) can share one [`final_exponentiation`].
    pub fn eval_unreduced(&self, q: &AffinePoint) -> Fp2 {
        let mut v = Fp2::ONE;
        let mut steps = self.steps(q);
        for &d in self.digits {
            v = steps.step(&v, d);
        }
        v
    }

    /// f_R(ψ(Q)) · x^e for a public exponent e, with the squarings of the exponentiation
    /// shared with those of the Miller loop, and correct only up to an F_p* factor, i.e. as an
    /// element of PF_p (after [`final_exponentiation`] it equals ⟨R, Q⟩ · (x⁴ in PF_p)^e).
    ///
    /// e is written in signed windows (width-[`POW_WINDOW`] NAF); the digit of weight 2^k is
    /// multiplied in right after the squaring that leaves k squarings to go, digits above the
    /// loop's length are raised beforehand. A negative digit multiplies by the conjugate of the
    /// odd power, which is its inverse times an F_p element (hence "up to an F_p* factor").
    /// Variable time in e only: the arithmetic on x, Q and the lines is branch-free, so x, Q
    /// and R may be secret. Requires e < 2^1023 (exponents here are below q < 2^1022).
    pub fn eval_unreduced_times_pow_vartime(&self, q: &AffinePoint, x: &Fp2, e: &U1024) -> Fp2 {
        const HALF: usize = 1 << (POW_WINDOW - 2);
        assert!(e.bit_width_vartime() < 1024, "exponent of 1024 bits");
        let k = wnaf_vartime(e, POW_WINDOW);
        let n = self.digits.len();
        // Odd powers x, x³, …, x^(2^(w−1) − 1).
        let x2 = x.square();
        let mut odd = [*x; HALF];
        for j in 1..HALF {
            odd[j] = odd[j - 1].mul(&x2);
        }
        let digit_power = |d: i8| -> Fp2 {
            let t = odd[usize::from(d.unsigned_abs() / 2)];
            if d > 0 {
                t
            } else {
                t.conjugate()
            }
        };
        // The digits of weight ≥ 2^n, left to right (square-and-multiply by small digits).
        let mut v = Fp2::ONE;
        let mut started = false;
        for &d in k.iter().skip(n).rev() {
            if started {
                v = v.square();
            }
            if d != 0 {
                v = if started {
                    v.mul(&digit_power(d))
                } else {
                    digit_power(d)
                };
                started = true;
            }
        }
        let mut steps = self.steps(q);
        for (j, &d) in self.digits.iter().enumerate() {
            v = steps.step(&v, d);
            // n − 1 − j squarings remain: this is the place of the digit of weight 2^(n−1−j).
            if let Some(&kd) = k.get(n - 1 - j) {
                if kd != 0 {
                    v = v.mul(&digit_power(kd));
                }
            }
        }
        v
    }

    fn steps<'a>(&'a self, q: &'a AffinePoint) -> Steps<'a> {
        Steps {
            lines: self.lines.iter(),
            q,
            normalized: self.normalized,
            qy2: if self.normalized {
                q.y.square()
            } else {
                Fp::ZERO
            },
        }
    }

    /// Whether [`MillerLines::normalize`] has run.
    pub fn is_normalized(&self) -> bool {
        self.normalized
    }
}

impl Clone for MillerLines {
    fn clone(&self) -> Self {
        Self {
            lines: self.lines.clone(),
            digits: self.digits,
            order_q: self.order_q,
            normalized: self.normalized,
        }
    }
}

/// Window width of the exponent in [`MillerLines::eval_unreduced_times_pow_vartime`].
const POW_WINDOW: u32 = 6;

/// The width-w NAF of e, least significant digit first: odd digits in (−2^(w−1), 2^(w−1))
/// separated by at least w − 1 zeros. Public exponents only.
fn wnaf_vartime(e: &U1024, w: u32) -> Vec<i8> {
    let mut k = *e;
    let mut out = Vec::with_capacity(1030);
    let modulus = 1i64 << w;
    while !bool::from(k.is_zero()) {
        let mut d = 0i64;
        if k.bit_vartime(0) {
            d = (k.as_words()[0] & (modulus as u64 - 1)) as i64;
            if d >= modulus / 2 {
                d -= modulus;
            }
            k = if d > 0 {
                k.wrapping_sub(&U1024::from_u64(d as u64))
            } else {
                k.wrapping_add(&U1024::from_u64(d.unsigned_abs()))
            };
        }
        out.push(d as i8);
        k = k.shr_vartime(1);
    }
    out
}

/// The factor each Miller step multiplies in, evaluated at one point Q.
struct Steps<'a> {
    lines: core::slice::Iter<'a, Line>,
    q: &'a AffinePoint,
    normalized: bool,
    /// Q_y² (normalised lines only).
    qy2: Fp,
}

impl Steps<'_> {
    /// v² times the next factor. For normalised lines, the products that do not wait for each
    /// other go together through [`Fp::mul_n`] (with the IFMA backend their latencies overlap):
    /// v²'s two with the lines' Q_x products, then A1·A2 with Q_y(A1 + A2), then the F_p²
    /// product. The same values as `v.square().mul(&self.next_factor(d))`.
    #[inline(always)]
    fn step(&mut self, v: &Fp2, d: i8) -> Fp2 {
        if !self.normalized || !Fp::batched() {
            return v.square().mul(&self.next_factor(d));
        }
        let q = self.q;
        let tangent = self.lines.next().copied().unwrap_or_default();
        let s = v.c0 + v.c1;
        let diff = v.c0 - v.c1;
        if d == 0 {
            let [sq0, sq1, x1] = Fp::mul_n([&s, &v.c0, &tangent.c0], [&diff, &v.c1, &q.x]);
            let sq = Fp2::new(sq0, sq1.double());
            return sq.mul(&Fp2::new(x1 + tangent.c1, q.y));
        }
        let chord = self.lines.next().copied().unwrap_or_default();
        let [sq0, sq1, x1, x2] = Fp::mul_n(
            [&s, &v.c0, &tangent.c0, &chord.c0],
            [&diff, &v.c1, &q.x, &q.x],
        );
        let (a1, a2) = (x1 + tangent.c1, x2 + chord.c1);
        let sum = a1 + a2;
        let [a12, y12] = Fp::mul_n([&a1, &q.y], [&a2, &sum]);
        let sq = Fp2::new(sq0, sq1.double());
        sq.mul(&Fp2::new(a12 - self.qy2, y12))
    }

    /// The tangent line of the next step, times its chord line if the digit is nonzero.
    /// Normalised lines are A + i·Q_y with A = c0·Q_x + c1, and a tangent–chord pair costs two
    /// products: (A1 + i·Q_y)(A2 + i·Q_y) = (A1·A2 − Q_y²) + i·Q_y(A1 + A2).
    #[inline(always)]
    fn next_factor(&mut self, d: i8) -> Fp2 {
        let q = self.q;
        let mut next = || self.lines.next().copied().unwrap_or_default();
        let tangent = next();
        if self.normalized {
            let a1 = tangent.c0 * q.x + tangent.c1;
            if d == 0 {
                return Fp2::new(a1, q.y);
            }
            let chord = next();
            let a2 = chord.c0 * q.x + chord.c1;
            Fp2::new(a1 * a2 - self.qy2, q.y * (a1 + a2))
        } else {
            let l1 = tangent.eval(q);
            if d == 0 {
                return l1;
            }
            l1.mul(&next().eval(q))
        }
    }
}

/// v^((p+1)/q) = v⁴ read in PF_p (RFC 6508 §3.2's last step). Constant-time.
pub fn final_exponentiation(v: &Fp2) -> Fp {
    v.square().square().to_pfp()
}

/// ⟨R, Q⟩ exactly as RFC 6508 §3.2 writes it: Miller loop over the binary digits of q − 1.
/// Returns the PF_p representative; a degenerate input (impossible for points of order q)
/// yields 0 rather than an error.
pub fn pairing(r: &AffinePoint, q: &AffinePoint) -> Fp {
    MillerLines::with_digits(r, binary_digits()).eval(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naf_reconstructs_q_minus_one() {
        let mut acc: i128 = 1;
        // Only check the low 100 digits' arithmetic structure: no two adjacent nonzeros.
        let d = naf_digits();
        for w in d.windows(2) {
            assert!(w[0] == 0 || w[1] == 0);
        }
        for &x in d.iter().rev().take(60).collect::<Vec<_>>().iter().rev() {
            acc = 2 * acc + i128::from(*x);
        }
        assert!(acc != 0);
        assert_eq!(binary_digits().len(), 1021);
    }

    #[test]
    fn wnaf_reconstructs_the_exponent() {
        for e in [
            U1024::ZERO,
            U1024::ONE,
            U1024::from_u64(0xFFFF_FFFF),
            Q.wrapping_sub(&U1024::ONE),
            U1024::MAX.shr_vartime(2),
        ] {
            let k = wnaf_vartime(&e, POW_WINDOW);
            let mut acc = U1024::ZERO;
            for &d in k.iter().rev() {
                acc = acc.shl_vartime(1);
                acc = if d >= 0 {
                    acc.wrapping_add(&U1024::from_u64(d as u64))
                } else {
                    acc.wrapping_sub(&U1024::from_u64(d.unsigned_abs() as u64))
                };
                assert!(d == 0 || (d % 2 != 0 && d.unsigned_abs() < 1 << (POW_WINDOW - 1)));
            }
            assert_eq!(acc, e);
        }
    }

    /// [2]P.
    fn double(p: &AffinePoint) -> AffinePoint {
        JacobianPoint::from_affine(p)
            .double()
            .to_affine_vartime()
            .unwrap()
    }

    #[test]
    fn shared_loop_equals_pairing_times_power() {
        let p = AffinePoint::generator();
        let two_p = double(&p);
        let x = Fp2::new(Fp::from_u64(3), Fp::from_u64(0xABCD));
        let raw = MillerLines::new(&p);
        let mut normalized = raw.clone();
        normalized.normalize();
        for e in [
            U1024::ZERO,
            U1024::ONE,
            U1024::from_u64(0x1F),
            U1024::from_u64(0xDEAD_BEEF_1234),
            Q.wrapping_sub(&U1024::ONE),
            U1024::MAX.shr_vartime(1),
        ] {
            let want = final_exponentiation(&raw.eval_unreduced(&two_p).mul(&x.pow_vartime(&e)));
            for lines in [&raw, &normalized] {
                let got = lines.eval_unreduced_times_pow_vartime(&two_p, &x, &e);
                assert_eq!(final_exponentiation(&got), want);
            }
        }
    }

    #[test]
    fn naf_walk_equals_rfc_walk_and_checks_order() {
        let p = AffinePoint::generator();
        let two_p = double(&p);
        let lines = MillerLines::new(&p);
        assert!(bool::from(lines.first_argument_has_order_q()));
        assert_eq!(lines.eval(&two_p), pairing(&p, &two_p));
        let mut normalized = MillerLines::new(&p);
        normalized.normalize();
        assert_eq!(normalized.eval(&two_p), pairing(&p, &two_p));
        // Bilinearity: ⟨P, 2P⟩ = ⟨P, P⟩².
        let g = pairing(&p, &p);
        let g2 = Fp2::new(Fp::ONE, g).square().to_pfp();
        assert_eq!(pairing(&p, &two_p), g2);
    }
}
