//! An HTTPS callback receiver for key event notifications: a certificate for `localhost` from
//! the environment's dev CA, client certificates of that CA required (the nodes present their
//! service listener certificates), every notification body recorded in arrival order. It can
//! be stopped (connections refused) and restarted on the same port.

#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};

pub struct Receiver {
    pub port: u16,
    tls: rustls::ServerConfig,
    got: Arc<Mutex<Vec<serde_json::Value>>>,
    running: Option<(actix_web::dev::ServerHandle, std::thread::JoinHandle<()>)>,
}

fn server_tls(dir: &Path) -> rustls::ServerConfig {
    let ca = sealkm::tls::DevCa::load(
        &std::fs::read_to_string(dir.join(sealkm::dev::CA_CERT)).expect("ca.pem"),
        &std::fs::read_to_string(dir.join(sealkm::dev::CA_KEY)).expect("ca-key.pem"),
    )
    .expect("dev CA");
    let (cert_pem, key_pem) = ca
        .issue(&["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("receiver certificate");
    let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("cert");
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .expect("key")
        .expect("a key");
    let mut roots = rustls::RootCertStore::empty();
    for c in sealkm::tls::load_certs(&dir.join(sealkm::dev::CA_CERT)).expect("ca") {
        roots.add(c).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .expect("server config");
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg
}

/// Serves the routes `configure` registers over `tls` on 127.0.0.1:`port` (0: a free one), one
/// worker, on a thread of its own: (the bound port, the server's handle, the thread).
pub fn serve_tls(
    port: u16,
    tls: rustls::ServerConfig,
    configure: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> (
    u16,
    actix_web::dev::ServerHandle,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = HttpServer::new(move || App::new().configure(configure.clone()))
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .bind_rustls_0_23(("127.0.0.1", port), tls)
                .expect("bind test server");
            let bound = server.addrs()[0].port();
            let server = server.run();
            tx.send((bound, server.handle())).expect("report");
            let _ = server.await;
        });
    });
    let (bound, handle) = rx.recv().expect("test server started");
    (bound, handle, thread)
}

impl Receiver {
    /// Starts a receiver on a free port with a certificate from `dir`'s dev CA.
    pub fn start(dir: &Path) -> Self {
        let mut r = Self {
            port: 0,
            tls: server_tls(dir),
            got: Arc::new(Mutex::new(Vec::new())),
            running: None,
        };
        r.run();
        r
    }

    /// The callback URL to subscribe with.
    pub fn url(&self) -> String {
        format!("https://localhost:{}/events", self.port)
    }

    fn run(&mut self) {
        let got = self.got.clone();
        let (port, handle, thread) = serve_tls(self.port, self.tls.clone(), move |cfg| {
            let got = got.clone();
            cfg.route(
                "/events",
                web::post().to(move |body: web::Bytes| {
                    let got = got.clone();
                    async move {
                        match serde_json::from_slice::<serde_json::Value>(&body) {
                            Ok(v) => {
                                got.lock().unwrap().push(v);
                                HttpResponse::NoContent().finish()
                            }
                            Err(_) => HttpResponse::BadRequest().finish(),
                        }
                    }
                }),
            );
        });
        self.port = port;
        self.running = Some((handle, thread));
    }

    /// Stops accepting (open connections are dropped).
    pub fn stop(&mut self) {
        if let Some((handle, thread)) = self.running.take() {
            actix_rt::System::new().block_on(handle.stop(false));
            let _ = thread.join();
        }
    }

    /// Starts again on the same port.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "receiver is running");
        self.run();
    }

    /// Every notification received so far, in arrival order.
    pub fn notifications(&self) -> Vec<serde_json::Value> {
        self.got.lock().unwrap().clone()
    }

    /// Every event (with its notification's `must_resync`) received for `subscription`, in
    /// arrival order, redeliveries included.
    pub fn events(&self, subscription: &str) -> Vec<serde_json::Value> {
        self.notifications()
            .iter()
            .filter(|n| n["subscription_id"] == subscription)
            .flat_map(|n| n["events"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}
