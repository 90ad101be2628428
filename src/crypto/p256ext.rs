//! P-256 helpers on top of the `p256` crate's point arithmetic (RFC 6507 fixes ECCSI to
//! NIST P-256 with SHA-256, N = 32).
//!
//! - A fixed-base table for the generator G with affine entries, used by [`mul_g`]
//!   (constant time, for the secrets KSAK, v and j) and [`mul_g_vartime`] (public scalars).
//!   The crate's own `mul_by_generator` without its `precomputed-tables` feature is a plain
//!   double-and-add; with it, it adds *projective* points in 4-bit windows. Signed
//!   [`WINDOW`]-bit windows over affine entries need fewer, cheaper (mixed) additions and no
//!   doublings at all: every window has its own row of multiples `j·2^(W·i)·G`.
//! - Strict SEC1 encodings: points only as `0x04 ‖ x ‖ y` (65 octets, RFC 6507 §3.3), scalars
//!   as 32 big-endian octets below q.
//!
//! No field arithmetic lives here: additions, negations and constant-time selects are the
//! crate's (complete Renes–Costello–Batina formulas, so no exceptional cases in the sums).

use std::sync::OnceLock;

use p256::elliptic_curve::ff::PrimeField;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use p256::elliptic_curve::Group;
use p256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};

use super::ct::public;
use super::error::CryptoError;

/// Window width of the fixed-base table (bits per signed digit). 6 was the fastest of 4–7
/// measured with `benches/eccsi.rs` (see the module docs of that bench).
pub const WINDOW: usize = 6;
/// Entries per row: digits are recoded into [−2^(W−1), 2^(W−1)], so rows hold 1..=2^(W−1).
const ROW: usize = 1 << (WINDOW - 1);
/// Rows: ⌈256 / W⌉ windows plus one for the final carry of the signed recoding.
const ROWS: usize = 256_usize.div_ceil(WINDOW) + 1;

/// Length of an uncompressed SEC1 point.
pub const POINT_LEN: usize = 65;

struct GTable {
    rows: Vec<[AffinePoint; ROW]>,
}

fn g_table() -> &'static GTable {
    static TABLE: OnceLock<GTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rows = Vec::with_capacity(ROWS);
        let mut base = ProjectivePoint::GENERATOR;
        for _ in 0..ROWS {
            let mut proj = [ProjectivePoint::IDENTITY; ROW];
            let mut acc = base;
            for entry in proj.iter_mut() {
                *entry = acc;
                acc += base;
            }
            let mut row = [AffinePoint::IDENTITY; ROW];
            for (a, p) in row.iter_mut().zip(proj.iter()) {
                *a = p.to_affine();
            }
            rows.push(row);
            for _ in 0..WINDOW {
                base = base.double();
            }
        }
        GTable { rows }
    })
}

/// Signed base-2^W digits of `k` (little-endian), each in [−2^(W−1), 2^(W−1)], computed
/// without secret-dependent branches or indexes.
fn signed_digits(k: &Scalar) -> [i16; ROWS] {
    let be = k.to_repr();
    let mut le = [0u8; 33];
    for (i, b) in be.iter().rev().enumerate() {
        le[i] = *b;
    }
    let mut digits = [0i16; ROWS];
    let mut carry: i16 = 0;
    let half = 1i16 << (WINDOW - 1);
    for (i, d) in digits.iter_mut().take(ROWS - 1).enumerate() {
        // Bit position is public; only the value is secret.
        let bit = i * WINDOW;
        let (byte, shift) = (bit / 8, bit % 8);
        let two = u16::from(le[byte]) | (u16::from(le[byte + 1]) << 8);
        let chunk = ((two >> shift) & ((1u16 << WINDOW) - 1)) as i16;
        // Wrapping arithmetic (no overflow can occur): an overflow check would branch on the
        // secret in builds with overflow checks (tests/ctgrind.rs runs those).
        let v = chunk.wrapping_add(carry);
        // carry = 1 iff v > 2^(W-1): keeps digits in [−2^(W−1), 2^(W−1)].
        carry = (half.wrapping_sub(v) >> 15) & 1;
        *d = v.wrapping_sub(carry << WINDOW);
    }
    digits[ROWS - 1] = carry;
    le.iter_mut().for_each(|b| *b = 0);
    digits
}

/// `d · row-base`, selected in constant time: every entry of the row is read.
fn select_ct(row: &[AffinePoint; ROW], d: i16) -> AffinePoint {
    let neg = (d >> 15) & 1;
    let abs = ((d ^ neg.wrapping_neg()).wrapping_add(neg)) as u16;
    let mut t = AffinePoint::IDENTITY;
    for (j, entry) in row.iter().enumerate() {
        t.conditional_assign(entry, abs.ct_eq(&(j as u16 + 1)));
    }
    let negated = -t;
    t.conditional_assign(&negated, Choice::from(neg as u8));
    t
}

/// [k]G in constant time (for secret scalars: KSAK, v, j).
pub fn mul_g(k: &Scalar) -> ProjectivePoint {
    let table = g_table();
    let mut digits = signed_digits(k);
    let mut acc = ProjectivePoint::IDENTITY;
    for (row, d) in table.rows.iter().zip(digits.iter()) {
        acc += &select_ct(row, *d);
    }
    digits.iter_mut().for_each(|d| *d = 0);
    acc
}

/// [k]G in variable time: only for public scalars (signature verification).
pub fn mul_g_vartime(k: &Scalar) -> ProjectivePoint {
    let table = g_table();
    let digits = signed_digits(k);
    let mut acc = ProjectivePoint::IDENTITY;
    for (row, &d) in table.rows.iter().zip(digits.iter()) {
        if d > 0 {
            acc += &row[(d - 1) as usize];
        } else if d < 0 {
            acc += &(-row[(-d - 1) as usize]);
        }
    }
    acc
}

/// Reduces a 512-bit big-endian integer modulo q: hi·2^256 + lo ≡ hi·(2^256 mod q) + lo.
/// Constant time. Used so that derived scalars have a bias below 2^−256.
pub fn reduce_wide(bytes: &[u8; 64]) -> Scalar {
    let mut hi = FieldBytes::default();
    let mut lo = FieldBytes::default();
    hi.copy_from_slice(&bytes[..32]);
    lo.copy_from_slice(&bytes[32..]);
    // 2^256 mod q = ((2^256 − 1) mod q) + 1.
    let r256 =
        <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from([0xFFu8; 32])) + Scalar::ONE;
    let out = <Scalar as Reduce<FieldBytes>>::reduce(&hi) * r256
        + <Scalar as Reduce<FieldBytes>>::reduce(&lo);
    hi.iter_mut().for_each(|b| *b = 0);
    lo.iter_mut().for_each(|b| *b = 0);
    out
}

/// A 32-octet integer reduced mod q (for hash values such as HS and HE, RFC 6507 §5).
pub fn reduce_bytes(bytes: &[u8; 32]) -> Scalar {
    <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(*bytes))
}

/// Strict scalar decoding: exactly 32 octets, value below q (zero is allowed here; callers
/// decide whether zero is acceptable).
pub fn scalar_from_bytes(bytes: &[u8], what: &'static str) -> Result<Scalar, CryptoError> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::Malformed {
        what,
        reason: "scalar must be 32 octets",
    })?;
    let k = Scalar::from_repr(FieldBytes::from(arr));
    // Public outcome: the value is refused or accepted. `unwrap_or` selects without a branch.
    if !bool::from(public(k.is_some())) {
        return Err(CryptoError::ScalarOutOfRange { what });
    }
    Ok(k.unwrap_or(Scalar::ZERO))
}

/// Strict point decoding: `0x04 ‖ x ‖ y`, coordinates below p, on the curve. The identity has
/// no such encoding, so it is rejected by construction.
pub fn point_from_bytes(bytes: &[u8], what: &'static str) -> Result<AffinePoint, CryptoError> {
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
    let mut x = FieldBytes::default();
    let mut y = FieldBytes::default();
    x.copy_from_slice(&bytes[1..33]);
    y.copy_from_slice(&bytes[33..65]);
    Option::from(AffinePoint::from_coordinates(&x, &y)).ok_or(CryptoError::NotOnCurve { what })
}

/// `0x04 ‖ x ‖ y`. The identity (never produced for KPAK, PVT or J by the callers, which check
/// for it first) would encode as all-zero coordinates.
pub fn point_to_bytes(p: &AffinePoint) -> [u8; POINT_LEN] {
    let mut out = [0u8; POINT_LEN];
    out[0] = 0x04;
    out[1..33].copy_from_slice(&p.x());
    out[33..65].copy_from_slice(&p.y());
    out
}

/// The generator in RFC 6507 encoding (it is hashed into HS).
pub fn generator_bytes() -> [u8; POINT_LEN] {
    point_to_bytes(&AffinePoint::GENERATOR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::Field;

    fn scalars() -> Vec<Scalar> {
        let mut v = vec![Scalar::ZERO, Scalar::ONE, -Scalar::ONE, Scalar::from(2u64)];
        // Deterministic pseudo-random scalars.
        let mut x = Scalar::from(0x1234_5678_9abc_def0u64);
        for _ in 0..20 {
            x = x.square() + Scalar::from(7u64);
            v.push(x);
        }
        // All-ones digits force maximal carries.
        v.push(reduce_bytes(&[0xFF; 32]));
        v.push(reduce_bytes(&[0x7F; 32]));
        v.push(-Scalar::from(2u64));
        v
    }

    #[test]
    fn fixed_base_matches_crate_multiplication() {
        for k in scalars() {
            let want = ProjectivePoint::GENERATOR * k;
            assert_eq!(mul_g(&k), want);
            assert_eq!(mul_g_vartime(&k), want);
        }
    }

    #[test]
    fn digits_recompose() {
        for k in scalars() {
            let d = signed_digits(&k);
            let mut acc = Scalar::ZERO;
            let base = Scalar::from(1u64 << WINDOW);
            for &di in d.iter().rev() {
                let term = if di >= 0 {
                    Scalar::from(di as u64)
                } else {
                    -Scalar::from((-di) as u64)
                };
                acc = acc * base + term;
                assert!(di.unsigned_abs() as usize <= ROW);
            }
            assert_eq!(acc, k);
        }
    }

    #[test]
    fn wide_reduction() {
        let mut b = [0u8; 64];
        b[63] = 5;
        assert_eq!(reduce_wide(&b), Scalar::from(5u64));
        b[31] = 1; // 2^256 + 5
        let two256 = reduce_bytes(&[0xFF; 32]) + Scalar::ONE;
        assert_eq!(reduce_wide(&b), two256 + Scalar::from(5u64));
        assert!(bool::from(!reduce_wide(&[0xFF; 64]).is_zero()));
    }

    #[test]
    fn point_codec() {
        let g = generator_bytes();
        assert_eq!(point_from_bytes(&g, "G"), Ok(AffinePoint::GENERATOR));
        let mut bad = g;
        bad[64] ^= 1;
        assert_eq!(
            point_from_bytes(&bad, "P"),
            Err(CryptoError::NotOnCurve { what: "P" })
        );
        let mut comp = g;
        comp[0] = 0x02;
        assert!(matches!(
            point_from_bytes(&comp, "P"),
            Err(CryptoError::Malformed { .. })
        ));
        assert!(matches!(
            point_from_bytes(&g[..64], "P"),
            Err(CryptoError::Malformed { .. })
        ));
    }
}
