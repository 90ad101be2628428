//! `/admin/v1/acl` (admin credential): the replicated ACL of the service interfaces.
//! - `GET acl` — every entry `{principal, role, groups}`;
//! - `POST acl {"principal", "role": "val-server"|"gms"|"admin", "groups": [...]}` — set one;
//! - `POST acl/delete {"principal"}` — remove one.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::admin::{authorize, respond};
use super::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/acl", web::get().to(list))
        .route("/acl", web::post().to(set))
        .route("/acl/delete", web::post().to(remove));
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            authorize(&req, &state)?;
            let entries = state.node.acl_entries().await?;
            Ok(serde_json::json!({ "acl": entries }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBody {
    principal: String,
    role: String,
    #[serde(default)]
    groups: Vec<String>,
}

async fn set(
    req: HttpRequest,
    body: web::Json<SetBody>,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        async {
            let actor = authorize(&req, &state)?;
            let entry = state
                .node
                .acl_set(&body.principal, &body.role, &body.groups, &actor)
                .await?;
            Ok(serde_json::json!({ "set": entry }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    principal: String,
}

async fn remove(
    req: HttpRequest,
    body: web::Json<RemoveBody>,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        async {
            let actor = authorize(&req, &state)?;
            state.node.acl_remove(&body.principal, &actor).await?;
            Ok(serde_json::json!({ "removed": body.principal }))
        }
        .await,
    )
}
