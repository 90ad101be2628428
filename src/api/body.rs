//! Request bodies, read only after the caller is authenticated ([`super::auth`]): bounded in
//! size (413 without reading further) and in time (408 when the whole body has not arrived
//! within the read timeout, `[limits] body_read_timeout_s`), then parsed (400). Also the other
//! input every write shares, the [`IDEMPOTENCY_KEY`] header, and the one response body that
//! may hold secrets, [`ZeroizingBody`].

use std::time::Duration;

use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// How a body is read: at most `limit` bytes within `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub limit: usize,
    pub timeout: Duration,
}

impl BodyLimits {
    /// The same timeout with another size limit.
    pub fn with_limit(self, limit: usize) -> Self {
        Self { limit, ..self }
    }
}

/// Reads the whole body: 413 above the limit (a declared `Content-Length` above it is refused
/// before reading), 408 if it does not arrive in time, 400 if the stream fails.
pub async fn read_body(
    req: &actix_web::HttpRequest,
    mut payload: web::Payload,
    limits: BodyLimits,
) -> Result<web::BytesMut, ApiError> {
    if let Some(len) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
    {
        if len > limits.limit {
            return Err(ApiError::PayloadTooLarge(limits.limit));
        }
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk
                .map_err(|_| ApiError::BadRequest("could not read the request body".into()))?;
            if body.len() + chunk.len() > limits.limit {
                return Err(ApiError::PayloadTooLarge(limits.limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(limits.timeout, read)
        .await
        .map_err(|_| ApiError::RequestTimeout)?
}

/// Reads and parses a JSON body (400 if it is empty or malformed).
pub async fn read_json<T: DeserializeOwned>(
    req: &actix_web::HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
) -> Result<T, ApiError> {
    let body = read_body(req, payload, limits).await?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Largest admin request body.
pub const MAX_ADMIN_JSON_BODY: usize = 16 * 1024;

/// Reads an admin JSON body (after the [`super::auth::AdminAuth`] extractor accepted the
/// credential): at most [`MAX_ADMIN_JSON_BODY`] bytes within the timeout of `limits`.
pub async fn admin_json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
) -> Result<T, ApiError> {
    read_json(req, payload, limits.with_limit(MAX_ADMIN_JSON_BODY)).await
}

/// Reads an optional JSON body: empty → `T::default()`; malformed → 400; too large → 413.
pub async fn optional_json<T: DeserializeOwned + Default>(
    req: &actix_web::HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
) -> Result<T, ApiError> {
    let body = read_body(req, payload, limits).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// The header of an idempotent write: a repeat with the same value answers the first
/// result. A 503 on a write means "unknown outcome; retry with the same Idempotency-Key",
/// unless its body says `"proposed": false` (refused before proposal: no effect).
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Longest accepted `Idempotency-Key` value.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// The request's `Idempotency-Key`: 1 to 128 visible ASCII characters (400 otherwise).
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY);
    let Some(v) = values.next() else {
        return Ok(None);
    };
    let bad = || {
        ApiError::BadRequest(format!(
            "{IDEMPOTENCY_KEY} must be one value of 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
        ))
    };
    let b = v.as_bytes();
    if values.next().is_some()
        || b.is_empty()
        || b.len() > MAX_IDEMPOTENCY_KEY_LEN
        || !b.iter().all(|c| c.is_ascii_graphic())
    {
        return Err(bad());
    }
    v.to_str().map(|s| Some(s.to_owned())).map_err(|_| bad())
}

/// A response body that may hold private keys: the buffer is handed to actix without a copy
/// (`Bytes::from_owner`) and zeroized when the last reference to it is dropped, after sending.
pub struct ZeroizingBody(pub zeroize::Zeroizing<String>);

impl AsRef<[u8]> for ZeroizingBody {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<ZeroizingBody> for web::Bytes {
    fn from(b: ZeroizingBody) -> Self {
        web::Bytes::from_owner(b)
    }
}
