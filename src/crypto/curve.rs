//! The SAKKE curve E: y² = x³ − 3x over F_p (RFC 6508 §2.1, §3.1; parameter set 1 of
//! RFC 6509 Appendix A) and its point arithmetic.
//!
//! * [`AffinePoint`] — a finite point; the only encoding is RFC 6508 §2.2's 0x04 ‖ x ‖ y
//!   (257 octets), checked to be canonical and on the curve when decoded.
//! * [`JacobianPoint`] — (X, Y, Z) with x = X/Z², y = Y/Z³; Z = 0 is the point at infinity.
//!   Doubling uses a = −3 (dbl-2001-b), addition of an affine point is the 8M+3S mixed formula.
//!   Both are branch-free; the exceptional cases of the mixed addition are handled by
//!   constant-time selection (see [`JacobianPoint::add_mixed`]).
//! * [`table::FixedBaseTable`] — constant-time fixed-base multiplication with signed windows.
//! * `*_vartime` functions (double-and-add, the order-q check) are for public points and scalars.

pub mod table;

use super::error::CryptoError;
use super::fp::{Fp, FP_BYTES, Q};
use crypto_bigint::U1024;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// Octets of an encoded point: 0x04 ‖ x ‖ y (RFC 6508 §2.2).
pub const POINT_BYTES: usize = 1 + 2 * FP_BYTES;

/// P's coordinates, parameter set 1 (RFC 6509 App. A).
const PX_HEX: &str = "53FC09EE332C29AD0A7990053ED9B52A2B1A2FD60AEC69C698B2F204B6FF7CBFB5EDB6C0F6CE2308AB10DB9030B09E1043D5F22CDB9DFA55718BD9E7406CE8909760AF765DD5BCCB337C86548B72F2E1A702C3397A60DE74A7C1514DBA66910DD5CFB4CC80728D87EE9163A5B63F73EC80EC46C4967E0979880DC8ABEAE63895";
const PY_HEX: &str = "0A8249063F6009F1F9F1F0533634A135D3E82016029906963D778D821E141178F5EA69F4654EC2B9E7F7F5E5F0DE55F66B598CCF9A140B2E416CFF0CA9E032B970DAE117AD547C6CCAD696B5B7652FE0AC6F1E80164AA989492D979FC5A4D5F213515AD7E9CB99A980BDAD5AD5BB4636ADB9B5706A67DCDE75573FD71BEF16D7";

/// A finite point of E(F_p).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct AffinePoint {
    pub x: Fp,
    pub y: Fp,
}

impl zeroize::DefaultIsZeroes for AffinePoint {}

impl AffinePoint {
    /// The generator P of the order-q subgroup.
    pub fn generator() -> Self {
        Self {
            x: Fp::from_uint(&U1024::from_be_hex(PX_HEX)),
            y: Fp::from_uint(&U1024::from_be_hex(PY_HEX)),
        }
    }

    /// y² = x³ − 3x, in constant time.
    pub fn is_on_curve(&self) -> Choice {
        let rhs = (self.x.square() - Fp::from_u64(3)) * self.x;
        self.y.square().ct_eq(&rhs)
    }

    /// Decodes 0x04 ‖ x ‖ y, requiring canonical coordinates (< p) and a point on E.
    /// `what` names the field in the error. Constant-time in the coordinates apart from the
    /// single accept/reject outcome.
    pub fn from_bytes(bytes: &[u8], what: &'static str) -> Result<Self, CryptoError> {
        if bytes.len() != POINT_BYTES {
            return Err(CryptoError::Malformed {
                what,
                reason: "a point must be 257 octets",
            });
        }
        if bytes[0] != 0x04 {
            return Err(CryptoError::Malformed {
                what,
                reason: "a point must start with 0x04",
            });
        }
        let x = Fp::from_be_bytes(&bytes[1..1 + FP_BYTES]);
        let y = Fp::from_be_bytes(&bytes[1 + FP_BYTES..]);
        let (Some(x), Some(y)) = (x, y) else {
            return Err(CryptoError::Malformed {
                what,
                reason: "coordinate not below p",
            });
        };
        let pt = Self { x, y };
        // Public outcome: the point is refused or accepted.
        if bool::from(super::ct::public(pt.is_on_curve())) {
            Ok(pt)
        } else {
            Err(CryptoError::NotOnCurve { what })
        }
    }

    /// 0x04 ‖ x ‖ y.
    pub fn to_bytes(&self) -> [u8; POINT_BYTES] {
        let mut out = [0u8; POINT_BYTES];
        out[0] = 0x04;
        out[1..1 + FP_BYTES].copy_from_slice(&self.x.to_be_bytes());
        out[1 + FP_BYTES..].copy_from_slice(&self.y.to_be_bytes());
        out
    }

    pub fn neg(&self) -> Self {
        Self {
            x: self.x,
            y: -self.y,
        }
    }

    /// Is [q]self the point at infinity? Public points only (variable time).
    pub fn has_order_q_vartime(&self) -> bool {
        JacobianPoint::from_affine(self)
            .mul_vartime(&Q)
            .is_identity_vartime()
    }
}

impl ConditionallySelectable for AffinePoint {
    #[inline(always)]
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Self {
            x: Fp::conditional_select(&a.x, &b.x, choice),
            y: Fp::conditional_select(&a.y, &b.y, choice),
        }
    }
}

/// A point in Jacobian coordinates; Z = 0 is the point at infinity.
#[derive(Clone, Copy, Default, Debug)]
pub struct JacobianPoint {
    pub x: Fp,
    pub y: Fp,
    pub z: Fp,
}

impl zeroize::DefaultIsZeroes for JacobianPoint {}

impl ConditionallySelectable for JacobianPoint {
    #[inline(always)]
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Self {
            x: Fp::conditional_select(&a.x, &b.x, choice),
            y: Fp::conditional_select(&a.y, &b.y, choice),
            z: Fp::conditional_select(&a.z, &b.z, choice),
        }
    }
}

impl JacobianPoint {
    pub const IDENTITY: Self = Self {
        x: Fp::ONE,
        y: Fp::ONE,
        z: Fp::ZERO,
    };

    pub fn from_affine(p: &AffinePoint) -> Self {
        Self {
            x: p.x,
            y: p.y,
            z: Fp::ONE,
        }
    }

    pub fn is_identity(&self) -> Choice {
        self.z.is_zero()
    }

    pub fn is_identity_vartime(&self) -> bool {
        self.is_identity().into()
    }

    pub fn neg(&self) -> Self {
        Self {
            x: self.x,
            y: -self.y,
            z: self.z,
        }
    }

    /// dbl-2001-b for a = −3 (3M + 5S). The point at infinity doubles to itself (Z stays 0);
    /// a point with y = 0 (order 2, never in the order-q subgroup) also yields Z = 0.
    #[inline]
    pub fn double(&self) -> Self {
        self.double_with_parts().0
    }

    /// Doubling that also returns (alpha, delta, gamma), which the Miller loop's tangent line
    /// reuses: alpha = 3(X² − Z⁴), delta = Z², gamma = Y².
    #[inline(always)]
    pub(crate) fn double_with_parts(&self) -> (Self, Fp, Fp, Fp) {
        if !Fp::batched() {
            return self.double_with_parts_serial();
        }
        // Independent products go together (`Fp::mul_n`: overlapped with the IFMA backend).
        let ypz = self.y + self.z;
        let [delta, gamma, ypz2] = Fp::mul_n([&self.z, &self.y, &ypz], [&self.z, &self.y, &ypz]);
        let (xmd, xpd) = (self.x - delta, self.x + delta);
        let [beta, t, gamma2] = Fp::mul_n([&self.x, &xmd, &gamma], [&gamma, &xpd, &gamma]);
        let alpha = t.double() + t;
        let beta4 = beta.double().double();
        let x3 = alpha.square() - beta4.double();
        let z3 = ypz2 - gamma - delta;
        let gamma2_8 = gamma2.double().double().double();
        let y3 = alpha * (beta4 - x3) - gamma2_8;
        (
            Self {
                x: x3,
                y: y3,
                z: z3,
            },
            alpha,
            delta,
            gamma,
        )
    }

    /// [`JacobianPoint::double_with_parts`] one product at a time (backends other than IFMA).
    #[inline(always)]
    fn double_with_parts_serial(&self) -> (Self, Fp, Fp, Fp) {
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x * gamma;
        let t = (self.x - delta) * (self.x + delta);
        let alpha = t.double() + t;
        let beta4 = beta.double().double();
        let x3 = alpha.square() - beta4.double();
        let z3 = (self.y + self.z).square() - gamma - delta;
        let gamma2_8 = gamma.square().double().double().double();
        let y3 = alpha * (beta4 - x3) - gamma2_8;
        (
            Self {
                x: x3,
                y: y3,
                z: z3,
            },
            alpha,
            delta,
            gamma,
        )
    }

    /// [`JacobianPoint::add_mixed_raw`] one product at a time (backends other than IFMA).
    #[inline(always)]
    fn add_mixed_raw_serial(&self, p: &AffinePoint) -> (Self, Fp, Fp) {
        let z1z1 = self.z.square();
        let u2 = p.x * z1z1;
        let s2 = p.y * self.z * z1z1;
        let h = u2 - self.x;
        let r = s2 - self.y;
        let hh = h.square();
        let hhh = h * hh;
        let v = self.x * hh;
        let x3 = r.square() - hhh - v.double();
        let y3 = r * (v - x3) - self.y * hhh;
        let z3 = self.z * h;
        (
            Self {
                x: x3,
                y: y3,
                z: z3,
            },
            h,
            r,
        )
    }

    /// The mixed-addition core (8M + 3S): returns the sum for the generic case together with
    /// H = x2·Z1² − X1 and R = y2·Z1³ − Y1. H = 0, R ≠ 0 means self = −p (the formula then
    /// yields Z3 = 0, the point at infinity, correctly); H = R = 0 means self = p (the result is
    /// wrong and must be replaced by a doubling); self = ∞ gives garbage.
    #[inline(always)]
    pub(crate) fn add_mixed_raw(&self, p: &AffinePoint) -> (Self, Fp, Fp) {
        if !Fp::batched() {
            return self.add_mixed_raw_serial(p);
        }
        // Independent products go together (`Fp::mul_n`: overlapped with the IFMA backend).
        let z1z1 = self.z.square();
        let [u2, z1z1z1] = Fp::mul_n([&p.x, &self.z], [&z1z1, &z1z1]);
        let s2 = p.y * z1z1z1;
        let h = u2 - self.x;
        let r = s2 - self.y;
        let [hh, rr, z3] = Fp::mul_n([&h, &r, &self.z], [&h, &r, &h]);
        let [hhh, v] = Fp::mul_n([&h, &self.x], [&hh, &hh]);
        let x3 = rr - hhh - v.double();
        let vmx = v - x3;
        let [ry, yh] = Fp::mul_n([&r, &self.y], [&vmx, &hhh]);
        let y3 = ry - yh;
        (
            Self {
                x: x3,
                y: y3,
                z: z3,
            },
            h,
            r,
        )
    }

    /// self + p in constant time for every case except self = p, which cannot occur where this
    /// is used (see [`table`]); self = ∞ and p = −self are handled.
    #[inline]
    pub fn add_mixed(&self, p: &AffinePoint) -> Self {
        let (sum, _, _) = self.add_mixed_raw(p);
        Self::conditional_select(&sum, &Self::from_affine(p), self.is_identity())
    }

    /// self + p in constant time for every case, at the price of an extra doubling.
    pub fn add_mixed_complete(&self, p: &AffinePoint) -> Self {
        let (sum, h, r) = self.add_mixed_raw(p);
        let dbl = self.double();
        let same = h.is_zero() & r.is_zero() & !self.is_identity();
        let out = Self::conditional_select(&sum, &dbl, same);
        Self::conditional_select(&out, &Self::from_affine(p), self.is_identity())
    }

    /// Full addition of two Jacobian points, variable time (public points only).
    pub fn add_vartime(&self, other: &Self) -> Self {
        if self.is_identity_vartime() {
            return *other;
        }
        if other.is_identity_vartime() {
            return *self;
        }
        let z1z1 = self.z.square();
        let z2z2 = other.z.square();
        let u1 = self.x * z2z2;
        let u2 = other.x * z1z1;
        let s1 = self.y * other.z * z2z2;
        let s2 = other.y * self.z * z1z1;
        let h = u2 - u1;
        let r = s2 - s1;
        if bool::from(h.is_zero()) {
            return if bool::from(r.is_zero()) {
                self.double()
            } else {
                Self::IDENTITY
            };
        }
        let hh = h.square();
        let hhh = h * hh;
        let v = u1 * hh;
        let x3 = r.square() - hhh - v.double();
        let y3 = r * (v - x3) - s1 * hhh;
        let z3 = self.z * other.z * h;
        Self {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// [k]self by double-and-add, variable time: public points and public scalars only.
    pub fn mul_vartime(&self, k: &U1024) -> Self {
        let mut acc = Self::IDENTITY;
        for i in (0..k.bit_width_vartime()).rev() {
            acc = acc.double();
            if k.bit_vartime(i) {
                acc = acc.add_vartime(self);
            }
        }
        acc
    }

    /// Constant-time conversion to affine; the Choice is false for the point at infinity
    /// (whose returned coordinates are then meaningless).
    pub fn to_affine(&self) -> (AffinePoint, Choice) {
        let (zinv, ok) = self.z.invert();
        let zinv2 = zinv.square();
        (
            AffinePoint {
                x: self.x * zinv2,
                y: self.y * zinv2 * zinv,
            },
            ok,
        )
    }

    /// Conversion for public points; `None` for the point at infinity.
    pub fn to_affine_vartime(&self) -> Option<AffinePoint> {
        let zinv = self.z.invert_vartime()?;
        let zinv2 = zinv.square();
        Some(AffinePoint {
            x: self.x * zinv2,
            y: self.y * zinv2 * zinv,
        })
    }

    /// Constant-time "self equals the finite point p" without an inversion:
    /// X = x·Z², Y = y·Z³, Z ≠ 0.
    pub fn ct_eq_affine(&self, p: &AffinePoint) -> Choice {
        let z2 = self.z.square();
        let z3 = z2 * self.z;
        self.x.ct_eq(&(p.x * z2)) & self.y.ct_eq(&(p.y * z3)) & !self.is_identity()
    }
}

/// Converts many public Jacobian points to affine with one inversion (Montgomery's trick).
/// Points at infinity are not allowed (their slot gets garbage); callers build tables of
/// nonzero multiples of an order-q point, which are never at infinity.
pub(crate) fn batch_to_affine_vartime(points: &[JacobianPoint]) -> Vec<AffinePoint> {
    let n = points.len();
    let mut prefix = Vec::with_capacity(n);
    let mut acc = Fp::ONE;
    for p in points {
        prefix.push(acc);
        acc = acc * p.z;
    }
    let mut inv = acc.invert_vartime().unwrap_or(Fp::ZERO);
    let mut out = vec![AffinePoint::default(); n];
    for i in (0..n).rev() {
        let zinv = inv * prefix[i];
        inv = inv * points[i].z;
        let zinv2 = zinv.square();
        out[i] = AffinePoint {
            x: points[i].x * zinv2,
            y: points[i].y * zinv2 * zinv,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_on_curve_and_has_order_q() {
        let g = AffinePoint::generator();
        assert!(bool::from(g.is_on_curve()));
        assert!(g.has_order_q_vartime());
        let back = AffinePoint::from_bytes(&g.to_bytes(), "P").unwrap();
        assert_eq!(back, g);
    }

    #[test]
    fn mixed_addition_matches_vartime_addition() {
        let g = AffinePoint::generator();
        let gj = JacobianPoint::from_affine(&g);
        let two = gj.double();
        let three_a = two.add_mixed(&g).to_affine_vartime().unwrap();
        let three_b = two.add_vartime(&gj).to_affine_vartime().unwrap();
        assert_eq!(three_a, three_b);
        // Exceptional cases: ∞ + P, P + P (complete only), P + (−P).
        assert!(bool::from(
            JacobianPoint::IDENTITY.add_mixed(&g).ct_eq_affine(&g)
        ));
        let dbl = gj.add_mixed_complete(&g).to_affine_vartime().unwrap();
        assert_eq!(dbl, two.to_affine_vartime().unwrap());
        assert!(gj.add_mixed(&g.neg()).is_identity_vartime());
        let (a, ok) = two.to_affine();
        assert!(bool::from(ok));
        assert_eq!(a, three_a_minus_one(&three_a, &g));
    }

    fn three_a_minus_one(three: &AffinePoint, g: &AffinePoint) -> AffinePoint {
        JacobianPoint::from_affine(three)
            .add_mixed(&g.neg())
            .to_affine_vartime()
            .unwrap()
    }

    #[test]
    fn decoding_rejects_bad_encodings() {
        let mut b = AffinePoint::generator().to_bytes();
        assert!(AffinePoint::from_bytes(&b[..256], "t").is_err());
        b[0] = 0x02;
        assert!(AffinePoint::from_bytes(&b, "t").is_err());
        b[0] = 0x04;
        b[200] ^= 1;
        assert_eq!(
            AffinePoint::from_bytes(&b, "t"),
            Err(CryptoError::NotOnCurve { what: "t" })
        );
    }
}
