//! The typed I_MESSAGE model and the code points it uses.
//!
//! Every value below carries its source. "IANA" is the MIKEY Payload Name Spaces registry
//! (created by RFC 3830 §10, extended by RFC 4563, RFC 6043 and RFC 6509).

/// Code points. Kept public so callers and tests name values instead of repeating numbers.
pub mod codes {
    /// HDR version: RFC 3830 §6.1 ("version: the version number of MIKEY, version = 0x01").
    pub const VERSION: u8 = 1;
    /// HDR data type of a MIKEY-SAKKE I_MESSAGE: RFC 6509 §4.1 / IANA data type 26;
    /// TS 33.180 E.1.2. Observed in all four interop vectors.
    pub const DATA_TYPE_SAKKE: u8 = 26;

    /// HDR PRF func 0 = MIKEY-1 (RFC 3830 §6.1).
    pub const PRF_MIKEY_1: u8 = 0;
    /// HDR PRF func 1 = PRF-HMAC-SHA-256 (RFC 6043 §6.1, IANA "PRF func" registry);
    /// TS 33.180 E.1.2 allows it. Observed in all four interop vectors.
    pub const PRF_HMAC_SHA_256: u8 = 1;

    /// Next-payload values: RFC 3830 §6.1 table (IANA "Next Payload" registry):
    /// 0 Last payload, 1 KEMAC, 2 PKE, 3 DH, 4 SIGN, 5 T, 6 ID, 7 CERT, 8 CHASH, 9 V,
    /// 10 SP, 11 RAND, 12 ERR, 20 Key data, 21 General Ext.
    pub mod next {
        /// Last payload (RFC 3830 §6.1).
        pub const LAST: u8 = 0;
        /// SIGN (RFC 3830 §6.1 / §6.5).
        pub const SIGN: u8 = 4;
        /// T, timestamp (RFC 3830 §6.1 / §6.6).
        pub const T: u8 = 5;
        /// SP, security policy (RFC 3830 §6.1 / §6.10).
        pub const SP: u8 = 10;
        /// RAND (RFC 3830 §6.1 / §6.11).
        pub const RAND: u8 = 11;
        /// IDR, ID payload with role: RFC 6043 §6.6 (IANA next payload 14; also the value
        /// of `MIKEYPAYLOAD_IDR_PAYLOAD_TYPE` in the open-source libmikey used by the
        /// interop vectors' implementation). Observed in all four interop vectors.
        pub const IDR: u8 = 14;
        /// General extension (RFC 3830 §6.1 / §6.15).
        pub const GENERAL_EXT: u8 = 21;
        /// SAKKE payload: RFC 6509 §4.2 (IANA next payload 26). Observed in the vectors.
        pub const SAKKE: u8 = 26;
    }

    /// CS ID map types.
    pub mod cs_map {
        /// SRTP-ID (RFC 3830 §6.1.1).
        pub const SRTP_ID: u8 = 0;
        /// Empty map (RFC 4563 §4.1.1; TS 33.180 E.1.2 for PCK/CSK).
        pub const EMPTY: u8 = 1;
        /// GENERIC-ID (RFC 6043 §6.1.1; TS 33.180 E.1.2 when #CS > 0).
        pub const GENERIC_ID: u8 = 2;
    }

    /// T payload TS types (RFC 3830 §6.6): 0 NTP-UTC, 1 NTP, 2 COUNTER, all 64 bits.
    pub mod ts {
        /// NTP-UTC, 64-bit (RFC 3830 §6.6); the only type TS 33.180 uses.
        pub const NTP_UTC: u8 = 0;
        /// NTP, 64-bit (RFC 3830 §6.6).
        pub const NTP: u8 = 1;
        /// COUNTER, 64-bit (RFC 3830 §6.6).
        pub const COUNTER: u8 = 2;
    }

    /// ID roles of the IDR payload.
    pub mod role {
        /// IDRi, initiator (RFC 6043 §6.6).
        pub const INITIATOR: u8 = 1;
        /// IDRr, responder (RFC 6043 §6.6).
        pub const RESPONDER: u8 = 2;
        /// IDRkms (RFC 6043 §6.6).
        pub const KMS: u8 = 3;
        /// IDRpsk (RFC 6043 §6.6).
        pub const PSK: u8 = 4;
        /// IDRapp (RFC 6043 §6.6).
        pub const APP: u8 = 5;
        /// IDRkmsi, initiator's KMS (RFC 6509 §4.4 registers 6 and 7).
        pub const KMS_INITIATOR: u8 = 6;
        /// IDRkmsr, responder's KMS (RFC 6509 §4.4).
        pub const KMS_RESPONDER: u8 = 7;
        /// Not IANA-registered: the initiator's 32-octet UID as sent by a deployed MCX
        /// implementation (Streamwide libmikey `MIKEYPAYLOAD_ID_ROLE_UID_INITIATOR`), seen in
        /// all four interop vectors instead of role 1.
        pub const UID_INITIATOR: u8 = 8;
        /// Not IANA-registered: the responder's 32-octet UID (same source), instead of role 2.
        pub const UID_RESPONDER: u8 = 9;
    }

    /// ID types of the IDR payload (RFC 6043 §6.6): 0 NAI, 1 URI, 2 byte string.
    pub mod id_type {
        /// NAI (RFC 3830 §6.7 / RFC 6043 §6.6).
        pub const NAI: u8 = 0;
        /// URI (RFC 3830 §6.7 / RFC 6043 §6.6); also used by the vectors for raw UIDs.
        pub const URI: u8 = 1;
        /// Byte string (RFC 6043 §6.6).
        pub const BYTE_STRING: u8 = 2;
    }

    /// SAKKE params: 1 = RFC 6509 Appendix A parameter set 1 (RFC 6509 §4.2).
    pub const SAKKE_PARAMS_1: u8 = 1;
    /// SAKKE ID scheme 1 = tel URI with monthly keys (RFC 6509 §3.2 / §4.2).
    pub const ID_SCHEME_TEL_MONTHLY: u8 = 1;
    /// SAKKE ID scheme 2 = 3GPP MCX hashed UID (TS 33.180 E.1.2 / F.2.1, IANA ID Scheme
    /// registry). Observed in all four interop vectors.
    pub const ID_SCHEME_3GPP_UID: u8 = 2;

    /// SIGN S type 2 = ECCSI (RFC 6509 §4.3; RFC 3830 §6.5 has 0 RSA/PKCS#1/1.5, 1 RSA/PSS).
    pub const SIGN_TYPE_ECCSI: u8 = 2;
    /// Length of an ECCSI signature on P-256: r ‖ s ‖ PVT = 32 + 32 + 65 (RFC 6507 §3.3).
    pub const ECCSI_SIGNATURE_LEN: usize = 129;

    /// General extension type 6: SAKKE-to-self (TS 33.180 E.5).
    pub const EXT_SAKKE_TO_SELF: u8 = 6;
    /// General extension type 7: MIKEY-SAKKE key parameters (TS 33.180 E.6); present in
    /// all four interop vectors.
    pub const EXT_KEY_PARAMETERS: u8 = 7;
}

/// The common header (RFC 3830 §6.1). `next payload` is not stored: it is implied by the
/// payload list and recomputed on encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Always [`codes::VERSION`]; the parser rejects anything else.
    pub version: u8,
    /// Always [`codes::DATA_TYPE_SAKKE`] for an I_MESSAGE this module accepts.
    pub data_type: u8,
    /// V flag (RFC 3830 §6.1): a verification message is requested. TS 33.180 sets 0.
    pub v: bool,
    /// PRF func (7 bits).
    pub prf_func: u8,
    /// CSB ID: the key identifier, purpose tag in the top 4 bits (TS 33.180 E.1.2).
    pub csb_id: u32,
    /// #CS and the CS ID map.
    pub cs_map: CsIdMap,
}

/// CS ID map type and info. #CS is implied by the number of entries, except for the empty
/// map which carries no entries but may still declare a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsIdMap {
    /// Type 0, SRTP-ID (RFC 3830 §6.1.1): #CS entries of 9 octets.
    SrtpId(Vec<SrtpIdEntry>),
    /// Type 1, empty map (RFC 4563 §4.1.1): no map info; `n_cs` is the #CS octet as sent.
    Empty { n_cs: u8 },
    /// Type 2, GENERIC-ID (RFC 6043 §6.1.1): #CS variable-length entries.
    GenericId(Vec<GenericIdEntry>),
}

impl CsIdMap {
    /// The one-entry GENERIC-ID map TS 33.180 uses for GMK/CSK (E.1.2): CS ID, protocol
    /// SRTP (0), S = 0, one policy (number `policy_no`), no session data, the given SPI
    /// (GMK: GMK-ID ‖ GUK-ID; CSK: the CSK-ID).
    pub fn generic_single(cs_id: u8, policy_no: u8, spi: Vec<u8>) -> Self {
        CsIdMap::GenericId(vec![GenericIdEntry {
            cs_id,
            prot_type: 0,
            s: false,
            policies: vec![policy_no],
            session_data: Vec::new(),
            spi,
        }])
    }

    /// The map type octet.
    pub fn map_type(&self) -> u8 {
        match self {
            CsIdMap::SrtpId(_) => codes::cs_map::SRTP_ID,
            CsIdMap::Empty { .. } => codes::cs_map::EMPTY,
            CsIdMap::GenericId(_) => codes::cs_map::GENERIC_ID,
        }
    }
}

/// One SRTP-ID map entry (RFC 3830 §6.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpIdEntry {
    pub policy_no: u8,
    pub ssrc: u32,
    pub roc: u32,
}

/// One GENERIC-ID map entry (RFC 6043 §6.1.1):
/// `CS ID (8) | Prot type (8) | S (1) | #P (7) | Ps (#P × 8) | Session Data Length (16) |
/// Session Data | SPI Length (8) | SPI`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericIdEntry {
    pub cs_id: u8,
    pub prot_type: u8,
    /// S flag: session data present/used (RFC 6043 §6.1.1).
    pub s: bool,
    /// At most 127 policy numbers (#P is 7 bits).
    pub policies: Vec<u8>,
    pub session_data: Vec<u8>,
    /// At most 255 octets.
    pub spi: Vec<u8>,
}

/// T payload (RFC 3830 §6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// TS type (0 NTP-UTC, 1 NTP, 2 COUNTER).
    pub ts_type: u8,
    /// The 64-bit value (NTP: seconds since 1900 in the high 32 bits).
    pub value: u64,
}

impl Timestamp {
    /// The NTP seconds (high 32 bits, era 1 after 2036 as RFC 4330 §3 reads them);
    /// meaningful for NTP-UTC and NTP.
    pub fn ntp_seconds(&self) -> u64 {
        crate::crypto::kdf::ntp64_seconds(self.value)
    }
}

/// IDR payload (RFC 6043 §6.6): `next | ID Role | ID Type | ID len (16) | ID data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPayload {
    pub role: u8,
    pub id_type: u8,
    pub data: Vec<u8>,
}

/// SP payload (RFC 3830 §6.10): `next | Policy no | Prot type | Policy param length (16) |
/// params`, each parameter `Type (8) | Length (8) | Value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityPolicy {
    pub policy_no: u8,
    pub prot_type: u8,
    pub params: Vec<PolicyParam>,
}

/// One SP policy parameter (RFC 3830 §6.10.1 for SRTP types; values kept as sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyParam {
    pub param_type: u8,
    /// At most 255 octets.
    pub value: Vec<u8>,
}

/// SAKKE payload (RFC 6509 §4.2): `next | SAKKE params | ID scheme | SAKKE data length (16) |
/// SAKKE data` (the data is the RFC 6508 Encapsulated Data, 273 octets for parameter set 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SakkePayload {
    pub params: u8,
    pub id_scheme: u8,
    pub data: Vec<u8>,
}

/// General extension payload (RFC 3830 §6.15): `next | Type | Length (16) | Data`. The data
/// is kept raw so that re-encoding is exact; see [`GeneralExt::sakke_to_self`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralExt {
    pub ext_type: u8,
    pub data: Vec<u8>,
}

/// SIGN payload (RFC 3830 §6.5 / RFC 6509 §4.3): `S type (4) | Signature len (12) |
/// Signature`. Always the last payload; it has no next-payload field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignPayload {
    /// 4-bit signature type ([`codes::SIGN_TYPE_ECCSI`] for MIKEY-SAKKE).
    pub sig_type: u8,
    /// At most 4095 octets (12-bit length); 129 for ECCSI.
    pub signature: Vec<u8>,
}

/// Every payload between HDR and SIGN that this codec understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Timestamp(Timestamp),
    /// RAND payload (RFC 3830 §6.11): `next | RAND len (8) | RAND`.
    Rand(Vec<u8>),
    Id(IdPayload),
    SecurityPolicy(SecurityPolicy),
    Sakke(SakkePayload),
    GeneralExt(GeneralExt),
}

impl Payload {
    /// The next-payload code that announces this payload.
    pub fn code(&self) -> u8 {
        match self {
            Payload::Timestamp(_) => codes::next::T,
            Payload::Rand(_) => codes::next::RAND,
            Payload::Id(_) => codes::next::IDR,
            Payload::SecurityPolicy(_) => codes::next::SP,
            Payload::Sakke(_) => codes::next::SAKKE,
            Payload::GeneralExt(_) => codes::next::GENERAL_EXT,
        }
    }
}

/// A MIKEY-SAKKE I_MESSAGE: `HDR, payloads…, SIGN` (RFC 6509 §2.1, TS 33.180 E.1.2).
///
/// The codec keeps the payload order as sent; [`IMessage`] accessors look payloads up by
/// kind. Semantic rules (exactly one T, RAND and SAKKE; roles not repeated) are checked by
/// [`IMessage::validate_structure`], which [`super::open_i_message`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IMessage {
    pub header: Header,
    pub payloads: Vec<Payload>,
    pub sign: SignPayload,
}

impl IMessage {
    /// The (first) T payload.
    pub fn timestamp(&self) -> Option<&Timestamp> {
        self.payloads.iter().find_map(|p| match p {
            Payload::Timestamp(t) => Some(t),
            _ => None,
        })
    }

    /// The (first) RAND payload's octets.
    pub fn rand(&self) -> Option<&[u8]> {
        self.payloads.iter().find_map(|p| match p {
            Payload::Rand(r) => Some(r.as_slice()),
            _ => None,
        })
    }

    /// The (first) IDR payload with this role.
    pub fn id(&self, role: u8) -> Option<&IdPayload> {
        self.ids().find(|id| id.role == role)
    }

    /// All IDR payloads in order.
    pub fn ids(&self) -> impl Iterator<Item = &IdPayload> {
        self.payloads.iter().filter_map(|p| match p {
            Payload::Id(id) => Some(id),
            _ => None,
        })
    }

    /// The (first) SAKKE payload.
    pub fn sakke(&self) -> Option<&SakkePayload> {
        self.payloads.iter().find_map(|p| match p {
            Payload::Sakke(s) => Some(s),
            _ => None,
        })
    }

    /// The (first) SP payload.
    pub fn security_policy(&self) -> Option<&SecurityPolicy> {
        self.payloads.iter().find_map(|p| match p {
            Payload::SecurityPolicy(s) => Some(s),
            _ => None,
        })
    }

    /// All general extension payloads in order.
    pub fn extensions(&self) -> impl Iterator<Item = &GeneralExt> {
        self.payloads.iter().filter_map(|p| match p {
            Payload::GeneralExt(e) => Some(e),
            _ => None,
        })
    }

    /// The (first) general extension of this type.
    pub fn extension(&self, ext_type: u8) -> Option<&GeneralExt> {
        self.extensions().find(|e| e.ext_type == ext_type)
    }

    /// The purpose tag: the top 4 bits of the CSB ID (TS 33.180 E.1.2 / E.6.11).
    pub fn purpose_tag(&self) -> u8 {
        // Shifting a u32 right by 28 leaves at most 4 bits: the cast cannot truncate.
        (self.header.csb_id >> 28) as u8
    }

    /// The MIKEY-SAKKE structural rules of RFC 6509 §2.1 / TS 33.180 E.1.2 that do not
    /// depend on keys: data type 26, exactly one T, one RAND and one SAKKE payload, no ID
    /// role repeated, at most one SP, ECCSI signature type and length.
    pub fn validate_structure(&self) -> Result<(), super::CryptoError> {
        use super::CryptoError::Mikey;
        if self.header.data_type != codes::DATA_TYPE_SAKKE {
            return Err(Mikey("HDR data type is not SAKKE (26)"));
        }
        let count = |f: fn(&Payload) -> bool| self.payloads.iter().filter(|p| f(p)).count();
        if count(|p| matches!(p, Payload::Timestamp(_))) != 1 {
            return Err(Mikey("I_MESSAGE must carry exactly one T payload"));
        }
        if count(|p| matches!(p, Payload::Rand(_))) != 1 {
            return Err(Mikey("I_MESSAGE must carry exactly one RAND payload"));
        }
        if count(|p| matches!(p, Payload::Sakke(_))) != 1 {
            return Err(Mikey("I_MESSAGE must carry exactly one SAKKE payload"));
        }
        if count(|p| matches!(p, Payload::SecurityPolicy(_))) > 1 {
            return Err(Mikey("I_MESSAGE carries more than one SP payload"));
        }
        let mut seen = [false; 256];
        for id in self.ids() {
            let slot = &mut seen[usize::from(id.role)];
            if *slot {
                return Err(Mikey("ID role repeated"));
            }
            *slot = true;
        }
        if self.sign.sig_type != codes::SIGN_TYPE_ECCSI {
            return Err(Mikey("SIGN type is not ECCSI (2)"));
        }
        if self.sign.signature.len() != codes::ECCSI_SIGNATURE_LEN {
            return Err(Mikey("ECCSI signature is not 129 octets"));
        }
        Ok(())
    }
}

impl GeneralExt {
    /// Interprets a SAKKE-to-self extension (type 6, TS 33.180 E.5). Its data is taken to be
    /// an embedded SAKKE payload `next (0) | SAKKE params | ID scheme | length (16) | data`,
    /// as one public implementation (wolfSSL's MIKEY-SAKKE writer) lays it out; the bare
    /// form without the leading next-payload octet is accepted too. `None` if this is not a
    /// type-6 extension or its data has neither shape.
    pub fn sakke_to_self(&self) -> Option<SakkePayload> {
        if self.ext_type != codes::EXT_SAKKE_TO_SELF {
            return None;
        }
        let d = self.data.as_slice();
        let parse_bare = |b: &[u8]| -> Option<SakkePayload> {
            let (&params, rest) = b.split_first()?;
            let (&id_scheme, rest) = rest.split_first()?;
            let (len, rest) = rest.split_at_checked(2)?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            (rest.len() == len).then(|| SakkePayload {
                params,
                id_scheme,
                data: rest.to_vec(),
            })
        };
        match d.split_first() {
            Some((&codes::next::LAST, rest)) => parse_bare(rest).or_else(|| parse_bare(d)),
            _ => parse_bare(d),
        }
    }

    /// Builds a SAKKE-to-self extension in the embedded-payload layout
    /// (see [`GeneralExt::sakke_to_self`]).
    pub fn new_sakke_to_self(sakke: &SakkePayload) -> Result<Self, super::CryptoError> {
        let len = u16::try_from(sakke.data.len())
            .map_err(|_| super::CryptoError::Mikey("SAKKE data longer than 65535 octets"))?;
        let mut data = Vec::with_capacity(5 + sakke.data.len());
        data.extend_from_slice(&[codes::next::LAST, sakke.params, sakke.id_scheme]);
        data.extend_from_slice(&len.to_be_bytes());
        data.extend_from_slice(&sakke.data);
        Ok(GeneralExt {
            ext_type: codes::EXT_SAKKE_TO_SELF,
            data,
        })
    }
}
