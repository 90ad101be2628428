//! Scalar multiplication on P-256, generic over the field backend.
//!
//! - **Fixed base G, constant time** ([`mul_g`]): signed [`WINDOW`]-bit digits, one row of
//!   affine multiples `j·2^(W·i)·G` (j = 1..2^(W−1)) per digit, so no doublings at all: one
//!   mixed addition per digit — Jacobian (`madd_ct`, cheaper) on the rows where, starting
//!   from a fixed H = [2^255]G, the digit bounds exclude every exceptional case (see
//!   `JACOBIAN_ROWS`), complete projective on the last two and for the final − H. Each row
//!   is read whole with mask-and-OR (no index depends on the scalar; AVX2 compares where the
//!   CPU has it, else arithmetic masks behind one optimisation barrier); the sign is applied
//!   by a conditional negation; a zero digit adds a dummy entry whose sum is discarded by a
//!   select.
//! - **Fixed base, variable time** ([`mul_g_vartime`], [`mul_table_vartime`]): the same kind
//!   of table, for G or for a long-lived public point ([`BaseTable`]: the KPAK), reading only
//!   the entry a digit names, with Jacobian mixed additions. Public scalars only.
//! - **Multi-scalar, variable time** ([`lincomb_vartime`]): [g]G + Σ [k_i]P_i for public inputs
//!   (RFC 6507 §5.2.2 verification, §5.1.2 validation's public half): G and the P_i by
//!   Straus's interleaving of wNAF digits over one shared chain of doublings (G's odd
//!   multiples, width [`WNAF_G`], built once), in
//!   Jacobian coordinates ([`super::jacobian`]) with affine odd multiples ([`Prepared`]; a
//!   verifier for one signer keeps Y's).

use std::sync::OnceLock;

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::field::{Fe, FieldMul, Portable};
use super::jacobian::Jacobian;
use super::point::{batch_to_affine, Affine, Point};

/// Bits per signed digit of the fixed-base table (6 measured faster than 5 here: 12.6 against
/// 13.5 µs per [k]G).
pub const WINDOW: usize = 6;
/// Entries per row: digits lie in [−2^(W−1), 2^(W−1)].
const ROW: usize = 1 << (WINDOW - 1);
/// Rows: ⌈256 / W⌉ digits plus one for the final carry of the signed recoding.
const ROWS: usize = 256_usize.div_ceil(WINDOW) + 1;
/// wNAF width for the variable bases of [`lincomb_vartime`] (odd multiples built per call).
pub const WNAF: usize = 5;
/// wNAF width for a [`Prepared`] point kept across calls (a verifier's Y).
pub const WNAF_CACHED: usize = 7;

/// One row, as flat limbs (x then y per entry) so the constant-time scan vectorises.
type Row = [[u64; 8]; ROW];

/// A fixed-base table: for each of [`ROWS`] digit positions i, the affine multiples
/// `j·2^(W·i)·B` (j = 1..2^(W−1)) of its base B. G's is built once ([`mul_g`]); a long-lived
/// public point (the KMS's KPAK) gets one through [`BaseTable::new_vartime`].
pub struct BaseTable {
    rows: Vec<Row>,
}

impl core::fmt::Debug for BaseTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "BaseTable({} rows)", self.rows.len())
    }
}

impl BaseTable {
    /// The table of a public point other than the identity (`None` for the identity). No
    /// entry is the identity: j·2^(W·i) < 2^263 has no factor of the prime group order.
    pub fn new_vartime<M: FieldMul>(base: &Point) -> Option<BaseTable> {
        if bool::from(base.is_identity()) {
            return None;
        }
        let mut proj = Vec::with_capacity(ROWS * ROW);
        let mut base = *base;
        for _ in 0..ROWS {
            let mut acc = base;
            for _ in 0..ROW {
                proj.push(acc);
                acc = acc.add::<M>(&base);
            }
            for _ in 0..WINDOW {
                base = base.double::<M>();
            }
        }
        let affine = batch_to_affine::<M>(&proj);
        let rows = affine
            .chunks_exact(ROW)
            .map(|chunk| {
                let mut row = [[0u64; 8]; ROW];
                for (r, a) in row.iter_mut().zip(chunk) {
                    *r = to_limbs(a);
                }
                row
            })
            .collect();
        Some(BaseTable { rows })
    }
}

fn to_limbs(a: &Affine) -> [u64; 8] {
    let mut l = [0u64; 8];
    l[..4].copy_from_slice(&a.x.0);
    l[4..].copy_from_slice(&a.y.0);
    l
}

fn from_limbs(l: &[u64; 8]) -> Affine {
    let mut x = [0u64; 4];
    let mut y = [0u64; 4];
    x.copy_from_slice(&l[..4]);
    y.copy_from_slice(&l[4..]);
    Affine { x: Fe(x), y: Fe(y) }
}

fn g_table() -> &'static BaseTable {
    static TABLE: OnceLock<BaseTable> = OnceLock::new();
    // Built once, with the portable field (the values do not depend on the backend); G is
    // not the identity.
    TABLE.get_or_init(|| {
        BaseTable::new_vartime::<Portable>(&Affine::GENERATOR.to_point())
            .unwrap_or(BaseTable { rows: Vec::new() })
    })
}

/// Signed base-2^W digits of the 256-bit big-endian integer `k` (little-endian order), each in
/// [−2^(W−1), 2^(W−1)], computed without secret-dependent branches or indexes.
fn signed_digits(k: &[u8; 32]) -> [i16; ROWS] {
    let mut le = [0u8; 33];
    for (i, b) in k.iter().rev().enumerate() {
        le[i] = *b;
    }
    let mut digits = [0i16; ROWS];
    let mut carry: i16 = 0;
    let half = 1i16 << (WINDOW - 1);
    for (i, d) in digits.iter_mut().take(ROWS - 1).enumerate() {
        // The bit position is public; only the value is secret.
        let bit = i * WINDOW;
        let (byte, shift) = (bit / 8, bit % 8);
        let two = u16::from(le[byte]) | (u16::from(le[byte + 1]) << 8);
        let chunk = ((two >> shift) & ((1u16 << WINDOW) - 1)) as i16;
        // Wrapping: an overflow check would branch on the secret in checked builds.
        let v = chunk.wrapping_add(carry);
        // carry = 1 iff v > 2^(W−1).
        carry = (half.wrapping_sub(v) >> 15) & 1;
        *d = v.wrapping_sub(carry << WINDOW);
    }
    digits[ROWS - 1] = carry;
    le.iter_mut().for_each(|b| *b = 0);
    digits
}

/// The entry j = `abs` of `row` (1 ≤ abs ≤ 2^(W−1); all zeros for abs = 0), read in constant
/// time: every entry is loaded and masked.
#[inline(always)]
fn scan(row: &Row, abs: u16) -> [u64; 8] {
    // An optimisation barrier on the index: the compiler cannot know its value below.
    let abs = core::hint::black_box(u64::from(abs));
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { scan_avx2(row, abs) };
    }
    scan_masks(row, abs)
}

/// [`scan`] without AVX2.
#[inline(always)]
fn scan_masks(row: &Row, abs: u64) -> [u64; 8] {
    // All the masks first, by arithmetic: x = 0 exactly for the entry wanted, and x < 2^6, so
    // x − 1 has its top bit set iff x = 0. Then one optimisation barrier on the whole mask
    // array (instead of a `subtle` barrier per entry): the compiler can no longer see that a
    // mask is all-ones or zero, so it cannot turn the scan into a branch (it did, without it).
    let mut masks = [0u64; ROW];
    for (j, m) in masks.iter_mut().enumerate() {
        let x = abs ^ (j as u64 + 1);
        *m = (x.wrapping_sub(1) >> 63).wrapping_neg();
    }
    let masks = core::hint::black_box(masks);
    let mut acc = [0u64; 8];
    for (entry, mask) in row.iter().zip(masks.iter()) {
        for (a, e) in acc.iter_mut().zip(entry.iter()) {
            *a |= e & mask;
        }
    }
    acc
}

/// [`scan`] with AVX2: per entry, a 64-bit lane compare of the index with j gives the mask
/// (vector compares and masks, no branch), two 256-bit lanes are ANDed and ORed in.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2(row: &Row, abs: u64) -> [u64; 8] {
    use core::arch::x86_64::{
        __m256i, _mm256_add_epi64, _mm256_and_si256, _mm256_cmpeq_epi64, _mm256_loadu_si256,
        _mm256_or_si256, _mm256_set1_epi64x, _mm256_setzero_si256, _mm256_storeu_si256,
    };
    let mut out = [0u64; 8];
    // SAFETY: AVX2 is there (the caller's guarantee); every load reads 32 octets inside one
    // entry of `row` and every store writes 32 octets inside `out` (unaligned forms).
    unsafe {
        let (mut a0, mut a1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let index = _mm256_set1_epi64x(abs as i64);
        let one = _mm256_set1_epi64x(1);
        let mut j = one;
        for entry in row.iter() {
            let mask = _mm256_cmpeq_epi64(index, j);
            j = _mm256_add_epi64(j, one);
            let p = entry.as_ptr().cast::<__m256i>();
            a0 = _mm256_or_si256(a0, _mm256_and_si256(_mm256_loadu_si256(p), mask));
            a1 = _mm256_or_si256(a1, _mm256_and_si256(_mm256_loadu_si256(p.add(1)), mask));
        }
        let o = out.as_mut_ptr().cast::<__m256i>();
        _mm256_storeu_si256(o, a0);
        _mm256_storeu_si256(o.add(1), a1);
    }
    out
}

/// `d`-th multiple of the row base (d in [−2^(W−1), 2^(W−1)], d ≠ 0 for a meaningful result),
/// read in constant time ([`scan`]), negated under a select for d < 0.
#[inline(always)]
fn select_ct(row: &Row, d: i16) -> Affine {
    let neg = (d >> 15) & 1;
    let abs = ((d ^ neg.wrapping_neg()).wrapping_add(neg)) as u16;
    let mut acc = scan(row, abs);
    let t = from_limbs(&acc);
    acc.iter_mut().for_each(|w| *w = 0);
    let negated = t.neg();
    Affine::conditional_select(&t, &negated, Choice::from(neg as u8))
}

/// Rows of [`mul_g`] added with the incomplete Jacobian mixed addition ([`madd_ct`]).
///
/// The accumulator starts at H = [h]G with h = 2^255 (not at O), so before row i it is
/// [h + A]G with A = Σ_{k<i} d_k·2^(6k), |A| ≤ 32·(2^(6i) − 1)/63 < 2^(6i); row i adds [T]G with
/// T = d_i·2^(6i). The addition is exceptional only if h + A ≡ ±T or h + A ≡ 0 (mod q), i.e.
/// if −h ≡ A ∓ T or −h ≡ A. For i ≤ 41 these integers have absolute value below
/// 33·2^(6i) < 2^252, while −h mod q = q − 2^255 lies in [2^252, q − 2^252]: never (T itself,
/// |T| ≤ 2^251, is never O either). Rows 42 and 43,
/// where 33·2^(6i) exceeds that, use the complete formulas, and so does the final − H.
const JACOBIAN_ROWS: usize = 42;
// The bound above is for 6-bit digits and 44 rows.
const _: () = assert!(WINDOW == 6 && ROWS == 44);
/// H = [2^255]G = 8·2^(6·42)·G: row 42, entry j = 8.
const H_ROW: usize = 42;
const H_ENTRY: usize = 7;

/// P + Q for a Jacobian P = (X : Y : Z) (x = X/Z², y = Y/Z³) and an affine Q, by
/// "madd-2004-hmv" (Explicit-Formulas Database; 8M + 3S): correct whenever P ≠ ±Q and P ≠ O,
/// which [`JACOBIAN_ROWS`] guarantees for the rows it is used on (a zero digit's dummy sum is
/// discarded by a select). Constant time: a fixed sequence of field operations.
#[inline(always)]
fn madd_ct<M: FieldMul>(p: &[Fe; 3], q: &Affine) -> [Fe; 3] {
    let [x1, y1, z1] = p;
    let z1z1 = M::square(z1);
    let u2 = M::mul(&z1z1, &q.x);
    let s2 = M::mul(&M::mul(&z1z1, z1), &q.y);
    let h = u2.sub(x1);
    let r = s2.sub(y1);
    let z3 = M::mul(z1, &h);
    let hh = M::square(&h);
    let hhh = M::mul(&hh, &h);
    let v = M::mul(&hh, x1);
    let x3 = M::square(&r).sub(&v.double()).sub(&hhh);
    let y3 = M::mul(&v.sub(&x3), &r).sub(&M::mul(&hhh, y1));
    [x3, y3, z3]
}

#[inline(always)]
fn select3(a: &[Fe; 3], b: &[Fe; 3], choice: Choice) -> [Fe; 3] {
    [
        Fe::conditional_select(&a[0], &b[0], choice),
        Fe::conditional_select(&a[1], &b[1], choice),
        Fe::conditional_select(&a[2], &b[2], choice),
    ]
}

/// [k]G in constant time, k given as 32 big-endian octets (any 256-bit value): H + [k]G − H
/// (see [`JACOBIAN_ROWS`]), rows below it in Jacobian coordinates with [`madd_ct`], the rest
/// and − H with the complete projective mixed addition; a zero digit's (dummy) sum is
/// discarded by a select.
pub fn mul_g<M: FieldMul>(k: &[u8; 32]) -> Point {
    let table = g_table();
    let h = from_limbs(&table.rows[H_ROW][H_ENTRY]);
    let mut digits = signed_digits(k);
    let mut jac = [h.x, h.y, Fe::ONE];
    for (row, d) in table.rows.iter().zip(digits.iter()).take(JACOBIAN_ROWS) {
        let t = select_ct(row, *d);
        let sum = madd_ct::<M>(&jac, &t);
        jac = select3(&jac, &sum, !d.ct_eq(&0));
    }
    // (X : Y : Z) Jacobian is (X·Z : Y : Z³) projective (Z ≠ 0: the accumulator is never O).
    let z2 = M::square(&jac[2]);
    let mut acc = Point {
        x: M::mul(&jac[0], &jac[2]),
        y: jac[1],
        z: M::mul(&z2, &jac[2]),
    };
    for (row, d) in table.rows.iter().zip(digits.iter()).skip(JACOBIAN_ROWS) {
        let t = select_ct(row, *d);
        let sum = acc.add_affine::<M>(&t);
        acc = Point::conditional_select(&acc, &sum, !d.ct_eq(&0));
    }
    digits.iter_mut().for_each(|d| *d = 0);
    jac.iter_mut().for_each(|f| *f = Fe::ZERO);
    acc.add_affine::<M>(&h.neg())
}

/// [k]G in variable time: public scalars only.
pub fn mul_g_vartime<M: FieldMul>(k: &[u8; 32]) -> Point {
    mul_table_vartime::<M>(g_table(), k)
}

/// [k]B for the base B of `table`, variable time (public k): one Jacobian mixed addition per
/// non-zero digit, no doubling.
pub fn mul_table_vartime<M: FieldMul>(table: &BaseTable, k: &[u8; 32]) -> Point {
    let digits = signed_digits(k);
    let mut acc = Jacobian::IDENTITY;
    for (row, &d) in table.rows.iter().zip(digits.iter()) {
        if d > 0 {
            acc = acc.add_affine_vartime::<M>(&from_limbs(&row[(d - 1) as usize]));
        } else if d < 0 {
            acc = acc.add_affine_vartime::<M>(&from_limbs(&row[(-d - 1) as usize]).neg());
        }
    }
    acc.to_point::<M>()
}

/// Width-w NAF of a 256-bit big-endian integer: digits odd in (−2^(w−1), 2^(w−1)) or zero,
/// little-endian, 257 positions. Variable time (public scalars).
fn wnaf(k: &[u8; 32], w: usize) -> [i8; 257] {
    // Little-endian limbs with one spare for the carry of a negative digit.
    let mut n = [0u64; 5];
    for (i, limb) in n.iter_mut().take(4).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&k[32 - 8 * (i + 1)..32 - 8 * i]);
        *limb = u64::from_be_bytes(b);
    }
    let mut out = [0i8; 257];
    let window = 1i64 << w;
    let mut i = 0;
    while i < 257 && n.iter().any(|&l| l != 0) {
        if n[0] & 1 == 1 {
            let mut d = (n[0] & (window as u64 - 1)) as i64;
            if d >= window / 2 {
                d -= window;
            }
            out[i] = d as i8;
            // n −= d.
            if d > 0 {
                sub_small(&mut n, d as u64);
            } else {
                add_small(&mut n, (-d) as u64);
            }
        }
        shr1(&mut n);
        i += 1;
    }
    out
}

fn sub_small(n: &mut [u64; 5], d: u64) {
    let mut borrow = d;
    for l in n.iter_mut() {
        let (v, b) = l.overflowing_sub(borrow);
        *l = v;
        borrow = u64::from(b);
        if borrow == 0 {
            break;
        }
    }
}

fn add_small(n: &mut [u64; 5], d: u64) {
    let mut carry = d;
    for l in n.iter_mut() {
        let (v, c) = l.overflowing_add(carry);
        *l = v;
        carry = u64::from(c);
        if carry == 0 {
            break;
        }
    }
}

fn shr1(n: &mut [u64; 5]) {
    for i in 0..5 {
        let hi = if i + 1 < 5 { n[i + 1] << 63 } else { 0 };
        n[i] = (n[i] >> 1) | hi;
    }
}

/// Odd multiples P, 3P, …, (2^(w−1) − 1)P of a public point, affine, for [`lincomb_vartime`]:
/// its wNAF digits of width w index them directly.
#[derive(Clone, Debug)]
pub struct Prepared {
    width: usize,
    odd: Vec<Affine>,
}

/// The [`Prepared`] forms of several points with one shared inversion; `None` for the
/// identity (it contributes nothing). Variable time: public points only.
pub fn prepare_vartime<M: FieldMul>(points: &[Point], width: usize) -> Vec<Option<Prepared>> {
    let half = 1usize << (width - 2);
    let live: Vec<&Point> = points
        .iter()
        .filter(|p| !bool::from(p.is_identity()))
        .collect();
    let mut proj = Vec::with_capacity(live.len() * half);
    for p in &live {
        let two = p.double::<M>();
        let mut acc = **p;
        for _ in 0..half {
            proj.push(acc);
            acc = acc.add::<M>(&two);
        }
    }
    // No odd multiple below the group order of a point other than O is O.
    let mut affine = batch_to_affine::<M>(&proj).into_iter();
    points
        .iter()
        .map(|p| {
            if bool::from(p.is_identity()) {
                None
            } else {
                Some(Prepared {
                    width,
                    odd: affine.by_ref().take(half).collect(),
                })
            }
        })
        .collect()
}

/// [g]G + Σ [k_i]P_i ([g]G left out for `None`), variable time: every input must be public.
pub fn lincomb_vartime<M: FieldMul>(g: Option<&[u8; 32]>, terms: &[(Point, [u8; 32])]) -> Point {
    let points: Vec<Point> = terms.iter().map(|(p, _)| *p).collect();
    let prepared = prepare_vartime::<M>(&points, WNAF);
    let pairs: Vec<(&Prepared, &[u8; 32])> = prepared
        .iter()
        .zip(terms)
        .filter_map(|(p, (_, k))| p.as_ref().map(|p| (p, k)))
        .collect();
    lincomb_prepared_vartime::<M>(g, &pairs)
}

/// wNAF width of G in [`lincomb_prepared_vartime`]: its 64 odd multiples are built once.
pub const WNAF_G: usize = 8;

fn g_prepared() -> &'static Prepared {
    static TABLE: OnceLock<Prepared> = OnceLock::new();
    // Built once, with the portable field; G is not the identity.
    TABLE.get_or_init(|| {
        prepare_vartime::<Portable>(&[Affine::GENERATOR.to_point()], WNAF_G)
            .pop()
            .flatten()
            .expect("G is not the identity")
    })
}

/// [g]G + Σ [k_i]P_i over prepared points: Straus's interleaving, one chain of Jacobian
/// doublings shared by all the terms, G included (width [`WNAF_G`], odd multiples built once),
/// mixed additions of affine odd multiples. With no P_i, [g]G from the fixed-base table.
/// Variable time: public inputs only.
pub fn lincomb_prepared_vartime<M: FieldMul>(
    g: Option<&[u8; 32]>,
    terms: &[(&Prepared, &[u8; 32])],
) -> Point {
    if terms.is_empty() {
        return match g {
            Some(g) => mul_g_vartime::<M>(g),
            None => Point::IDENTITY,
        };
    }
    let mut all: Vec<(&Prepared, [i8; 257])> =
        terms.iter().map(|(p, k)| (*p, wnaf(k, p.width))).collect();
    if let Some(g) = g {
        all.push((g_prepared(), wnaf(g, WNAF_G)));
    }
    let top = all
        .iter()
        .filter_map(|(_, d)| d.iter().rposition(|&x| x != 0))
        .max();
    let mut acc = Jacobian::IDENTITY;
    if let Some(top) = top {
        for i in (0..=top).rev() {
            acc = acc.double_vartime::<M>();
            for (p, d) in &all {
                let d = d[i];
                if d > 0 {
                    acc = acc.add_affine_vartime::<M>(&p.odd[(d as usize) / 2]);
                } else if d < 0 {
                    acc = acc.add_affine_vartime::<M>(&p.odd[((-d) as usize) / 2].neg());
                }
            }
        }
    }
    acc.to_point::<M>()
}

/// Whether P ≠ O and x(P) = x for 32 big-endian octets x (RFC 6507 §5.2.2 step 6), without
/// an inversion: X = x·Z. Variable time (public inputs).
pub fn x_matches_vartime<M: FieldMul>(p: &Point, x: &[u8; 32]) -> bool {
    let Some(x) = Option::<Fe>::from(Fe::from_be_bytes(x)) else {
        return false;
    };
    !bool::from(p.is_identity()) && M::mul(&x, &p.z) == p.x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_recompose() {
        for seed in 0u8..40 {
            let mut k = [seed.wrapping_mul(37); 32];
            k[0] = seed;
            k[31] ^= 0xA5;
            let d = signed_digits(&k);
            // Σ d_i·2^(W·i) as a 264-bit integer, compared with k.
            let mut acc = [0i128; 34];
            for (i, &di) in d.iter().enumerate() {
                let bit = i * WINDOW;
                acc[bit / 8] += i128::from(di) << (bit % 8);
                assert!(di.unsigned_abs() as usize <= ROW);
            }
            let mut carry = 0i128;
            let mut bytes = [0u8; 34];
            for (b, a) in bytes.iter_mut().zip(acc.iter()) {
                let v = a + carry;
                *b = v.rem_euclid(256) as u8;
                carry = v.div_euclid(256);
            }
            let mut le = k;
            le.reverse();
            assert_eq!(&bytes[..32], &le[..]);
            assert_eq!(bytes[32], 0);
        }
    }

    /// Both row scans return exactly the entry the index names (zeros for 0).
    #[test]
    fn scans_select_the_named_entry() {
        let table = g_table();
        for row in [&table.rows[0], &table.rows[ROWS - 1]] {
            for abs in 0..=ROW as u16 {
                let want = if abs == 0 {
                    [0u64; 8]
                } else {
                    row[usize::from(abs) - 1]
                };
                assert_eq!(scan(row, abs), want);
                assert_eq!(scan_masks(row, u64::from(abs)), want);
                #[cfg(target_arch = "x86_64")]
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    assert_eq!(unsafe { scan_avx2(row, u64::from(abs)) }, want);
                }
            }
        }
    }

    #[test]
    fn wnaf_recomposes() {
        for seed in 0u8..40 {
            let mut k = [seed.wrapping_mul(91).wrapping_add(3); 32];
            k[5] = !seed;
            let d = wnaf(&k, WNAF);
            let mut acc = [0i128; 34];
            for (i, &di) in d.iter().enumerate() {
                assert!(di == 0 || (di % 2 != 0 && di.unsigned_abs() < 1 << (WNAF - 1)));
                acc[i / 8] += i128::from(di) << (i % 8);
            }
            let mut carry = 0i128;
            let mut bytes = [0u8; 34];
            for (b, a) in bytes.iter_mut().zip(acc.iter()) {
                let v = a + carry;
                *b = v.rem_euclid(256) as u8;
                carry = v.div_euclid(256);
            }
            let mut le = k;
            le.reverse();
            assert_eq!(&bytes[..32], &le[..]);
        }
    }
}
