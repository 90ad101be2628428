//! Both HTTP versions on every interface (TS 23.434 routes these interfaces through HTTP/1.1 and
//! HTTP/2 proxies): a client that offers only `h2`, or only `http/1.1`, by ALPN is answered in
//! that version, by a real call of each interface: on the client listener KM-UU (`init`,
//! `keyprov`), the admin API, health and metrics; on the mutual-TLS service listener SEAL-X1
//! (a group key written and read), KM-S (key provisioning) and TS 29.549 `ss-kir` (the record
//! read back). KM-E, the partner listener, is pinned in `tests/federation_km_e.rs`; the same
//! through an HTTP proxy in `tests/proxy_nginx.rs`.

mod common;

use awc::http::Version;
use base64::Engine;
use common::parties::{block, grant, http_call, identity, token, HttpAnswer};
use common::Env;
use serde_json::{json, Value};

/// A client config offering only `alpn`, with party `stem`'s certificate if given.
fn tls(env: &Env, alpn: &[u8], stem: Option<&str>) -> rustls::ClientConfig {
    let files = stem.map(|s| identity(env.dir(), s));
    let mut cfg = sealkm::client::party_tls(
        &env.ca(),
        files.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
    )
    .expect("client config");
    cfg.alpn_protocols = vec![alpn.to_vec()];
    cfg
}

fn check(a: &HttpAnswer, version: Version, status: u16, what: &str) {
    assert_eq!(
        (a.version, a.status),
        (version, status),
        "{what}: {}",
        String::from_utf8_lossy(&a.body)
    );
}

#[test]
fn every_interface_answers_http2_and_http11_as_offered() {
    let env = Env::new(|c| c);
    let node = env.start();
    let km = node.url.clone();
    let svc = node.service_url.clone().expect("service listener");
    grant(env.dir(), &km, sealkm::dev::DEV_GMS, "gms", &["*"]);
    grant(env.dir(), &km, sealkm::dev::DEV_VAL, "val-server", &["*"]);
    let user = env.token("alice@example.org");
    let admin = env.admin_token();
    let gms = token(env.dir(), sealkm::dev::DEV_GMS, &[]);
    let val = token(
        env.dir(),
        sealkm::dev::DEV_VAL,
        &[("SKeyProv", json!(true))],
    );
    let root = "/keymanagement/identity/v1";
    for (n, (alpn, version)) in [
        (b"h2".as_slice(), Version::HTTP_2),
        (b"http/1.1".as_slice(), Version::HTTP_11),
    ]
    .into_iter()
    .enumerate()
    {
        let plain = || tls(&env, alpn, None);
        // Client listener: KM-UU documents, admin, health, metrics.
        for doc in ["init", "keyprov"] {
            let a = block(http_call(
                plain(),
                "POST",
                &format!("{km}{root}/{doc}"),
                Some(&user),
                None,
            ));
            check(&a, version, 200, doc);
            sealkm::kms::xml::response::parse_kms_response(&a.body)
                .unwrap_or_else(|e| panic!("{doc} over {version:?}: not a KmsResponse: {e}"));
        }
        let a = block(http_call(
            plain(),
            "GET",
            &format!("{km}/admin/v1/cluster/status"),
            Some(&admin),
            None,
        ));
        check(&a, version, 200, "admin");
        let status: Value = serde_json::from_slice(&a.body).expect("status JSON");
        assert_eq!(status["nodes"][0]["role"], "leader");
        check(
            &block(http_call(
                plain(),
                "GET",
                &format!("{km}/healthz"),
                None,
                None,
            )),
            version,
            200,
            "health",
        );
        let a = block(http_call(
            plain(),
            "GET",
            &format!("{km}/metrics"),
            Some(&admin),
            None,
        ));
        check(&a, version, 200, "metrics");
        assert!(String::from_utf8_lossy(&a.body).contains("sealkm_"));
        // Service listener: SEAL-X1 as the GMS, KM-S and ss-kir as the VAL server.
        let group = format!("{svc}/seal-x1/v1/groups/hv-{n}/keys");
        let a = block(http_call(
            tls(&env, alpn, Some("gms")),
            "POST",
            &group,
            Some(&gms),
            None,
        ));
        check(&a, version, 201, "SEAL-X1 write");
        let a = block(http_call(
            tls(&env, alpn, Some("gms")),
            "GET",
            &group,
            Some(&gms),
            None,
        ));
        check(&a, version, 200, "SEAL-X1 read");
        let secret = format!("KEY-INFO-{n}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&secret);
        let body = json!({"key_id": format!("k{n}"), "key_info": b64, "val_service_id": format!("svc-{n}")});
        let a = block(http_call(
            tls(&env, alpn, Some("val")),
            "POST",
            &format!("{svc}/km-s/v1/key-provisioning"),
            Some(&val),
            Some(body),
        ));
        check(&a, version, 201, "KM-S key provisioning");
        let a = block(http_call(
            tls(&env, alpn, Some("val")),
            "GET",
            &format!("{svc}/ss-kir/v1/key-records?val-service-id=svc-{n}"),
            Some(&val),
            None,
        ));
        check(&a, version, 200, "ss-kir");
        let record: Value = serde_json::from_slice(&a.body).expect("ValKeyInfo");
        assert_eq!(record["keyInfo"], b64.as_str());
        check(
            &block(http_call(
                tls(&env, alpn, Some("gms")),
                "GET",
                &format!("{svc}/healthz"),
                None,
                None,
            )),
            version,
            200,
            "service health",
        );
    }
    node.stop();
}
