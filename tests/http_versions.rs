//! Both HTTP versions on both listeners (TS 23.434 routes these interfaces through HTTP/1.1 and
//! HTTP/2 proxies): a client that offers only `h2`, or only `http/1.1`, by ALPN is answered in
//! that version, on the client listener (KM-UU, admin, health) and on the mutual-TLS service
//! listener (SEAL-X1, KM-S).

mod common;

use std::sync::Arc;

use awc::http::Version;
use common::Env;

/// A client config offering only `alpn`; with the GMS's certificate for the service listener.
fn tls(env: &Env, alpn: &[u8], party_cert: bool) -> rustls::ClientConfig {
    let mut cfg = if party_cert {
        sealkm::tls::peer_client_config(
            &env.dir().join("gms-cert.pem"),
            &env.dir().join("gms-key.pem"),
            &env.ca(),
        )
    } else {
        sealkm::tls::client_config(&env.ca())
    }
    .expect("client config");
    cfg.alpn_protocols = vec![alpn.to_vec()];
    cfg
}

/// The version and status of `GET url`.
async fn get(url: &str, cfg: rustls::ClientConfig) -> (Version, u16) {
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(cfg)))
        .finish();
    let resp = client.get(url).send().await.expect("request");
    (resp.version(), resp.status().as_u16())
}

#[actix_rt::test]
async fn each_listener_answers_http2_and_http11_as_offered() {
    let env = Env::new(|c| c);
    let node = env.start();
    let service = node.service_url.clone().expect("service listener");
    for (alpn, version) in [
        (b"h2".as_slice(), Version::HTTP_2),
        (b"http/1.1".as_slice(), Version::HTTP_11),
    ] {
        let km_uu = get(&format!("{}/healthz", node.url), tls(&env, alpn, false)).await;
        assert_eq!(km_uu, (version, 200), "client listener, {version:?}");
        let svc = get(&format!("{service}/healthz"), tls(&env, alpn, true)).await;
        assert_eq!(svc, (version, 200), "service listener, {version:?}");
    }
    node.stop();
}
