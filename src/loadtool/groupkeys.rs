//! `sealkm bench group-keys`: KMS-managed group keys over the service listener as the group
//! management server (mutual TLS with its certificate, plus its access token):
//! - `create`: each request creates a new group's version 1 (a fresh GMK sealed and proposed
//!   through Raft: one replicated write, answered once applied);
//! - `fetch`: `GET …/keys/current` of a set of existing groups (a read barrier, the ACL, the
//!   sealed GMK opened, an audit record).
//!
//! Each worker keeps one connection; requests in flight = `--concurrency`.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::stats::{self, Tally};
use crate::client::party::PartyClient;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKeyMode {
    Create,
    Fetch,
}

#[derive(clap::Args, Debug)]
pub struct GroupKeyArgs {
    /// Dev environment: its CA, the GMS certificate and key, and the identity provider that
    /// mints the GMS's token.
    #[arg(long)]
    pub dir: PathBuf,
    /// Service listener URL (default: node 1's from DIR/cluster.json).
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long, value_enum)]
    pub mode: GroupKeyMode,
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Timed seconds.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Groups a fetch run cycles through (created first, untimed).
    #[arg(long, default_value_t = 64)]
    pub groups: usize,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: GroupKeyArgs) -> Result<(), String> {
    if a.concurrency == 0 || a.duration == 0 || a.groups == 0 {
        return Err("--concurrency, --duration and --groups must be positive".into());
    }
    let url = match &a.url {
        Some(u) => u.clone(),
        None => crate::dev::service_url(&a.dir, 1)?,
    };
    let token = crate::dev::mint_token(&a.dir, crate::dev::DEV_GMS, a.duration + 600, &[])?;
    let (cert, key) = crate::dev::party_files(&a.dir, "gms");
    let ca = a.dir.join(crate::dev::CA_CERT);
    let clients: Vec<Rc<PartyClient>> = (0..a.concurrency)
        .map(|_| {
            PartyClient::new(&url, &ca, Some((&cert, &key)), Some(token.clone()))
                .map(Rc::new)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let tag: Rc<str> = Rc::from(format!("{:x}{:x}", now.as_micros(), std::process::id()));
    let path = |g: &str| format!("/seal-x1/v1/groups/{g}/keys");
    if a.mode == GroupKeyMode::Fetch {
        for i in 0..a.groups {
            let r = clients[0]
                .call("POST", &path(&format!("bench-{tag}-{i}")), None)
                .await
                .map_err(|e| e.to_string())?;
            if r.status != 201 {
                return Err(format!(
                    "creating the fetch groups: HTTP {} {}",
                    r.status, r.json
                ));
            }
        }
    }
    let tally = Rc::new(RefCell::new(Tally::default()));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.duration);
    let mut workers = Vec::new();
    for (w, c) in clients.into_iter().enumerate() {
        let (tally, tag) = (tally.clone(), tag.clone());
        let (mode, groups, concurrency) = (a.mode, a.groups, a.concurrency);
        workers.push(actix_rt::spawn(async move {
            let mut i = w;
            while Instant::now() < deadline {
                let (method, p, want) = match mode {
                    GroupKeyMode::Create => ("POST", path(&format!("bench-{tag}-w{w}-{i}")), 201),
                    GroupKeyMode::Fetch => (
                        "GET",
                        format!("{}/current", path(&format!("bench-{tag}-{}", i % groups))),
                        200,
                    ),
                };
                i += concurrency;
                let t0 = Instant::now();
                let r = c.call(method, &p, None).await;
                let us = t0.elapsed().as_micros() as u64;
                let r = r.map(|r| r.status).map_err(|e| e.to_string());
                tally.borrow_mut().record(r, want, us);
            }
        }));
    }
    for h in workers {
        h.await.map_err(|e| e.to_string())?;
    }
    let elapsed = start.elapsed();
    let mut t = std::mem::take(&mut *tally.borrow_mut());
    let sum = t.summary(elapsed);
    let name = match a.mode {
        GroupKeyMode::Create => "create",
        GroupKeyMode::Fetch => "fetch",
    };
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "mode": name,
                "concurrency": a.concurrency,
                "elapsed_s": sum.elapsed_s,
                "ok": sum.ok,
                "failed": sum.failed,
                "requests_per_s": sum.rps,
                "latency_us": stats::latency_json(&sum),
                "non_2xx": stats::statuses_json(&t.statuses),
                "transport_errors": t.errors,
            })
        );
    } else {
        println!(
            "group-keys {name:<6} c={:<3} {:>8.1} req/s  {})",
            a.concurrency,
            sum.rps,
            stats::latency_text(&sum)
        );
        stats::print_failures(&t.statuses, &t.errors);
    }
    Ok(())
}
