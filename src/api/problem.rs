//! `ProblemDetails` (TS 29.122 5.2.1.2.12 / RFC 7807, `application/problem+json`): how the
//! 3GPP-defined APIs of the service listener (TS 29.549 `ss-kir`) answer errors. A [`Problem`]
//! wraps the one typed [`ApiError`] (its status comes from [`ApiError::status`], its detail from
//! [`ApiError::reason`], so 5xx stay generic) and may add `invalidParams` and a `cause`; it is
//! rendered once, here, through [`actix_web::ResponseError`]. Our own interfaces (`/km-s/v1`,
//! `/seal-x1/v1`, admin) keep the `{"error": reason}` body of [`super::error`].

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;

/// The media type of every problem answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One refused request parameter (TS 29.122 `InvalidParam`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InvalidParam {
    /// The parameter's name (here: the query parameter).
    pub param: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// TS 29.122 `ProblemDetails` (the fields this server sets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProblemDetails {
    /// Always `about:blank` (RFC 7807: the status says it all; `title` is its phrase).
    #[serde(rename = "type")]
    pub type_: String,
    /// The HTTP reason phrase of `status`.
    pub title: String,
    pub status: u16,
    /// Human-readable; never internal details (a 5xx says only what class of failure).
    pub detail: String,
    /// An application error cause (TS 29.500 Table 5.2.7.2-1 names), when one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_params: Option<Vec<InvalidParam>>,
}

/// An error of a 3GPP API route: the typed error, plus what ProblemDetails can say more.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Problem {
    pub error: ApiError,
    pub cause: Option<&'static str>,
    pub invalid_params: Vec<InvalidParam>,
}

impl From<ApiError> for Problem {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            cause: None,
            invalid_params: Vec::new(),
        }
    }
}

impl Problem {
    /// 400 for refused query parameters, with `cause` (e.g. `MANDATORY_QUERY_PARAM_MISSING`).
    pub fn invalid_query(cause: &'static str, params: Vec<InvalidParam>) -> Self {
        let names: Vec<&str> = params.iter().map(|p| p.param.as_str()).collect();
        Self {
            error: ApiError::BadRequest(format!(
                "invalid query parameter(s): {}",
                names.join(", ")
            )),
            cause: Some(cause),
            invalid_params: params,
        }
    }

    /// The body this problem is answered with.
    pub fn details(&self) -> ProblemDetails {
        let status = self.error.status();
        ProblemDetails {
            type_: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: self.error.reason(),
            cause: self.cause.map(str::to_owned),
            invalid_params: (!self.invalid_params.is_empty()).then(|| self.invalid_params.clone()),
        }
    }
}

impl actix_web::ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.error.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.error.status());
        b.content_type(PROBLEM_JSON);
        if let Some(s) = self.error.retry_after_s() {
            b.insert_header(("Retry-After", s.to_string()));
        }
        if self.error.status() == StatusCode::UNAUTHORIZED {
            b.insert_header(("WWW-Authenticate", "Bearer"));
        }
        b.body(serde_json::to_string(&self.details()).unwrap_or_else(|_| "{}".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

    #[test]
    fn problem_bodies_follow_ts_29_122() {
        let p = Problem::invalid_query(
            "MANDATORY_QUERY_PARAM_MISSING",
            vec![InvalidParam {
                param: "val-service-id".into(),
                reason: Some("missing".into()),
            }],
        );
        let v = serde_json::to_value(p.details()).unwrap();
        assert_eq!(v["status"], 400);
        assert_eq!(v["title"], "Bad Request");
        assert_eq!(v["type"], "about:blank");
        assert_eq!(v["cause"], "MANDATORY_QUERY_PARAM_MISSING");
        assert_eq!(v["invalidParams"][0]["param"], "val-service-id");
        let resp = p.error_response();
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        // A 5xx says nothing of its cause; 503 says when to come back.
        let p = Problem::from(ApiError::Internal("sled: disk on fire".into()));
        let v = serde_json::to_value(p.details()).unwrap();
        assert_eq!(
            (v["status"].as_u64(), v["detail"].as_str()),
            (Some(500), Some("internal error"))
        );
        assert!(v.get("invalidParams").is_none() && v.get("cause").is_none());
        let resp = Problem::from(ApiError::Unavailable { retry_after_s: 1 }).error_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers().get("retry-after").unwrap(), "1");
    }
}
