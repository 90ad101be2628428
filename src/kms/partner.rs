//! Partner KMS certificates (TS 33.180 3.1 "external KMS", D.3.2.2 `Role="External"`, Annex
//! L.3.2: cross-signing is a manual exchange of certificates). A partner operator's KMS
//! certificate, imported from its `KmsCertificate` document, is replicated as an `External`
//! certificate and served to our clients in the KMS CertCache of the communities it is shared
//! with; only public parameters ever cross (`../spec/FEDERATION.md` §7).
//!
//! What this module owns (pure, times are parameters):
//! - [`PartnerCertificate::from_document`]: the import checks — parameter set 1, the hashed
//!   `UserIdFormat` 2, a key period, KPAK a P-256 point, Z on the SAKKE curve with order q, a
//!   validity that has not ended, not revoked, a KMS URI and domains that are not ours;
//! - [`check_import`]: against the partners already known — the same certificate again is a
//!   no-op; a certificate id never changes content; a partner's key change (a new certificate
//!   while one with other keys is live) only as an explicit rotation;
//! - [`partner_doc`]: the `KmsCertificate` a CertCache serves for it.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;

use super::community::{PARAMETER_SET, USER_ID_FORMAT_HASHED_UID};
use super::domains::{validate_domains, DomainError};
use super::names::{validate_kms_uri, NameError};
use super::xml::time::odt;
use super::xml::{CertRole, KmsCertificateDoc, KMS_CERTIFICATE_VERSION};
use crate::crypto::eccsi::Kpak;
use crate::crypto::sakke::SakkePublicKey;

/// Longest `CertUri` or `Issuer` accepted, in bytes.
pub const MAX_CERT_URI_BYTES: usize = 512;
/// Most partner certificates one cluster keeps (a bound on the replicated state).
pub const MAX_PARTNER_CERTIFICATES: usize = 256;

/// Why a partner certificate was refused. Messages are safe to show an operator.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PartnerError {
    #[error("the certificate's {0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("{0} is a KMS URI of this cluster: a partner certificate must be another KMS's")]
    OurKmsUri(String),
    #[error("the certificate lists {0}, a domain this cluster serves")]
    OurDomain(String),
    #[error("certificate {0} is already imported with other content")]
    ChangedContent(String),
    #[error(
        "partner {0} already has a live certificate with other keys: import the new one as a \
         rotation (--rotate)"
    )]
    RotationRequired(String),
    #[error("a rotation needs a live certificate of partner {0} to rotate from")]
    NothingToRotate(String),
    #[error("unknown partner certificate {0}")]
    Unknown(String),
    #[error("partner certificate {0} is already revoked")]
    AlreadyRevoked(String),
    #[error("at most {MAX_PARTNER_CERTIFICATES} partner certificates are kept")]
    TooMany,
}

/// An imported partner KMS certificate: everything in it is public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerCertificate {
    /// The record's key: the document's `CertUri`, or, when it has none,
    /// `<KmsUri>#<first 16 hex digits of SHA-256(PubAuthKey ‖ PubEncKey)>`.
    pub id: String,
    /// `CertUri` as the partner wrote it, if any.
    pub cert_uri: Option<String>,
    pub kms_uri: String,
    pub version: String,
    pub is_security_gateway: Option<bool>,
    pub issuer: Option<String>,
    pub valid_from_unix: u64,
    pub valid_to_unix: u64,
    /// Set by a revocation here (an imported certificate is never already revoked).
    pub revoked: bool,
    pub user_key_period: u64,
    pub user_key_offset: u64,
    pub pub_enc_key: Vec<u8>,
    pub pub_auth_key: Vec<u8>,
    pub kms_domains: Vec<String>,
    /// Our communities (KMS URIs) whose CertCache serves it; empty: every community.
    pub communities: Vec<String>,
    /// The proposer's time of the import.
    pub imported_unix: u64,
}

/// What of this cluster a partner must not claim.
pub struct Ours<'a> {
    pub kms_uris: &'a [String],
    pub domains: &'a [String],
}

fn unix(t: Option<OffsetDateTime>) -> Option<u64> {
    t.and_then(|t| u64::try_from(t.unix_timestamp()).ok())
}

fn bounded(what: &'static str, v: &Option<String>) -> Result<(), PartnerError> {
    match v {
        Some(s) if s.is_empty() || s.len() > MAX_CERT_URI_BYTES => Err(PartnerError::Invalid(what)),
        Some(s) if s.chars().any(char::is_control) => Err(PartnerError::Invalid(what)),
        _ => Ok(()),
    }
}

impl PartnerCertificate {
    /// Checks a partner's `KmsCertificate` document at `now_unix` and makes the record to
    /// replicate, shared with `communities` (empty: all).
    pub fn from_document(
        doc: &KmsCertificateDoc,
        ours: &Ours<'_>,
        communities: Vec<String>,
        now_unix: u64,
    ) -> Result<Self, PartnerError> {
        validate_kms_uri(&doc.kms_uri)?;
        if ours
            .kms_uris
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&doc.kms_uri))
        {
            return Err(PartnerError::OurKmsUri(doc.kms_uri.clone()));
        }
        if doc.version.is_empty()
            || doc.version.len() > 16
            || doc
                .version
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(PartnerError::Invalid("Version is not a version"));
        }
        bounded(
            "CertUri is empty, too long or has control characters",
            &doc.cert_uri,
        )?;
        bounded(
            "Issuer is empty, too long or has control characters",
            &doc.issuer,
        )?;
        if doc
            .parameter_set
            .is_some_and(|p| p != u64::from(PARAMETER_SET))
        {
            return Err(PartnerError::Invalid(
                "ParameterSet is not 1 (RFC 6509 Appendix A)",
            ));
        }
        if doc.user_id_format != USER_ID_FORMAT_HASHED_UID {
            return Err(PartnerError::Invalid(
                "UserIdFormat is not 2 (the TS 33.180 F.2.1 hashed UID)",
            ));
        }
        if doc.user_key_period == 0 {
            return Err(PartnerError::Invalid("UserKeyPeriod is 0"));
        }
        Kpak::from_bytes(&doc.pub_auth_key)
            .map_err(|_| PartnerError::Invalid("PubAuthKey is not a P-256 point"))?;
        SakkePublicKey::from_bytes(&doc.pub_enc_key).map_err(|_| {
            PartnerError::Invalid("PubEncKey is not a point of order q on the SAKKE curve")
        })?;
        if doc.revoked == Some(true) {
            return Err(PartnerError::Invalid("Revoked is true"));
        }
        let valid_from_unix = match doc.valid_from {
            None => 0,
            Some(_) => {
                unix(doc.valid_from).ok_or(PartnerError::Invalid("ValidFrom precedes 1970"))?
            }
        };
        let valid_to_unix = unix(doc.valid_to).ok_or(PartnerError::Invalid(
            "ValidTo is missing or precedes 1970 (a partner certificate must end)",
        ))?;
        if valid_to_unix <= valid_from_unix {
            return Err(PartnerError::Invalid("ValidTo is not after ValidFrom"));
        }
        if valid_to_unix <= now_unix {
            return Err(PartnerError::Invalid("validity has ended"));
        }
        let mut kms_domains: Vec<String> = doc
            .kms_domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect();
        kms_domains.sort();
        kms_domains.dedup();
        validate_domains(&kms_domains)?;
        if let Some(d) = kms_domains
            .iter()
            .find(|d| ours.domains.iter().any(|o| o.eq_ignore_ascii_case(d)))
        {
            return Err(PartnerError::OurDomain(d.clone()));
        }
        for c in &communities {
            validate_kms_uri(c)?;
        }
        let id = certificate_id(doc);
        Ok(Self {
            id,
            cert_uri: doc.cert_uri.clone(),
            kms_uri: doc.kms_uri.clone(),
            version: doc.version.clone(),
            is_security_gateway: doc.is_security_gateway,
            issuer: doc.issuer.clone(),
            valid_from_unix,
            valid_to_unix,
            revoked: false,
            user_key_period: doc.user_key_period,
            user_key_offset: doc.user_key_offset,
            pub_enc_key: doc.pub_enc_key.clone(),
            pub_auth_key: doc.pub_auth_key.clone(),
            kms_domains,
            communities,
            imported_unix: now_unix,
        })
    }

    /// Valid at `now`: not revoked and inside [ValidFrom, ValidTo).
    pub fn is_valid_at(&self, now_unix: u64) -> bool {
        !self.revoked && self.valid_from_unix <= now_unix && now_unix < self.valid_to_unix
    }

    /// Served in the CertCache of `community` at `now`: shared with it, and not yet past its
    /// ValidTo (a revoked one stays listed, `Revoked=true`, until then).
    pub fn served_to(&self, community: &str, now_unix: u64) -> bool {
        (self.communities.is_empty() || self.communities.iter().any(|c| c == community))
            && now_unix < self.valid_to_unix
    }

    fn same_keys(&self, other: &Self) -> bool {
        self.pub_auth_key == other.pub_auth_key && self.pub_enc_key == other.pub_enc_key
    }

    /// Equal in everything the partner wrote (not our own bookkeeping: import time, sharing).
    fn same_content(&self, other: &Self) -> bool {
        Self {
            imported_unix: 0,
            communities: Vec::new(),
            revoked: false,
            ..self.clone()
        } == Self {
            imported_unix: 0,
            communities: Vec::new(),
            revoked: false,
            ..other.clone()
        }
    }
}

/// The record id of a partner's certificate document: its `CertUri`, or, when it has none,
/// `<KmsUri>#<first 16 hex digits of SHA-256(PubAuthKey ‖ PubEncKey)>`.
pub fn certificate_id(doc: &KmsCertificateDoc) -> String {
    match &doc.cert_uri {
        Some(u) => u.clone(),
        None => {
            let mut keys = doc.pub_auth_key.clone();
            keys.extend_from_slice(&doc.pub_enc_key);
            let digest = ring::digest::digest(&ring::digest::SHA256, &keys);
            format!("{}#{}", doc.kms_uri, hex::encode(&digest.as_ref()[..8]))
        }
    }
}

/// What KM-E's refresh does about one certificate a partner offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconcile {
    /// New or changed: staged until an operator approves it.
    Stage(Box<PartnerCertificate>),
    /// The partner revoked a certificate we hold: revoke it here too.
    Revoke(String),
}

/// Decides what a refresh does with the certificates a partner offers now: `offered` are the
/// valid ones (already checked by [`PartnerCertificate::from_document`] for this partner),
/// `revoked_ids` the ids it reports revoked. Known and identical, or already pending
/// identical: nothing. A known id with other content is refused (a certificate never changes
/// under its id) and reported in the second list.
pub fn reconcile(
    known: &[PartnerCertificate],
    pending: &[PartnerCertificate],
    offered: &[PartnerCertificate],
    revoked_ids: &[String],
) -> (Vec<Reconcile>, Vec<PartnerError>) {
    let mut actions = Vec::new();
    let mut refused = Vec::new();
    for id in revoked_ids {
        if known.iter().any(|k| &k.id == id && !k.revoked) {
            actions.push(Reconcile::Revoke(id.clone()));
        }
    }
    for cert in offered {
        match known.iter().find(|k| k.id == cert.id) {
            Some(k) if k.same_content(cert) => {}
            Some(_) => refused.push(PartnerError::ChangedContent(cert.id.clone())),
            None => {
                let staged = pending
                    .iter()
                    .any(|p| p.id == cert.id && p.same_content(cert));
                if !staged {
                    actions.push(Reconcile::Stage(Box::new(cert.clone())));
                }
            }
        }
    }
    (actions, refused)
}

/// An operator's approval of a staged certificate: an import that may change the partner's
/// keys (the approval is the explicit rotation).
pub fn check_approval(
    known: &[PartnerCertificate],
    cert: &PartnerCertificate,
    now_unix: u64,
) -> Result<ImportPlan, PartnerError> {
    match check_import(known, cert, true, now_unix) {
        Err(PartnerError::NothingToRotate(_)) => check_import(known, cert, false, now_unix),
        other => other,
    }
}

/// What an import does, decided against the partners already known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportPlan {
    /// A new certificate (a first one of its partner, or a rotation).
    Add,
    /// The same certificate is already imported: only its sharing is (re)set.
    Reshare,
}

/// Checks `new` against `existing` (every partner certificate) at `now_unix`. Deterministic:
/// the state machine runs it again when it applies the import.
pub fn check_import(
    existing: &[PartnerCertificate],
    new: &PartnerCertificate,
    rotate: bool,
    now_unix: u64,
) -> Result<ImportPlan, PartnerError> {
    if let Some(old) = existing.iter().find(|c| c.id == new.id) {
        if !old.same_content(new) {
            return Err(PartnerError::ChangedContent(new.id.clone()));
        }
        if old.revoked {
            return Err(PartnerError::AlreadyRevoked(new.id.clone()));
        }
        return Ok(ImportPlan::Reshare);
    }
    if existing.len() >= MAX_PARTNER_CERTIFICATES {
        return Err(PartnerError::TooMany);
    }
    let live_other_keys = existing
        .iter()
        .filter(|c| c.kms_uri.eq_ignore_ascii_case(&new.kms_uri) && c.is_valid_at(now_unix))
        .any(|c| !c.same_keys(new));
    let live_any = existing
        .iter()
        .any(|c| c.kms_uri.eq_ignore_ascii_case(&new.kms_uri) && c.is_valid_at(now_unix));
    match (live_other_keys, rotate) {
        (true, false) => Err(PartnerError::RotationRequired(new.kms_uri.clone())),
        (false, true) if !live_any => Err(PartnerError::NothingToRotate(new.kms_uri.clone())),
        _ => Ok(ImportPlan::Add),
    }
}

/// The `KmsCertificate` (`Role="External"`) a CertCache serves for `cert`.
pub fn partner_doc(cert: &PartnerCertificate) -> KmsCertificateDoc {
    KmsCertificateDoc {
        version: if cert.version.is_empty() {
            KMS_CERTIFICATE_VERSION.to_owned()
        } else {
            cert.version.clone()
        },
        role: CertRole::External,
        is_security_gateway: cert.is_security_gateway,
        cert_uri: cert.cert_uri.clone(),
        kms_uri: cert.kms_uri.clone(),
        issuer: cert.issuer.clone(),
        valid_from: odt(cert.valid_from_unix),
        valid_to: odt(cert.valid_to_unix),
        revoked: Some(cert.revoked),
        user_id_format: USER_ID_FORMAT_HASHED_UID.to_owned(),
        user_key_period: cert.user_key_period,
        user_key_offset: cert.user_key_offset,
        pub_enc_key: cert.pub_enc_key.clone(),
        pub_auth_key: cert.pub_auth_key.clone(),
        parameter_set: Some(u64::from(PARAMETER_SET)),
        kms_domains: cert.kms_domains.clone(),
    }
}

pub mod rotation;

#[cfg(test)]
mod tests;
