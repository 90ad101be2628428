//! The group management server's side of the TS 33.180 group key flow (E.1, E.6), and a
//! member's: a GMK (16 octets, with a GMK-ID under the GMK purpose tag) is sent to each member
//! in a MIKEY-SAKKE I_MESSAGE (RFC 6509) encrypted to the member's URI and signed with the
//! GMS's own ECCSI key set from the KMS; the CSB ID is the member's GUK-ID (F.1.3) and the
//! CS ID map carries GMK-ID ‖ GUK-ID. Pure functions over the TS 33.180 documents the parties
//! fetched (`sealkm client gms|…  imessage`, the tests), and KM-E's transfer of federated group
//! keys between partner KMSs (each KMS's own federation identity, [`km_e_identity`]).

use ring::rand::SecureRandom;

use crate::crypto::eccsi::{EccsiSigner, Kpak, Pvt, Ssk};
use crate::crypto::kdf;
use crate::crypto::mikey::{
    self, BuildParams, CsIdMap, OpenedMessage, Party, ReceiverContext, TrustedKms,
};
use crate::crypto::sakke::{Rsk, SakkePublicKey};
use crate::crypto::secret::SecretBytes;
use crate::crypto::CryptoError;
use crate::kms::xml::certificate::KmsCertificateDoc;
use crate::kms::xml::keyset::KmsKeySetDoc;

/// Why a GMK I_MESSAGE could not be built: a time outside the key periods, key material that
/// does not decode, or a failed RNG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GmkError {
    #[error("key material does not validate: {0}")]
    Invalid(String),
}

impl From<CryptoError> for GmkError {
    fn from(e: CryptoError) -> Self {
        GmkError::Invalid(e.to_string())
    }
}

/// The identity a KMS uses for KM-E group key transfers (our extension): SAKKE-encrypted to
/// it under its domain's Z, signed with its key set under its domain's KPAK.
pub fn km_e_identity(kms_uri: &str) -> String {
    format!("https://{kms_uri}/km-e")
}

/// The UID of `uri` in the key period that holds `ntp_seconds` under `cert` (F.2.1).
fn uid_at(cert: &KmsCertificateDoc, uri: &str, ntp_seconds: u64) -> Result<[u8; 32], GmkError> {
    let period = kdf::key_period_no(ntp_seconds, cert.user_key_period, cert.user_key_offset)
        .ok_or_else(|| GmkError::Invalid("time before the community's key periods".into()))?;
    Ok(kdf::uid(
        uri,
        &cert.kms_uri,
        cert.user_key_period,
        cert.user_key_offset,
        period,
    ))
}

/// The KMS certificate of `member_uri`'s domain among `own` (the sender's KmsInit
/// certificate) and `cache` (its KmsCertCache), by the `KmsDomainList`s of the certificates
/// valid at `now_unix` (exact domain, then longest parent domain: `kms::domains`). A URI no
/// listed domain covers is taken to be of the sender's own domain.
pub fn member_certificate<'a>(
    own: &'a KmsCertificateDoc,
    cache: &'a [KmsCertificateDoc],
    member_uri: &str,
    now_unix: u64,
) -> &'a KmsCertificateDoc {
    let valid = |c: &KmsCertificateDoc| {
        c.revoked != Some(true)
            && c.valid_from
                .is_none_or(|t| t.unix_timestamp() <= now_unix as i64)
            && c.valid_to
                .is_none_or(|t| (now_unix as i64) < t.unix_timestamp())
    };
    let candidates: Vec<&KmsCertificateDoc> = std::iter::once(own)
        .chain(cache.iter().filter(|c| valid(c)))
        .collect();
    crate::kms::domains::lookup(
        member_uri,
        candidates
            .iter()
            .map(|c| (c.kms_uri.as_str(), c.kms_domains.as_slice())),
    )
    .and_then(|(kms_uri, _, _)| candidates.iter().find(|c| c.kms_uri == kms_uri))
    .copied()
    .unwrap_or(own)
}

/// A fresh GMK and its GMK-ID (GMK purpose tag over 28 random bits).
pub fn generate_gmk(rng: &dyn SecureRandom) -> Result<(SecretBytes<16>, u32), GmkError> {
    let mut k = [0u8; 16];
    let mut id = [0u8; 4];
    rng.fill(&mut k)
        .and_then(|_| rng.fill(&mut id))
        .map_err(|_| GmkError::Invalid("RNG failure".into()))?;
    let gmk = SecretBytes::new(k);
    zeroize::Zeroize::zeroize(&mut k);
    Ok((gmk, kdf::KeyPurpose::Gmk.key_id(u32::from_be_bytes(id))))
}

/// Builds the I_MESSAGE carrying `gmk` (`gmk_id`) from the GMS (`sender`, its key set) to
/// `member_uri`, timestamped `ntp_timestamp` (NTP 64-bit; it must fall in the sender's key
/// period), signed with the sender's SSK.
pub fn build_gmk_message(
    cert: &KmsCertificateDoc,
    sender: &KmsKeySetDoc,
    member_uri: &str,
    gmk: &SecretBytes<16>,
    gmk_id: u32,
    ntp_timestamp: u64,
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, GmkError> {
    build_gmk_message_to(
        cert,
        cert,
        sender,
        member_uri,
        gmk,
        gmk_id,
        ntp_timestamp,
        rng,
    )
}

/// [`build_gmk_message`] to a member of any domain (TS 33.180 5.2.7.2, Annex E): the sender
/// signs under its own KMS certificate `cert` and key set; the GMK is encrypted to the
/// member's UID under the **member domain's** certificate `member_cert` (its KMS URI as
/// IDRkmsr, its key period parameters, its Z). For a member of the sender's own domain both
/// certificates are the same.
#[allow(clippy::too_many_arguments)]
pub fn build_gmk_message_to(
    cert: &KmsCertificateDoc,
    member_cert: &KmsCertificateDoc,
    sender: &KmsKeySetDoc,
    member_uri: &str,
    gmk: &SecretBytes<16>,
    gmk_id: u32,
    ntp_timestamp: u64,
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, GmkError> {
    let ntp_s = kdf::ntp64_seconds(ntp_timestamp);
    let sender_uid = uid_at(cert, &sender.user_uri, ntp_s)?;
    if sender_uid != sender.user_id {
        return Err(GmkError::Invalid(
            "the timestamp is outside the sender key set's key period".into(),
        ));
    }
    let member_uid = uid_at(member_cert, member_uri, ntp_s)?;
    let kpak = Kpak::from_bytes(&cert.pub_auth_key)?;
    let ssk = Ssk::from_bytes(sender.user_signing_key_ssk.expose())?;
    let pvt = Pvt::from_bytes(&sender.user_pub_token_pvt)?;
    let signer = EccsiSigner::new(&kpak, &sender_uid, &ssk, &pvt)?;
    let z = SakkePublicKey::from_bytes(&member_cert.pub_enc_key)?;
    let guk_id = kdf::guk_id(gmk.expose(), gmk_id, member_uri);
    let mut spi = gmk_id.to_be_bytes().to_vec();
    spi.extend_from_slice(&guk_id.to_be_bytes());
    let params = BuildParams {
        signer: &signer,
        initiator: Party {
            uri: &sender.user_uri,
            uid: &sender_uid,
            kms_uri: &cert.kms_uri,
        },
        responder: Party {
            uri: member_uri,
            uid: &member_uid,
            kms_uri: &member_cert.kms_uri,
        },
        responder_z: &z,
        key: gmk,
        csb_id: guk_id,
        cs_map: CsIdMap::generic_single(4, 0, spi),
        ntp_timestamp,
        security_policy: None,
        sakke_to_self: None,
        key_parameters: None,
        uid_roles: false,
    };
    Ok(mikey::build_i_message(&params, rng)?)
}

/// Why a GMK I_MESSAGE could not be opened: the receiver's own key material, or the message
/// (and then which check refused it), so a member is never told to fix a key set that is fine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenGmkError {
    /// The KMS certificate (KPAK, Z) or the receiver's key set (RSK) cannot be used; the
    /// message was not looked at.
    #[error("key material does not validate: {0}")]
    KeyMaterial(CryptoError),
    /// The message is malformed, or names another initiator, receiver, KMS or key period
    /// than the receiver expects.
    #[error("the I_MESSAGE is refused: {0}")]
    Message(CryptoError),
    /// The initiator's ECCSI signature does not verify under the KMS's KPAK: another sender
    /// than the one expected, or an altered message.
    #[error("the I_MESSAGE signature does not verify (another sender, or an altered message)")]
    Signature,
    /// SAKKE decapsulation failed: the message is not encrypted to this receiver's identity
    /// in this key period.
    #[error("the I_MESSAGE is not encrypted to this receiver's identity and key period")]
    NotForThisReceiver,
}

impl From<CryptoError> for OpenGmkError {
    /// Classifies a failure of [`mikey::open_i_message`] (the key material was parsed before).
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::BadSignature => OpenGmkError::Signature,
            CryptoError::DecapsulationFailed => OpenGmkError::NotForThisReceiver,
            other => OpenGmkError::Message(other),
        }
    }
}

/// Opens an I_MESSAGE as the member `receiver` (its key set and KMS certificate): verifies the
/// initiator's ECCSI signature under the certificate's KPAK and decrypts the GMK with the
/// member's RSK. `expected_initiator`: the GMS URI from signalling, if known.
pub fn open_gmk_message(
    cert: &KmsCertificateDoc,
    receiver: &KmsKeySetDoc,
    bytes: &[u8],
    expected_initiator: Option<&str>,
) -> Result<OpenedMessage, OpenGmkError> {
    open_gmk_message_from(
        cert,
        std::slice::from_ref(cert),
        receiver,
        bytes,
        expected_initiator,
    )
}

/// [`open_gmk_message`] from a sender of any domain: `senders` are the KMS certificates whose
/// users may sign (our own and the `External` ones of our CertCache); the message's IDRkmsi
/// picks the KPAK that verifies it (TS 33.180 Annex E: the receiver verifies with the sender
/// domain's KPAK). Revoked certificates are not trusted.
pub fn open_gmk_message_from(
    cert: &KmsCertificateDoc,
    senders: &[KmsCertificateDoc],
    receiver: &KmsKeySetDoc,
    bytes: &[u8],
    expected_initiator: Option<&str>,
) -> Result<OpenedMessage, OpenGmkError> {
    let z = SakkePublicKey::from_bytes(&cert.pub_enc_key).map_err(OpenGmkError::KeyMaterial)?;
    let rsk =
        Rsk::from_bytes(receiver.user_decrypt_key.expose()).map_err(OpenGmkError::KeyMaterial)?;
    let senders: Vec<&KmsCertificateDoc> =
        senders.iter().filter(|c| c.revoked != Some(true)).collect();
    let kpaks = senders
        .iter()
        .map(|c| Kpak::from_bytes(&c.pub_auth_key))
        .collect::<Result<Vec<_>, _>>()
        .map_err(OpenGmkError::KeyMaterial)?;
    let trusted: Vec<TrustedKms> = senders
        .iter()
        .zip(&kpaks)
        .map(|(c, kpak)| TrustedKms {
            kms_uri: &c.kms_uri,
            key_period_s: c.user_key_period,
            key_offset_s: c.user_key_offset,
            kpak,
        })
        .collect();
    let ctx = ReceiverContext {
        uri: &receiver.user_uri,
        kms_uri: &cert.kms_uri,
        key_period_s: cert.user_key_period,
        key_offset_s: cert.user_key_offset,
        z: &z,
        rsk: &rsk,
        trusted: &trusted,
        initiator_uri: expected_initiator,
    };
    Ok(mikey::open_i_message(bytes, &ctx)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_failures_are_classified_by_cause() {
        assert_eq!(
            OpenGmkError::from(CryptoError::BadSignature),
            OpenGmkError::Signature
        );
        assert_eq!(
            OpenGmkError::from(CryptoError::DecapsulationFailed),
            OpenGmkError::NotForThisReceiver
        );
        assert_eq!(
            OpenGmkError::from(CryptoError::Mikey("no T payload")),
            OpenGmkError::Message(CryptoError::Mikey("no T payload"))
        );
        for e in [
            OpenGmkError::Signature,
            OpenGmkError::NotForThisReceiver,
            OpenGmkError::Message(CryptoError::Mikey("no T payload")),
        ] {
            assert!(!e.to_string().contains("key material"), "{e}");
        }
    }
}
