//! `POST /admin/v1/communities/{kms_uri}/revocations/query`: which of up to
//! [`MAX_QUERY`] identities are revoked in a community, read after one linearizable read
//! barrier. Operators use it to check a revocation list; the fault scripts use it to prove that
//! every acknowledged revocation survived (`scripts/chaos.sh`).

use actix_web::{web, HttpRequest};
use serde::{Deserialize, Serialize};

use super::auth::AdminAuth;
use super::body::read_json;
use super::error::{ApiError, ErrorBody};
use super::AppState;

/// Registers the query inside the `/admin/v1` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/communities/{kms_uri}/revocations/query",
        web::post().to(query),
    );
}

/// Identities one query may name.
pub const MAX_QUERY: usize = 1000;

/// Largest body: [`MAX_QUERY`] identities of the longest length.
const MAX_BODY: usize = MAX_QUERY * 2100;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevocationQuery {
    /// The identities to look up (1..=1000, each 1..=2048 bytes).
    identities: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RevocationAnswer {
    /// The queried identities that are revoked, in query order.
    revoked: Vec<String>,
    /// The queried identities that are not, in query order.
    not_revoked: Vec<String>,
}

impl RevocationQuery {
    fn check(&self) -> Result<(), ApiError> {
        if self.identities.is_empty() || self.identities.len() > MAX_QUERY {
            return Err(ApiError::BadRequest(format!(
                "identities must list 1..={MAX_QUERY} identities"
            )));
        }
        if self
            .identities
            .iter()
            .any(|i| i.is_empty() || i.len() > 2048)
        {
            return Err(ApiError::BadRequest(
                "each identity must be 1..=2048 bytes".into(),
            ));
        }
        Ok(())
    }
}

#[utoipa::path(
    post,
    path = "/admin/v1/communities/{kms_uri}/revocations/query",
    tag = "admin",
    security(("admin_credential" = [])),
    params(("kms_uri" = String, Path)),
    request_body = RevocationQuery,
    responses(
        (status = 200, description = "which of the identities are revoked", body = RevocationAnswer),
        (status = 400, description = "no identities, too many, or a bad one", body = ErrorBody),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "unknown community", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn query(
    _admin: AdminAuth,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<RevocationAnswer>, ApiError> {
    let body: RevocationQuery = read_json(&req, payload, state.body.with_limit(MAX_BODY)).await?;
    body.check()?;
    // One barrier, then every look-up reads the same current state.
    state.node.community(&path).await?;
    let s = state.node.state();
    let (mut revoked, mut not_revoked) = (Vec::new(), Vec::new());
    for identity in &body.identities {
        let r = s
            .revocation(&path, identity)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if r.is_some() {
            revoked.push(identity.clone());
        } else {
            not_revoked.push(identity.clone());
        }
    }
    Ok(web::Json(RevocationAnswer {
        revoked,
        not_revoked,
    }))
}
