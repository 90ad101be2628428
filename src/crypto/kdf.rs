//! 3GPP key derivations used by SEAL key management.
//!
//! - [`kdf`]: the generic KDF of TS 33.220 Annex B (B.2): HMAC-SHA-256 keyed with `Key` over
//!   `S = FC ‖ P0 ‖ L0 ‖ P1 ‖ L1 ‖ …`, each `Li` the 2-octet big-endian length of `Pi`.
//! - [`uid`]: the "MIKEY-SAKKE UID" of TS 33.180 F.2.1 (text shared with TS 33.179 F.2.1), the
//!   identifier that ECCSI signs with and SAKKE encrypts to when `UserIdFormat` = 2. It is
//!   SHA-256 of an Annex-B-shaped `S` (FC 0x00 is a dummy, no key): a plain hash, not an HMAC.
//! - [`key_period_no`]: the current key period number, counted from 1900-01-01 00:00 UTC (NTP
//!   era 0), as floor((NTP seconds − UserKeyOffset) / UserKeyPeriod).
//! - [`user_salt`], [`guk_id`], [`gmk_id_from_guk_id`]: TS 33.180 F.1.3 (FC 0x50): the GUK-ID
//!   put in the CSB ID of a GMK I_MESSAGE is the GMK-ID XOR the 28-bit User Salt.
//! - [`xpk_derived_keys`]: TS 33.180 F.1.4 (FC 0x51 confidentiality, FC 0x52 integrity).
//! - [`KeyPurpose`]: the 4-bit purpose tag at the top of every 32-bit MCX key identifier
//!   (TS 33.180 clause 5.2.2 / E.6.11; GMK 0, PCK 1, CSK 2, SPK 3, MKFC 4, MSCCK 5, MuSiK 6).
//!
//! Integers inside `S` (key period length, offset and number) are minimal-length big-endian
//! octet strings, zero as the single octet 0x00: that is the encoding which reproduces every
//! published UID example (tests/vectors/ts33180-mcx-derivations.json).

use ring::{digest, hmac};

use super::secret::SecretBytes;

/// Seconds between the NTP epoch (1900-01-01) and the Unix epoch (1970-01-01).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// FC value of the UID construction (TS 33.180 F.2.1): a dummy, the result is hashed, not MACed.
const FC_UID: u8 = 0x00;
/// FC values allocated to TS 33.180 (TS 33.220 B.2.2 allocation, used in TS 33.180 F.1.3/F.1.4).
const FC_USER_SALT: u8 = 0x50;
const FC_XPK_CONF: u8 = 0x51;
const FC_XPK_INT: u8 = 0x52;
/// P0 of the UID construction.
const UID_LABEL: &[u8] = b"MIKEY-SAKKE-UID";

/// Mask of the 28 low bits of a key identifier (the part below the purpose tag).
const LOW28: u32 = 0x0FFF_FFFF;

/// Streams the TS 33.220 B.2 input string `FC ‖ P0 ‖ L0 ‖ …` into `sink`.
///
/// `Li` is 2 octets, so B.2 only defines parameters shorter than 65536 octets. Nothing in
/// SEAL comes near that (URIs and 4-octet ids, bounded by the parsers that deliver them); a
/// longer parameter gets `Li` = 0xFFFF rather than a wrapped length, and callers must not rely
/// on the result being injective for such inputs.
fn feed_s(fc: u8, params: &[&[u8]], mut sink: impl FnMut(&[u8])) {
    sink(&[fc]);
    for p in params {
        sink(p);
        let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
        sink(&len.to_be_bytes());
    }
}

/// The TS 33.220 B.2 input string `S = FC ‖ P0 ‖ L0 ‖ …` itself (for tests and diagnostics;
/// [`kdf`] and [`uid`] stream it without allocating).
pub fn kdf_input(fc: u8, params: &[&[u8]]) -> Vec<u8> {
    let mut s = Vec::with_capacity(1 + params.iter().map(|p| p.len() + 2).sum::<usize>());
    feed_s(fc, params, |b| s.extend_from_slice(b));
    s
}

/// The `S` hashed by [`uid`] (TS 33.180 F.2.1), exposed so tests can compare it octet for
/// octet with published examples.
pub fn uid_input(
    user_uri: &str,
    kms_uri: &str,
    key_period_s: u64,
    key_offset_s: u64,
    period_no: u64,
) -> Vec<u8> {
    let mut s = Vec::new();
    feed_uid_input(
        user_uri,
        kms_uri,
        key_period_s,
        key_offset_s,
        period_no,
        |b| s.extend_from_slice(b),
    );
    s
}

fn feed_uid_input(
    user_uri: &str,
    kms_uri: &str,
    key_period_s: u64,
    key_offset_s: u64,
    period_no: u64,
    sink: impl FnMut(&[u8]),
) {
    let (p3, o3) = minimal_be(key_period_s);
    let (p4, o4) = minimal_be(key_offset_s);
    let (p5, o5) = minimal_be(period_no);
    feed_s(
        FC_UID,
        &[
            UID_LABEL,
            user_uri.as_bytes(),
            kms_uri.as_bytes(),
            &p3[o3..],
            &p4[o4..],
            &p5[o5..],
        ],
        sink,
    );
}

/// TS 33.220 Annex B KDF: HMAC-SHA-256(`key`, FC ‖ P0 ‖ L0 ‖ … ‖ Pn ‖ Ln).
pub fn kdf(key: &[u8], fc: u8, params: &[&[u8]]) -> [u8; 32] {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&k);
    feed_s(fc, params, |b| ctx.update(b));
    let tag = ctx.sign();
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Minimal-length big-endian encoding of an integer, 0 as a single 0x00 octet (returned as a
/// fixed buffer and the offset where the significant octets start).
fn minimal_be(v: u64) -> ([u8; 8], usize) {
    let bytes = v.to_be_bytes();
    let lead = (v.leading_zeros() / 8) as usize;
    // v == 0 has 8 leading zero octets; keep the last one.
    (bytes, lead.min(7))
}

/// TS 33.180 F.2.1 MIKEY-SAKKE UID = SHA-256(S) with FC 0x00, P0 = "MIKEY-SAKKE-UID",
/// P1 = user URI, P2 = KMS URI, P3 = key period length (s), P4 = key period offset (s),
/// P5 = key period number.
pub fn uid(
    user_uri: &str,
    kms_uri: &str,
    key_period_s: u64,
    key_offset_s: u64,
    period_no: u64,
) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    feed_uid_input(
        user_uri,
        kms_uri,
        key_period_s,
        key_offset_s,
        period_no,
        |b| ctx.update(b),
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Key period number for a time given in NTP seconds (since 1900-01-01 00:00 UTC):
/// floor((ntp − offset) / period). `None` if the period is 0 or the time precedes the offset.
pub fn key_period_no(ntp_seconds: u64, key_period_s: u64, key_offset_s: u64) -> Option<u64> {
    let since = ntp_seconds.checked_sub(key_offset_s)?;
    since.checked_div(key_period_s)
}

/// NTP seconds (era 0 count since 1900, not wrapped to 32 bits) for Unix seconds.
pub fn ntp_seconds_from_unix(unix_s: u64) -> u64 {
    unix_s.saturating_add(NTP_UNIX_OFFSET)
}

/// The seconds of a 64-bit NTP timestamp, in era 1 when its top bit is clear (RFC 4330 §3:
/// 1968–2036 have it set, 2036–2104 clear), so times after 2036-02-07 keep counting up.
pub fn ntp64_seconds(ntp64: u64) -> u64 {
    let s = ntp64 >> 32;
    if s & 0x8000_0000 == 0 {
        s + (1 << 32)
    } else {
        s
    }
}

/// Unix seconds for NTP seconds; `None` for times before 1970.
pub fn unix_from_ntp_seconds(ntp: u64) -> Option<u64> {
    ntp.checked_sub(NTP_UNIX_OFFSET)
}

/// TS 33.180 F.1.3 User Salt: the 28 least significant bits of KDF(GMK, 0x50, [user URI]).
pub fn user_salt(gmk: &[u8; 16], user_uri: &str) -> u32 {
    let out = kdf(gmk, FC_USER_SALT, &[user_uri.as_bytes()]);
    let last = [out[28], out[29], out[30], out[31]];
    u32::from_be_bytes(last) & LOW28
}

/// GUK-ID = GMK-ID XOR User Salt; the salt has no bits in the purpose nibble, so the tag of
/// the GMK-ID (GMK = 0) passes through untouched.
pub fn guk_id(gmk: &[u8; 16], gmk_id: u32, user_uri: &str) -> u32 {
    gmk_id ^ user_salt(gmk, user_uri)
}

/// Inverse of [`guk_id`]: a receiver that has decrypted the GMK recovers its GMK-ID from the
/// GUK-ID in the CSB ID field.
pub fn gmk_id_from_guk_id(gmk: &[u8; 16], guk_id: u32, user_uri: &str) -> u32 {
    guk_id ^ user_salt(gmk, user_uri)
}

/// TS 33.180 F.1.4: keys derived from an XPK (e.g. CSK, SPK) for signalling protection.
/// KDF key = XPK, P0 = MC service user ID (URI), P1 = XPK-ID (4 octets, big-endian);
/// FC 0x51 gives the confidentiality key, FC 0x52 the integrity key. A 128-bit XPK gives
/// 128-bit keys: per the TS 33.220 B.2 convention for keys shorter than the 256-bit output
/// (the n least significant bits are the key), they are the last 16 octets of the output.
/// Returns (confidentiality key, integrity key).
pub fn xpk_derived_keys(
    xpk: &[u8; 16],
    xpk_id: u32,
    user_uri: &str,
) -> (SecretBytes<16>, SecretBytes<16>) {
    let id = xpk_id.to_be_bytes();
    let params: [&[u8]; 2] = [user_uri.as_bytes(), &id];
    (
        low128(kdf(xpk, FC_XPK_CONF, &params)),
        low128(kdf(xpk, FC_XPK_INT, &params)),
    )
}

fn low128(mut out: [u8; 32]) -> SecretBytes<16> {
    let mut k = [0u8; 16];
    k.copy_from_slice(&out[16..]);
    zeroize::Zeroize::zeroize(&mut out);
    SecretBytes::new(k)
}

/// Purpose tag: the top 4 bits of a 32-bit MCX key identifier (GMK-ID, PCK-ID, CSK-ID, …).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// Group master key.
    Gmk = 0,
    /// Private call key.
    Pck = 1,
    /// Client-server key.
    Csk = 2,
    /// Signalling protection key.
    Spk = 3,
    /// MBMS subchannel control key (MKFC).
    Mkfc = 4,
    /// MBMS subchannel control key for the MCX server (MSCCK).
    Mscck = 5,
    /// Multicast signalling key.
    Musik = 6,
}

impl KeyPurpose {
    /// The purpose named by the top nibble of `key_id`; `None` for tags 7–15.
    pub fn of(key_id: u32) -> Option<Self> {
        Some(match key_id >> 28 {
            0 => Self::Gmk,
            1 => Self::Pck,
            2 => Self::Csk,
            3 => Self::Spk,
            4 => Self::Mkfc,
            5 => Self::Mscck,
            6 => Self::Musik,
            _ => return None,
        })
    }

    /// A key identifier with this purpose tag over the 28 low bits of `low28` (higher bits of
    /// `low28` are discarded).
    pub fn key_id(self, low28: u32) -> u32 {
        (u32::from(self as u8) << 28) | (low28 & LOW28)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn ntp_seconds_count_on_across_the_2036_era_rollover() {
        // 2036-02-07 06:28:15 (last second of era 0), then the first seconds of era 1.
        assert_eq!(ntp64_seconds(0xFFFF_FFFF_u64 << 32), 0xFFFF_FFFF);
        assert_eq!(ntp64_seconds(0), 1 << 32);
        assert_eq!(ntp64_seconds(100 << 32 | 0xABCD), (1 << 32) + 100);
        // 1968–2036 keep their value (top bit set); the fraction never matters.
        let t2024 = ntp_seconds_from_unix(1_700_000_000);
        assert_eq!(ntp64_seconds(t2024 << 32 | 0xFFFF_FFFF), t2024);
        let ts = crate::crypto::mikey::payload::Timestamp {
            ts_type: 0,
            value: 100 << 32,
        };
        assert_eq!(ts.ntp_seconds(), (1 << 32) + 100);
    }
    use super::*;

    #[test]
    fn minimal_encoding() {
        let enc = |v| {
            let (b, o) = minimal_be(v);
            b[o..].to_vec()
        };
        assert_eq!(enc(0), vec![0]);
        assert_eq!(enc(1), vec![1]);
        assert_eq!(enc(255), vec![255]);
        assert_eq!(enc(256), vec![1, 0]);
        assert_eq!(enc(2_592_000), vec![0x27, 0x8D, 0x00]);
        assert_eq!(enc(u64::MAX), vec![0xFF; 8]);
    }

    #[test]
    fn key_period_edges() {
        assert_eq!(key_period_no(100, 0, 0), None);
        assert_eq!(key_period_no(99, 10, 100), None);
        assert_eq!(key_period_no(100, 10, 100), Some(0));
        assert_eq!(key_period_no(129, 10, 100), Some(2));
    }

    #[test]
    fn purpose_roundtrip() {
        for p in [
            KeyPurpose::Gmk,
            KeyPurpose::Pck,
            KeyPurpose::Csk,
            KeyPurpose::Spk,
            KeyPurpose::Mkfc,
            KeyPurpose::Mscck,
            KeyPurpose::Musik,
        ] {
            let id = p.key_id(0xFFFF_FFFF);
            assert_eq!(KeyPurpose::of(id), Some(p));
            assert_eq!(id & LOW28, LOW28);
        }
        assert_eq!(KeyPurpose::of(0x7000_0000), None);
        assert_eq!(KeyPurpose::of(0xF000_0000), None);
    }
}
