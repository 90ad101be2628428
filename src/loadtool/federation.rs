//! `sealkm bench federation`: how long a group key version created in domain A takes until it
//! is readable in domain B over KM-E (federated groups), on the pair `sealkm dev --domains 2`
//! runs (`DIR/a`, `DIR/b`; A shares the group with B). Each worker creates a version as A's
//! GMS (SEAL-X1, mutual TLS) and then asks B's service listener, as B's VAL server, for that
//! version until it is there; the time from before the creation to the first successful read
//! is one sample. `--concurrency` workers create at once.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::stats::{self, Summary};
use crate::client::party::PartyClient;

/// How long one version may take to reach B before it counts as failed.
const REACH_TIMEOUT: Duration = Duration::from_secs(30);
/// The pause between two reads of B while a version is not there yet.
const POLL: Duration = Duration::from_millis(1);

#[derive(clap::Args, Debug)]
pub struct FederationArgs {
    /// The two-domain dev environment (`sealkm dev --domains 2 --dir DIR`).
    #[arg(long)]
    pub dir: PathBuf,
    /// The federated group (A shares it with B).
    #[arg(long, default_value = crate::dev::FEDERATED_DEV_GROUP)]
    pub group: String,
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Versions measured in all.
    #[arg(long, default_value_t = 100)]
    pub versions: usize,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn party(dir: &std::path::Path, stem: &str, name: &str) -> Result<Rc<PartyClient>, String> {
    let url = crate::dev::service_url(dir, 1)?;
    let token = crate::dev::mint_token(dir, name, 3600, &[])?;
    let (cert, key) = crate::dev::party_files(dir, stem);
    PartyClient::new(
        &url,
        &dir.join(crate::dev::CA_CERT),
        Some((&cert, &key)),
        Some(token),
    )
    .map(Rc::new)
    .map_err(|e| e.to_string())
}

pub async fn run(a: FederationArgs) -> Result<(), String> {
    if a.concurrency == 0 || a.versions == 0 {
        return Err("--concurrency and --versions must be positive".into());
    }
    let (da, db) = (a.dir.join("a"), a.dir.join("b"));
    let create = format!("/seal-x1/v1/groups/{}/keys", a.group);
    let group: Rc<str> = Rc::from(a.group.as_str());
    let samples = Rc::new(RefCell::new(Vec::new()));
    let failed = Rc::new(RefCell::new(0u64));
    let left = Rc::new(RefCell::new(a.versions));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..a.concurrency {
        let gms = party(&da, "gms", crate::dev::DEV_GMS)?;
        let val = party(&db, "val", crate::dev::DEV_VAL)?;
        let (samples, failed, left) = (samples.clone(), failed.clone(), left.clone());
        let (create, group) = (create.clone(), group.clone());
        let read = move |v: u64| format!("/km-s/v1/groups/{group}/keys/{v}");
        workers.push(actix_rt::spawn(async move {
            loop {
                {
                    let mut l = left.borrow_mut();
                    if *l == 0 {
                        break;
                    }
                    *l -= 1;
                }
                let t0 = Instant::now();
                let made = gms.call("POST", &create, None).await;
                let version = match made {
                    Ok(r) if r.status == 201 => r.json["version"].as_u64(),
                    _ => None,
                };
                let Some(v) = version else {
                    *failed.borrow_mut() += 1;
                    continue;
                };
                let reached = loop {
                    match val.call("GET", &read(v), None).await {
                        Ok(r) if r.status == 200 => break true,
                        _ if t0.elapsed() > REACH_TIMEOUT => break false,
                        _ => actix_rt::time::sleep(POLL).await,
                    }
                };
                if reached {
                    samples.borrow_mut().push(t0.elapsed().as_micros() as u64);
                } else {
                    *failed.borrow_mut() += 1;
                }
            }
        }));
    }
    for h in workers {
        h.await.map_err(|e| e.to_string())?;
    }
    let ok = std::mem::take(&mut *samples.borrow_mut());
    let sum = Summary::new(ok, *failed.borrow(), start.elapsed());
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "concurrency": a.concurrency,
                "ok": sum.ok,
                "failed": sum.failed,
                "versions_per_s": sum.rps,
                "latency_us": stats::latency_json(&sum),
            })
        );
    } else {
        println!(
            "federation c={:<3} {:>7.1} versions/s  created in A -> readable in B: {}",
            a.concurrency,
            sum.rps,
            stats::latency_text(&sum)
        );
    }
    Ok(())
}
