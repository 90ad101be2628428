//! KM-UU: the TS 33.180 Annex D KMS interface as SEAL reuses it (TS 33.434 5.1, 5.3).
//!
//! `POST /keymanagement/identity/v1/{init | keyprov[/<user URI>[/<NTP time>]] |
//! certcache[/<cache number>]}` (TS 33.180 D.2.1; paths per TS 33.179/33.180 D.2), each with
//! the identity management server's access token (`Authorization: Bearer`, TS 33.434 5.3.1).
//! The documents themselves are [`super::documents`].

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::UserToken;
use super::documents::{handle_for, Caller};
use super::error::ApiError;
use super::AppState;

pub use super::documents::ROOT;

/// The single KM-UU handler: all errors become a `KmsError` response. The access token is
/// checked by the extractor, before the body is read and before any Raft read.
pub async fn handle(
    req: HttpRequest,
    token: Result<UserToken, ApiError>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    handle_for(req, token.map(Caller::User), payload, state, ROOT).await
}
