//! How the state machine's costs grow with the size of the replicated state (issue 15, item 6).
//!
//! For each scale s, a state is built by applying real commands at consecutive indexes (what
//! the committed log does): 10^6·s revoked identities, 10^5·s groups of 10 versions each
//! and 10^4·s subscriptions (10^4 = `MAX_SUBSCRIPTIONS` at scale 1), each of its own VAL
//! server with its ACL entry. The subscriptions are made after the rest, so that `write_bare`
//! can be measured on the full state without any; then `MAX_BACKLOG` more revocations fill
//! the outbox none of them acknowledges (its bound: from then on every event jumps or trims
//! something). Then, on that state:
//! - `snapshot_build`: `write_snapshot` (what a node does every `snapshot_interval` entries,
//!   today on the key store actor's thread), with the file's size;
//! - `transfer`: the file read in `read_chunk` pieces into a `SnapshotReceiver` and verified
//!   (what a lagging node's fetch does, without the network);
//! - `install`: `restore_snapshot` into a fresh state (a new generation swapped in);
//! - `reopen`: the sled database closed and opened again, up to the applied index (a restart
//!   before any catch-up);
//! - `read`: the median time of a revocation lookup (each KM-UU key set makes one) over
//!   10,000 random identities;
//! - `write_bare`: the median time to apply one more `RevokeIdentity` before any subscription
//!   exists (1,000 of them; sled's own work, without the Raft log's fsync); `write`: the same
//!   once the subscriptions exist and the outbox is full (each revocation is a key event:
//!   appended, every subscriber's backlog bound, the outbox trimmed);
//! - `rss_built`: the resident memory once the state is built (one state open, as on a node);
//!   `peak_rss`: the process's peak (each scale runs in its own process; it includes the
//!   second state the install fills, so it is about two nodes' worth).
//!
//! Run: `cargo bench --bench scale` (scales 0.01 0.03 0.1 0.3 1; `-- 0.01 0.1` for others). Prints
//! one CSV line per scale; `scripts/bench/scale_plot.py` draws docs/scale.png from them.

use std::path::Path;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use raft::eraftpb::SnapshotMetadata;
use sealkm::kms::acl::Role;
use sealkm::kms::events::EventKind;
use sealkm::kms::group::GroupKeyVersion;
use sealkm::kms::period::PeriodParams;
use sealkm::state::outbox::{MAX_BACKLOG, MAX_SUBSCRIPTIONS};
use sealkm::state::snapshot::{read_chunk, write_snapshot, SnapshotReceiver, MAX_CHUNK_BYTES};
use sealkm::state::{Command, Envelope, Outcome, StateMachine};

const KMS: &str = "kms.scale.test";
const HEADER: &str = "scale,revoked,groups,versions,subscriptions,applied,snapshot_bytes,\
snapshot_build_s,transfer_s,install_s,reopen_s,read_us,write_bare_us,write_us,rss_built_mib,peak_rss_mib";

struct Log {
    s: StateMachine,
    next: u64,
}

impl Log {
    fn apply(&mut self, command: Command) {
        let index = self.next;
        self.next += 1;
        let out = self.s.apply(index, &Envelope::new(index, command));
        assert_eq!(out.expect("apply"), Some(Outcome::Applied), "index {index}");
    }
}

fn identity(i: u64) -> String {
    format!("sip:user{i}@scale.test")
}

/// Opens a state as a node does (`sled::open`: sled's default cache), or with a cache of
/// `SCALE_CACHE_MB` MiB (an experiment: does a cost come from cache misses?).
fn open(path: &Path) -> StateMachine {
    let db = match std::env::var("SCALE_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(mb) => sled::Config::new()
            .path(path)
            .cache_capacity(mb << 20)
            .open(),
        None => sled::open(path),
    };
    StateMachine::open(db.expect("sled")).expect("state")
}

/// `VmHWM` (peak) or `VmRSS` (now) of this process, in MiB.
fn rss_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

/// Builds and measures one scale; prints its CSV line.
fn run(scale: f64) {
    let revoked = (1e6 * scale) as u64;
    let groups = (1e5 * scale) as u64;
    // 10^4·s asked for; the state refuses more than MAX_SUBSCRIPTIONS.
    // SCALE_SUBS overrides it (an experiment: the cost of an event against subscriptions alone).
    let subscriptions = std::env::var("SCALE_SUBS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or((1e4 * scale) as u64)
        .min(MAX_SUBSCRIPTIONS as u64);
    let versions = 10u32;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state");
    let mut log = Log {
        s: open(&db),
        next: 1,
    };
    log.apply(Command::CreateCommunity {
        kms_uri: KMS.into(),
        period: PeriodParams {
            period_s: 86_400,
            offset_s: 0,
        },
    });
    for i in 0..revoked {
        log.apply(Command::RevokeIdentity {
            kms_uri: KMS.into(),
            identity: identity(i),
            at_unix: 1_800_000_000,
            reason: "scale".into(),
        });
    }
    for g in 0..groups {
        for v in 1..=versions {
            log.apply(Command::CreateGroupKey {
                group_id: format!("g{g}"),
                version: GroupKeyVersion {
                    version: v,
                    gmk_id: (g as u32).wrapping_mul(16) | v,
                    sealed_gmk: vec![0xA5; 45],
                    created_unix: 1_800_000_000 + u64::from(v),
                    expires_unix: None,
                    revoked: false,
                },
            });
        }
    }
    // One more revocation at a time, before any subscription: the state's own cost.
    let bare_writes: Vec<Duration> = (0..1_000u64)
        .map(|i| {
            let t = Instant::now();
            log.apply(Command::RevokeIdentity {
                kms_uri: KMS.into(),
                identity: identity(revoked + i),
                at_unix: 1_800_000_000,
                reason: "scale".into(),
            });
            t.elapsed()
        })
        .collect();
    for i in 0..subscriptions {
        log.apply(Command::PutAclEntry {
            principal: format!("val-{i}"),
            role: Role::ValServer,
            groups: vec!["*".into()],
        });
        log.apply(Command::PutSubscription {
            id: format!("sub-{i}"),
            principal: format!("val-{i}"),
            callback_url: format!("https://val{}.scale.test/events", i % 1000),
            kinds: vec![EventKind::GroupKeyCreated],
            group_filter: Some(vec![format!("g{}", i % groups.max(1))]),
        });
    }
    // Fill the outbox: nobody acknowledges, so it holds MAX_BACKLOG events from here on.
    for i in 0..MAX_BACKLOG {
        log.apply(Command::RevokeIdentity {
            kms_uri: KMS.into(),
            identity: identity(revoked + 1_000 + i),
            at_unix: 1_800_000_000,
            reason: "scale".into(),
        });
    }
    if subscriptions > 0 {
        assert_eq!(log.s.outbox_len().expect("outbox"), MAX_BACKLOG);
    }
    log.s.flush().expect("flush");
    let applied = log.next - 1;
    // One state open, as on a node that has applied it all.
    let rss_built = rss_mib("VmRSS:");

    let snaps = dir.path().join("snaps");
    let mut meta = SnapshotMetadata {
        index: applied,
        term: 1,
        ..Default::default()
    };
    meta.mut_conf_state().voters = vec![1, 2, 3];
    let t = Instant::now();
    let desc = write_snapshot(&log.s, &snaps, &meta).expect("snapshot");
    let snapshot_build = t.elapsed().as_secs_f64();

    let received = dir.path().join("received");
    std::fs::create_dir_all(&received).expect("mkdir");
    let t = Instant::now();
    let mut rx = SnapshotReceiver::new(&received, &desc).expect("receiver");
    let mut offset = 0u64;
    loop {
        let chunk = read_chunk(&snaps, applied, offset, MAX_CHUNK_BYTES).expect("chunk");
        if chunk.is_empty() {
            break;
        }
        rx.write_chunk(offset, &chunk).expect("write chunk");
        offset += chunk.len() as u64;
    }
    rx.finish().expect("finish");
    let transfer = t.elapsed().as_secs_f64();

    let fresh = open(&dir.path().join("fresh"));
    let t = Instant::now();
    fresh.restore_snapshot(&received, applied).expect("restore");
    let install = t.elapsed().as_secs_f64();
    assert_eq!(fresh.applied_index().expect("applied"), applied);
    assert_eq!(
        fresh.digest().expect("digest"),
        log.s.digest().expect("digest")
    );
    drop(fresh);

    let reads: Vec<Duration> = (0..10_000u64)
        .map(|i| {
            let id = identity(i.wrapping_mul(2_654_435_761) % (revoked.max(1) * 2));
            let t = Instant::now();
            std::hint::black_box(log.s.revocation(KMS, &id).expect("read"));
            t.elapsed()
        })
        .collect();
    let writes: Vec<Duration> = (0..1_000u64)
        .map(|i| {
            let t = Instant::now();
            log.apply(Command::RevokeIdentity {
                kms_uri: KMS.into(),
                identity: identity(revoked + 1_000 + MAX_BACKLOG + i),
                at_unix: 1_800_000_000,
                reason: "scale".into(),
            });
            t.elapsed()
        })
        .collect();
    log.s.flush().expect("flush");
    let applied_now = log.next - 1;
    drop(log);
    let t = Instant::now();
    let reopened = open(&db);
    assert_eq!(reopened.applied_index().expect("applied"), applied_now);
    let reopen = t.elapsed().as_secs_f64();
    drop(reopened);

    println!(
        "{scale},{revoked},{groups},{},{subscriptions},{applied},{},{snapshot_build:.3},\
         {transfer:.3},{install:.3},{reopen:.3},{:.2},{:.2},{:.2},{rss_built:.0},{:.0}",
        groups * u64::from(versions),
        desc.size,
        median(reads),
        median(bare_writes),
        median(writes),
        rss_mib("VmHWM:")
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let Ok(one) = std::env::var("SCALE_ONE") {
        run(one.parse().expect("scale"));
        return;
    }
    // `cargo test --all-targets` runs benches once as tests: keep that to a small state.
    let under_test = std::env::args().any(|a| a == "--test" || a.starts_with("--test-"))
        || !std::env::args().any(|a| a == "--bench");
    let scales: Vec<String> = if !args.is_empty() {
        args
    } else if under_test {
        vec!["0.001".into()]
    } else {
        ["0.01", "0.03", "0.1", "0.3", "1"]
            .map(String::from)
            .to_vec()
    };
    println!("{HEADER}");
    let me = std::env::current_exe().expect("exe");
    for s in scales {
        // One process per scale, so its peak memory is its own.
        let out = Process::new(&me)
            .env("SCALE_ONE", &s)
            .output()
            .expect("run a scale");
        assert!(
            out.status.success(),
            "scale {s}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}
