//! Route parsing and error rendering of the TS 33.180 documents.

use super::*;

#[test]
fn routes() {
    assert_eq!(
        parse_route("/keymanagement/identity/v1/init").unwrap(),
        Route::Init
    );
    assert_eq!(
        parse_route("/keymanagement/identity/v1/keyprov/sip%3Auser%40example.org/D6B4323200000000")
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

fn ctx(user_uri: &str, client_req_url: &str) -> Ctx {
    Ctx {
        user_uri: user_uri.into(),
        kms_uri: "kms.example.org".into(),
        client_req_url: client_req_url.into(),
        host: "kms.example.org".into(),
        now: 1_700_000_000,
    }
}

#[test]
fn error_documents_always_render() {
    use crate::kms::xml::response::parse_kms_response;
    let hostile = ctx(
        "sip:a\u{1}b@example.org",
        "https://kms.example.org/\u{0}\u{7}\u{FFFF}",
    );
    let e = ApiError::BadRequest("bad \u{1b}[31m".into());
    let doc = parse_kms_response(&error_body(&hostile, &e)).expect("renders and parses");
    assert_eq!(
        doc.client_req_url,
        "https://kms.example.org/\u{FFFD}\u{FFFD}\u{FFFD}"
    );
    assert_eq!(doc.user_uri, "sip:a\u{FFFD}b@example.org");
    // Nothing left: a placeholder; an unauthenticated caller is named by nobody.
    let doc = parse_kms_response(&error_body(&ctx("", " "), &e)).expect("renders");
    assert_eq!(doc.client_req_url, "unknown");
    assert_eq!(doc.user_uri, "");
    // The fixed last resort parses too.
    assert!(parse_kms_response(FALLBACK_ERROR.as_bytes()).is_ok());
}

#[test]
fn client_req_url_is_checked_before_it_is_echoed() {
    assert!(check_client_req_url("https://kms.example.org/keymanagement").is_ok());
    for bad in [
        "",
        " ",
        "https://x/\u{1}",
        "https://x/\u{7f}",
        "https://x/\n",
    ] {
        assert!(matches!(
            check_client_req_url(bad),
            Err(ApiError::BadRequest(_))
        ));
    }
    assert!(check_client_req_url(&"a".repeat(MAX_CLIENT_REQ_URL + 1)).is_err());
}

#[test]
fn bearer_challenges_follow_rfc_6750() {
    use crate::auth::AuthError;
    // §3.1: no error code (nor description) when the request had no token.
    assert_eq!(
        bearer_challenge(&ApiError::Auth(AuthError::MissingToken)).as_deref(),
        Some(r#"Bearer realm="sealkm""#)
    );
    let expired = bearer_challenge(&ApiError::Auth(AuthError::Expired)).unwrap();
    assert!(expired.starts_with(r#"Bearer realm="sealkm", error="invalid_token""#));
    let scope = bearer_challenge(&ApiError::Auth(AuthError::WrongInterface)).unwrap();
    assert!(scope.contains(r#"error="insufficient_scope""#));
    assert_eq!(bearer_challenge(&ApiError::Forbidden("x".into())), None);
    assert_eq!(
        error_code(&ApiError::Auth(AuthError::WrongInterface)),
        KmsErrorCode::Forbidden
    );
}
