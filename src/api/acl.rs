//! `/admin/v1/acl` (admin credential): the replicated ACL of the service interfaces.
//! - `GET acl` — every entry `{principal, role, groups}`;
//! - `POST acl {"principal", "role": "val-server"|"gms"|"admin", "groups": [...]}` — set one;
//! - `POST acl/delete {"principal"}` — remove one.
//!
//! Registered inside the `/admin/v1` scope by the parent module.

use actix_web::{web, HttpRequest};
use serde::Deserialize;
use serde_json::Value;

use super::auth::AdminAuth;
use super::body::admin_json;
use super::error::{ApiError, ErrorBody};
use super::AppState;

/// Registers the routes of this module inside the `/admin/v1` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/acl", web::get().to(list))
        .route("/acl", web::post().to(set))
        .route("/acl/delete", web::post().to(remove));
}

#[utoipa::path(
    get,
    path = "/admin/v1/acl",
    tag = "admin",
    security(("admin_credential" = [])),
    responses(
        (status = 200, description = "every ACL entry {principal, role, groups}", content_type = "application/json"),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn list(
    _admin: AdminAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    let entries = state.node.parties.acl_entries().await?;
    Ok(web::Json(serde_json::json!({ "acl": entries })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetBody {
    principal: String,
    role: String,
    #[serde(default)]
    groups: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/acl",
    tag = "admin",
    security(("admin_credential" = [])),
    request_body = SetBody,
    responses(
        (status = 200, description = "sets one principal's role and groups", content_type = "application/json"),
        (status = 400, description = "bad principal, role or group", body = ErrorBody),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn set(
    AdminAuth(actor): AdminAuth,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    let body: SetBody = admin_json(&req, payload, state.body).await?;
    let entry = state
        .node
        .parties
        .acl_set(&body.principal, &body.role, &body.groups, &actor)
        .await?;
    Ok(web::Json(serde_json::json!({ "set": entry })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveBody {
    principal: String,
}

#[utoipa::path(
    post,
    path = "/admin/v1/acl/delete",
    tag = "admin",
    security(("admin_credential" = [])),
    request_body = RemoveBody,
    responses(
        (status = 200, description = "removes one principal's entry", content_type = "application/json"),
        (status = 400, description = "no such entry", body = ErrorBody),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn remove(
    AdminAuth(actor): AdminAuth,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    let body: RemoveBody = admin_json(&req, payload, state.body).await?;
    state
        .node
        .parties
        .acl_remove(&body.principal, &actor)
        .await?;
    Ok(web::Json(serde_json::json!({ "removed": body.principal })))
}
