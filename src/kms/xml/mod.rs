//! TS 33.180 Annex D KMS interface documents (reused by TS 33.434 for SEAL key management).
//!
//! | file              | document | clause |
//! |-------------------|----------|--------|
//! | [`request`]       | `KmsRequest`, `SignedKmsRequest` | TS 33.180 D.2.2, Table D.2.2-1 |
//! | [`response`]      | `KmsResponse`, `KmsMessage` (`KmsInit`, `KmsKeyProv`, `KmsCertCache`) | D.3.1, Table D.3.1-1 |
//! | [`certificate`]   | `KmsCertificate` | D.3.2.2 |
//! | [`keyset`]        | `KmsKeySet` | D.3.3 (key provision) |
//! | [`kms_error`]     | `KmsError` / `ClientError` (`ErrorType`: `ErrorCode`, `ErrorMsg`) | D.2.2, D.3.1 |
//! | [`time`]          | `xsd:dateTime` values (`Time`, `ValidFrom`, `ValidTo`) | |
//!
//! Element names, their order and the fixed `Version` values follow the XML schema of TS 33.180
//! Annex D as mirrored by an independent implementation's copy of it (namespace
//! `urn:3gpp:ns:mcsecKMSInterface:1.0`). The digest in the project spec (§2) records the sources.
//!
//! Two directions, two attitudes:
//! - **Parsing is liberal**: any namespace prefix (elements are matched by local name), any
//!   whitespace around values, unknown elements skipped. It is not lax about meaning: an
//!   undeclared prefix or a single-valued element given twice is refused, since either would
//!   make us guess what the sender meant. It is also **bounded**: input size,
//!   nesting depth and element count are capped, and DOCTYPE declarations and non-predefined
//!   entity references are refused outright, so there is no XXE and no entity expansion bomb.
//! - **Rendering is strict**: default namespace, fixed versions, schema order, optional elements
//!   omitted when absent, never an empty element, keys as one line of upper-case hexBinary.
//!
//! Rendered responses carry user private keys (RSK, SSK), so the renderer writes into a
//! zeroizing buffer that it grows by hand (never letting `String` reallocate and leave a copy
//! behind), and the parser's tree zeroizes element text on drop.

pub mod certificate;
mod dom;
mod hexbin;
pub mod keyset;
pub mod kms_error;
pub mod request;
pub mod response;
pub mod time;
mod writer;

pub use certificate::{
    parse_certificate_document, render_certificate_document, CertRole, KmsCertificateDoc,
    KMS_CERTIFICATE_VERSION,
};
pub use keyset::KmsKeySetDoc;
pub use kms_error::{KmsErrorCode, KmsErrorDoc};
pub use request::{parse_kms_request, render_kms_request, KmsRequestDoc, RequestVersion};
pub use response::{
    parse_kms_response, render_kms_response, KmsMessageDoc, KmsResponseBody, KmsResponseDoc,
};

/// The KMS interface namespace (TS 33.180 Annex D schema `targetNamespace`).
pub const KMS_NAMESPACE: &str = "urn:3gpp:ns:mcsecKMSInterface:1.0";

/// Largest request document accepted. Requests are a handful of short URIs; the HTTP layer
/// should cut the body earlier, this is the parser's own guard.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Largest response document accepted by the client-side parser. A certificate cache holds one
/// ~1 KiB certificate per partner domain, so 1 MiB leaves ample room.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Deepest element nesting accepted. Our deepest legitimate path is about 10 levels
/// (`SignedKmsResponse/KmsResponse/KmsMessage/KmsKeyProv/KmsKeySet/UserDecryptKey/
/// xenc:EncryptedKey/ds:KeyInfo/...`); anything deeper is an attack on the parser.
pub const MAX_DEPTH: usize = 16;

/// Most elements accepted in one document (bounds the tree's memory whatever the byte size).
pub const MAX_ELEMENTS: usize = 4096;

/// Why a document could not be parsed or rendered. Messages never include element text: a
/// response carries private keys and errors end up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("document is not in the namespace urn:3gpp:ns:mcsecKMSInterface:1.0")]
    WrongNamespace,
    #[error("document of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("document is not UTF-8")]
    NotUtf8,
    #[error("document is empty")]
    Empty,
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("DOCTYPE declarations are not accepted")]
    DocTypeForbidden,
    #[error("entity reference `{0}` is not accepted (only the five predefined entities and character references are)")]
    EntityForbidden(String),
    #[error("elements nested deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("more than {max} elements")]
    TooManyElements { max: usize },
    #[error("namespace prefix `{0}` is used but not declared")]
    UndeclaredPrefix(String),
    #[error("element `{0}` appears more than once")]
    DuplicateElement(&'static str),
    #[error("unexpected root element `{0}`")]
    UnexpectedRoot(String),
    #[error("missing element `{0}`")]
    MissingElement(&'static str),
    #[error("missing attribute `{0}`")]
    MissingAttribute(&'static str),
    #[error("invalid value in `{field}`: {reason}")]
    InvalidValue {
        field: &'static str,
        reason: &'static str,
    },
    #[error("unsupported version `{version}` of `{element}`")]
    UnsupportedVersion {
        element: &'static str,
        version: String,
    },
    #[error("unsupported content in `{0}` (encrypted key material is not implemented)")]
    Unsupported(&'static str),
}

impl XmlError {
    /// Shorthand used by every document module.
    pub(crate) fn invalid(field: &'static str, reason: &'static str) -> Self {
        XmlError::InvalidValue { field, reason }
    }
}
