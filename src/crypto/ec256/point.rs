//! Points of P-256, y² = x³ − 3x + b (SP 800-186 §3.2.1.3), in homogeneous projective
//! coordinates (X : Y : Z), with the complete formulas of Renes, Costello and Batina, "Complete
//! addition formulas for prime order elliptic curves" (EUROCRYPT 2016), a = −3 case:
//! Algorithm 4 (addition), 5 (mixed addition, affine right operand) and 6 (doubling).
//! Complete: no input — the identity, equal or opposite points — is an exception, so the
//! constant-time paths need no special cases. Generic over the field backend.

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::field::{Fe, FieldMul};

/// b of P-256 (canonical limbs, least significant first).
const B_LIMBS: [u64; 4] = [
    0x3BCE_3C3E_27D2_604B,
    0x651D_06B0_CC53_B0F6,
    0xB3EB_BD55_7698_86BC,
    0x5AC6_35D8_AA3A_93E7,
];
/// The generator G (SP 800-186 §3.2.1.3).
const GX_LIMBS: [u64; 4] = [
    0xF4A1_3945_D898_C296,
    0x7703_7D81_2DEB_33A0,
    0xF8BC_E6E5_63A4_40F2,
    0x6B17_D1F2_E12C_4247,
];
const GY_LIMBS: [u64; 4] = [
    0xCBB6_4068_37BF_51F5,
    0x2BCE_3357_6B31_5ECE,
    0x8EE7_EB4A_7C0F_9E16,
    0x4FE3_42E2_FE1A_7F9B,
];

pub(crate) const B: Fe = Fe::from_canonical(B_LIMBS);

/// An affine point (x, y) that is on the curve and never the identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Affine {
    pub(crate) x: Fe,
    pub(crate) y: Fe,
}

/// A projective point; the identity is (0 : 1 : 0).
#[derive(Clone, Copy, Debug)]
pub struct Point {
    pub(crate) x: Fe,
    pub(crate) y: Fe,
    pub(crate) z: Fe,
}

impl Affine {
    pub const GENERATOR: Affine = Affine {
        x: Fe::from_canonical(GX_LIMBS),
        y: Fe::from_canonical(GY_LIMBS),
    };

    /// −P.
    #[inline(always)]
    pub fn neg(&self) -> Affine {
        Affine {
            x: self.x,
            y: self.y.neg(),
        }
    }

    /// As a projective point.
    #[inline(always)]
    pub fn to_point(&self) -> Point {
        Point {
            x: self.x,
            y: self.y,
            z: Fe::ONE,
        }
    }

    /// Whether y² = x³ − 3x + b (constant time).
    pub fn is_on_curve<M: FieldMul>(&self) -> Choice {
        let x2 = M::square(&self.x);
        let x3 = M::mul(&x2, &self.x);
        let three_x = self.x.double().add(&self.x);
        let rhs = x3.sub(&three_x).add(&B);
        M::square(&self.y).ct_eq(&rhs)
    }
}

impl ConditionallySelectable for Affine {
    #[inline(always)]
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Affine {
            x: Fe::conditional_select(&a.x, &b.x, choice),
            y: Fe::conditional_select(&a.y, &b.y, choice),
        }
    }
}

impl ConditionallySelectable for Point {
    #[inline(always)]
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Point {
            x: Fe::conditional_select(&a.x, &b.x, choice),
            y: Fe::conditional_select(&a.y, &b.y, choice),
            z: Fe::conditional_select(&a.z, &b.z, choice),
        }
    }
}

/// 3x.
#[inline(always)]
fn triple(x: &Fe) -> Fe {
    x.double().add(x)
}

impl Point {
    pub const IDENTITY: Point = Point {
        x: Fe::ZERO,
        y: Fe::ONE,
        z: Fe::ZERO,
    };

    /// Whether this is the identity (Z = 0), in constant time.
    #[inline(always)]
    pub fn is_identity(&self) -> Choice {
        self.z.is_zero()
    }

    /// −P.
    #[inline(always)]
    pub fn neg(&self) -> Point {
        Point {
            x: self.x,
            y: self.y.neg(),
            z: self.z,
        }
    }

    /// P + Q, complete (RCB Algorithm 4).
    #[inline(always)]
    pub fn add<M: FieldMul>(&self, q: &Point) -> Point {
        let xx = M::mul(&self.x, &q.x);
        let yy = M::mul(&self.y, &q.y);
        let zz = M::mul(&self.z, &q.z);
        let xy = M::mul(&self.x.add(&self.y), &q.x.add(&q.y)).sub(&xx.add(&yy));
        let yz = M::mul(&self.y.add(&self.z), &q.y.add(&q.z)).sub(&yy.add(&zz));
        let xz = M::mul(&self.x.add(&self.z), &q.x.add(&q.z)).sub(&xx.add(&zz));
        let bzz3 = triple(&xz.sub(&M::mul(&B, &zz)));
        let yy_m = yy.sub(&bzz3);
        let yy_p = yy.add(&bzz3);
        let zz3 = triple(&zz);
        let bxz3 = triple(&M::mul(&B, &xz).sub(&zz3.add(&xx)));
        let xx3_m = triple(&xx).sub(&zz3);
        Point {
            x: M::mul(&yy_p, &xy).sub(&M::mul(&yz, &bxz3)),
            y: M::mul(&yy_p, &yy_m).add(&M::mul(&xx3_m, &bxz3)),
            z: M::mul(&yy_m, &yz).add(&M::mul(&xy, &xx3_m)),
        }
    }

    /// P + Q for an affine Q (never the identity), complete (RCB Algorithm 5).
    #[inline(always)]
    pub fn add_affine<M: FieldMul>(&self, q: &Affine) -> Point {
        let xx = M::mul(&self.x, &q.x);
        let yy = M::mul(&self.y, &q.y);
        let xy = M::mul(&self.x.add(&self.y), &q.x.add(&q.y)).sub(&xx.add(&yy));
        let yz = M::mul(&q.y, &self.z).add(&self.y);
        let xz = M::mul(&q.x, &self.z).add(&self.x);
        let bz3 = triple(&xz.sub(&M::mul(&B, &self.z)));
        let yy_m = yy.sub(&bz3);
        let yy_p = yy.add(&bz3);
        let z3 = triple(&self.z);
        let bxz3 = triple(&M::mul(&B, &xz).sub(&z3.add(&xx)));
        let xx3_m = triple(&xx).sub(&z3);
        Point {
            x: M::mul(&yy_p, &xy).sub(&M::mul(&yz, &bxz3)),
            y: M::mul(&yy_p, &yy_m).add(&M::mul(&xx3_m, &bxz3)),
            z: M::mul(&yy_m, &yz).add(&M::mul(&xy, &xx3_m)),
        }
    }

    /// 2P, complete (RCB Algorithm 6).
    #[inline(always)]
    pub fn double<M: FieldMul>(&self) -> Point {
        let xx = M::square(&self.x);
        let yy = M::square(&self.y);
        let zz = M::square(&self.z);
        let xy2 = M::mul(&self.x, &self.y).double();
        let xz2 = M::mul(&self.x, &self.z).double();
        let bzz3 = triple(&M::mul(&B, &zz).sub(&xz2));
        let yy_m = yy.sub(&bzz3);
        let yy_p = yy.add(&bzz3);
        let y_frag = M::mul(&yy_p, &yy_m);
        let x_frag = M::mul(&yy_m, &xy2);
        let zz3 = triple(&zz);
        let bxz6 = triple(&M::mul(&B, &xz2).sub(&zz3.add(&xx)));
        let xx3_m = triple(&xx).sub(&zz3);
        let yz2 = M::mul(&self.y, &self.z).double();
        Point {
            x: x_frag.sub(&M::mul(&bxz6, &yz2)),
            y: y_frag.add(&M::mul(&xx3_m, &bxz6)),
            z: M::mul(&yz2, &yy).double().double(),
        }
    }

    /// (X/Z, Y/Z), or `None` (constant time) for the identity.
    pub fn to_affine<M: FieldMul>(&self) -> subtle::CtOption<Affine> {
        let zi = self.z.invert::<M>();
        subtle::CtOption::new(
            Affine {
                x: M::mul(&self.x, &zi),
                y: M::mul(&self.y, &zi),
            },
            !self.is_identity(),
        )
    }

    /// Whether P = Q as points (X1·Z2 = X2·Z1 and Y1·Z2 = Y2·Z1), constant time.
    pub fn ct_eq<M: FieldMul>(&self, q: &Point) -> Choice {
        let x = M::mul(&self.x, &q.z).ct_eq(&M::mul(&q.x, &self.z));
        let y = M::mul(&self.y, &q.z).ct_eq(&M::mul(&q.y, &self.z));
        let both_id = self.is_identity() & q.is_identity();
        let none_id = !self.is_identity() & !q.is_identity();
        both_id | (none_id & x & y)
    }
}

/// Affine forms of many points with one inversion (Montgomery's trick). Variable time in the
/// count only; every point must be other than the identity (public values: table building).
pub(crate) fn batch_to_affine<M: FieldMul>(points: &[Point]) -> Vec<Affine> {
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = Fe::ONE;
    for p in points {
        prefix.push(acc);
        acc = M::mul(&acc, &p.z);
    }
    let mut inv = acc.invert::<M>();
    let mut out = vec![Affine::default(); points.len()];
    for (i, p) in points.iter().enumerate().rev() {
        let zi = M::mul(&inv, &prefix[i]);
        inv = M::mul(&inv, &p.z);
        out[i] = Affine {
            x: M::mul(&p.x, &zi),
            y: M::mul(&p.y, &zi),
        };
    }
    out
}
