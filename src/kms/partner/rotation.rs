//! KM-E offers and rotations signed by a partner's previous key (our extension: the specs
//! define no KMS-to-KMS interface, `../spec/FEDERATION.md` §4; TS 33.180 Annex L.3.2 leaves
//! cross-signing to a manual exchange, which stays the default).
//!
//! A KMS that rotates (a new certificate with fresh KSAK and Z) vouches for the new
//! certificate with its old keys: its KM-E federation identity
//! ([`crate::kms::gmk_message::km_e_identity`]) signs, with ECCSI (RFC 6507 §5.2.1) under a
//! previous certificate that is still valid, the exact `KmsCertificate` document it offers,
//! bound to the previous certificate's id and the key period of the signing key set. A
//! partner whose policy is `rotation = "signed"` verifies that signature with the KPAK of the
//! previous certificate **it already approved** (valid, not revoked) and takes the new one
//! without an operator; any other case (no signature, a previous certificate it does not
//! trust, a bad signature) leaves the new certificate staged for approval, as before.
//!
//! Pure: times are parameters; what is signed and how it is checked lives here, the signing key
//! set comes from the node.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::PartnerCertificate;
use crate::crypto::eccsi::{self, EccsiSigner, Kpak, SIGNATURE_LEN};
use crate::crypto::kdf;
use crate::kms::gmk_message::km_e_identity;

/// What `GET /km-e/v1/certificates` answers (our extension).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// The offering KMS.
    pub kms_uri: String,
    /// Its live `KmsCertificate` documents (revoked ones included, `Revoked=true`).
    pub certificates: Vec<String>,
    /// Its newer certificates signed under older ones still valid (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotations: Vec<RotationSignature>,
}

/// A partner's certificate `certificate` vouched for by its KM-E federation identity's key set
/// of `period` under its earlier certificate `previous`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationSignature {
    /// The new certificate's id (its `CertUri`).
    pub certificate: String,
    /// The signing certificate's id.
    pub previous: String,
    /// The key period of the signing key set under `previous`.
    pub period: u64,
    /// The ECCSI signature over [`rotation_message`], hex.
    pub signature: String,
}

/// Why a signed rotation was not taken. The new certificate then waits for an operator.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RotationError {
    #[error("the rotation names {0} as its previous certificate, which is not approved here")]
    UnknownPrevious(String),
    #[error("the previous certificate {0} is revoked or not valid now")]
    PreviousNotValid(String),
    #[error("the previous certificate {0} is another KMS's")]
    OtherKms(String),
    #[error("the signing key period {0} is not the current one of the previous certificate (±1)")]
    StalePeriod(u64),
    #[error("the rotation signature does not verify")]
    BadSignature,
}

/// Domain separation of rotation signatures from every other ECCSI signature of the identity.
const CONTEXT: &[u8] = b"sealkm/km-e/v1/rotation\0";

/// The signed octets: a context, the previous certificate's id, a NUL, then the new
/// certificate's document exactly as offered.
pub fn rotation_message(previous: &str, document: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + previous.len() + 1 + document.len());
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(previous.as_bytes());
    m.push(0);
    m.extend_from_slice(document.as_bytes());
    m
}

/// Signs `document` (the new certificate `certificate`, as offered) for a rotation from
/// `previous`, with the KM-E identity's `signer` of `period` under `previous`.
pub fn sign_rotation(
    signer: &EccsiSigner,
    certificate: &str,
    previous: &str,
    period: u64,
    document: &str,
    rng: &dyn ring::rand::SecureRandom,
) -> Result<RotationSignature, crate::crypto::CryptoError> {
    let sig = signer.sign(&rotation_message(previous, document), rng)?;
    Ok(RotationSignature {
        certificate: certificate.to_owned(),
        previous: previous.to_owned(),
        period,
        signature: hex::encode(sig),
    })
}

/// Checks `rotation` of `document` (as offered) at `now_unix` against `known`, the partner
/// certificates approved here: the previous certificate must be one of them, of the same KMS,
/// valid and not revoked; the signing period the current one of it (±1, for clocks and
/// period boundaries); the signature by the KMS's KM-E identity under its KPAK.
pub fn verify_rotation(
    known: &[PartnerCertificate],
    kms_uri: &str,
    rotation: &RotationSignature,
    document: &str,
    now_unix: u64,
) -> Result<(), RotationError> {
    let prev = known
        .iter()
        .find(|c| c.id == rotation.previous)
        .ok_or_else(|| RotationError::UnknownPrevious(rotation.previous.clone()))?;
    if prev.kms_uri != kms_uri {
        return Err(RotationError::OtherKms(prev.id.clone()));
    }
    if prev.revoked || now_unix < prev.valid_from_unix || now_unix >= prev.valid_to_unix {
        return Err(RotationError::PreviousNotValid(prev.id.clone()));
    }
    let current = kdf::key_period_no(
        kdf::ntp_seconds_from_unix(now_unix),
        prev.user_key_period,
        prev.user_key_offset,
    )
    .ok_or(RotationError::StalePeriod(rotation.period))?;
    if rotation.period.abs_diff(current) > 1 {
        return Err(RotationError::StalePeriod(rotation.period));
    }
    let signature = hex::decode(&rotation.signature).map_err(|_| RotationError::BadSignature)?;
    if signature.len() != SIGNATURE_LEN {
        return Err(RotationError::BadSignature);
    }
    let kpak = Kpak::from_bytes(&prev.pub_auth_key).map_err(|_| RotationError::BadSignature)?;
    let uid = kdf::uid(
        &km_e_identity(kms_uri),
        kms_uri,
        prev.user_key_period,
        prev.user_key_offset,
        rotation.period,
    );
    eccsi::verify(
        &kpak,
        &uid,
        &rotation_message(&rotation.previous, document),
        &signature,
    )
    .map_err(|_| RotationError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::eccsi::EccsiMasterSecret;
    use ring::rand::SystemRandom;

    const KMS: &str = "kms.partner.test";
    const PERIOD_S: u64 = 86_400;
    const NOW: u64 = 1_800_000_000;

    fn prev(master: &EccsiMasterSecret) -> PartnerCertificate {
        PartnerCertificate {
            id: format!("{KMS}/cert/1"),
            cert_uri: Some(format!("{KMS}/cert/1")),
            kms_uri: KMS.into(),
            version: "1.1.0".into(),
            is_security_gateway: None,
            issuer: None,
            valid_from_unix: NOW - 1000,
            valid_to_unix: NOW + 1000,
            revoked: false,
            user_key_period: PERIOD_S,
            user_key_offset: 0,
            pub_enc_key: Vec::new(),
            pub_auth_key: master.kpak().to_bytes().to_vec(),
            kms_domains: Vec::new(),
            communities: Vec::new(),
            imported_unix: NOW - 1000,
        }
    }

    fn period_at(unix: u64) -> u64 {
        kdf::key_period_no(kdf::ntp_seconds_from_unix(unix), PERIOD_S, 0).unwrap()
    }

    /// The KM-E identity's signer of `period` under `master`.
    fn signer(master: &EccsiMasterSecret, period: u64) -> EccsiSigner {
        let uid = kdf::uid(&km_e_identity(KMS), KMS, PERIOD_S, 0, period);
        let (ssk, pvt) = eccsi::issue(master, &uid).unwrap();
        EccsiSigner::new(&master.kpak(), &uid, &ssk, &pvt).unwrap()
    }

    fn signed(master: &EccsiMasterSecret, period: u64, doc: &str) -> RotationSignature {
        let rng = SystemRandom::new();
        let p = format!("{KMS}/cert/1");
        sign_rotation(
            &signer(master, period),
            &format!("{KMS}/cert/2"),
            &p,
            period,
            doc,
            &rng,
        )
        .unwrap()
    }

    #[test]
    fn a_rotation_signed_under_an_approved_previous_certificate_verifies() {
        let rng = SystemRandom::new();
        let master = EccsiMasterSecret::generate(&rng).unwrap();
        let known = [prev(&master)];
        let r = signed(&master, period_at(NOW), "<doc/>");
        assert_eq!(verify_rotation(&known, KMS, &r, "<doc/>", NOW), Ok(()));
        // Serialised and read back, as KM-E carries it.
        let offer = Offer {
            kms_uri: KMS.into(),
            certificates: vec!["<doc/>".into()],
            rotations: vec![r.clone()],
        };
        let back: Offer = serde_json::from_str(&serde_json::to_string(&offer).unwrap()).unwrap();
        assert_eq!(back, offer);
    }

    #[test]
    fn every_other_case_is_refused() {
        let rng = SystemRandom::new();
        let master = EccsiMasterSecret::generate(&rng).unwrap();
        let other = EccsiMasterSecret::generate(&rng).unwrap();
        let known = vec![prev(&master)];
        let now_p = period_at(NOW);
        let good = signed(&master, now_p, "<doc/>");
        let verify = |k: &[PartnerCertificate], r: &RotationSignature, doc: &str| {
            verify_rotation(k, KMS, r, doc, NOW)
        };
        // Another document than the one signed.
        assert_eq!(
            verify(&known, &good, "<doc />"),
            Err(RotationError::BadSignature)
        );
        // Signed by another KMS master (a stranger's keys).
        let forged = signed(&other, now_p, "<doc/>");
        assert_eq!(
            verify(&known, &forged, "<doc/>"),
            Err(RotationError::BadSignature)
        );
        // A bit flipped, or not hex, or cut short.
        let mut flipped = good.clone();
        flipped.signature.replace_range(
            0..1,
            if &good.signature[..1] == "0" {
                "1"
            } else {
                "0"
            },
        );
        assert_eq!(
            verify(&known, &flipped, "<doc/>"),
            Err(RotationError::BadSignature)
        );
        let mut garbled = good.clone();
        garbled.signature = "zz".into();
        assert_eq!(
            verify(&known, &garbled, "<doc/>"),
            Err(RotationError::BadSignature)
        );
        garbled.signature = good.signature[..64].into();
        assert_eq!(
            verify(&known, &garbled, "<doc/>"),
            Err(RotationError::BadSignature)
        );
        // Claiming another previous certificate than the one that signed.
        let mut moved = good.clone();
        moved.previous = format!("{KMS}/cert/9");
        assert_eq!(
            verify(&known, &moved, "<doc/>"),
            Err(RotationError::UnknownPrevious(format!("{KMS}/cert/9")))
        );
        // The previous certificate revoked here, or no longer valid.
        let mut revoked = known.clone();
        revoked[0].revoked = true;
        assert!(matches!(
            verify(&revoked, &good, "<doc/>"),
            Err(RotationError::PreviousNotValid(_))
        ));
        let mut ended = known.clone();
        ended[0].valid_to_unix = NOW;
        assert!(matches!(
            verify(&ended, &good, "<doc/>"),
            Err(RotationError::PreviousNotValid(_))
        ));
        // Another KMS's certificate as the previous one.
        let mut foreign = known.clone();
        foreign[0].kms_uri = "kms.other.test".into();
        assert!(matches!(
            verify(&foreign, &good, "<doc/>"),
            Err(RotationError::OtherKms(_))
        ));
        // An old key period's key set (a leaked old key set cannot vouch for a new key).
        let stale = signed(&master, now_p - 2, "<doc/>");
        assert_eq!(
            verify(&known, &stale, "<doc/>"),
            Err(RotationError::StalePeriod(now_p - 2))
        );
        // The next period is accepted (a signer just past a period boundary).
        let next = signed(&master, now_p + 1, "<doc/>");
        assert_eq!(verify(&known, &next, "<doc/>"), Ok(()));
    }
}
