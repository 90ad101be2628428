//! `sealkm bench write` and `sealkm bench fsync`: replicated-write load and its physical floor.
//!
//! `write` drives one kind of replicated write through the ordinary HTTP path of a target and
//! reports writes/s and latency with [`super::stats`]:
//! - `sealkm`: an identity revocation (`POST /admin/v1/communities/{kms_uri}/revocations`,
//!   admin bearer credential), a fresh identity per request and a reason of `--value-bytes`
//!   bytes — a Raft proposal, applied by every node;
//! - `etcd`: a put through etcd's v3 JSON gateway (`POST /v3/kv/put`), a fresh key per request
//!   and a value of `--value-bytes` bytes.
//!
//! Like `bench keyprov`, each worker owns one awc client (one keep-alive connection, opened by
//! an untimed first write) and the workers share one thread. The client sets no ALPN, so both
//! targets are spoken to in HTTP/1.1, over TLS for an `https` URL.
//!
//! `fsync` measures what a single-client write cannot go below on this machine: a 4 KiB append
//! followed by `fdatasync` (and `fsync`) in a directory on the disk under test, and a TCP round
//! trip over loopback.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use super::stats::Tally;
use super::stats::{percentile, Summary};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// sealkm admin API: identity revocation (a replicated write).
    Sealkm,
    /// etcd v3 JSON gateway: `/v3/kv/put`.
    Etcd,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Sealkm => "sealkm",
            Target::Etcd => "etcd",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct WriteArgs {
    #[arg(long, value_enum, default_value_t = Target::Sealkm)]
    pub target: Target,
    /// Node URL (`https://host:port`; `http://` for an etcd without TLS). Default for sealkm:
    /// node 1 of `--dir`'s cluster.json.
    #[arg(long)]
    pub url: Option<String>,
    /// CA certificate (PEM) to trust (default for sealkm: the dev CA of `--dir`).
    #[arg(long, alias = "ca")]
    pub cacert: Option<PathBuf>,
    /// sealkm admin credential (default: `--dir`/admin-token).
    #[arg(long)]
    pub token: Option<String>,
    /// Dev environment (URL, CA and admin credential defaults for sealkm).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Community whose revocation list is written (sealkm).
    #[arg(long, default_value = crate::dev::DEV_KMS_URI)]
    pub community: String,
    /// Bytes carried by each write (sealkm: the reason, at most 1024; etcd: the value).
    #[arg(long, default_value_t = 256)]
    pub value_bytes: usize,
    /// Writes in flight at once (one connection each).
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Timed seconds.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// sealkm: append every acknowledged write's identity (HTTP 200) to this file, one per
    /// line, so a fault run can check afterwards that none of them was lost.
    #[arg(long)]
    pub record: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct FsyncArgs {
    /// Directory on the disk under test (a scratch file is written there and removed).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Timed appends (each followed by a sync) per kind.
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Timed loopback round trips.
    #[arg(long, default_value_t = 2000)]
    pub round_trips: usize,
    #[arg(long)]
    pub json: bool,
}

/// How every write of a run is addressed and what it carries.
struct Plan {
    target: Target,
    url: String,
    auth: Option<String>,
    /// Run tag: keys and identities of different runs never collide.
    tag: String,
    value: Rc<str>,
    /// Identities of acknowledged writes (`--record`).
    acked: Option<RefCell<Vec<String>>>,
}

impl Plan {
    /// The identity revoked by write `n` of worker `w` (sealkm).
    fn identity(&self, w: usize, n: u64) -> String {
        format!("sip:w-{}-{w}-{n}@bench.sealkm.test", self.tag)
    }

    /// Notes an acknowledged write when `--record` asked for it.
    fn note_acked(&self, w: usize, n: u64, r: &Result<u16, String>) {
        if let (Some(acked), Ok(200), Target::Sealkm) = (&self.acked, r, self.target) {
            acked.borrow_mut().push(self.identity(w, n));
        }
    }

    /// The JSON body of write `n` of worker `w`.
    fn body(&self, w: usize, n: u64) -> String {
        match self.target {
            Target::Sealkm => serde_json::json!({
                "identity": self.identity(w, n),
                "reason": &*self.value,
            })
            .to_string(),
            Target::Etcd => {
                let b64 = base64::engine::general_purpose::STANDARD;
                serde_json::json!({
                    "key": b64.encode(format!("bench/{}/{w}/{n}", self.tag)),
                    "value": &*self.value,
                })
                .to_string()
            }
        }
    }
}

pub async fn run_write(a: WriteArgs) -> Result<(), String> {
    if a.concurrency == 0 || a.duration == 0 {
        return Err("--concurrency and --duration must be positive".into());
    }
    if a.target == Target::Sealkm && a.value_bytes > 1024 {
        return Err("--value-bytes: a sealkm revocation reason is at most 1024 bytes".into());
    }
    let url = match (&a.url, &a.dir, a.target) {
        (Some(u), _, _) => u.trim_end_matches('/').to_owned(),
        (None, Some(d), Target::Sealkm) => crate::dev::node_url(d, 1)?,
        _ => return Err("--url is required (or --dir for a sealkm dev cluster)".into()),
    };
    let cacert = a
        .cacert
        .clone()
        .or_else(|| a.dir.as_ref().map(|d| d.join(crate::dev::CA_CERT)));
    let tls = match &cacert {
        Some(ca) => crate::tls::client_config(ca).map_err(|e| format!("TLS setup: {e}"))?,
        None if url.starts_with("https://") => return Err("--cacert is required for https".into()),
        None => crate::tls::empty_client_config().map_err(|e| e.to_string())?,
    };
    let (path, auth) = match a.target {
        Target::Sealkm => {
            let token = match (&a.token, &a.dir) {
                (Some(t), _) => t.clone(),
                (None, Some(d)) => std::fs::read_to_string(d.join(crate::dev::ADMIN_TOKEN))
                    .map_err(|e| format!("admin credential (--token or --dir): {e}"))?
                    .trim()
                    .to_owned(),
                (None, None) => return Err("--token or --dir is required for sealkm".into()),
            };
            let enc = percent_encoding::utf8_percent_encode(
                &a.community,
                percent_encoding::NON_ALPHANUMERIC,
            );
            (
                format!("/admin/v1/communities/{enc}/revocations"),
                Some(format!("Bearer {token}")),
            )
        }
        Target::Etcd => ("/v3/kv/put".to_owned(), None),
    };
    // Printable filler of exactly `value_bytes` bytes; etcd carries the bytes base64-encoded
    // (the gateway decodes them), so both targets store `value_bytes` bytes per write.
    let raw: String = (0..a.value_bytes)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let value: Rc<str> = match a.target {
        Target::Sealkm => Rc::from(raw),
        Target::Etcd => Rc::from(base64::engine::general_purpose::STANDARD.encode(raw)),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let plan = Rc::new(Plan {
        target: a.target,
        url: format!("{url}{path}"),
        auth,
        tag: format!("{:x}{:x}", now.as_micros(), std::process::id()),
        value,
        acked: a.record.as_ref().map(|_| RefCell::new(Vec::new())),
    });
    let tls = Arc::new(tls);
    let written = timed_writes(&plan, &tls, a.concurrency, a.duration).await;
    // The record is written even when the run failed part-way: what was acknowledged stays so.
    if let (Some(path), Some(acked)) = (&a.record, &plan.acked) {
        let mut lines = acked.borrow().join("\n");
        if !lines.is_empty() {
            lines.push('\n');
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(lines.as_bytes()))
            .map_err(|e| format!("--record {}: {e}", path.display()))?;
    }
    let (mut tally, elapsed) = written?;
    let summary = tally.summary(elapsed);
    report(&a, &url, &summary, &tally.statuses, &tally.errors);
    Ok(())
}

/// One write: `Ok(status)` once the whole answer has been read.
async fn write_once(c: &awc::Client, plan: &Plan, body: String) -> Result<u16, String> {
    let mut req = c
        .post(plan.url.as_str())
        .insert_header(("Content-Type", "application/json"));
    if let Some(auth) = &plan.auth {
        req = req.insert_header(("Authorization", auth.as_str()));
    }
    let mut resp = req.send_body(body).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    resp.body()
        .limit(1 << 16)
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

async fn timed_writes(
    plan: &Rc<Plan>,
    tls: &Arc<rustls::ClientConfig>,
    concurrency: usize,
    duration: u64,
) -> Result<(Tally, Duration), String> {
    let clients: Vec<Rc<awc::Client>> = (0..concurrency)
        .map(|_| Rc::new(super::client(tls)))
        .collect();
    // One untimed write per worker opens its connection (and its TLS session).
    let mut pre = Vec::new();
    for (w, c) in clients.iter().enumerate() {
        let (c, plan) = (c.clone(), plan.clone());
        pre.push(actix_rt::spawn(async move {
            let r = write_once(&c, &plan, plan.body(w, 0)).await;
            plan.note_acked(w, 0, &r);
            match r {
                Ok(200) => Ok(()),
                Ok(st) => Err(format!("first write of worker {w} answered HTTP {st}")),
                Err(e) => Err(format!("first write of worker {w} failed: {e}")),
            }
        }));
    }
    for h in pre {
        h.await.map_err(|e| e.to_string())??;
    }
    let tally = Rc::new(RefCell::new(Tally::default()));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(duration);
    let mut workers = Vec::new();
    for (w, c) in clients.into_iter().enumerate() {
        let (plan, tally) = (plan.clone(), tally.clone());
        workers.push(actix_rt::spawn(async move {
            let mut n = 1u64;
            while Instant::now() < deadline {
                let body = plan.body(w, n);
                n += 1;
                let t0 = Instant::now();
                let r = write_once(&c, &plan, body).await;
                let us = t0.elapsed().as_micros() as u64;
                plan.note_acked(w, n - 1, &r);
                tally.borrow_mut().record(r, 200, us);
            }
        }));
    }
    for h in workers {
        h.await.map_err(|e| e.to_string())?;
    }
    let elapsed = start.elapsed();
    let tally = std::mem::take(&mut *tally.borrow_mut());
    Ok((tally, elapsed))
}

fn report(
    a: &WriteArgs,
    url: &str,
    sum: &Summary,
    statuses: &std::collections::BTreeMap<u16, u64>,
    errors: &std::collections::BTreeMap<String, u64>,
) {
    let name = a.target.name();
    if a.json {
        let v = serde_json::json!({
            "target": name,
            "url": url,
            "concurrency": a.concurrency,
            "value_bytes": a.value_bytes,
            "elapsed_s": sum.elapsed_s,
            "ok": sum.ok,
            "failed": sum.failed,
            "writes_per_s": sum.rps,
            "latency_us": super::stats::latency_json(sum),
            "non_200": super::stats::statuses_json(statuses),
            "transport_errors": errors,
        });
        println!("{v}");
        return;
    }
    println!(
        "write {name:<6} c={:<3} {:>8.1} writes/s  {}, {url})",
        a.concurrency,
        sum.rps,
        super::stats::latency_text(sum)
    );
    super::stats::print_failures(statuses, errors);
}

/// Median and p99 of a sample in µs (sorted here).
fn p50_p99(mut us: Vec<u64>) -> serde_json::Value {
    us.sort_unstable();
    serde_json::json!({ "p50": percentile(&us, 50.0), "p99": percentile(&us, 99.0) })
}

/// `runs` timed 4 KiB appends to each of two fresh files in `dir`, the first followed by
/// `fdatasync`, the second by `fsync` (µs each), interleaved so that both kinds see the same
/// disk weather, after 10 untimed ones each. The files are removed afterwards.
fn append_sync(dir: &Path, runs: usize) -> Result<(Vec<u64>, Vec<u64>), String> {
    let paths = [0, 1].map(|i| dir.join(format!(".sealkm-bench-fsync-{}-{i}", std::process::id())));
    let res = timed_appends(&paths, runs);
    for p in &paths {
        let _ = std::fs::remove_file(p);
    }
    res
}

fn timed_appends(paths: &[PathBuf; 2], runs: usize) -> Result<(Vec<u64>, Vec<u64>), String> {
    let open = |p: &PathBuf| {
        std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(p)
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let (mut fd, mut ff) = (open(&paths[0])?, open(&paths[1])?);
    let block = [0x5au8; 4096];
    let (mut data, mut full) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let e = |e: std::io::Error| e.to_string();
    for i in 0..runs + 10 {
        let t0 = Instant::now();
        fd.write_all(&block).map_err(e)?;
        fd.sync_data().map_err(e)?;
        let t1 = Instant::now();
        ff.write_all(&block).map_err(e)?;
        ff.sync_all().map_err(e)?;
        if i >= 10 {
            data.push((t1 - t0).as_micros() as u64);
            full.push(t1.elapsed().as_micros() as u64);
        }
    }
    Ok((data, full))
}

/// `n` timed 64-byte TCP round trips over loopback (Nagle off), after 100 untimed ones.
fn loopback_rtt(n: usize) -> Result<Vec<u64>, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; 64];
        loop {
            match s.read_exact(&mut buf) {
                Ok(()) => s.write_all(&buf)?,
                Err(_) => return Ok(()),
            }
        }
    });
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut buf = [7u8; 64];
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 100 {
        let t0 = Instant::now();
        s.write_all(&buf).map_err(|e| e.to_string())?;
        s.read_exact(&mut buf).map_err(|e| e.to_string())?;
        if i >= 100 {
            out.push(t0.elapsed().as_micros() as u64);
        }
    }
    drop(s);
    let _ = echo.join();
    Ok(out)
}

pub fn run_fsync(a: FsyncArgs) -> Result<(), String> {
    if a.runs == 0 || a.round_trips == 0 {
        return Err("--runs and --round-trips must be positive".into());
    }
    let (data, full) = append_sync(&a.dir, a.runs)?;
    let (datasync, fullsync) = (p50_p99(data), p50_p99(full));
    let rtt = p50_p99(loopback_rtt(a.round_trips)?);
    let floor = match (datasync["p50"].as_u64(), rtt["p50"].as_u64()) {
        (Some(f), Some(r)) => Some(f + r),
        _ => None,
    };
    if a.json {
        let v = serde_json::json!({
            "dir": a.dir,
            "runs": a.runs,
            "append_4k_fdatasync_us": datasync,
            "append_4k_fsync_us": fullsync,
            "loopback_rtt_us": rtt,
            "round_trips": a.round_trips,
            "floor_p50_us": floor,
        });
        println!("{v}");
        return Ok(());
    }
    let ms = |v: &serde_json::Value| {
        v.as_u64()
            .map_or("-".into(), |u| format!("{:.3} ms", u as f64 / 1000.0))
    };
    println!(
        "4 KiB append + fdatasync ({} runs in {}): p50 {}  p99 {}",
        a.runs,
        a.dir.display(),
        ms(&datasync["p50"]),
        ms(&datasync["p99"])
    );
    println!(
        "4 KiB append + fsync:                     p50 {}  p99 {}",
        ms(&fullsync["p50"]),
        ms(&fullsync["p99"])
    );
    println!(
        "loopback TCP round trip, 64 B ({} runs):  p50 {}  p99 {}",
        a.round_trips,
        ms(&rtt["p50"]),
        ms(&rtt["p99"])
    );
    println!(
        "floor (fdatasync p50 + round trip p50):   {}",
        ms(&serde_json::json!(floor))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(target: Target) -> Plan {
        let raw: String = "x".repeat(256);
        let value = match target {
            Target::Sealkm => Rc::from(raw),
            Target::Etcd => Rc::from(base64::engine::general_purpose::STANDARD.encode(raw)),
        };
        Plan {
            target,
            url: String::new(),
            auth: None,
            tag: "t".into(),
            value,
            acked: Some(RefCell::new(Vec::new())),
        }
    }

    #[test]
    fn record_keeps_only_acknowledged_sealkm_writes() {
        let p = plan(Target::Sealkm);
        p.note_acked(0, 1, &Ok(200));
        p.note_acked(0, 2, &Ok(503));
        p.note_acked(1, 3, &Err("reset".into()));
        p.note_acked(1, 4, &Ok(200));
        let acked = p.acked.as_ref().unwrap().borrow().clone();
        assert_eq!(acked, vec![p.identity(0, 1), p.identity(1, 4)]);
        let body: serde_json::Value = serde_json::from_str(&p.body(1, 4)).unwrap();
        assert_eq!(body["identity"], p.identity(1, 4));
        let e = plan(Target::Etcd);
        e.note_acked(0, 1, &Ok(200));
        assert!(e.acked.as_ref().unwrap().borrow().is_empty());
    }

    #[test]
    fn sealkm_body_is_a_revocation_with_a_fresh_identity_and_256_bytes() {
        let p = plan(Target::Sealkm);
        let a: serde_json::Value = serde_json::from_str(&p.body(0, 1)).unwrap();
        let b: serde_json::Value = serde_json::from_str(&p.body(1, 0)).unwrap();
        assert_eq!(a["reason"].as_str().map(str::len), Some(256));
        assert_ne!(a["identity"], b["identity"]);
        assert_eq!(a.as_object().map(|o| o.len()), Some(2));
    }

    #[test]
    fn etcd_body_carries_256_bytes_base64() {
        let p = plan(Target::Etcd);
        let v: serde_json::Value = serde_json::from_str(&p.body(2, 3)).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let value = b64.decode(v["value"].as_str().unwrap()).unwrap();
        assert_eq!(value.len(), 256);
        let key = b64.decode(v["key"].as_str().unwrap()).unwrap();
        assert_eq!(key, b"bench/t/2/3");
    }

    #[test]
    fn floor_measurements_return_one_sample_per_run_and_clean_up() {
        let dir = tempfile::tempdir().unwrap();
        let (data, full) = append_sync(dir.path(), 3).unwrap();
        assert_eq!((data.len(), full.len()), (3, 3));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(loopback_rtt(5).unwrap().len(), 5);
    }
}
