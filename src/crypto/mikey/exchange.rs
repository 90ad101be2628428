//! Building and opening MIKEY-SAKKE I_MESSAGEs (RFC 6509 §2, TS 33.180 E.1): ECCSI
//! signature (RFC 6507) by the initiator, SAKKE encapsulation (RFC 6508) to the responder.
//!
//! # Identities (TS 33.180 F.2.1)
//! ECCSI and SAKKE identifiers are 32-octet UIDs derived from a URI, a KMS URI and the key
//! period implied by the T payload ([`kdf::uid`], [`kdf::key_period_no`]).
//!
//! * [`build_i_message`] emits IDRi / IDRr with the URIs (roles 1/2, RFC 6043 §6.6) as
//!   RFC 6509 §4.4 and TS 33.180 E.1.2 ask; [`BuildParams::uid_roles`] additionally emits
//!   the UIDs with roles 8/9 for peers of the deployed variant that look there first.
//! * [`open_i_message`] is liberal in what it accepts. The initiator URI is taken from IDRi
//!   (role 1) when present, otherwise from [`ReceiverContext::initiator_uri`] (learned from
//!   call signalling); when both exist they must agree. The UID is then always *derived*
//!   from that URI, the initiator KMS's period parameters and T — never taken on trust from
//!   the message — and when a role-8 UID is present it must equal the derived one. A message
//!   carrying only a role-8 UID with no URI known to the caller is rejected: the signature
//!   would prove nothing about who sent it.
//!
//! The signature is checked before decapsulation. Replay and freshness policy (window on T,
//! replay cache of RAND/CSB ID) is the caller's; [`OpenedMessage`] returns what it needs.

use super::codec::{self, encode, parse};
use super::payload::{
    codes, CsIdMap, GeneralExt, Header, IMessage, IdPayload, Payload, SakkePayload, SecurityPolicy,
    SignPayload, Timestamp,
};
use crate::crypto::eccsi::{self, EccsiSigner, Kpak};
use crate::crypto::kdf::{self, KeyPurpose};
use crate::crypto::sakke::{self, Rsk, SakkePublicKey};
use crate::crypto::secret::SecretBytes;
use crate::crypto::CryptoError;
use ring::rand::SecureRandom;

type Result<T> = core::result::Result<T, CryptoError>;

/// Length of the RAND payload this module emits (RFC 3830 §6.11: at least 16 octets).
pub const RAND_LEN: usize = 16;

/// One party of an exchange as the sender names it.
#[derive(Debug, Clone, Copy)]
pub struct Party<'a> {
    /// The MC service user ID / URI (IDRi or IDRr).
    pub uri: &'a str,
    /// UID for the message's key period, computed by the caller with [`kdf::uid`].
    pub uid: &'a [u8; 32],
    /// The URI of the KMS that issued this party's keys (IDRkmsi or IDRkmsr).
    pub kms_uri: &'a str,
}

/// Everything [`build_i_message`] needs.
pub struct BuildParams<'a> {
    /// The initiator's ECCSI signer (built over `initiator.uid`).
    pub signer: &'a EccsiSigner,
    pub initiator: Party<'a>,
    pub responder: Party<'a>,
    /// The responder KMS's SAKKE public key Z.
    pub responder_z: &'a SakkePublicKey,
    /// The key to transport (GMK, PCK, CSK, MuSiK): the SAKKE SSV.
    pub key: &'a SecretBytes<16>,
    /// The key identifier with its purpose tag in the top 4 bits (GMK: the GUK-ID).
    pub csb_id: u32,
    /// #CS and CS ID map (TS 33.180 E.1.2: empty map for PCK, GENERIC-ID for GMK/CSK).
    pub cs_map: CsIdMap,
    /// NTP-UTC 64-bit time (seconds since 1900 in the high 32 bits).
    pub ntp_timestamp: u64,
    /// Optional SP payload (RFC 3830 §6.10).
    pub security_policy: Option<SecurityPolicy>,
    /// SAKKE-to-self (TS 33.180 E.5): the initiator KMS's Z; the key is also encapsulated to
    /// `initiator.uid` and carried in general extension type 6.
    pub sakke_to_self: Option<&'a SakkePublicKey>,
    /// Key-parameter extension data (TS 33.180 E.6), carried raw as extension type 7.
    pub key_parameters: Option<&'a [u8]>,
    /// Also emit the UIDs with roles 8/9 (deployed 3GPP variant), after IDRi/IDRr.
    pub uid_roles: bool,
}

/// A KMS whose users' signatures the receiver accepts (its own root KMS and any external
/// KMS from the certificate cache, TS 33.180 D.3.1).
#[derive(Debug, Clone, Copy)]
pub struct TrustedKms<'a> {
    pub kms_uri: &'a str,
    pub key_period_s: u64,
    pub key_offset_s: u64,
    pub kpak: &'a Kpak,
}

/// The receiver (responder) side of [`open_i_message`].
pub struct ReceiverContext<'a> {
    /// The receiver's own URI (the UID it decrypts with is derived from it).
    pub uri: &'a str,
    /// The receiver's KMS and its key-period parameters.
    pub kms_uri: &'a str,
    pub key_period_s: u64,
    pub key_offset_s: u64,
    /// The receiver KMS's SAKKE public key Z.
    pub z: &'a SakkePublicKey,
    /// The receiver's RSK for the key period of the message's T payload (after [`parse`],
    /// [`kdf::key_period_no`] on [`Timestamp::ntp_seconds`] picks it when several are held).
    pub rsk: &'a Rsk,
    /// KMSs whose users may sign (looked up by the message's IDRkmsi).
    pub trusted: &'a [TrustedKms<'a>],
    /// The initiator's URI as known from call signalling, if any (see the module docs).
    pub initiator_uri: Option<&'a str>,
}

/// The result of a successful [`open_i_message`].
#[derive(Debug)]
pub struct OpenedMessage {
    /// The transported 16-octet key (GMK / PCK / CSK / MuSiK).
    pub key: SecretBytes<16>,
    /// HDR CSB ID as sent.
    pub csb_id: u32,
    /// Top 4 bits of the CSB ID.
    pub purpose_tag: u8,
    /// The purpose tag as a known [`KeyPurpose`], if it is one.
    pub purpose: Option<KeyPurpose>,
    /// The key's own identifier: the GMK-ID for a GMK, the CSB ID otherwise.
    pub key_id: u32,
    /// GMK only: GMK-ID = GUK-ID XOR User Salt(GMK, receiver URI) (TS 33.180 F.1.3).
    pub gmk_id: Option<u32>,
    /// GMK only: the GUK-ID, i.e. the CSB ID.
    pub guk_id: Option<u32>,
    pub rand: Vec<u8>,
    pub ntp_timestamp: u64,
    /// The receiver's key period number for T.
    pub key_period_no: u64,
    pub initiator_uri: String,
    pub initiator_uid: [u8; 32],
    pub initiator_kms_uri: String,
    /// Raw data of a key-parameter extension (type 7), if present.
    pub key_parameters: Option<Vec<u8>>,
    /// The parsed message.
    pub message: IMessage,
}

fn uri_id(role: u8, uri: &str) -> Payload {
    Payload::Id(IdPayload {
        role,
        id_type: codes::id_type::URI,
        data: uri.as_bytes().to_vec(),
    })
}

/// Builds and signs an I_MESSAGE: HDR, T, RAND, IDRi, IDRr, \[UIDs 8/9\], IDRkmsi, IDRkmsr,
/// \[SP\], SAKKE, \[SAKKE-to-self\], \[key parameters\], SIGN (RFC 6509 §2.1, TS 33.180 E.1.2).
/// HDR: version 1, data type 26, V = 0, PRF func 1 (HMAC-SHA-256).
pub fn build_i_message(p: &BuildParams<'_>, rng: &dyn SecureRandom) -> Result<Vec<u8>> {
    let mut rand = [0u8; RAND_LEN];
    rng.fill(&mut rand).map_err(|_| CryptoError::Rng)?;

    let sed = sakke::encapsulate(p.responder_z, p.responder.uid, p.key)?;
    let mut payloads = vec![
        Payload::Timestamp(Timestamp {
            ts_type: codes::ts::NTP_UTC,
            value: p.ntp_timestamp,
        }),
        Payload::Rand(rand.to_vec()),
        uri_id(codes::role::INITIATOR, p.initiator.uri),
        uri_id(codes::role::RESPONDER, p.responder.uri),
    ];
    if p.uid_roles {
        for (role, uid) in [
            (codes::role::UID_INITIATOR, p.initiator.uid),
            (codes::role::UID_RESPONDER, p.responder.uid),
        ] {
            payloads.push(Payload::Id(IdPayload {
                role,
                id_type: codes::id_type::URI,
                data: uid.to_vec(),
            }));
        }
    }
    payloads.push(uri_id(codes::role::KMS_INITIATOR, p.initiator.kms_uri));
    payloads.push(uri_id(codes::role::KMS_RESPONDER, p.responder.kms_uri));
    if let Some(sp) = &p.security_policy {
        payloads.push(Payload::SecurityPolicy(sp.clone()));
    }
    payloads.push(Payload::Sakke(SakkePayload {
        params: codes::SAKKE_PARAMS_1,
        id_scheme: codes::ID_SCHEME_3GPP_UID,
        data: sed,
    }));
    if let Some(self_z) = p.sakke_to_self {
        let data = sakke::encapsulate(self_z, p.initiator.uid, p.key)?;
        let inner = SakkePayload {
            params: codes::SAKKE_PARAMS_1,
            id_scheme: codes::ID_SCHEME_3GPP_UID,
            data,
        };
        payloads.push(Payload::GeneralExt(GeneralExt::new_sakke_to_self(&inner)?));
    }
    if let Some(kp) = p.key_parameters {
        payloads.push(Payload::GeneralExt(GeneralExt {
            ext_type: codes::EXT_KEY_PARAMETERS,
            data: kp.to_vec(),
        }));
    }

    let mut msg = IMessage {
        header: Header {
            version: codes::VERSION,
            data_type: codes::DATA_TYPE_SAKKE,
            v: false,
            prf_func: codes::PRF_HMAC_SHA_256,
            csb_id: p.csb_id,
            cs_map: p.cs_map.clone(),
        },
        payloads,
        sign: SignPayload {
            sig_type: codes::SIGN_TYPE_ECCSI,
            signature: vec![0; codes::ECCSI_SIGNATURE_LEN],
        },
    };
    // Encode with a placeholder of the right length: the SIGN header is then final, and
    // the signature covers everything up to and including it (RFC 3830 §5.2).
    let mut bytes = encode(&msg)?;
    let signed_len = bytes
        .len()
        .checked_sub(codes::ECCSI_SIGNATURE_LEN)
        .ok_or(CryptoError::Mikey("internal: short message"))?;
    let signature = p.signer.sign(&bytes[..signed_len], rng)?;
    bytes.truncate(signed_len);
    bytes.extend_from_slice(&signature);
    msg.sign.signature = signature.to_vec();
    debug_assert_eq!(encode(&msg).ok().as_deref(), Some(bytes.as_slice()));
    Ok(bytes)
}

fn utf8_id(id: &IdPayload, what: &'static str) -> Result<String> {
    match id.id_type {
        codes::id_type::URI | codes::id_type::NAI => {}
        _ => return Err(CryptoError::Mikey(what)),
    }
    String::from_utf8(id.data.clone()).map_err(|_| CryptoError::Mikey(what))
}

/// Parses, authenticates and decrypts an I_MESSAGE addressed to the receiver in `ctx`.
///
/// Steps: [`parse`] and [`IMessage::validate_structure`]; resolve the initiator's KMS from
/// IDRkmsi (absent: the receiver's own KMS) in `ctx.trusted`; resolve the initiator URI and
/// derive its UID (module docs); verify the ECCSI signature over the message through the
/// SIGN header with that UID and the KMS's KPAK; check any IDRr / role-9 UID / IDRkmsr
/// names this receiver; SAKKE-decapsulate with the receiver's UID, Z and RSK; recover the
/// GMK-ID for a GMK.
///
/// Errors: [`CryptoError::Mikey`] for framing and identity mismatches,
/// [`CryptoError::BadSignature`], [`CryptoError::DecapsulationFailed`].
pub fn open_i_message(bytes: &[u8], ctx: &ReceiverContext<'_>) -> Result<OpenedMessage> {
    use CryptoError::Mikey;
    let msg = parse(bytes)?;
    msg.validate_structure()?;
    let ts = *msg.timestamp().ok_or(Mikey("no T payload"))?;
    if ts.ts_type != codes::ts::NTP_UTC {
        return Err(Mikey("T payload is not NTP-UTC"));
    }

    // Initiator's KMS and key period.
    let kmsi = match msg.id(codes::role::KMS_INITIATOR) {
        Some(id) => utf8_id(id, "IDRkmsi is not a UTF-8 URI")?,
        None => ctx.kms_uri.to_owned(),
    };
    let kms = ctx
        .trusted
        .iter()
        .find(|k| k.kms_uri == kmsi)
        .ok_or(Mikey("initiator's KMS is not trusted"))?;
    let period_i = kdf::key_period_no(ts.ntp_seconds(), kms.key_period_s, kms.key_offset_s)
        .ok_or(Mikey("T lies outside the initiator KMS's key periods"))?;

    // Initiator identity: IDRi URI or the caller's URI, UID always derived.
    let idri = msg
        .id(codes::role::INITIATOR)
        .map(|id| utf8_id(id, "IDRi is not a UTF-8 URI"))
        .transpose()?;
    let initiator_uri = match (idri, ctx.initiator_uri) {
        (Some(sent), Some(known)) if sent != known => {
            return Err(Mikey("IDRi does not name the expected initiator"))
        }
        (Some(sent), _) => sent,
        (None, Some(known)) => known.to_owned(),
        (None, None) => {
            return Err(Mikey(
                "initiator unknown: no IDRi and no initiator URI from signalling",
            ))
        }
    };
    let initiator_uid = kdf::uid(
        &initiator_uri,
        &kmsi,
        kms.key_period_s,
        kms.key_offset_s,
        period_i,
    );
    if let Some(id) = msg.id(codes::role::UID_INITIATOR) {
        if id.data.as_slice() != initiator_uid.as_slice() {
            return Err(Mikey(
                "initiator UID (role 8) does not match the initiator URI",
            ));
        }
    }

    let signed = codec::signed_part(bytes, &msg.sign)?;
    eccsi::verify(kms.kpak, &initiator_uid, signed, &msg.sign.signature)?;

    // The receiver.
    let period_r = kdf::key_period_no(ts.ntp_seconds(), ctx.key_period_s, ctx.key_offset_s)
        .ok_or(Mikey("T lies outside the receiver KMS's key periods"))?;
    let receiver_uid = kdf::uid(
        ctx.uri,
        ctx.kms_uri,
        ctx.key_period_s,
        ctx.key_offset_s,
        period_r,
    );
    if let Some(id) = msg.id(codes::role::RESPONDER) {
        if id.data.as_slice() != ctx.uri.as_bytes() {
            return Err(Mikey("IDRr names another responder"));
        }
    }
    if let Some(id) = msg.id(codes::role::UID_RESPONDER) {
        if id.data.as_slice() != receiver_uid.as_slice() {
            return Err(Mikey("responder UID (role 9) is not this receiver's UID"));
        }
    }
    if let Some(id) = msg.id(codes::role::KMS_RESPONDER) {
        if id.data.as_slice() != ctx.kms_uri.as_bytes() {
            return Err(Mikey("IDRkmsr names another KMS"));
        }
    }
    let sakke_payload = msg.sakke().ok_or(Mikey("no SAKKE payload"))?;
    if sakke_payload.params != codes::SAKKE_PARAMS_1
        || sakke_payload.id_scheme != codes::ID_SCHEME_3GPP_UID
    {
        return Err(Mikey(
            "SAKKE payload is not parameter set 1 with the 3GPP UID scheme",
        ));
    }
    let key = sakke::decapsulate(ctx.z, &receiver_uid, ctx.rsk, &sakke_payload.data)?;

    let csb_id = msg.header.csb_id;
    let purpose_tag = msg.purpose_tag();
    let (gmk_id, guk_id) = if purpose_tag == KeyPurpose::Gmk as u8 {
        let gmk_id = kdf::gmk_id_from_guk_id(key.expose(), csb_id, ctx.uri);
        (Some(gmk_id), Some(csb_id))
    } else {
        (None, None)
    };
    Ok(OpenedMessage {
        key,
        csb_id,
        purpose_tag,
        purpose: KeyPurpose::of(csb_id),
        key_id: gmk_id.unwrap_or(csb_id),
        gmk_id,
        guk_id,
        rand: msg.rand().unwrap_or_default().to_vec(),
        ntp_timestamp: ts.value,
        key_period_no: period_r,
        initiator_uri,
        initiator_uid,
        initiator_kms_uri: kmsi,
        key_parameters: msg
            .extension(codes::EXT_KEY_PARAMETERS)
            .map(|e| e.data.clone()),
        message: msg,
    })
}
