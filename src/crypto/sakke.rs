//! SAKKE, RFC 6508, with parameter set 1 (RFC 6509 Appendix A) and n = 128, Hash = SHA-256.
//!
//! | RFC 6508 clause | here |
//! |---|---|
//! | §5.1 HashToIntegerRange | [`hash_to_integer_range`] |
//! | §6.1.1 KMS setup, RSK issue | [`SakkeMasterSecret`], [`issue_rsk`] |
//! | §6.1.2 RSK validation | [`validate_rsk`] |
//! | §6.2.1 sender | [`encapsulate`], [`encapsulate_random`] |
//! | §6.2.2 receiver | [`decapsulate`] |
//!
//! Identifiers are raw octets (RFC 6509 §3.2 `YYYY-MM\0tel:...\0`, or the 32-octet TS 33.180
//! F.2.1 UID); as a scalar, an identifier is its big-endian integer reduced mod q.
//!
//! Evaluation choices (all give the RFC's values; the vector tests check them bit for bit):
//! * [a]P uses a constant-time fixed-base table for P; [r]([b]P + Z) is evaluated with a
//!   fixed-base table of [b]P + Z from the second use of b with a public key on ([`recipients`],
//!   at most 8 per key), and before that as [r·b]P + [r]Z with a second fixed-base table for
//!   Z; all tables are cached in the [`SakkePublicKey`].
//! * g^r uses a fixed-base table for g in PF_p ([`gpow`]).
//! * ⟨[a]P + Z, K⟩ (validation) is evaluated as ⟨P, K⟩^a · ⟨Z, K⟩ (bilinearity in the first
//!   argument) with cached Miller lines for P and Z, the exponentiation by a sharing its
//!   squarings with Z's Miller loop: exactly the RFC value.
//! * ⟨R, K⟩ (decapsulation) is evaluated as ⟨K, R⟩ with the RSK K as the Miller point, so its
//!   lines are computed once per RSK (normalised at its second use). This is the same value because the pairing is symmetric
//!   on the cyclic order-q subgroup (both arguments multiples of P; bilinearity), and the
//!   Miller walk proves that K has order q ([q − 1]K = −K), which is then also required. For R
//!   outside the subgroup the re-encapsulation check fails whichever way the pairing is taken.
//!
//! Lengths: RFC 6508 fixes them (g^r and w hashed as 128 octets, H of 16 octets, 273 octets
//! of Encapsulated Data) and [`encapsulate`] follows it. [`decapsulate`] also reads what a
//! shortest-length writer sends (H without leading zero octets, w hashed without them; see
//! [`lengths`]), and [`encapsulate_random`] only emits values whose shortest and RFC encodings
//! agree, so that such readers agree with it too.
//!
//! Secrets (z_T, (a + z_T)^−1, K, SSV, r, the pairing value w and g^r) only flow through
//! constant-time code; the branches below depend on public data or on outcomes that are made
//! public anyway (accept/reject).

mod gpow;
mod hash;
mod lengths;
mod recipients;

pub use hash::{hash_to_integer_range, HashRange};
use hash::{htir_2n, htir_q};

use super::ct::{declassify, public};
use super::curve::table::FixedBaseTable;
use super::curve::{AffinePoint, JacobianPoint, POINT_BYTES};
use super::error::CryptoError;
use super::fp::{Fp, Fq, FP_BYTES, Q};
use super::pairing::MillerLines;
use super::secret::{SecretBytes, SecretVec};
use crypto_bigint::U1024;
use ring::rand::SecureRandom;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

pub use super::pairing::pairing;

/// n/8: octets of an SSV and of the HINT H (RFC 6509: n = 128).
pub const SSV_BYTES: usize = 16;
/// R_(b,S) ‖ H as RFC 6508 encodes it (273 octets); [`decapsulate`] also takes a shorter H.
pub const ENCAPSULATED_BYTES: usize = POINT_BYTES + SSV_BYTES;

/// g = ⟨P, P⟩ for parameter set 1 (RFC 6509 App. A), as its PF_p representative.
const G_HEX: &str = "66FC2A432B6EA392148F15867D623068C6A87BD1FB94C41E27FABE658E015A87371E94744C96FEDA449AE9563F8BC446CBFDA85D5D00EF577072DA8F541721BEEE0FAED1828EAB90B99DFB0138C7843355DF0460B4A9FD74B4F1A32BCAFA1FFAD682C033A7942BCCE3720F20B9B7B0403C8CAE87B7A0042ACDE0FAB36461EA46";

/// Window width of the table for P (7 bits: 2.4 MiB, built once per process; 147 additions
/// per multiplication). With every row scanned in full (constant time), 6-bit windows (171
/// additions) were measured faster than 8-bit ones (4 MiB scanned per multiplication), and
/// 7-bit ones about 8 % faster than 6-bit ones (RSK issue, 2026-12-04).
const P_WINDOW: usize = 7;
/// Window width of each public key's table (6 bits: 1.3 MiB, built on first use).
const Z_WINDOW: usize = 6;

fn g_value() -> Fp {
    Fp::from_uint(&U1024::from_be_hex(G_HEX))
}

fn p_table() -> &'static FixedBaseTable<P_WINDOW> {
    static T: OnceLock<FixedBaseTable<P_WINDOW>> = OnceLock::new();
    T.get_or_init(|| FixedBaseTable::new(&AffinePoint::generator()))
}

/// The Miller lines of P (public, built once per process).
fn p_lines() -> &'static MillerLines {
    static L: OnceLock<MillerLines> = OnceLock::new();
    L.get_or_init(|| {
        let mut l = MillerLines::new(&AffinePoint::generator());
        l.normalize();
        l
    })
}

fn g_table() -> &'static gpow::GPowTable {
    static T: OnceLock<gpow::GPowTable> = OnceLock::new();
    T.get_or_init(|| gpow::GPowTable::new(&g_value()))
}

/// The KMS master secret z_T ∈ [2, q − 1] (RFC 6508 §6.1.1 requires z_T ∈ [2, q − 1]).
pub struct SakkeMasterSecret {
    z: Fq,
}

impl Drop for SakkeMasterSecret {
    fn drop(&mut self) {
        self.z.zeroize();
    }
}

impl core::fmt::Debug for SakkeMasterSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SakkeMasterSecret(<redacted>)")
    }
}

/// 2 ≤ x < q, constant-time.
fn in_master_range(x: &U1024) -> Choice {
    super::fp::uint_lt(x, &Q) & !super::fp::uint_lt(x, &U1024::from_u64(2))
}

impl SakkeMasterSecret {
    /// Uniform z_T ∈ [2, q − 1] by rejection sampling of 1022-bit strings (the number of
    /// rejected draws says nothing about the accepted one).
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, CryptoError> {
        let mut buf = [0u8; FP_BYTES];
        loop {
            rng.fill(&mut buf).map_err(|_| CryptoError::Rng)?;
            buf[0] &= 0x3F; // q < 2^1022
            let x = U1024::from_be_slice(&buf);
            if bool::from(in_master_range(&x)) {
                buf.zeroize();
                return Ok(Self {
                    z: Fq::from_uint(&x),
                });
            }
        }
    }

    /// Big-endian z_T of at most 128 octets (shorter encodings, such as RFC 6508 App. A's
    /// 20-octet z, are accepted), value in [2, q − 1].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let x = super::fp::uint_from_be(bytes).ok_or(CryptoError::Malformed {
            what: "SAKKE master secret",
            reason: "longer than 128 octets",
        })?;
        // Public outcome: the secret is refused or accepted.
        if bool::from(public(in_master_range(&x))) {
            Ok(Self {
                z: Fq::from_uint(&x),
            })
        } else {
            Err(CryptoError::ScalarOutOfRange {
                what: "SAKKE master secret",
            })
        }
    }

    /// 128 big-endian octets.
    pub fn to_bytes(&self) -> SecretVec {
        SecretVec::new(self.z.to_be_bytes().to_vec())
    }

    /// Z_T = [z_T]P (RFC 6508 §6.1.1), constant-time in z_T.
    pub fn public_key(&self) -> SakkePublicKey {
        let (z, _) = p_table().mul(&self.z).to_affine();
        // Z_T is the public key.
        declassify(&z);
        SakkePublicKey::from_point(z)
    }
}

/// The KMS public key Z_T ("PubEncKey", TS 33.180 D.3.2.2), with a lazily built fixed-base
/// table for [r]Z_T, its Miller lines, and the tables of the receiver points [b]P + Z_T met
/// more than once ([`recipients`]); clones share them.
#[derive(Clone)]
pub struct SakkePublicKey {
    point: AffinePoint,
    table: Arc<OnceLock<FixedBaseTable<Z_WINDOW>>>,
    lines: Arc<OnceLock<MillerLines>>,
    recipients: Arc<recipients::Recipients>,
}

impl PartialEq for SakkePublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.point == other.point
    }
}
impl Eq for SakkePublicKey {}

impl core::fmt::Debug for SakkePublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SakkePublicKey({})", hex::encode(&self.to_bytes()[..9]))?;
        f.write_str("..")
    }
}

impl SakkePublicKey {
    fn from_point(point: AffinePoint) -> Self {
        Self {
            point,
            table: Arc::new(OnceLock::new()),
            lines: Arc::new(OnceLock::new()),
            recipients: Arc::default(),
        }
    }

    /// Decodes 0x04 ‖ x ‖ y and checks that the point is on E and has order q (a variable-time
    /// [q]Z = ∞ check: Z_T is public).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let point = AffinePoint::from_bytes(bytes, "SAKKE public key")?;
        if !point.has_order_q_vartime() {
            return Err(CryptoError::NotOnCurve {
                what: "SAKKE public key (not of order q)",
            });
        }
        Ok(Self::from_point(point))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.point.to_bytes().to_vec()
    }

    /// A copy that shares this key's [r]Z table and Miller lines but remembers no receivers
    /// (no table of [b]P + Z yet): the state of a key meeting every identifier for the first
    /// time, without rebuilding the per-key tables (the constant-time bench compares classes
    /// of RSKs under it).
    pub fn without_receivers(&self) -> Self {
        Self {
            recipients: Arc::default(),
            ..self.clone()
        }
    }

    pub fn point(&self) -> &AffinePoint {
        &self.point
    }

    fn lines(&self) -> &MillerLines {
        self.lines.get_or_init(|| {
            let mut l = MillerLines::new(&self.point);
            l.normalize();
            l
        })
    }

    fn table(&self) -> &FixedBaseTable<Z_WINDOW> {
        self.table.get_or_init(|| FixedBaseTable::new(&self.point))
    }

    /// [r]([b]P + Z), constant-time in r (b is public): one walk of the table of [b]P + Z from
    /// the second use of b on ([`recipients`]), else [`Self::mul_receiver_point_split`].
    fn mul_receiver_point(&self, b: &Fq, r: &Fq) -> JacobianPoint {
        match self.recipients.table(&self.point, b) {
            Some(t) => t.mul(r),
            None => self.mul_receiver_point_split(b, r),
        }
    }

    /// [r]([b]P + Z) = [r·b]P + [r]Z, constant-time in r (b is public).
    fn mul_receiver_point_split(&self, b: &Fq, r: &Fq) -> JacobianPoint {
        let mut rb = *r * *b;
        let rz = self.table().mul(r);
        let (rz_aff, _) = rz.to_affine();
        // [r·b]P = ±[r]Z only if b ≡ ±z_T: the complete addition covers it.
        let out = p_table().mul(&rb).add_mixed_complete(&rz_aff);
        let zero_rz = rz.is_identity();
        rb.zeroize();
        // If [r]Z = ∞ (r = 0) the affine form is garbage: fall back to [r·b]P = ∞ as well.
        JacobianPoint::conditional_select(&out, &JacobianPoint::IDENTITY, zero_rz)
    }
}

/// A receiver secret key K_(a,T) = [(a + z_T)^−1]P (RFC 6508 §6.1.1). Its Miller lines are
/// computed on first use and cached (secret; zeroized on drop): as computed on the first
/// decapsulation, normalised (one batch inversion, see [`MillerLines::normalize`]) on the
/// second, so a key used once (a KMS opening one message) does not pay for the normalisation.
pub struct Rsk {
    point: AffinePoint,
    lines: Mutex<Option<Arc<MillerLines>>>,
}

impl Drop for Rsk {
    fn drop(&mut self) {
        self.point.zeroize();
    }
}

impl Clone for Rsk {
    fn clone(&self) -> Self {
        Self::from_point(self.point)
    }
}

impl core::fmt::Debug for Rsk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Rsk(<redacted>)")
    }
}

impl Rsk {
    fn from_point(point: AffinePoint) -> Self {
        Self {
            point,
            lines: Mutex::new(None),
        }
    }

    /// Decodes 0x04 ‖ x ‖ y with an on-curve check. Membership in the order-q subgroup is
    /// established by [`validate_rsk`] (and required by [`decapsulate`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let point = AffinePoint::from_bytes(bytes, "SAKKE RSK")?;
        Ok(Self::from_point(point))
    }

    /// 257 octets 0x04 ‖ x ‖ y.
    pub fn to_bytes(&self) -> SecretVec {
        SecretVec::new(self.point.to_bytes().to_vec())
    }

    /// The lines for this use: computed (not normalised) on the first call, normalised on the
    /// second (the batch inversion costs about five evaluations' worth of the product a
    /// normalised line saves, and a key that is used twice is likely used again). The lock is
    /// held while they are computed, so concurrent first uses compute them once.
    fn lines(&self) -> Arc<MillerLines> {
        let mut slot = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let lines = match slot.take() {
            None => Arc::new(MillerLines::new(&self.point)),
            Some(l) if l.is_normalized() => l,
            Some(l) => {
                let mut n = (*l).clone();
                n.normalize();
                Arc::new(n)
            }
        };
        *slot = Some(Arc::clone(&lines));
        lines
    }
}

/// RFC 6508 §6.1.1: K_(a,T) = [(a + z_T)^−1]P. Fails with `MasterKeyCollision` if
/// a + z_T ≡ 0 mod q (the KMS must then replace z_T).
pub fn issue_rsk(master: &SakkeMasterSecret, id: &[u8]) -> Result<Rsk, CryptoError> {
    let a = Fq::from_be_bytes_reduced(id);
    let mut s = a + master.z;
    let (mut inv, ok) = s.invert();
    s.zeroize();
    // Only the (public, fatal) collision outcome leaves constant time.
    if !bool::from(public(ok)) {
        return Err(CryptoError::MasterKeyCollision);
    }
    let (k, _) = p_table().mul(&inv).to_affine();
    inv.zeroize();
    Ok(Rsk::from_point(k))
}

/// RFC 6508 §6.1.2: accept K_(a,T) iff ⟨[a]P + Z_T, K_(a,T)⟩ = g.
///
/// By bilinearity in the first argument (P and Z_T have order q) this is
/// ⟨P, K⟩^a · ⟨Z_T, K⟩, and the Miller lines of P (global) and of Z_T (cached in the public
/// key) are computed once. A validation evaluates P's lines at K, then runs Z_T's Miller loop
/// at K with the exponentiation by the public a folded into it (one shared squaring per step,
/// [`MillerLines::eval_unreduced_times_pow_vartime`]), and one final exponentiation: the exact
/// RFC value, compared with g in PF_p without an inversion (x1 = g·x0, x0 ≠ 0). Constant-time
/// in K; the accept/reject outcome is public.
/// (Like the RFC check, this does not look at a component of K of order dividing 4; such a
/// key fails [`decapsulate`]'s order check instead.)
pub fn validate_rsk(z: &SakkePublicKey, id: &[u8], rsk: &Rsk) -> Result<(), CryptoError> {
    let a = Fq::from_be_bytes_reduced(id);
    let vp = p_lines().eval_unreduced(&rsk.point);
    let v = z
        .lines()
        .eval_unreduced_times_pow_vartime(&rsk.point, &vp, &a.to_uint());
    // v⁴ (the final exponentiation) is g in PF_p iff its parts satisfy x1 = g·x0 with x0 ≠ 0.
    let w = v.square().square();
    let ok = w.c1.ct_eq(&(g_value() * w.c0)) & !w.c0.is_zero();
    if bool::from(public(ok)) {
        Ok(())
    } else {
        Err(CryptoError::InvalidRsk)
    }
}

/// RFC 6508 §6.2.1 with a given SSV: r = HashToIntegerRange(SSV ‖ b, q),
/// R_(b,S) = [r]([b]P + Z_S), H = SSV ⊕ HashToIntegerRange(g^r, 2^n); returns R_(b,S) ‖ H,
/// exactly as the RFC encodes it (273 octets). The SSV is fixed, so the value cannot be
/// redrawn: see [`encoding_is_unambiguous`] for callers that choose the key themselves.
pub fn encapsulate(
    z: &SakkePublicKey,
    id: &[u8],
    ssv: &SecretBytes<SSV_BYTES>,
) -> Result<Vec<u8>, CryptoError> {
    encapsulate_inner(z, id, ssv).map(|(data, _)| data)
}

/// [`encapsulate`], also telling whether g^r has a leading zero octet (constant-time).
fn encapsulate_inner(
    z: &SakkePublicKey,
    id: &[u8],
    ssv: &SecretBytes<SSV_BYTES>,
) -> Result<(Vec<u8>, Choice), CryptoError> {
    let b = Fq::from_be_bytes_reduced(id);
    let mut r = derive_r(ssv, id);
    let (rp, finite) = z.mul_receiver_point(&b, &r).to_affine();
    let mut gr = g_table().pow(&r).to_be_bytes();
    r.zeroize();
    let gr_zero = lengths::leading_zero(&gr);
    let mut mask = htir_2n(&gr);
    gr.zeroize();
    // R = ∞ only if r ≡ 0 or b ≡ −z_S (no RSK can exist for b): refuse to encode it.
    if !bool::from(finite) {
        mask.zeroize();
        return Err(CryptoError::ScalarOutOfRange {
            what: "SAKKE r or identifier",
        });
    }
    let mut out = Vec::with_capacity(ENCAPSULATED_BYTES);
    out.extend_from_slice(&rp.to_bytes());
    for (m, s) in mask.iter().zip(ssv.expose()) {
        out.push(m ^ s);
    }
    mask.zeroize();
    Ok((out, gr_zero))
}

/// Whether encapsulating `ssv` to `id` gives a value that reads the same under the RFC's fixed
/// lengths and under a shortest-length writer's (neither g^r nor H starts with a zero octet:
/// true for about 127 SSVs in 128). A caller that picks the key to send (a PCK, a CSK) draws
/// again while this is false; [`encapsulate_random`] does so itself. Costs a hash and g^r
/// (no point multiplication).
pub fn encoding_is_unambiguous(id: &[u8], ssv: &SecretBytes<SSV_BYTES>) -> bool {
    let mut r = derive_r(ssv, id);
    let mut gr = g_table().pow(&r).to_be_bytes();
    r.zeroize();
    let mut mask = htir_2n(&gr);
    let h0 = mask[0] ^ ssv.expose()[0];
    let ambiguous = lengths::leading_zero(&gr) | h0.ct_eq(&0);
    gr.zeroize();
    mask.zeroize();
    !bool::from(ambiguous)
}

/// Draws before [`encapsulate_drawing`] gives up: each draw is ambiguous with probability
/// below 1/76, so running out means the source of randomness is broken.
const MAX_DRAWS: usize = 32;

/// RFC 6508 §6.2.1 step 1 with a fresh random SSV: returns (SSV, R_(b,S) ‖ H). A draw whose
/// g^r or H starts with a zero octet is discarded and the SSV (hence r) drawn again, so that
/// readers which hash g^r or write H at the shortest length read this value as the RFC does.
pub fn encapsulate_random(
    z: &SakkePublicKey,
    id: &[u8],
    rng: &dyn SecureRandom,
) -> Result<(SecretBytes<SSV_BYTES>, Vec<u8>), CryptoError> {
    encapsulate_drawing(z, id, &mut |buf| {
        rng.fill(buf).map_err(|_| CryptoError::Rng)
    })
}

/// [`encapsulate_random`] with the SSVs taken from `draw` (tests and callers with their own
/// source of keys). Only the accepted draw is returned; the discarded ones were never sent.
pub fn encapsulate_drawing(
    z: &SakkePublicKey,
    id: &[u8],
    draw: &mut dyn FnMut(&mut [u8; SSV_BYTES]) -> Result<(), CryptoError>,
) -> Result<(SecretBytes<SSV_BYTES>, Vec<u8>), CryptoError> {
    for _ in 0..MAX_DRAWS {
        let mut raw = [0u8; SSV_BYTES];
        let drawn = draw(&mut raw);
        let ssv = SecretBytes::new(raw);
        raw.zeroize();
        drawn?;
        let (data, gr_zero) = encapsulate_inner(z, id, &ssv)?;
        // Branching on g^r of a draw that is then discarded reveals nothing about the SSV sent.
        if !bool::from(gr_zero | lengths::leading_zero(&data[POINT_BYTES..])) {
            return Ok((ssv, data));
        }
    }
    Err(CryptoError::Rng)
}

/// r = HashToIntegerRange(SSV ‖ b, q).
fn derive_r(ssv: &SecretBytes<SSV_BYTES>, id: &[u8]) -> Fq {
    let mut buf = Vec::with_capacity(SSV_BYTES + id.len());
    buf.extend_from_slice(ssv.expose());
    buf.extend_from_slice(id);
    let r = htir_q(&buf);
    buf.zeroize();
    r
}

/// RFC 6508 §6.2.2: w = ⟨R_(b,S), K_(b,S)⟩, SSV = H ⊕ HashToIntegerRange(w, 2^n),
/// r = HashToIntegerRange(SSV ‖ b, q), and the SSV is released only if
/// [r]([b]P + Z_S) = R_(b,S) (and K has order q). Any failure after parsing is the single
/// `DecapsulationFailed`.
///
/// Liberal in lengths (see [`lengths`]): `data` is R_(b,S) (257 octets) followed by H of at
/// most 16 octets, left-padded (273 octets in all is the RFC's form); and when the check
/// fails, it is run once more with w hashed at its shortest length. The second check runs for
/// every message that fails the first, whatever w is, so its timing says nothing about w;
/// only a sender who knew r can pass either.
pub fn decapsulate(
    z: &SakkePublicKey,
    id: &[u8],
    rsk: &Rsk,
    data: &[u8],
) -> Result<SecretBytes<SSV_BYTES>, CryptoError> {
    if !(POINT_BYTES..=ENCAPSULATED_BYTES).contains(&data.len()) {
        return Err(CryptoError::Malformed {
            what: "SAKKE encapsulated data",
            reason: "must be R_(b,S) (257 octets) then H (at most 16 octets): 273 in RFC 6508",
        });
    }
    let r_point = AffinePoint::from_bytes(&data[..POINT_BYTES], "SAKKE R_(b,S)")?;
    let mut h = lengths::pad_hint(&data[POINT_BYTES..]);
    let lines = rsk.lines();
    let order_ok = lines.first_argument_has_order_q();
    let b = Fq::from_be_bytes_reduced(id);
    let mut w = lines.eval(&r_point).to_be_bytes();
    let mut mask = htir_2n(&w);
    let (mut ssv, ok) = check_hint(z, &b, id, &r_point, &h, &mask);
    // Public outcome: whether the message opens is the result the caller gets (and the second
    // check runs for every message that fails the first, whatever w is).
    let mut opened = public(ok & order_ok);
    if !bool::from(opened) {
        mask = lengths::shortest_w_mask(&w);
        let (again, ok) = check_hint(z, &b, id, &r_point, &h, &mask);
        ssv = again;
        opened = public(ok & order_ok);
    }
    w.zeroize();
    mask.zeroize();
    h.zeroize();
    if bool::from(opened) {
        Ok(ssv)
    } else {
        Err(CryptoError::DecapsulationFailed)
    }
}

/// SSV = H ⊕ mask, and whether [r]([b]P + Z_S) = R_(b,S) for r = HashToIntegerRange(SSV ‖ b, q).
fn check_hint(
    z: &SakkePublicKey,
    b: &Fq,
    id: &[u8],
    r_point: &AffinePoint,
    h: &[u8; SSV_BYTES],
    mask: &[u8; SSV_BYTES],
) -> (SecretBytes<SSV_BYTES>, Choice) {
    let mut raw = [0u8; SSV_BYTES];
    for ((o, m), x) in raw.iter_mut().zip(mask).zip(h) {
        *o = m ^ x;
    }
    let ssv = SecretBytes::new(raw);
    raw.zeroize();
    let mut r = derive_r(&ssv, id);
    let test = z.mul_receiver_point(b, &r);
    r.zeroize();
    let ok = test.ct_eq_affine(r_point);
    (ssv, ok)
}

#[cfg(test)]
mod tests {
    use super::super::pairing::final_exponentiation;
    use super::*;

    #[test]
    fn g_is_the_pairing_of_p_with_itself() {
        let p = AffinePoint::generator();
        assert_eq!(pairing(&p, &p), g_value());
    }

    fn test_keys() -> (SakkeMasterSecret, SakkePublicKey) {
        let master = SakkeMasterSecret::from_bytes(&[0x3Cu8; 64]).unwrap();
        let z = master.public_key();
        (master, z)
    }

    #[test]
    fn receiver_table_equals_split_multiplication() {
        let (_, z) = test_keys();
        let b = Fq::from_be_bytes_reduced(b"bob@example.org");
        assert!(!z.recipients.has_table(&b));
        let r0 = Fq::from_u64(5);
        // First use: no table, the split path.
        let first = z.mul_receiver_point(&b, &r0).to_affine_vartime().unwrap();
        assert!(!z.recipients.has_table(&b));
        let second = z.mul_receiver_point(&b, &r0).to_affine_vartime().unwrap();
        assert!(z.recipients.has_table(&b));
        assert_eq!(first, second);
        for r in [
            Fq::ONE,
            Fq::ZERO - Fq::ONE,
            Fq::from_be_bytes_reduced(&[0x96u8; 127]),
            Fq::from_be_bytes_reduced(b"any secret r"),
        ] {
            let t = z.mul_receiver_point(&b, &r).to_affine_vartime();
            let s = z.mul_receiver_point_split(&b, &r).to_affine_vartime();
            assert_eq!(t, s);
        }
        assert!(z.mul_receiver_point(&b, &Fq::ZERO).is_identity_vartime());
        // A clone shares the cache.
        assert!(z.clone().recipients.has_table(&b));
    }

    #[test]
    fn validation_equals_pairing_power_product() {
        let (master, z) = test_keys();
        for id in [&b"alice@example.org"[..], &[0xFFu8; 128][..], &[0u8][..]] {
            let rsk = issue_rsk(&master, id).unwrap();
            let a = Fq::from_be_bytes_reduced(id);
            // The computation before the shared loop: ⟨P, K⟩^a · ⟨Z, K⟩.
            let vp = p_lines().eval_unreduced(&rsk.point);
            let vz = z.lines().eval_unreduced(&rsk.point);
            let old = final_exponentiation(&vp.pow_vartime(&a.to_uint()).mul(&vz));
            assert_eq!(old, g_value());
            validate_rsk(&z, id, &rsk).unwrap();
            assert_eq!(
                validate_rsk(&z, b"someone else", &rsk),
                Err(CryptoError::InvalidRsk)
            );
        }
    }

    #[test]
    fn rsk_lines_normalised_at_second_use_open_alike() {
        let (master, z) = test_keys();
        let id = b"carol@example.org";
        let rsk = issue_rsk(&master, id).unwrap();
        let ssv = SecretBytes::new([0x42; SSV_BYTES]);
        let data = encapsulate(&z, id, &ssv).unwrap();
        for normalised in [false, true, true] {
            let got = decapsulate(&z, id, &rsk, &data).unwrap();
            assert_eq!(got.expose(), ssv.expose());
            let slot = rsk.lines.lock().unwrap();
            assert_eq!(slot.as_ref().unwrap().is_normalized(), normalised);
        }
        let mut bad = data.clone();
        bad[POINT_BYTES + 3] ^= 1;
        assert!(decapsulate(&z, id, &rsk, &bad).is_err());
    }

    #[test]
    fn g_power_table_matches_square_and_multiply() {
        let g = g_value();
        let base = super::super::fp2::Fp2::new(Fp::ONE, g);
        for k in [1u64, 2, 129, 0xDEAD_BEEF] {
            let want = base.pow_vartime(&U1024::from_u64(k)).to_pfp();
            assert_eq!(g_table().pow(&Fq::from_u64(k)), want, "k = {k}");
        }
        assert_eq!(g_table().pow(&Fq::ZERO), Fp::ZERO);
    }
}
