//! Fast NIST P-256 point arithmetic for ECCSI (RFC 6507 §3.2 fixes P-256 with SHA-256, N = 32),
//! issue 15 item 1. The `p256` crate's portable field made every ECCSI operation several times
//! slower than assembly-tuned C; no maintained crate exposes a faster constant-time P-256 with
//! arbitrary-point scalar multiplication (ring's is internal), so the field and point arithmetic
//! live here, proven equal to the `p256` crate's by the property tests below.
//!
//! | module | what |
//! |--------|------|
//! | [`field`] | F_p in Montgomery form; portable `u128` multiplication and the `mulx`/`adx` one |
//! | `adx`     | x86-64 `asm!`: `mulx`/`adcx`/`adox` Montgomery multiplication and squaring; addition, subtraction |
//! | [`point`] | projective points, complete Renes–Costello–Batina formulas (a = −3) |
//! | [`mul`]   | fixed-base [k]G (constant time and variable time), fixed-base tables of other public points, Straus multi-scalar (variable time) |
//!
//! The backend is chosen at run time ([`backend`], [`set_backend`]): `mulx`/`adx` only where
//! the CPU has BMI2 and ADX ([`detect`]), and then by default ([`default_backend`]). Scalars
//! (mod q) stay the `p256` crate's `Scalar`; they enter here as 32 big-endian octets. Functions
//! named `*_vartime` take public inputs only.

// Crate-private: `field::Adx` must not be reachable from outside, where its multiplication
// could be called on a CPU without BMI2/ADX; the public surface is the functions below.
pub(crate) mod field;
mod jacobian;
pub(crate) mod mul;
pub(crate) mod point;

#[cfg(target_arch = "x86_64")]
mod adx;

use core::sync::atomic::{AtomicU8, Ordering};

use p256::elliptic_curve::ff::PrimeField;
use p256::Scalar;
use subtle::CtOption;

use super::error::CryptoError;
#[cfg(target_arch = "x86_64")]
use field::Adx;
use field::{Fe, Portable};
pub use mul::{BaseTable, Prepared};
pub use point::{Affine, Point};

/// Length of an uncompressed SEC1 point, `0x04 ‖ x ‖ y` (RFC 6507 §3.3).
pub const POINT_LEN: usize = 65;

/// Which field multiplication runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Backend {
    /// `u128` products.
    Portable = 1,
    /// x86-64 `mulx`/`adcx`/`adox`.
    Adx = 2,
}

static BACKEND: AtomicU8 = AtomicU8::new(0);

/// The fastest backend this CPU supports.
pub fn detect() -> Backend {
    if crate::crypto::has_mulx_adx() {
        return Backend::Adx;
    }
    Backend::Portable
}

/// The default backend: the `mulx`/`adx` field where the CPU has BMI2 and ADX ([`detect`]),
/// else the portable one. The `asm!` multiplication keeps every intermediate word in a
/// register and reduces by p's shape (shifts instead of two `mulx` by p's limbs per step), and
/// the squaring takes ten word products instead of sixteen; docs/PERFORMANCE.md has the
/// figures (faster than the portable field on the project's machine). Both backends are proven
/// equal by the tests.
pub fn default_backend() -> Backend {
    detect()
}

/// The backend in use (the default on first use).
#[inline(always)]
pub fn backend() -> Backend {
    match BACKEND.load(Ordering::Relaxed) {
        1 => Backend::Portable,
        2 => Backend::Adx,
        _ => {
            let b = default_backend();
            BACKEND.store(b as u8, Ordering::Relaxed);
            b
        }
    }
}

/// Selects the backend for the whole process (benchmarks and tests compare both). `Adx` on a
/// CPU without BMI2/ADX falls back to the portable field.
pub fn set_backend(b: Backend) {
    let b = if b == Backend::Adx { detect() } else { b };
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

/// The ADX backend token when the CPU has it (tests compare it with the portable one).
#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) fn adx_if_available() -> Option<Adx> {
    (detect() == Backend::Adx).then_some(Adx(()))
}

/// Runs a function generic over [`field::FieldMul`] with the selected backend.
macro_rules! dispatch {
    ($($f:ident)::+, $($arg:expr),* $(,)?) => {{
        #[cfg(target_arch = "x86_64")]
        {
            match backend() {
                Backend::Adx => $($f)::+::<Adx>($($arg),*),
                Backend::Portable => $($f)::+::<Portable>($($arg),*),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $($f)::+::<Portable>($($arg),*)
        }
    }};
}

fn scalar_bytes(k: &Scalar) -> [u8; 32] {
    k.to_repr().into()
}

/// [k]G in constant time (secret k: KSAK, v, j, SSK).
pub fn mul_g(k: &Scalar) -> Point {
    let mut b = scalar_bytes(k);
    let p = dispatch!(mul::mul_g, &b);
    zeroize::Zeroize::zeroize(&mut b);
    p
}

/// [k]G in variable time (public k).
pub fn mul_g_vartime(k: &Scalar) -> Point {
    dispatch!(mul::mul_g_vartime, &scalar_bytes(k))
}

/// [g]G + Σ [k_i]P_i ([g]G left out for `None`) in variable time: every input public.
pub fn lincomb_vartime(g: Option<&Scalar>, terms: &[(Point, Scalar)]) -> Point {
    let t: Vec<(Point, [u8; 32])> = terms.iter().map(|(p, k)| (*p, scalar_bytes(k))).collect();
    let g = g.map(scalar_bytes);
    dispatch!(mul::lincomb_vartime, g.as_ref(), &t)
}

/// The fixed-base table of a long-lived public point (`None` for the identity), for
/// [`mul_table_vartime`]: about 90 KiB, worth building for a point used many times.
pub fn base_table_vartime(p: &Point) -> Option<BaseTable> {
    dispatch!(mul::BaseTable::new_vartime, p)
}

/// [k]B for the base B of `table`, variable time (public k).
pub fn mul_table_vartime(table: &BaseTable, k: &Scalar) -> Point {
    dispatch!(mul::mul_table_vartime, table, &scalar_bytes(k))
}

/// A public point prepared for repeated [`lincomb_prepared_vartime`] (odd multiples, affine);
/// `None` for the identity.
pub fn prepare_vartime(p: &Point) -> Option<Prepared> {
    dispatch!(
        mul::prepare_vartime,
        core::slice::from_ref(p),
        mul::WNAF_CACHED
    )
    .pop()
    .flatten()
}

/// [g]G + Σ [k_i]P_i over prepared points, variable time: every input public.
pub fn lincomb_prepared_vartime(g: Option<&Scalar>, terms: &[(&Prepared, Scalar)]) -> Point {
    let t: Vec<[u8; 32]> = terms.iter().map(|(_, k)| scalar_bytes(k)).collect();
    let pairs: Vec<(&Prepared, &[u8; 32])> = terms.iter().map(|(p, _)| *p).zip(t.iter()).collect();
    let g = g.map(scalar_bytes);
    dispatch!(mul::lincomb_prepared_vartime, g.as_ref(), &pairs)
}

/// Whether P ≠ O and x(P) = x (32 big-endian octets), without an inversion. Variable time:
/// public inputs only.
pub fn x_matches_vartime(p: &Point, x: &[u8; 32]) -> bool {
    dispatch!(mul::x_matches_vartime, p, x)
}

/// P + Q (constant time).
pub fn add(p: &Point, q: &Point) -> Point {
    dispatch!(Point::add, p, q)
}

/// Whether P = Q (constant time).
pub fn eq(p: &Point, q: &Point) -> subtle::Choice {
    dispatch!(Point::ct_eq, p, q)
}

/// The affine form, `None` for the identity (constant time).
pub fn to_affine(p: &Point) -> CtOption<Affine> {
    dispatch!(Point::to_affine, p)
}

impl Affine {
    /// Strict decoding: `0x04 ‖ x ‖ y`, coordinates below p, on the curve. The identity has no
    /// such encoding, so it is rejected by construction. Variable time (public points).
    pub fn from_sec1(bytes: &[u8], what: &'static str) -> Result<Affine, CryptoError> {
        if bytes.len() != POINT_LEN {
            return Err(CryptoError::Malformed {
                what,
                reason: "point must be 65 octets",
            });
        }
        if bytes[0] != 0x04 {
            return Err(CryptoError::Malformed {
                what,
                reason: "point must be uncompressed (0x04)",
            });
        }
        let coord = |range: core::ops::Range<usize>| -> Option<Fe> {
            let arr: [u8; 32] = bytes[range].try_into().ok()?;
            Fe::from_be_bytes(&arr).into()
        };
        let (x, y) = match (coord(1..33), coord(33..65)) {
            (Some(x), Some(y)) => (x, y),
            _ => return Err(CryptoError::NotOnCurve { what }),
        };
        let a = Affine { x, y };
        if !bool::from(dispatch!(Affine::is_on_curve, &a)) {
            return Err(CryptoError::NotOnCurve { what });
        }
        Ok(a)
    }

    /// `0x04 ‖ x ‖ y`.
    pub fn to_sec1(&self) -> [u8; POINT_LEN] {
        let mut out = [0u8; POINT_LEN];
        out[0] = 0x04;
        out[1..33].copy_from_slice(&self.x.to_be_bytes());
        out[33..65].copy_from_slice(&self.y.to_be_bytes());
        out
    }

    /// x as 32 big-endian octets.
    pub fn x_bytes(&self) -> [u8; 32] {
        self.x.to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::sec1::ToSec1Point;
    use p256::ProjectivePoint;
    use proptest::prelude::*;

    fn crate_sec1(p: &ProjectivePoint) -> Vec<u8> {
        p.to_affine().to_sec1_point(false).as_bytes().to_vec()
    }

    fn ours_sec1(p: &Point) -> Vec<u8> {
        match Option::<Affine>::from(to_affine(p)) {
            Some(a) => a.to_sec1().to_vec(),
            None => vec![0],
        }
    }

    fn scalar(bytes: [u8; 32]) -> Scalar {
        super::super::p256ext::reduce_bytes(&bytes)
    }

    /// Runs `f` once per backend this CPU has.
    fn each_backend(f: impl Fn()) {
        set_backend(Backend::Portable);
        f();
        set_backend(Backend::Adx);
        f();
        set_backend(default_backend());
    }

    #[test]
    fn generator_and_codec() {
        let g = Affine::GENERATOR.to_sec1();
        assert_eq!(g.to_vec(), crate_sec1(&ProjectivePoint::GENERATOR));
        assert_eq!(Affine::from_sec1(&g, "G"), Ok(Affine::GENERATOR));
        let mut bad = g;
        bad[64] ^= 1;
        assert_eq!(
            Affine::from_sec1(&bad, "P"),
            Err(CryptoError::NotOnCurve { what: "P" })
        );
        let mut big = g;
        big[1..33].copy_from_slice(&[0xFF; 32]);
        assert_eq!(
            Affine::from_sec1(&big, "P"),
            Err(CryptoError::NotOnCurve { what: "P" })
        );
    }

    #[test]
    fn edge_scalars_match_crate() {
        each_backend(|| {
            for k in [
                Scalar::ZERO,
                Scalar::ONE,
                -Scalar::ONE,
                Scalar::from(2u64),
                -Scalar::from(2u64),
                scalar([0xFF; 32]),
                scalar([0x7F; 32]),
            ] {
                let want = crate_sec1(&(ProjectivePoint::GENERATOR * k));
                assert_eq!(ours_sec1(&mul_g(&k)), want);
                assert_eq!(ours_sec1(&mul_g_vartime(&k)), want);
                let p = mul_g(&Scalar::from(5u64));
                let l = lincomb_vartime(None, &[(p, k)]);
                let want5 = crate_sec1(&(ProjectivePoint::GENERATOR * (k * Scalar::from(5u64))));
                assert_eq!(ours_sec1(&l), want5);
            }
        });
    }

    /// [k]G for raw 256-bit k (not reduced mod q) whose digits reach the special cases of the
    /// constant-time ladder: every lower digit zero (the Jacobian rows start from O), a single
    /// bit, the top rows only, k ≥ q, k = q ([k]G = O), all ones.
    #[test]
    fn mul_g_raw_edge_scalars() {
        let q: [u8; 32] = Scalar::ZERO.sub(&Scalar::ONE).to_repr().into();
        let mut ks: Vec<[u8; 32]> = vec![[0; 32], [0xFF; 32]];
        let mut k = q;
        k[31] = k[31].wrapping_add(1); // q
        ks.push(k);
        k[31] = k[31].wrapping_add(5); // q + 5
        ks.push(k);
        for bit in 0..256 {
            let mut k = [0u8; 32];
            k[31 - bit / 8] = 1 << (bit % 8);
            ks.push(k);
            k[31] |= 3;
            ks.push(k);
        }
        for top in 0..=255u8 {
            let mut k = [0u8; 32];
            k[0] = top;
            ks.push(k);
            k[1] = 0x80;
            ks.push(k);
        }
        each_backend(|| {
            for k in &ks {
                let want = crate_sec1(&(ProjectivePoint::GENERATOR * scalar(*k)));
                assert_eq!(ours_sec1(&dispatch!(mul::mul_g, k)), want, "{k:?}");
                assert_eq!(ours_sec1(&dispatch!(mul::mul_g_vartime, k)), want, "{k:?}");
            }
        });
    }

    #[test]
    fn x_matches_without_inversion() {
        each_backend(|| {
            let p = mul_g(&Scalar::from(11u64));
            let x = Option::<Affine>::from(to_affine(&p)).unwrap().x_bytes();
            assert!(x_matches_vartime(&p, &x));
            // The same point scaled (X : Y : Z)·λ.
            let q = add(&p, &Point::IDENTITY);
            assert!(x_matches_vartime(&q, &x));
            let mut other = x;
            other[31] ^= 1;
            assert!(!x_matches_vartime(&p, &other));
            assert!(!x_matches_vartime(&p, &[0xFF; 32]));
            assert!(!x_matches_vartime(&Point::IDENTITY, &[0; 32]));
        });
    }

    #[test]
    fn complete_formulas_on_exceptional_inputs() {
        each_backend(|| {
            let p = mul_g(&Scalar::from(7u64));
            let id = Point::IDENTITY;
            assert_eq!(
                ours_sec1(&add(&p, &p)),
                ours_sec1(&mul_g(&Scalar::from(14u64)))
            );
            assert_eq!(ours_sec1(&add(&p, &p.neg())), vec![0]);
            assert_eq!(ours_sec1(&add(&p, &id)), ours_sec1(&p));
            assert_eq!(ours_sec1(&add(&id, &id)), vec![0]);
            assert!(bool::from(eq(&add(&p, &p.neg()), &id)));
            assert!(!bool::from(eq(&p, &id)));
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn scalar_mults_match_crate(
            a in any::<[u8; 32]>(),
            b in any::<[u8; 32]>(),
            c in any::<[u8; 32]>(),
            e in any::<[u8; 32]>(),
        ) {
            let (a, b, c, e) = (scalar(a), scalar(b), scalar(c), scalar(e));
            let g = ProjectivePoint::GENERATOR;
            let want_a = crate_sec1(&(g * a));
            let want_lin = crate_sec1(&(g * (c + b * e + a * b)));
            each_backend(|| {
                assert_eq!(ours_sec1(&mul_g(&a)), want_a.clone());
                assert_eq!(ours_sec1(&mul_g_vartime(&a)), want_a.clone());
                // [c]G + [b](eG) + [b](aG): two variable bases.
                let pe = mul_g(&e);
                let pa = mul_g(&a);
                let lin = lincomb_vartime(Some(&c), &[(pe, b), (pa, b)]);
                assert_eq!(ours_sec1(&lin), want_lin.clone());
                // The same through prepared points, and with the identity among the terms.
                let (qe, qa) = (prepare_vartime(&pe).unwrap(), prepare_vartime(&pa).unwrap());
                let lin = lincomb_prepared_vartime(Some(&c), &[(&qe, b), (&qa, b)]);
                assert_eq!(ours_sec1(&lin), want_lin.clone());
                let lin = lincomb_vartime(Some(&c), &[(pe, b), (Point::IDENTITY, a), (pa, b)]);
                assert_eq!(ours_sec1(&lin), want_lin.clone());
                assert!(prepare_vartime(&Point::IDENTITY).is_none());
                // Decoding what we encode gives the same point.
                if let Some(aff) = Option::<Affine>::from(to_affine(&pa)) {
                    assert_eq!(Affine::from_sec1(&aff.to_sec1(), "P"), Ok(aff));
                }
            });
        }
    }
}
