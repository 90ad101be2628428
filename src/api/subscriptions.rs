//! Subscriptions to key events over the service listener — **our extension** (distribution).
//! Mounted under both party scopes, each authenticated with its role:
//! - `POST {scope}/subscriptions` `{"id","callback_url","kinds":[…],"group_filter"?:[…]}`
//!   creates (or, for its owner, replaces) a subscription: 201 with it and its delivery state;
//! - `GET {scope}/subscriptions` the caller's subscriptions;
//! - `DELETE {scope}/subscriptions/{id}` removes one of the caller's (404 otherwise).
//!
//! where `{scope}` is `/seal-x1/v1` (the GMS) or `/km-s/v1` (VAL servers). The leader then
//! POSTs notifications (metadata and event ids, never key material) to the callback URL over
//! mutual TLS: see `actors::distribution` and [`crate::actors::distribution::Notification`].
//! The handlers are shared; each path has its own small documented wrapper (utoipa documents
//! one path per function).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::PartyAuth;
use super::body::read_json;
use super::error::{ApiError, ErrorBody};
use super::service::authorize;
use super::AppState;
use crate::kms::acl::Role;
use crate::kms::events::EventKind;
use crate::state::SubscriptionStatus;

/// Body of a subscription creation or replacement.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    /// Chosen by the subscriber: 1–255 printable bytes without `/` or white space; unique
    /// across all principals.
    pub id: String,
    /// Where notifications are POSTed: an `https://` URL whose server presents a certificate
    /// of the service listener's client CA (and accepts this cluster's node certificates as
    /// client certificates).
    pub callback_url: String,
    /// Event kinds: group-key-created, group-key-rotated, group-key-revoked,
    /// group-key-expiry-set, group-key-expired, certificate-rotated, certificate-revoked,
    /// identity-revoked, partner-certificate-imported, partner-certificate-staged,
    /// partner-certificate-revoked, partner-certificate-removed, federated-key-imported.
    #[schema(value_type = Vec<String>, example = json!(["group-key-created", "group-key-rotated"]))]
    pub kinds: Vec<EventKind>,
    /// Only group events of these groups (each one the caller's ACL entry allows); absent:
    /// every group the caller may read. Other kinds are not filtered.
    #[serde(default)]
    pub group_filter: Option<Vec<String>>,
}

/// A subscription with its delivery state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionBody {
    pub id: String,
    pub callback_url: String,
    #[schema(value_type = Vec<String>)]
    pub kinds: Vec<EventKind>,
    pub group_filter: Option<Vec<String>>,
    /// Every event up to this id is acknowledged by the subscriber (or skipped by a resync).
    pub acked: u64,
    /// The backlog overflowed: the next notification tells the subscriber to resynchronise.
    pub must_resync: bool,
}

/// The caller's subscriptions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionBody>,
}

fn body(s: SubscriptionStatus) -> SubscriptionBody {
    SubscriptionBody {
        id: s.subscription.id,
        callback_url: s.subscription.callback_url,
        kinds: s.subscription.kinds,
        group_filter: s.subscription.group_filter,
        acked: s.acked,
        must_resync: s.must_resync,
    }
}

/// Largest subscription request body.
const MAX_JSON_BODY: usize = 16 * 1024;

async fn create(
    party: PartyAuth,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    role: Role,
) -> Result<HttpResponse, ApiError> {
    let b: SubscribeRequest =
        read_json(&req, payload, state.body.with_limit(MAX_JSON_BODY)).await?;
    // The request's one read barrier (the node's own barrier below then costs nothing).
    let p = authorize(&state, party, role).await?;
    let s = state
        .node
        .parties
        .subscribe(
            &p.name,
            &b.id,
            &b.callback_url,
            &b.kinds,
            b.group_filter.as_deref(),
            &p.actor(),
        )
        .await?;
    Ok(HttpResponse::Created().json(body(s)))
}

async fn list(
    party: PartyAuth,
    state: web::Data<AppState>,
    role: Role,
) -> Result<web::Json<SubscriptionList>, ApiError> {
    let p = authorize(&state, party, role).await?;
    let subs = state.node.parties.subscriptions_of(&p.name).await?;
    Ok(web::Json(SubscriptionList {
        subscriptions: subs.into_iter().map(body).collect(),
    }))
}

async fn delete(
    party: PartyAuth,
    id: web::Path<String>,
    state: web::Data<AppState>,
    role: Role,
) -> Result<web::Json<serde_json::Value>, ApiError> {
    let p = authorize(&state, party, role).await?;
    state
        .node
        .parties
        .unsubscribe(&p.name, &id, &p.actor())
        .await?;
    Ok(web::Json(serde_json::json!({ "removed": id.as_str() })))
}

/// Creates or replaces one of the GMS's subscriptions.
#[utoipa::path(
    post,
    path = "/seal-x1/v1/subscriptions",
    tag = "Subscriptions (extension)",
    request_body = SubscribeRequest,
    responses(
        (status = 201, description = "the subscription; it starts after the newest event", body = SubscriptionBody),
        (status = 400, description = "malformed body, id, callback URL, kinds or filter", body = ErrorBody),
        (status = 403, description = "no gms grant, or a filtered group the ACL does not name", body = ErrorBody),
        (status = 409, description = "the id belongs to another principal", body = ErrorBody),
    )
)]
pub async fn seal_x1_subscribe(
    party: PartyAuth,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    create(party, req, payload, state, Role::Gms).await
}

/// The GMS's subscriptions.
#[utoipa::path(
    get,
    path = "/seal-x1/v1/subscriptions",
    tag = "Subscriptions (extension)",
    responses((status = 200, body = SubscriptionList))
)]
pub async fn seal_x1_subscriptions(
    party: PartyAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<SubscriptionList>, ApiError> {
    list(party, state, Role::Gms).await
}

/// Removes one of the GMS's subscriptions.
#[utoipa::path(
    delete,
    path = "/seal-x1/v1/subscriptions/{id}",
    tag = "Subscriptions (extension)",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "removed"),
        (status = 404, description = "no such subscription of the caller", body = ErrorBody),
    )
)]
pub async fn seal_x1_unsubscribe(
    party: PartyAuth,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<web::Json<serde_json::Value>, ApiError> {
    delete(party, id, state, Role::Gms).await
}

/// Creates or replaces one of a VAL server's subscriptions.
#[utoipa::path(
    post,
    path = "/km-s/v1/subscriptions",
    tag = "Subscriptions (extension)",
    request_body = SubscribeRequest,
    responses(
        (status = 201, description = "the subscription; it starts after the newest event", body = SubscriptionBody),
        (status = 400, description = "malformed body, id, callback URL, kinds or filter", body = ErrorBody),
        (status = 403, description = "no val-server grant, or a filtered group the ACL does not name", body = ErrorBody),
        (status = 409, description = "the id belongs to another principal", body = ErrorBody),
    )
)]
pub async fn km_s_subscribe(
    party: PartyAuth,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    create(party, req, payload, state, Role::ValServer).await
}

/// A VAL server's subscriptions.
#[utoipa::path(
    get,
    path = "/km-s/v1/subscriptions",
    tag = "Subscriptions (extension)",
    responses((status = 200, body = SubscriptionList))
)]
pub async fn km_s_subscriptions(
    party: PartyAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<SubscriptionList>, ApiError> {
    list(party, state, Role::ValServer).await
}

/// Removes one of a VAL server's subscriptions.
#[utoipa::path(
    delete,
    path = "/km-s/v1/subscriptions/{id}",
    tag = "Subscriptions (extension)",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "removed"),
        (status = 404, description = "no such subscription of the caller", body = ErrorBody),
    )
)]
pub async fn km_s_unsubscribe(
    party: PartyAuth,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<web::Json<serde_json::Value>, ApiError> {
    delete(party, id, state, Role::ValServer).await
}

/// The subscription routes for parties with `role`, under the caller's scope.
pub fn configure_for(role: Role) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| match role {
        Role::Gms => {
            cfg.route("/subscriptions", web::post().to(seal_x1_subscribe))
                .route("/subscriptions", web::get().to(seal_x1_subscriptions))
                .route("/subscriptions/{id}", web::delete().to(seal_x1_unsubscribe));
        }
        Role::ValServer => {
            cfg.route("/subscriptions", web::post().to(km_s_subscribe))
                .route("/subscriptions", web::get().to(km_s_subscriptions))
                .route("/subscriptions/{id}", web::delete().to(km_s_unsubscribe));
        }
        // No other role has a service scope.
        _ => {}
    }
}
