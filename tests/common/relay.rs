//! A recording HTTPS relay for KM-E: it terminates the Federator's TLS with a server
//! certificate of the CA the Federator pins for its partner, forwards each request (method,
//! path, `Content-Type`, body) to the partner's KM-E listener over mutual TLS with a client
//! certificate the partner accepts, answers with the partner's status, `Content-Type` and body,
//! and records every request and response body in arrival order. No hook in the product: the
//! bodies are exactly what crossed between the two clusters.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// One request through the relay and the partner's answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub request: Vec<u8>,
    /// 502 when the partner could not be reached (then `response` is empty).
    pub status: u16,
    pub response: Vec<u8>,
}

pub struct Relay {
    pub port: u16,
    log: Arc<Mutex<Vec<Exchange>>>,
    running: Option<(actix_web::dev::ServerHandle, std::thread::JoinHandle<()>)>,
}

fn server_tls(ca: &sealkm::tls::DevCa) -> rustls::ServerConfig {
    let (cert_pem, key_pem) = ca
        .issue(&["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("relay certificate");
    let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("cert");
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .expect("key")
        .expect("a key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg
}

impl Relay {
    /// Listens on a free port of 127.0.0.1 with a certificate of `server_ca` and forwards to
    /// `target` (`https://host:port`) with `client_tls`.
    pub fn start(
        server_ca: &sealkm::tls::DevCa,
        target: &str,
        client_tls: rustls::ClientConfig,
    ) -> Self {
        let log: Arc<Mutex<Vec<Exchange>>> = Arc::default();
        let tls = server_tls(server_ca);
        let (tx, rx) = std::sync::mpsc::channel();
        let (got, target) = (log.clone(), target.to_owned());
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    let client = sealkm::client::http_client(client_tls.clone());
                    let (got, target) = (got.clone(), target.clone());
                    App::new().default_service(web::to(
                        move |req: HttpRequest, body: web::Bytes| {
                            forward(client.clone(), target.clone(), got.clone(), req, body)
                        },
                    ))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .bind_rustls_0_23(("127.0.0.1", 0), tls)
                .expect("bind relay");
                let bound = server.addrs()[0].port();
                let server = server.run();
                tx.send((bound, server.handle())).expect("report");
                let _ = server.await;
            });
        });
        let (port, handle) = rx.recv().expect("relay started");
        Self {
            port,
            log,
            running: Some((handle, thread)),
        }
    }

    /// Every exchange so far, in arrival order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }
}

async fn forward(
    client: awc::Client,
    target: String,
    got: Arc<Mutex<Vec<Exchange>>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut out = client.request(req.method().clone(), format!("{target}{path}"));
    if let Some(ct) = req.headers().get("content-type") {
        out = out.insert_header(("content-type", ct.clone()));
    }
    let (status, content_type, response) = match out.send_body(body.clone()).await {
        Ok(mut r) => {
            let bytes = r.body().limit(1 << 20).await.map(|b| b.to_vec());
            match bytes {
                Ok(b) => (
                    r.status().as_u16(),
                    r.headers().get("content-type").cloned(),
                    b,
                ),
                Err(_) => (502, None, Vec::new()),
            }
        }
        Err(_) => (502, None, Vec::new()),
    };
    got.lock().unwrap().push(Exchange {
        method: req.method().to_string(),
        path,
        request: body.to_vec(),
        status,
        response: response.clone(),
    });
    let mut answer =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"));
    if let Some(ct) = content_type {
        answer.insert_header(("content-type", ct));
    }
    answer.body(response)
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some((handle, thread)) = self.running.take() {
            actix_rt::System::new().block_on(handle.stop(false));
            let _ = thread.join();
        }
    }
}
