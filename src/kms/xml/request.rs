//! `KmsRequest` and `SignedKmsRequest` (TS 33.180 D.2.2, Table D.2.2-1).
//!
//! Schema sequence: `UserUri, KmsUri, Time, ClientId?, DeviceId?, ClientReqUrl, KrrList?,
//! ClientError?`, then extensions. Table D.2.2-1 adds `TrK-ID?` and `Signature-ID?` without a
//! place in the schema; we read them wherever they appear among the children and write them
//! last. `SignedKmsRequest` = `KmsRequest` + `ds:Signature`.
//!
//! Parsing is liberal because real clients differ: an empty body is "no document" (one client
//! POSTs nothing and relies on the path and the access token), `Version` may be 1.0.0 (sent by
//! one client) or 1.1.0 (the schema's fixed value, assumed when absent), `Time` may lack a zone,
//! `KmsUri` may be a URL rather than the bare KMS URI, and unknown elements are skipped. Only
//! `UserUri` and `KmsUri` are required: the server checks them against the token and the
//! community; `Time` and `ClientReqUrl` are informative for us.
//!
//! The signature (HMAC-SHA256 under InK/TrK, D.1) is not verified yet: `ds:Signature` is
//! skipped, and `TrK-ID` / `Signature-ID` are kept for a later security extension.

use time::OffsetDateTime;

use super::dom::{parse_document, Element};
use super::kms_error::KmsErrorDoc;
use super::time::parse_date_time;
use super::writer::XmlWriter;
use super::{XmlError, KMS_NAMESPACE, MAX_REQUEST_BYTES};

/// The `Version` attribute of a `KmsRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestVersion {
    /// "1.0.0": older clients.
    V1_0_0,
    /// "1.1.0": the schema's fixed value.
    V1_1_0,
}

impl RequestVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestVersion::V1_0_0 => "1.0.0",
            RequestVersion::V1_1_0 => "1.1.0",
        }
    }
}

/// A parsed `KmsRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsRequestDoc {
    pub version: RequestVersion,
    /// Whether it came wrapped in `SignedKmsRequest` (signature not verified).
    pub signed: bool,
    pub user_uri: String,
    /// `KmsUri` exactly as sent: a bare URI or a URL; see [`KmsRequestDoc::kms_uri_host`].
    pub kms_uri: String,
    /// `Time` as UTC (zone-less values are taken as UTC).
    pub time: Option<OffsetDateTime>,
    pub client_id: Option<String>,
    pub device_id: Option<String>,
    pub client_req_url: Option<String>,
    pub client_error: Option<KmsErrorDoc>,
    pub trk_id: Option<String>,
    pub signature_id: Option<String>,
}

impl KmsRequestDoc {
    /// The bare KMS URI named by `KmsUri`. A URL (`scheme://[user@]host[:port]/...`) gives its
    /// host, lower-cased, without port: the KMS URI is a DNS name identifying the community,
    /// and a port or path is transport detail. Anything else (`kms.example.org`,
    /// `localhost:8080`) is already a bare URI and is returned as sent (trimmed).
    pub fn kms_uri_host(&self) -> String {
        kms_uri_host(&self.kms_uri)
    }
}

fn kms_uri_host(raw: &str) -> String {
    let raw = raw.trim();
    let Some((_, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        // IPv6 literal: keep the brackets, drop what follows the closing one.
        match bracketed.split_once(']') {
            Some((inner, _)) => return format!("[{}]", inner.to_ascii_lowercase()),
            None => host_port,
        }
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    host.to_ascii_lowercase()
}

/// Parses a request body. `Ok(None)` for a body with no element (empty or whitespace).
pub fn parse_kms_request(body: &[u8]) -> Result<Option<KmsRequestDoc>, XmlError> {
    let Some(root) = parse_document(body, MAX_REQUEST_BYTES)? else {
        return Ok(None);
    };
    let (request, signed) = match root.name.as_str() {
        "KmsRequest" => (&root, false),
        "SignedKmsRequest" => (
            root.child("KmsRequest")
                .ok_or(XmlError::MissingElement("KmsRequest"))?,
            true,
        ),
        other => return Err(XmlError::UnexpectedRoot(other.chars().take(64).collect())),
    };
    // Liberal about prefixes and about a missing declaration, strict about a wrong one: a
    // document that says it is in another namespace is not a KMS request.
    for el in [&root, request] {
        if let Some(ns) = &el.namespace {
            if ns != KMS_NAMESPACE {
                return Err(XmlError::WrongNamespace);
            }
        }
    }
    parse_request_element(request, signed, &root).map(Some)
}

fn parse_request_element(
    e: &Element,
    signed: bool,
    root: &Element,
) -> Result<KmsRequestDoc, XmlError> {
    let version = match e.attr("Version").map(str::trim) {
        None | Some("1.1.0") => RequestVersion::V1_1_0,
        Some("1.0.0") => RequestVersion::V1_0_0,
        Some(other) => {
            return Err(XmlError::UnsupportedVersion {
                element: "KmsRequest",
                version: other.chars().take(16).collect(),
            })
        }
    };
    // TrK-ID / Signature-ID have no fixed place: look in the request, then in the wrapper.
    let extension = |name: &str| {
        e.optional_string(name)
            .or_else(|| root.optional_string(name))
    };
    Ok(KmsRequestDoc {
        version,
        signed,
        user_uri: e.required_text("UserUri")?.to_owned(),
        kms_uri: e.required_text("KmsUri")?.to_owned(),
        time: e
            .optional_text("Time")
            .map(|t| parse_date_time("Time", t))
            .transpose()?,
        client_id: e.optional_string("ClientId"),
        device_id: e.optional_string("DeviceId"),
        client_req_url: e.optional_string("ClientReqUrl"),
        client_error: e.child("ClientError").map(KmsErrorDoc::parse).transpose()?,
        trk_id: extension("TrK-ID"),
        signature_id: extension("Signature-ID"),
    })
}

/// Renders a request (client side), unsigned, in schema order. `Time` and `ClientReqUrl` are
/// required by the schema, so their absence is an error here.
pub fn render_kms_request(doc: &KmsRequestDoc) -> Result<String, XmlError> {
    let time = doc.time.ok_or(XmlError::MissingElement("Time"))?;
    let url = doc
        .client_req_url
        .as_deref()
        .ok_or(XmlError::MissingElement("ClientReqUrl"))?;
    let mut w = XmlWriter::new(1024);
    w.open(
        "KmsRequest",
        &[("xmlns", KMS_NAMESPACE), ("Version", doc.version.as_str())],
    )?;
    w.text("UserUri", &doc.user_uri)?;
    w.text("KmsUri", &doc.kms_uri)?;
    w.date_time("Time", time)?;
    w.opt_text("ClientId", doc.client_id.as_deref())?;
    w.opt_text("DeviceId", doc.device_id.as_deref())?;
    w.text("ClientReqUrl", url)?;
    if let Some(error) = &doc.client_error {
        error.render(&mut w, "ClientError")?;
    }
    w.opt_text("TrK-ID", doc.trk_id.as_deref())?;
    w.opt_text("Signature-ID", doc.signature_id.as_deref())?;
    w.close("KmsRequest");
    // A request holds no secret, so it leaves the zeroizing buffer as a plain String.
    let mut out = w.finish();
    Ok(core::mem::take(&mut *out))
}

#[cfg(test)]
mod tests {
    use super::kms_uri_host;

    #[test]
    fn kms_uri_host_takes_the_host_of_a_url_only() {
        assert_eq!(kms_uri_host("kms.example.org"), "kms.example.org");
        assert_eq!(kms_uri_host(" localhost:8080 "), "localhost:8080");
        assert_eq!(
            kms_uri_host("https://KMS.example.org:8443/keymanagement/identity/v1/init"),
            "kms.example.org"
        );
        assert_eq!(kms_uri_host("https://u@kms.example.org"), "kms.example.org");
        assert_eq!(kms_uri_host("http://[::1]:80/x"), "[::1]");
        assert_eq!(
            kms_uri_host("https://kms.example.org?x=1"),
            "kms.example.org"
        );
    }
}
