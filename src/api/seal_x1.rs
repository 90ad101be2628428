//! SEAL-X1: the key management server ↔ the group management server (TS 33.434 5.1; TS 33.180
//! E.1.1). Every request is authenticated by the [`PartyAuth`] extractor and authorised by
//! [`super::service::authorize`] with the `gms` role.
//!
//! **Spec flow** — the GMS is a key management client for its own URI: `POST
//! /seal-x1/v1/keymanagement/{init|keyprov|certcache}` answers the TS 33.180 Annex D documents
//! (its ECCSI/SAKKE key set and the KMS certificates), exactly as KM-UU does for users. With
//! them it generates GMKs itself and sends them to members in MIKEY-SAKKE I_MESSAGEs signed
//! with its SSK (`crypto::mikey`; `sealkm client gms imessage`).
//!
//! **Our extension** — KMS-managed group keys, for groups the GMS's ACL entry names:
//! - `POST /seal-x1/v1/groups/{group_id}/keys` `{"ttl_s"?}` creates version 1, or rotates to the
//!   next version: a fresh 16-octet GMK and GMK-ID, sealed and replicated; 201 with the key;
//! - `GET /seal-x1/v1/groups/{group_id}/keys` the versions (no keys);
//! - `GET /seal-x1/v1/groups/{group_id}/keys/{version|current}` one version with its GMK;
//! - `POST /seal-x1/v1/groups/{group_id}/keys/{version}/revoke`;
//! - `PUT /seal-x1/v1/groups/{group_id}/keys/{version}/expiry` `{"expires_unix": n | null}`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::PartyAuth;
use super::body::{idempotency_key, optional_json, read_json};
use super::documents::{documents_scope, handle_for, Caller};
use super::error::{ApiError, ErrorBody};
use super::group_keys::{self, entitled, key_response, parse_version, GroupInfo};
use super::AppState;
use crate::kms::acl::Role;

pub const ROOT: &str = "/seal-x1/v1";
const KM_ROOT: &str = "/seal-x1/v1/keymanagement";
/// Largest JSON body of a group key request.
const MAX_JSON_BODY: usize = 4 * 1024;

/// Registers the routes of this module inside the [`ROOT`] scope (the parent module adds the
/// subscription routes beside them).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(documents_scope("/keymanagement", key_management))
        .route("/groups/{group_id}/keys", web::post().to(create_key))
        .route("/groups/{group_id}/keys", web::get().to(list_versions))
        .route("/groups/{group_id}/keys/{version}", web::get().to(get_key))
        .route(
            "/groups/{group_id}/keys/{version}/revoke",
            web::post().to(revoke_key),
        )
        .route(
            "/groups/{group_id}/keys/{version}/expiry",
            web::put().to(set_expiry),
        );
}

/// TS 33.180 Annex D documents for the GMS's own URI (init, keyprov, certcache).
#[utoipa::path(
    post,
    path = "/seal-x1/v1/keymanagement/{document}",
    tag = "SEAL-X1",
    params(("document" = String, Path, description = "init | keyprov[/<own URI>[/<NTP time>]] | certcache[/<cache number>]")),
    request_body(content = String, content_type = "application/xml", description = "optional TS 33.180 KmsRequest"),
    responses(
        (status = 200, description = "TS 33.180 KmsResponse", content_type = "application/xml", body = String),
        (status = 401, description = "no client certificate or no valid access token (KmsResponse with KmsError)"),
        (status = 403, description = "certificate and token name different parties, or no gms grant"),
    )
)]
pub async fn key_management(
    req: HttpRequest,
    party: Result<PartyAuth, ApiError>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let caller = party.map(|p| Caller::Party(p, Role::Gms));
    handle_for(req, caller, payload, state, KM_ROOT).await
}

/// Body of a group key creation or rotation.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Seconds until the new version expires (none: no expiry).
    #[serde(default)]
    pub ttl_s: Option<u64>,
}

/// Creates (version 1) or rotates (next version) a KMS-managed group key.
#[utoipa::path(
    post,
    path = "/seal-x1/v1/groups/{group_id}/keys",
    tag = "SEAL-X1 (extension)",
    params(("group_id" = String, Path)),
    request_body = CreateKey,
    responses(
        (status = 201, description = "the new version with its GMK", body = group_keys::GroupKeyBody),
        (status = 400, description = "malformed group id or body"),
        (status = 403, description = "the ACL does not name this group"),
        (status = 409, description = "concurrent rotation; retry"),
        (status = 413, description = "body too large"),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a version may have been created: retry with the same Idempotency-Key)", body = ErrorBody),
        (status = 507, description = "no space for new data on this node (`proposed: false`)", body = ErrorBody),
    )
)]
pub async fn create_key(
    party: PartyAuth,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let group_id = path.into_inner();
    let body: CreateKey =
        optional_json(&req, payload, state.body.with_limit(MAX_JSON_BODY)).await?;
    let ttl_s = body.ttl_s;
    let p = entitled(&state, party, Role::Gms, &group_id).await?;
    let idem = idempotency_key(&req)?;
    let key = state
        .node
        .groups
        .create_group_key(&group_id, ttl_s, &p.actor(), idem.as_deref())
        .await?;
    Ok(key_response(StatusCode::CREATED, &key))
}

/// The versions of a group (metadata only).
#[utoipa::path(
    get,
    path = "/seal-x1/v1/groups/{group_id}/keys",
    tag = "SEAL-X1 (extension)",
    params(("group_id" = String, Path)),
    responses(
        (status = 200, body = group_keys::GroupInfo),
        (status = 403, description = "the ACL does not name this group"),
        (status = 404, description = "unknown group"),
    )
)]
pub async fn list_versions(
    party: PartyAuth,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<web::Json<GroupInfo>, ApiError> {
    group_keys::list_versions(party, &state, Role::Gms, &path).await
}

/// One version (or the current one) with its GMK.
#[utoipa::path(
    get,
    path = "/seal-x1/v1/groups/{group_id}/keys/{version}",
    tag = "SEAL-X1 (extension)",
    params(("group_id" = String, Path), ("version" = String, Path, description = "a version number or `current`")),
    responses(
        (status = 200, body = group_keys::GroupKeyBody),
        (status = 403, description = "the ACL does not name this group"),
        (status = 404, description = "unknown group or version, or no current version"),
    )
)]
pub async fn get_key(
    party: PartyAuth,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (group_id, version) = path.into_inner();
    group_keys::get_key(party, &state, Role::Gms, &group_id, &version).await
}

/// Revokes one version: it is never current again.
#[utoipa::path(
    post,
    path = "/seal-x1/v1/groups/{group_id}/keys/{version}/revoke",
    tag = "SEAL-X1 (extension)",
    params(("group_id" = String, Path), ("version" = u32, Path)),
    responses(
        (status = 200, description = "revoked", body = group_keys::GroupInfo),
        (status = 400, description = "already revoked, or a malformed version"),
        (status = 404, description = "unknown group or version"),
    )
)]
pub async fn revoke_key(
    party: PartyAuth,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<web::Json<GroupInfo>, ApiError> {
    let (group_id, version) = path.into_inner();
    let version = parse_version(&version)?
        .ok_or_else(|| ApiError::BadRequest("name a version number to revoke".into()))?;
    let p = entitled(&state, party, Role::Gms, &group_id).await?;
    state
        .node
        .groups
        .revoke_group_key(&group_id, version, &p.actor())
        .await?;
    // Applied here before the write returned: no second barrier needed.
    let group = state.node.groups.group_local(&group_id)?;
    Ok(web::Json(group_keys::group_info(&group, state.node.now())))
}

/// Body of an expiry change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetExpiry {
    /// Unix time from which the version is no longer current; `null` clears the expiry.
    pub expires_unix: Option<u64>,
}

/// Sets or clears one version's expiry.
#[utoipa::path(
    put,
    path = "/seal-x1/v1/groups/{group_id}/keys/{version}/expiry",
    tag = "SEAL-X1 (extension)",
    params(("group_id" = String, Path), ("version" = u32, Path)),
    request_body = SetExpiry,
    responses(
        (status = 200, description = "set", body = group_keys::GroupInfo),
        (status = 400, description = "malformed body, or the version is revoked or expired"),
        (status = 404, description = "unknown group or version"),
    )
)]
pub async fn set_expiry(
    party: PartyAuth,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<GroupInfo>, ApiError> {
    let (group_id, version) = path.into_inner();
    let body: SetExpiry = read_json(&req, payload, state.body.with_limit(MAX_JSON_BODY)).await?;
    let version = parse_version(&version)?
        .ok_or_else(|| ApiError::BadRequest("name a version number".into()))?;
    let p = entitled(&state, party, Role::Gms, &group_id).await?;
    state
        .node
        .groups
        .set_group_key_expiry(&group_id, version, body.expires_unix, &p.actor())
        .await?;
    // Applied here before the write returned: no second barrier needed.
    let group = state.node.groups.group_local(&group_id)?;
    Ok(web::Json(group_keys::group_info(&group, state.node.now())))
}
