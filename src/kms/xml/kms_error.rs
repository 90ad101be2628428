//! `KmsError` (the response's alternative to `KmsMessage`) and the request's `ClientError`.
//!
//! Both have the schema's `ErrorType` (TS 33.180 Annex D schema, used by D.2.2 `ClientError`
//! and by the `KmsResponse` sequence): a sequence of `ErrorCode` (`xsd:integer`) then
//! `ErrorMsg` (`xsd:string`). The spec does not define code values; ours are below and are
//! chosen equal to the HTTP status the server sends with them, so one number tells the whole
//! story in logs and on the wire.

use super::dom::Element;
use super::writer::XmlWriter;
use super::XmlError;

/// Our error codes. The numbers are part of the interface: never renumber a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KmsErrorCode {
    /// 400: the request is malformed (bad XML, bad path, bad URI or time segment).
    BadRequest,
    /// 401: no valid access token (missing, expired, bad signature, wrong audience).
    Unauthorized,
    /// 403: the token is valid but does not allow this identity or operation.
    Forbidden,
    /// 404: unknown KMS community or identity.
    NotFound,
    /// 410: the identity (or its KMS certificate) has been revoked; no keys are issued.
    IdentityRevoked,
    /// 422: the requested key period is outside the window the KMS issues keys for.
    PeriodOutOfWindow,
    /// 429: the client is over its rate limit; retry later.
    TooManyRequests,
    /// 500: an internal failure; details are in the server log, never in the response.
    Internal,
    /// 503: the node cannot serve now (no quorum, stale state, shutting down); retry, possibly
    /// at another node.
    Unavailable,
    /// A code we do not define, as received from another implementation.
    Other(i64),
}

impl KmsErrorCode {
    /// The stable numeric code carried in `ErrorCode`.
    pub fn code(self) -> i64 {
        match self {
            KmsErrorCode::BadRequest => 400,
            KmsErrorCode::Unauthorized => 401,
            KmsErrorCode::Forbidden => 403,
            KmsErrorCode::NotFound => 404,
            KmsErrorCode::IdentityRevoked => 410,
            KmsErrorCode::PeriodOutOfWindow => 422,
            KmsErrorCode::TooManyRequests => 429,
            KmsErrorCode::Internal => 500,
            KmsErrorCode::Unavailable => 503,
            KmsErrorCode::Other(code) => code,
        }
    }

    /// Maps a received code back; unknown codes are kept as [`KmsErrorCode::Other`].
    pub fn from_code(code: i64) -> Self {
        match code {
            400 => KmsErrorCode::BadRequest,
            401 => KmsErrorCode::Unauthorized,
            403 => KmsErrorCode::Forbidden,
            404 => KmsErrorCode::NotFound,
            410 => KmsErrorCode::IdentityRevoked,
            422 => KmsErrorCode::PeriodOutOfWindow,
            429 => KmsErrorCode::TooManyRequests,
            500 => KmsErrorCode::Internal,
            503 => KmsErrorCode::Unavailable,
            other => KmsErrorCode::Other(other),
        }
    }

    /// A short default text, used when no message is given (`ErrorMsg` is mandatory).
    pub fn default_message(self) -> &'static str {
        match self {
            KmsErrorCode::BadRequest => "bad request",
            KmsErrorCode::Unauthorized => "unauthorized",
            KmsErrorCode::Forbidden => "forbidden",
            KmsErrorCode::NotFound => "not found",
            KmsErrorCode::IdentityRevoked => "identity revoked",
            KmsErrorCode::PeriodOutOfWindow => "key period out of window",
            KmsErrorCode::TooManyRequests => "too many requests",
            KmsErrorCode::Internal => "internal error",
            KmsErrorCode::Unavailable => "service unavailable",
            KmsErrorCode::Other(_) => "error",
        }
    }
}

/// An `ErrorType` value: `KmsError` in a response, `ClientError` in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsErrorDoc {
    pub code: KmsErrorCode,
    /// Human-readable text. Must not carry internals (it goes to the client).
    pub message: String,
}

impl KmsErrorDoc {
    pub fn new(code: KmsErrorCode, message: impl Into<String>) -> Self {
        KmsErrorDoc {
            code,
            message: message.into(),
        }
    }

    /// Writes `<{element}><ErrorCode>..</ErrorCode><ErrorMsg>..</ErrorMsg></{element}>`.
    pub(crate) fn render(&self, w: &mut XmlWriter, element: &'static str) -> Result<(), XmlError> {
        w.open(element, &[])?;
        w.text("ErrorCode", &self.code.code().to_string())?;
        let message = if self.message.trim().is_empty() {
            self.code.default_message()
        } else {
            &self.message
        };
        w.text("ErrorMsg", message)?;
        w.close(element);
        Ok(())
    }

    /// Reads an `ErrorType` element. A missing message is tolerated (empty string).
    pub(crate) fn parse(e: &Element) -> Result<Self, XmlError> {
        e.refuse_duplicates(&["ErrorCode", "ErrorMsg"])?;
        let code = e
            .required_text("ErrorCode")?
            .parse::<i64>()
            .map_err(|_| XmlError::invalid("ErrorCode", "not an integer"))?;
        Ok(KmsErrorDoc {
            code: KmsErrorCode::from_code(code),
            message: e.optional_string("ErrorMsg").unwrap_or_default(),
        })
    }
}
