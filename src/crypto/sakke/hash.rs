//! RFC 6508 §5.1 HashToIntegerRange with SHA-256 (the only hash of parameter set 1).

use super::SSV_BYTES;
use crate::crypto::fp::Fq;
use crate::crypto::secret::SecretVec;
use crypto_bigint::U1024;
use ring::digest::{digest, SHA256};
use zeroize::Zeroize;

/// Which n RFC 6508 §5.1 reduces into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashRange {
    /// n = q (for r): the result is 128 big-endian octets.
    Q,
    /// n = 2^128 (the SSV mask): the result is 16 octets.
    TwoPow128,
}

/// v' = v_1 ‖ … ‖ v_l of RFC 6508 §5.1: A = H(s), h_0 = 0^256, h_i = H(h_(i−1)), v_i = H(h_i ‖ A).
fn hash_blocks(s: &[u8], l: usize) -> Vec<u8> {
    let a = digest(&SHA256, s);
    let mut h = [0u8; 32];
    let mut out = Vec::with_capacity(32 * l);
    let mut buf = [0u8; 64];
    for _ in 0..l {
        let next = digest(&SHA256, &h);
        h.copy_from_slice(next.as_ref());
        buf[..32].copy_from_slice(&h);
        buf[32..].copy_from_slice(a.as_ref());
        out.extend_from_slice(digest(&SHA256, &buf).as_ref());
    }
    buf.zeroize();
    out
}

/// HashToIntegerRange(s, q): l = ceil(lg(q)/256) = 4, so v' < 2^1024 and one Montgomery
/// conversion reduces it mod q.
pub(super) fn htir_q(s: &[u8]) -> Fq {
    let mut v = hash_blocks(s, 4);
    let x = Fq::from_uint(&U1024::from_be_slice(&v));
    v.zeroize();
    x
}

/// HashToIntegerRange(s, 2^128): l = 1, and v_1 mod 2^128 is its last 16 octets.
pub(super) fn htir_2n(s: &[u8]) -> [u8; SSV_BYTES] {
    let mut v = hash_blocks(s, 1);
    let mut out = [0u8; SSV_BYTES];
    out.copy_from_slice(&v[32 - SSV_BYTES..]);
    v.zeroize();
    out
}

/// RFC 6508 §5.1 HashToIntegerRange with SHA-256, as big-endian octets (128 for q, 16 for 2^128).
pub fn hash_to_integer_range(s: &[u8], range: HashRange) -> SecretVec {
    match range {
        HashRange::Q => SecretVec::new(htir_q(s).to_be_bytes().to_vec()),
        HashRange::TwoPow128 => SecretVec::new(htir_2n(s).to_vec()),
    }
}
