//! Unpadded base64url (RFC 4648 §5), as JWS and JWK use it (RFC 7515 §2, RFC 7517 §1.1).
//!
//! The decoder is strict: only the URL-safe alphabet, no padding, no whitespace, and the unused
//! low bits of the last character must be zero. A strict decoder gives every byte string exactly
//! one encoding, so a token cannot be altered in its encoding while still decoding to the same
//! bytes.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes `bytes` as unpadded base64url.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[idx as usize]));
        }
    }
    out
}

fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes unpadded base64url; `None` for any character outside the alphabet, an impossible
/// length, or non-zero trailing bits.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    for chunk in bytes.chunks(4) {
        let mut n: u32 = 0;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        // Bits below the last produced byte must be zero (canonical encoding).
        let unused_bits = 24 - 8 * produced;
        if n & ((1u32 << unused_bits) - 1) != 0 {
            return None;
        }
        for i in 0..produced {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors_without_padding() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, enc) in cases {
            assert_eq!(encode(raw), enc);
            assert_eq!(decode(enc).as_deref(), Some(raw));
        }
    }

    #[test]
    fn url_safe_alphabet_round_trips() {
        let raw = [0xfb, 0xff, 0xbf];
        assert_eq!(encode(&raw), "-_-_");
        assert_eq!(decode("-_-_"), Some(raw.to_vec()));
    }

    #[test]
    fn rejects_padding_standard_alphabet_bad_length_and_trailing_bits() {
        assert_eq!(decode("Zg=="), None);
        assert_eq!(decode("+/+/"), None);
        assert_eq!(decode("Zm9vY"), None);
        assert_eq!(decode("Zh"), None); // 'h' leaves non-zero unused bits
        assert_eq!(decode("Zm9 v"), None);
    }
}
