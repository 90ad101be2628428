//! ECCSI, RFC 6507, over NIST P-256 with SHA-256 (N = 32), as used by MIKEY-SAKKE
//! (RFC 6509) and TS 33.180 Annex E for the SIGN payload.
//!
//! - KMS master pair (§4.2, §5.1.1): KSAK secret in [1, q−1], KPAK = [KSAK]G.
//! - Issue (§5.1.1): v in [1, q−1], PVT = [v]G, HS = hash(G ‖ KPAK ‖ ID ‖ PVT),
//!   SSK = KSAK + HS·v mod q; retry if SSK = 0 or HS ≡ 0 (mod q).
//! - Validation (§5.1.2): PVT on the curve, HS recomputed, KPAK = [SSK]G − [HS]PVT; for a
//!   KPAK met before, the equivalent PVT = [SSK·HS⁻¹]G − [HS⁻¹]KPAK with KPAK's fixed-base
//!   table ([`kpak_tables`]).
//! - Sign (§5.2.1): J = [j]G, r = x(J), HE = hash(HS ‖ r ‖ M), s' = (HE + r·SSK)⁻¹·j;
//!   Signature = r ‖ s ‖ PVT.
//! - Verify (§5.2.2): Y = [HS]PVT + KPAK, J = [s]([HE]G + [r]Y), accept iff x(J) = r, J ≠ O.
//!
//! **Deterministic issuance.** A cluster must issue the same (SSK, PVT) for an identifier on
//! every node without storing v, and without a second secret next to KSAK. v is therefore
//! derived from KSAK alone:
//!
//! ```text
//! Kv    = TS 33.220 KDF(KSAK, FC 0xE0, [ "sealkm ECCSI v derivation v1" ])   (HMAC-SHA-256)
//! block = HMAC-SHA-256(Kv, ID ‖ counter (4 octets, big-endian) ‖ b)        for b = 0x01, 0x02
//! v     = (block₁ ‖ block₂) mod q                                          (512 → 256 bits)
//! ```
//!
//! FC 0xE0 is outside the TS 33.220 B.2.2 allocations used by 3GPP and the label makes the
//! purpose explicit. The counter starts at 0 and increments each time RFC 6507 asks for a new v
//! (v = 0, HS ≡ 0 or SSK = 0), so the retry is deterministic too. Reducing 512 bits leaves a
//! bias below 2^−256. ID is variable-length but is followed by fixed-length fields only, so the
//! input is unambiguous.
//!
//! Point arithmetic is [`super::ec256`] (a Montgomery field with a `mulx`/`adx` backend).
//! Secrets (KSAK, v, SSK, j) are only ever multiplied by G through its constant-time fixed-base
//! table ([`ec256::mul_g`]) and handled with the `p256` crate's constant-time scalar arithmetic.
//! The public halves — [HS]PVT in validation, the whole of verification — are one variable-time
//! multi-scalar evaluation each ([`ec256::lincomb_vartime`]); validation under a KPAK met
//! before uses the KPAK's fixed-base table instead ([`ec256::mul_table_vartime`]). The few branches on
//! secret-derived values are the RFC's retry conditions, which occur with probability ~2^−256
//! and whose only observable is "a retry happened".

use p256::elliptic_curve::{ff::PrimeField, Field};
use p256::Scalar;
use ring::rand::SecureRandom;
use ring::{digest, hmac};
use zeroize::Zeroize;

use super::ct::{declassify, public};
use super::ec256::{self, Affine, Point, POINT_LEN};
use super::error::CryptoError;
use super::kdf::kdf;
use super::p256ext::{reduce_bytes, reduce_wide, scalar_from_bytes};
use super::secret::SecretBytes;

mod kpak_tables;
#[cfg(test)]
mod tests;

/// Signature length: r (32) ‖ s (32) ‖ PVT (65).
pub const SIGNATURE_LEN: usize = 32 + 32 + POINT_LEN;

/// FC and label of the v-derivation key (see the module docs).
const FC_V_KEY: u8 = 0xE0;
const V_KEY_LABEL: &[u8] = b"sealkm ECCSI v derivation v1";

/// How many fresh scalars are tried before giving up. Each retry has probability ~2^−256, so
/// reaching this means a broken RNG, not bad luck.
const MAX_TRIES: u32 = 64;

fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// G's SEC1 encoding, computed once.
fn g_sec1() -> &'static [u8; POINT_LEN] {
    static G: std::sync::OnceLock<[u8; POINT_LEN]> = std::sync::OnceLock::new();
    G.get_or_init(|| Affine::GENERATOR.to_sec1())
}

/// HS = hash(G ‖ KPAK ‖ ID ‖ PVT) (RFC 6507 §5.1.1 step 3), as octets.
fn hs_bytes(kpak: &[u8; POINT_LEN], id: &[u8], pvt: &[u8; POINT_LEN]) -> [u8; 32] {
    sha256_parts(&[g_sec1(), kpak, id, pvt])
}

/// The affine form of a point computed from a secret whose result is public (KPAK, PVT), or
/// `None` for the identity; the value and the outcome are declassified.
fn public_affine(p: &Point) -> Option<Affine> {
    let a = ec256::to_affine(p);
    let some = public(a.is_some());
    let v = a.unwrap_or(Affine::default());
    declassify(&v);
    bool::from(some).then_some(v)
}

/// HE = hash(HS ‖ r ‖ M) (RFC 6507 §5.2.1 step 3).
fn he_scalar(hs: &[u8; 32], r: &[u8; 32], msg: &[u8]) -> Scalar {
    reduce_bytes(&sha256_parts(&[hs, r, msg]))
}

/// The KMS Secret Authentication Key (KSAK) with its public KPAK.
pub struct EccsiMasterSecret {
    ksak: Scalar,
    kpak: Kpak,
    /// Kv's HMAC key schedule (the inner and outer SHA-256 states), kept so that an issue does
    /// not recompute it (two compressions). ring does not zeroize it on drop — nor did it the
    /// schedule built per call before; Kv's own octets are zeroized as soon as it is built.
    v_key: hmac::Key,
}

impl EccsiMasterSecret {
    /// A fresh KSAK uniformly in [1, q−1] (rejection sampling on 32 random octets).
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, CryptoError> {
        let ksak = random_nonzero_scalar(rng)?;
        Self::from_scalar(ksak)
    }

    /// From 32 big-endian octets; rejects 0 and values ≥ q.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let ksak = scalar_from_bytes(bytes, "KSAK")?;
        // Public outcome: the KSAK is refused.
        if bool::from(public(ksak.is_zero())) {
            return Err(CryptoError::ScalarOutOfRange { what: "KSAK" });
        }
        Self::from_scalar(ksak)
    }

    fn from_scalar(ksak: Scalar) -> Result<Self, CryptoError> {
        // The KPAK is the public key; KSAK ≠ 0 (checked by both callers), so it is not O.
        let kpak = Kpak::new(
            public_affine(&ec256::mul_g(&ksak))
                .ok_or(CryptoError::ScalarOutOfRange { what: "KSAK" })?,
        );
        let mut ksak_bytes: [u8; 32] = ksak.to_repr().into();
        let mut kv = kdf(&ksak_bytes, FC_V_KEY, &[V_KEY_LABEL]);
        let v_key = hmac::Key::new(hmac::HMAC_SHA256, &kv);
        kv.zeroize();
        ksak_bytes.zeroize();
        Ok(Self { ksak, kpak, v_key })
    }

    /// The KSAK as 32 big-endian octets (for sealing at rest).
    pub fn to_bytes(&self) -> SecretBytes<32> {
        SecretBytes::new(self.ksak.to_repr().into())
    }

    /// The KMS Public Authentication Key, KPAK = [KSAK]G.
    pub fn kpak(&self) -> Kpak {
        self.kpak.clone()
    }

    /// v for `id` and retry `counter` (module docs).
    fn derive_v(&self, id: &[u8], counter: u32) -> Scalar {
        let ctr = counter.to_be_bytes();
        let mut wide = [0u8; 64];
        // ID ‖ counter is hashed once; the two blocks continue from copies of that state.
        let mut prefix = hmac::Context::with_key(&self.v_key);
        prefix.update(id);
        prefix.update(&ctr);
        for (b, half) in [1u8, 2u8].iter().zip(wide.chunks_exact_mut(32)) {
            let mut ctx = prefix.clone();
            ctx.update(&[*b]);
            half.copy_from_slice(ctx.sign().as_ref());
        }
        let v = reduce_wide(&wide);
        wide.zeroize();
        v
    }
}

impl Drop for EccsiMasterSecret {
    fn drop(&mut self) {
        self.ksak.zeroize();
    }
}

impl core::fmt::Debug for EccsiMasterSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EccsiMasterSecret")
            .field("ksak", &"<redacted>")
            .field("kpak", &self.kpak)
            .finish()
    }
}

/// KMS Public Authentication Key: a point on P-256, never the identity, with its SEC1
/// encoding (hashed into every HS).
#[derive(Clone, PartialEq, Eq)]
pub struct Kpak(Affine, [u8; POINT_LEN]);

impl Kpak {
    fn new(point: Affine) -> Self {
        Self(point, point.to_sec1())
    }

    /// `0x04 ‖ x ‖ y`, on the curve (the identity has no such encoding).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        Affine::from_sec1(bytes, "KPAK").map(Self::new)
    }
    pub fn to_bytes(&self) -> [u8; POINT_LEN] {
        self.1
    }
}

impl core::fmt::Debug for Kpak {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Kpak({})", hex::encode_upper(self.to_bytes()))
    }
}

/// Secret Signing Key: a scalar in [1, q−1]. Zeroized on drop, never printed.
pub struct Ssk(Scalar);

impl Ssk {
    /// 32 big-endian octets; rejects 0 and values ≥ q.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let s = scalar_from_bytes(bytes, "SSK")?;
        if bool::from(s.is_zero()) {
            return Err(CryptoError::ScalarOutOfRange { what: "SSK" });
        }
        Ok(Self(s))
    }
    pub fn to_bytes(&self) -> SecretBytes<32> {
        SecretBytes::new(self.0.to_repr().into())
    }
}

impl Drop for Ssk {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl core::fmt::Debug for Ssk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ssk(<redacted>)")
    }
}

/// Public Validation Token: a point on P-256.
#[derive(Clone, PartialEq, Eq)]
pub struct Pvt(Affine);

impl Pvt {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        Affine::from_sec1(bytes, "PVT").map(Self)
    }
    pub fn to_bytes(&self) -> [u8; POINT_LEN] {
        self.0.to_sec1()
    }
}

impl core::fmt::Debug for Pvt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Pvt({})", hex::encode_upper(self.to_bytes()))
    }
}

/// Uniform scalar in [1, q−1] by rejection sampling (no bias, no secret-dependent branch other
/// than discarding a rejected draw).
fn random_nonzero_scalar(rng: &dyn SecureRandom) -> Result<Scalar, CryptoError> {
    for _ in 0..MAX_TRIES {
        let mut buf = [0u8; 32];
        rng.fill(&mut buf).map_err(|_| CryptoError::Rng)?;
        let candidate: Option<Scalar> = Scalar::from_repr(buf.into()).into();
        buf.zeroize();
        if let Some(k) = candidate {
            if !bool::from(k.is_zero()) {
                return Ok(k);
            }
        }
    }
    Err(CryptoError::Rng)
}

/// One issue attempt with a given v: `None` when RFC 6507 asks for a new v.
fn issue_attempt(master: &EccsiMasterSecret, id: &[u8], v: &Scalar) -> Option<(Ssk, Pvt)> {
    // Public outcome: v is discarded and another derived (probability 2^−256).
    if bool::from(public(v.is_zero())) {
        return None;
    }
    // The PVT is public (sent with the SSK, in every signature); so is HS, hashed from it.
    // v ≠ 0, so [v]G ≠ O.
    let pvt = public_affine(&ec256::mul_g(v))?;
    let pvt_bytes = pvt.to_sec1();
    let hs = reduce_bytes(&hs_bytes(&master.kpak.1, id, &pvt_bytes));
    if bool::from(hs.is_zero()) {
        return None;
    }
    let ssk = master.ksak + hs * v;
    // Public outcome: v is discarded and another derived (probability 2^−256).
    if bool::from(public(ssk.is_zero())) {
        return None;
    }
    Some((Ssk(ssk), Pvt(pvt)))
}

/// Issues the (SSK, PVT) pair for `id` (RFC 6507 §5.1.1) with v derived deterministically from
/// the KSAK (module docs): every node holding the same KSAK issues the same pair.
pub fn issue(master: &EccsiMasterSecret, id: &[u8]) -> Result<(Ssk, Pvt), CryptoError> {
    for counter in 0..MAX_TRIES {
        let mut v = master.derive_v(id, counter);
        let out = issue_attempt(master, id, &v);
        v.zeroize();
        if let Some(pair) = out {
            return Ok(pair);
        }
    }
    // Unreachable in practice (2^−256 per try); report rather than loop forever.
    Err(CryptoError::ScalarOutOfRange { what: "derived v" })
}

/// Issues with a caller-chosen v (32 big-endian octets). For reproducing RFC 6507 Appendix A
/// only: production issuance must use [`issue`].
pub fn issue_with_v(
    master: &EccsiMasterSecret,
    id: &[u8],
    v: &[u8],
) -> Result<(Ssk, Pvt), CryptoError> {
    let mut v = scalar_from_bytes(v, "v")?;
    let out = issue_attempt(master, id, &v);
    v.zeroize();
    out.ok_or(CryptoError::ScalarOutOfRange { what: "v" })
}

/// KPAK = [SSK]G − [HS]PVT, as RFC 6507 §5.1.2 writes it: [SSK]G involves the secret
/// (constant-time table); KPAK + [HS]PVT is public (variable time).
fn pair_holds(kpak: &Point, ssk: &Ssk, hs: &Scalar, pvt: &Pvt) -> bool {
    let lhs = ec256::mul_g(&ssk.0);
    let rhs = ec256::add(
        &ec256::lincomb_vartime(None, &[(pvt.0.to_point(), *hs)]),
        kpak,
    );
    bool::from(public(ec256::eq(&lhs, &rhs)))
}

/// The same check as [`pair_holds`] in the form PVT = [SSK·HS⁻¹]G − [HS⁻¹]KPAK, with KPAK's
/// fixed-base table. SSK·HS⁻¹ is secret (constant-time scalar product and table); HS⁻¹ is
/// public.
fn pair_holds_with_table(
    table: &ec256::BaseTable,
    kpak: &Point,
    ssk: &Ssk,
    hs: &Scalar,
    pvt: &Pvt,
) -> bool {
    let Some(hs_inv) = Option::<Scalar>::from(hs.invert_vartime()) else {
        return pair_holds(kpak, ssk, hs, pvt);
    };
    let mut a = ssk.0 * hs_inv;
    let lhs = ec256::mul_g(&a);
    a.zeroize();
    let sum = ec256::add(&lhs, &ec256::mul_table_vartime(table, &(-hs_inv)));
    bool::from(public(ec256::eq(&sum, &pvt.0.to_point())))
}

/// A validated (SSK, PVT) pair for one identifier, with HS cached for signing.
pub struct EccsiSigner {
    ssk: Ssk,
    pvt_bytes: [u8; POINT_LEN],
    hs: [u8; 32],
}

impl EccsiSigner {
    /// Validates the pair per RFC 6507 §5.1.2: PVT on the curve (by construction of [`Pvt`]),
    /// HS recomputed, and KPAK = [SSK]G − [HS]PVT. Fails with `InvalidEccsiKeyPair`.
    ///
    /// A KPAK validated before has a fixed-base table ([`kpak_tables`]); then the check is the
    /// equivalent PVT = [SSK·HS⁻¹]G − [HS⁻¹]KPAK (multiply the RFC's equation by HS⁻¹; HS ≢ 0
    /// mod q, else the RFC's form is used): two table look-ups with no doublings instead of
    /// the 256 doublings of [HS]PVT for a PVT never seen before.
    pub fn new(kpak: &Kpak, id: &[u8], ssk: &Ssk, pvt: &Pvt) -> Result<Self, CryptoError> {
        let pvt_bytes = pvt.to_bytes();
        let kpak_bytes = kpak.to_bytes();
        let hs = hs_bytes(&kpak_bytes, id, &pvt_bytes);
        let hs_s = reduce_bytes(&hs);
        let kpak_point = kpak.0.to_point();
        let holds = match kpak_tables::TABLES.table(&kpak_point, &kpak_bytes) {
            Some(table) => pair_holds_with_table(&table, &kpak_point, ssk, &hs_s, pvt),
            None => pair_holds(&kpak_point, ssk, &hs_s, pvt),
        };
        // Public outcome: the pair is refused or accepted.
        if !holds {
            return Err(CryptoError::InvalidEccsiKeyPair);
        }
        Ok(Self {
            ssk: Ssk(ssk.0),
            pvt_bytes,
            hs,
        })
    }

    /// Signs `msg` (RFC 6507 §5.2.1) with an ephemeral j drawn from `rng`.
    pub fn sign(
        &self,
        msg: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<[u8; SIGNATURE_LEN], CryptoError> {
        for _ in 0..MAX_TRIES {
            let mut j = random_nonzero_scalar(rng)?;
            let out = self.sign_attempt(msg, &j);
            j.zeroize();
            if let Some(sig) = out {
                return Ok(sig);
            }
        }
        Err(CryptoError::Rng)
    }

    /// Signs with a caller-chosen j (32 big-endian octets). For reproducing RFC 6507
    /// Appendix A only.
    pub fn sign_with_j(&self, msg: &[u8], j: &[u8]) -> Result<[u8; SIGNATURE_LEN], CryptoError> {
        let mut j = scalar_from_bytes(j, "j")?;
        let out = self.sign_attempt(msg, &j);
        j.zeroize();
        out.ok_or(CryptoError::ScalarOutOfRange { what: "j" })
    }

    /// One signing attempt; `None` when the RFC asks for a new j.
    fn sign_attempt(&self, msg: &[u8], j: &Scalar) -> Option<[u8; SIGNATURE_LEN]> {
        // Public outcome: j is discarded and another drawn.
        if bool::from(public(j.is_zero())) {
            return None;
        }
        let jp = ec256::to_affine(&ec256::mul_g(j));
        // Public outcome: J = O cannot happen for j ≠ 0; handled like a zero denominator.
        if !bool::from(public(jp.is_some())) {
            return None;
        }
        let r_bytes = jp.unwrap_or(Affine::default()).x_bytes();
        // r = x(J) is the first half of the signature.
        declassify(&r_bytes);
        // r is x(J) as an integer; verifiers (ours included) require r in [1, q−1], so a J
        // whose x is 0 or ≥ q (probability ~2^−128) is discarded like a zero denominator.
        let r: Scalar = Option::from(Scalar::from_repr(r_bytes.into()))?;
        if bool::from(r.is_zero()) {
            return None;
        }
        let he = he_scalar(&self.hs, &r_bytes, msg);
        let denom = he + r * self.ssk.0;
        let inv = denom.invert();
        // Public outcome: j is discarded and another drawn (a zero denominator).
        if !bool::from(public(inv.is_some())) {
            return None;
        }
        let inv = inv.unwrap_or(Scalar::ZERO);
        // s' = (HE + r·SSK)⁻¹·j. For P-256, q < 2^256 so s' always fits in N = 32 octets and
        // the RFC's "s = q − s'" normalisation never applies: s = s'.
        let s = inv * j;
        let mut sig = [0u8; SIGNATURE_LEN];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..64].copy_from_slice(&s.to_repr());
        sig[64..].copy_from_slice(&self.pvt_bytes);
        Some(sig)
    }

    /// HS for this signer (public; RFC 6507 caches it alongside the key pair).
    pub fn hs(&self) -> [u8; 32] {
        self.hs
    }

    /// The PVT this signer puts in every signature.
    pub fn pvt_bytes(&self) -> [u8; POINT_LEN] {
        self.pvt_bytes
    }
}

impl core::fmt::Debug for EccsiSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EccsiSigner")
            .field("ssk", &"<redacted>")
            .field("pvt", &hex::encode_upper(self.pvt_bytes))
            .finish()
    }
}

/// Splits a signature into (r, s) scalars in [1, q−1], r's octets, and the PVT point.
fn parse_signature(signature: &[u8]) -> Result<(Scalar, Scalar, [u8; 32], Affine), CryptoError> {
    if signature.len() != SIGNATURE_LEN {
        return Err(CryptoError::BadSignature);
    }
    let r_bytes: [u8; 32] = signature[..32]
        .try_into()
        .map_err(|_| CryptoError::BadSignature)?;
    let nonzero = |b: &[u8]| -> Result<Scalar, CryptoError> {
        let k = scalar_from_bytes(b, "signature").map_err(|_| CryptoError::BadSignature)?;
        if bool::from(k.is_zero()) {
            return Err(CryptoError::BadSignature);
        }
        Ok(k)
    };
    let r = nonzero(&signature[..32])?;
    let s = nonzero(&signature[32..64])?;
    let pvt = Affine::from_sec1(&signature[64..], "PVT").map_err(|_| CryptoError::BadSignature)?;
    Ok((r, s, r_bytes, pvt))
}

/// Final check of RFC 6507 §5.2.2 step 6: J ≠ O and x(J) = r (compared as X = r·Z, with no
/// inversion; r < q < p is a field element).
fn check_j_vartime(j: Point, r_bytes: &[u8; 32]) -> Result<(), CryptoError> {
    if !ec256::x_matches_vartime(&j, r_bytes) {
        return Err(CryptoError::BadSignature);
    }
    Ok(())
}

/// Verifies `signature` over `msg` by `id` under `kpak` (RFC 6507 §5.2.2), in one
/// multi-scalar evaluation J = [s·HE]G + [s·r]KPAK + [s·r·HS]PVT. All inputs are public.
pub fn verify(kpak: &Kpak, id: &[u8], msg: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    let (r, s, r_bytes, pvt) = parse_signature(signature)?;
    let pvt_bytes = pvt.to_sec1();
    let hs = hs_bytes(&kpak.to_bytes(), id, &pvt_bytes);
    let hs_s = reduce_bytes(&hs);
    let he = he_scalar(&hs, &r_bytes, msg);
    let sr = s * r;
    let j = ec256::lincomb_vartime(
        Some(&(s * he)),
        &[(kpak.0.to_point(), sr), (pvt.to_point(), sr * hs_s)],
    );
    check_j_vartime(j, &r_bytes)
}

/// Verifier for one signer (KPAK, ID, PVT), caching HS and Y = [HS]PVT + KPAK so each
/// verification is J = [s·HE]G + [s·r]Y.
#[derive(Clone)]
pub struct EccsiVerifier {
    pvt_bytes: [u8; POINT_LEN],
    hs: [u8; 32],
    y: Point,
    /// Y's odd multiples for the wNAF of [s·r]Y.
    y_table: ec256::Prepared,
}

impl EccsiVerifier {
    pub fn new(kpak: &Kpak, id: &[u8], pvt: &Pvt) -> Result<Self, CryptoError> {
        let pvt_bytes = pvt.to_bytes();
        let hs = hs_bytes(&kpak.to_bytes(), id, &pvt_bytes);
        let y = ec256::add(
            &ec256::lincomb_vartime(None, &[(pvt.0.to_point(), reduce_bytes(&hs))]),
            &kpak.0.to_point(),
        );
        // Y = O would make every J depend on HE alone; such a PVT cannot be legitimate.
        let y_table = ec256::prepare_vartime(&y).ok_or(CryptoError::NotOnCurve { what: "Y" })?;
        Ok(Self {
            pvt_bytes,
            hs,
            y,
            y_table,
        })
    }

    /// Y = [HS]PVT + KPAK (RFC 6507 §5.2.2 step 4), 0x04 ‖ x ‖ y.
    pub fn y_bytes(&self) -> [u8; POINT_LEN] {
        // Y ≠ O (checked in `new`).
        Option::<Affine>::from(ec256::to_affine(&self.y))
            .unwrap_or_default()
            .to_sec1()
    }

    /// Verifies a signature that must carry this verifier's PVT.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        let (r, s, r_bytes, _) = parse_signature(signature)?;
        if signature[64..] != self.pvt_bytes {
            return Err(CryptoError::BadSignature);
        }
        let he = he_scalar(&self.hs, &r_bytes, msg);
        let j = ec256::lincomb_prepared_vartime(Some(&(s * he)), &[(&self.y_table, s * r)]);
        check_j_vartime(j, &r_bytes)
    }
}

impl core::fmt::Debug for EccsiVerifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EccsiVerifier")
            .field("pvt", &hex::encode_upper(self.pvt_bytes))
            .finish()
    }
}
