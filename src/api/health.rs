//! Health and metrics: `/healthz` (the process answers), `/readyz` (the node can serve: its
//! state is open and a community has a valid certificate), `/metrics` (Prometheus text).

use actix_web::{web, HttpResponse};

use super::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let now = state.node.now();
    match state.node.communities() {
        Ok(cs) if !cs.is_empty() && cs.iter().all(|c| c.issuing_certificate(now).is_ok()) => {
            HttpResponse::Ok().json(serde_json::json!({"ready": true, "role": "single"}))
        }
        _ => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(serde_json::json!({"ready": false})),
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let applied = state.node.state.applied_index().unwrap_or(0);
    let body = state
        .node
        .metrics
        .render(applied, state.node.admission_inflight());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}
