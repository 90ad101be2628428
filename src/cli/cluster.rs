//! `sealkm cluster status|join|leave`: the cluster admin API (`/admin/v1/cluster`) from the
//! command line. With `--dir` the nodes come from a dev environment's `cluster.json` and the
//! first one that answers is asked (membership changes go to the leader: a node that is not
//! the leader answers 409 and the next one is tried); with `--url` one node is asked.
//! [`render_status`] is the human-readable form of the status JSON.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// Where the admin API is and how to authenticate to it.
pub struct Target {
    pub urls: Vec<String>,
    pub ca: PathBuf,
    pub token: String,
}

impl Target {
    /// Every node listed in `DIR/cluster.json`, with the dev CA and admin credential.
    pub fn from_dir(dir: &Path) -> Result<Self, String> {
        let path = dir.join(crate::dev::CLUSTER_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (is `sealkm dev --dir {}` running?)",
                path.display(),
                dir.display()
            )
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let urls = v["nodes"]
            .as_array()
            .map(|ns| {
                ns.iter()
                    .filter_map(|n| n["km_uu"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let token = std::fs::read_to_string(dir.join(crate::dev::ADMIN_TOKEN))
            .map_err(|e| format!("admin credential: {e}"))?
            .trim()
            .to_owned();
        Ok(Self {
            urls,
            ca: dir.join(crate::dev::CA_CERT),
            token,
        })
    }

    fn client(&self) -> Result<awc::Client, String> {
        super::https_client(&self.ca, Duration::from_secs(330))
    }

    /// Sends one request to each node in turn until one answers with something other than
    /// a connection error or 409 (not the leader).
    async fn call(&self, path: &str, body: Option<Value>) -> Result<Value, String> {
        let client = self.client()?;
        let mut last = "no node to ask".to_string();
        for url in &self.urls {
            let full = format!("{url}/admin/v1/cluster/{path}");
            let req = match &body {
                Some(_) => client.post(&full),
                None => client.get(&full),
            }
            .bearer_auth(&self.token);
            let sent = match &body {
                Some(b) => req.send_json(b).await,
                None => req.send().await,
            };
            let mut resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{url}: {e}");
                    continue;
                }
            };
            let status = resp.status();
            let json: Value = resp
                .json()
                .limit(1 << 20)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if status.is_success() {
                return Ok(json);
            }
            let reason = json["error"].as_str().unwrap_or("error");
            last = format!("{url}: {status}: {reason}");
            // Only "not the leader" (a 409 naming the leader) sends the request on.
            if status.as_u16() != 409 || !json["leader_id"].is_u64() {
                break;
            }
        }
        Err(last)
    }

    pub async fn status(&self) -> Result<Value, String> {
        self.call("status", None).await
    }

    pub async fn join(&self, id: u64, peer: &str) -> Result<Value, String> {
        self.call("join", Some(serde_json::json!({ "id": id, "peer": peer })))
            .await
    }

    pub async fn leave(&self, id: u64) -> Result<Value, String> {
        self.call("leave", Some(serde_json::json!({ "id": id })))
            .await
    }
}

/// The peer address of node `id` from `DIR/node{id}.toml`.
pub fn peer_addr_from_dir(dir: &Path, id: u64) -> Result<String, String> {
    let path = crate::dev::node_config(dir, id as u32);
    let cfg = crate::config::NodeConfig::load(&path).map_err(|e| e.to_string())?;
    cfg.raft
        .map(|r| r.advertised().to_owned())
        .ok_or_else(|| format!("{} has no [raft] section", path.display()))
}

/// The status JSON as a table a person can read.
pub fn render_status(v: &Value) -> String {
    let mut out = format!(
        "{:<4} {:<12} {:>6} {:>6} {:>8} {:>8}  {:<16} {:<10} {:<8}\n",
        "id", "role", "leader", "term", "commit", "applied", "digest", "voters", "learners"
    );
    let ids = |x: &Value| -> String {
        x.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let mut nodes: Vec<&Value> = v["nodes"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    nodes.sort_by_key(|n| n["id"].as_u64());
    for n in nodes {
        let num = |k: &str| n[k].as_u64().map(|x| x.to_string()).unwrap_or("-".into());
        let digest = n["digest"]
            .as_str()
            .map(|d| &d[..d.len().min(16)])
            .unwrap_or("-");
        out.push_str(&format!(
            "{:<4} {:<12} {:>6} {:>6} {:>8} {:>8}  {:<16} {:<10} {:<8}\n",
            num("id"),
            n["role"].as_str().unwrap_or("-"),
            num("leader_id"),
            num("term"),
            num("commit"),
            num("applied"),
            digest,
            ids(&n["voters"]),
            ids(&n["learners"]),
        ));
    }
    out
}

/// `sealkm cluster` subcommands.
#[derive(clap::Subcommand)]
pub enum Op {
    /// Role, term, commit and applied index, state digest and membership of every node.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Add a started node (its config has `join = true`): learner first, promoted once it
    /// has caught up.
    Join {
        #[arg(long)]
        id: u64,
        /// Its peer listener host:port (default: from DIR/node<ID>.toml).
        #[arg(long)]
        peer: Option<String>,
    },
    /// Remove a node from the cluster.
    Leave {
        #[arg(long)]
        id: u64,
    },
}

/// Runs one `sealkm cluster` subcommand; `dir` gives defaults (cluster.json, CA, credential).
pub async fn run(
    dir: &Path,
    url: Option<String>,
    cacert: Option<PathBuf>,
    token: Option<String>,
    op: Op,
) -> Result<(), String> {
    let mut target = match &url {
        Some(u) => Target {
            urls: vec![u.clone()],
            ca: cacert
                .clone()
                .unwrap_or_else(|| dir.join(crate::dev::CA_CERT)),
            token: String::new(),
        },
        None => Target::from_dir(dir)?,
    };
    if let Some(c) = cacert {
        target.ca = c;
    }
    match token {
        Some(t) => target.token = t,
        None if target.token.is_empty() => {
            target.token = std::fs::read_to_string(dir.join(crate::dev::ADMIN_TOKEN))
                .map_err(|e| format!("admin credential (--token): {e}"))?
                .trim()
                .to_owned()
        }
        None => {}
    }
    let v = match op {
        Op::Status { json } => {
            let v = target.status().await?;
            if !json {
                print!("{}", render_status(&v));
                return Ok(());
            }
            v
        }
        Op::Join { id, peer } => {
            let peer = match peer {
                Some(p) => p,
                None => peer_addr_from_dir(dir, id)?,
            };
            target.join(id, &peer).await?
        }
        Op::Leave { id } => target.leave(id).await?,
    };
    println!("{v}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_line_per_node_sorted_by_id() {
        let v = serde_json::json!({"nodes": [
            {"id": 2, "role": "leader", "leader_id": 2, "term": 3, "commit": 9, "applied": 9,
             "digest": "00112233445566778899", "voters": [1, 2, 3], "learners": []},
            {"id": 1, "role": "unreachable"},
        ]});
        let t = render_status(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[1].starts_with("1    unreachable"), "{t}");
        assert!(lines[2].contains("leader") && lines[2].contains("0011223344556677"));
        assert!(lines[2].contains("1,2,3"), "{t}");
    }
}
