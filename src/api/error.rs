//! The one mapping from errors to HTTP: [`ApiError`] variants decide the status (never the
//! message text); 5xx bodies are generic. This module also owns the JSON rendering of an error
//! ([`json_error`], the [`ErrorBody`] schema), which every JSON interface answers through
//! [`actix_web::ResponseError`]: a JSON handler returns `Result<_, ApiError>` and uses `?`.
//! KM-UU (and the TS 33.180 documents under SEAL-X1 and KM-S) renders a `KmsError` document
//! instead, from the same [`ApiError::status`] and [`ApiError::reason`].

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use thiserror::Error;

use crate::auth::AuthError;
use crate::kms::KmsError;
use crate::node::admission::Shed;
use crate::node::NodeError;
use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum ApiError {
    /// An access token was missing or refused: 401, or 403 when it is valid but not for this
    /// request ([`AuthError::is_forbidden`]); KM-UU adds the RFC 6750 challenge.
    #[error("{0}")]
    Auth(AuthError),
    /// A missing or invalid credential other than an access token (client certificate, admin
    /// credential): 401.
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
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A membership change sent to a node that is not the leader (409); the answer names the
    /// leader (`leader_id`, 0 when unknown) so a client can go there, without matching text.
    #[error("this node is not the leader; the leader is node {leader_id}")]
    NotLeader { leader_id: u64 },
    #[error("request body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    /// The `Accept` header excludes every representation the resource has (406).
    #[error("{0}")]
    NotAcceptable(String),
    /// The body did not arrive within the read timeout (408).
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("too many requests")]
    TooManyRequests { retry_after_s: u64 },
    /// A per-principal quota is used up (429 without Retry-After: waiting does not help).
    #[error("{0}")]
    QuotaExceeded(String),
    /// Try again later; the request may have taken effect (a write whose commit is unknown).
    #[error("service unavailable")]
    Unavailable { retry_after_s: u64 },
    /// Try again later; the request was refused before anything of it was proposed to the
    /// cluster (no leader known, the key store overloaded), so it took no effect: 503 with
    /// `Retry-After` and `"proposed": false`.
    #[error("service unavailable; the request was not proposed and took no effect")]
    NotProposed { retry_after_s: u64 },
    /// This node has no space for new data (507, RFC 4918 §11.5): the reason says which disk;
    /// reads go on, writes resume by themselves when space returns. Always refused before
    /// proposal (`"proposed": false`).
    #[error("{0}")]
    InsufficientStorage(String),
    /// Details go to the log (without secrets), never to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Auth(e) if e.is_forbidden() => StatusCode::FORBIDDEN,
            ApiError::Auth(_) | ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::IdentityRevoked => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) | ApiError::PeriodOutOfWindow(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::NotLeader { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests { .. } | ApiError::QuotaExceeded(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable { .. } | ApiError::NotProposed { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
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
            | ApiError::Unavailable { retry_after_s }
            | ApiError::NotProposed { retry_after_s } => Some(*retry_after_s),
            _ => None,
        }
    }

    /// `Some(false)` when the request was refused before anything of it was proposed to the
    /// cluster (it took no effect; the body's `proposed` field), `None` otherwise (no claim).
    pub fn proposed(&self) -> Option<bool> {
        match self {
            ApiError::NotProposed { .. } | ApiError::InsufficientStorage(_) => Some(false),
            _ => None,
        }
    }

    /// A key store refusal of a step after an earlier step of the same request was proposed:
    /// never "not proposed" (the earlier step may have committed).
    pub fn after_proposal(e: StoreError) -> Self {
        match e {
            e if e.not_proposed() => ApiError::Unavailable { retry_after_s: 1 },
            e => ApiError::from(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Auth(e)
    }
}

/// Every JSON error: `{"error": reason}` (the status carries the class).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    pub error: String,
    /// Only on a membership change refused by a node that is not the leader (409): the
    /// leader's id (0 when unknown).
    pub leader_id: Option<u64>,
    /// Only `false`, and only on a 503 or 507 refused before anything of the request was
    /// proposed to the cluster: the request took no effect and may be sent again as it is. A
    /// 503 without it may have taken effect (its commit is unknown).
    pub proposed: Option<bool>,
}

/// `e` as the JSON interfaces answer it: its status, `{"error": reason}` (plus `leader_id` for
/// [`ApiError::NotLeader`], `"proposed": false` when [`ApiError::proposed`] says so) and
/// `Retry-After` when [`ApiError::retry_after_s`] gives one.
pub fn json_error(e: &ApiError) -> HttpResponse {
    let mut b = HttpResponse::build(e.status());
    if let Some(s) = e.retry_after_s() {
        b.insert_header(("Retry-After", s.to_string()));
    }
    let mut body = serde_json::json!({ "error": e.reason() });
    if let ApiError::NotLeader { leader_id } = e {
        body["leader_id"] = (*leader_id).into();
    }
    if let Some(p) = e.proposed() {
        body["proposed"] = p.into();
    }
    b.json(body)
}

/// A JSON handler's error (and an extractor's refusal, [`super::auth`]) answered as
/// [`json_error`]; KM-UU catches its extractor's error and renders a `KmsError` instead.
impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        json_error(self)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(r) => ApiError::Conflict(r),
            StoreError::ConfChangeInProgress => ApiError::Conflict(e.to_string()),
            StoreError::Stopped(r) => ApiError::Internal(r),
            StoreError::DiskFull(r) => ApiError::InsufficientStorage(r),
            StoreError::NoLeader | StoreError::Busy => ApiError::NotProposed { retry_after_s: 1 },
            StoreError::Timeout => ApiError::Unavailable { retry_after_s: 1 },
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
            NodeError::Kms(k @ KmsError::UnknownCommunity(_)) => ApiError::NotFound(k.to_string()),
            NodeError::Kms(k @ KmsError::NoValidCertificate(_)) => {
                tracing::error!(error = %k, "no valid certificate");
                ApiError::Unavailable { retry_after_s: 60 }
            }
            NodeError::Rejected(r) | NodeError::Invalid(r) => ApiError::BadRequest(r),
            NodeError::NotFound(r) => ApiError::NotFound(r),
            NodeError::Conflict(r) => ApiError::Conflict(r),
            e @ NodeError::Quota(_) => ApiError::QuotaExceeded(e.to_string()),
            NodeError::Forbidden(r) => ApiError::Forbidden(r),
            NodeError::Unavailable(s) => {
                tracing::warn!(reason = %s, "request refused: cluster unavailable");
                ApiError::from(s)
            }
            NodeError::ClockSkew(why) => {
                tracing::warn!(reason = %why, "key service refused: clock skew");
                ApiError::Unavailable { retry_after_s: 1 }
            }
            NodeError::AfterProposal(s) => {
                tracing::warn!(reason = %s, "request refused after an earlier write of it");
                ApiError::after_proposal(s)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_space_is_507_with_its_reason_and_no_retry_after() {
        let why = "the disk of the state directory has 10 MiB free, below the 64 MiB reserve";
        let e = ApiError::from(NodeError::Unavailable(StoreError::DiskFull(why.into())));
        assert_eq!(e.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(e.reason(), why);
        assert_eq!(e.retry_after_s(), None);
    }

    fn body_of(resp: HttpResponse) -> serde_json::Value {
        let bytes = actix_rt::System::new()
            .block_on(actix_web::body::to_bytes(resp.into_body()))
            .expect("body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[test]
    fn a_refusal_before_proposal_says_so_and_an_unknown_commit_does_not() {
        for s in [StoreError::NoLeader, StoreError::Busy] {
            let e = ApiError::from(NodeError::Unavailable(s));
            let resp = json_error(&e);
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(resp.headers().get("Retry-After").expect("Retry-After"), "1");
            assert_eq!(body_of(resp)["proposed"], false);
        }
        let full = ApiError::from(NodeError::Unavailable(StoreError::DiskFull("full".into())));
        assert_eq!(body_of(json_error(&full))["proposed"], false);
        // A proposal whose commit is unknown, and any refusal after an earlier proposal of
        // the same request: a 503 that claims nothing.
        let unknown = [
            ApiError::from(NodeError::Unavailable(StoreError::Timeout)),
            ApiError::from(NodeError::AfterProposal(StoreError::NoLeader)),
            ApiError::from(NodeError::AfterProposal(StoreError::DiskFull(
                "full".into(),
            ))),
            ApiError::after_proposal(StoreError::Busy),
        ];
        for e in unknown {
            let resp = json_error(&e);
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(resp.headers().contains_key("Retry-After"));
            let v = body_of(resp);
            assert!(v.get("proposed").is_none(), "{v}");
        }
    }

    #[test]
    fn not_the_leader_is_typed_not_text() {
        let resp = json_error(&ApiError::NotLeader { leader_id: 3 });
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        let v = body_of(resp);
        // Clients (`sealkm cluster`) go on to another node on this field, never on the text.
        assert_eq!(v["leader_id"], 3);
        let other = body_of(json_error(&ApiError::Conflict("busy".into())));
        assert!(other.get("leader_id").is_none());
    }
}
