//! The parties of the service listener in tests: the dev GMS and VAL server (certificates
//! issued by `sealkm dev`), tokens from the dev identity provider with optional extra claims,
//! and ACL grants through the admin API.

use std::path::Path;

use sealkm::client::party::{PartyClient, PartyReply};
use sealkm::client::KmClient;
use sealkm::dev;

/// Runs a future on a fresh actix system (the clients are actix-based).
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    actix_rt::System::new().block_on(f)
}

/// A token for `user` from the environment in `dir`, with `extra` claims added.
pub fn token(dir: &Path, user: &str, extra: &[(&str, serde_json::Value)]) -> String {
    dev::mint_token(dir, user, 600, extra).expect("mint")
}

/// The certificate files of party `stem` (`gms`, `val`, or one issued by the test).
pub fn identity(dir: &Path, stem: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    dev::party_files(dir, stem)
}

/// A JSON client for the service listener at `url` with the certificate of `cert_stem` (none:
/// no client certificate) and `token`.
pub fn client(
    dir: &Path,
    url: &str,
    cert_stem: Option<&str>,
    token: Option<String>,
) -> PartyClient {
    let files = cert_stem.map(|s| identity(dir, s));
    PartyClient::new(
        url,
        &dir.join(dev::CA_CERT),
        files.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        token,
    )
    .expect("party client")
}

/// A TS 33.180 document client for a party under `root`.
pub fn km_client(dir: &Path, url: &str, root: &str, cert_stem: &str, token: String) -> KmClient {
    let (c, k) = identity(dir, cert_stem);
    KmClient::party(
        url,
        root,
        &dir.join(dev::CA_CERT),
        Some((&c, &k)),
        Some(token),
    )
    .expect("km client")
}

/// One call, blocking.
pub fn call(
    c: &PartyClient,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> PartyReply {
    block(c.call(method, path, body.as_ref())).expect("call")
}

/// An admin API client of the environment in `dir`.
fn admin(dir: &Path) -> super::cluster::ureq_like::Agent {
    let token = std::fs::read_to_string(dir.join(dev::ADMIN_TOKEN))
        .expect("admin token")
        .trim()
        .to_owned();
    super::cluster::ureq_like::Agent::new(&dir.join(dev::CA_CERT), token)
}

/// Grants `principal` through the admin API of the node at `km_uu`.
pub fn grant(dir: &Path, km_uu: &str, principal: &str, role: &str, groups: &[&str]) {
    let (status, body) = admin(dir)
        .post(
            &format!("{km_uu}/admin/v1/acl"),
            &serde_json::json!({"principal": principal, "role": role, "groups": groups}),
        )
        .expect("acl");
    assert_eq!(status, 200, "{body}");
}

/// The node's state digest (admin cluster status), to show that a refusal changed nothing.
pub fn digest(dir: &Path, km_uu: &str) -> String {
    let (status, v) = admin(dir)
        .get(&format!("{km_uu}/admin/v1/cluster/status"))
        .expect("status");
    assert_eq!(status, 200);
    v["nodes"][0]["digest"].as_str().expect("digest").to_owned()
}

/// What [`http_call`] got back.
pub struct HttpAnswer {
    pub version: awc::http::Version,
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

/// `method url` (GET or POST) over `tls`, with an optional bearer token and JSON body.
pub async fn http_call(
    tls: rustls::ClientConfig,
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<serde_json::Value>,
) -> HttpAnswer {
    http_call_with(tls, method, url, bearer, &[], body).await
}

/// [`http_call`] with extra request headers.
pub async fn http_call_with(
    tls: rustls::ClientConfig,
    method: &str,
    url: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> HttpAnswer {
    let client = sealkm::client::http_client(tls);
    let mut req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut resp = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .expect("request");
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    let body = resp.body().limit(1 << 20).await.expect("body").to_vec();
    HttpAnswer {
        version: resp.version(),
        status: resp.status().as_u16(),
        content_type,
        retry_after,
        body,
    }
}
