//! Byte-level I_MESSAGE codec: [`parse`] and [`encode`], exact inverses on every message
//! [`parse`] accepts (`encode(&parse(b)?) == b`).
//!
//! Parsing is total: every read is bounds-checked, every length field is checked against the
//! octets that remain, the payload count and message size are capped, and trailing octets
//! after the SIGN payload are rejected. Errors are [`CryptoError::Mikey`] with a static
//! reason; no input can make the parser panic.

use super::payload::{
    codes, CsIdMap, GeneralExt, GenericIdEntry, Header, IMessage, IdPayload, Payload, PolicyParam,
    SakkePayload, SecurityPolicy, SignPayload, SrtpIdEntry, Timestamp,
};
use crate::crypto::CryptoError;

/// Largest I_MESSAGE accepted (octets). A TS 33.180 I_MESSAGE with SAKKE-to-self and key
/// parameters is well under 2 KiB; 64 KiB leaves room for long URIs and policies.
pub const MAX_MESSAGE_LEN: usize = 65_536;
/// Most payloads accepted between HDR and SIGN (TS 33.180 uses at most 11).
pub const MAX_PAYLOADS: usize = 64;

type Result<T> = core::result::Result<T, CryptoError>;

fn err<T>(reason: &'static str) -> Result<T> {
    Err(CryptoError::Mikey(reason))
}

/// A cursor over untrusted octets; every read is checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        match self.buf.split_at_checked(n) {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(head)
            }
            None => err(what),
        }
    }
    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Parses an I_MESSAGE (RFC 6509 §2.1): HDR, then payloads chained by their next-payload
/// octets, ending with SIGN. Rejects: a version other than 1, a data type other than 26,
/// unknown CS ID map types, unknown payload types, inconsistent lengths, a missing SIGN, and
/// any octet after the signature.
pub fn parse(bytes: &[u8]) -> Result<IMessage> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return err("message longer than the 64 KiB limit");
    }
    let mut r = Reader { buf: bytes };
    let (header, mut next) = parse_header(&mut r)?;
    let mut payloads = Vec::new();
    loop {
        match next {
            codes::next::SIGN => break,
            codes::next::LAST => return err("message ends without a SIGN payload"),
            _ => {}
        }
        if payloads.len() >= MAX_PAYLOADS {
            return err("too many payloads");
        }
        let (payload, n) = parse_payload(next, &mut r)?;
        payloads.push(payload);
        next = n;
    }
    let sign = parse_sign(&mut r)?;
    if !r.is_empty() {
        return err("trailing octets after the SIGN payload");
    }
    Ok(IMessage {
        header,
        payloads,
        sign,
    })
}

fn parse_header(r: &mut Reader<'_>) -> Result<(Header, u8)> {
    const W: &str = "truncated HDR";
    let version = r.u8(W)?;
    if version != codes::VERSION {
        return err("unsupported MIKEY version");
    }
    let data_type = r.u8(W)?;
    if data_type != codes::DATA_TYPE_SAKKE {
        return err("HDR data type is not SAKKE (26)");
    }
    let next = r.u8(W)?;
    let v_prf = r.u8(W)?;
    let csb_id = r.u32(W)?;
    let n_cs = r.u8(W)?;
    let map_type = r.u8(W)?;
    let cs_map = match map_type {
        codes::cs_map::SRTP_ID => {
            let mut v = Vec::with_capacity(usize::from(n_cs));
            for _ in 0..n_cs {
                const S: &str = "truncated SRTP-ID map";
                v.push(SrtpIdEntry {
                    policy_no: r.u8(S)?,
                    ssrc: r.u32(S)?,
                    roc: r.u32(S)?,
                });
            }
            CsIdMap::SrtpId(v)
        }
        codes::cs_map::EMPTY => CsIdMap::Empty { n_cs },
        codes::cs_map::GENERIC_ID => {
            let mut v = Vec::with_capacity(usize::from(n_cs));
            for _ in 0..n_cs {
                v.push(parse_generic_id(r)?);
            }
            CsIdMap::GenericId(v)
        }
        _ => return err("unsupported CS ID map type"),
    };
    let header = Header {
        version,
        data_type,
        v: v_prf & 0x80 != 0,
        prf_func: v_prf & 0x7f,
        csb_id,
        cs_map,
    };
    Ok((header, next))
}

fn parse_generic_id(r: &mut Reader<'_>) -> Result<GenericIdEntry> {
    const G: &str = "truncated GENERIC-ID map";
    let cs_id = r.u8(G)?;
    let prot_type = r.u8(G)?;
    let s_np = r.u8(G)?;
    let policies = r.take(usize::from(s_np & 0x7f), G)?.to_vec();
    let sd_len = r.u16(G)?;
    let session_data = r.take(usize::from(sd_len), G)?.to_vec();
    let spi_len = r.u8(G)?;
    let spi = r.take(usize::from(spi_len), G)?.to_vec();
    Ok(GenericIdEntry {
        cs_id,
        prot_type,
        s: s_np & 0x80 != 0,
        policies,
        session_data,
        spi,
    })
}

/// Parses the payload announced by `code`; returns it and the next-payload code it carries.
fn parse_payload(code: u8, r: &mut Reader<'_>) -> Result<(Payload, u8)> {
    match code {
        codes::next::T => {
            const W: &str = "truncated T payload";
            let next = r.u8(W)?;
            let ts_type = r.u8(W)?;
            match ts_type {
                codes::ts::NTP_UTC | codes::ts::NTP | codes::ts::COUNTER => {}
                _ => return err("unsupported T payload TS type"),
            }
            let value = r.u64(W)?;
            Ok((Payload::Timestamp(Timestamp { ts_type, value }), next))
        }
        codes::next::RAND => {
            const W: &str = "truncated RAND payload";
            let next = r.u8(W)?;
            let len = r.u8(W)?;
            Ok((Payload::Rand(r.take(usize::from(len), W)?.to_vec()), next))
        }
        codes::next::IDR => {
            const W: &str = "truncated IDR payload";
            let next = r.u8(W)?;
            let role = r.u8(W)?;
            let id_type = r.u8(W)?;
            let len = r.u16(W)?;
            let data = r.take(usize::from(len), W)?.to_vec();
            Ok((
                Payload::Id(IdPayload {
                    role,
                    id_type,
                    data,
                }),
                next,
            ))
        }
        codes::next::SP => {
            const W: &str = "truncated SP payload";
            let next = r.u8(W)?;
            let policy_no = r.u8(W)?;
            let prot_type = r.u8(W)?;
            let len = r.u16(W)?;
            let mut pr = Reader {
                buf: r.take(usize::from(len), W)?,
            };
            let mut params = Vec::new();
            while !pr.is_empty() {
                const P: &str = "SP policy parameters overrun the policy length";
                let param_type = pr.u8(P)?;
                let plen = pr.u8(P)?;
                params.push(PolicyParam {
                    param_type,
                    value: pr.take(usize::from(plen), P)?.to_vec(),
                });
            }
            Ok((
                Payload::SecurityPolicy(SecurityPolicy {
                    policy_no,
                    prot_type,
                    params,
                }),
                next,
            ))
        }
        codes::next::SAKKE => {
            const W: &str = "truncated SAKKE payload";
            let next = r.u8(W)?;
            let params = r.u8(W)?;
            let id_scheme = r.u8(W)?;
            let len = r.u16(W)?;
            let data = r.take(usize::from(len), W)?.to_vec();
            Ok((
                Payload::Sakke(SakkePayload {
                    params,
                    id_scheme,
                    data,
                }),
                next,
            ))
        }
        codes::next::GENERAL_EXT => {
            const W: &str = "truncated general extension payload";
            let next = r.u8(W)?;
            let ext_type = r.u8(W)?;
            let len = r.u16(W)?;
            let data = r.take(usize::from(len), W)?.to_vec();
            Ok((Payload::GeneralExt(GeneralExt { ext_type, data }), next))
        }
        _ => err("unsupported payload type in an I_MESSAGE"),
    }
}

fn parse_sign(r: &mut Reader<'_>) -> Result<SignPayload> {
    let h = r.u16("truncated SIGN payload")?;
    // The top 4 bits of a u16 fit a u8.
    let sig_type = (h >> 12) as u8;
    let len = usize::from(h & 0x0fff);
    let signature = r.take(len, "truncated signature")?.to_vec();
    Ok(SignPayload {
        sig_type,
        signature,
    })
}

/// Appends `len` as the big-endian integer of `N` octets, or fails if it does not fit.
fn put_len<const N: usize>(out: &mut Vec<u8>, len: usize, what: &'static str) -> Result<()> {
    let max = if N >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * N)) - 1
    };
    let v = u64::try_from(len).map_err(|_| CryptoError::Mikey(what))?;
    if v > max {
        return err(what);
    }
    out.extend_from_slice(&v.to_be_bytes()[8 - N..]);
    Ok(())
}

/// Encodes an I_MESSAGE. Next-payload octets are derived from the payload order (the last
/// one before SIGN announces SIGN). Fails only when a field does not fit its length field
/// (e.g. an IDR longer than 65535 octets, a signature longer than 4095, a version or data
/// type the parser would reject, or the result exceeding [`MAX_MESSAGE_LEN`]).
pub fn encode(msg: &IMessage) -> Result<Vec<u8>> {
    let h = &msg.header;
    if h.version != codes::VERSION || h.data_type != codes::DATA_TYPE_SAKKE {
        return err("only version 1, data type 26 messages are encoded");
    }
    if h.prf_func > 0x7f {
        return err("PRF func does not fit 7 bits");
    }
    if msg.payloads.len() > MAX_PAYLOADS {
        return err("too many payloads");
    }
    let mut out = Vec::with_capacity(1024);
    let first = msg
        .payloads
        .first()
        .map_or(codes::next::SIGN, Payload::code);
    out.extend_from_slice(&[
        h.version,
        h.data_type,
        first,
        (u8::from(h.v) << 7) | h.prf_func,
    ]);
    out.extend_from_slice(&h.csb_id.to_be_bytes());
    match &h.cs_map {
        CsIdMap::SrtpId(v) => {
            put_len::<1>(&mut out, v.len(), "more than 255 crypto sessions")?;
            out.push(codes::cs_map::SRTP_ID);
            for e in v {
                out.push(e.policy_no);
                out.extend_from_slice(&e.ssrc.to_be_bytes());
                out.extend_from_slice(&e.roc.to_be_bytes());
            }
        }
        CsIdMap::Empty { n_cs } => out.extend_from_slice(&[*n_cs, codes::cs_map::EMPTY]),
        CsIdMap::GenericId(v) => {
            put_len::<1>(&mut out, v.len(), "more than 255 crypto sessions")?;
            out.push(codes::cs_map::GENERIC_ID);
            for e in v {
                out.extend_from_slice(&[e.cs_id, e.prot_type]);
                if e.policies.len() > 0x7f {
                    return err("more than 127 policies in a GENERIC-ID entry");
                }
                // Checked just above: at most 127, so the cast is exact.
                out.push((u8::from(e.s) << 7) | e.policies.len() as u8);
                out.extend_from_slice(&e.policies);
                put_len::<2>(
                    &mut out,
                    e.session_data.len(),
                    "GENERIC-ID session data too long",
                )?;
                out.extend_from_slice(&e.session_data);
                put_len::<1>(
                    &mut out,
                    e.spi.len(),
                    "GENERIC-ID SPI longer than 255 octets",
                )?;
                out.extend_from_slice(&e.spi);
            }
        }
    }
    for (i, p) in msg.payloads.iter().enumerate() {
        let next = msg
            .payloads
            .get(i + 1)
            .map_or(codes::next::SIGN, Payload::code);
        out.push(next);
        match p {
            Payload::Timestamp(t) => {
                out.push(t.ts_type);
                out.extend_from_slice(&t.value.to_be_bytes());
            }
            Payload::Rand(r) => {
                put_len::<1>(&mut out, r.len(), "RAND longer than 255 octets")?;
                out.extend_from_slice(r);
            }
            Payload::Id(id) => {
                out.extend_from_slice(&[id.role, id.id_type]);
                put_len::<2>(&mut out, id.data.len(), "ID longer than 65535 octets")?;
                out.extend_from_slice(&id.data);
            }
            Payload::SecurityPolicy(sp) => {
                out.extend_from_slice(&[sp.policy_no, sp.prot_type]);
                let total = sp
                    .params
                    .iter()
                    .try_fold(0usize, |acc, q| acc.checked_add(2 + q.value.len()));
                put_len::<2>(
                    &mut out,
                    total.unwrap_or(usize::MAX),
                    "SP parameters too long",
                )?;
                for q in &sp.params {
                    out.push(q.param_type);
                    put_len::<1>(
                        &mut out,
                        q.value.len(),
                        "SP parameter longer than 255 octets",
                    )?;
                    out.extend_from_slice(&q.value);
                }
            }
            Payload::Sakke(s) => {
                out.extend_from_slice(&[s.params, s.id_scheme]);
                put_len::<2>(
                    &mut out,
                    s.data.len(),
                    "SAKKE data longer than 65535 octets",
                )?;
                out.extend_from_slice(&s.data);
            }
            Payload::GeneralExt(e) => {
                out.push(e.ext_type);
                put_len::<2>(&mut out, e.data.len(), "extension longer than 65535 octets")?;
                out.extend_from_slice(&e.data);
            }
        }
    }
    out.extend_from_slice(&sign_header(&msg.sign)?);
    out.extend_from_slice(&msg.sign.signature);
    if out.len() > MAX_MESSAGE_LEN {
        return err("message longer than the 64 KiB limit");
    }
    Ok(out)
}

/// The 2-octet SIGN header: S type in the top 4 bits, signature length in the low 12.
pub fn sign_header(sign: &SignPayload) -> Result<[u8; 2]> {
    if sign.sig_type > 0x0f {
        return err("SIGN type does not fit 4 bits");
    }
    let len = u16::try_from(sign.signature.len())
        .ok()
        .filter(|&l| l <= 0x0fff)
        .ok_or(CryptoError::Mikey("signature longer than 4095 octets"))?;
    Ok(((u16::from(sign.sig_type) << 12) | len).to_be_bytes())
}

/// The octets an ECCSI signature covers: the message from the first HDR octet through the
/// 2-octet SIGN header, i.e. everything but the signature itself (RFC 3830 §5.2; the four
/// interop vectors verify only under this reading). `bytes` must be a message [`parse`]
/// accepted, whose SIGN payload is `sign`.
pub fn signed_part<'a>(bytes: &'a [u8], sign: &SignPayload) -> Result<&'a [u8]> {
    bytes
        .len()
        .checked_sub(sign.signature.len())
        .and_then(|n| bytes.get(..n))
        .ok_or(CryptoError::Mikey("signature longer than the message"))
}
