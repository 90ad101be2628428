//! An HTTP proxy in front of KM-UU (TS 23.434 HTTP-1 / HTTP-2 reference points): nginx
//! terminates TLS for clients (HTTP/2 and HTTP/1.1 by ALPN) and forwards to a 3-node cluster
//! over TLS with `X-Forwarded-Host` / `X-Forwarded-Proto`. The nodes trust the proxy's address
//! (`client_listener.trusted_proxies`), so the forwarded host selects the community and builds
//! the `ClientReqUrl`; a node killed behind the proxy does not stop the service.
//!
//! The mutual-TLS service listener sits behind nginx's TCP pass-through (its `stream` module):
//! TLS runs end to end, so the node sees the party's own certificate, in either HTTP version.
//!
//! nginx runs unprivileged-style on a loopback port with its own prefix in the test's temp dir
//! (`-p dir -c conf -e log`, `daemon off`, `master_process off`: one process), and is killed
//! when the test ends, failed or not (the [`Nginx`] guard). Without an nginx binary the test
//! fails and says so (`.ci/run` installs it).

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use awc::http::Version;
use common::cluster::{poll, Cluster};
use sealkm::kms::xml::response::{parse_kms_response, KmsMessageDoc, KmsResponseBody};

const USER: &str = "sip:alice@sealkm.test";
const KMS2: &str = "kms2.sealkm.test";

/// The nginx process of a test; killed (and reaped) on drop.
struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> PathBuf {
    for p in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    let which = Command::new("sh")
        .args(["-c", "command -v nginx"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match which {
        Some(p) if !p.is_empty() => p.into(),
        _ => panic!(
            "nginx is not installed: this test needs it (Debian: apt-get install nginx-light; \
             .ci/run installs it when missing)"
        ),
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("port in URL")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Nginx {
    /// Starts nginx in `dir` (the dev environment: its `node1-cert.pem` serves clients, its
    /// `ca.pem` checks the nodes) in front of the KM-UU listeners on `upstream_ports`, and
    /// waits until it accepts connections.
    fn start(dir: &Path, upstream_ports: &[u16]) -> Nginx {
        let port = free_port();
        let prefix = dir.join("nginx");
        let d = dir.display();
        let p = prefix.display();
        let servers = upstream_servers(upstream_ports);
        let http = format!(
            r#"http {{
  access_log {p}/logs/access.log;
  client_body_temp_path {p}/client_body;
  proxy_temp_path {p}/proxy;
  fastcgi_temp_path {p}/fastcgi;
  uwsgi_temp_path {p}/uwsgi;
  scgi_temp_path {p}/scgi;
  upstream kms {{
{servers}  }}
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {d}/node1-cert.pem;
    ssl_certificate_key {d}/node1-key.pem;
    location / {{
      proxy_pass https://kms;
      proxy_http_version 1.1;
      proxy_ssl_trusted_certificate {d}/ca.pem;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_set_header X-Forwarded-Host $host:$server_port;
      proxy_set_header X-Forwarded-Proto $scheme;
      # A KM-UU request is safe to repeat (the key set of a period is deterministic).
      proxy_next_upstream error timeout non_idempotent;
      proxy_connect_timeout 5s;
    }}
  }}
}}
"#
        );
        Self::run(&prefix, port, "", &http)
    }

    /// Starts nginx in `dir` as a TCP pass-through (its `stream` module) in front of the
    /// mutual-TLS service listeners on `upstream_ports`: TLS runs end to end between the
    /// party and a node, which sees the party's own certificate.
    fn start_stream(dir: &Path, upstream_ports: &[u16]) -> Nginx {
        let port = free_port();
        let prefix = dir.join("nginx-stream");
        let servers = upstream_servers(upstream_ports);
        let stream = format!(
            r#"stream {{
  upstream svc {{
{servers}  }}
  server {{
    listen 127.0.0.1:{port};
    proxy_pass svc;
    proxy_connect_timeout 5s;
  }}
}}
"#
        );
        // Debian ships the stream module as a dynamic module (libnginx-mod-stream); a build
        // with it compiled in needs no load_module.
        let module = if Path::new(STREAM_MODULE).exists() {
            format!("load_module {STREAM_MODULE};\n")
        } else {
            String::new()
        };
        Self::run(&prefix, port, &module, &stream)
    }

    /// Writes the configuration (`head` before the common part, `body` after it) into
    /// `prefix`, starts nginx there and waits until it accepts connections on `port`.
    fn run(prefix: &Path, port: u16, head: &str, body: &str) -> Nginx {
        let bin = nginx_binary();
        std::fs::create_dir_all(prefix.join("logs")).expect("nginx dir");
        let p = prefix.display();
        let conf = format!(
            "{head}daemon off;\nmaster_process off;\npid {p}/nginx.pid;\n\
             error_log {p}/logs/error.log info;\nevents {{ worker_connections 64; }}\n{body}"
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let child = Command::new(&bin)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut n = Nginx {
            child,
            port,
            dir: prefix.to_owned(),
        };
        poll(|| {
            if let Ok(Some(status)) = n.child.try_wait() {
                panic!("nginx exited ({status}): {}", n.log());
            }
            TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        });
        n
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }
}

/// Where Debian installs the stream module (`libnginx-mod-stream`).
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

fn upstream_servers(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|u| format!("    server 127.0.0.1:{u};\n"))
        .collect()
}

fn token(c: &Cluster) -> String {
    let cfg = sealkm::config::NodeConfig::load(&c.config(1)).expect("config");
    let idp = sealkm::dev::load_idp(c.dir()).expect("idp");
    idp.mint_for(
        &cfg.auth.token,
        USER,
        &cfg.auth.token.required_scope,
        common::unix_now(),
        600,
    )
    .expect("mint")
}

/// What a keyprov through the proxy answered.
struct Answer {
    status: u16,
    version: Version,
    client_req_url: String,
    kms_uri: Option<String>,
}

/// POSTs `keyprov` to `https://localhost:port` offering only `alpn`, with an optional `Host`.
fn keyprov(c: &Cluster, port: u16, alpn: &[u8], host: Option<&str>) -> Answer {
    let mut tls = sealkm::tls::client_config(&c.ca()).expect("client config");
    tls.alpn_protocols = vec![alpn.to_vec()];
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(tls)))
        .timeout(std::time::Duration::from_secs(30))
        .finish();
    let url = format!("https://localhost:{port}/keymanagement/identity/v1/keyprov");
    let token = token(c);
    let host = host.map(str::to_owned);
    actix_rt::System::new().block_on(async move {
        let mut req = client.post(url).bearer_auth(token);
        if let Some(h) = host {
            req = req.insert_header(("Host", h));
        }
        let mut resp = req.send().await.expect("request through nginx");
        let body = resp.body().limit(1 << 20).await.expect("body");
        let doc = parse_kms_response(&body).unwrap_or_else(|e| {
            panic!(
                "status {}: not a KmsResponse ({e}): {}",
                resp.status(),
                String::from_utf8_lossy(&body)
            )
        });
        let kms_uri = match &doc.body {
            KmsResponseBody::Message(KmsMessageDoc::KeyProv(sets)) => {
                sets.first().map(|s| s.kms_uri.clone())
            }
            _ => None,
        };
        Answer {
            status: resp.status().as_u16(),
            version: resp.version(),
            client_req_url: doc.client_req_url,
            kms_uri,
        }
    })
}

#[test]
fn km_uu_through_nginx_in_both_http_versions_survives_a_dead_node() {
    let mut c = Cluster::start(3, |_, t| {
        t.replace(
            "\n[service_listener]",
            "trusted_proxies = [\"127.0.0.1\", \"::1\"]\n\n[service_listener]",
        )
        .replace(
            "[keyprov]",
            &format!("[[community]]\nkms_uri = \"{KMS2}\"\nuser_key_period_s = 86400\n\n[keyprov]"),
        )
    });
    let ports: Vec<u16> = (1..=3).map(|id| port_of(c.url(id))).collect();
    let nginx = Nginx::start(c.dir(), &ports);
    let p = nginx.port;
    let want_url = format!("https://localhost:{p}/keymanagement/identity/v1/keyprov");
    for (alpn, version) in [
        (b"h2".as_slice(), Version::HTTP_2),
        (b"http/1.1".as_slice(), Version::HTTP_11),
    ] {
        let a = keyprov(&c, p, alpn, None);
        assert_eq!((a.status, a.version), (200, version), "{}", nginx.log());
        // The node saw nginx's request (Host: kms) but answers for the client's address.
        assert_eq!(a.client_req_url, want_url, "{version:?}");
        assert_eq!(a.kms_uri.as_deref(), Some("kms.sealkm.test"));
        // The host the client addressed selects the community through the proxy. Over
        // HTTP/1.1 only: awc takes the HTTP/2 `:authority` from the URL, and reaching nginx
        // as kms2 by name would need DNS and a certificate naming it.
        if version == Version::HTTP_11 {
            let a = keyprov(&c, p, alpn, Some(KMS2));
            assert_eq!(a.status, 200, "{version:?}");
            assert_eq!(a.kms_uri.as_deref(), Some(KMS2), "{version:?}");
            assert_eq!(
                a.client_req_url,
                format!("https://{KMS2}:{p}/keymanagement/identity/v1/keyprov")
            );
        }
    }
    // A node dies (the leader, the hardest case); once the others agree on a new leader, every
    // request through the proxy is answered, whichever upstream nginx picks first.
    let leader = c.leader();
    c.kill(leader);
    c.leader();
    for i in 0..6 {
        let alpn = if i % 2 == 0 {
            b"h2".as_slice()
        } else {
            b"http/1.1"
        };
        let a = keyprov(&c, p, alpn, None);
        assert_eq!(
            a.status,
            200,
            "request {i} after node {leader} died: {}",
            nginx.log()
        );
        assert_eq!(a.client_req_url, want_url);
    }
}

#[test]
fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // No trusted_proxies: a client's own X-Forwarded-Host picks nothing.
    let env = common::Env::new(|t| {
        t.replace(
            "[keyprov]",
            &format!("[[community]]\nkms_uri = \"{KMS2}\"\nuser_key_period_s = 86400\n\n[keyprov]"),
        )
    });
    let node = env.start();
    let client = node.client(&env.ca(), Some(env.token(USER)));
    let reply = actix_rt::System::new()
        .block_on(client.post_with(
            "keyprov",
            None,
            &[("X-Forwarded-Host", KMS2), ("X-Forwarded-Proto", "http")],
        ))
        .expect("keyprov");
    let ks = common::key_set(&reply);
    assert_eq!(ks.kms_uri, "kms.sealkm.test");
    assert!(
        reply
            .doc
            .client_req_url
            .starts_with(&format!("https://localhost:{}/", port_of(&node.url))),
        "{}",
        reply.doc.client_req_url
    );
}

/// The version and status of `method url` by the GMS (its certificate and `token`), offering
/// only `alpn`.
fn gms_call(c: &Cluster, url: &str, method: &str, alpn: &[u8], token: &str) -> (Version, u16) {
    let (cert, key) = common::parties::identity(c.dir(), "gms");
    let mut tls = sealkm::tls::peer_client_config(&cert, &key, &c.ca()).expect("client config");
    tls.alpn_protocols = vec![alpn.to_vec()];
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(tls)))
        .timeout(std::time::Duration::from_secs(30))
        .finish();
    let (url, method, token) = (url.to_owned(), method.to_owned(), token.to_owned());
    actix_rt::System::new().block_on(async move {
        let req = match method.as_str() {
            "POST" => client.post(url),
            _ => client.get(url),
        };
        let resp = req
            .bearer_auth(token)
            .send_json(&serde_json::json!({}))
            .await
            .expect("request through nginx");
        (resp.version(), resp.status().as_u16())
    })
}

#[test]
fn the_service_listener_behind_a_tcp_pass_through_keeps_mutual_tls_in_both_versions() {
    let mut c = Cluster::start(3, |_, t| t);
    let ports: Vec<u16> = (1..=3).map(|id| port_of(&c.service_urls[&id])).collect();
    let nginx = Nginx::start_stream(c.dir(), &ports);
    common::parties::grant(c.dir(), c.url(1), sealkm::dev::DEV_GMS, "gms", &["*"]);
    let token = common::parties::token(c.dir(), sealkm::dev::DEV_GMS, &[]);
    let base = format!("https://localhost:{}/seal-x1/v1/groups/px/keys", nginx.port);
    // The GMS's own certificate reaches the node through the proxy (nginx holds no key): its
    // group key writes and reads are answered, in the HTTP version it offered.
    for (alpn, version) in [
        (b"h2".as_slice(), Version::HTTP_2),
        (b"http/1.1".as_slice(), Version::HTTP_11),
    ] {
        let created = gms_call(&c, &base, "POST", alpn, &token);
        assert_eq!(created, (version, 201), "{}", nginx.log());
        let read = gms_call(&c, &base, "GET", alpn, &token);
        assert_eq!(read, (version, 200), "{}", nginx.log());
    }
    // The node behind it still checks the token: a wrong one is refused through the proxy.
    let refused = gms_call(&c, &base, "GET", b"h2", "not-a-token");
    assert_eq!(refused.1, 401);
    // The leader dies: the proxy's next upstream answers, writes included.
    let leader = c.leader();
    c.kill(leader);
    c.leader();
    for alpn in [b"h2".as_slice(), b"http/1.1"] {
        let created = gms_call(&c, &base, "POST", alpn, &token);
        assert_eq!(created.1, 201, "after node {leader} died: {}", nginx.log());
    }
}
