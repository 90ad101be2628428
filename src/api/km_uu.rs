//! KM-UU: the TS 33.180 Annex D KMS interface as SEAL reuses it (TS 33.434 5.1, 5.3).
//!
//! `POST /keymanagement/identity/v1/{init | keyprov[/<user URI>[/<NTP time>]] |
//! certcache[/<cache number>]}` (TS 33.180 D.2.1; paths per TS 33.179/33.180 D.2), each with
//! the identity management server's access token (`Authorization: Bearer`, TS 33.434 5.3.1).
//! Answers are `KmsResponse` documents (D.3.1); failures are a `KmsResponse` carrying
//! `KmsError` with the HTTP status of [`ApiError::status`]. Nothing changes on any error.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use percent_encoding::percent_decode_str;
use time::OffsetDateTime;

use super::error::ApiError;
use super::AppState;
use crate::kms::acl::Role;
use crate::kms::community::{Certificate, Community, PARAMETER_SET, USER_ID_FORMAT_HASHED_UID};
use crate::kms::period::{ntp64_seconds, parse_ntp64_hex};
use crate::kms::provision::KeySet;
use crate::kms::xml::certificate::{CertRole, KmsCertificateDoc, KMS_CERTIFICATE_VERSION};
use crate::kms::xml::keyset::KmsKeySetDoc;
use crate::kms::xml::kms_error::{KmsErrorCode, KmsErrorDoc};
use crate::kms::xml::request::{parse_kms_request, KmsRequestDoc};
use crate::kms::xml::response::{
    render_kms_response, KmsMessageDoc, KmsResponseBody, KmsResponseDoc,
};
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

fn odt(unix: u64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(i64::try_from(unix).ok()?).ok()
}

/// The `KmsCertificate` of one of our certificates.
pub fn certificate_doc(
    community: &Community,
    cert: &Certificate,
    role: CertRole,
) -> KmsCertificateDoc {
    KmsCertificateDoc {
        version: KMS_CERTIFICATE_VERSION.to_owned(),
        role,
        is_security_gateway: None,
        cert_uri: Some(cert.cert_uri.clone()),
        kms_uri: community.kms_uri.clone(),
        issuer: Some(community.kms_uri.clone()),
        valid_from: odt(cert.valid_from_unix),
        valid_to: odt(cert.valid_to_unix),
        revoked: Some(cert.revoked),
        user_id_format: USER_ID_FORMAT_HASHED_UID.to_owned(),
        user_key_period: community.period.period_s,
        user_key_offset: community.period.offset_s,
        pub_enc_key: cert.pub_enc_key.clone(),
        pub_auth_key: cert.pub_auth_key.clone(),
        parameter_set: Some(u64::from(PARAMETER_SET)),
        kms_domains: Vec::new(),
    }
}

fn key_set_doc(set: &KeySet) -> KmsKeySetDoc {
    use crate::crypto::secret::SecretVec;
    KmsKeySetDoc {
        kms_uri: set.kms_uri.clone(),
        cert_uri: Some(set.cert_uri.clone()),
        issuer: Some(set.kms_uri.clone()),
        user_uri: set.user_uri.clone(),
        user_id: set.uid,
        valid_from: odt(set.valid_from_unix),
        valid_to: odt(set.valid_to_unix),
        key_period_no: set.period_no,
        revoked: Some(false),
        user_decrypt_key: set.rsk.to_bytes(),
        user_signing_key_ssk: SecretVec::new(set.ssk.to_bytes().expose().to_vec()),
        user_pub_token_pvt: set.pvt.to_bytes().to_vec(),
    }
}

/// Reads the body up to `limit` bytes (413 above, without reading further).
pub(super) async fn read_body(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::BadRequest("could not read the request body".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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

/// Context for the response header, known before anything can fail.
struct Ctx {
    user_uri: String,
    kms_uri: String,
    client_req_url: String,
    now: u64,
}

/// Who may ask for these documents, and how they are authenticated.
#[derive(Debug, Clone, Copy)]
pub enum Caller {
    /// A KM client over KM-UU: the access token alone names the user.
    User,
    /// A party of the service listener with this role: certificate and token
    /// ([`super::service::authenticate`]); its key set is for the name both give.
    Party(Role),
}

/// The single KM-UU handler: all errors become a `KmsError` response.
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    handle_for(req, payload, state, ROOT, Caller::User).await
}

/// The same documents for `caller` under `root` (KM-UU, or SEAL-X1 / KM-S for the group
/// management server and VAL servers, TS 33.434 5.1 / 5.3).
pub async fn handle_for(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    root: &'static str,
    caller: Caller,
) -> HttpResponse {
    let host = req.connection_info().host().to_owned();
    let mut ctx = Ctx {
        user_uri: String::new(),
        kms_uri: String::new(),
        client_req_url: format!("https://{host}{}", req.uri().path()),
        now: state.node.now(),
    };
    let resp = match serve(&req, payload, &state, &mut ctx, root, caller).await {
        Ok(resp) => resp,
        Err(e) => {
            if matches!(e, ApiError::Unauthorized(_)) {
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

async fn serve(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    ctx: &mut Ctx,
    root: &str,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let community = state
        .node
        .community_for_host(Some(&ctx.client_req_url_host()))
        .await?;
    ctx.kms_uri = community.kms_uri.clone();

    // Whole-body limit first: an oversized request is refused before any work.
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
    {
        if len > state.max_body_bytes {
            return Err(ApiError::PayloadTooLarge(state.max_body_bytes));
        }
    }
    let identity = match caller {
        Caller::User => state.authenticate(req)?.identity,
        Caller::Party(role) => super::service::authenticate(req, state, role).await?.name,
    };
    ctx.user_uri = identity.clone();
    let route = parse_route_under(root, req.uri().path())?;
    let body = read_body(payload, state.max_body_bytes).await?;
    let request: Option<KmsRequestDoc> = parse_kms_request(&body)
        .map_err(|e| ApiError::BadRequest(format!("malformed KmsRequest: {e}")))?;
    if let Some(r) = &request {
        if !r.user_uri.is_empty() && r.user_uri != identity {
            return Err(ApiError::Forbidden(
                "UserUri does not match the access token's identity".into(),
            ));
        }
        r.check_kms_uri(&community.kms_uri, &ctx.client_req_url_host())
            .map_err(|e| ApiError::Forbidden(e.to_string()))?;
        if let Some(url) = &r.client_req_url {
            ctx.client_req_url = url.clone();
        }
    }
    let actor = Actor(identity.clone());
    let message = match route {
        Route::Init => {
            let cert = community
                .issuing_certificate(ctx.now)
                .map_err(crate::node::NodeError::from)?;
            KmsMessageDoc::Init(Box::new(certificate_doc(&community, cert, CertRole::Root)))
        }
        Route::KeyProv { user_uri, ntp64 } => {
            if let Some(u) = &user_uri {
                if *u != identity {
                    return Err(ApiError::Forbidden(
                        "a user gets key material only for its own identity".into(),
                    ));
                }
            }
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
            let set = state
                .node
                .key_set(&community, &identity, period, &actor)
                .await?;
            KmsMessageDoc::KeyProv(vec![key_set_doc(&set)])
        }
        Route::CertCache { cache_num } => {
            let current = community.cache_num;
            let certificates = if cache_num == Some(current) {
                Vec::new()
            } else {
                community
                    .live_certificates(ctx.now)
                    .map(|c| certificate_doc(&community, c, CertRole::Root))
                    .collect()
            };
            KmsMessageDoc::CertCache {
                cache_num: current,
                certificates,
            }
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
    let xml = render_kms_response(&doc).map_err(|e| ApiError::Internal(format!("render: {e}")))?;
    Ok(xml_response(
        actix_web::http::StatusCode::OK,
        ZeroizingBody(xml),
    ))
}

impl Ctx {
    fn client_req_url_host(&self) -> String {
        let rest = self.client_req_url.trim_start_matches("https://");
        rest.split('/').next().unwrap_or_default().to_owned()
    }
}

/// A response body that may hold private keys: the buffer is handed to actix without a copy
/// (`Bytes::from_owner`) and zeroized when the last reference to it is dropped, after sending.
pub(super) struct ZeroizingBody(pub(super) zeroize::Zeroizing<String>);

impl AsRef<[u8]> for ZeroizingBody {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<ZeroizingBody> for web::Bytes {
    fn from(b: ZeroizingBody) -> Self {
        web::Bytes::from_owner(b)
    }
}

fn xml_response(status: actix_web::http::StatusCode, body: impl Into<web::Bytes>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/xml; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.into())
}

fn error_code(e: &ApiError) -> KmsErrorCode {
    match e {
        ApiError::Unauthorized(_) => KmsErrorCode::Unauthorized,
        ApiError::Forbidden(_) => KmsErrorCode::Forbidden,
        ApiError::IdentityRevoked => KmsErrorCode::IdentityRevoked,
        ApiError::PeriodOutOfWindow(_) => KmsErrorCode::PeriodOutOfWindow,
        ApiError::BadRequest(_) | ApiError::PayloadTooLarge(_) | ApiError::Conflict(_) => {
            KmsErrorCode::BadRequest
        }
        ApiError::NotFound(_) => KmsErrorCode::NotFound,
        ApiError::TooManyRequests { .. } => KmsErrorCode::TooManyRequests,
        ApiError::Unavailable { .. } => KmsErrorCode::Unavailable,
        ApiError::Internal(_) => KmsErrorCode::Internal,
    }
}

fn error_response(ctx: &Ctx, e: &ApiError) -> HttpResponse {
    let doc = KmsResponseDoc {
        user_uri: if ctx.user_uri.is_empty() {
            "unknown".into()
        } else {
            ctx.user_uri.clone()
        },
        kms_uri: if ctx.kms_uri.is_empty() {
            "unknown".into()
        } else {
            ctx.kms_uri.clone()
        },
        time: odt(ctx.now).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        kms_id: None,
        client_req_url: ctx.client_req_url.clone(),
        body: KmsResponseBody::Error(KmsErrorDoc::new(error_code(e), e.reason())),
    };
    let body = render_kms_response(&doc)
        .map(|x| x.as_bytes().to_vec())
        .unwrap_or_default();
    let mut resp = xml_response(e.status(), body);
    let headers = resp.headers_mut();
    if let ApiError::Unauthorized(reason) = e {
        let v = format!(
            "Bearer realm=\"sealkm\", error=\"invalid_token\", error_description=\"{}\"",
            reason.replace('"', "'")
        );
        if let Ok(v) = header::HeaderValue::from_str(&v) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
    }
    if let Some(s) = e.retry_after_s() {
        headers.insert(header::RETRY_AFTER, header::HeaderValue::from(s));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            parse_route("/keymanagement/identity/v1/init").unwrap(),
            Route::Init
        );
        assert_eq!(
            parse_route(
                "/keymanagement/identity/v1/keyprov/sip%3Auser%40example.org/D6B4323200000000"
            )
            .unwrap(),
            Route::KeyProv {
                user_uri: Some("sip:user@example.org".into()),
                ntp64: Some(0xD6B4_3232_0000_0000)
            }
        );
        assert_eq!(
            parse_route("/keymanagement/identity/v1/keyprov/sip:user@example.org/d6b4323200000000")
                .unwrap(),
            Route::KeyProv {
                user_uri: Some("sip:user@example.org".into()),
                ntp64: Some(0xD6B4_3232_0000_0000)
            }
        );
        assert_eq!(
            parse_route("/keymanagement/identity/v1/certcache/7").unwrap(),
            Route::CertCache { cache_num: Some(7) }
        );
        assert!(matches!(
            parse_route("/keymanagement/identity/v1/keyprov/a/123"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_route("/keymanagement/identity/v1/nope"),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            parse_route("/keymanagement/identity/v1/init/x"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(parse_route("/other"), Err(ApiError::NotFound(_))));
    }
}
