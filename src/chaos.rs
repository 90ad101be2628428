//! `sealkm chaos`: a recorded workload against a dev cluster and a checker of what it recorded
//! (issue 13, "Containers, compose and chaos"). `scripts/chaos/run.sh` starts the cluster,
//! runs the workload, injects faults and runs the checker.
//!
//! - [`workload`] (`sealkm chaos workload`): clients against every node — KMS-managed group
//!   keys over SEAL-X1 as the GMS (TS 33.434 5.1), the ACL and identity revocations over the
//!   admin API, KM-UU `keyprov` (TS 33.180 Annex D) — each operation an `invoke` and an `ok`,
//!   `fail` or `unknown` line of a JSON-lines [`history`];
//! - [`gather`] reads every node's state after healing;
//! - [`check`] (pure) finds the violations: lost acknowledged writes, values nobody wrote,
//!   gaps or two GMK-IDs in a group's versions, non-linearizable reads ([`linear`], the
//!   Wing–Gong search per key), differing digests, halted nodes;
//! - [`summary`] (pure): operations ok / failed / unknown, availability, faults;
//! - [`timeline`] (pure): the run as a picture (per-second outcomes, fault bands), written as
//!   PNG by [`png`].

use std::path::PathBuf;
use std::time::Duration;

pub mod check;
pub mod gather;
pub mod history;
pub mod linear;
pub mod png;
pub mod summary;
pub mod timeline;
pub mod workload;

#[derive(clap::Subcommand, Debug)]
pub enum ChaosCmd {
    /// Drive clients against every node of a dev cluster and record the history.
    Workload(workload::WorkloadArgs),
    /// Check a history against every node's state after healing; exit 1 on any violation.
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[arg(long)]
    pub history: PathBuf,
    /// The dev environment the workload ran against.
    #[arg(long)]
    pub dir: PathBuf,
    /// Faults injected meanwhile (JSON lines of `scripts/chaos/run.sh`), for the summary.
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// Also write the report (summary and violations) as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Also draw the timeline (operations per second by outcome, fault bands) as PNG here.
    #[arg(long)]
    pub timeline: Option<PathBuf>,
    /// Seconds to wait for every node to reach the same digest before reading their states.
    #[arg(long, default_value_t = 60)]
    pub converge: u64,
}

pub async fn run(cmd: ChaosCmd) -> Result<(), String> {
    match cmd {
        ChaosCmd::Workload(a) => workload::run(a).await,
        ChaosCmd::Check(a) => run_check(a).await,
    }
}

async fn run_check(a: CheckArgs) -> Result<(), String> {
    let file =
        std::fs::File::open(&a.history).map_err(|e| format!("{}: {e}", a.history.display()))?;
    let (meta, events) = history::read(std::io::BufReader::new(file)).map_err(|e| e.to_string())?;
    let ops = history::pair(&events).map_err(|e| e.to_string())?;
    let faults = match &a.faults {
        Some(p) => read_faults(p)?,
        None => Vec::new(),
    };
    let nodes = gather::gather(&a.dir, &meta, Duration::from_secs(a.converge)).await?;
    let findings = check::check(&meta, &ops, &nodes);
    if let Some(p) = &a.timeline {
        let c = timeline::draw(&ops, &faults, meta.start_unix_ms);
        let bytes = png::encode(c.width, c.height, &c.pixels, &timeline::PALETTE);
        std::fs::write(p, bytes).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let summary = summary::summarize(&ops, faults);
    println!("{}", summary::render(&meta, &summary));
    println!(
        "checked: {} operations in {} keys (linearizability, with each node's final state as a read); {} nodes",
        findings.ops_checked,
        findings.keys_checked,
        nodes.len()
    );
    for n in &nodes {
        println!(
            "node {}: applied {} digest {}",
            n.id,
            n.applied.map_or("-".into(), |x| x.to_string()),
            n.digest.as_deref().unwrap_or("-")
        );
    }
    if let Some(p) = &a.report {
        let v = serde_json::json!({
            "seed": meta.seed,
            "summary": summary,
            "violations": findings.violations,
            "keys_checked": findings.keys_checked,
            "ops_checked": findings.ops_checked,
            "nodes": nodes,
        });
        std::fs::write(
            p,
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if findings.violations.is_empty() {
        println!("chaos check: OK, no violation");
        return Ok(());
    }
    for v in &findings.violations {
        println!("VIOLATION: {v}");
    }
    Err(format!(
        "chaos check: {} violations",
        findings.violations.len()
    ))
}

fn read_faults(p: &std::path::Path) -> Result<Vec<summary::Fault>, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("{} line {}: {e}", p.display(), i + 1))
        })
        .collect()
}
