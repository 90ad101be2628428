//! `KmsCertificate` (TS 33.180 D.3.2.2): a KMS's public parameters, sent in `KmsInit` (our own
//! Root certificate) and in `KmsCertCache` (partner KMSs' certificates).
//!
//! Children in schema order: `CertUri?, KmsUri, Issuer?, ValidFrom?, ValidTo?, Revoked?,
//! UserIdFormat, UserKeyPeriod, UserKeyOffset, PubEncKey, PubAuthKey, ParameterSet?,
//! KmsDomainList?` (with one `KmsDomain` per domain). Attributes `Version`, `Role`
//! (`Root` | `External`) and optional `IsSecurityGateway`. A `SignedKmsCertificate` wrapper is
//! accepted on input; its `ds:Signature` is ignored (we do not sign certificates).

use time::OffsetDateTime;

use zeroize::Zeroizing;

use super::dom::{parse_bool, parse_document, Element};
use super::hexbin;
use super::writer::XmlWriter;
use super::{XmlError, KMS_NAMESPACE};

/// The children of a `KmsCertificate` in schema order (D.3.2.2).
const CHILD_ORDER: [&str; 13] = [
    "CertUri",
    "KmsUri",
    "Issuer",
    "ValidFrom",
    "ValidTo",
    "Revoked",
    "UserIdFormat",
    "UserKeyPeriod",
    "UserKeyOffset",
    "PubEncKey",
    "PubAuthKey",
    "ParameterSet",
    "KmsDomainList",
];

/// Largest standalone certificate document accepted (a certificate is about 1.5 KiB).
pub const MAX_CERTIFICATE_DOCUMENT_BYTES: usize = 16 * 1024;

/// Renders `doc` as a standalone XML document (what `sealkm federation export` writes and a
/// partner operator imports: the manual exchange of TS 33.180 Annex L.3.2).
pub fn render_certificate_document(doc: &KmsCertificateDoc) -> Result<Zeroizing<String>, XmlError> {
    let mut w = XmlWriter::new(2048);
    doc.render_as(&mut w, true)?;
    Ok(w.finish())
}

/// Reads a standalone `KmsCertificate` (or `SignedKmsCertificate`) document, strictly: the KMS
/// namespace on the root, no duplicate element, and the known children in schema order
/// (unknown elements are skipped, as everywhere in Annex D parsing). `Role` defaults to
/// `External`: a certificate that arrives as a file is always another KMS's.
pub fn parse_certificate_document(bytes: &[u8]) -> Result<KmsCertificateDoc, XmlError> {
    let root = parse_document(bytes, MAX_CERTIFICATE_DOCUMENT_BYTES)?.ok_or(XmlError::Empty)?;
    if !matches!(
        root.name.as_str(),
        "KmsCertificate" | "SignedKmsCertificate"
    ) {
        return Err(XmlError::UnexpectedRoot(
            root.name.chars().take(64).collect(),
        ));
    }
    if root.namespace.as_deref() != Some(KMS_NAMESPACE) {
        return Err(XmlError::WrongNamespace);
    }
    root.refuse_duplicates(&["KmsCertificate"])?;
    let cert = if root.name == "SignedKmsCertificate" {
        root.child("KmsCertificate")
            .ok_or(XmlError::MissingElement("KmsCertificate"))?
    } else {
        &root
    };
    let mut last = 0;
    for child in &cert.children {
        if let Some(at) = CHILD_ORDER.iter().position(|n| *n == child.name) {
            if at < last {
                return Err(XmlError::invalid(
                    "KmsCertificate",
                    "children are not in schema order",
                ));
            }
            last = at;
        }
    }
    KmsCertificateDoc::parse(cert, CertRole::External)
}

/// The `Version` attribute we render on our certificates (TS 33.180 Annex D samples and schema
/// copies agree on 1.1.0 for `KmsCertificate`).
pub const KMS_CERTIFICATE_VERSION: &str = "1.1.0";

/// The certificate's `Role` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertRole {
    /// The KMS's own certificate, as sent in `KmsInit`.
    Root,
    /// A certificate of another KMS, as sent in `KmsCertCache`.
    External,
}

impl CertRole {
    pub fn as_str(self) -> &'static str {
        match self {
            CertRole::Root => "Root",
            CertRole::External => "External",
        }
    }

    fn parse(text: &str) -> Result<Self, XmlError> {
        match text.trim() {
            "Root" => Ok(CertRole::Root),
            "External" => Ok(CertRole::External),
            _ => Err(XmlError::invalid("Role", "neither Root nor External")),
        }
    }
}

/// A `KmsCertificate`. Everything in it is public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsCertificateDoc {
    /// `Version` attribute: render [`KMS_CERTIFICATE_VERSION`]; a parsed foreign certificate
    /// keeps what it said, so a cache can pass it on unchanged.
    pub version: String,
    pub role: CertRole,
    pub is_security_gateway: Option<bool>,
    pub cert_uri: Option<String>,
    /// The bare KMS URI: the exact string every party hashes into UIDs (TS 33.180 F.2.1).
    pub kms_uri: String,
    pub issuer: Option<String>,
    pub valid_from: Option<OffsetDateTime>,
    pub valid_to: Option<OffsetDateTime>,
    pub revoked: Option<bool>,
    /// `UserIdFormat` (`xsd:string`): "2" for the TS 33.180 F.2.1 hashed UID.
    pub user_id_format: String,
    /// Key period length in seconds.
    pub user_key_period: u64,
    /// Key period offset in seconds.
    pub user_key_offset: u64,
    /// SAKKE KMS public key Z_T, `0x04 || x || y` (257 octets for parameter set 1).
    pub pub_enc_key: Vec<u8>,
    /// ECCSI KMS public authentication key KPAK, `0x04 || x || y` (65 octets).
    pub pub_auth_key: Vec<u8>,
    /// SAKKE parameter set (RFC 6509: 1).
    pub parameter_set: Option<u64>,
    /// `KmsDomainList/KmsDomain`; empty renders no list at all.
    pub kms_domains: Vec<String>,
}

impl KmsCertificateDoc {
    /// Writes `<KmsCertificate ...>` in schema order, omitting absent optional elements.
    pub(crate) fn render(&self, w: &mut XmlWriter) -> Result<(), XmlError> {
        self.render_as(w, false)
    }

    /// Renders the certificate; as a document's root it declares the KMS namespace.
    fn render_as(&self, w: &mut XmlWriter, root: bool) -> Result<(), XmlError> {
        if self.version.trim().is_empty() {
            return Err(XmlError::invalid("KmsCertificate/@Version", "empty value"));
        }
        let gateway = self
            .is_security_gateway
            .map(|g| if g { "true" } else { "false" });
        let mut attrs = Vec::with_capacity(4);
        if root {
            attrs.push(("xmlns", KMS_NAMESPACE));
        }
        attrs.extend([
            ("Version", self.version.as_str()),
            ("Role", self.role.as_str()),
        ]);
        if let Some(g) = gateway {
            attrs.push(("IsSecurityGateway", g));
        }
        w.open("KmsCertificate", &attrs)?;
        w.opt_text("CertUri", self.cert_uri.as_deref())?;
        w.text("KmsUri", &self.kms_uri)?;
        w.opt_text("Issuer", self.issuer.as_deref())?;
        w.opt_date_time("ValidFrom", self.valid_from)?;
        w.opt_date_time("ValidTo", self.valid_to)?;
        w.boolean("Revoked", self.revoked)?;
        w.text("UserIdFormat", &self.user_id_format)?;
        w.number("UserKeyPeriod", self.user_key_period)?;
        w.number("UserKeyOffset", self.user_key_offset)?;
        w.hex("PubEncKey", &self.pub_enc_key)?;
        w.hex("PubAuthKey", &self.pub_auth_key)?;
        if let Some(set) = self.parameter_set {
            w.number("ParameterSet", set)?;
        }
        if !self.kms_domains.is_empty() {
            w.open("KmsDomainList", &[])?;
            for domain in &self.kms_domains {
                w.text("KmsDomain", domain)?;
            }
            w.close("KmsDomainList");
        }
        w.close("KmsCertificate");
        Ok(())
    }

    /// Reads a `KmsCertificate`, or the one inside a `SignedKmsCertificate`. `Role` is optional
    /// in the schema; when absent the context decides (`default_role`: Root in `KmsInit`,
    /// External in `KmsCertCache`).
    pub(crate) fn parse(e: &Element, default_role: CertRole) -> Result<Self, XmlError> {
        let e = if e.name == "SignedKmsCertificate" {
            e.child("KmsCertificate")
                .ok_or(XmlError::MissingElement("KmsCertificate"))?
        } else {
            e
        };
        e.refuse_duplicates(&CHILD_ORDER)?;
        let role = e
            .attr("Role")
            .map(CertRole::parse)
            .transpose()?
            .unwrap_or(default_role);
        let is_security_gateway = e
            .attr("IsSecurityGateway")
            .map(|g| parse_bool("IsSecurityGateway", g.trim()))
            .transpose()?;
        let kms_domains = e
            .child("KmsDomainList")
            .map(|list| {
                list.children_named("KmsDomain")
                    .map(Element::text)
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(KmsCertificateDoc {
            // Absent Version: the schema gives no default; assume the current one.
            version: e
                .attr("Version")
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| KMS_CERTIFICATE_VERSION.to_owned()),
            role,
            is_security_gateway,
            cert_uri: e.optional_string("CertUri"),
            kms_uri: e.required_text("KmsUri")?.to_owned(),
            issuer: e.optional_string("Issuer"),
            valid_from: e.optional_date_time("ValidFrom")?,
            valid_to: e.optional_date_time("ValidTo")?,
            revoked: e.optional_bool("Revoked")?,
            user_id_format: e.required_text("UserIdFormat")?.to_owned(),
            user_key_period: e.required_u64("UserKeyPeriod")?,
            user_key_offset: e.required_u64("UserKeyOffset")?,
            pub_enc_key: hexbin::decode("PubEncKey", e.required_text("PubEncKey")?)?,
            pub_auth_key: hexbin::decode("PubAuthKey", e.required_text("PubAuthKey")?)?,
            parameter_set: e.optional_u64("ParameterSet")?,
            kms_domains,
        })
    }
}
