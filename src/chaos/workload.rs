//! `sealkm chaos workload`: clients against every node of a dev cluster, each operation
//! recorded in a history ([`super::history`]) for `sealkm chaos check`.
//!
//! `--workers` sequential clients share one thread (awc clients are not `Send`, as in the load
//! tool). Each picks, from a generator seeded by `--seed` and its number, an operation and a
//! node: a KMS-managed group key rotation or read as the GMS over SEAL-X1 (TS 33.434 5.1, our
//! extension), an ACL set or read (admin API), an identity revocation or revocation query
//! (admin API), or a KM-UU `keyprov` (TS 33.180 Annex D) as a possibly revoked identity.
//!
//! Outcomes: a 2xx answer is `ok`; a request that could not be sent (connection refused, TLS
//! handshake), a definite refusal (4xx) or a refusal before proposal (503 or 507 with
//! `"proposed": false`) is `fail`; a timeout, a cut connection or any other 5xx on a write is
//! `unknown` (such a 503 on a write may still commit). Reads are `fail` on any error. After
//! an operation that did not succeed a worker pauses 100 ms, as a client backing off would.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::history::{meta_line, Event, Func, Kind, Meta};

#[derive(clap::Args, Debug)]
pub struct WorkloadArgs {
    /// Dev environment whose cluster.json lists the nodes.
    #[arg(long)]
    pub dir: PathBuf,
    /// Seconds of load.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the history is written (JSON lines).
    #[arg(long)]
    pub history: PathBuf,
    /// Concurrent clients.
    #[arg(long, default_value_t = 6)]
    pub workers: u64,
    /// Seconds before a request counts as unknown.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

/// Groups, principals and identities of a run.
const GROUPS: usize = 3;
const PRINCIPALS: usize = 3;
const IDENTITIES: usize = 10_000;

/// splitmix64: a small seeded generator (the schedule must not depend on a crate's choice).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform enough in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The key space of a run tagged `tag`.
pub fn key_space(seed: u64, tag: &str, start_unix_ms: u64) -> Meta {
    Meta {
        seed,
        start_unix_ms,
        community: crate::dev::DEV_KMS_URI.into(),
        groups: (0..GROUPS).map(|i| format!("chaos-{tag}-g{i}")).collect(),
        principals: (0..PRINCIPALS)
            .map(|i| format!("chaos-{tag}-p{i}"))
            .collect(),
        identities: (0..IDENTITIES)
            .map(|i| format!("sip:chaos-{tag}-u{i}@chaos.sealkm.test"))
            .collect(),
    }
}

/// A node's addresses.
#[derive(Clone)]
pub struct NodeAddr {
    pub id: u64,
    pub km_uu: String,
    pub service: String,
}

/// The nodes of `DIR/cluster.json`.
pub fn nodes_of(dir: &Path) -> Result<Vec<NodeAddr>, String> {
    let path = dir.join(crate::dev::CLUSTER_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let nodes: Vec<NodeAddr> = v["nodes"]
        .as_array()
        .map(|ns| {
            ns.iter()
                .filter_map(|n| {
                    Some(NodeAddr {
                        id: n["id"].as_u64()?,
                        km_uu: n["km_uu"].as_str()?.to_owned(),
                        service: n["service"].as_str()?.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if nodes.is_empty() {
        return Err(format!("{} lists no node", path.display()));
    }
    Ok(nodes)
}

/// HTTPS clients of one worker: admin / KM-UU (trusting the dev CA) and the GMS (mutual TLS).
pub struct Clients {
    pub plain: awc::Client,
    pub gms: awc::Client,
}

impl Clients {
    pub fn new(dir: &Path, timeout: Duration) -> Result<Self, String> {
        let ca = dir.join(crate::dev::CA_CERT);
        let plain = crate::tls::client_config(&ca).map_err(|e| e.to_string())?;
        let (cert, key) = crate::dev::party_files(dir, "gms");
        let gms = crate::client::party_tls(&ca, Some((&cert, &key))).map_err(|e| e.to_string())?;
        let build = |tls: rustls::ClientConfig| {
            awc::Client::builder()
                .connector(awc::Connector::new().rustls_0_23(std::sync::Arc::new(tls)))
                .timeout(timeout)
                .finish()
        };
        Ok(Self {
            plain: build(plain),
            gms: build(gms),
        })
    }
}

/// An answer, or how the request ended without one.
pub enum Reply {
    Answer(u16, Value, String),
    /// Never sent (connection refused, TLS handshake failed).
    NotSent(String),
    /// Sent, answer unknown (timeout, cut connection).
    Lost(String),
}

/// Sends `method url` with a bearer token and an optional JSON body.
pub async fn send(
    c: &awc::Client,
    method: &str,
    url: &str,
    bearer: &str,
    body: Option<&Value>,
) -> Reply {
    let req = match method {
        "GET" => c.get(url),
        _ => c.post(url),
    }
    .bearer_auth(bearer);
    let sent = match body {
        Some(b) => req.send_json(b).await,
        None => req.send().await,
    };
    let mut resp = match sent {
        Ok(r) => r,
        Err(awc::error::SendRequestError::Connect(e)) => return Reply::NotSent(e.to_string()),
        Err(e) => return Reply::Lost(e.to_string()),
    };
    let status = resp.status().as_u16();
    match resp.body().limit(4 << 20).await {
        Ok(b) => {
            let text = String::from_utf8_lossy(&b).into_owned();
            let json = serde_json::from_slice(&b).unwrap_or(Value::Null);
            Reply::Answer(status, json, text)
        }
        Err(e) => Reply::Lost(format!("HTTP {status}, body: {e}")),
    }
}

/// The history file, with the workload's clock.
struct Recorder {
    out: std::io::BufWriter<std::fs::File>,
    start: Instant,
    error: Option<String>,
}

impl Recorder {
    fn line(&mut self, e: &Event) {
        let r = serde_json::to_string(e)
            .map_err(|x| x.to_string())
            .and_then(|s| writeln!(self.out, "{s}").map_err(|x| x.to_string()));
        if let Err(x) = r {
            self.error.get_or_insert(x);
        }
    }
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// What a worker needs to reach the cluster.
struct Ctx {
    dir: PathBuf,
    nodes: Vec<NodeAddr>,
    meta: Meta,
    admin_token: String,
    gms_token: String,
    user_tokens: RefCell<std::collections::HashMap<String, String>>,
    next_identity: Cell<usize>,
    acl_values: Cell<u64>,
    rec: RefCell<Recorder>,
    deadline: Instant,
}

pub async fn run(a: WorkloadArgs) -> Result<(), String> {
    if a.workers == 0 || a.duration == 0 || a.timeout == 0 {
        return Err("--workers, --duration and --timeout must be positive".into());
    }
    let nodes = nodes_of(&a.dir)?;
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as u64;
    let tag = format!("{:x}-{:x}", a.seed, unix_ms);
    let meta = key_space(a.seed, &tag, unix_ms);
    let admin_token = std::fs::read_to_string(a.dir.join(crate::dev::ADMIN_TOKEN))
        .map_err(|e| format!("admin credential: {e}"))?
        .trim()
        .to_owned();
    let ttl = a.duration + 3600;
    let gms_token = crate::dev::mint_token(&a.dir, crate::dev::DEV_GMS, ttl, &[])?;
    let file =
        std::fs::File::create(&a.history).map_err(|e| format!("{}: {e}", a.history.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "{}", meta_line(&meta)).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let ctx = Rc::new(Ctx {
        dir: a.dir.clone(),
        nodes,
        meta,
        admin_token,
        gms_token,
        user_tokens: RefCell::default(),
        next_identity: Cell::new(0),
        acl_values: Cell::new(0),
        rec: RefCell::new(Recorder {
            out,
            start,
            error: None,
        }),
        deadline: start + Duration::from_secs(a.duration),
    });
    let mut handles = Vec::new();
    for w in 0..a.workers {
        let clients = Clients::new(&a.dir, Duration::from_secs(a.timeout))?;
        let ctx = ctx.clone();
        let rng = Rng::new(a.seed.wrapping_mul(1_000_003).wrapping_add(w));
        handles.push(actix_rt::spawn(worker(ctx, clients, rng, w, a.workers)));
    }
    for h in handles {
        h.await.map_err(|e| e.to_string())?;
    }
    let mut rec = ctx.rec.borrow_mut();
    rec.out.flush().map_err(|e| e.to_string())?;
    if let Some(e) = rec.error.take() {
        return Err(format!("writing {}: {e}", a.history.display()));
    }
    eprintln!(
        "chaos workload: {} s, {} workers, history in {}",
        a.duration,
        a.workers,
        a.history.display()
    );
    Ok(())
}

/// A worker's pause after an operation that did not succeed.
const BACK_OFF: Duration = Duration::from_millis(100);

/// The operation mix, in percent.
const MIX: [(Func, u64); 7] = [
    (Func::GkRotate, 12),
    (Func::GkRead, 18),
    (Func::AclSet, 15),
    (Func::AclRead, 15),
    (Func::Revoke, 15),
    (Func::RevRead, 17),
    (Func::Keyprov, 8),
];

async fn worker(ctx: Rc<Ctx>, clients: Clients, mut rng: Rng, w: u64, workers: u64) {
    let mut process = w;
    while Instant::now() < ctx.deadline {
        let mut pick = rng.below(100);
        let f = MIX
            .iter()
            .find(|(_, p)| {
                let hit = pick < *p;
                pick = pick.saturating_sub(*p);
                hit
            })
            .map_or(Func::GkRead, |(f, _)| *f);
        let node = ctx.nodes[rng.below(ctx.nodes.len() as u64) as usize].clone();
        let (key, input) = choose(&ctx, &mut rng, f);
        let invoke = {
            let rec = ctx.rec.borrow();
            Event {
                kind: Kind::Invoke,
                process,
                time_ns: rec.now(),
                f,
                key: key.clone(),
                value: input.clone(),
                node: node.id,
                error: None,
            }
        };
        ctx.rec.borrow_mut().line(&invoke);
        let (kind, value, error) = execute(&ctx, &clients, &node, f, &key, &input).await;
        let done = {
            let rec = ctx.rec.borrow();
            Event {
                kind,
                time_ns: rec.now(),
                value,
                error,
                ..invoke
            }
        };
        let back_off = kind != Kind::Ok;
        ctx.rec.borrow_mut().line(&done);
        if kind == Kind::Unknown {
            process += workers;
        }
        // A client backs off after an error (a dead node refuses at once; without a pause
        // the counts would measure how fast refusals come back).
        if back_off {
            actix_rt::time::sleep(BACK_OFF).await;
        }
    }
}

/// The key (and the value written) of the next `f`.
fn choose(ctx: &Ctx, rng: &mut Rng, f: Func) -> (String, Value) {
    let m = &ctx.meta;
    let pick = |rng: &mut Rng, v: &[String]| v[rng.below(v.len() as u64) as usize].clone();
    match f {
        Func::GkRotate | Func::GkRead => (pick(rng, &m.groups), Value::Null),
        Func::AclSet => {
            let n = ctx.acl_values.get() + 1;
            ctx.acl_values.set(n);
            let p = pick(rng, &m.principals);
            (p.clone(), json!([format!("{p}-v{n}")]))
        }
        Func::AclRead => (pick(rng, &m.principals), Value::Null),
        Func::Revoke => {
            // A fresh identity each time while there are any.
            let n = ctx.next_identity.get();
            ctx.next_identity.set(n + 1);
            let i = if n < m.identities.len() {
                n
            } else {
                rng.below(m.identities.len() as u64) as usize
            };
            (m.identities[i].clone(), Value::Null)
        }
        Func::RevRead | Func::Keyprov => {
            // Recently revoked, about to be, or not yet touched.
            let hi = (ctx.next_identity.get() + 3).min(m.identities.len()) as u64;
            let lo = hi.saturating_sub(12);
            let i = (lo + rng.below(hi - lo)) as usize;
            (m.identities[i].clone(), Value::Null)
        }
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Runs one operation: its completion kind, value and error.
async fn execute(
    ctx: &Ctx,
    c: &Clients,
    node: &NodeAddr,
    f: Func,
    key: &str,
    input: &Value,
) -> (Kind, Value, Option<String>) {
    let admin = |path: String| format!("{}/admin/v1/{path}", node.km_uu);
    let groups = |g: &str| format!("{}/seal-x1/v1/groups/{}/keys", node.service, enc(g));
    let revocations = format!("communities/{}/revocations", enc(&ctx.meta.community));
    let reply = match f {
        Func::GkRotate => send(&c.gms, "POST", &groups(key), &ctx.gms_token, None).await,
        Func::GkRead => send(&c.gms, "GET", &groups(key), &ctx.gms_token, None).await,
        Func::AclSet => {
            let body = json!({"principal": key, "role": "val-server", "groups": input});
            let url = admin("acl".into());
            send(&c.plain, "POST", &url, &ctx.admin_token, Some(&body)).await
        }
        Func::AclRead => {
            send(
                &c.plain,
                "GET",
                &admin("acl".into()),
                &ctx.admin_token,
                None,
            )
            .await
        }
        Func::Revoke => {
            let body = json!({"identity": key, "reason": "chaos"});
            let url = admin(revocations);
            send(&c.plain, "POST", &url, &ctx.admin_token, Some(&body)).await
        }
        Func::RevRead => {
            let body = json!({"identities": [key]});
            let url = admin(format!("{revocations}/query"));
            send(&c.plain, "POST", &url, &ctx.admin_token, Some(&body)).await
        }
        Func::Keyprov => {
            let token = match user_token(ctx, key) {
                Ok(t) => t,
                Err(e) => return (Kind::Fail, Value::Null, Some(e)),
            };
            let url = format!("{}{}/keyprov", node.km_uu, crate::client::ROOT);
            send(&c.plain, "POST", &url, &token, None).await
        }
    };
    classify(f, key, reply)
}

fn user_token(ctx: &Ctx, user: &str) -> Result<String, String> {
    if let Some(t) = ctx.user_tokens.borrow().get(user) {
        return Ok(t.clone());
    }
    let ttl = ctx
        .deadline
        .saturating_duration_since(Instant::now())
        .as_secs()
        + 3600;
    let t = crate::dev::mint_token(&ctx.dir, user, ttl, &[])?;
    ctx.user_tokens
        .borrow_mut()
        .insert(user.to_owned(), t.clone());
    Ok(t)
}

/// The completion of `f` from its reply (pure).
pub fn classify(f: Func, key: &str, reply: Reply) -> (Kind, Value, Option<String>) {
    let (status, body, text) = match reply {
        Reply::NotSent(e) => return (Kind::Fail, Value::Null, Some(e)),
        Reply::Lost(e) if f.is_write() => return (Kind::Unknown, Value::Null, Some(e)),
        Reply::Lost(e) => return (Kind::Fail, Value::Null, Some(e)),
        Reply::Answer(s, b, t) => (s, b, t),
    };
    let refused = |why: &str| {
        // Refused before it was proposed: it can never commit.
        let not_proposed = body["proposed"] == json!(false);
        let kind = if f.is_write() && status >= 500 && !not_proposed {
            Kind::Unknown
        } else {
            Kind::Fail
        };
        let mut t = text.clone();
        t.truncate(200);
        (kind, Value::Null, Some(format!("HTTP {status}{why}: {t}")))
    };
    let ok = (200..300).contains(&status);
    match f {
        Func::GkRotate if ok => (
            Kind::Ok,
            json!({"version": body["version"], "gmk_id": body["gmk_id"]}),
            None,
        ),
        Func::GkRead if ok => {
            let versions: Vec<Value> = body["versions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| json!([v["version"], v["gmk_id"]]))
                        .collect()
                })
                .unwrap_or_default();
            let cur = body["current_version"].as_u64().unwrap_or(0);
            (
                Kind::Ok,
                json!({"version": cur, "versions": versions}),
                None,
            )
        }
        // An unknown group: no version yet.
        Func::GkRead if status == 404 => (Kind::Ok, json!({"version": 0, "versions": []}), None),
        Func::AclRead if ok => {
            let groups = body["acl"]
                .as_array()
                .and_then(|a| a.iter().find(|e| e["principal"] == key))
                .map_or(Value::Null, |e| e["groups"].clone());
            (Kind::Ok, groups, None)
        }
        Func::RevRead if ok => {
            let revoked = body["revoked"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == key));
            (Kind::Ok, json!(revoked), None)
        }
        Func::Keyprov if ok => (Kind::Ok, json!(false), None),
        Func::Keyprov if status == 403 && text.contains("revoked") => (Kind::Ok, json!(true), None),
        Func::AclSet | Func::Revoke if ok => (Kind::Ok, Value::Null, None),
        _ => refused(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_of_writes_and_reads() {
        let lost = || Reply::Lost("timeout".into());
        let answer = |s: u16| Reply::Answer(s, Value::Null, String::new());
        assert_eq!(classify(Func::Revoke, "u", lost()).0, Kind::Unknown);
        assert_eq!(classify(Func::Revoke, "u", answer(503)).0, Kind::Unknown);
        let refused =
            |s: u16| Reply::Answer(s, json!({"error": "x", "proposed": false}), "".into());
        assert_eq!(classify(Func::Revoke, "u", refused(503)).0, Kind::Fail);
        assert_eq!(classify(Func::GkRotate, "g", refused(503)).0, Kind::Fail);
        assert_eq!(classify(Func::AclSet, "p", refused(507)).0, Kind::Fail);
        let other = Reply::Answer(503, json!({"error": "x", "proposed": true}), "".into());
        assert_eq!(classify(Func::AclSet, "p", other).0, Kind::Unknown);
        assert_eq!(classify(Func::Revoke, "u", answer(400)).0, Kind::Fail);
        assert_eq!(classify(Func::Revoke, "u", answer(200)).0, Kind::Ok);
        assert_eq!(
            classify(Func::Revoke, "u", Reply::NotSent("refused".into())).0,
            Kind::Fail
        );
        assert_eq!(classify(Func::RevRead, "u", lost()).0, Kind::Fail);
        assert_eq!(classify(Func::RevRead, "u", answer(503)).0, Kind::Fail);
        let q = Reply::Answer(
            200,
            json!({"revoked": ["u"], "not_revoked": []}),
            String::new(),
        );
        assert_eq!(classify(Func::RevRead, "u", q).1, json!(true));
        let acl = json!({"acl": [{"principal": "p", "role": "val-server", "groups": ["x"]}]});
        let r = classify(
            Func::AclRead,
            "p",
            Reply::Answer(200, acl.clone(), String::new()),
        );
        assert_eq!(r.1, json!(["x"]));
        let r = classify(Func::AclRead, "q", Reply::Answer(200, acl, String::new()));
        assert_eq!(r.1, Value::Null);
        let r = classify(Func::GkRead, "g", answer(404));
        assert_eq!((r.0, r.1["version"].as_u64()), (Kind::Ok, Some(0)));
        let revoked = Reply::Answer(403, Value::Null, "identity is revoked".into());
        assert_eq!(classify(Func::Keyprov, "u", revoked).1, json!(true));
        assert_eq!(classify(Func::Keyprov, "u", answer(403)).0, Kind::Fail);
    }

    #[test]
    fn the_generator_is_seeded() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(5).next_u64()).collect();
        let mut r = Rng::new(5);
        let b: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert!(a.iter().all(|x| *x == b[0]));
        assert_ne!(b[0], b[1]);
        assert!((0..100).all(|_| r.below(3) < 3));
    }
}
