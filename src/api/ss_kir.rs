//! TS 29.549 `SS_KeyInfoRetrieval` (7.6.1; apiName `ss-kir`, version `v1`) on the service
//! listener: a VAL server reads key information that SEAL key provisioning (TS 33.434 5.8,
//! `POST /km-s/v1/key-provisioning` with `val_service_id`) stored for a VAL service.
//!
//! `GET /ss-kir/v1/key-records?val-service-id=S[&val-tgt-ue=U]` → `200 ValKeyInfo`.
//! Authentication is the service listener's (TS 29.549 9.2: mutual TLS, then the VAL server's
//! access token; [`super::auth::PartyAuth`] runs before anything else), then the `Accept` check, the query,
//! [`authorize`] (the request's one read barrier; role `val-server`), and the retrieval rule of
//! [`crate::kms::key_provisioning::choose`]: the VAL server's ACL group list grants the service
//! (`*` or its id), or it pushed for that (service, target) itself and sees only its own
//! pushes; the newest visible push answers. `userUri` is the target when the query names one,
//! else the pushing VAL server's principal (the push's owner). `keyInfo` is the base64
//! (standard, padded) of the pushed bytes.
//!
//! With `[capif]`, a CAPIF API invoker may call it too (TS 29.549 clause 8; PKI or OAUTH, see
//! [`super::capif`]): authorised by the CCF, then by the ACL entry of `capif:<apiInvokerId>`;
//! each of its invocations is spooled as a CAPIF invocation log (no key material).
//!
//! Each authenticated caller passes admission first (`[admission] retrieval_burst` per
//! `identity_window_s`, `max_inflight_retrieval` at once): beyond, 429 with `Retry-After`.
//!
//! Every error is a [`Problem`] (`application/problem+json`), mapped from [`ApiError`] once at
//! this edge: 400 (with `invalidParams`), 401, 403, 404, 406, 429, 500, 503.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde::Serialize;
use utoipa::ToSchema;

use super::body::ZeroizingBody;
use super::capif::{authorize_invoker, SsKirCaller};
use super::error::ApiError;
use super::problem::{InvalidParam, Problem};
use super::service::authorize;
use super::AppState;
use crate::actors::capif::logs::DURABLE_WAIT;
use crate::kms::acl::Role;
use crate::kms::capif::Invocation;
use crate::kms::key_provisioning::validate_val_id;
use crate::node::core::Actor;
use crate::node::key_provisioning::ValTarget;

pub const ROOT: &str = "/ss-kir/v1";

/// Registers the routes of this module inside the [`ROOT`] scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/key-records", web::get().to(key_records));
}

/// TS 29.549 `ValKeyInfo`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValKeyInfo {
    /// The target VAL user or UE when the query named one, else the VAL server that pushed
    /// the key information (its certificate name).
    pub user_uri: String,
    /// The VAL service id.
    pub val_service: String,
    /// The key information: base64 (standard alphabet, padded) of the bytes the VAL server
    /// pushed.
    pub key_info: String,
    /// Not set by this server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skms_id: Option<String>,
    /// The target VAL user or UE of the push, as a string (our simplification of
    /// `ValTargetUe`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_tgt_ue: Option<String>,
}

/// Whether an `Accept` header value admits `application/json` (absent: yes). Media ranges
/// `*/*`, `application/*` and `application/json` count unless their `q` is 0.
pub fn accepts_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return true };
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q_zero = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !q_zero && matches!(media.as_str(), "*/*" | "application/*" | "application/json")
    })
}

fn invalid(param: &str, reason: impl Into<String>) -> InvalidParam {
    InvalidParam {
        param: param.into(),
        reason: Some(reason.into()),
    }
}

/// A `val-tgt-ue` value: the VAL user or UE id as a string, or a JSON `ValTargetUe` object
/// (`{"valUserId": …}` or `{"valUeId": …}`).
fn target_of(raw: &str) -> Result<String, InvalidParam> {
    let bad = |why: &str| invalid("val-tgt-ue", why);
    let id = if raw.trim_start().starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(raw).map_err(|_| bad("not a ValTargetUe JSON object"))?;
        v.get("valUserId")
            .or_else(|| v.get("valUeId"))
            .and_then(|s| s.as_str())
            .ok_or_else(|| bad("a ValTargetUe needs valUserId or valUeId"))?
            .to_owned()
    } else {
        raw.to_owned()
    };
    validate_val_id("val-tgt-ue", &id).map_err(|e| bad(&e.to_string()))?;
    Ok(id)
}

/// Parses the query string (other parameters are ignored; each of ours at most once).
pub fn parse_query(query: &str) -> Result<ValTarget, Problem> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query).map_err(|_| {
        Problem::invalid_query(
            "INVALID_QUERY_PARAM",
            vec![invalid("query", "not a valid query string")],
        )
    })?;
    let mut service = Vec::new();
    let mut target = Vec::new();
    for (k, v) in pairs.into_inner() {
        match k.as_str() {
            "val-service-id" => service.push(v),
            "val-tgt-ue" => target.push(v),
            _ => {}
        }
    }
    let val_service_id = match service.as_slice() {
        [] => {
            return Err(Problem::invalid_query(
                "MANDATORY_QUERY_PARAM_MISSING",
                vec![invalid("val-service-id", "required")],
            ))
        }
        [s] => validate_val_id("val-service-id", s)
            .map(|()| s.clone())
            .map_err(|e| {
                Problem::invalid_query(
                    "MANDATORY_QUERY_PARAM_INCORRECT",
                    vec![invalid("val-service-id", e.to_string())],
                )
            })?,
        _ => {
            return Err(Problem::invalid_query(
                "MANDATORY_QUERY_PARAM_INCORRECT",
                vec![invalid("val-service-id", "given more than once")],
            ))
        }
    };
    let val_tgt_ue = match target.as_slice() {
        [] => None,
        [t] => {
            Some(target_of(t).map_err(|p| Problem::invalid_query("INVALID_QUERY_PARAM", vec![p]))?)
        }
        _ => {
            return Err(Problem::invalid_query(
                "INVALID_QUERY_PARAM",
                vec![invalid("val-tgt-ue", "given more than once")],
            ))
        }
    };
    Ok(ValTarget {
        val_service_id,
        val_tgt_ue,
    })
}

/// `SS_KeyInfoRetrieval`: the newest key information the caller may read for the service.
#[utoipa::path(
    get,
    path = "/ss-kir/v1/key-records",
    tag = "ss-kir",
    params(
        ("val-service-id" = String, Query, description = "The VAL service id (required)."),
        ("val-tgt-ue" = Option<String>, Query, description = "The target VAL user or UE: its id as a string, or a JSON ValTargetUe object with valUserId or valUeId. Without it, only pushes that named no target answer."),
    ),
    responses(
        (status = 200, description = "The newest key information the caller may read for (service, target). Readable: pushes for a service the caller's ACL group list grants (`*` or the id), else only the caller's own pushes for that (service, target). `keyInfo` is base64 of the pushed bytes; `userUri` is the target if the query names one, else the VAL server that pushed it.", body = ValKeyInfo, content_type = "application/json"),
        (status = 400, description = "val-service-id missing or invalid, or val-tgt-ue invalid (invalidParams names it)", body = super::problem::ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "no client certificate or no valid access token (with CAPIF: nor a valid CCF token)", body = super::problem::ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "certificate and token name different parties, no val-server grant, or the caller is neither granted the service nor pushed for this (service, target)", body = super::problem::ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "the caller may read the service but nothing it may see was pushed for this (service, target)", body = super::problem::ProblemDetails, content_type = "application/problem+json"),
        (status = 406, description = "the Accept header excludes application/json", body = super::problem::ProblemDetails, content_type = "application/problem+json"),
        (status = 429, description = "too many requests: the caller used its `[admission] retrieval_burst` per `identity_window_s`, or `max_inflight_retrieval` retrievals are running (Retry-After)", body = super::problem::ProblemDetails, content_type = "application/problem+json"),
        (status = 500, description = "internal error", body = super::problem::ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "no leader, or the read barrier failed, or (CAPIF PKI invoker not yet authorised here) the CCF cannot be reached, or (CAPIF invoker) this node could not write the invocation's log record, cause INVOCATION_LOG_UNAVAILABLE (Retry-After)", body = super::problem::ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn key_records(
    req: HttpRequest,
    caller: Result<SsKirCaller, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let started = std::time::Instant::now();
    let caller = caller?;
    let invoker = match &caller {
        SsKirCaller::Invoker(i) => Some(i.clone()),
        SsKirCaller::Party(_) => None,
    };
    let name = match &caller {
        SsKirCaller::Invoker(i) => crate::kms::capif::invoker_principal(&i.id),
        SsKirCaller::Party(p) => p.name.clone(),
    };
    // Admission (per authenticated caller, and in flight): 429 with Retry-After beyond.
    let res = match state.retrieval.try_admit(&name, state.started.elapsed()) {
        Ok(_permit) => answer(&req, caller, &state).await,
        Err(shed) => Err(ApiError::from(crate::node::NodeError::Shed(shed)).into()),
    };
    // A CAPIF invocation is logged for the CCF: on this node's disk before the answer (the
    // CCF itself is never waited on).
    if let (Some(inv), Some(capif)) = (invoker, &state.capif) {
        let status = match &res {
            Ok(r) => r.status().as_u16(),
            Err(p) => p.error.status().as_u16(),
        };
        let seq = capif.logs.record(Invocation {
            api_invoker_id: inv.id,
            method: inv.method.to_owned(),
            result: status,
            invocation_time: rfc3339(state.node.now()),
            latency_ms: started.elapsed().as_millis() as u64,
            src_ip: inv.src.map(|a| a.ip().to_string()),
            src_port: inv.src.map(|a| a.port()),
            protocol: crate::kms::capif::protocol_of(
                req.version() == actix_web::http::Version::HTTP_2,
            )
            .to_owned(),
        });
        if !capif.logs.durable(seq, DURABLE_WAIT).await {
            tracing::error!("an invocation's log record could not be written; answered 503");
            capif.logs.refused(seq, 503);
            return Err(Problem {
                error: ApiError::Unavailable { retry_after_s: 1 },
                cause: Some("INVOCATION_LOG_UNAVAILABLE"),
                invalid_params: Vec::new(),
            });
        }
    }
    res
}

fn rfc3339(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The retrieval after authentication: the invoker's CAPIF authorisation, the `Accept`
/// check, the query, the ACL, the key record.
async fn answer(
    req: &HttpRequest,
    caller: SsKirCaller,
    state: &web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    // An invoker's CCF authorisation (PKI: trustedInvokers) is part of its authentication.
    let invoker_acl = match (&caller, &state.capif) {
        (SsKirCaller::Invoker(inv), Some(capif)) => {
            Some(authorize_invoker(state, capif, inv).await?)
        }
        _ => None,
    };
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .map(|v| v.to_str().unwrap_or(""));
    if !accepts_json(accept) {
        return Err(
            ApiError::NotAcceptable("this resource is application/json only".into()).into(),
        );
    }
    let target = parse_query(req.query_string())?;
    let (acl, actor) = match (caller, invoker_acl) {
        (SsKirCaller::Party(party), _) => {
            let p = authorize(state, party, Role::ValServer).await?;
            let actor = p.actor();
            (p.acl, actor)
        }
        (SsKirCaller::Invoker(_), Some(acl)) => {
            let actor = Actor(acl.principal.clone());
            (acl, actor)
        }
        (SsKirCaller::Invoker(_), None) => {
            return Err(ApiError::Internal("CAPIF invoker without [capif]".into()).into())
        }
    };
    let info = state
        .node
        .parties
        .key_info_for(&acl, &target, &actor)
        .await
        .map_err(ApiError::from)?;
    let mut body = ValKeyInfo {
        user_uri: target
            .val_tgt_ue
            .clone()
            .unwrap_or_else(|| info.principal.clone()),
        val_service: info.val_service_id.clone(),
        key_info: base64::engine::general_purpose::STANDARD.encode(info.info.expose()),
        skms_id: None,
        val_tgt_ue: info.val_tgt_ue.clone(),
    };
    let text = zeroize::Zeroizing::new(serde_json::to_string(&body).unwrap_or_default());
    zeroize::Zeroize::zeroize(&mut body.key_info);
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(web::Bytes::from(ZeroizingBody(text))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_rule() {
        for ok in [
            None,
            Some("application/json"),
            Some("*/*"),
            Some("application/*;q=0.5"),
            Some("application/xml, application/json;q=0.1"),
            Some("Application/JSON"),
        ] {
            assert!(accepts_json(ok), "{ok:?}");
        }
        for refused in [
            Some("application/xml"),
            Some("text/html, application/problem+json"),
            Some("application/json;q=0"),
            Some(""),
        ] {
            assert!(!accepts_json(refused), "{refused:?}");
        }
    }

    fn params_of(p: Problem) -> (u16, Vec<String>, Option<&'static str>) {
        (
            p.error.status().as_u16(),
            p.invalid_params.iter().map(|i| i.param.clone()).collect(),
            p.cause,
        )
    }

    #[test]
    fn query_rule() {
        let t = parse_query("val-service-id=svc%201&x=y").unwrap();
        assert_eq!((t.val_service_id.as_str(), t.val_tgt_ue), ("svc 1", None));
        let t = parse_query("val-service-id=s&val-tgt-ue=sip%3Aa%40b").unwrap();
        assert_eq!(t.val_tgt_ue.as_deref(), Some("sip:a@b"));
        let t =
            parse_query("val-service-id=s&val-tgt-ue=%7B%22valUserId%22%3A%22u1%22%7D").unwrap();
        assert_eq!(t.val_tgt_ue.as_deref(), Some("u1"));
        let missing = params_of(parse_query("val-tgt-ue=u").unwrap_err());
        assert_eq!(
            missing,
            (
                400,
                vec!["val-service-id".into()],
                Some("MANDATORY_QUERY_PARAM_MISSING")
            )
        );
        for bad in [
            "val-service-id=",
            "val-service-id=a&val-service-id=b",
            "val-service-id=%00",
        ] {
            let (status, params, _) = params_of(parse_query(bad).unwrap_err());
            assert_eq!(
                (status, params),
                (400, vec!["val-service-id".to_owned()]),
                "{bad}"
            );
        }
        for bad in [
            "val-service-id=s&val-tgt-ue=",
            "val-service-id=s&val-tgt-ue=%7Bx",
        ] {
            let (status, params, _) = params_of(parse_query(bad).unwrap_err());
            assert_eq!(
                (status, params),
                (400, vec!["val-tgt-ue".to_owned()]),
                "{bad}"
            );
        }
    }
}
