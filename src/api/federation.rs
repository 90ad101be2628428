//! Federation over the admin API and the domain lookup for parties (TS 33.180 Annex L.3.2:
//! cross-signing is a manual exchange of `KmsCertificate` documents; the lookup is our
//! extension, since no 3GPP interface maps a user to its KMS):
//! - `GET /admin/v1/federation/export[?community=K]` — our issuing certificate as a
//!   `KmsCertificate` XML document (with `KmsDomainList`) for the partner operator;
//! - `GET /admin/v1/federation/certificates` — the partner certificates and the epoch;
//! - `POST /admin/v1/federation/certificates` `{"document", "communities"?, "rotate"?}` —
//!   imports a partner's document (checked: `kms::partner`);
//! - `POST /admin/v1/federation/certificates/revoke|delete` `{"id"}`;
//! - KM-E (our link between clusters, when `[federation]` is configured):
//!   `POST /admin/v1/federation/pending/approve` `{"id"}` (a certificate the Federator staged),
//!   `POST /admin/v1/federation/refresh` (fetch every partner now, on the leader),
//!   `GET /admin/v1/federation/status` (each partner's last sync, error, failures);
//! - `GET /admin/v1/federation/lookup?uri=U`, and for parties on the service listener
//!   `GET /seal-x1/v1/domain-lookup?uri=U` (the GMS) and `GET /km-s/v1/domain-lookup?uri=U`
//!   (VAL servers) — which KMS serves a user URI.
//!
//! Every route authenticates first (the admin credential, or the party's certificate and
//! token) in its extractor, before the body is read or any Raft work is done.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{AdminAuth, PartyAuth};
use super::body::admin_json;
use super::error::{ApiError, ErrorBody};
use super::service::authorize;
use super::AppState;
use crate::kms::acl::Role;
use crate::kms::partner::PartnerCertificate;
use crate::kms::xml::render_certificate_document;
use crate::node::federation::DomainLookup;

/// Registers the admin routes inside the `/admin/v1` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/federation/export", web::get().to(export))
        .route("/federation/certificates", web::get().to(list))
        .route("/federation/certificates", web::post().to(import))
        .route("/federation/certificates/revoke", web::post().to(revoke))
        .route("/federation/certificates/delete", web::post().to(remove))
        .route("/federation/lookup", web::get().to(admin_lookup))
        .route("/federation/pending/approve", web::post().to(approve))
        .route("/federation/refresh", web::post().to(refresh))
        .route("/federation/status", web::get().to(status));
}

/// Registers the party lookup inside the scope of `role` (SEAL-X1 or KM-S).
pub fn configure_lookup_for(role: Role) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| match role {
        Role::Gms => {
            cfg.route("/domain-lookup", web::get().to(seal_x1_lookup));
        }
        Role::ValServer => {
            cfg.route("/domain-lookup", web::get().to(km_s_lookup));
        }
        _ => {}
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportQuery {
    /// The community (KMS URI); absent: the default community.
    community: Option<String>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/federation/export",
    tag = "Federation",
    security(("admin_credential" = [])),
    params(ExportQuery),
    responses(
        (status = 200, description = "our issuing KmsCertificate (Role Root, with KmsDomainList) as an XML document", content_type = "application/xml"),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "unknown community, or no valid certificate", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn export(
    _admin: AdminAuth,
    query: web::Query<ExportQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let doc = state
        .node
        .federation
        .export(query.community.as_deref())
        .await?;
    let xml = render_certificate_document(&doc)
        .map_err(|e| ApiError::Internal(format!("render: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/xml")
        .body(xml.as_str().to_owned()))
}

/// A partner certificate as the admin API shows it (all public).
#[derive(Serialize, ToSchema)]
pub struct PartnerBody {
    pub id: String,
    pub kms_uri: String,
    pub cert_uri: Option<String>,
    pub kms_domains: Vec<String>,
    /// Our communities whose CertCache serves it; empty: all.
    pub communities: Vec<String>,
    pub valid_from: u64,
    pub valid_to: u64,
    pub revoked: bool,
    pub is_security_gateway: Option<bool>,
    pub imported: u64,
    /// The KPAK, upper-case hex (compare it with the partner out of band).
    pub pub_auth_key: String,
}

impl From<&PartnerCertificate> for PartnerBody {
    fn from(c: &PartnerCertificate) -> Self {
        Self {
            id: c.id.clone(),
            kms_uri: c.kms_uri.clone(),
            cert_uri: c.cert_uri.clone(),
            kms_domains: c.kms_domains.clone(),
            communities: c.communities.clone(),
            valid_from: c.valid_from_unix,
            valid_to: c.valid_to_unix,
            revoked: c.revoked,
            is_security_gateway: c.is_security_gateway,
            imported: c.imported_unix,
            pub_auth_key: hex::encode_upper(&c.pub_auth_key),
        }
    }
}

/// Every partner certificate.
#[derive(Serialize, ToSchema)]
pub struct PartnerList {
    /// Bumped by every partner change (it is part of every CertCache's `CacheNum`).
    pub epoch: u64,
    pub certificates: Vec<PartnerBody>,
    /// Fetched over KM-E, waiting for an operator's approval.
    pub pending: Vec<PartnerBody>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/federation/certificates",
    tag = "Federation",
    security(("admin_credential" = [])),
    responses(
        (status = 200, body = PartnerList),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn list(
    _admin: AdminAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<PartnerList>, ApiError> {
    let set = state.node.federation.partners().await?;
    Ok(web::Json(PartnerList {
        epoch: set.epoch,
        certificates: set.certificates.iter().map(PartnerBody::from).collect(),
        pending: set.pending.iter().map(PartnerBody::from).collect(),
    }))
}

/// An import: the partner's document as its operator exported it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportBody {
    /// The `KmsCertificate` (or `SignedKmsCertificate`) XML document.
    document: String,
    /// Our communities whose CertCache serves it; absent or empty: all.
    #[serde(default)]
    communities: Vec<String>,
    /// The partner's keys change: allowed only with this set (a rotation).
    #[serde(default)]
    rotate: bool,
}

#[utoipa::path(
    post,
    path = "/admin/v1/federation/certificates",
    tag = "Federation",
    security(("admin_credential" = [])),
    request_body = ImportBody,
    responses(
        (status = 200, description = "imported (or the same certificate again: its sharing set)", body = PartnerBody),
        (status = 400, description = "the document or a check refused it (the reason says which)", body = ErrorBody),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "unknown community", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 503, description = "no quorum, or unknown outcome: list, then retry", body = ErrorBody),
    )
)]
pub(super) async fn import(
    AdminAuth(actor): AdminAuth,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<PartnerBody>, ApiError> {
    let body: ImportBody = admin_json(&req, payload, state.body).await?;
    let cert = state
        .node
        .federation
        .import(
            body.document.as_bytes(),
            body.communities,
            body.rotate,
            &actor,
        )
        .await?;
    Ok(web::Json(PartnerBody::from(&cert)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct IdBody {
    /// The partner certificate's id (as listed).
    id: String,
}

#[utoipa::path(
    post,
    path = "/admin/v1/federation/certificates/revoke",
    tag = "Federation",
    security(("admin_credential" = [])),
    request_body = IdBody,
    responses(
        (status = 200, description = "revoked: served with Revoked=true until its ValidTo, no longer used by the lookup"),
        (status = 400, description = "already revoked", body = ErrorBody),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "unknown partner certificate", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn revoke(
    AdminAuth(actor): AdminAuth,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<serde_json::Value>, ApiError> {
    let body: IdBody = admin_json(&req, payload, state.body).await?;
    state
        .node
        .federation
        .retire(&body.id, false, &actor)
        .await?;
    Ok(web::Json(serde_json::json!({ "revoked": body.id })))
}

#[utoipa::path(
    post,
    path = "/admin/v1/federation/certificates/delete",
    tag = "Federation",
    security(("admin_credential" = [])),
    request_body = IdBody,
    responses(
        (status = 200, description = "removed"),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "unknown partner certificate", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn remove(
    AdminAuth(actor): AdminAuth,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<serde_json::Value>, ApiError> {
    let body: IdBody = admin_json(&req, payload, state.body).await?;
    state.node.federation.retire(&body.id, true, &actor).await?;
    Ok(web::Json(serde_json::json!({ "removed": body.id })))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct LookupQuery {
    /// A user URI (`sip:user@domain`, `https://host/...`).
    uri: String,
}

/// Which KMS serves a URI (our extension).
#[derive(Serialize, ToSchema)]
pub struct LookupAnswer {
    pub uri: String,
    /// The KMS URI (for IDRkmsr / IDRkmsi and the UID).
    pub kms_uri: String,
    /// The `KmsDomain` that matched.
    pub domain: String,
    /// The domain matched exactly (else as the longest listed parent domain).
    pub exact: bool,
    /// One of this cluster's communities (else a partner KMS from its External certificate).
    pub ours: bool,
}

async fn lookup(state: &AppState, uri: String) -> Result<web::Json<LookupAnswer>, ApiError> {
    if uri.is_empty() || uri.len() > crate::kms::names::MAX_IDENTITY_BYTES {
        return Err(ApiError::BadRequest("uri must be 1..=2048 bytes".into()));
    }
    let found: Option<DomainLookup> = state.node.federation.lookup(&uri).await?;
    let f = found
        .ok_or_else(|| ApiError::NotFound("no known KMS serves the domain of this URI".into()))?;
    Ok(web::Json(LookupAnswer {
        uri,
        kms_uri: f.kms_uri,
        domain: f.domain,
        exact: f.exact,
        ours: f.ours,
    }))
}

#[utoipa::path(
    get,
    path = "/admin/v1/federation/lookup",
    tag = "Federation",
    security(("admin_credential" = [])),
    params(LookupQuery),
    responses(
        (status = 200, body = LookupAnswer),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "no known KMS serves the URI's domain", body = ErrorBody),
    )
)]
pub(super) async fn admin_lookup(
    _admin: AdminAuth,
    query: web::Query<LookupQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<LookupAnswer>, ApiError> {
    lookup(&state, query.into_inner().uri).await
}

/// Which KMS serves a member's URI, for the GMS (our extension).
#[utoipa::path(
    get,
    path = "/seal-x1/v1/domain-lookup",
    tag = "Federation",
    params(LookupQuery),
    responses(
        (status = 200, body = LookupAnswer),
        (status = 403, description = "no gms grant", body = ErrorBody),
        (status = 404, description = "no known KMS serves the URI's domain", body = ErrorBody),
    )
)]
pub(super) async fn seal_x1_lookup(
    party: PartyAuth,
    query: web::Query<LookupQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<LookupAnswer>, ApiError> {
    authorize(&state, party, Role::Gms).await?;
    lookup(&state, query.into_inner().uri).await
}

/// Which KMS serves a user's URI, for VAL servers (our extension).
#[utoipa::path(
    get,
    path = "/km-s/v1/domain-lookup",
    tag = "Federation",
    params(LookupQuery),
    responses(
        (status = 200, body = LookupAnswer),
        (status = 403, description = "no val-server grant", body = ErrorBody),
        (status = 404, description = "no known KMS serves the URI's domain", body = ErrorBody),
    )
)]
pub(super) async fn km_s_lookup(
    party: PartyAuth,
    query: web::Query<LookupQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<LookupAnswer>, ApiError> {
    authorize(&state, party, Role::ValServer).await?;
    lookup(&state, query.into_inner().uri).await
}

#[utoipa::path(
    post,
    path = "/admin/v1/federation/pending/approve",
    tag = "Federation",
    security(("admin_credential" = [])),
    request_body = IdBody,
    responses(
        (status = 200, description = "approved: imported as External (a key change of the partner allowed)", body = PartnerBody),
        (status = 400, description = "the import checks refuse it now", body = ErrorBody),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "no such pending certificate", body = ErrorBody),
        (status = 503, description = "no quorum; retry after Retry-After (`proposed: false`: refused before it was proposed, no effect; without it a write may have taken effect)", body = ErrorBody),
    )
)]
pub(super) async fn approve(
    AdminAuth(actor): AdminAuth,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<PartnerBody>, ApiError> {
    let body: IdBody = admin_json(&req, payload, state.body).await?;
    let cert = state.node.federation.approve(&body.id, &actor).await?;
    Ok(web::Json(PartnerBody::from(&cert)))
}

/// The Federator of this node, or why there is none.
fn federator(
    state: &AppState,
) -> Result<&actix::Addr<crate::actors::federator::Federator>, ApiError> {
    state
        .federator
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("KM-E is not configured on this node".into()))
}

#[utoipa::path(
    post,
    path = "/admin/v1/federation/refresh",
    tag = "Federation",
    security(("admin_credential" = [])),
    responses(
        (status = 200, description = "every partner fetched now: each partner's status (staged, revoked, refused, error)", content_type = "application/json"),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "KM-E is not configured", body = ErrorBody),
        (status = 409, description = "this node is not the leader", body = ErrorBody),
    )
)]
pub(super) async fn refresh(
    _admin: AdminAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<serde_json::Value>, ApiError> {
    use crate::actors::federator::{Refresh, Refreshed};
    let answer = federator(&state)?
        .send(Refresh)
        .await
        .map_err(|e| ApiError::Internal(format!("federator: {e}")))?;
    match answer {
        Refreshed::NotLeader => Err(ApiError::NotLeader {
            leader_id: state.node.store().status().leader_id,
        }),
        Refreshed::Done(status) => Ok(web::Json(serde_json::json!({ "partners": status }))),
    }
}

#[utoipa::path(
    get,
    path = "/admin/v1/federation/status",
    tag = "Federation",
    security(("admin_credential" = [])),
    responses(
        (status = 200, description = "each partner's last sync, last error, failures (this node's Federator; it acts on the leader)", content_type = "application/json"),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "KM-E is not configured", body = ErrorBody),
    )
)]
pub(super) async fn status(
    _admin: AdminAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<serde_json::Value>, ApiError> {
    let status = federator(&state)?
        .send(crate::actors::federator::Status)
        .await
        .map_err(|e| ApiError::Internal(format!("federator: {e}")))?;
    let pending = state.node.federation.partners().await?.pending.len();
    Ok(web::Json(
        serde_json::json!({ "partners": status, "pending": pending }),
    ))
}
