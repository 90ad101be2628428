//! The one mapping from errors to HTTP: [`ApiError`] variants decide the status (never the
//! message text); 5xx bodies are generic. Each interface renders the body in its own format
//! (KM-UU: a TS 33.180 `KmsError`; admin: JSON) from [`ApiError::status`] and
//! [`ApiError::reason`].

use actix_web::http::StatusCode;
use thiserror::Error;

use crate::auth::AuthError;
use crate::kms::KmsError;
use crate::node::admission::Shed;
use crate::node::NodeError;

#[derive(Debug, Error)]
pub enum ApiError {
    /// Missing or invalid access token: 401 with `WWW-Authenticate`.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token that does not allow this request (another identity, missing scope).
    #[error("{0}")]
    Forbidden(String),
    #[error("identity is revoked")]
    IdentityRevoked,
    #[error("{0}")]
    BadRequest(String),
    /// A key period outside the configured window (400, `KmsError` code PeriodOutOfWindow).
    #[error("{0}")]
    PeriodOutOfWindow(String),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (e.g. not the leader).
    #[error("{0}")]
    Conflict(String),
    #[error("request body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    #[error("too many requests")]
    TooManyRequests { retry_after_s: u64 },
    #[error("service unavailable")]
    Unavailable { retry_after_s: u64 },
    /// Details go to the log (without secrets), never to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::IdentityRevoked => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) | ApiError::PeriodOutOfWindow(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The reason shown to the client: never internal details.
    pub fn reason(&self) -> String {
        match self {
            ApiError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests { retry_after_s }
            | ApiError::Unavailable { retry_after_s } => Some(*retry_after_s),
            _ => None,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        if e.is_forbidden() {
            ApiError::Forbidden(e.to_string())
        } else {
            ApiError::Unauthorized(e.to_string())
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Kms(KmsError::IdentityRevoked) => ApiError::IdentityRevoked,
            NodeError::Kms(k @ KmsError::PeriodOutOfWindow { .. }) => {
                ApiError::PeriodOutOfWindow(k.to_string())
            }
            NodeError::Kms(k @ KmsError::BadTime) => ApiError::BadRequest(k.to_string()),
            NodeError::Kms(
                k @ (KmsError::UnknownCommunity(_) | KmsError::UnknownCertificate(_)),
            ) => ApiError::NotFound(k.to_string()),
            NodeError::Kms(k @ KmsError::NoValidCertificate(_)) => {
                tracing::error!(error = %k, "no valid certificate");
                ApiError::Unavailable { retry_after_s: 60 }
            }
            NodeError::Rejected(r) | NodeError::Invalid(r) => ApiError::BadRequest(r),
            NodeError::NotFound(r) => ApiError::NotFound(r),
            NodeError::Conflict(r) => ApiError::Conflict(r),
            NodeError::Forbidden(r) => ApiError::Forbidden(r),
            NodeError::Unavailable(s) => {
                tracing::warn!(reason = %s, "request refused: cluster unavailable");
                ApiError::from(s)
            }
            NodeError::Shed(s @ Shed::Throttled { .. })
            | NodeError::Shed(s @ Shed::Busy { .. }) => ApiError::TooManyRequests {
                retry_after_s: s.retry_after_s(),
            },
            other => {
                tracing::error!(error = %other, "request failed");
                ApiError::Internal(other.to_string())
            }
        }
    }
}
