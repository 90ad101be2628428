//! Reading the SAKKE lengths liberally (interoperability with shortest-length writers).
//!
//! RFC 6508 fixes every length: g^r and w are hashed as 128-octet F_p encodings (§2.1, §6.2.1
//! step 4, §6.2.2 step 2) and H is n/8 = 16 octets, so Encapsulated Data is 273 octets. At least
//! one deployed MIKEY-SAKKE implementation instead hashes g^r at its shortest length and writes H
//! without leading zero octets. Between it and a strict reader about one message in 128 fails,
//! both ways. This module holds the two liberal readings [`super::decapsulate`] applies:
//!
//! * a hint H of fewer than 16 octets is left-padded with zeros ([`pad_hint`]);
//! * when the RFC reading of w fails the re-encapsulation check, w is read again at its shortest
//!   encoding ([`shortest_w_mask`]); the R check still decides, so a message is accepted only if
//!   its sender knew r.
//!
//! The writer side ([`super::encapsulate_random`]) never produces a value whose two encodings
//! differ: it draws a new SSV (hence a new r) while g^r or H has a leading zero octet.

use super::hash::htir_2n;
use super::SSV_BYTES;
use crate::crypto::fp::FP_BYTES;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

/// Leading zero octets of w that the shortest reading strips at most. w has more with
/// probability below 2^−130; such a message then fails as it does under a strict reader.
const MAX_STRIPPED: usize = 16;

/// H as sent (at most 16 octets, checked by the caller), left-padded to 16 octets.
pub(super) fn pad_hint(sent: &[u8]) -> [u8; SSV_BYTES] {
    let mut h = [0u8; SSV_BYTES];
    h[SSV_BYTES - sent.len()..].copy_from_slice(sent);
    h
}

/// HashToIntegerRange(w', 2^128) where w' is w without its leading zero octets, constant-time
/// in w: the number of zero octets is counted branch-free, every candidate suffix
/// w[k..] (k = 0..=16, lengths public) is hashed, and the matching mask is selected with masks.
pub(super) fn shortest_w_mask(w: &[u8; FP_BYTES]) -> [u8; SSV_BYTES] {
    let mut zeros = 0u8;
    let mut run = Choice::from(1);
    for byte in &w[..MAX_STRIPPED] {
        run &= byte.ct_eq(&0);
        zeros += run.unwrap_u8();
    }
    let mut out = [0u8; SSV_BYTES];
    for k in 0..=MAX_STRIPPED {
        let mut m = htir_2n(&w[k..]);
        // k ≤ 16: the cast is exact.
        let pick = (k as u8).ct_eq(&zeros);
        for (o, v) in out.iter_mut().zip(&m) {
            o.conditional_assign(v, pick);
        }
        m.zeroize();
    }
    zeros.zeroize();
    out
}

/// Whether the octets `x` start with a zero octet (constant-time).
pub(super) fn leading_zero(x: &[u8]) -> Choice {
    x.first().map_or(Choice::from(1), |b| b.ct_eq(&0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_mask_hashes_w_without_its_leading_zeros() {
        let mut w = [0x5Au8; FP_BYTES];
        assert_eq!(shortest_w_mask(&w), htir_2n(&w));
        for zeros in [1usize, 2, 16] {
            w[..zeros].fill(0);
            assert_eq!(shortest_w_mask(&w), htir_2n(&w[zeros..]), "{zeros}");
        }
        // A zero octet after a nonzero one is not stripped.
        let mut w = [0x11u8; FP_BYTES];
        w[1] = 0;
        assert_eq!(shortest_w_mask(&w), htir_2n(&w));
    }

    #[test]
    fn hint_is_left_padded() {
        assert_eq!(pad_hint(&[1, 2])[14..], [1, 2]);
        assert_eq!(pad_hint(&[1, 2])[..14], [0; 14]);
        assert_eq!(pad_hint(&[]), [0; SSV_BYTES]);
    }
}
