//! Test harness: real `sealkm` processes in temporary directories, started from a dev
//! environment, waited for by the line they print once their listener is bound (no sleeps),
//! and killed by PID when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sealkm::client::{KmClient, KmReply};
pub mod ccf;
pub mod cluster;
pub mod km_e;
pub mod parties;
pub mod proxy;
pub mod receiver;
pub mod relay;

use sealkm::dev;
use sealkm::kms::xml::certificate::KmsCertificateDoc;
use sealkm::kms::xml::keyset::KmsKeySetDoc;
use sealkm::kms::xml::kms_error::KmsErrorCode;
use sealkm::kms::xml::response::{KmsMessageDoc, KmsResponseBody};

pub const BIN: &str = env!("CARGO_BIN_EXE_sealkm");

/// A dev environment in a temp dir, with its config edited by `tweak`.
pub struct Env {
    pub tmp: tempfile::TempDir,
}

impl Env {
    pub fn new(tweak: impl FnOnce(String) -> String) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let cfg = dev::ensure(&dev::DevOptions {
            dir: tmp.path().to_owned(),
            addr: "127.0.0.1:0".into(),
            nodes: 1,
        })
        .expect("dev env");
        let text = std::fs::read_to_string(&cfg).expect("config");
        std::fs::write(&cfg, tweak(text)).expect("write config");
        Self { tmp }
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn config(&self) -> PathBuf {
        self.dir().join(dev::NODE_CONFIG)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir().join(dev::CA_CERT)
    }

    pub fn token(&self, user: &str) -> String {
        let cfg = sealkm::config::NodeConfig::load(&self.config()).expect("config");
        let idp = dev::load_idp(self.dir()).expect("idp");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        idp.mint_for(
            &cfg.auth.token,
            user,
            &cfg.auth.token.required_scope,
            now,
            600,
        )
        .expect("mint")
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.dir().join(dev::ADMIN_TOKEN))
            .unwrap()
            .trim()
            .to_owned()
    }

    pub fn start(&self) -> Node {
        Node::start(&self.config(), &[])
    }
}

/// A running node process.
pub struct Node {
    pub child: Child,
    /// KM-UU and admin (client listener).
    pub url: String,
    /// The service listener (KM-S, SEAL-X1), if configured.
    pub service_url: Option<String>,
}

impl Node {
    /// Starts `sealkm serve` and waits for its "listening" line. Panics with the node's
    /// stderr if it exits first.
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Node {
        // The node's log goes to a file beside its config: a pipe nobody reads would fill up
        // and block the node.
        let log = config.with_extension("log");
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("node log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn sealkm");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut service_url = None;
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(u) = line.strip_prefix("sealkm: KM-UU listening on ") {
                        break u.replace("127.0.0.1", "localhost");
                    }
                    if let Some(u) = line.strip_prefix("sealkm: service listening on ") {
                        service_url = Some(u.replace("127.0.0.1", "localhost"));
                    }
                }
                _ => {
                    let _ = child.wait();
                    panic!(
                        "sealkm exited before listening: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Node {
            child,
            url,
            service_url,
        }
    }

    /// Runs `sealkm serve` expecting it to fail; returns its stderr.
    pub fn start_failing(config: &Path, env: &[(&str, &str)]) -> String {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").arg("--config").arg(config);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run sealkm");
        assert!(
            !out.status.success(),
            "sealkm was expected to refuse to start"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn client(&self, ca: &Path, token: Option<String>) -> KmClient {
        KmClient::new(&self.url, ca, token).expect("client")
    }

    /// Graceful stop (SIGTERM), waiting for the process to exit.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child's PID.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seconds since the Unix epoch, from the system clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The 16-hex-digit NTP-UTC time segment of a `keyprov/<uri>/<time>` path for NTP second `ntp_s`.
pub fn ntp_hex(ntp_s: u64) -> String {
    format!("{:016X}", ntp_s << 32)
}

/// Runs the `sealkm` binary with `args` and returns its output.
pub fn run_sealkm<I, S>(args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(BIN).args(args).output().expect("run sealkm")
}

impl Env {
    /// The token policy of this environment's config.
    pub fn policy(&self) -> sealkm::auth::TokenPolicy {
        sealkm::config::NodeConfig::load(&self.config())
            .expect("config")
            .auth
            .token
    }

    /// The dev identity provider of this environment.
    pub fn idp(&self) -> sealkm::auth::DevIdp {
        dev::load_idp(self.dir()).expect("idp")
    }

    /// Claims a node of this environment accepts for `user` at `now` (valid 600 s), for tests to
    /// edit before minting.
    pub fn claims(&self, user: &str, now: u64) -> serde_json::Map<String, serde_json::Value> {
        let p = self.policy();
        let mut m = serde_json::Map::new();
        m.insert("iss".into(), p.issuer.clone().into());
        m.insert("aud".into(), p.audience.clone().into());
        m.insert("sub".into(), user.into());
        m.insert("iat".into(), now.into());
        m.insert("exp".into(), (now + 600).into());
        m.insert(p.identity_claim.clone(), user.into());
        m.insert(p.scope_claim.clone(), p.required_scope.clone().into());
        m
    }
}

impl Env {
    /// Like [`Env::token`], issued at `now` (a node with a shifted clock needs tokens of its time).
    pub fn token_at(&self, user: &str, now: u64) -> String {
        let p = self.policy();
        self.idp()
            .mint_for(&p, user, &p.required_scope, now, 600)
            .expect("mint")
    }
}

/// The certificate of a `KmsInit` answer (asserting HTTP 200).
pub fn init_cert(reply: &KmReply) -> KmsCertificateDoc {
    assert_eq!(reply.status, 200, "{:?}", reply.doc.body);
    match &reply.doc.body {
        KmsResponseBody::Message(KmsMessageDoc::Init(c)) => (**c).clone(),
        other => panic!("expected KmsInit, got {other:?}"),
    }
}

/// The one key set of a `KmsKeyProv` answer (asserting HTTP 200 and exactly one set).
pub fn key_set(reply: &KmReply) -> KmsKeySetDoc {
    assert_eq!(reply.status, 200, "{:?}", reply.doc.body);
    match &reply.doc.body {
        KmsResponseBody::Message(KmsMessageDoc::KeyProv(sets)) => {
            assert_eq!(sets.len(), 1, "one KmsKeySet per response");
            sets[0].clone()
        }
        other => panic!("expected KmsKeyProv, got {other:?}"),
    }
}

/// The error code of a `KmsError` answer.
pub fn error_code(reply: &KmReply) -> KmsErrorCode {
    match &reply.doc.body {
        KmsResponseBody::Error(e) => e.code,
        other => panic!("expected KmsError, got {other:?}"),
    }
}
