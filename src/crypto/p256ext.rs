//! P-256 scalar helpers on top of the `p256` crate's `Scalar` (arithmetic mod the group order
//! q; RFC 6507 fixes ECCSI to NIST P-256 with SHA-256, N = 32): wide and hash reductions and
//! strict 32-octet decoding. Points and their arithmetic are in [`super::ec256`].

use p256::elliptic_curve::ff::PrimeField;
use p256::elliptic_curve::ops::Reduce;
use p256::{FieldBytes, Scalar};

use super::ct::public;
use super::error::CryptoError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::Field;

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
}
