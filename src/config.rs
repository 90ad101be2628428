//! Node configuration (TOML): the node's identity, its listener and TLS material, the identity
//! management server's token policy, the communities it serves, key-provisioning and admission
//! limits. Every path in the file is resolved relative to the file's own directory, so a config
//! folder can be moved as a whole.
//!
//! The barrier (unseal) key is deliberately *not* part of the config: it comes from
//! `unseal_key_file` or the `SEALKM_UNSEAL_KEY` environment variable at start and never touches
//! the data directory (ARCHITECTURE §4).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

mod capif;
mod federation;

pub use capif::CapifConfig;
pub use federation::{FederationConfig, KmEListenerConfig, PartnerConfig, RotationPolicy};

use crate::auth::jwt::TokenPolicy;
use crate::auth::party::PartyPolicy;

pub mod trusted_proxies;

/// Name of the environment variable that may carry the unseal key (64 hex digits).
pub const UNSEAL_ENV: &str = "SEALKM_UNSEAL_KEY";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// One node's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Node name, written into audit records.
    pub node_id: String,
    /// Where the state (sled) lives.
    pub data_dir: PathBuf,
    /// File with the 32-byte unseal key as 64 hex digits; overridden by `SEALKM_UNSEAL_KEY`.
    #[serde(default)]
    pub unseal_key_file: Option<PathBuf>,
    /// The hash-chained audit file (node-local).
    pub audit_file: PathBuf,
    pub client_listener: ListenerConfig,
    /// The service listener (KM-S, SEAL-X1, `/openapi.json`): mutual TLS; absent: not served.
    #[serde(default)]
    pub service_listener: Option<ServiceListenerConfig>,
    pub auth: AuthConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(rename = "community")]
    pub communities: Vec<CommunityConfig>,
    #[serde(default)]
    pub keyprov: KeyProvConfig,
    #[serde(default)]
    pub admission: AdmissionConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The Raft cluster; absent: a cluster of one (this node, id 1, no peer listener).
    #[serde(default)]
    pub raft: Option<RaftConfig>,
    /// KM-E, our link between partner clusters (off unless present).
    #[serde(default)]
    pub federation: Option<FederationConfig>,
    /// CAPIF: this KMS as the AEF and APF of `ss-kir` (off unless present).
    #[serde(default)]
    pub capif: Option<CapifConfig>,
    /// TEST ONLY (cargo feature `test-clock`; a build without it refuses the key): seconds
    /// added to the system clock (may be negative), so end-to-end tests can exercise key-period
    /// windows and roll-over without waiting.
    #[cfg(feature = "test-clock")]
    #[serde(default)]
    pub test_clock_offset_s: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `host:port` to bind.
    pub addr: String,
    /// PEM certificate chain of this listener.
    pub tls_cert: PathBuf,
    /// PEM private key (PKCS#8) of this listener.
    pub tls_key: PathBuf,
    /// HTTP worker threads (default: the number of cores).
    #[serde(default)]
    pub workers: Option<usize>,
    /// Client listener only: IPs or CIDR blocks of the HTTP proxies in front of KM-UU whose
    /// `Forwarded` (`host=`, `proto=`) / `X-Forwarded-Host` / `X-Forwarded-Proto` headers
    /// select the community and build the `ClientReqUrl`; from any other peer those headers
    /// are ignored. Empty (the default): no proxy is trusted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
}

/// `[service_listener]`: where VAL servers (KM-S) and the group management server (SEAL-X1)
/// connect. A client certificate signed by `client_ca` names the party (a DNS or URI subject
/// alternative name); the request's access token must name the same party (TS 33.434 5.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceListenerConfig {
    /// `host:port` to bind.
    pub addr: String,
    /// PEM certificate chain of this listener (also presented to subscribers' callbacks).
    pub tls_cert: PathBuf,
    /// PEM private key (PKCS#8) of this listener.
    pub tls_key: PathBuf,
    /// PEM of the CA(s) that sign the parties' client certificates (and subscribers' callback
    /// servers' certificates).
    pub client_ca: PathBuf,
    /// HTTP worker threads (default: the number of cores).
    #[serde(default)]
    pub workers: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// JWKS file with the identity management server's public keys.
    pub jwks_file: PathBuf,
    /// `[auth.token]`: issuer, audience, leeway, identity claim, scope claim, required scope
    /// (the KM-UU tokens).
    pub token: TokenPolicy,
    /// `[auth.party]`: the party name space (refused on KM-UU) and the party tokens' scope and
    /// audience (the service listener).
    #[serde(default)]
    pub party: PartyPolicy,
    /// Re-read `jwks_file` every this many seconds (0: only on SIGHUP).
    #[serde(default = "default_jwks_reload")]
    pub jwks_reload_s: u64,
    /// `[[auth.visiting]]`: trusted partner identity providers whose users get key material of
    /// our domain on KM-UU (TS 33.180 5.1.4.2); their JWKS files are read at start.
    #[serde(default)]
    pub visiting: Vec<crate::auth::visiting::VisitingIdpConfig>,
}

fn default_jwks_reload() -> u64 {
    300
}

/// `[raft]`: this node's place in the cluster (ARCHITECTURE §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftConfig {
    /// This node's Raft id (> 0, unique in the cluster, never reused).
    pub id: u64,
    /// The peer listener (mutual TLS with the cluster CA): Raft messages and snapshots.
    pub peer_listener: ListenerConfig,
    /// PEM of the cluster (node) CA: peers must present a certificate it signed. It must not
    /// be (or include) a CA of the parties (`service_listener.client_ca`).
    pub cluster_ca: PathBuf,
    /// The address other nodes reach this node's peer listener at (default: its bind address).
    #[serde(default)]
    pub advertise: Option<String>,
    /// The other nodes: the initial voters of a new cluster, or — with `join` — nodes of the
    /// cluster to be reached through (members added later are found in the replicated state).
    #[serde(default, rename = "peer")]
    pub peers: Vec<PeerConfig>,
    /// Start outside the cluster and wait to be added with `sealkm cluster join`.
    #[serde(default)]
    pub join: bool,
    /// Required: node N's peer certificate must name `node<N>.<peer_name_domain>`; the peer
    /// listener answers only certificates that name a node, and accepts a Raft message only
    /// from the node its connection's certificate names.
    #[serde(default)]
    pub peer_name_domain: Option<String>,
    /// Raft tick; elections time out after 10–20 ticks, heartbeats every 3.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// Build a snapshot (and compact the log) every this many applied entries.
    #[serde(default = "default_snapshot_interval")]
    pub snapshot_interval: u64,
    /// Entries kept behind a snapshot for followers that lag a little.
    #[serde(default = "default_snapshot_keep")]
    pub snapshot_keep_entries: u64,
    /// The clock-skew rule: a follower issues KM-UU key sets only while its clock is within
    /// this many ms of the leader's, as measured on the leader's last Raft batch (within the
    /// last 5 s); otherwise it answers 503 and the client goes to another node. The leader's
    /// clock is the cluster's. The measurement includes the one-way delay.
    #[serde(default = "default_max_clock_skew_ms")]
    pub max_clock_skew_ms: u64,
}

/// Another node of the initial cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub id: u64,
    /// `host:port` of its peer listener.
    pub addr: String,
}

pub(crate) fn default_tick_ms() -> u64 {
    100
}
pub(crate) fn default_max_clock_skew_ms() -> u64 {
    2_000
}
pub(crate) fn default_snapshot_interval() -> u64 {
    10_000
}
pub(crate) fn default_snapshot_keep() -> u64 {
    1_000
}

impl RaftConfig {
    /// The address peers use for this node.
    pub fn advertised(&self) -> &str {
        self.advertise
            .as_deref()
            .unwrap_or(&self.peer_listener.addr)
    }
}

/// The admin credential: a bearer secret whose SHA-256 (hex) is stored here, never the secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// SHA-256 (64 hex digits) of the admin bearer credential.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Or: a file holding that hex digest (so a committed config can point at generated files).
    #[serde(default)]
    pub token_sha256_file: Option<PathBuf>,
}

impl AdminConfig {
    /// The configured digest, if any (from the inline value or the file).
    pub fn digest(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        let text = match (&self.token_sha256, &self.token_sha256_file) {
            (Some(h), _) => h.clone(),
            (None, Some(p)) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.display().to_string(),
                source,
            })?,
            (None, None) => return Ok(None),
        };
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut out)
            .map_err(|_| ConfigError::Invalid("admin.token_sha256 must be 64 hex digits".into()))?;
        Ok(Some(out))
    }
}

/// A community: one KMS identity (TS 33.180 D.3.2.2 `KmsCertificate`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityConfig {
    /// The bare KMS URI (also the DNS name a request uses to select this community).
    pub kms_uri: String,
    /// Serves requests whose host name matches no community.
    #[serde(default)]
    pub default: bool,
    /// `UserKeyPeriod` in seconds.
    #[serde(default = "default_key_period")]
    pub user_key_period_s: u64,
    /// `UserKeyOffset` in seconds.
    #[serde(default)]
    pub user_key_offset_s: u64,
    /// Validity of a newly created KMS certificate, in days.
    #[serde(default = "default_cert_validity")]
    pub cert_validity_days: u64,
    /// Extra host names (besides `kms_uri`) that select this community.
    #[serde(default)]
    pub host_aliases: Vec<String>,
    /// The user URI domains this KMS serves (`KmsDomainList` of its certificates, D.3.2.2;
    /// the domain lookup and the federation export use it). Empty: the KMS URI's parent
    /// domain (`kms.example.org` → `example.org`), or the KMS URI itself when it has two labels
    /// or fewer.
    #[serde(default)]
    pub kms_domains: Vec<String>,
}

impl CommunityConfig {
    /// [`CommunityConfig::kms_domains`], or its default, lower case.
    pub fn domains(&self) -> Vec<String> {
        if !self.kms_domains.is_empty() {
            return self
                .kms_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect();
        }
        let uri = self.kms_uri.to_ascii_lowercase();
        match uri.split_once('.') {
            Some((_, parent)) if parent.contains('.') => vec![parent.to_owned()],
            _ => vec![uri],
        }
    }
}

fn default_key_period() -> u64 {
    2_592_000
}
fn default_cert_validity() -> u64 {
    365
}

/// Which key periods a `keyprov` request may ask for, relative to the current one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyProvConfig {
    #[serde(default = "one")]
    pub periods_before: u64,
    #[serde(default = "one")]
    pub periods_after: u64,
    /// Issued key sets kept in memory (zeroized on eviction).
    #[serde(default = "default_cache")]
    pub cache_entries: usize,
}

fn one() -> u64 {
    1
}
fn default_cache() -> usize {
    10_000
}

impl Default for KeyProvConfig {
    fn default() -> Self {
        Self {
            periods_before: 1,
            periods_after: 1,
            cache_entries: default_cache(),
        }
    }
}

/// Admission control on cold key issuance (ARCHITECTURE §7).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionConfig {
    /// Cold issuances running at once; more are shed with 429.
    #[serde(default = "default_inflight")]
    pub max_inflight_issuance: usize,
    /// Cold issuances one identity may start per `identity_window_s`.
    #[serde(default = "default_per_identity")]
    pub per_identity_burst: u32,
    #[serde(default = "default_window")]
    pub identity_window_s: u64,
    /// TS 29.549 `ss-kir` retrievals one caller may make per `identity_window_s`, and how many
    /// may run at once; beyond either, 429 with `Retry-After`.
    #[serde(default = "default_retrieval_burst")]
    pub retrieval_burst: u32,
    #[serde(default = "default_retrieval_inflight")]
    pub max_inflight_retrieval: usize,
}

fn default_retrieval_burst() -> u32 {
    600
}
fn default_retrieval_inflight() -> usize {
    256
}

fn default_inflight() -> usize {
    64
}
fn default_per_identity() -> u32 {
    20
}
fn default_window() -> u64 {
    60
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            max_inflight_issuance: default_inflight(),
            per_identity_burst: default_per_identity(),
            identity_window_s: default_window(),
            retrieval_burst: default_retrieval_burst(),
            max_inflight_retrieval: default_retrieval_inflight(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body accepted, in bytes (413 above).
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// Seconds a request body may take to arrive once its headers are in (408 after).
    #[serde(default = "default_body_timeout")]
    pub body_read_timeout_s: u64,
    /// MiB to keep free on the disks of the data directory: below it the node refuses writes
    /// (507) and keeps serving reads, until space returns. 0 turns the reserve off.
    #[serde(default = "default_reserve_free_mb")]
    pub reserve_free_mb: u64,
}

fn default_body() -> usize {
    64 * 1024
}
fn default_body_timeout() -> u64 {
    10
}
fn default_reserve_free_mb() -> u64 {
    64
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: default_body(),
            body_read_timeout_s: default_body_timeout(),
            reserve_free_mb: default_reserve_free_mb(),
        }
    }
}

impl NodeConfig {
    /// Reads and validates a config file; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut cfg: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        cfg.validate()?;
        cfg.check_peer_ca()?;
        Ok(cfg)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        fix(&mut self.audit_file);
        if let Some(p) = self.unseal_key_file.as_mut() {
            fix(p);
        }
        fix(&mut self.client_listener.tls_cert);
        fix(&mut self.client_listener.tls_key);
        fix(&mut self.auth.jwks_file);
        for v in &mut self.auth.visiting {
            fix(&mut v.jwks_file);
        }
        if let Some(s) = self.service_listener.as_mut() {
            fix(&mut s.tls_cert);
            fix(&mut s.tls_key);
            fix(&mut s.client_ca);
        }
        if let Some(p) = self.admin.token_sha256_file.as_mut() {
            fix(p);
        }
        if let Some(r) = self.raft.as_mut() {
            fix(&mut r.peer_listener.tls_cert);
            fix(&mut r.peer_listener.tls_key);
            fix(&mut r.cluster_ca);
        }
        if let Some(f) = self.federation.as_mut() {
            f.resolve(base);
        }
        if let Some(c) = self.capif.as_mut() {
            c.resolve(base);
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.communities.is_empty() {
            return Err(ConfigError::Invalid(
                "at least one [[community]] is required".into(),
            ));
        }
        if self.communities.iter().filter(|c| c.default).count() > 1 {
            return Err(ConfigError::Invalid(
                "at most one community may be the default".into(),
            ));
        }
        for c in &self.communities {
            if c.kms_uri.is_empty()
                || c.kms_uri.contains('/')
                || c.kms_uri.contains(char::is_whitespace)
            {
                return Err(ConfigError::Invalid(format!(
                    "community kms_uri {:?} must be a bare KMS URI (a host name), not a URL",
                    c.kms_uri
                )));
            }
            if c.user_key_period_s == 0 {
                return Err(ConfigError::Invalid(format!(
                    "{}: user_key_period_s must be > 0",
                    c.kms_uri
                )));
            }
            if c.cert_validity_days == 0 {
                return Err(ConfigError::Invalid(format!(
                    "{}: cert_validity_days must be > 0",
                    c.kms_uri
                )));
            }
            crate::kms::domains::validate_domains(&c.domains())
                .map_err(|e| ConfigError::Invalid(format!("{}: kms_domains: {e}", c.kms_uri)))?;
        }
        trusted_proxies::parse_all(&self.client_listener.trusted_proxies)
            .map_err(|e| ConfigError::Invalid(format!("client_listener.trusted_proxies: {e}")))?;
        if self
            .raft
            .as_ref()
            .is_some_and(|r| !r.peer_listener.trusted_proxies.is_empty())
        {
            return Err(ConfigError::Invalid(
                "trusted_proxies applies to the client listener only, not [raft.peer_listener]"
                    .into(),
            ));
        }
        if self.limits.body_read_timeout_s == 0 {
            return Err(ConfigError::Invalid(
                "limits.body_read_timeout_s must be > 0".into(),
            ));
        }
        if self.admission.max_inflight_issuance == 0 {
            return Err(ConfigError::Invalid(
                "admission.max_inflight_issuance must be > 0".into(),
            ));
        }
        if let Some(r) = &self.raft {
            let mut ids: Vec<u64> = r.peers.iter().map(|p| p.id).collect();
            ids.push(r.id);
            ids.sort_unstable();
            if ids.contains(&0) {
                return Err(ConfigError::Invalid("[raft] ids must be > 0".into()));
            }
            if ids.windows(2).any(|w| w[0] == w[1]) {
                return Err(ConfigError::Invalid("[raft] ids must be unique".into()));
            }
            let domain_ok = r.peer_name_domain.as_deref().is_some_and(|d| {
                !d.is_empty()
                    && !d.contains('*')
                    && rustls::pki_types::ServerName::try_from(format!("node1.{d}")).is_ok()
            });
            if !domain_ok {
                return Err(ConfigError::Invalid(
                    "[raft] peer_name_domain is required (a DNS domain: node N's peer \
                     certificate must name node<N>.<domain>)"
                        .into(),
                ));
            }
            if r.tick_ms == 0 || r.snapshot_interval == 0 {
                return Err(ConfigError::Invalid(
                    "[raft] tick_ms and snapshot_interval must be > 0".into(),
                ));
            }
        }
        self.auth
            .token
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("[auth.token]: {e}")))?;
        self.auth
            .party
            .validate(&self.auth.token)
            .map_err(|e| ConfigError::Invalid(format!("[auth.party]: {e}")))?;
        if let Some(f) = &self.federation {
            f.validate()?;
        }
        if let Some(c) = &self.capif {
            c.validate()?;
            if self.service_listener.is_none() {
                return Err(ConfigError::Invalid(
                    "[capif] needs the [service_listener] (ss-kir is served there)".into(),
                ));
            }
        }
        Ok(())
    }
}

impl NodeConfig {
    /// Refuses a cluster config whose peer (node) CA is also a CA of the parties: a party's
    /// certificate must never open the peer listener. Compares the certificates in the files
    /// (two paths may hold the same CA), not the paths.
    pub fn check_peer_ca(&self) -> Result<(), ConfigError> {
        if let Some(f) = &self.federation {
            let others: Vec<&Path> = self
                .raft
                .iter()
                .map(|r| r.cluster_ca.as_path())
                .chain(self.service_listener.iter().map(|s| s.client_ca.as_path()))
                .collect();
            f.check_cas(&others)?;
        }
        if let (Some(c), Some(s)) = (&self.capif, &self.service_listener) {
            c.check_ca(&s.client_ca)?;
        }
        let (Some(r), Some(s)) = (&self.raft, &self.service_listener) else {
            return Ok(());
        };
        let certs =
            |p: &Path| crate::tls::load_certs(p).map_err(|e| ConfigError::Invalid(e.to_string()));
        let node_ca = certs(&r.cluster_ca)?;
        let party_ca = certs(&s.client_ca)?;
        if node_ca.iter().any(|c| party_ca.contains(c)) {
            return Err(ConfigError::Invalid(format!(
                "[raft] cluster_ca ({}) holds a CA of the parties (service_listener.client_ca, \
                 {}): the peer listener needs a CA of its own that signs only node \
                 certificates",
                r.cluster_ca.display(),
                s.client_ca.display()
            )));
        }
        Ok(())
    }
}
