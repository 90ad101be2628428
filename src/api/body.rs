//! Request bodies, read only after the caller is authenticated ([`super::auth`]): bounded in
//! size (413 without reading further) and in time (408 when the whole body has not arrived
//! within the read timeout, `[limits] body_read_timeout_s`), then parsed (400).

use std::time::Duration;

use actix_web::web;
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
