//! The `sealkm` binary: thin CLI over the library (see `lib.rs` for the code map).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use sealkm::api::{self, AppState};
use sealkm::auth::jwks::Jwks;
use sealkm::auth::jwt::TokenVerifier;
use sealkm::clock::{Clock, SystemClock};
use sealkm::config::NodeConfig;
use sealkm::{dev, node};

#[derive(Parser)]
#[command(
    name = "sealkm",
    version,
    about = "Clustered key management server for 3GPP SEAL"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a local node on embedded defaults (dev CA, certificates, unseal key, identity provider).
    Dev {
        #[arg(long, default_value = "sealkm-dev")]
        dir: PathBuf,
        /// Listener address of node 1.
        #[arg(long, default_value = "127.0.0.1:8443")]
        addr: String,
        /// Number of nodes, each its own process (1, 3 or 5; 1 runs without a peer listener).
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// 2: two independently keyed clusters (DIR/a and DIR/b, ports +100), federated both
        /// ways (partner certificates, visiting users).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2))]
        domains: u32,
    },
    /// Print the OpenAPI document of the service and admin interfaces (docs/openapi.json).
    Openapi,
    /// Run a node from a config file.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// DEV ONLY: print an access token signed by a dev environment's identity provider: a
    /// party token (service listener) for a name in the config's party name space
    /// (`[auth.party]`), a KM-UU token for anybody else.
    Token {
        #[arg(long, default_value = "sealkm-dev")]
        dir: PathBuf,
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Add the TS 33.434 `SKeyProv` claim (SEAL key provisioning by a VAL server).
        #[arg(long)]
        skeyprov: bool,
    },
    /// Act as a KM client: fetch and validate KMS documents.
    Client {
        #[command(flatten)]
        conn: sealkm::cli::client::Conn,
        #[command(subcommand)]
        req: sealkm::cli::client::ClientReq,
    },
    /// Administer a node (certificates, revocations) with the admin credential.
    Admin {
        #[command(flatten)]
        conn: sealkm::cli::client::Conn,
        #[command(subcommand)]
        op: sealkm::cli::admin::AdminOp,
    },
    /// Partner KMS certificates (export ours, import theirs, list, revoke, remove) and the
    /// domain lookup, over the admin API.
    Federation {
        #[command(flatten)]
        conn: sealkm::cli::client::Conn,
        #[command(subcommand)]
        op: sealkm::cli::federation::FederationOp,
    },
    /// CAPIF provider: register at the CCF, publish / unpublish ss-kir, status.
    Capif {
        #[command(subcommand)]
        op: sealkm::cli::capif::CapifOp,
    },
    /// The replicated ACL of the service interfaces (same as `sealkm admin acl`).
    Acl {
        #[command(flatten)]
        conn: sealkm::cli::client::Conn,
        #[command(subcommand)]
        op: sealkm::cli::admin::AclOp,
    },
    /// The Raft cluster: status of every node, add a node, remove a node.
    Cluster {
        /// Dev environment whose cluster.json lists the nodes (and gives CA and credential).
        #[arg(long, global = true, default_value = "sealkm-dev")]
        dir: PathBuf,
        /// Ask this node instead (admin URL), with --cacert and --token.
        #[arg(long, global = true)]
        url: Option<String>,
        #[arg(long, global = true, alias = "ca")]
        cacert: Option<PathBuf>,
        /// Admin credential (default: DIR/admin-token).
        #[arg(long, global = true)]
        token: Option<String>,
        #[command(subcommand)]
        op: sealkm::cli::cluster::Op,
    },
    /// Config file tools.
    Config {
        #[command(subcommand)]
        op: ConfigOp,
    },
    /// Load tools: KM-UU keyprov (cold, warm), replicated writes (sealkm or etcd), fsync floor.
    Bench {
        #[command(subcommand)]
        op: sealkm::loadtool::BenchCmd,
    },
    /// Chaos testing: a recorded workload against a dev cluster, and its checker.
    Chaos {
        #[command(subcommand)]
        op: sealkm::chaos::ChaosCmd,
    },
    /// Audit file tools.
    Audit {
        #[command(subcommand)]
        op: AuditOp,
    },
    /// Run the crypto core on the published RFC 6507/6508 vectors and report.
    Selfcheck,
    /// Ask a node's health URL over HTTPS; exit 0 on a 2xx answer (container health checks).
    Health {
        #[arg(long, default_value = "https://localhost:8443/healthz")]
        url: String,
        /// CA of the node's client listener (PEM).
        #[arg(long)]
        cacert: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigOp {
    /// Validate a node config; names the offending key on error.
    Check { file: PathBuf },
    /// Generate the secrets of a node (CA, certificate, unseal key, identity-provider key,
    /// admin credential) and a config into DIR, without starting anything.
    Generate {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8443")]
        addr: String,
        /// Voters of the generated cluster: one certificate per node (and two spares when > 1).
        #[arg(long, default_value_t = 1)]
        nodes: u32,
        /// 2: the two federated domains of `sealkm dev --domains 2` (DIR/a and DIR/b, each
        /// with its own CAs, identity provider and KM-E credentials), without starting them.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2))]
        domains: u32,
    },
}

#[derive(Subcommand)]
enum AuditOp {
    /// Check every record's hash and the chain.
    Verify { file: PathBuf },
}

/// Nodes (`serve`) log JSON lines unless SEALKM_LOG_FORMAT=text; other commands log text.
fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let text = std::env::var("SEALKM_LOG_FORMAT").as_deref() == Ok("text");
    init_tracing(matches!(cli.cmd, Cmd::Serve { .. }) && !text);
    let res = match cli.cmd {
        Cmd::Dev {
            dir,
            addr,
            nodes,
            domains,
        } => run_dev(&dir, &addr, nodes, domains),
        Cmd::Config {
            op: ConfigOp::Check { file },
        } => NodeConfig::load(&file)
            .map(|_| println!("ok: {}", file.display()))
            .map_err(|e| e.to_string()),
        Cmd::Config {
            op:
                ConfigOp::Generate {
                    dir,
                    addr,
                    nodes,
                    domains: 2,
                },
        } => dev::ensure_pair(&dir, &addr, nodes).map(|(a, b)| {
            println!(
                "generated {} and {} (secrets alongside; keep the folders private)",
                a.display(),
                b.display()
            )
        }),
        Cmd::Config {
            op: ConfigOp::Generate {
                dir, addr, nodes, ..
            },
        } => dev::ensure(&dev::DevOptions { dir, addr, nodes }).map(|cfg| {
            println!(
                "generated {} (secrets alongside it; keep the folder private)",
                cfg.display()
            )
        }),
        Cmd::Bench { op } => actix_rt::System::new().block_on(sealkm::loadtool::run(op)),
        Cmd::Chaos { op } => actix_rt::System::new().block_on(sealkm::chaos::run(op)),
        Cmd::Serve { config } => run_serve(&config),
        Cmd::Openapi => {
            println!("{}", api::openapi::document_json());
            Ok(())
        }
        Cmd::Token {
            dir,
            user,
            ttl,
            skeyprov,
        } => {
            let extra = [(sealkm::api::km_s::SKEYPROV_CLAIM, serde_json::json!(true))];
            dev::mint_token(&dir, &user, ttl, if skeyprov { &extra } else { &[] })
                .map(|t| println!("{t}"))
        }
        Cmd::Client { conn, req } => {
            actix_rt::System::new().block_on(sealkm::cli::client::run_client(conn, req))
        }
        Cmd::Admin { conn, op } => {
            actix_rt::System::new().block_on(sealkm::cli::admin::run_admin(conn, op))
        }
        Cmd::Federation { conn, op } => {
            actix_rt::System::new().block_on(sealkm::cli::federation::run(conn, op))
        }
        Cmd::Capif { op } => actix_rt::System::new().block_on(sealkm::cli::capif::run(op)),
        Cmd::Acl { conn, op } => actix_rt::System::new().block_on(sealkm::cli::admin::run_admin(
            conn,
            sealkm::cli::admin::AdminOp::Acl { op },
        )),
        Cmd::Cluster {
            dir,
            url,
            cacert,
            token,
            op,
        } => actix_rt::System::new()
            .block_on(sealkm::cli::cluster::run(&dir, url, cacert, token, op)),
        Cmd::Audit {
            op: AuditOp::Verify { file },
        } => sealkm::audit::verify_file(&file)
            .map(|s| {
                println!(
                    "ok: {} records, chain intact, last hash {}",
                    s.records, s.last_hash
                )
            })
            .map_err(|e| e.to_string()),
        Cmd::Selfcheck => sealkm::selfcheck::run().map(|report| println!("{report}")),
        Cmd::Health { url, cacert } => actix_rt::System::new()
            .block_on(sealkm::cli::health::run(&url, &cacert))
            .map(|line| println!("{line}")),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sealkm: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_dev(dir: &Path, addr: &str, nodes: u32, domains: u32) -> Result<(), String> {
    if domains == 2 {
        return actix_rt::System::new().block_on(dev::run_federated(dir, addr, nodes));
    }
    dev::ensure(&dev::DevOptions {
        dir: dir.to_owned(),
        addr: addr.to_owned(),
        nodes,
    })?;
    let dir = std::fs::canonicalize(dir).map_err(|e| e.to_string())?;
    actix_rt::System::new().block_on(dev::run_foreground(&dir, nodes))
}

fn run_serve(config: &Path) -> Result<(), String> {
    let cfg = NodeConfig::load(config).map_err(|e| e.to_string())?;
    #[cfg(feature = "test-clock")]
    let clock: Arc<dyn Clock> = if cfg.test_clock_offset_s != 0 {
        tracing::warn!(
            offset_s = cfg.test_clock_offset_s,
            "TEST ONLY clock offset in effect"
        );
        Arc::new(sealkm::clock::OffsetClock(cfg.test_clock_offset_s))
    } else {
        Arc::new(SystemClock)
    };
    #[cfg(not(feature = "test-clock"))]
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    actix_rt::System::new().block_on(async move {
        let node = node::bootstrap::open_node(&cfg, clock)
            .await
            .map_err(|e| e.to_string())?;
        let jwks_text = std::fs::read_to_string(&cfg.auth.jwks_file)
            .map_err(|e| format!("cannot read {}: {e}", cfg.auth.jwks_file.display()))?;
        let jwks = Jwks::from_json(&jwks_text)
            .map_err(|e| format!("{}: {e}", cfg.auth.jwks_file.display()))?;
        let verifier = TokenVerifier::new(jwks, cfg.auth.token.clone())
            .and_then(|v| v.with_party(cfg.auth.party.clone()))
            .map_err(|e| e.to_string())?;
        let visiting = cfg
            .auth
            .visiting
            .iter()
            .map(|v| {
                let text = std::fs::read_to_string(&v.jwks_file)
                    .map_err(|e| format!("cannot read {}: {e}", v.jwks_file.display()))?;
                let jwks = Jwks::from_json(&text)
                    .map_err(|e| format!("{}: {e}", v.jwks_file.display()))?;
                sealkm::auth::visiting::VisitingIdp::new(
                    v,
                    jwks,
                    &cfg.auth.token,
                    &cfg.auth.party,
                )
                .map_err(|e| format!("[[auth.visiting]] {}: {e}", v.issuer))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let auth = Arc::new(
            api::auth::Authenticator::new(verifier, Some(cfg.auth.jwks_file.clone()), 10_000)
                .with_visiting(visiting),
        );
        actix_rt::spawn(
            api::auth::spawn_jwks_reloader(auth.clone(), cfg.auth.jwks_reload_s)
                .map_err(|e| e.to_string())?,
        );
        let admin_token_sha256 = cfg.admin.digest().map_err(|e| e.to_string())?;
        let tls = sealkm::tls::server_config(
            &cfg.client_listener.tls_cert,
            &cfg.client_listener.tls_key,
        )
        .map_err(|e| e.to_string())?;
        let keep = node.clone();
        // The actors that act while this node leads, each on its own arbiter; their addresses
        // keep them alive.
        let expiry_arbiter = actix_rt::Arbiter::new();
        let _sweeper = sealkm::actors::expiry::start(
            node.clone(),
            node.store().watch(),
            &expiry_arbiter.handle(),
        );
        let distributor = match &cfg.service_listener {
            Some(s) => {
                let tls =
                    sealkm::actors::distribution::client_tls(s).map_err(|e| e.to_string())?;
                let arbiter = actix_rt::Arbiter::new();
                let addr = sealkm::actors::distribution::start(
                    node.clone(),
                    node.store().watch(),
                    tls,
                    &arbiter.handle(),
                );
                Some((arbiter, addr))
            }
            None => None,
        };
        // KM-E (`[federation]`): the Federator on its own arbiter, and its listener below.
        let federation = cfg.federation.clone().map(Arc::new);
        let federator = match &federation {
            Some(f) => {
                let tls = sealkm::actors::federator::partner_tls(f)
                    .map_err(|e| format!("[federation]: {e}"))?;
                let arbiter = actix_rt::Arbiter::new();
                let addr = sealkm::actors::federator::start(
                    node.clone(),
                    f.clone(),
                    tls,
                    node.store().watch(),
                    &arbiter.handle(),
                );
                Some((arbiter, addr))
            }
            None => None,
        };
        let km_e_tls = match &federation {
            Some(f) => {
                let cas: Vec<_> = f.partners.iter().map(|p| p.ca.clone()).collect();
                Some(
                    sealkm::tls::km_e_server_config(
                        &f.listener.tls_cert,
                        &f.listener.tls_key,
                        &cas,
                    )
                    .map_err(|e| format!("[federation.listener]: {e}"))?,
                )
            }
            None => None,
        };
        // CAPIF (`[capif]`): the CCF links; the log shipper runs on every node, the background
        // publication on the leader. Neither waits for the CCF before the listeners start.
        let capif = match &cfg.capif {
            Some(c) => Some(Arc::new(
                sealkm::actors::capif::Capif::new(c.clone(), node.clone(), &cfg.data_dir)
                    .map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        if let Some(c) = &capif {
            actix_rt::spawn(sealkm::actors::capif::logs::run_writer(c.clone()));
            actix_rt::spawn(sealkm::actors::capif::logs::run_shipper(c.clone()));
            if c.cfg.publish_at_start {
                actix_rt::spawn(sealkm::actors::capif::publish_at_start(c.clone()));
            }
        }
        let state = AppState {
            node,
            auth,
            body: api::body::BodyLimits {
                limit: cfg.limits.max_body_bytes,
                timeout: std::time::Duration::from_secs(cfg.limits.body_read_timeout_s),
            },
            admin_token_sha256,
            peer_tls: api::peer_tls(&cfg).map_err(|e| e.to_string())?,
            static_peers: api::static_peers(&cfg),
            federation: federation.clone(),
            federator: federator.as_ref().map(|(_, a)| a.clone()),
            trusted_proxies: sealkm::config::trusted_proxies::parse_all(
                &cfg.client_listener.trusted_proxies,
            )?,
            retrieval: sealkm::node::admission::Admission::new(
                cfg.admission.max_inflight_retrieval,
                cfg.admission.retrieval_burst,
                cfg.admission.identity_window_s,
            ),
            started: std::time::Instant::now(),
            capif: capif.clone(),
        };
        let data = actix_web::web::Data::new(state);
        let service_tls = match &cfg.service_listener {
            Some(s) => Some(
                sealkm::tls::service_server_config(
                    &s.tls_cert,
                    &s.tls_key,
                    &s.client_ca,
                    cfg.capif.as_ref().map(|c| c.ccf_ca.as_path()),
                )
                .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        // Catch the stop signals before any listener is announced, so a signal that comes
        // right after the "listening" line stops every listener.
        let (handles_tx, handles_rx) = tokio::sync::oneshot::channel();
        let signals = api::stop_on_signals_later(handles_rx).map_err(|e| e.to_string())?;
        actix_rt::spawn(signals);
        // The service listener binds first, so its line precedes the KM-UU line that scripts
        // wait for.
        let service = match (&cfg.service_listener, service_tls) {
            (Some(s), Some(tls)) => {
                tracing::info!(addr = %s.addr, "service listener (KM-S, SEAL-X1; mutual TLS)");
                Some(
                    api::service::serve(data.clone(), &s.addr, tls, s.workers)
                        .map_err(|e| format!("service listener: {e}"))?,
                )
            }
            _ => None,
        };
        let km_e = match (&federation, km_e_tls) {
            (Some(f), Some(tls)) => {
                tracing::info!(addr = %f.listener.addr, "KM-E listener (partners; mutual TLS)");
                Some(
                    api::km_e::serve(data.clone(), &f.listener.addr, tls)
                        .map_err(|e| format!("KM-E listener: {e}"))?,
                )
            }
            _ => None,
        };
        tracing::info!(addr = %cfg.client_listener.addr, node = %cfg.node_id, "KM-UU listening (TLS)");
        let km_uu = api::serve(
            data,
            &cfg.client_listener.addr,
            tls,
            cfg.client_listener.workers,
        )
        .map_err(|e| format!("KM-UU listener: {e}"))?;
        let mut handles = vec![km_uu.handle()];
        handles.extend(service.as_ref().map(|s| s.handle()));
        handles.extend(km_e.as_ref().map(|s| s.handle()));
        let _ = handles_tx.send(handles);
        let optional = |server: Option<actix_web::dev::Server>| async move {
            match server {
                Some(s) => s.await,
                None => Ok(()),
            }
        };
        let listeners =
            futures_util::future::try_join3(optional(service), optional(km_e), km_uu);
        let fatal = keep.store().fatal();
        let res = tokio::select! {
            res = listeners => res.map(|_| ()).map_err(|e| format!("listener failed: {e}")),
            why = fatal => {
                // The key store stopped this replica (an entry it cannot apply, a panic):
                // stop the process with a clear message; the audit log is flushed at exit.
                eprintln!("sealkm: FATAL: {why}; stopping");
                std::process::exit(70);
            }
        };
        // No sweeps or notifications once the listeners are down.
        expiry_arbiter.stop();
        if let Some((arbiter, _)) = &distributor {
            arbiter.stop();
        }
        if let Some((arbiter, _)) = &federator {
            arbiter.stop();
        }
        // A clean stop closes the Raft log and leaves the state machine flushed (after a
        // crash it is replayed from the Raft log instead).
        keep.store().shutdown().await;
        match keep.flush_state() {
            Ok(()) => tracing::info!("stopped; state flushed"),
            Err(e) => tracing::error!(error = %e, "flushing the state on shutdown failed"),
        }
        res
    })
}
