//! Communities and their KMS certificates (TS 33.180 D.3.2.2): creation, rotation, revocation,
//! and which certificate issues key sets at a given time.
//!
//! Pure: times are parameters, randomness arrives as already-generated master secrets.
//! A rotation adds a certificate with fresh master secrets; the previous one stays valid until
//! its own `ValidTo`, so clients that hold it keep working, while new key sets come from the
//! newest certificate that is valid now. Revocation marks a certificate revoked: it issues
//! nothing more and is reported with `Revoked=true` in the certificate cache.

use serde::{Deserialize, Serialize};

use super::period::PeriodParams;
use super::xml::time::odt;
use super::xml::{CertRole, KmsCertificateDoc, KMS_CERTIFICATE_VERSION};
use super::KmsError;

/// `UserIdFormat` 2: the TS 33.180 F.2.1 hashed UID.
pub const USER_ID_FORMAT_HASHED_UID: &str = "2";
/// SAKKE parameter set 1 (RFC 6509 Appendix A), the only one defined.
pub const PARAMETER_SET: u8 = 1;

/// One KMS certificate of a community: public keys, validity, and the master secrets sealed
/// under the barrier key (never in clear outside the unsealed [`super::master::MasterSecrets`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// Serial within the community, starting at 1.
    pub serial: u32,
    /// `CertUri`: `<kms_uri>/cert/<serial>`.
    pub cert_uri: String,
    pub valid_from_unix: u64,
    pub valid_to_unix: u64,
    pub revoked: bool,
    /// `PubEncKey`: SAKKE Z_T (257 octets).
    pub pub_enc_key: Vec<u8>,
    /// `PubAuthKey`: ECCSI KPAK (65 octets).
    pub pub_auth_key: Vec<u8>,
    /// KSAK ‖ z_T sealed with AES-256-GCM under the barrier key (AAD = [`master_aad`]).
    pub sealed_master: Vec<u8>,
}

impl core::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Certificate")
            .field("cert_uri", &self.cert_uri)
            .field("valid_from_unix", &self.valid_from_unix)
            .field("valid_to_unix", &self.valid_to_unix)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Valid for issuing at `now`: not revoked and inside [ValidFrom, ValidTo).
    pub fn is_valid_at(&self, now_unix: u64) -> bool {
        !self.revoked && self.valid_from_unix <= now_unix && now_unix < self.valid_to_unix
    }
}

/// The additional authenticated data binding a sealed master blob to its certificate.
pub fn master_aad(cert_uri: &str) -> Vec<u8> {
    format!("sealkm/v1/master/{cert_uri}").into_bytes()
}

/// A community: one KMS identity and its certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Community {
    /// Bare KMS URI, as used in the UID (F.2.1 P2) and in `KmsUri`.
    pub kms_uri: String,
    pub period: PeriodParams,
    /// Oldest first.
    pub certificates: Vec<Certificate>,
    /// `KmsCertCache@CacheNum`: bumped by every certificate change, so a client that sends the
    /// number it holds learns whether its cache is current.
    pub cache_num: u64,
}

impl Community {
    pub fn new(kms_uri: String, period: PeriodParams) -> Self {
        Self {
            kms_uri,
            period,
            certificates: Vec::new(),
            cache_num: 0,
        }
    }

    /// The `CertUri` the next certificate will get.
    pub fn next_cert_uri(&self) -> (u32, String) {
        let serial = self
            .certificates
            .last()
            .map_or(1, |c| c.serial.saturating_add(1));
        (serial, format!("{}/cert/{serial}", self.kms_uri))
    }

    /// The certificate that issues key sets at `now`: the newest valid one.
    pub fn issuing_certificate(&self, now_unix: u64) -> Result<&Certificate, KmsError> {
        self.certificates
            .iter()
            .rev()
            .find(|c| c.is_valid_at(now_unix))
            .ok_or_else(|| KmsError::NoValidCertificate(self.kms_uri.clone()))
    }

    /// Whether some certificate issues at `now` or, unrevoked, will start issuing later: a
    /// certificate another node made by a clock ahead of this one's. Such a community needs no
    /// new certificate; this node just cannot issue from it until its clock gets there.
    pub fn has_issuing_or_future_certificate(&self, now_unix: u64) -> bool {
        self.certificates
            .iter()
            .any(|c| c.is_valid_at(now_unix) || (!c.revoked && now_unix < c.valid_from_unix))
    }

    /// Certificates a client may still need: not expired at `now` (revoked ones included, so
    /// that clients learn of the revocation).
    pub fn live_certificates(&self, now_unix: u64) -> impl Iterator<Item = &Certificate> {
        self.certificates
            .iter()
            .filter(move |c| now_unix < c.valid_to_unix)
    }

    pub fn certificate(&self, cert_uri: &str) -> Option<&Certificate> {
        self.certificates.iter().find(|c| c.cert_uri == cert_uri)
    }

    pub fn certificate_mut(&mut self, cert_uri: &str) -> Option<&mut Certificate> {
        self.certificates
            .iter_mut()
            .find(|c| c.cert_uri == cert_uri)
    }
}

/// The `KmsCertificate` (`Role="Root"`) of one of our certificates, listing `domains` in its
/// `KmsDomainList` (sent in `KmsInit` and `KmsCertCache`, and exported to partners).
pub fn root_certificate_doc(
    community: &Community,
    cert: &Certificate,
    domains: &[String],
) -> KmsCertificateDoc {
    KmsCertificateDoc {
        version: KMS_CERTIFICATE_VERSION.to_owned(),
        role: CertRole::Root,
        is_security_gateway: None,
        cert_uri: Some(cert.cert_uri.clone()),
        kms_uri: community.kms_uri.clone(),
        issuer: Some(community.kms_uri.clone()),
        valid_from: odt(cert.valid_from_unix),
        valid_to: odt(cert.valid_to_unix),
        revoked: Some(cert.revoked),
        user_id_format: USER_ID_FORMAT_HASHED_UID.to_owned(),
        user_key_period: community.period.period_s,
        user_key_offset: community.period.offset_s,
        pub_enc_key: cert.pub_enc_key.clone(),
        pub_auth_key: cert.pub_auth_key.clone(),
        parameter_set: Some(u64::from(PARAMETER_SET)),
        kms_domains: domains.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(serial: u32, from: u64, to: u64, revoked: bool) -> Certificate {
        Certificate {
            serial,
            cert_uri: format!("kms.example.org/cert/{serial}"),
            valid_from_unix: from,
            valid_to_unix: to,
            revoked,
            pub_enc_key: vec![],
            pub_auth_key: vec![],
            sealed_master: vec![],
        }
    }

    #[test]
    fn a_certificate_made_by_a_clock_ahead_counts_as_there() {
        let mut c = Community::new(
            "kms.example.org".into(),
            PeriodParams {
                period_s: 10,
                offset_s: 0,
            },
        );
        assert!(!c.has_issuing_or_future_certificate(5));
        c.certificates.push(cert(1, 300, 1000, false));
        assert!(c.issuing_certificate(5).is_err());
        assert!(c.has_issuing_or_future_certificate(5));
        c.certificates[0].revoked = true;
        assert!(!c.has_issuing_or_future_certificate(5));
        c.certificates.push(cert(2, 0, 4, false));
        assert!(!c.has_issuing_or_future_certificate(5), "expired");
    }

    #[test]
    fn newest_valid_certificate_issues() {
        let mut c = Community::new(
            "kms.example.org".into(),
            PeriodParams {
                period_s: 10,
                offset_s: 0,
            },
        );
        assert!(matches!(
            c.issuing_certificate(5),
            Err(KmsError::NoValidCertificate(_))
        ));
        c.certificates.push(cert(1, 0, 100, false));
        c.certificates.push(cert(2, 50, 200, false));
        assert_eq!(c.issuing_certificate(10).unwrap().serial, 1);
        assert!(c.has_issuing_or_future_certificate(10));
        assert_eq!(c.issuing_certificate(60).unwrap().serial, 2);
        c.certificates[1].revoked = true;
        assert_eq!(c.issuing_certificate(60).unwrap().serial, 1);
        assert!(c.issuing_certificate(150).is_err());
        assert_eq!(c.live_certificates(150).count(), 1);
        assert_eq!(c.next_cert_uri(), (3, "kms.example.org/cert/3".to_string()));
    }

    #[test]
    fn debug_hides_sealed_master() {
        let mut c = cert(1, 0, 1, false);
        c.sealed_master = vec![0xEE; 8];
        assert!(!format!("{c:?}").contains("238"));
    }
}
