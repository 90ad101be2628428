//! Jacobian coordinates (x = X/Z², y = Y/Z³) for the variable-time multi-scalar path only:
//! doubling "dbl-2001-b" for a = −3 (3M + 5S) and mixed addition "madd-2007-bl" (7M + 4S) from
//! the Explicit-Formulas Database (Bernstein–Lange). These formulas have exceptional cases
//! (the identity, equal or opposite points); they are handled by branches, which is why this
//! module serves public inputs only (RFC 6507 §5.2.2 verification and the public half of
//! §5.1.2 validation). Secrets never reach it: they use the complete formulas of
//! [`super::point`].

use super::field::{Fe, FieldMul};
use super::point::{Affine, Point};

/// A Jacobian point; the identity has Z = 0.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Jacobian {
    x: Fe,
    y: Fe,
    z: Fe,
}

impl Jacobian {
    pub(crate) const IDENTITY: Jacobian = Jacobian {
        x: Fe::ONE,
        y: Fe::ONE,
        z: Fe::ZERO,
    };

    fn is_identity_vartime(&self) -> bool {
        self.z == Fe::ZERO
    }

    /// 2P (dbl-2001-b, a = −3).
    pub(crate) fn double_vartime<M: FieldMul>(&self) -> Jacobian {
        if self.is_identity_vartime() {
            return *self;
        }
        let delta = M::square(&self.z);
        let gamma = M::square(&self.y);
        let beta = M::mul(&self.x, &gamma);
        let t = M::mul(&self.x.sub(&delta), &self.x.add(&delta));
        let alpha = t.double().add(&t);
        let beta4 = beta.double().double();
        let x3 = M::square(&alpha).sub(&beta4.double());
        let z3 = M::square(&self.y.add(&self.z)).sub(&gamma).sub(&delta);
        let gamma2 = M::square(&gamma);
        let y3 = M::mul(&alpha, &beta4.sub(&x3)).sub(&gamma2.double().double().double());
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// P + Q for an affine Q (madd-2007-bl), exceptional cases by branches.
    pub(crate) fn add_affine_vartime<M: FieldMul>(&self, q: &Affine) -> Jacobian {
        if self.is_identity_vartime() {
            return Jacobian {
                x: q.x,
                y: q.y,
                z: Fe::ONE,
            };
        }
        let z1z1 = M::square(&self.z);
        let u2 = M::mul(&q.x, &z1z1);
        let s2 = M::mul(&q.y, &M::mul(&self.z, &z1z1));
        let h = u2.sub(&self.x);
        let r = s2.sub(&self.y).double();
        if h == Fe::ZERO {
            // Same x: P = Q (double) or P = −Q (identity).
            return if r == Fe::ZERO {
                self.double_vartime::<M>()
            } else {
                Jacobian::IDENTITY
            };
        }
        let hh = M::square(&h);
        let i = hh.double().double();
        let j = M::mul(&h, &i);
        let v = M::mul(&self.x, &i);
        let x3 = M::square(&r).sub(&j).sub(&v.double());
        let y3 = M::mul(&r, &v.sub(&x3)).sub(&M::mul(&self.y, &j).double());
        let z3 = M::square(&self.z.add(&h)).sub(&z1z1).sub(&hh);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// The same point in homogeneous projective coordinates: (X·Z : Y : Z³).
    pub(crate) fn to_point<M: FieldMul>(self) -> Point {
        if self.is_identity_vartime() {
            return Point::IDENTITY;
        }
        let z2 = M::square(&self.z);
        Point {
            x: M::mul(&self.x, &self.z),
            y: self.y,
            z: M::mul(&z2, &self.z),
        }
    }
}
