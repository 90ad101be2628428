//! `sealkm bench`: load tools. `keyprov` (here) loads KM-UU `keyprov` (TS 33.180 Annex D);
//! `write` and `fsync` ([`write`]) load replicated writes (sealkm or etcd) and measure their
//! floor.
//!
//! Cold: every timed request carries an identity never requested before, so each one costs a
//! fresh key set (ECCSI pair + SAKKE RSK). Warm: a small set of identities, each requested once
//! before timing, then requested over and over (cache hits). Tokens are minted up front with
//! the dev identity provider so minting is not measured; each worker owns one awc client whose
//! keep-alive connection is established before timing starts.
//!
//! The workers run on one thread (awc clients are not `Send`): the load tool uses at most one
//! core. The statistics are pure functions in [`stats`].

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod federation;
pub mod groupkeys;
pub mod stats;
pub mod write;

use stats::{Summary, Tally};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Cold,
    Warm,
    Both,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchCmd {
    /// keyprov requests/s and latency, cold and warm.
    Keyprov {
        /// Node URL, `https://host:port`.
        #[arg(long)]
        url: String,
        /// CA certificate (PEM) to trust.
        #[arg(long, alias = "ca")]
        cacert: PathBuf,
        /// Dev environment (its identity provider key and node config mint the tokens).
        #[arg(long)]
        dir: PathBuf,
        /// Distinct identities minted for a cold run (the run stops early if they run out).
        #[arg(long, default_value_t = 20_000)]
        users: usize,
        /// Identities of a warm run (each requested once before timing).
        #[arg(long, default_value_t = 16)]
        warm_users: usize,
        /// Requests in flight at once (one connection each).
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Timed seconds per mode.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, value_enum, default_value_t = Mode::Both)]
        mode: Mode,
        /// One JSON object per mode instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replicated writes/s and latency (sealkm revocations or etcd puts, 256 bytes each).
    Write(write::WriteArgs),
    /// The floor of one replicated write: 4 KiB append + fsync on a disk, loopback round trip.
    Fsync(write::FsyncArgs),
    /// KMS-managed group keys as the GMS over mutual TLS: creations/s or fetches/s.
    GroupKeys(groupkeys::GroupKeyArgs),
    /// KM-E federated groups: a version created in domain A until readable in domain B.
    Federation(federation::FederationArgs),
}

struct Setup {
    url: String,
    tls: Arc<rustls::ClientConfig>,
    concurrency: usize,
    duration: Duration,
}

pub async fn run(cmd: BenchCmd) -> Result<(), String> {
    match cmd {
        BenchCmd::Write(a) => write::run_write(a).await,
        BenchCmd::Fsync(a) => write::run_fsync(a),
        BenchCmd::GroupKeys(a) => groupkeys::run(a).await,
        BenchCmd::Federation(a) => federation::run(a).await,
        keyprov => run_keyprov(keyprov).await,
    }
}

async fn run_keyprov(cmd: BenchCmd) -> Result<(), String> {
    let BenchCmd::Keyprov {
        url,
        cacert,
        dir,
        users,
        warm_users,
        concurrency,
        duration,
        mode,
        json,
    } = cmd
    else {
        return Err("not a keyprov run".into());
    };
    if concurrency == 0 || duration == 0 || users == 0 || warm_users == 0 {
        return Err("--concurrency, --duration, --users and --warm-users must be positive".into());
    }
    let tls = crate::tls::client_config(&cacert).map_err(|e| format!("TLS setup: {e}"))?;
    let setup = Setup {
        url: format!(
            "{}{}/keyprov",
            url.trim_end_matches('/'),
            crate::client::ROOT
        ),
        tls: Arc::new(tls),
        concurrency,
        duration: Duration::from_secs(duration),
    };
    let cfg = crate::config::NodeConfig::load(&dir.join(crate::dev::NODE_CONFIG))
        .map_err(|e| e.to_string())?;
    let idp = crate::dev::load_idp(&dir)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    // A run tag keeps identities of different runs (and modes) apart on the same node.
    let tag = format!("{:x}{:x}", now.as_micros(), std::process::id());
    let ttl = duration + 600;
    let mint = |user: &str| -> Result<String, String> {
        idp.mint_for(
            &cfg.auth.token,
            user,
            &cfg.auth.token.required_scope,
            now.as_secs(),
            ttl,
        )
        .map(|t| format!("Bearer {t}"))
        .map_err(|e| e.to_string())
    };
    let user = |kind: &str, i: usize| format!("sip:{kind}-{tag}-{i}@bench.sealkm.test");

    let modes: &[Mode] = match mode {
        Mode::Both => &[Mode::Cold, Mode::Warm],
        Mode::Cold => &[Mode::Cold],
        Mode::Warm => &[Mode::Warm],
    };
    for &m in modes {
        let (preflight, timed): (Vec<Vec<String>>, Vec<String>) = if m == Mode::Cold {
            // One untimed request per worker (its own identity) opens the connection.
            let pre = (0..concurrency)
                .map(|w| mint(&user("coldpre", w)).map(|t| vec![t]))
                .collect::<Result<_, _>>()?;
            let pool = (0..users)
                .map(|i| mint(&user("cold", i)))
                .collect::<Result<_, _>>()?;
            (pre, pool)
        } else {
            let set: Vec<String> = (0..warm_users)
                .map(|i| mint(&user("warm", i)))
                .collect::<Result<_, _>>()?;
            // Each warm identity once, spread over the workers; every worker at least once.
            let pre = (0..concurrency)
                .map(|w| {
                    let mine: Vec<String> =
                        set.iter().skip(w).step_by(concurrency).cloned().collect();
                    if mine.is_empty() {
                        vec![set[w % set.len()].clone()]
                    } else {
                        mine
                    }
                })
                .collect();
            (pre, set)
        };
        let (mut tally, elapsed, exhausted) = timed_run(&setup, m, preflight, timed).await?;
        let summary = tally.summary(elapsed);
        report(
            m,
            &setup,
            &summary,
            &tally.statuses,
            &tally.errors,
            exhausted,
            json,
        );
    }
    Ok(())
}

fn client(tls: &Arc<rustls::ClientConfig>) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(tls.clone()))
        .timeout(Duration::from_secs(30))
        .finish()
}

/// One keyprov request: `Ok(status)` once the whole body has been read.
async fn keyprov(c: &awc::Client, url: &str, auth: &str) -> Result<u16, String> {
    let mut resp = c
        .post(url)
        .insert_header(("Authorization", auth))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    resp.body()
        .limit(1 << 20)
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

/// Runs the preflight requests of each worker, then `concurrency` workers for the duration.
/// Cold workers take each token of `timed` once; warm workers cycle through them.
async fn timed_run(
    s: &Setup,
    mode: Mode,
    preflight: Vec<Vec<String>>,
    timed: Vec<String>,
) -> Result<(Tally, Duration, bool), String> {
    let clients: Vec<Rc<awc::Client>> = (0..s.concurrency)
        .map(|_| Rc::new(client(&s.tls)))
        .collect();
    let url: Rc<str> = Rc::from(s.url.as_str());
    let mut pre = Vec::new();
    for (c, tokens) in clients.iter().zip(preflight) {
        let (c, url) = (c.clone(), url.clone());
        pre.push(actix_rt::spawn(async move {
            for t in tokens {
                match keyprov(&c, &url, &t).await {
                    Ok(200) => {}
                    Ok(st) => return Err(format!("preflight request answered {st}")),
                    Err(e) => return Err(format!("preflight request failed: {e}")),
                }
            }
            Ok(())
        }));
    }
    for h in pre {
        h.await.map_err(|e| e.to_string())??;
    }

    let timed = Rc::new(timed);
    let next = Rc::new(Cell::new(0usize));
    let exhausted = Rc::new(Cell::new(false));
    let tally = Rc::new(RefCell::new(Tally::default()));
    let start = Instant::now();
    let deadline = start + s.duration;
    let mut workers = Vec::new();
    for (w, c) in clients.into_iter().enumerate() {
        let (url, timed, next, exhausted, tally) = (
            url.clone(),
            timed.clone(),
            next.clone(),
            exhausted.clone(),
            tally.clone(),
        );
        workers.push(actix_rt::spawn(async move {
            let mut i = w;
            while Instant::now() < deadline {
                let auth = if mode == Mode::Cold {
                    let n = next.get();
                    if n >= timed.len() {
                        exhausted.set(true);
                        break;
                    }
                    next.set(n + 1);
                    &timed[n]
                } else {
                    i = (i + 1) % timed.len();
                    &timed[i]
                };
                let t0 = Instant::now();
                let r = keyprov(&c, &url, auth).await;
                let us = t0.elapsed().as_micros() as u64;
                tally.borrow_mut().record(r, 200, us);
            }
        }));
    }
    for h in workers {
        h.await.map_err(|e| e.to_string())?;
    }
    let elapsed = start.elapsed();
    let tally = std::mem::take(&mut *tally.borrow_mut());
    Ok((tally, elapsed, exhausted.get()))
}

fn report(
    mode: Mode,
    s: &Setup,
    sum: &Summary,
    statuses: &BTreeMap<u16, u64>,
    errors: &BTreeMap<String, u64>,
    exhausted: bool,
    json: bool,
) {
    let name = if mode == Mode::Cold { "cold" } else { "warm" };
    if json {
        let v = serde_json::json!({
            "mode": name,
            "concurrency": s.concurrency,
            "elapsed_s": sum.elapsed_s,
            "ok": sum.ok,
            "failed": sum.failed,
            "requests_per_s": sum.rps,
            "latency_us": stats::latency_json(sum),
            "non_200": stats::statuses_json(statuses),
            "transport_errors": errors,
            "identities_exhausted": exhausted,
        });
        println!("{v}");
        return;
    }
    println!(
        "keyprov {name:<4} c={:<3} {:>8.1} req/s  {})",
        s.concurrency,
        sum.rps,
        stats::latency_text(sum)
    );
    stats::print_failures(statuses, errors);
    if exhausted {
        println!("  note: the cold identity pool ran out before the duration (raise --users)");
    }
}
