//! Running a dev environment's nodes as child processes (`sealkm dev`): start and wait for
//! each to listen, `cluster.json`, the dev parties' ACL grants, the walk-through, and staying in
//! the foreground until Ctrl-C.

use std::fs;
use std::path::{Path, PathBuf};

use super::{
    io, node_config, node_log, ADMIN_TOKEN, CA_CERT, CLUSTER_FILE, DEV_GMS, DEV_GROUP, DEV_VAL,
};

/// One started node, as `cluster.json` lists it.
pub(super) struct Started {
    id: u32,
    pub(super) child: std::process::Child,
    pub(super) km_uu: String,
    service: Option<String>,
    peer: Option<String>,
    config: PathBuf,
}

/// Starts nodes 1..=`nodes` of the environment as child processes, writes `cluster.json`,
/// prints how to call them, and stays in the foreground until Ctrl-C / SIGTERM (which stop
/// the nodes) or until every node has exited. A node killed meanwhile can be restarted with
/// its `restart` command from `cluster.json`.
pub async fn run_foreground(dir: &Path, nodes: u32) -> Result<(), String> {
    let started = start_env(dir, nodes).await?;
    print_walkthrough(dir, &started);
    hold(started).await
}

/// Starts nodes 1..=`nodes` of the environment in `dir`, waits until each listens, writes
/// `cluster.json` and grants the dev parties. A failed start stops every node it started.
pub(super) async fn start_env(dir: &Path, nodes: u32) -> Result<Vec<Started>, String> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    // All nodes first: none can finish starting before a quorum of them runs.
    for id in 1..=nodes {
        let config = node_config(dir, id);
        // The node's log (stderr, fatal errors included) goes to DIR/node<N>.log, appended
        // across restarts.
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node_log(dir, id))
            .map_err(|e| format!("cannot open {}: {e}", node_log(dir, id).display()))?;
        let child = Command::new(&exe)
            .args(["serve", "--config"])
            .arg(&config)
            .env("SEALKM_LOG_FORMAT", "text")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start node {id}: {e}"))?;
        children.push((id, child, config));
    }
    let mut started: Vec<Started> = Vec::new();
    let mut pending = children.into_iter();
    while let Some((id, mut child, config)) = pending.next() {
        let Some(stdout) = child.stdout.take() else {
            let rest = pending.map(|(_, c, _)| c).chain(std::iter::once(child));
            stop_children(rest.chain(started.into_iter().map(|s| s.child)));
            return Err("no stdout".into());
        };
        let mut lines = std::io::BufReader::new(stdout).lines();
        let (mut km_uu, mut peer, mut service) = (None, None, None);
        while km_uu.is_none() {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(u) = l.strip_prefix("sealkm: KM-UU listening on ") {
                        km_uu = Some(u.to_owned());
                    } else if let Some(u) = l.strip_prefix("sealkm: service listening on ") {
                        service = Some(u.to_owned());
                    } else if let Some(a) = l.strip_prefix("sealkm: peer listening on ") {
                        peer = Some(a.to_owned());
                    }
                }
                _ => {
                    let status = child.wait().map_err(|e| e.to_string());
                    // No node of a failed start outlives it.
                    let rest = pending.map(|(_, c, _)| c);
                    stop_children(rest.chain(started.into_iter().map(|s| s.child)));
                    let status = status?;
                    return Err(format!(
                        "node {id} exited before listening ({status}); its log is {}",
                        node_log(dir, id).display()
                    ));
                }
            }
        }
        std::thread::spawn(move || for _ in lines {});
        started.push(Started {
            id,
            child,
            km_uu: km_uu.unwrap_or_default(),
            service,
            peer,
            config,
        });
    }
    if let Err(e) = write_cluster_file(dir, &exe, &started) {
        stop_children(started.into_iter().map(|s| s.child));
        return Err(e);
    }
    if let Some(first) = started.first() {
        if let Err(e) = grant_dev_parties(dir, &first.km_uu).await {
            eprintln!("sealkm dev: could not grant the dev GMS and VAL server: {e}");
        }
    }
    Ok(started)
}

/// Prints where the nodes of `dir` are and how to call them.
fn print_walkthrough(dir: &Path, started: &[Started]) {
    let d = dir.display();
    for s in started {
        println!(
            "sealkm dev: node {} at {} (pid {})",
            s.id,
            s.km_uu,
            s.child.id()
        );
    }
    println!(
        "files in {d}\n\n  sealkm cluster status --dir {d}\n  \
         sealkm token --dir {d} --user sip:alice@sealkm.test     # DEV ONLY access token\n  \
         sealkm client --dir {d} --user sip:alice@sealkm.test keyprov\n  \
         sealkm client --dir {d} certcache\n  \
         sealkm admin --dir {d} communities\n\n\
         Service listener (mutual TLS + token naming the same party; {DEV_GMS} may manage every \
         group, {DEV_VAL} may read {DEV_GROUP}):\n  \
         sealkm token --dir {d} --user {DEV_GMS}                 # the GMS's token\n  \
         sealkm token --dir {d} --user {DEV_VAL} --skeyprov      # the VAL server's, with SKeyProv\n  \
         sealkm client gms --dir {d} keyprov                     # its own key set (SEAL-X1)\n  \
         sealkm client gms --dir {d} group-key create {DEV_GROUP}\n  \
         sealkm client gms --dir {d} imessage --group {DEV_GROUP} --to sip:alice@sealkm.test --out msg.bin\n  \
         sealkm client --dir {d} --user sip:alice@sealkm.test imessage open --file msg.bin --from {DEV_GMS}\n  \
         sealkm client val --dir {d} group-key get {DEV_GROUP}\n\n\
         Node logs: {d}/node<N>.log. \
         Kill a node (its pid is above and in {d}/cluster.json) and watch `sealkm cluster status`; \
         restart it with the `restart` command in cluster.json. Ctrl-C stops every node."
    );
}

/// Stays in the foreground until Ctrl-C / SIGTERM (which stop the nodes) or until every node
/// has exited.
pub(super) async fn hold(started: Vec<Started>) -> Result<(), String> {
    let pids: Vec<u32> = started.iter().map(|s| s.child.id()).collect();
    let waiter = actix_web::rt::task::spawn_blocking(move || {
        for mut s in started {
            let _ = s.child.wait();
        }
    });
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(io)?;
    tokio::select! {
        _ = waiter => return Err("every node has exited".into()),
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("sealkm dev: stopping the nodes");
    for pid in pids {
        // SAFETY: kill(2) on a child we started.
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
    }
    Ok(())
}

/// Grants the dev parties through the admin API of `km_uu` (replicated, so once is enough):
/// the GMS every group, the VAL server [`DEV_GROUP`].
async fn grant_dev_parties(dir: &Path, km_uu: &str) -> Result<(), String> {
    for (principal, role, groups) in [
        (DEV_GMS, "gms", vec!["*"]),
        (DEV_VAL, "val-server", vec![DEV_GROUP]),
    ] {
        let grant = serde_json::json!({"principal": principal, "role": role, "groups": groups});
        admin(dir, km_uu, true, "acl", Some(grant))
            .await
            .map_err(|e| format!("ACL for {principal}: {e}"))?;
    }
    Ok(())
}

/// `GET` (or `POST` with `body`) `path` of the admin API of `km_uu` with the admin credential
/// of the environment in `dir`; the answer body, or the status and reason.
pub(super) async fn admin(
    dir: &Path,
    km_uu: &str,
    method_post: bool,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<Vec<u8>, String> {
    let tls = crate::tls::client_config(&dir.join(CA_CERT)).map_err(io)?;
    let client = crate::client::http_client(tls);
    let token = fs::read_to_string(dir.join(ADMIN_TOKEN)).map_err(io)?;
    let url = format!("{km_uu}/admin/v1/{path}");
    let req = if method_post {
        client.post(url)
    } else {
        client.get(url)
    }
    .bearer_auth(token.trim());
    let mut resp = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .map_err(io)?;
    let bytes = resp.body().await.map_err(io)?;
    if !resp.status().is_success() {
        return Err(format!(
            "{path}: HTTP {}: {}",
            resp.status(),
            String::from_utf8_lossy(&bytes)
        ));
    }
    Ok(bytes.to_vec())
}

/// SIGTERM to each child, then waits for all of them.
pub(super) fn stop_children(children: impl Iterator<Item = std::process::Child>) {
    let mut children: Vec<_> = children.collect();
    for c in &children {
        // SAFETY: kill(2) on a child we started and have not waited for yet.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
    }
    for c in &mut children {
        let _ = c.wait();
    }
}

fn write_cluster_file(dir: &Path, exe: &Path, started: &[Started]) -> Result<(), String> {
    let nodes: Vec<_> = started
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id,
                "pid": s.child.id(),
                "km_uu": s.km_uu,
                "service": s.service,
                "peer": s.peer,
                "data_dir": dir.join(format!("node{}-data", s.id)),
                "log": node_log(dir, s.id),
                "config": s.config,
                "restart": [exe.to_string_lossy(), "serve", "--config", s.config.to_string_lossy()],
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&serde_json::json!({ "nodes": nodes })).map_err(io)?;
    let tmp = dir.join("cluster.json.tmp");
    fs::write(&tmp, text).map_err(io)?;
    fs::rename(&tmp, dir.join(CLUSTER_FILE)).map_err(io)
}
