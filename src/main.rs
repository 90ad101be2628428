//! The `sealkm` binary: thin CLI over the library (see `lib.rs` for the code map).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use sealkm::api::{self, AppState};
use sealkm::auth::jwks::Jwks;
use sealkm::auth::jwt::TokenVerifier;
use sealkm::client::{validate_key_set, KmClient};
use sealkm::clock::{Clock, SystemClock};
use sealkm::config::NodeConfig;
use sealkm::kms::xml::response::{KmsMessageDoc, KmsResponseBody};
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
    },
    /// Print the OpenAPI document of the service and admin interfaces (docs/openapi.json).
    Openapi,
    /// Run a node from a config file.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// DEV ONLY: print an access token signed by a dev environment's identity provider.
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
        conn: Conn,
        #[command(subcommand)]
        req: ClientReq,
    },
    /// Administer a node (certificates, revocations) with the admin credential.
    Admin {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        op: AdminOp,
    },
    /// The replicated ACL of the service interfaces (same as `sealkm admin acl`).
    Acl {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        op: AclOp,
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
    /// Audit file tools.
    Audit {
        #[command(subcommand)]
        op: AuditOp,
    },
    /// Run the crypto core on the published RFC 6507/6508 vectors and report.
    Selfcheck,
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
    },
}

#[derive(clap::Args)]
struct Conn {
    /// Dev environment to take defaults from (URL, CA, token key, admin credential).
    #[arg(long, global = true, default_value = "sealkm-dev")]
    dir: PathBuf,
    /// Node URL (default: node 1 of the dev environment's cluster.json).
    #[arg(long, global = true)]
    url: Option<String>,
    /// CA certificate (PEM) to trust (default: the dev CA).
    #[arg(long, global = true, alias = "ca")]
    cacert: Option<PathBuf>,
    /// Save the fetched documents in this directory.
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    /// Bearer token (default: minted by the dev identity provider for --user, or the admin credential).
    #[arg(long, global = true)]
    token: Option<String>,
    /// User identity to mint a dev token for.
    #[arg(long, global = true, default_value = "sip:alice@sealkm.test")]
    user: String,
}

#[derive(Subcommand)]
enum ClientReq {
    Init,
    Keyprov {
        /// Put the user URI in the path.
        #[arg(long)]
        uri: bool,
        /// NTP-UTC time (16 hex digits) for the key period.
        #[arg(long)]
        time: Option<String>,
    },
    Certcache {
        #[arg(long)]
        num: Option<u64>,
    },
    /// Play the group management server over SEAL-X1 (client certificate + token).
    Gms {
        #[command(flatten)]
        who: sealkm::cli::party::PartyArgs,
        #[command(subcommand)]
        op: sealkm::cli::party::PartyOp,
    },
    /// Play a VAL server over KM-S (client certificate + token).
    Val {
        #[command(flatten)]
        who: sealkm::cli::party::PartyArgs,
        #[command(subcommand)]
        op: sealkm::cli::party::PartyOp,
    },
    /// As the member --user: open a GMK I_MESSAGE (verify the GMS's signature, decrypt).
    Imessage {
        #[command(subcommand)]
        op: ImessageOp,
    },
}

#[derive(Subcommand)]
enum ImessageOp {
    Open {
        #[arg(long)]
        file: PathBuf,
        /// The expected sender (GMS URI), if known from signalling.
        #[arg(long)]
        from: Option<String>,
    },
}

#[derive(Subcommand)]
enum AdminOp {
    Status,
    /// The ACL of the service interfaces.
    Acl {
        #[command(subcommand)]
        op: AclOp,
    },
    Communities,
    Rotate {
        #[arg(long)]
        community: String,
        #[arg(long, default_value_t = 365)]
        validity_days: u64,
    },
    RevokeCert {
        #[arg(long)]
        community: String,
        #[arg(long)]
        serial: u32,
    },
    RevokeIdentity {
        #[arg(long)]
        community: String,
        #[arg(long)]
        identity: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    ReinstateIdentity {
        #[arg(long)]
        community: String,
        #[arg(long)]
        identity: String,
    },
}

/// `sealkm admin acl ...`: the replicated ACL of the service interfaces.
#[derive(Subcommand)]
enum AclOp {
    /// Every principal with its role and readable groups.
    List,
    /// Grant a principal (a client certificate's SAN) a role and the groups it may read.
    Set {
        #[arg(long)]
        principal: String,
        /// val-server, gms or admin.
        #[arg(long)]
        role: String,
        /// A group it may read (repeat; `*` for all).
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Remove a principal's entry.
    Remove {
        #[arg(long)]
        principal: String,
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
        Cmd::Dev { dir, addr, nodes } => run_dev(&dir, &addr, nodes),
        Cmd::Config {
            op: ConfigOp::Check { file },
        } => NodeConfig::load(&file)
            .map(|_| println!("ok: {}", file.display()))
            .map_err(|e| e.to_string()),
        Cmd::Config {
            op: ConfigOp::Generate { dir, addr, nodes },
        } => dev::ensure(&dev::DevOptions { dir, addr, nodes }).map(|cfg| {
            println!(
                "generated {} (secrets alongside it; keep the folder private)",
                cfg.display()
            )
        }),
        Cmd::Bench { op } => actix_rt::System::new().block_on(sealkm::loadtool::run(op)),
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
        Cmd::Client { conn, req } => actix_rt::System::new().block_on(run_client(conn, req)),
        Cmd::Admin { conn, op } => actix_rt::System::new().block_on(run_admin(conn, op)),
        Cmd::Acl { conn, op } => {
            actix_rt::System::new().block_on(run_admin(conn, AdminOp::Acl { op }))
        }
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
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sealkm: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_dev(dir: &Path, addr: &str, nodes: u32) -> Result<(), String> {
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
    let clock: Arc<dyn Clock> = if cfg.test_clock_offset_s != 0 {
        tracing::warn!(
            offset_s = cfg.test_clock_offset_s,
            "TEST ONLY clock offset in effect"
        );
        Arc::new(sealkm::clock::OffsetClock(cfg.test_clock_offset_s))
    } else {
        Arc::new(SystemClock)
    };
    actix_rt::System::new().block_on(async move {
        let node = node::bootstrap::open_node(&cfg, clock)
            .await
            .map_err(|e| e.to_string())?;
        let jwks_text = std::fs::read_to_string(&cfg.auth.jwks_file)
            .map_err(|e| format!("cannot read {}: {e}", cfg.auth.jwks_file.display()))?;
        let jwks = Jwks::from_json(&jwks_text)
            .map_err(|e| format!("{}: {e}", cfg.auth.jwks_file.display()))?;
        let verifier =
            TokenVerifier::new(jwks, cfg.auth.token.clone()).map_err(|e| e.to_string())?;
        let admin_token_sha256 = cfg.admin.digest().map_err(|e| e.to_string())?;
        let tls = sealkm::tls::server_config(
            &cfg.client_listener.tls_cert,
            &cfg.client_listener.tls_key,
        )
        .map_err(|e| e.to_string())?;
        let keep = node.clone();
        if let Some(s) = &cfg.service_listener {
            sealkm::actors::distribution::start(node.clone(), s).map_err(|e| e.to_string())?;
        }
        let state = AppState {
            node,
            verifier: Arc::new(verifier),
            max_body_bytes: cfg.limits.max_body_bytes,
            admin_token_sha256,
            token_cache: api::TokenCache::new(10_000),
            peer_tls: api::peer_tls(&cfg).map_err(|e| e.to_string())?,
            static_peers: api::static_peers(&cfg),
        };
        let data = actix_web::web::Data::new(state);
        let service = match &cfg.service_listener {
            Some(s) => Some((
                sealkm::tls::service_server_config(&s.tls_cert, &s.tls_key, &s.client_ca)
                    .map_err(|e| e.to_string())?,
                s,
            )),
            None => None,
        };
        let service_data = data.clone();
        // The service listener binds first, so its line precedes the KM-UU line that
        // scripts wait for.
        let service_run = async move {
            match service {
                Some((tls, s)) => {
                    tracing::info!(addr = %s.addr, "service listener (KM-S, SEAL-X1; mutual TLS)");
                    api::service::serve(service_data, &s.addr, tls, s.workers).await
                }
                None => Ok(()),
            }
        };
        tracing::info!(addr = %cfg.client_listener.addr, node = %cfg.node_id, "KM-UU listening (TLS)");
        let km_uu_run = api::serve(
            data,
            &cfg.client_listener.addr,
            tls,
            cfg.client_listener.workers,
        );
        let res = futures_util::future::try_join(service_run, km_uu_run)
            .await
            .map(|_| ())
            .map_err(|e| format!("listener failed: {e}"));
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

fn mint(dir: &Path, user: &str, ttl: u64) -> Result<String, String> {
    dev::mint_token(dir, user, ttl, &[])
}

fn conn_parts(conn: &Conn) -> Result<(String, PathBuf), String> {
    let url = match &conn.url {
        Some(u) => u.clone(),
        None => dev::node_url(&conn.dir, 1)?,
    };
    let ca = conn
        .cacert
        .clone()
        .unwrap_or_else(|| conn.dir.join(dev::CA_CERT));
    Ok((url, ca))
}

async fn run_client(conn: Conn, req: ClientReq) -> Result<(), String> {
    use sealkm::cli::party;
    let ca = conn
        .cacert
        .clone()
        .unwrap_or_else(|| conn.dir.join(dev::CA_CERT));
    let role = match &req {
        ClientReq::Gms { .. } => Some(sealkm::kms::acl::Role::Gms),
        ClientReq::Val { .. } => Some(sealkm::kms::acl::Role::ValServer),
        _ => None,
    };
    if let (Some(role), ClientReq::Gms { who, op } | ClientReq::Val { who, op }) = (role, &req) {
        let c = party::Conn {
            dir: &conn.dir,
            url: conn.url.as_deref(),
            ca,
            token: conn.token.as_deref(),
        };
        return party::run(role, c, who.clone(), op.clone()).await;
    }
    let (url, ca) = conn_parts(&conn)?;
    let token = match conn.token.clone() {
        Some(t) => t,
        None => mint(&conn.dir, &conn.user, 600)?,
    };
    let client = KmClient::new(&url, &ca, Some(token)).map_err(|e| e.to_string())?;
    let path = match &req {
        ClientReq::Imessage {
            op: ImessageOp::Open { file, from },
        } => return party::open_as_member(&client, file, from.as_deref()).await,
        ClientReq::Gms { .. } | ClientReq::Val { .. } => unreachable!("handled above"),
        ClientReq::Init => "init".to_string(),
        ClientReq::Keyprov {
            uri: false,
            time: None,
        } => "keyprov".to_string(),
        ClientReq::Keyprov { time, .. } => {
            let enc = percent_encoding::utf8_percent_encode(
                &conn.user,
                percent_encoding::NON_ALPHANUMERIC,
            );
            match time {
                Some(t) => format!("keyprov/{enc}/{t}"),
                None => format!("keyprov/{enc}"),
            }
        }
        ClientReq::Certcache { num: Some(n) } => format!("certcache/{n}"),
        ClientReq::Certcache { num: None } => "certcache".to_string(),
    };
    let reply = client.post(&path, None).await.map_err(|e| e.to_string())?;
    if let Some(out) = &conn.out {
        let name = path.split('/').next().unwrap_or("reply");
        save_private(&out.join(format!("{name}.xml")), &reply.raw)?;
    }
    match &reply.doc.body {
        KmsResponseBody::Error(e) => Err(format!(
            "HTTP {}: KmsError {} {}",
            reply.status,
            e.code.code(),
            e.message
        )),
        KmsResponseBody::Message(KmsMessageDoc::Init(cert)) => {
            println!(
                "KmsInit: {} ({:?}), KmsUri {}, period {} s, offset {} s",
                cert.cert_uri.as_deref().unwrap_or("-"),
                cert.role,
                cert.kms_uri,
                cert.user_key_period,
                cert.user_key_offset
            );
            println!(
                "  PubAuthKey (KPAK) {}",
                hex::encode_upper(&cert.pub_auth_key)
            );
            Ok(())
        }
        KmsResponseBody::Message(KmsMessageDoc::KeyProv(sets)) => {
            let init = client.post("init", None).await.map_err(|e| e.to_string())?;
            let KmsResponseBody::Message(KmsMessageDoc::Init(cert)) = init.doc.body else {
                return Err("init failed".into());
            };
            for ks in sets {
                validate_key_set(&cert, ks).map_err(|e| e.to_string())?;
                println!(
                    "KmsKeySet for {} period {} (UID {}): SSK/PVT and RSK validated against {}",
                    ks.user_uri,
                    ks.key_period_no,
                    hex::encode(ks.user_id),
                    cert.cert_uri.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        KmsResponseBody::Message(KmsMessageDoc::CertCache {
            cache_num,
            certificates,
        }) => {
            println!(
                "KmsCertCache CacheNum {cache_num}: {} certificate(s)",
                certificates.len()
            );
            for c in certificates {
                println!(
                    "  {} revoked={:?} valid_to={:?}",
                    c.cert_uri.as_deref().unwrap_or("-"),
                    c.revoked,
                    c.valid_to
                );
            }
            Ok(())
        }
    }
}

async fn run_admin(conn: Conn, op: AdminOp) -> Result<(), String> {
    let (url, ca) = conn_parts(&conn)?;
    let token = match conn.token.clone() {
        Some(t) => t,
        None => std::fs::read_to_string(conn.dir.join(dev::ADMIN_TOKEN))
            .map_err(|e| e.to_string())?
            .trim()
            .to_owned(),
    };
    let tls = sealkm::tls::client_config(&ca).map_err(|e| e.to_string())?;
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(tls)))
        .finish();
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let (method_post, path, body) = match &op {
        AdminOp::Status => (false, "status".to_string(), None),
        AdminOp::Acl { op: AclOp::List } => (false, "acl".to_string(), None),
        AdminOp::Acl {
            op:
                AclOp::Set {
                    principal,
                    role,
                    groups,
                },
        } => (
            true,
            "acl".to_string(),
            Some(serde_json::json!({ "principal": principal, "role": role, "groups": groups })),
        ),
        AdminOp::Acl {
            op: AclOp::Remove { principal },
        } => (
            true,
            "acl/delete".to_string(),
            Some(serde_json::json!({ "principal": principal })),
        ),
        AdminOp::Communities => (false, "communities".to_string(), None),
        AdminOp::Rotate {
            community,
            validity_days,
        } => (
            true,
            format!("communities/{}/certificates", enc(community)),
            Some(serde_json::json!({ "validity_days": validity_days })),
        ),
        AdminOp::RevokeCert { community, serial } => (
            true,
            format!(
                "communities/{}/certificates/{serial}/revoke",
                enc(community)
            ),
            None,
        ),
        AdminOp::RevokeIdentity {
            community,
            identity,
            reason,
        } => (
            true,
            format!("communities/{}/revocations", enc(community)),
            Some(serde_json::json!({ "identity": identity, "reason": reason })),
        ),
        AdminOp::ReinstateIdentity {
            community,
            identity,
        } => (
            true,
            format!("communities/{}/revocations/delete", enc(community)),
            Some(serde_json::json!({ "identity": identity })),
        ),
    };
    let full = format!("{url}/admin/v1/{path}");
    let req = if method_post {
        client.post(full)
    } else {
        client.get(full)
    }
    .insert_header(("Authorization", format!("Bearer {token}")));
    let mut resp = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp.body().await.map_err(|e| e.to_string())?;
    println!("{}", String::from_utf8_lossy(&bytes));
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// Writes a fetched document (it may hold private keys) readable by the owner only.
fn save_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes).map_err(|e| e.to_string())
}
