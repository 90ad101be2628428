//! The HTTP edge against a real `sealkm` process (issue 10): party key material only over the
//! service listener, tokens for KM-UU and for parties told apart, authentication before any
//! body or Raft work (and one read barrier per request), a `ClientReqUrl` that cannot be echoed
//! refused before issuing, bodies bounded in time, the RFC 6750 challenge without a token, and
//! the JWKS reloaded on SIGHUP.

mod common;

use std::path::Path;
use std::time::Duration;

use awc::http::header::HeaderMap;
use common::cluster::poll;
use common::parties::{block, token as party_token};
use common::{Env, Node};
use sealkm::dev::{DEV_GMS, DEV_VAL};
use sealkm::kms::xml::kms_error::KmsErrorCode;
use sealkm::kms::xml::response::{parse_kms_response, KmsResponseBody};

const ALICE: &str = "sip:alice@sealkm.test";
const BOB: &str = "sip:bob@sealkm.test";
const KEYPROV: &str = "/keymanagement/identity/v1/keyprov";

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One request: client, method, URL, bearer token, body.
type Case<'a> = (&'a awc::Client, &'a str, String, String, Option<&'a [u8]>);

/// An HTTPS client trusting the dev CA, presenting party `cert_stem`'s certificate if given.
fn client(dir: &Path, cert_stem: Option<&str>) -> awc::Client {
    let files = cert_stem.map(|s| sealkm::dev::party_files(dir, s));
    let tls = sealkm::client::party_tls(
        &dir.join(sealkm::dev::CA_CERT),
        files.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
    )
    .expect("tls");
    sealkm::client::http_client(tls)
}

async fn send(
    c: &awc::Client,
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&[u8]>,
) -> Reply {
    let mut req = c.request(method.parse().expect("method"), url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let mut resp = match body {
        Some(b) => req.send_body(b.to_vec()).await,
        None => req.send().await,
    }
    .expect("request");
    let body = resp.body().limit(1 << 20).await.expect("body").to_vec();
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body,
    }
}

/// The `KmsError` code of a KM-UU answer.
fn kms_error(r: &Reply) -> KmsErrorCode {
    match parse_kms_response(&r.body)
        .expect("a KmsResponse document")
        .body
    {
        KmsResponseBody::Error(e) => e.code,
        other => panic!("expected KmsError, got {other:?}"),
    }
}

/// `sealkm_request_read_barriers_total` of the node.
async fn barriers(node: &Node, dir: &Path) -> u64 {
    let r = send(
        &client(dir, None),
        "GET",
        &format!("{}/metrics", node.url),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("sealkm_request_read_barriers_total "))
        .and_then(|n| n.parse().ok())
        .expect("the request barrier counter")
}

/// Grants `principal` the GMS role on every group, through the admin API.
async fn grant_gms(env: &Env, node: &Node, principal: &str) {
    let r = send(
        &client(env.dir(), None),
        "POST",
        &format!("{}/admin/v1/acl", node.url),
        Some(&env.admin_token()),
        Some(format!(r#"{{"principal":"{principal}","role":"gms","groups":["*"]}}"#).as_bytes()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json());
}

#[test]
fn a_party_gets_no_key_material_on_km_uu_even_after_its_grant_is_removed() {
    block(async {
        let env = Env::new(|c| c);
        let dir = env.dir();
        let node = env.start();
        let service = node.service_url.clone().expect("service listener");
        grant_gms(&env, &node, DEV_GMS).await;
        let anon = client(dir, None);
        let keyprov = format!("{}{KEYPROV}", node.url);

        // The GMS's own (party) token without its certificate, and a KM-UU token naming the GMS.
        let party = party_token(dir, DEV_GMS, &[]);
        let user_scoped = env.token(DEV_GMS);
        for (what, t) in [("party token", &party), ("KM-UU token", &user_scoped)] {
            let r = send(&anon, "POST", &keyprov, Some(t), None).await;
            assert_eq!(
                r.status,
                403,
                "{what}: {}",
                String::from_utf8_lossy(&r.body)
            );
            assert_eq!(kms_error(&r), KmsErrorCode::Forbidden, "{what}");
        }
        // The same after the grant is removed (the party name space still names it).
        let r = send(
            &anon,
            "POST",
            &format!("{}/admin/v1/acl/delete", node.url),
            Some(&env.admin_token()),
            Some(format!(r#"{{"principal":"{DEV_GMS}"}}"#).as_bytes()),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.json());
        for (what, t) in [("party token", &party), ("KM-UU token", &user_scoped)] {
            let r = send(&anon, "POST", &keyprov, Some(t), None).await;
            assert_eq!(r.status, 403, "{what} after the grant left");
        }
        // A VAL server likewise (it has no grant here at all).
        let r = send(&anon, "POST", &keyprov, Some(&env.token(DEV_VAL)), None).await;
        assert_eq!(r.status, 403);
        // A user still gets its keys on KM-UU.
        let r = send(&anon, "POST", &keyprov, Some(&env.token(ALICE)), None).await;
        assert_eq!(r.status, 200);
        // The GMS gets its key set on the service listener, with its certificate.
        grant_gms(&env, &node, DEV_GMS).await;
        let gms = client(dir, Some("gms"));
        let r = send(
            &gms,
            "POST",
            &format!("{service}/seal-x1/v1/keymanagement/keyprov"),
            Some(&party),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    })
}

#[test]
fn a_km_uu_token_is_refused_on_the_service_listener() {
    block(async {
        let env = Env::new(|c| c);
        let dir = env.dir();
        let node = env.start();
        let service = node.service_url.clone().expect("service listener");
        grant_gms(&env, &node, DEV_GMS).await;
        let gms = client(dir, Some("gms"));
        let url = format!("{service}/seal-x1/v1/groups/g1/keys");
        // A KM-UU token that names the GMS, with the GMS's certificate: not a party token.
        let r = send(&gms, "GET", &url, Some(&env.token(DEV_GMS)), None).await;
        assert_eq!(r.status, 403, "{}", r.json());
        // The party token gets through to the (unknown) group.
        let r = send(
            &gms,
            "GET",
            &url,
            Some(&party_token(dir, DEV_GMS, &[])),
            None,
        )
        .await;
        assert_eq!(r.status, 404, "{}", r.json());
    })
}

#[test]
fn authentication_comes_before_the_body_and_the_one_read_barrier() {
    block(async {
        let env = Env::new(|c| c);
        let dir = env.dir();
        let node = env.start();
        let service = node.service_url.clone().expect("service listener");
        grant_gms(&env, &node, DEV_GMS).await;
        let anon = client(dir, None);
        let keyprov = format!("{}{KEYPROV}", node.url);
        let oversized = vec![b'<'; 64 * 1024 + 1];

        // KM-UU without a token: 401 whatever the body, and no read barrier.
        let before = barriers(&node, dir).await;
        for body in [&oversized[..], b"<KmsRequest" as &[u8]] {
            let r = send(&anon, "POST", &keyprov, None, Some(body)).await;
            assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
            // RFC 6750 §3.1: no error code when the request had no token; the document names nobody.
            let challenge = r.headers.get("www-authenticate").expect("challenge");
            assert_eq!(challenge.to_str().unwrap(), r#"Bearer realm="sealkm""#);
            let doc = parse_kms_response(&r.body).expect("KmsResponse");
            assert_eq!(doc.user_uri, "");
        }
        // A refused token still says why.
        let r = send(&anon, "POST", &keyprov, Some("a.b.c"), Some(&oversized)).await;
        assert_eq!(r.status, 401);
        let challenge = r.headers.get("www-authenticate").unwrap().to_str().unwrap();
        assert!(challenge.contains(r#"error="#), "{challenge}");
        assert_eq!(
            barriers(&node, dir).await,
            before,
            "no barrier for refused callers"
        );

        // The admin API without (or with a wrong) credential: 401 before the JSON is parsed.
        let acl = format!("{}/admin/v1/acl", node.url);
        for bearer in [None, Some("wrong")] {
            let r = send(&anon, "POST", &acl, bearer, Some(b"{not json")).await;
            assert_eq!(r.status, 401, "{}", r.json());
        }
        // The service listener without a certificate: 401 before the JSON is parsed or measured.
        let subs = format!("{service}/seal-x1/v1/subscriptions");
        let party = party_token(dir, DEV_GMS, &[]);
        for body in [&b"{not json"[..], &oversized[..]] {
            let r = send(&anon, "POST", &subs, Some(&party), Some(body)).await;
            assert_eq!(r.status, 401, "{}", r.json());
        }
        assert_eq!(barriers(&node, dir).await, before);

        // Every authenticated request makes exactly one read barrier.
        let gms = client(dir, Some("gms"));
        let cases: Vec<Case<'_>> = vec![
        (&anon, "POST", keyprov.clone(), env.token(ALICE), None),
        (
            &gms,
            "POST",
            format!("{service}/seal-x1/v1/keymanagement/keyprov"),
            party.clone(),
            None,
        ),
        (
            &gms,
            "POST",
            format!("{service}/seal-x1/v1/groups/g1/keys"),
            party.clone(),
            None,
        ),
        (&gms, "GET", subs.clone(), party.clone(), None),
        (
            &gms,
            "POST",
            subs.clone(),
            party.clone(),
            Some(br#"{"id":"s1","callback_url":"https://localhost:9/cb","kinds":["group-key-rotated"]}"#),
        ),
    ];
        for (c, method, url, t, body) in cases {
            let before = barriers(&node, dir).await;
            let r = send(c, method, &url, Some(&t), body).await;
            assert!(r.status < 300, "{method} {url}: {}", r.status);
            assert_eq!(
                barriers(&node, dir).await,
                before + 1,
                "{method} {url}: one read barrier"
            );
        }
    })
}

fn keyprov_request(client_req_url: &str) -> Vec<u8> {
    format!(
        r#"<KmsRequest xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0" Version="1.0.0"><UserUri>{ALICE}</UserUri><KmsUri>kms.sealkm.test</KmsUri><Time>2026-01-01T00:00:00</Time><ClientReqUrl>{client_req_url}</ClientReqUrl></KmsRequest>"#
    )
    .into_bytes()
}

#[test]
fn a_client_req_url_that_cannot_be_echoed_is_refused_before_issuing() {
    block(async {
        let env = Env::new(|c| c);
        let dir = env.dir();
        let node = env.start();
        let anon = client(dir, None);
        let keyprov = format!("{}{KEYPROV}", node.url);
        let r = send(
            &anon,
            "POST",
            &keyprov,
            Some(&env.token(ALICE)),
            Some(&keyprov_request("https://kms.sealkm.test/x\u{1}y")),
        )
        .await;
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(kms_error(&r), KmsErrorCode::BadRequest);
        // Bob's key set is delivered and audited; Alice's never was.
        let r = send(&anon, "POST", &keyprov, Some(&env.token(BOB)), None).await;
        assert_eq!(r.status, 200);
        node.stop();
        let audit = std::fs::read_to_string(dir.join("node1-audit.jsonl")).expect("audit");
        let delivered: Vec<&str> = audit
            .lines()
            .filter(|l| l.contains("key_set_delivered"))
            .collect();
        assert_eq!(delivered.len(), 1, "{audit}");
        assert!(delivered[0].contains(BOB), "{audit}");
    })
}

#[test]
fn a_body_that_does_not_arrive_in_time_gets_408() {
    use std::io::{Read, Write};
    let env = Env::new(|c| format!("{c}\n[limits]\nbody_read_timeout_s = 1\n"));
    let node = env.start();
    let port: u16 = node
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let tls = sealkm::tls::client_config(&env.ca()).expect("tls");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(tls), name).expect("tls conn");
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    // Only a bound on a failure: the node answers after its 1 s body timeout.
    tcp.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // The headers promise 100 bytes; 10 come, then nothing.
    let head = format!(
        "POST {KEYPROV} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 100\r\n\r\n<KmsReques",
        env.token(ALICE)
    );
    tls.write_all(head.as_bytes()).expect("send");
    tls.flush().expect("flush");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls
            .read(&mut buf)
            .expect("an answer before the client gives up");
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

#[test]
fn the_jwks_is_reloaded_on_sighup_and_cached_tokens_of_a_gone_key_are_refused() {
    let env = Env::new(|c| c);
    let dir = env.dir().to_owned();
    let node = env.start();
    let keyprov = format!("{}{KEYPROV}", node.url);
    let status = |t: &str| {
        block(async {
            send(&client(&dir, None), "POST", &keyprov, Some(t), None)
                .await
                .status
        })
    };
    let old = env.token(ALICE);
    assert_eq!(status(&old), 200);

    // The identity management server rolls its key (same kid, new key).
    let idp = sealkm::auth::DevIdp::generate(sealkm::dev::DEV_IDP_KID).expect("idp");
    std::fs::write(dir.join("jwks.json"), idp.jwks_json()).expect("jwks");
    let p = env.policy();
    let new = idp
        .mint_for(&p, ALICE, &p.required_scope, common::unix_now(), 600)
        .expect("mint");
    assert_eq!(status(&new), 401, "not before the reload");
    // SAFETY: kill(2) on our own child's PID.
    unsafe {
        libc::kill(node.child.id() as i32, libc::SIGHUP);
    }
    // The reload happens in the node's own time: poll for its effect.
    poll(|| (status(&new) == 200).then_some(()));
    // The node is still running, and the old token (cached before) is refused now.
    assert_eq!(status(&old), 401);
}
