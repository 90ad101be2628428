//! Reading every node's state after healing, for the checker: each node's status (digest,
//! applied index, halted) from the cluster admin API, then the run's key space through that
//! node's own admin and SEAL-X1 read APIs (each read waits for a read barrier, then answers from
//! the node's local state).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::check::NodeState;
use super::history::Meta;
use super::workload::{nodes_of, send, Clients, NodeAddr, Reply};

/// Waits (up to `wait`) until every node of `dir` reports the same digest at the same applied
/// index, then reads each node's state of the key space of `meta`.
pub async fn gather(dir: &Path, meta: &Meta, wait: Duration) -> Result<Vec<NodeState>, String> {
    let nodes = nodes_of(dir)?;
    let clients = Clients::new(dir, Duration::from_secs(30))?;
    let admin_token = std::fs::read_to_string(dir.join(crate::dev::ADMIN_TOKEN))
        .map_err(|e| format!("admin credential: {e}"))?
        .trim()
        .to_owned();
    let gms_token = crate::dev::mint_token(dir, crate::dev::DEV_GMS, 3600, &[])?;
    let end = Instant::now() + wait;
    let mut statuses;
    loop {
        statuses = statuses_of(&clients, &nodes, &admin_token).await;
        let digests: std::collections::BTreeSet<_> = statuses
            .iter()
            .map(|s| (s["digest"].as_str(), s["applied"].as_u64()))
            .collect();
        let all = statuses.iter().all(|s| s["digest"].is_string());
        if (all && digests.len() == 1) || Instant::now() >= end {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(500)).await;
    }
    let mut out = Vec::new();
    for (n, st) in nodes.iter().zip(&statuses) {
        let mut s = NodeState {
            id: n.id,
            digest: st["digest"]
                .as_str()
                .filter(|d| !d.starts_with("error"))
                .map(str::to_owned),
            applied: st["applied"].as_u64(),
            halted: st["halted"].as_str().map(str::to_owned),
            ..NodeState::default()
        };
        if st["role"] == "unreachable" || st.is_null() {
            s.halted = Some(format!("node {} did not answer", n.id));
            out.push(s);
            continue;
        }
        read_state(&clients, n, meta, &admin_token, &gms_token, &mut s).await?;
        out.push(s);
    }
    Ok(out)
}

/// Each node's own report (`/admin/v1/cluster/status` of that node lists itself first).
async fn statuses_of(clients: &Clients, nodes: &[NodeAddr], token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for n in nodes {
        let url = format!("{}/admin/v1/cluster/status", n.km_uu);
        let v = match send(&clients.plain, "GET", &url, token, None).await {
            Reply::Answer(200, v, _) => v["nodes"]
                .as_array()
                .and_then(|a| a.iter().find(|r| r["id"].as_u64() == Some(n.id)).cloned())
                .unwrap_or(Value::Null),
            _ => Value::Null,
        };
        out.push(v);
    }
    out
}

fn answer(r: Reply, what: &str, node: u64) -> Result<(u16, Value), String> {
    match r {
        Reply::Answer(s, v, _) => Ok((s, v)),
        Reply::NotSent(e) | Reply::Lost(e) => Err(format!("node {node}: {what}: {e}")),
    }
}

async fn read_state(
    c: &Clients,
    n: &NodeAddr,
    meta: &Meta,
    admin_token: &str,
    gms_token: &str,
    s: &mut NodeState,
) -> Result<(), String> {
    let acl_url = format!("{}/admin/v1/acl", n.km_uu);
    let (st, acl) = answer(
        send(&c.plain, "GET", &acl_url, admin_token, None).await,
        "ACL",
        n.id,
    )?;
    if st != 200 {
        return Err(format!("node {}: ACL: HTTP {st}", n.id));
    }
    for e in acl["acl"].as_array().into_iter().flatten() {
        let Some(p) = e["principal"].as_str() else {
            continue;
        };
        if meta.principals.iter().any(|x| x == p) {
            let groups = e["groups"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|g| g.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            s.acl.insert(p.to_owned(), groups);
        }
    }
    let enc = |x: &str| {
        percent_encoding::utf8_percent_encode(x, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    for chunk in meta.identities.chunks(1000) {
        let url = format!(
            "{}/admin/v1/communities/{}/revocations/query",
            n.km_uu,
            enc(&meta.community)
        );
        let body = json!({ "identities": chunk });
        let (st, v) = answer(
            send(&c.plain, "POST", &url, admin_token, Some(&body)).await,
            "revocations",
            n.id,
        )?;
        if st != 200 {
            return Err(format!("node {}: revocation query: HTTP {st}", n.id));
        }
        for id in v["revoked"].as_array().into_iter().flatten() {
            if let Some(id) = id.as_str() {
                s.revoked.insert(id.to_owned());
            }
        }
    }
    for g in &meta.groups {
        let url = format!("{}/seal-x1/v1/groups/{}/keys", n.service, enc(g));
        let (st, v) = answer(
            send(&c.gms, "GET", &url, gms_token, None).await,
            "group",
            n.id,
        )?;
        match st {
            200 => {
                let vs = v["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| {
                        Some((
                            u32::try_from(x["version"].as_u64()?).ok()?,
                            x["gmk_id"].as_str()?.to_owned(),
                        ))
                    })
                    .collect();
                s.groups.insert(g.clone(), vs);
            }
            404 => {}
            _ => return Err(format!("node {}: group {g}: HTTP {st}", n.id)),
        }
    }
    Ok(())
}
