//! Multi-process cluster harness: `n` real `sealkm serve` processes from one dev environment,
//! started together (none can finish starting before a quorum runs), waited for by their
//! "listening" line, killed with SIGKILL or SIGTERM, restarted from the same config.
//! Cluster facts come from the admin API (`/admin/v1/cluster/status`); waiting for a fact
//! polls it against a generous deadline that only bounds a failure.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sealkm::dev;

use super::BIN;

/// Upper bound for the cluster to reach a state it must reach (a failure bound, not a timing).
pub const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

/// Polls `f` until it returns `Some`, or panics after [`DEADLINE`].
pub fn poll<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(start.elapsed() < DEADLINE, "timed out polling the cluster");
        std::thread::sleep(POLL);
    }
}

pub struct ClusterNode {
    pub child: Child,
    pub url: String,
    /// The service listener (KM-S, SEAL-X1).
    pub service_url: Option<String>,
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Cluster {
    pub tmp: tempfile::TempDir,
    pub voters: u32,
    pub nodes: BTreeMap<u32, ClusterNode>,
    /// Last known KM-UU URL of each node (kept after a node is killed).
    pub urls: BTreeMap<u32, String>,
    /// Last known service listener URL of each node.
    pub service_urls: BTreeMap<u32, String>,
}

/// Waits for the node's KM-UU "listening" line: (KM-UU URL, service URL if it printed one
/// before).
fn wait_listening(id: u32, child: &mut Child, log: &Path) -> (String, Option<String>) {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut service = None;
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(u) = line.strip_prefix("sealkm: KM-UU listening on ") {
                    break u.replace("127.0.0.1", "localhost");
                }
                if let Some(u) = line.strip_prefix("sealkm: service listening on ") {
                    service = Some(u.replace("127.0.0.1", "localhost"));
                }
            }
            _ => panic!(
                "node {id} exited before listening ({:?}): {}",
                child.try_wait(),
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (url, service)
}

impl Cluster {
    /// A dev environment with `voters` nodes (plus spares that can join), each config edited
    /// by `tweak(id, text)`; nothing started.
    pub fn create(voters: u32, tweak: impl Fn(u32, String) -> String) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        dev::ensure(&dev::DevOptions {
            dir: tmp.path().to_owned(),
            addr: "127.0.0.1:0".into(),
            nodes: voters,
        })
        .expect("dev env");
        for id in 1..=voters + dev::SPARE_NODES {
            let path = dev::node_config(tmp.path(), id);
            let text = std::fs::read_to_string(&path).expect("config");
            std::fs::write(&path, tweak(id, text)).expect("write config");
        }
        Self {
            tmp,
            voters,
            nodes: BTreeMap::new(),
            urls: BTreeMap::new(),
            service_urls: BTreeMap::new(),
        }
    }

    /// Creates and starts a cluster of `voters` nodes.
    pub fn start(voters: u32, tweak: impl Fn(u32, String) -> String) -> Self {
        let mut c = Self::create(voters, tweak);
        let ids: Vec<u32> = (1..=voters).collect();
        c.start_nodes(&ids);
        c
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn config(&self, id: u32) -> PathBuf {
        dev::node_config(self.dir(), id)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir().join(dev::CA_CERT)
    }

    /// Node `id`'s stderr (its log), kept for diagnostics.
    pub fn log(&self, id: u32) -> PathBuf {
        self.dir().join(format!("node{id}.log"))
    }

    /// Spawns node `id` without waiting for it; the process is killed when the returned
    /// value is dropped (also when a test panics before adopting it).
    pub fn spawn(&self, id: u32) -> ClusterNode {
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(self.config(id))
            .env("SEALKM_LOG_FORMAT", "text")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.log(id)).expect("log file"))
            .spawn()
            .expect("spawn sealkm");
        ClusterNode {
            child,
            url: String::new(),
            service_url: None,
        }
    }

    /// Starts the nodes `ids` together and waits until each listens.
    pub fn start_nodes(&mut self, ids: &[u32]) {
        let children: Vec<(u32, ClusterNode)> =
            ids.iter().map(|&id| (id, self.spawn(id))).collect();
        for (id, child) in children {
            self.adopt(id, child);
        }
    }

    /// Waits for a spawned node's "listening" line and keeps it.
    pub fn adopt(&mut self, id: u32, mut node: ClusterNode) {
        let (url, service) = wait_listening(id, &mut node.child, &self.log(id));
        node.url = url;
        node.service_url = service;
        if let Some(s) = &node.service_url {
            self.service_urls.insert(id, s.clone());
        }
        self.urls.insert(id, node.url.clone());
        self.nodes.insert(id, node);
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self, id: u32) {
        if let Some(mut n) = self.nodes.remove(&id) {
            let _ = n.child.kill();
            let _ = n.child.wait();
        }
    }

    pub fn url(&self, id: u32) -> &str {
        &self.urls[&id]
    }

    /// Node `id`'s service listener URL (last known).
    pub fn service_url(&self, id: u32) -> &str {
        &self.service_urls[&id]
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.dir().join(dev::ADMIN_TOKEN))
            .expect("admin token")
            .trim()
            .to_owned()
    }

    pub fn agent(&self) -> ureq_like::Agent {
        ureq_like::Agent::new(&self.ca(), self.admin_token())
    }

    /// This node's own report (`/admin/v1/cluster/status`, first entry), if it answers.
    pub fn report(&self, id: u32) -> Option<serde_json::Value> {
        let url = self.nodes.get(&id)?.url.clone();
        let (status, v) = self
            .agent()
            .get(&format!("{url}/admin/v1/cluster/status"))
            .ok()?;
        if status != 200 {
            return None;
        }
        v["nodes"].as_array()?.first().cloned()
    }

    /// Polls `f` until it returns `Some`, or panics with `what` after [`DEADLINE`].
    pub fn wait_for<T>(&self, what: &str, mut f: impl FnMut(&Self) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(t) = f(self) {
                return t;
            }
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
            std::thread::sleep(POLL);
        }
    }

    /// The leader all running nodes agree on.
    pub fn leader(&self) -> u32 {
        self.wait_for("a leader every running node agrees on", |c| {
            let mut leader = None;
            for &id in c.nodes.keys() {
                let r = c.report(id)?;
                let l = r["leader_id"].as_u64()? as u32;
                if l == 0 || leader.is_some_and(|x| x != l) {
                    return None;
                }
                leader = Some(l);
            }
            leader.filter(|l| c.nodes.contains_key(l))
        })
    }

    /// Waits until every running node has applied the same entries and reports the same
    /// state digest; returns (applied, digest).
    pub fn converged(&self) -> (u64, String) {
        self.wait_for("every node to reach the same state digest", |c| {
            let mut seen: Option<(u64, String)> = None;
            for &id in c.nodes.keys() {
                let r = c.report(id)?;
                let cur = (r["applied"].as_u64()?, r["digest"].as_str()?.to_owned());
                if r["commit"].as_u64()? != cur.0 {
                    return None;
                }
                match &seen {
                    Some(s) if *s != cur => return None,
                    _ => seen = Some(cur),
                }
            }
            seen
        })
    }

    /// `sealkm cluster --dir DIR --url <node via> OP --id ID` (join, leave).
    pub fn cluster_cli(&self, via: u32, op: &str, id: u32) -> std::process::Output {
        let id = id.to_string();
        super::run_sealkm([
            "cluster".as_ref(),
            "--dir".as_ref(),
            self.dir().as_os_str(),
            "--url".as_ref(),
            self.url(via).as_ref(),
            op.as_ref(),
            "--id".as_ref(),
            std::ffi::OsStr::new(&id),
        ])
    }

    /// A replicated write through node `id`: revokes `identity`. Returns the HTTP status.
    pub fn revoke(&self, id: u32, identity: &str) -> u16 {
        let url = format!(
            "{}/admin/v1/communities/{}/revocations",
            self.url(id),
            dev::DEV_KMS_URI
        );
        let body = serde_json::json!({ "identity": identity, "reason": "cluster test" });
        match self.agent().post(&url, &body) {
            Ok((status, _)) => status,
            Err(_) => 0,
        }
    }
}

/// A tiny blocking HTTPS JSON client for tests (awc needs a runtime; each call gets one).
pub mod ureq_like {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    pub struct Agent {
        tls: Arc<rustls::ClientConfig>,
        token: String,
    }

    impl Agent {
        pub fn new(ca: &Path, token: String) -> Self {
            let tls = sealkm::tls::client_config(ca).expect("tls");
            Self {
                tls: Arc::new(tls),
                token,
            }
        }

        fn run(
            &self,
            url: &str,
            body: Option<&serde_json::Value>,
        ) -> Result<(u16, serde_json::Value), String> {
            let tls = self.tls.clone();
            let token = self.token.clone();
            let url = url.to_owned();
            let body = body.cloned();
            actix_rt::System::new().block_on(async move {
                let client = awc::Client::builder()
                    .connector(awc::Connector::new().rustls_0_23(tls))
                    .timeout(Duration::from_secs(20))
                    .finish();
                let req = match &body {
                    Some(_) => client.post(&url),
                    None => client.get(&url),
                }
                .bearer_auth(&token);
                let mut resp = match &body {
                    Some(b) => req.send_json(b).await,
                    None => req.send().await,
                }
                .map_err(|e| e.to_string())?;
                let status = resp.status().as_u16();
                let bytes = resp
                    .body()
                    .limit(1 << 20)
                    .await
                    .map_err(|e| e.to_string())?;
                let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
                Ok((status, v))
            })
        }

        pub fn get(&self, url: &str) -> Result<(u16, serde_json::Value), String> {
            self.run(url, None)
        }

        pub fn post(
            &self,
            url: &str,
            body: &serde_json::Value,
        ) -> Result<(u16, serde_json::Value), String> {
            self.run(url, Some(body))
        }
    }
}
