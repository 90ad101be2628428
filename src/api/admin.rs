//! The admin API (JSON, `/admin/v1`): the node's status, communities and certificates
//! (rotation, revocation) and identity revocation. Authorised by the admin bearer credential,
//! compared in constant time against the SHA-256 stored in the config by the [`AdminAuth`]
//! extractor, before any body is read or any Raft work is done. The `/admin/v1` scope itself,
//! with the routes of `cluster`, `acl` and `revocation_query` beside these, is assembled in
//! the parent module.

use actix_web::{web, HttpRequest};
use serde::Deserialize;
use serde_json::Value;

use super::auth::AdminAuth;
use super::body::{admin_json, idempotency_key};
use super::error::{ApiError, ErrorBody};
use super::AppState;

/// Registers the routes of this module inside the `/admin/v1` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/status", web::get().to(status))
        .route("/communities", web::get().to(communities))
        .route(
            "/communities/{kms_uri}/certificates",
            web::post().to(rotate),
        )
        .route(
            "/communities/{kms_uri}/certificates/{serial}/revoke",
            web::post().to(revoke_cert),
        )
        .route(
            "/communities/{kms_uri}/revocations",
            web::post().to(revoke_identity),
        )
        .route(
            "/communities/{kms_uri}/revocations/delete",
            web::post().to(reinstate_identity),
        );
}

#[utoipa::path(
    get,
    path = "/admin/v1/status",
    tag = "admin",
    security(("admin_credential" = [])),
    responses(
        (status = 200, description = "this node's applied index and state digest", content_type = "application/json"),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn status(
    _admin: AdminAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    state.node.read_barrier().await?;
    // Hashing the whole state is long work: on a blocking thread, not an async worker.
    let node = state.node.clone();
    let (applied, digest) = web::block(move || {
        let s = node.state();
        Ok::<_, crate::state::StateError>((s.applied_index()?, s.digest()?))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(web::Json(
        serde_json::json!({ "applied": applied, "digest": hex::encode(digest) }),
    ))
}

#[utoipa::path(
    get,
    path = "/admin/v1/communities",
    tag = "admin",
    security(("admin_credential" = [])),
    responses(
        (status = 200, description = "the communities and their KMS certificates", content_type = "application/json"),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn communities(
    _admin: AdminAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    let cs = state.node.communities().await?;
    let list: Vec<_> = cs
        .iter()
        .map(|c| {
            serde_json::json!({
                "kms_uri": c.kms_uri,
                "user_key_period_s": c.period.period_s,
                "user_key_offset_s": c.period.offset_s,
                "cache_num": c.cache_num,
                "certificates": c.certificates.iter().map(|cert| serde_json::json!({
                    "serial": cert.serial, "cert_uri": cert.cert_uri,
                    "valid_from": cert.valid_from_unix, "valid_to": cert.valid_to_unix,
                    "revoked": cert.revoked,
                    "pub_auth_key": hex::encode_upper(&cert.pub_auth_key),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(web::Json(serde_json::json!({ "communities": list })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateBody {
    validity_days: u64,
}

#[utoipa::path(
    post,
    path = "/admin/v1/communities/{kms_uri}/certificates",
    tag = "admin",
    security(("admin_credential" = [])),
    params(("kms_uri" = String, Path)),
    request_body = RotateBody,
    responses(
        (status = 200, description = "a new KMS certificate (rotation)", content_type = "application/json"),
        (status = 400, description = "bad validity", body = ErrorBody),
        (status = 404, description = "unknown community", body = ErrorBody),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn rotate(
    AdminAuth(actor): AdminAuth,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    let body: RotateBody = admin_json(&req, payload, state.body).await?;
    if body.validity_days == 0 || body.validity_days > 36_500 {
        return Err(ApiError::BadRequest(
            "validity_days must be in 1..=36500".into(),
        ));
    }
    let key = idempotency_key(&req)?;
    let cert_uri = state
        .node
        .admin
        .rotate_certificate_keyed(&path, body.validity_days * 86_400, &actor, key.as_deref())
        .await?;
    Ok(web::Json(serde_json::json!({ "cert_uri": cert_uri })))
}

#[utoipa::path(
    post,
    path = "/admin/v1/communities/{kms_uri}/certificates/{serial}/revoke",
    tag = "admin",
    security(("admin_credential" = [])),
    params(("kms_uri" = String, Path), ("serial" = u32, Path)),
    responses(
        (status = 200, description = "revokes a KMS certificate", content_type = "application/json"),
        (status = 404, description = "unknown community or certificate", body = ErrorBody),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn revoke_cert(
    AdminAuth(actor): AdminAuth,
    req: HttpRequest,
    path: web::Path<(String, u32)>,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    let key = idempotency_key(&req)?;
    let (kms_uri, serial) = path.into_inner();
    let cert_uri = format!("{kms_uri}/cert/{serial}");
    state
        .node
        .admin
        .revoke_certificate(&kms_uri, &cert_uri, &actor, key.as_deref())
        .await?;
    Ok(web::Json(serde_json::json!({ "revoked": cert_uri })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct IdentityBody {
    identity: String,
    #[serde(default)]
    reason: String,
}

impl IdentityBody {
    /// The identity, checked once for every identity operation.
    fn identity(&self) -> Result<&str, ApiError> {
        if self.identity.is_empty() || self.identity.len() > 2048 {
            return Err(ApiError::BadRequest(
                "identity must be 1..=2048 bytes".into(),
            ));
        }
        if self.reason.len() > 1024 {
            return Err(ApiError::BadRequest(
                "reason must be at most 1024 bytes".into(),
            ));
        }
        Ok(&self.identity)
    }
}

#[utoipa::path(
    post,
    path = "/admin/v1/communities/{kms_uri}/revocations",
    tag = "admin",
    security(("admin_credential" = [])),
    params(("kms_uri" = String, Path)),
    request_body = IdentityBody,
    responses(
        (status = 200, description = "revokes an identity (no key sets are issued for it)", content_type = "application/json"),
        (status = 400, description = "bad identity or reason", body = ErrorBody),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn revoke_identity(
    AdminAuth(actor): AdminAuth,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    let key = idempotency_key(&req)?;
    let body: IdentityBody = admin_json(&req, payload, state.body).await?;
    let identity = body.identity()?;
    state
        .node
        .admin
        .revoke_identity(&path, identity, &body.reason, &actor, key.as_deref())
        .await?;
    Ok(web::Json(serde_json::json!({ "revoked": body.identity })))
}

#[utoipa::path(
    post,
    path = "/admin/v1/communities/{kms_uri}/revocations/delete",
    tag = "admin",
    security(("admin_credential" = [])),
    params(("kms_uri" = String, Path)),
    request_body = IdentityBody,
    responses(
        (status = 200, description = "reinstates a revoked identity", content_type = "application/json"),
        (status = 400, description = "bad identity, or not revoked", body = ErrorBody),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn reinstate_identity(
    AdminAuth(actor): AdminAuth,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    let key = idempotency_key(&req)?;
    let body: IdentityBody = admin_json(&req, payload, state.body).await?;
    let identity = body.identity()?;
    state
        .node
        .admin
        .reinstate_identity(&path, identity, &actor, key.as_deref())
        .await?;
    Ok(web::Json(
        serde_json::json!({ "reinstated": body.identity }),
    ))
}
