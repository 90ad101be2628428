//! Health and metrics: `/healthz` (the process answers), `/readyz` (the node can serve: a
//! linearizable read succeeds — there is a leader and a quorum — and every community has a
//! valid certificate; the answer names the node's Raft role), `/metrics` (Prometheus text,
//! with `sealkm_request_read_barriers_total`: the ReadIndex rounds made for requests).

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
    let role = state.node.store().status().role;
    match state.node.communities().await {
        Ok(cs) if !cs.is_empty() && cs.iter().all(|c| c.issuing_certificate(now).is_ok()) => {
            HttpResponse::Ok().json(serde_json::json!({"ready": true, "role": role}))
        }
        _ => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(serde_json::json!({"ready": false, "role": role})),
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let raft = state.node.store().status();
    // ReadIndex rounds made for requests (at most one per request: `NodeCore::read_barrier`).
    match state.node.metrics.render(
        &raft,
        state.node.key_sets.admission_inflight(),
        state.node.request_barriers(),
    ) {
        Ok(mut body) => {
            if let Some(c) = &state.capif {
                body.push_str(&capif_metrics(c.logs.counters()));
            }
            HttpResponse::Ok()
                .content_type(crate::node::metrics::CONTENT_TYPE)
                .body(body)
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics could not be encoded");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// The CAPIF invocation log counters (`[capif]` only) in the Prometheus text format.
fn capif_metrics((delivered, dropped, failed): (u64, u64, u64)) -> String {
    let mut out = String::new();
    for (name, help, v) in [
        (
            "sealkm_capif_logs_delivered_total",
            "CAPIF invocation log records the CCF accepted.",
            delivered,
        ),
        (
            "sealkm_capif_logs_dropped_total",
            "CAPIF invocation log records dropped (spool full, or refused by the CCF).",
            dropped,
        ),
        (
            "sealkm_capif_log_send_failures_total",
            "Failed sends of invocation log batches to the CCF.",
            failed,
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
        ));
    }
    out
}
