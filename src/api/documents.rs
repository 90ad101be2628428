//! The TS 33.180 Annex D KMS documents (init, keyprov, certcache: D.2.1, D.3), served to every
//! caller that may ask for them: KM clients over KM-UU (`km_uu`), and the group management
//! server and VAL servers over SEAL-X1 and KM-S (TS 33.434 5.1, 5.3). Route parsing, the one
//! request path ([`handle_for`]: authenticated caller → body → request document → community
//! → key material → rendered answer → audited delivery), and the `KmsResponse` / `KmsError`
//! rendering (D.3.1): failures carry `KmsError` with the HTTP status of [`ApiError::status`].
//! Nothing changes on any error.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use percent_encoding::percent_decode_str;
use time::OffsetDateTime;

use super::auth::{PartyAuth, UserToken};
use super::body::{read_body, ZeroizingBody};
use super::error::ApiError;
use super::AppState;
use crate::kms::acl::Role;
use crate::kms::community::root_certificate_doc;
use crate::kms::period::{ntp64_seconds, parse_ntp64_hex};
use crate::kms::xml::kms_error::{KmsErrorCode, KmsErrorDoc};
use crate::kms::xml::request::{parse_kms_request, KmsRequestDoc};
use crate::kms::xml::response::{
    render_kms_response, KmsMessageDoc, KmsResponseBody, KmsResponseDoc,
};
use crate::kms::xml::time::odt;
use crate::node::core::Actor;

/// The interface root (TS 33.180 D.2.1).
pub const ROOT: &str = "/keymanagement/identity/v1";

/// What the path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Init,
    KeyProv {
        user_uri: Option<String>,
        ntp64: Option<u64>,
    },
    CertCache {
        cache_num: Option<u64>,
    },
}

/// Parses the path after [`ROOT`] (raw, still percent-encoded). The user URI may be sent
/// percent-encoded or raw; the time is 16 hex digits in either case.
pub fn parse_route(raw_path: &str) -> Result<Route, ApiError> {
    parse_route_under(ROOT, raw_path)
}

/// [`parse_route`] for the same documents under another root (SEAL-X1, KM-S).
pub fn parse_route_under(root: &str, raw_path: &str) -> Result<Route, ApiError> {
    let rest = raw_path
        .strip_prefix(root)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| ApiError::NotFound("unknown resource".into()))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let segs: Vec<&str> = if tail.is_empty() {
        Vec::new()
    } else {
        tail.split('/').collect()
    };
    let decode = |s: &str| -> Result<String, ApiError> {
        percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| ApiError::BadRequest("path segment is not UTF-8".into()))
    };
    match (head, segs.as_slice()) {
        ("init", []) => Ok(Route::Init),
        ("keyprov", []) => Ok(Route::KeyProv {
            user_uri: None,
            ntp64: None,
        }),
        ("keyprov", [uri]) => Ok(Route::KeyProv {
            user_uri: Some(decode(uri)?),
            ntp64: None,
        }),
        ("keyprov", [uri, t]) => {
            let ntp = parse_ntp64_hex(t).ok_or_else(|| {
                ApiError::BadRequest("time segment must be 16 hex digits (NTP-UTC)".into())
            })?;
            Ok(Route::KeyProv {
                user_uri: Some(decode(uri)?),
                ntp64: Some(ntp),
            })
        }
        ("certcache", []) => Ok(Route::CertCache { cache_num: None }),
        ("certcache", [n]) => {
            let n = n.parse().map_err(|_| {
                ApiError::BadRequest("cache number must be a decimal integer".into())
            })?;
            Ok(Route::CertCache { cache_num: Some(n) })
        }
        ("init" | "keyprov" | "certcache", _) => {
            Err(ApiError::BadRequest("too many path segments".into()))
        }
        _ => Err(ApiError::NotFound("unknown resource".into())),
    }
}

/// The Annex D documents under `prefix` of the enclosing scope: every POST below it reaches
/// `handler`, matched by prefix (a `{tail:.*}` pattern would run a regex on every request);
/// [`parse_route_under`] reads the rest of the path.
pub fn documents_scope<F, Args>(prefix: &str, handler: F) -> actix_web::Scope
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::scope(prefix)
        .guard(actix_web::guard::Post())
        .default_service(web::to(handler))
}

/// A bounded label for the metrics (never the user URI).
fn endpoint_label(root: &str, path: &str) -> &'static str {
    let rest = path
        .strip_prefix(root)
        .unwrap_or("")
        .trim_start_matches('/');
    match rest.split('/').next() {
        Some("init") => "init",
        Some("keyprov") => "keyprov",
        Some("certcache") => "certcache",
        _ => "other",
    }
}

/// Context for the response header, known before anything can fail (no Raft read).
struct Ctx {
    /// Empty until the caller is authenticated (an anonymous refusal names nobody).
    user_uri: String,
    kms_uri: String,
    client_req_url: String,
    /// The host the request was sent to (selects the community).
    host: String,
    /// The one clock reading of this request.
    now: u64,
}

/// Who asks for these documents, as authenticated by the extractors of [`super::auth`].
#[derive(Debug, Clone)]
pub enum Caller {
    /// A KM client over KM-UU: the access token alone names the user.
    User(UserToken),
    /// A party of the service listener that must have this ACL role: certificate and party
    /// token; its key set is for the name both give.
    Party(PartyAuth, Role),
}

impl Caller {
    fn identity(&self) -> &str {
        match self {
            Caller::User(t) => &t.0.identity,
            Caller::Party(p, _) => &p.name,
        }
    }
}

/// The same documents for `caller` under `root` (KM-UU, or SEAL-X1 / KM-S for the group
/// management server and VAL servers, TS 33.434 5.1 / 5.3).
pub async fn handle_for(
    req: HttpRequest,
    caller: Result<Caller, ApiError>,
    payload: web::Payload,
    state: web::Data<AppState>,
    root: &'static str,
) -> HttpResponse {
    // Only KM-UU sits behind an HTTP proxy (the service listener's mutual TLS ends at the
    // node): elsewhere no forwarding header is believed.
    let trusted: &[_] = if root == ROOT {
        &state.trusted_proxies
    } else {
        &[]
    };
    let origin = super::forwarded::origin_of(&req, trusted);
    let mut ctx = Ctx {
        user_uri: String::new(),
        kms_uri: state.node.kms_uri_for_host(Some(&origin.host)),
        client_req_url: origin.url(req.uri().path()),
        host: origin.host,
        now: state.node.now(),
    };
    let resp = match serve(&req, caller, payload, &state, &mut ctx, root).await {
        Ok(resp) => resp,
        Err(e) => {
            if matches!(e.status(), actix_web::http::StatusCode::UNAUTHORIZED) {
                state.node.metrics.token_refused();
            }
            error_response(&ctx, &e)
        }
    };
    state.node.metrics.request(
        endpoint_label(root, req.uri().path()),
        resp.status().as_u16(),
    );
    resp
}

/// Longest `ClientReqUrl` accepted in a request.
const MAX_CLIENT_REQ_URL: usize = 2048;

/// A request's `ClientReqUrl` is echoed in the response: it must be something the response
/// can carry (checked before any key is issued).
fn check_client_req_url(url: &str) -> Result<(), ApiError> {
    if url.trim().is_empty() || url.len() > MAX_CLIENT_REQ_URL || url.chars().any(char::is_control)
    {
        return Err(ApiError::BadRequest(format!(
            "ClientReqUrl must be 1..={MAX_CLIENT_REQ_URL} bytes without control characters"
        )));
    }
    Ok(())
}

/// KM-UU serves KM client users only: a party (an ACL principal, or a name in the party name
/// space) gets its key material on the service listener, with its certificate. Call after the
/// request's read barrier.
fn refuse_party(state: &AppState, identity: &str) -> Result<(), ApiError> {
    if state.auth.verifier().party().is_party_name(identity)
        || state.node.parties.acl_entry_local(identity)?.is_some()
    {
        return Err(ApiError::Forbidden(
            "a party gets key material only on the service listener, with its certificate".into(),
        ));
    }
    Ok(())
}

async fn serve(
    req: &HttpRequest,
    caller: Result<Caller, ApiError>,
    payload: web::Payload,
    state: &AppState,
    ctx: &mut Ctx,
    root: &str,
) -> Result<HttpResponse, ApiError> {
    // Authenticated by the extractor: nothing was read or asked of Raft before this line.
    let caller = caller?;
    let identity = caller.identity().to_owned();
    ctx.user_uri = identity.clone();
    let route = parse_route_under(root, req.uri().path())?;
    let body = read_body(req, payload, state.body).await?;
    let request: Option<KmsRequestDoc> = parse_kms_request(&body)
        .map_err(|e| ApiError::BadRequest(format!("malformed KmsRequest: {e}")))?;
    if let Some(r) = &request {
        if !r.user_uri.is_empty() && r.user_uri != identity {
            return Err(ApiError::Forbidden(
                "UserUri does not match the access token's identity".into(),
            ));
        }
        if let Some(url) = &r.client_req_url {
            check_client_req_url(url)?;
            ctx.client_req_url = url.clone();
        }
    }
    if let Route::KeyProv {
        user_uri: Some(u), ..
    } = &route
    {
        if *u != identity {
            return Err(ApiError::Forbidden(
                "a user gets key material only for its own identity".into(),
            ));
        }
    }
    // The request's one read barrier, then everything reads the state it made current.
    let (community, actor) = match caller {
        Caller::User(UserToken(token)) => {
            // A visiting user (a partner identity provider's token) gets keys only from the
            // communities that provider is trusted for (TS 33.180 5.1.4.2).
            if let Some(v) = &token.visiting {
                let kms_uri = state.node.kms_uri_for_host(Some(&ctx.host));
                if !v.may_use(&kms_uri) {
                    return Err(ApiError::Forbidden(
                        "this community does not accept visiting users of that identity provider"
                            .into(),
                    ));
                }
            }
            let community = state.node.community_for_host(Some(&ctx.host)).await?;
            refuse_party(state, &identity)?;
            (community, Actor(identity.clone()))
        }
        Caller::Party(party, role) => {
            let principal = super::service::authorize(state, party, role).await?;
            let community = state.node.community_for_host_local(Some(&ctx.host))?;
            (community, principal.actor())
        }
    };
    ctx.kms_uri = community.kms_uri.clone();
    // The request's KmsUri must name the community serving it (or the host it was sent to).
    if let Some(r) = &request {
        r.check_kms_uri(&community.kms_uri, &ctx.host)
            .map_err(|e| ApiError::Forbidden(e.to_string()))?;
    }
    let (message, delivered) = match route {
        Route::Init => {
            let cert = community
                .issuing_certificate(ctx.now)
                .map_err(crate::node::NodeError::from)?;
            let doc =
                root_certificate_doc(&community, cert, state.node.kms_domains(&community.kms_uri));
            (KmsMessageDoc::Init(Box::new(doc)), None)
        }
        Route::KeyProv { user_uri: _, ntp64 } => {
            let period = match ntp64 {
                Some(t) => Some(
                    community
                        .period
                        .period_at_ntp(ntp64_seconds(t))
                        .ok_or_else(|| {
                            ApiError::BadRequest(
                                "the requested time precedes the community's key periods".into(),
                            )
                        })?,
                ),
                None => None,
            };
            // Resolves once the delivery to `actor` is audited (synced while a first key set
            // is issued).
            let set = state
                .node
                .key_sets
                .key_set_for(&community, &identity, period, ctx.now, &actor)
                .await?;
            (KmsMessageDoc::KeyProv(vec![set.to_doc()]), Some(set))
        }
        Route::CertCache { cache_num } => {
            // Our certificates, then the partners' shared with this community (the read
            // barrier of this request covers both).
            let (current, certificates) = state.node.federation.cert_cache(&community, ctx.now)?;
            let certificates = if cache_num == Some(current) {
                Vec::new()
            } else {
                certificates
            };
            let message = KmsMessageDoc::CertCache {
                cache_num: current,
                certificates,
            };
            (message, None)
        }
    };
    let doc = KmsResponseDoc {
        user_uri: ctx.user_uri.clone(),
        kms_uri: ctx.kms_uri.clone(),
        time: odt(ctx.now).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        kms_id: None,
        client_req_url: ctx.client_req_url.clone(),
        body: KmsResponseBody::Message(message),
    };
    // A key set's delivery is audited already; an answer that cannot be rendered after all
    // is recorded as withheld.
    let xml = render_kms_response(&doc).map_err(|e| {
        if let Some(set) = &delivered {
            state.node.key_sets.withheld(set, &actor);
        }
        ApiError::Internal(format!("render: {e}"))
    })?;
    Ok(xml_response(
        actix_web::http::StatusCode::OK,
        ZeroizingBody(xml),
    ))
}

fn xml_response(status: actix_web::http::StatusCode, body: impl Into<web::Bytes>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/xml; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.into())
}

fn error_code(e: &ApiError) -> KmsErrorCode {
    match e {
        ApiError::Auth(a) if a.is_forbidden() => KmsErrorCode::Forbidden,
        ApiError::Auth(_) | ApiError::Unauthorized(_) => KmsErrorCode::Unauthorized,
        ApiError::Forbidden(_) => KmsErrorCode::Forbidden,
        ApiError::IdentityRevoked => KmsErrorCode::IdentityRevoked,
        ApiError::PeriodOutOfWindow(_) => KmsErrorCode::PeriodOutOfWindow,
        ApiError::BadRequest(_)
        | ApiError::PayloadTooLarge(_)
        | ApiError::NotAcceptable(_)
        | ApiError::RequestTimeout
        | ApiError::Conflict(_)
        | ApiError::NotLeader { .. } => KmsErrorCode::BadRequest,
        ApiError::NotFound(_) => KmsErrorCode::NotFound,
        ApiError::TooManyRequests { .. } | ApiError::QuotaExceeded(_) => {
            KmsErrorCode::TooManyRequests
        }
        ApiError::Unavailable { .. }
        | ApiError::NotProposed { .. }
        | ApiError::InsufficientStorage(_) => KmsErrorCode::Unavailable,
        ApiError::Internal(_) => KmsErrorCode::Internal,
    }
}

/// `value` with every character an XML document cannot carry as text (and every other control
/// character) replaced by U+FFFD; `fallback` if nothing printable is left.
fn xml_safe(value: &str, fallback: &str) -> String {
    let out: String = value
        .chars()
        .map(|c| {
            let xml = matches!(c, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
            if xml && !c.is_control() {
                c
            } else {
                char::REPLACEMENT_CHARACTER
            }
        })
        .collect();
    if out.trim().is_empty() {
        fallback.to_owned()
    } else {
        out
    }
}

/// The last resort when even a sanitised error document does not render: a fixed one.
const FALLBACK_ERROR: &str = concat!(
    r#"<KmsResponse xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0" Version="1.0.0">"#,
    "<UserUri/><KmsUri>unknown</KmsUri><Time>1970-01-01T00:00:00Z</Time>",
    "<ClientReqUrl>unknown</ClientReqUrl>",
    r#"<KmsError><ErrorCode>500</ErrorCode><ErrorMsg>internal error</ErrorMsg></KmsError>"#,
    "</KmsResponse>"
);

/// The `KmsError` answer for `e`. It always renders: every echoed value is made XML-safe first
/// (a request's `ClientReqUrl` or host may hold anything), and a fixed document stands in if
/// rendering still fails.
fn error_response(ctx: &Ctx, e: &ApiError) -> HttpResponse {
    let mut resp = xml_response(e.status(), error_body(ctx, e));
    let headers = resp.headers_mut();
    if let Some(v) = bearer_challenge(e) {
        if let Ok(v) = header::HeaderValue::from_str(&v) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
    }
    if let Some(s) = e.retry_after_s() {
        headers.insert(header::RETRY_AFTER, header::HeaderValue::from(s));
    }
    resp
}

/// The rendered `KmsError` document of [`error_response`].
fn error_body(ctx: &Ctx, e: &ApiError) -> Vec<u8> {
    let doc = KmsResponseDoc {
        // Empty when no caller was authenticated (RFC 6750 §3.1: a refusal names nobody).
        user_uri: if ctx.user_uri.is_empty() {
            String::new()
        } else {
            xml_safe(&ctx.user_uri, "")
        },
        kms_uri: xml_safe(&ctx.kms_uri, "unknown"),
        time: odt(ctx.now).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        kms_id: None,
        client_req_url: xml_safe(&ctx.client_req_url, "unknown"),
        body: KmsResponseBody::Error(KmsErrorDoc::new(
            error_code(e),
            xml_safe(&e.reason(), "error"),
        )),
    };
    match render_kms_response(&doc) {
        Ok(x) => x.as_bytes().to_vec(),
        Err(err) => {
            tracing::error!(error = %err, "KmsError document did not render; sent the fixed one");
            FALLBACK_ERROR.as_bytes().to_vec()
        }
    }
}

/// The RFC 6750 §3 challenge of a refused access token: no error code when the request had no
/// token (§3.1), else the code and a short description; `None` for other errors.
fn bearer_challenge(e: &ApiError) -> Option<String> {
    match e {
        ApiError::Auth(a) => Some(match a.rfc6750_error_code() {
            Some(code) => format!(
                "Bearer realm=\"sealkm\", error=\"{code}\", error_description=\"{}\"",
                a.to_string().replace(['"', '\\'], "'")
            ),
            None => "Bearer realm=\"sealkm\"".to_owned(),
        }),
        ApiError::Unauthorized(_) => Some("Bearer realm=\"sealkm\"".to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
