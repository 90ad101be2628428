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

/// A request whose `KmsUri` names another KMS than the community serving it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("KmsUri does not name this KMS (expected {expected})")]
pub struct KmsUriMismatch {
    /// The community's bare KMS URI (public: it is in every response).
    pub expected: String,
}

impl KmsRequestDoc {
    /// Checks that `KmsUri` names the community that serves this request: its bare KMS URI
    /// (`community_kms_uri`), or the host name the request was addressed to (`request_host`,
    /// the HTTP `Host`, which is how the server selected that community — a configured alias
    /// of it, typically). Compared without case, without a port, and for a URL by its host
    /// ([`KmsRequestDoc::kms_uri_host`]). A request naming any other KMS is refused: it was
    /// meant for another community, and answering it with this community's keys would be a
    /// silent mix-up.
    pub fn check_kms_uri(
        &self,
        community_kms_uri: &str,
        request_host: &str,
    ) -> Result<(), KmsUriMismatch> {
        let named = without_port(&self.kms_uri_host());
        if named == without_port(community_kms_uri).to_ascii_lowercase()
            || named == without_port(request_host).to_ascii_lowercase()
        {
            return Ok(());
        }
        Err(KmsUriMismatch {
            expected: community_kms_uri.to_owned(),
        })
    }
}

/// `host` without a trailing `:port` (an IPv6 literal keeps its brackets).
fn without_port(host: &str) -> String {
    let host = host.trim();
    if let Some(end) = host.strip_prefix('[').and_then(|h| h.find(']')) {
        return host[..end + 2].to_ascii_lowercase();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            name.to_ascii_lowercase()
        }
        _ => host.to_ascii_lowercase(),
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
        "SignedKmsRequest" => {
            root.refuse_duplicates(&["KmsRequest", "Signature", "TrK-ID", "Signature-ID"])?;
            (
                root.child("KmsRequest")
                    .ok_or(XmlError::MissingElement("KmsRequest"))?,
                true,
            )
        }
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
    e.refuse_duplicates(&[
        "UserUri",
        "KmsUri",
        "Time",
        "ClientId",
        "DeviceId",
        "ClientReqUrl",
        "KrrList",
        "ClientError",
        "TrK-ID",
        "Signature-ID",
    ])?;
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
    use super::{kms_uri_host, parse_kms_request, KmsUriMismatch};
    use crate::kms::xml::XmlError;

    fn request(kms_uri: &str) -> super::KmsRequestDoc {
        let xml = format!(
            r#"<KmsRequest xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0"><UserUri>sip:a@x</UserUri><KmsUri>{kms_uri}</KmsUri></KmsRequest>"#
        );
        parse_kms_request(xml.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn kms_uri_must_name_the_serving_community() {
        for ok in [
            "kms.example.org",
            "KMS.Example.org",
            "kms.example.org:443",
            "https://kms.example.org/keymanagement/identity/v1/init",
            "https://alias.example.org:8443/x",
            "alias.example.org",
        ] {
            assert_eq!(
                request(ok).check_kms_uri("kms.example.org", "alias.example.org:8443"),
                Ok(()),
                "{ok}"
            );
        }
        for other in [
            "kms.other.org",
            "https://kms.other.org/keymanagement",
            "kms.example.org.evil",
            "example.org",
        ] {
            assert_eq!(
                request(other).check_kms_uri("kms.example.org", "alias.example.org:8443"),
                Err(KmsUriMismatch {
                    expected: "kms.example.org".into()
                }),
                "{other}"
            );
        }
        // An IPv6 host keeps its brackets.
        assert!(request("https://[::1]:8443/x")
            .check_kms_uri("kms.example.org", "[::1]:8443")
            .is_ok());
    }

    #[test]
    fn prefixes_must_be_declared_in_scope() {
        let ns = "urn:3gpp:ns:mcsecKMSInterface:1.0";
        let body = "<UserUri>sip:a@x</UserUri><KmsUri>k</KmsUri>";
        // Declared: any prefix, on the element or an ancestor.
        let ok = format!(
            r#"<p:KmsRequest xmlns:p="{ns}"><p:UserUri>sip:a@x</p:UserUri><p:KmsUri>k</p:KmsUri></p:KmsRequest>"#
        );
        assert_eq!(
            parse_kms_request(ok.as_bytes()).unwrap().unwrap().user_uri,
            "sip:a@x"
        );
        let xml_attr = format!(r#"<KmsRequest xmlns="{ns}" xml:lang="en">{body}</KmsRequest>"#);
        assert!(parse_kms_request(xml_attr.as_bytes()).is_ok());
        let undeclared = |xml: String| {
            assert!(
                matches!(
                    parse_kms_request(xml.as_bytes()),
                    Err(XmlError::UndeclaredPrefix(_))
                ),
                "{xml}"
            )
        };
        undeclared(format!(
            r#"<p:KmsRequest xmlns="{ns}">{body}</p:KmsRequest>"#
        ));
        undeclared(format!(
            r#"<KmsRequest xmlns="{ns}"><q:UserUri>sip:a@x</q:UserUri><KmsUri>k</KmsUri></KmsRequest>"#
        ));
        undeclared(format!(
            r#"<KmsRequest xmlns="{ns}" q:Version="1.1.0">{body}</KmsRequest>"#
        ));
        // A declaration holds only inside the element that makes it, not for its siblings.
        undeclared(format!(
            r#"<KmsRequest xmlns="{ns}"><X xmlns:a="urn:x"/><a:Y/>{body}</KmsRequest>"#
        ));
        undeclared(format!(
            r#"<KmsRequest xmlns="{ns}"><X xmlns:a="urn:x"><a:Z/></X><a:Y/>{body}</KmsRequest>"#
        ));
    }

    #[test]
    fn duplicate_elements_are_refused() {
        let ns = "urn:3gpp:ns:mcsecKMSInterface:1.0";
        for (dup, name) in [
            ("<UserUri>sip:b@x</UserUri>", "UserUri"),
            ("<KmsUri>kms.other.org</KmsUri>", "KmsUri"),
            ("<ClientReqUrl>https://b</ClientReqUrl>", "ClientReqUrl"),
        ] {
            let xml = format!(
                r#"<KmsRequest xmlns="{ns}"><UserUri>sip:a@x</UserUri><KmsUri>kms.example.org</KmsUri><ClientReqUrl>https://a</ClientReqUrl>{dup}</KmsRequest>"#
            );
            assert_eq!(
                parse_kms_request(xml.as_bytes()),
                Err(XmlError::DuplicateElement(name)),
                "{dup}"
            );
        }
        let signed = format!(
            r#"<SignedKmsRequest xmlns="{ns}"><KmsRequest><UserUri>sip:a@x</UserUri><KmsUri>k</KmsUri></KmsRequest><KmsRequest><UserUri>sip:b@x</UserUri><KmsUri>k</KmsUri></KmsRequest></SignedKmsRequest>"#
        );
        assert_eq!(
            parse_kms_request(signed.as_bytes()),
            Err(XmlError::DuplicateElement("KmsRequest"))
        );
    }

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
