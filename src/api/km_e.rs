//! KM-E, our link between partner clusters (our extension; the specs define no KMS-to-KMS
//! interface: `../spec/FEDERATION.md` §4). Its own mutual-TLS listener (`[federation.listener]`):
//! the handshake requires a certificate of one of the partners' pinned CAs, and every route
//! first passes [`PartnerPeer`]: the certificate must chain to a configured partner's CA and
//! name that partner (403 otherwise), before anything is read.
//!
//! - `GET /km-e/v1/certificates` — our live KMS certificates (public only) as
//!   [`crate::kms::partner::rotation::Offer`], each newer one signed as a rotation under each
//!   older one still valid: the partner's Federator stages them for its operator, or takes a
//!   signed rotation at once if its policy for us says so.
//! - `POST /km-e/v1/group-keys` — a version of a federated group the partner shares with us
//!   ([`crate::node::federation::FederatedGroupKey`]: the GMK inside a MIKEY-SAKKE I_MESSAGE
//!   between the two KMSs' federation identities): imported if we accept that group from that
//!   partner (200 `{"imported": true|false}`; false: already here), 403 otherwise, 409 out of
//!   order or before its certificate is approved here.
//! - `POST /km-e/v1/group-key-status` — `{"statuses": [FederatedKeyStatus]}`: the current
//!   revoked flag and expiry of versions the partner already gave us
//!   ([`crate::node::federated_status`]), applied idempotently; 200
//!   `{"results": [{"applied": ..} | {"refused": reason}]}` in the batch's order: a status
//!   refused for good (a group not accepted from it, a version not imported here) does not
//!   hold up the others; 503 when the cluster cannot apply now (the partner sends again).
//!
//! No key in clear, no user key set, no Raft state crosses here.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};

use super::auth::names_match;
use super::body::read_json;
use super::error::ApiError;
use super::AppState;
use crate::actors::federator::Offer;
use crate::config::PartnerConfig;
use crate::node::federated_status::{StatusAnswer, StatusBatch};
use crate::node::federation::FederatedGroupKey;
use crate::tls::{certificate_names, chains_to, PeerCert};

/// Registers the KM-E routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/km-e/v1/certificates", web::get().to(certificates))
        .route("/km-e/v1/group-keys", web::post().to(group_key))
        .route(
            "/km-e/v1/group-key-status",
            web::post().to(group_key_status),
        );
}

/// Largest federated group key body (an I_MESSAGE is about 1 KiB).
const MAX_GROUP_KEY_BODY: usize = 16 * 1024;

/// A configured partner, authenticated by its client certificate.
pub struct PartnerPeer(pub PartnerConfig);

impl PartnerPeer {
    fn extract(req: &HttpRequest) -> Result<Self, ApiError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
        let fed = state
            .federation
            .as_ref()
            .ok_or_else(|| ApiError::Forbidden("KM-E is not configured".into()))?;
        let cert = req.conn_data::<PeerCert>().ok_or_else(|| {
            ApiError::Forbidden("a partner's client certificate is required".into())
        })?;
        let names = certificate_names(&cert.0);
        fed.partners
            .iter()
            .find(|p| names_match(&names, &p.name) && chains_to(&cert.0, &p.ca))
            .cloned()
            .map(PartnerPeer)
            .ok_or_else(|| {
                ApiError::Forbidden(
                    "the client certificate is not a configured partner's (its pinned CA and \
                     name)"
                        .into(),
                )
            })
    }
}

impl FromRequest for PartnerPeer {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::extract(req))
    }
}

async fn certificates(
    partner: PartnerPeer,
    state: web::Data<AppState>,
) -> Result<web::Json<Offer>, ApiError> {
    let community = state.federation.as_ref().and_then(|f| f.community.clone());
    let offer = state.node.federation.offer(community.as_deref()).await?;
    tracing::debug!(
        partner = %partner.0.kms_uri,
        certificates = offer.certificates.len(),
        rotations = offer.rotations.len(),
        "KM-E: certificates served"
    );
    Ok(web::Json(offer))
}

async fn group_key(
    partner: PartnerPeer,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<serde_json::Value>, ApiError> {
    let key: FederatedGroupKey =
        read_json(&req, payload, state.body.with_limit(MAX_GROUP_KEY_BODY)).await?;
    let community = state.federation.as_ref().and_then(|f| f.community.clone());
    let who = crate::node::core::Actor(format!("km-e:{}", partner.0.kms_uri));
    let imported = state
        .node
        .federation
        .import_version(community.as_deref(), &partner.0, &key, &who)
        .await?;
    Ok(web::Json(serde_json::json!({ "imported": imported })))
}

/// Largest status batch.
const MAX_STATUS_BODY: usize = 256 * 1024;

async fn group_key_status(
    partner: PartnerPeer,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<StatusAnswer>, ApiError> {
    let batch: StatusBatch =
        read_json(&req, payload, state.body.with_limit(MAX_STATUS_BODY)).await?;
    let who = crate::node::core::Actor(format!("km-e:{}", partner.0.kms_uri));
    let answer = state
        .node
        .federation
        .apply_batch(&partner.0, &batch, &who)
        .await?;
    Ok(web::Json(answer))
}

/// Binds and starts the KM-E listener; prints `sealkm: KM-E listening on https://ADDR`.
pub fn serve(
    data: web::Data<AppState>,
    addr: &str,
    tls: rustls::ServerConfig,
) -> std::io::Result<actix_web::dev::Server> {
    super::listener(
        data,
        addr,
        tls,
        Some(1),
        "KM-E",
        routes,
        crate::tls::peer_certificate,
    )
}
