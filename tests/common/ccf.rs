//! A stand-in CAPIF core function (CCF) for the tests: no real CCF runs on these machines (the
//! open-source one needs container images and MongoDB). It speaks the TS 29.222 JSON of the
//! calls a KMS makes as AEF/APF — provider registration, `published-apis` (POST, PUT,
//! DELETE), `trustedInvokers`, `api-invocation-logs` — over TLS with a certificate of its own
//! CA, and it can be told to fail (HTTP 500), slow down, or vanish (stop; restart on the same
//! port). It also plays the CCF's other roles in tests: it signs invoker tokens (ES256 and
//! RS256), issues invoker certificates, and has its own client certificate for
//! `revoke-authorization`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde_json::{json, Value};

/// The name on the CCF's client certificate.
pub const CCF_NAME: &str = "ccf.capif.test";

#[derive(Default)]
pub struct CcfState {
    /// Published APIs by apiId.
    pub apis: BTreeMap<String, Value>,
    pub posts: u32,
    pub puts: u32,
    pub deletes: u32,
    /// `ServiceSecurity` answers of trustedInvokers, by invoker id.
    pub trusted: BTreeMap<String, Value>,
    pub trusted_lookups: u32,
    /// Every InvocationLog body received, with its aefId path segment.
    pub logs: Vec<(String, Value)>,
    pub registrations: Vec<Value>,
    /// Answer 500 to everything.
    pub fail: bool,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    next: u32,
}

pub struct Ccf {
    pub port: u16,
    pub dir: PathBuf,
    pub state: Arc<Mutex<CcfState>>,
    ca: sealkm::tls::DevCa,
    tls: rustls::ServerConfig,
    es256: ring::signature::EcdsaKeyPair,
    rs256: Option<ring::signature::RsaKeyPair>,
    running: Option<(actix_web::dev::ServerHandle, std::thread::JoinHandle<()>)>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An RSA key pair by `openssl` (ring makes none): (PKCS#8 DER, public key PEM).
fn rsa_key() -> Option<(Vec<u8>, String)> {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let pem = String::from_utf8(out.stdout).ok()?;
    let der = match rustls_pemfile::private_key(&mut pem.as_bytes()).ok()?? {
        rustls::pki_types::PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => return None,
    };
    let mut child = std::process::Command::new("openssl")
        .args(["pkey", "-pubout"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write;
    child.stdin.take()?.write_all(pem.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    Some((der, String::from_utf8(out.stdout).ok()?))
}

impl Ccf {
    /// A stand-in CCF with a new CA, writing `ccf-ca.pem`, `ccf-keys.pem` (its ES256 and RS256
    /// public keys) and its client certificate (`ccf-client.crt`/`.key`) into `dir`.
    pub fn start(dir: &Path) -> Self {
        let ca = sealkm::tls::DevCa::generate("stand-in CCF CA").expect("ccf ca");
        std::fs::write(dir.join("ccf-ca.pem"), &ca.cert_pem).expect("ccf-ca.pem");
        let (cert, key) = ca
            .issue(&["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("ccf server cert");
        let (ccert, ckey) = ca.issue(&[CCF_NAME.to_string()]).expect("ccf client cert");
        std::fs::write(dir.join("ccf-client.crt"), ccert).unwrap();
        std::fs::write(dir.join("ccf-client.key"), ckey.as_str()).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let ec = rcgen::KeyPair::generate().expect("ec key");
        let es256 = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &ec.serialize_der(),
            &rng,
        )
        .expect("es256");
        let mut keys = ec.public_key_pem();
        let rs256 = rsa_key().map(|(der, public)| {
            keys.push_str(&public);
            ring::signature::RsaKeyPair::from_pkcs8(&der).expect("rs256")
        });
        std::fs::write(dir.join("ccf-keys.pem"), keys).unwrap();
        let certs = rustls_pemfile::certs(&mut cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut key.as_bytes())
            .unwrap()
            .unwrap();
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut c = Ccf {
            port: 0,
            dir: dir.to_owned(),
            state: Arc::new(Mutex::new(CcfState::default())),
            ca,
            tls,
            es256,
            rs256,
            running: None,
        };
        c.run();
        c
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// The `[capif]` section for a node of this CCF (absolute paths to the files in `dir`).
    pub fn config_section(&self, aef: &str, flush_ms: u64) -> String {
        let f = |name: &str| self.dir.join(name).display().to_string();
        format!(
            "\n[capif]\nccf_url = \"{}\"\nccf_ca = \"{}\"\nccf_names = [\"{CCF_NAME}\"]\n\
             ccf_token_keys = \"{}\"\naef_id = \"{aef}\"\napf_id = \"apf-1\"\n\
             publish_host = \"127.0.0.1\"\npublish_port = 8443\ntrusted_invoker_ttl_s = 600\n\
             log_batch = 2\nlog_flush_ms = {flush_ms}\n",
            self.url(),
            f("ccf-ca.pem"),
            f("ccf-keys.pem"),
        )
    }

    /// Issues an invoker certificate (CN = `invoker`) under the CCF's CA; returns its files.
    pub fn invoker_cert(&self, invoker: &str) -> (PathBuf, PathBuf) {
        let (c, k) = self.ca.issue(&[invoker.to_string()]).expect("invoker cert");
        let (cp, kp) = (
            self.dir.join(format!("{invoker}.crt")),
            self.dir.join(format!("{invoker}.key")),
        );
        std::fs::write(&cp, c).unwrap();
        std::fs::write(&kp, k.as_str()).unwrap();
        (cp, kp)
    }

    /// The CCF's client certificate files.
    pub fn client_cert(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.join("ccf-client.crt"),
            self.dir.join("ccf-client.key"),
        )
    }

    /// Whether RS256 tokens can be made (openssl present).
    pub fn has_rs256(&self) -> bool {
        self.rs256.is_some()
    }

    /// A compact JWS of `claims`, `alg` ES256 or RS256.
    pub fn token(&self, alg: &str, claims: &Value) -> String {
        let header = json!({"alg": alg, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = ring::rand::SystemRandom::new();
        let sig = match alg {
            "RS256" => {
                let k = self.rs256.as_ref().expect("openssl for RS256");
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .unwrap();
                sig
            }
            _ => self
                .es256
                .sign(&rng, input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", b64(&sig))
    }

    /// Claims of a token for `invoker` on `aef`'s `ss-kir`, valid 300 s from now.
    pub fn claims(invoker: &str, aef: &str) -> Value {
        let now = super::unix_now();
        json!({"sub": invoker, "iss": "stand-in CCF", "iat": now, "exp": now + 300,
               "scope": format!("3gpp#{aef}:ss-kir")})
    }

    /// Makes `invoker` a trusted PKI invoker of `aef`.
    pub fn trust(&self, invoker: &str, aef: &str) {
        self.state.lock().unwrap().trusted.insert(
            invoker.to_owned(),
            json!({"securityInfo": [{"selSecurityMethod": "PKI", "aefId": aef,
                                     "authenticationInfo": "", "authorizationInfo": ""}],
                   "notificationDestination": "https://invoker.invalid/cb"}),
        );
    }

    pub fn set_fail(&self, fail: bool) {
        self.state.lock().unwrap().fail = fail;
    }

    pub fn set_delay(&self, d: Option<Duration>) {
        self.state.lock().unwrap().delay = d;
    }

    /// Every log record received for `invoker`, in arrival order.
    pub fn log_records(&self, invoker: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .logs
            .iter()
            .filter(|(_, l)| l["apiInvokerId"] == invoker)
            .flat_map(|(_, l)| l["logs"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    fn run(&mut self) {
        let state = self.state.clone();
        let ca = sealkm::tls::DevCa::load(&self.ca.cert_pem, self.ca.key_pem()).unwrap();
        let ca = Arc::new(Mutex::new(ca));
        let (port, handle, thread) =
            super::receiver::serve_tls(self.port, self.tls.clone(), move |cfg| {
                cfg.app_data(web::Data::new(state.clone()))
                    .app_data(web::Data::new(ca.clone()))
                    .default_service(web::to(answer));
            });
        self.port = port;
        self.running = Some((handle, thread));
    }

    /// Vanishes: stops accepting (connections refused).
    pub fn stop(&mut self) {
        if let Some((handle, thread)) = self.running.take() {
            actix_rt::System::new().block_on(handle.stop(false));
            let _ = thread.join();
        }
    }

    /// Comes back on the same port.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "ccf is running");
        self.run();
    }
}

impl Drop for Ccf {
    fn drop(&mut self) {
        self.stop();
    }
}

type Shared = web::Data<Arc<Mutex<CcfState>>>;

async fn answer(
    req: HttpRequest,
    body: web::Bytes,
    state: Shared,
    ca: web::Data<Arc<Mutex<sealkm::tls::DevCa>>>,
) -> HttpResponse {
    let (fail, delay) = {
        let s = state.lock().unwrap();
        (s.fail, s.delay)
    };
    if let Some(d) = delay {
        actix_rt::time::sleep(d).await;
    }
    if fail {
        return HttpResponse::InternalServerError()
            .json(json!({"status": 500, "title": "stand-in failure"}));
    }
    let path = percent_encoding::percent_decode_str(req.path())
        .decode_utf8_lossy()
        .into_owned();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().as_str().to_owned();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut s = state.lock().unwrap();
    match (method.as_str(), segs.as_slice()) {
        ("POST", ["published-apis", "v1", _apf, "service-apis"]) => {
            s.posts += 1;
            s.next += 1;
            let id = format!("api-{}", s.next);
            let mut desc = json;
            desc["apiId"] = Value::String(id.clone());
            s.apis.insert(id.clone(), desc.clone());
            HttpResponse::Created()
                .insert_header(("Location", format!("{path}/{id}")))
                .json(desc)
        }
        ("PUT", ["published-apis", "v1", _apf, "service-apis", id]) => {
            s.puts += 1;
            if s.apis.contains_key(*id) {
                s.apis.insert(id.to_string(), json.clone());
                HttpResponse::Ok().json(json)
            } else {
                HttpResponse::NotFound().json(json!({"status": 404}))
            }
        }
        ("DELETE", ["published-apis", "v1", _apf, "service-apis", id]) => {
            s.deletes += 1;
            match s.apis.remove(*id) {
                Some(_) => HttpResponse::NoContent().finish(),
                None => HttpResponse::NotFound().json(json!({"status": 404})),
            }
        }
        ("GET", ["capif-security", "v1", "trustedInvokers", id]) => {
            s.trusted_lookups += 1;
            match s.trusted.get(*id) {
                Some(v) => HttpResponse::Ok().json(v),
                None => HttpResponse::NotFound().json(json!({"status": 404})),
            }
        }
        ("POST", ["api-invocation-logs", "v1", aef, "logs"]) => {
            if json["aefId"] != *aef || !json["logs"].is_array() {
                return HttpResponse::BadRequest().json(json!({"status": 400}));
            }
            s.logs.push((aef.to_string(), json.clone()));
            HttpResponse::Created().json(json)
        }
        ("POST", ["api-provider-management", "v1", "registrations"]) => {
            s.next += 1;
            let n = s.next;
            let ca = ca.lock().unwrap();
            let mut answer = json.clone();
            for f in answer["apiProvFuncs"].as_array_mut().into_iter().flatten() {
                let role = f["apiProvFuncRole"].as_str().unwrap_or("X").to_owned();
                f["apiProvFuncId"] = Value::String(format!("{role}-{n}"));
                let csr = f["regInfo"]["apiProvPubKey"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                match ca.sign_request(&csr) {
                    Ok(cert) => f["regInfo"]["apiProvCert"] = Value::String(cert),
                    Err(_) => return HttpResponse::BadRequest().json(json!({"status": 400})),
                }
            }
            answer["apiProvDomId"] = Value::String(format!("dom-{n}"));
            s.registrations.push(answer.clone());
            HttpResponse::Created().json(answer)
        }
        _ => HttpResponse::NotFound()
            .json(json!({"status": 404, "detail": format!("{method} {path}")})),
    }
}
