//! `KmsResponse` and `KmsMessage` (TS 33.180 D.3.1, Table D.3.1-1).
//!
//! Rendered exactly as the Annex D schema orders it (the schema puts `Time` before `KmsId`,
//! unlike the table):
//!
//! ```text
//! <KmsResponse xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0" Version="1.0.0">
//!   UserUri, KmsUri, Time, KmsId?, ClientReqUrl, (KmsMessage | KmsError)
//! </KmsResponse>
//! ```
//!
//! `KmsMessage` holds one of `KmsInit` (`Version` 1.0.0, one `KmsCertificate`), `KmsKeyProv`
//! (`Version` 1.0.0, `KmsKeySet`s) or `KmsCertCache` (`Version` 1.0.0, `CacheNum`,
//! `KmsCertificate`s). `KmsError` has the schema's `ErrorType` (see [`super::kms_error`]).
//!
//! The client-side parser reads everything the renderer writes, and also accepts a
//! `SignedKmsResponse` wrapper (signature ignored), prefixes, and unknown elements.

use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::certificate::{CertRole, KmsCertificateDoc};
use super::dom::{parse_document, parse_u64, Element};
use super::keyset::KmsKeySetDoc;
use super::kms_error::KmsErrorDoc;
use super::time::parse_date_time;
use super::writer::XmlWriter;
use super::{XmlError, KMS_NAMESPACE, MAX_RESPONSE_BYTES};

/// Fixed `Version` of `KmsResponse`, `KmsInit`, `KmsKeyProv` and `KmsCertCache` in the schema.
pub const KMS_RESPONSE_VERSION: &str = "1.0.0";

/// The content of `KmsMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KmsMessageDoc {
    /// `KmsInit`: the KMS's own (Root) certificate (boxed: it dwarfs the other variants).
    Init(Box<KmsCertificateDoc>),
    /// `KmsKeyProv`: key sets (we issue one per response; the schema allows any number).
    KeyProv(Vec<KmsKeySetDoc>),
    /// `KmsCertCache`: partner KMS certificates and the cache's number.
    CertCache {
        cache_num: u64,
        certificates: Vec<KmsCertificateDoc>,
    },
}

/// What a response carries after its header: a message or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KmsResponseBody {
    Message(KmsMessageDoc),
    Error(KmsErrorDoc),
}

/// A `KmsResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsResponseDoc {
    pub user_uri: String,
    /// The bare KMS URI (never a URL): the renderer refuses a value containing "://".
    pub kms_uri: String,
    /// Rendered as UTC whole seconds.
    pub time: OffsetDateTime,
    pub kms_id: Option<String>,
    pub client_req_url: String,
    pub body: KmsResponseBody,
}

/// Renders a response. The result may hold private keys: it is zeroized when dropped, and the
/// caller should write it out and drop it rather than copy it into a plain `String`.
pub fn render_kms_response(doc: &KmsResponseDoc) -> Result<Zeroizing<String>, XmlError> {
    if doc.kms_uri.contains("://") {
        return Err(XmlError::invalid(
            "KmsUri",
            "must be the bare KMS URI, not a URL",
        ));
    }
    let mut w = XmlWriter::new(estimate_len(&doc.body));
    w.open(
        "KmsResponse",
        &[("xmlns", KMS_NAMESPACE), ("Version", KMS_RESPONSE_VERSION)],
    )?;
    // An answer to a request that authenticated nobody names nobody: `<UserUri/>`.
    if doc.user_uri.is_empty() {
        w.empty("UserUri", &[])?;
    } else {
        w.text("UserUri", &doc.user_uri)?;
    }
    w.text("KmsUri", &doc.kms_uri)?;
    w.date_time("Time", doc.time)?;
    w.opt_text("KmsId", doc.kms_id.as_deref())?;
    w.text("ClientReqUrl", &doc.client_req_url)?;
    match &doc.body {
        KmsResponseBody::Message(message) => render_message(&mut w, message)?,
        KmsResponseBody::Error(error) => error.render(&mut w, "KmsError")?,
    }
    w.close("KmsResponse");
    Ok(w.finish())
}

/// A size guess generous enough that the writer normally never has to grow its buffer.
fn estimate_len(body: &KmsResponseBody) -> usize {
    const HEADER: usize = 1024;
    const CERTIFICATE: usize = 2048;
    const KEY_SET: usize = 2048;
    match body {
        KmsResponseBody::Message(KmsMessageDoc::Init(_)) => HEADER + CERTIFICATE,
        KmsResponseBody::Message(KmsMessageDoc::KeyProv(sets)) => HEADER + KEY_SET * sets.len(),
        KmsResponseBody::Message(KmsMessageDoc::CertCache { certificates, .. }) => {
            HEADER + CERTIFICATE * certificates.len()
        }
        KmsResponseBody::Error(_) => HEADER,
    }
}

fn render_message(w: &mut XmlWriter, message: &KmsMessageDoc) -> Result<(), XmlError> {
    w.open("KmsMessage", &[])?;
    match message {
        KmsMessageDoc::Init(certificate) => {
            w.open("KmsInit", &[("Version", KMS_RESPONSE_VERSION)])?;
            certificate.render(w)?;
            w.close("KmsInit");
        }
        KmsMessageDoc::KeyProv(key_sets) => {
            // An empty KmsKeyProv would be an empty element: say "no keys" with KmsError.
            if key_sets.is_empty() {
                return Err(XmlError::invalid("KmsKeyProv", "no key set"));
            }
            w.open("KmsKeyProv", &[("Version", KMS_RESPONSE_VERSION)])?;
            for key_set in key_sets {
                key_set.render(w)?;
            }
            w.close("KmsKeyProv");
        }
        KmsMessageDoc::CertCache {
            cache_num,
            certificates,
        } => {
            let cache_num = cache_num.to_string();
            let attrs = [
                ("Version", KMS_RESPONSE_VERSION),
                ("CacheNum", cache_num.as_str()),
            ];
            if certificates.is_empty() {
                w.empty("KmsCertCache", &attrs)?;
                w.close("KmsMessage");
                return Ok(());
            }
            w.open("KmsCertCache", &attrs)?;
            for certificate in certificates {
                certificate.render(w)?;
            }
            w.close("KmsCertCache");
        }
    }
    w.close("KmsMessage");
    Ok(())
}

/// Parses a response (client side).
pub fn parse_kms_response(xml: &[u8]) -> Result<KmsResponseDoc, XmlError> {
    let root = parse_document(xml, MAX_RESPONSE_BYTES)?.ok_or(XmlError::Empty)?;
    let response = match root.name.as_str() {
        "KmsResponse" => &root,
        "SignedKmsResponse" => root
            .child("KmsResponse")
            .ok_or(XmlError::MissingElement("KmsResponse"))?,
        other => return Err(XmlError::UnexpectedRoot(other.chars().take(64).collect())),
    };
    root.refuse_duplicates(&["KmsResponse"])?;
    response.refuse_duplicates(&[
        "UserUri",
        "KmsUri",
        "Time",
        "KmsId",
        "ClientReqUrl",
        "KmsMessage",
        "KmsError",
    ])?;
    let body = if let Some(message) = response.child("KmsMessage") {
        KmsResponseBody::Message(parse_message(message)?)
    } else if let Some(error) = response.child("KmsError") {
        KmsResponseBody::Error(KmsErrorDoc::parse(error)?)
    } else {
        return Err(XmlError::MissingElement("KmsMessage"));
    };
    Ok(KmsResponseDoc {
        user_uri: response.optional_string("UserUri").unwrap_or_default(),
        kms_uri: response.required_text("KmsUri")?.to_owned(),
        time: parse_date_time("Time", response.required_text("Time")?)?,
        kms_id: response.optional_string("KmsId"),
        client_req_url: response.required_text("ClientReqUrl")?.to_owned(),
        body,
    })
}

fn parse_message(message: &Element) -> Result<KmsMessageDoc, XmlError> {
    // The first child we know decides; other-namespace extensions may sit beside it.
    for child in &message.children {
        match child.name.as_str() {
            "KmsInit" => {
                let certificate = child
                    .children
                    .iter()
                    .find(|c| c.name == "KmsCertificate" || c.name == "SignedKmsCertificate")
                    .ok_or(XmlError::MissingElement("KmsCertificate"))?;
                let certificate = KmsCertificateDoc::parse(certificate, CertRole::Root)?;
                return Ok(KmsMessageDoc::Init(Box::new(certificate)));
            }
            "KmsKeyProv" => {
                let key_sets = child
                    .children_named("KmsKeySet")
                    .map(KmsKeySetDoc::parse)
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(KmsMessageDoc::KeyProv(key_sets));
            }
            "KmsCertCache" => {
                let cache_num = match child.attr("CacheNum") {
                    Some(n) => parse_u64("CacheNum", n.trim())?,
                    None => return Err(XmlError::MissingAttribute("CacheNum")),
                };
                let certificates = child
                    .children
                    .iter()
                    .filter(|c| c.name == "KmsCertificate" || c.name == "SignedKmsCertificate")
                    .map(|c| KmsCertificateDoc::parse(c, CertRole::External))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(KmsMessageDoc::CertCache {
                    cache_num,
                    certificates,
                });
            }
            _ => {}
        }
    }
    Err(XmlError::MissingElement("KmsInit|KmsKeyProv|KmsCertCache"))
}
