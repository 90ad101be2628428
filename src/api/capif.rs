//! CAPIF on the HTTP edge (TS 29.549 clause 8, TS 29.222, TS 33.122 6.5.2): who invokes
//! `ss-kir`, the CCF's `revoke-authorization`, and the CAPIF admin routes.
//!
//! [`SsKirCaller`] authenticates an `ss-kir` caller before anything else, in this order:
//! 1. without `[capif]`: a party, exactly as before ([`PartyAuth`]);
//! 2. a client certificate issued under the CCF's CA: a **PKI** invoker, its id the
//!    certificate's common name (else its first subject alternative name); its authorisation
//!    is then fetched from the CCF (`trustedInvokers`, cached) — [`authorize_invoker`];
//! 3. any other client certificate: a party ([`PartyAuth`]);
//! 4. no certificate and a bearer token: an **OAUTH** invoker, the token verified against the
//!    CCF's keys ([`crate::auth::capif`]); its scope must name this AEF and `ss-kir`.
//!
//! [`authorize_invoker`] then makes the request's one read barrier, refuses an invoker the
//! CCF revoked (replicated state, so every node refuses it at once), and reads the ACL entry
//! of `capif:<apiInvokerId>` (role `val-server`): what the invoker may read
//! ([`crate::kms::capif`]).
//!
//! `POST /aef-security/v1/revoke-authorization` (TS 29.222 `AEF_Security_API`) is served only
//! to a client certificate of the CCF's CA that carries one of `[capif] ccf_names`.
//! Admin: `GET /admin/v1/capif` (status), `POST /admin/v1/capif/publish`, `POST
//! /admin/v1/capif/unpublish`, `POST /admin/v1/capif/reinstate` (lift a revocation).

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::auth::{app_state, authorization, names_match, AdminAuth, PartyAuth};
use super::error::{ApiError, ErrorBody};
use super::problem::{Problem, ProblemDetails};
use super::AppState;
use crate::actors::capif::{Capif, CapifError};
use crate::auth::bearer_token;
use crate::kms::acl::{AclEntry, Role};
use crate::kms::capif::invoker_principal;
use crate::node::core::Actor;
use crate::tls::PeerCert;

impl From<CapifError> for ApiError {
    fn from(e: CapifError) -> Self {
        match e {
            CapifError::Unreachable(why) => {
                tracing::warn!(error = %why, "the CCF cannot be reached");
                ApiError::Unavailable { retry_after_s: 5 }
            }
            CapifError::Refused(why) => ApiError::Conflict(format!("the CCF refused: {why}")),
            CapifError::NotAuthorised(_) => ApiError::Forbidden(
                "the CAPIF core function does not authorise this invoker here".into(),
            ),
            CapifError::Node(e) => e.into(),
            CapifError::Config(why) => ApiError::Internal(why),
        }
    }
}

/// A CAPIF API invoker, authenticated (not yet authorised).
#[derive(Debug, Clone)]
pub struct Invoker {
    /// The `apiInvokerId`.
    pub id: String,
    /// `PKI` or `OAUTH`.
    pub method: &'static str,
    pub src: Option<std::net::SocketAddr>,
}

/// Who calls `ss-kir` (see module docs).
#[derive(Debug, Clone)]
pub enum SsKirCaller {
    Party(PartyAuth),
    Invoker(Invoker),
}

/// The invoker id of a CCF-issued certificate: its common name, else its first SAN.
fn invoker_of_certificate(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .map(str::to_owned);
    cn.or_else(|| crate::tls::certificate_names(der).into_iter().next())
        .filter(|s| !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control))
}

impl SsKirCaller {
    fn extract(req: &HttpRequest) -> Result<Self, ApiError> {
        let state = app_state(req)?;
        let Some(capif) = &state.capif else {
            return PartyAuth::extract(req).map(SsKirCaller::Party);
        };
        let src = req.peer_addr();
        match req.conn_data::<PeerCert>() {
            Some(cert) if capif.issued_by_ccf(&cert.0) => {
                let id = invoker_of_certificate(&cert.0).ok_or_else(|| {
                    ApiError::Unauthorized("the invoker certificate names no invoker".into())
                })?;
                Ok(SsKirCaller::Invoker(Invoker {
                    id,
                    method: "PKI",
                    src,
                }))
            }
            Some(_) => PartyAuth::extract(req).map(SsKirCaller::Party),
            None => {
                let header = authorization(req).ok_or_else(|| {
                    ApiError::Unauthorized(
                        "a client certificate or a CAPIF access token is required".into(),
                    )
                })?;
                let token = bearer_token(header).map_err(ApiError::Auth)?;
                let t = capif
                    .verify_token(token, state.node.now())
                    .map_err(ApiError::Auth)?;
                Ok(SsKirCaller::Invoker(Invoker {
                    id: t.invoker,
                    method: "OAUTH",
                    src,
                }))
            }
        }
    }
}

impl FromRequest for SsKirCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::extract(req))
    }
}

/// Authorises an authenticated invoker: the CCF's word for PKI (cached), the request's read
/// barrier, no revocation, and its ACL entry with role `val-server` (returned).
pub async fn authorize_invoker(
    state: &AppState,
    capif: &Capif,
    invoker: &Invoker,
) -> Result<AclEntry, ApiError> {
    if invoker.method == "PKI" {
        capif.authorize_pki(&invoker.id).await?;
    }
    state.node.read_barrier().await?;
    if state.node.parties.capif_revoked_local(&invoker.id)? {
        capif.forget(&invoker.id);
        return Err(ApiError::Forbidden(
            "the CAPIF core function revoked this invoker's authorisation".into(),
        ));
    }
    let principal = invoker_principal(&invoker.id);
    match state.node.parties.acl_entry_local(&principal)? {
        Some(acl) if acl.role == Role::ValServer => Ok(acl),
        _ => Err(ApiError::Forbidden(format!(
            "{principal} has no val-server grant on this interface"
        ))),
    }
}

/// Registers `revoke-authorization` on the service listener.
pub fn configure_service(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/aef-security/v1/revoke-authorization",
        web::post().to(revoke_authorization),
    );
}

/// Registers the CAPIF admin routes inside `/admin/v1`.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.route("/capif", web::get().to(status))
        .route("/capif/publish", web::post().to(publish))
        .route("/capif/unpublish", web::post().to(unpublish))
        .route("/capif/reinstate", web::post().to(reinstate));
}

fn capif_of(state: &AppState) -> Result<&Arc<Capif>, ApiError> {
    state
        .capif
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("CAPIF is not configured on this node ([capif])".into()))
}

/// The CCF itself: a client certificate of the CCF's CA carrying one of `ccf_names`.
fn ccf_caller(req: &HttpRequest, capif: &Capif) -> Result<(), ApiError> {
    let cert = req
        .conn_data::<PeerCert>()
        .ok_or_else(|| ApiError::Unauthorized("the CCF's client certificate is required".into()))?;
    let names = crate::tls::certificate_names(&cert.0);
    if capif.issued_by_ccf(&cert.0) && capif.cfg.ccf_names.iter().any(|n| names_match(&names, n)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the CAPIF core function may revoke authorisations".into(),
        ))
    }
}

/// TS 29.222 `RevokeInfo`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokeInfo {
    pub api_invoker_id: String,
    pub aef_id: String,
    #[serde(default)]
    pub api_ids: Vec<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

/// TS 29.222 `SecurityNotification`-style body of `revoke-authorization`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokeBody {
    pub revoke_info: RevokeInfo,
    #[serde(default)]
    pub supported_features: Option<String>,
}

/// CAPIF `AEF_Security_API` revoke-authorization: the CCF revokes an invoker's authorisation
/// on this AEF; refused on every node from the answer on.
#[utoipa::path(
    post,
    path = "/aef-security/v1/revoke-authorization",
    tag = "capif",
    request_body = RevokeBody,
    security(("mutual_tls" = [])),
    responses(
        (status = 204, description = "revoked: the invoker is refused on every node"),
        (status = 400, description = "malformed body, or aefId is not this AEF", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "no client certificate", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "the certificate is not the CCF's", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "CAPIF is not configured on this node", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "no leader or quorum", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_authorization(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let capif = capif_of(&state)?;
    ccf_caller(&req, capif)?;
    let body: RevokeBody = super::body::admin_json(&req, payload, state.body).await?;
    let info = body.revoke_info;
    if info.aef_id != capif.cfg.aef_id {
        return Err(ApiError::BadRequest("aefId is not this AEF".into()).into());
    }
    state
        .node
        .parties
        .capif_revoke(&info.api_invoker_id, &Actor("capif-ccf".into()))
        .await
        .map_err(ApiError::from)?;
    capif.forget(&info.api_invoker_id);
    tracing::info!(invoker = %info.api_invoker_id, cause = ?info.cause, "CAPIF invoker revoked by the CCF");
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/admin/v1/capif",
    tag = "admin",
    security(("admin_credential" = [])),
    responses(
        (status = 200, description = "CAPIF status: CCF URL, aefId, apfId, the apiId of ss-kir (null: not published), the log spool of this node", content_type = "application/json"),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "CAPIF is not configured", body = ErrorBody),
    )
)]
pub(super) async fn status(
    _admin: AdminAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    let capif = capif_of(&state)?;
    state.node.read_barrier().await?;
    Ok(web::Json(capif.status()?))
}

#[utoipa::path(
    post,
    path = "/admin/v1/capif/publish",
    tag = "admin",
    security(("admin_credential" = [])),
    responses(
        (status = 200, description = "published (or the publication updated): {apiId}", content_type = "application/json"),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "CAPIF is not configured", body = ErrorBody),
        (status = 409, description = "the CCF refused the publication", body = ErrorBody),
        (status = 503, description = "the CCF cannot be reached, or no quorum", body = ErrorBody),
    )
)]
pub(super) async fn publish(
    admin: AdminAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    let id = capif_of(&state)?.publish(&admin.0).await?;
    Ok(web::Json(serde_json::json!({ "apiId": id })))
}

#[utoipa::path(
    post,
    path = "/admin/v1/capif/unpublish",
    tag = "admin",
    security(("admin_credential" = [])),
    responses(
        (status = 200, description = "withdrawn: {apiId} (null: nothing was published)", content_type = "application/json"),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "CAPIF is not configured", body = ErrorBody),
        (status = 409, description = "the CCF refused", body = ErrorBody),
        (status = 503, description = "the CCF cannot be reached, or no quorum", body = ErrorBody),
    )
)]
pub(super) async fn unpublish(
    admin: AdminAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    let id = capif_of(&state)?.unpublish(&admin.0).await?;
    Ok(web::Json(serde_json::json!({ "apiId": id })))
}

/// `POST /admin/v1/capif/reinstate` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReinstateBody {
    pub api_invoker_id: String,
}

#[utoipa::path(
    post,
    path = "/admin/v1/capif/reinstate",
    tag = "admin",
    security(("admin_credential" = [])),
    request_body = ReinstateBody,
    responses(
        (status = 200, description = "the revocation is lifted on every node: {apiInvokerId}", content_type = "application/json"),
        (status = 401, description = "missing or invalid admin credential", body = ErrorBody),
        (status = 404, description = "CAPIF is not configured, or the invoker is not revoked", body = ErrorBody),
        (status = 503, description = "no quorum", body = ErrorBody),
    )
)]
pub(super) async fn reinstate(
    req: HttpRequest,
    payload: web::Payload,
    admin: AdminAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<Value>, ApiError> {
    capif_of(&state)?;
    let body: ReinstateBody = super::body::admin_json(&req, payload, state.body).await?;
    state
        .node
        .parties
        .capif_reinstate(&body.api_invoker_id, &admin.0)
        .await?;
    Ok(web::Json(
        serde_json::json!({ "apiInvokerId": body.api_invoker_id }),
    ))
}
