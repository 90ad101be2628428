//! MIKEY-SAKKE I_MESSAGE (RFC 6509 over RFC 3830 / RFC 6043), as TS 33.180 Annex E uses it
//! to carry GMK, PCK, CSK and MuSiK.
//!
//! ```text
//! I_MESSAGE = HDR, T, RAND, [IDRi], [IDRr], [IDRkmsi], [IDRkmsr], [CERT], {SP}, SAKKE,
//!             [EXT: SAKKE-to-self], [EXT: key parameters], SIGN         (RFC 6509 §2.1, E.1.2)
//! ```
//!
//! * [`payload`]: the typed model ([`IMessage`], [`Header`], [`CsIdMap`], [`Payload`], …) and
//!   every code point with the clause it comes from ([`codes`]).
//! * [`codec`]: [`parse`] / [`encode`], exact inverses on everything [`parse`] accepts.
//!   Parsing untrusted octets never panics and rejects trailing octets.
//! * `exchange`: [`build_i_message`] (sign with ECCSI, encapsulate with SAKKE) and
//!   [`open_i_message`] (verify, decapsulate, recover key identifiers).
//!
//! Framing summary (all multi-octet integers big-endian):
//!
//! | payload | layout | source |
//! |---|---|---|
//! | HDR | version 1, data type 26, next, V(1)‖PRF(7), CSB ID(32), #CS, map type, map info | RFC 3830 §6.1, RFC 6509 §4.1 |
//! | T | next, TS type (0 = NTP-UTC), 64-bit value | RFC 3830 §6.6 |
//! | RAND | next, length(8), octets | RFC 3830 §6.11 |
//! | IDR | next, role, ID type, length(16), ID | RFC 6043 §6.6 |
//! | SP | next, policy no, prot type, length(16), {type, length(8), value} | RFC 3830 §6.10 |
//! | SAKKE | next, params (1), ID scheme (2 = 3GPP UID), length(16), encapsulated data | RFC 6509 §4.2, TS 33.180 E.1.2 |
//! | EXT | next, type (6 SAKKE-to-self, 7 key parameters), length(16), data | RFC 3830 §6.15, TS 33.180 E.5/E.6 |
//! | SIGN | S type(4) = 2 ECCSI, length(12) = 129, signature | RFC 3830 §6.5, RFC 6509 §4.3 |
//!
//! The ECCSI signature covers the message from the first HDR octet through the 2-octet SIGN
//! header (RFC 3830 §5.2 "the signature covers the entire MIKEY message except the Signature
//! field itself"); the published interop I_MESSAGEs verify only under that reading.

pub mod codec;
mod exchange;
pub mod payload;

pub use crate::crypto::CryptoError;
pub use codec::{encode, parse, signed_part, MAX_MESSAGE_LEN, MAX_PAYLOADS};
pub use exchange::{
    build_i_message, open_i_message, BuildParams, OpenedMessage, Party, ReceiverContext,
    TrustedKms, RAND_LEN,
};
pub use payload::{
    codes, CsIdMap, GeneralExt, GenericIdEntry, Header, IMessage, IdPayload, Payload, PolicyParam,
    SakkePayload, SecurityPolicy, SignPayload, SrtpIdEntry, Timestamp,
};
