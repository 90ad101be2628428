//! `xsd:hexBinary` for key material. Decoding writes straight into the destination buffer so a
//! private key never passes through an intermediate allocation that would outlive it.

use super::XmlError;
use crate::crypto::secret::SecretVec;

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex digits into `out`, skipping XML whitespace (some implementations wrap long
/// keys over several lines). Either case is accepted although we only emit upper case.
fn decode_into(field: &'static str, text: &str, out: &mut Vec<u8>) -> Result<(), XmlError> {
    let mut high: Option<u8> = None;
    for c in text.bytes() {
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            continue;
        }
        let n = nibble(c).ok_or_else(|| XmlError::invalid(field, "not hexBinary"))?;
        match high.take() {
            None => high = Some(n),
            Some(h) => out.push((h << 4) | n),
        }
    }
    if high.is_some() {
        return Err(XmlError::invalid(field, "odd number of hex digits"));
    }
    if out.is_empty() {
        return Err(XmlError::MissingElement(field));
    }
    Ok(())
}

/// Decodes public hexBinary content.
pub(crate) fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, XmlError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    decode_into(field, text, &mut out)?;
    Ok(out)
}

/// Decodes secret hexBinary content. The buffer is sized once (pushes never reallocate and so
/// never free an unzeroized copy) and handed to a [`SecretVec`] before the result is looked at,
/// so a half-decoded key is zeroized on the error path too.
pub(crate) fn decode_secret(field: &'static str, text: &str) -> Result<SecretVec, XmlError> {
    let mut bytes = Vec::with_capacity(text.len() / 2 + 1);
    let result = decode_into(field, text, &mut bytes);
    let secret = SecretVec::new(bytes);
    result.map(|()| secret)
}
