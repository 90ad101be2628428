//! KMS-managed group keys over the service listener — **our extension** (see `node::groups`).
//! The JSON shapes and the read handlers shared by SEAL-X1 (the group management server) and
//! KM-S (VAL servers): both read only groups their ACL entry names. GMKs travel hex-encoded
//! inside the mutually authenticated TLS connection, in a zeroized buffer, with
//! `Cache-Control: no-store`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::PartyAuth;
use super::body::ZeroizingBody;
use super::error::ApiError;
use super::service::{authorize, Principal};
use super::AppState;
use crate::kms::acl::Role;
use crate::kms::group::{Group, GroupKeyVersion};
use crate::node::groups::GroupKey;

/// One key version without its key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    pub version: u32,
    /// TS 33.180 GMK-ID, 8 hex digits (purpose tag 0 = GMK in the top 4 bits).
    pub gmk_id: String,
    pub created_unix: u64,
    pub expires_unix: Option<u64>,
    pub revoked: bool,
    /// Whether this is the group's current version (not revoked, not expired, newest).
    pub current: bool,
}

/// A group's versions (metadata only).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupInfo {
    pub group_id: String,
    /// The current version, if any is usable.
    pub current_version: Option<u32>,
    pub versions: Vec<VersionInfo>,
}

/// One key version with its GMK.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupKeyBody {
    pub group_id: String,
    #[serde(flatten)]
    pub info: VersionInfo,
    /// The 16-octet GMK, 32 hex digits.
    pub gmk: String,
}

fn version_info(v: &GroupKeyVersion, current: Option<u32>) -> VersionInfo {
    VersionInfo {
        version: v.version,
        gmk_id: format!("{:08x}", v.gmk_id),
        created_unix: v.created_unix,
        expires_unix: v.expires_unix,
        revoked: v.revoked,
        current: current == Some(v.version),
    }
}

pub fn group_info(group: &Group, now: u64) -> GroupInfo {
    let current = group.current(now).map(|v| v.version);
    GroupInfo {
        group_id: group.group_id.clone(),
        current_version: current,
        versions: group
            .versions
            .iter()
            .map(|v| version_info(v, current))
            .collect(),
    }
}

/// The response carrying a GMK: serialized into a buffer that is zeroized after sending.
pub fn key_response(status: StatusCode, key: &GroupKey) -> HttpResponse {
    let mut body = GroupKeyBody {
        group_id: key.group_id.clone(),
        info: version_info(&key.version, key.current.then_some(key.version.version)),
        gmk: hex::encode(key.gmk.expose()),
    };
    let text = zeroize::Zeroizing::new(serde_json::to_string(&body).unwrap_or_default());
    zeroize::Zeroize::zeroize(&mut body.gmk);
    HttpResponse::build(status)
        .content_type("application/json")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(web::Bytes::from(ZeroizingBody(text)))
}

/// Parses a `{version}` path segment: a positive decimal number, or `current`.
pub fn parse_version(seg: &str) -> Result<Option<u32>, ApiError> {
    if seg == "current" {
        return Ok(None);
    }
    match seg.parse::<u32>() {
        Ok(v) if v > 0 => Ok(Some(v)),
        _ => Err(ApiError::BadRequest(
            "key version must be a positive number or 'current'".into(),
        )),
    }
}

/// Authorises the authenticated `party` with `role` (the request's one read barrier), then
/// checks the ACL for `group_id` (403). A malformed group id is refused first (400).
pub async fn entitled(
    state: &AppState,
    party: PartyAuth,
    role: Role,
    group_id: &str,
) -> Result<Principal, ApiError> {
    crate::kms::group::check_group_id_in_path(&party.raw_path, group_id)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let p = authorize(state, party, role).await?;
    p.check_group(group_id)?;
    Ok(p)
}

/// `GET …/groups/{group_id}/keys`: the versions of a group (no key material).
pub async fn list_versions(
    party: PartyAuth,
    state: &AppState,
    role: Role,
    group_id: &str,
) -> Result<web::Json<GroupInfo>, ApiError> {
    entitled(state, party, role, group_id).await?;
    let group = state.node.groups.group_local(group_id)?;
    Ok(web::Json(group_info(&group, state.node.now())))
}

/// `GET …/groups/{group_id}/keys/{version|current}`: one version with its GMK.
pub async fn get_key(
    party: PartyAuth,
    state: &AppState,
    role: Role,
    group_id: &str,
    version: &str,
) -> Result<HttpResponse, ApiError> {
    let version = parse_version(version)?;
    let p = entitled(state, party, role, group_id).await?;
    let group = state.node.groups.group_local(group_id)?;
    let key = state
        .node
        .groups
        .group_key(&group, version, &p.actor())
        .await?;
    Ok(key_response(StatusCode::OK, &key))
}
