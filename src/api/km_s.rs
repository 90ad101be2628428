//! KM-S: the key management server ↔ VAL servers (TS 33.434 5.1, 5.3, 5.8). Every request is
//! authenticated by the [`PartyAuth`] extractor and authorised by
//! [`super::service::authorize`] with the `val-server` role.
//!
//! - `POST /km-s/v1/keymanagement/{init|keyprov|certcache}` — SEAL KM (TS 33.434 5.3): the VAL
//!   server's own key set for its name and the KMS certificates, as TS 33.180 Annex D
//!   documents;
//! - `GET /km-s/v1/groups/{group_id}/keys[/{version|current}]` — the KMS-managed keys of the
//!   groups its ACL entry names (our extension; 403 for any other group, 404 for an unknown
//!   one);
//! - `POST /km-s/v1/key-provisioning` `{"key_id", "key_info": base64[, "val_service_id"[,
//!   "val_tgt_ue"]]}` — SEAL key provisioning (TS 33.434 5.8): accepted only with a token whose
//!   `SKeyProv` claim is present (5.8.1); the information is stored sealed and replicated; the
//!   SEAL KP response is an acknowledgement (201) or an error code. With `val_service_id` it
//!   is what TS 29.549 `ss-kir` answers for that service (and target) (see [`super::ss_kir`]).
//!
//! These routes are our interface for the TS 33.434 procedures (TS 29.549 defines only
//! `ss-kir`); their errors are `{"error": reason}` ([`super::error`]).

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::PartyAuth;
use super::body::read_body;
use super::documents::{documents_scope, handle_for, Caller};
use super::error::ApiError;
use super::group_keys;
use super::service::authorize;
use super::AppState;
use crate::kms::acl::Role;
use crate::node::key_provisioning::{ValTarget, MAX_KEY_INFO_BYTES};

pub const ROOT: &str = "/km-s/v1";
const KM_ROOT: &str = "/km-s/v1/keymanagement";
/// The access token claim that authorises SEAL key provisioning (TS 33.434 5.8.1, A.2.2.3).
pub const SKEYPROV_CLAIM: &str = "SKeyProv";
/// Largest key provisioning body (base64 of the largest key information plus the key id).
const MAX_KP_BODY: usize = MAX_KEY_INFO_BYTES * 4 / 3 + 4096;

/// Registers the routes of this module inside the [`ROOT`] scope (the parent module adds the
/// subscription routes beside them).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(documents_scope("/keymanagement", key_management))
        .route("/groups/{group_id}/keys", web::get().to(list_versions))
        .route("/groups/{group_id}/keys/{version}", web::get().to(get_key))
        .route("/key-provisioning", web::post().to(key_provisioning));
}

/// SEAL KM for the VAL server's own name: TS 33.180 Annex D documents.
#[utoipa::path(
    post,
    path = "/km-s/v1/keymanagement/{document}",
    tag = "KM-S",
    params(("document" = String, Path, description = "init | keyprov[/<own name>[/<NTP time>]] | certcache[/<cache number>]")),
    request_body(content = String, content_type = "application/xml", description = "optional TS 33.180 KmsRequest"),
    responses(
        (status = 200, description = "TS 33.180 KmsResponse", content_type = "application/xml", body = String),
        (status = 401, description = "no client certificate or no valid access token"),
        (status = 403, description = "certificate and token name different parties, or no val-server grant"),
    )
)]
pub async fn key_management(
    req: HttpRequest,
    party: Result<PartyAuth, ApiError>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let caller = party.map(|p| Caller::Party(p, Role::ValServer));
    handle_for(req, caller, payload, state, KM_ROOT).await
}

/// The versions of an entitled group (metadata only).
#[utoipa::path(
    get,
    path = "/km-s/v1/groups/{group_id}/keys",
    tag = "KM-S (extension)",
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
) -> Result<web::Json<group_keys::GroupInfo>, ApiError> {
    group_keys::list_versions(party, &state, Role::ValServer, &path).await
}

/// One version (or the current one) of an entitled group, with its GMK.
#[utoipa::path(
    get,
    path = "/km-s/v1/groups/{group_id}/keys/{version}",
    tag = "KM-S (extension)",
    params(("group_id" = String, Path), ("version" = String, Path, description = "a version number or `current`")),
    responses(
        (status = 200, body = group_keys::GroupKeyBody),
        (status = 400, description = "malformed group id or version"),
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
    group_keys::get_key(party, &state, Role::ValServer, &group_id, &version).await
}

/// SEAL KP request (TS 33.434 5.8.2).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyProvisioningRequest {
    /// Names the key information (printable, no '/', at most 255 bytes); a second push under
    /// the same id replaces the first.
    pub key_id: String,
    /// The key information, base64 (standard alphabet, padded).
    pub key_info: String,
    /// The VAL service the key information is for: makes it retrievable over TS 29.549
    /// `ss-kir` (`GET /ss-kir/v1/key-records?val-service-id=…`). At most 1024 bytes, no
    /// control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_service_id: Option<String>,
    /// The target VAL user or UE within that service (only with `val_service_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_tgt_ue: Option<String>,
}

/// SEAL KP response (TS 33.434 5.8.3): the acknowledgement.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyProvisioningAck {
    /// Always `acknowledged`.
    pub result: String,
    pub key_id: String,
    /// When the KMS stored it.
    pub stored_unix: u64,
}

/// SEAL key provisioning: stores pushed key information, sealed and replicated.
#[utoipa::path(
    post,
    path = "/km-s/v1/key-provisioning",
    tag = "KM-S",
    request_body = KeyProvisioningRequest,
    responses(
        (status = 201, description = "SEAL KP response: acknowledged", body = KeyProvisioningAck),
        (status = 400, description = "malformed body, key id, base64, val_service_id or val_tgt_ue"),
        (status = 401, description = "no client certificate or no valid access token"),
        (status = 403, description = "the access token carries no SKeyProv claim, or no val-server grant"),
        (status = 413, description = "body too large"),
    )
)]
pub async fn key_provisioning(
    party: PartyAuth,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !party.token.has_claim(SKEYPROV_CLAIM) {
        return Err(ApiError::Forbidden(format!(
            "the access token does not carry the {SKEYPROV_CLAIM} claim (TS 33.434 5.8.1)"
        )));
    }
    // The body holds key information: zeroized once parsed.
    let mut body = read_body(&req, payload, state.body.with_limit(MAX_KP_BODY)).await?;
    let parsed = serde_json::from_slice::<KeyProvisioningRequest>(&body);
    zeroize::Zeroize::zeroize(&mut body[..]);
    let KeyProvisioningRequest {
        key_id,
        key_info,
        val_service_id,
        val_tgt_ue,
    } = parsed.map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let target = match (val_service_id, val_tgt_ue) {
        (None, None) => None,
        (Some(val_service_id), val_tgt_ue) => Some(ValTarget {
            val_service_id,
            val_tgt_ue,
        }),
        (None, Some(_)) => {
            return Err(ApiError::BadRequest(
                "val_tgt_ue needs val_service_id".into(),
            ))
        }
    };
    // The base64 text is the key information too: zeroized when dropped.
    let key_info = zeroize::Zeroizing::new(key_info);
    let p = authorize(&state, party, Role::ValServer).await?;
    let info = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(key_info.as_bytes())
            .map_err(|_| ApiError::BadRequest("key_info is not valid base64".into()))?,
    );
    let stored_unix = state
        .node
        .parties
        .put_key_provisioning(&p.name, &key_id, &info, target.as_ref(), &p.actor())
        .await?;
    Ok(HttpResponse::Created().json(KeyProvisioningAck {
        result: "acknowledged".into(),
        key_id: key_id.clone(),
        stored_unix,
    }))
}
