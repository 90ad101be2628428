//! `[capif]`: this KMS as a CAPIF API exposing function (AEF) and API publishing function (APF)
//! of `ss-kir` (TS 29.549 clause 8, TS 23.222, TS 29.222). Off unless present. The CAPIF core
//! function (CCF) is reached at `ccf_url` over TLS with the CCF's CA pinned; the same CA issues
//! the certificates of PKI invokers and the CCF's own client certificate (which alone may call
//! `revoke-authorization`); the CCF's token keys verify OAUTH invokers' bearer tokens.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;

fn default_leeway() -> u64 {
    10
}
fn default_ttl() -> u64 {
    300
}
fn default_spool_max() -> usize {
    10_000
}
fn default_batch() -> usize {
    50
}
fn default_flush_ms() -> u64 {
    1_000
}
fn default_protocol() -> String {
    crate::kms::capif::PROTOCOLS[0].to_owned()
}
fn default_true() -> bool {
    true
}

/// Upper bound of `token_leeway_s` (TS 33.122 Annex C: at most 30 s of skew).
pub const MAX_CAPIF_LEEWAY_S: u64 = 30;

/// `[capif]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapifConfig {
    /// The CCF's base URL (`https://host:port`), without a trailing `/`.
    pub ccf_url: String,
    /// The CCF's CA (PEM): the CCF's server and client certificates and the PKI invokers'
    /// certificates chain to it. Must not be a CA of the parties (`service_listener.client_ca`).
    pub ccf_ca: PathBuf,
    /// The DNS or URI names the CCF's client certificate carries (one must match on
    /// `revoke-authorization`).
    pub ccf_names: Vec<String>,
    /// The CCF's token signing keys: a JWKS (`.json`) or PEM public keys (RS256 / ES256).
    pub ccf_token_keys: PathBuf,
    /// Optional `iss` a CCF token must carry (the open-source CCF sets none we can rely on).
    #[serde(default)]
    pub token_issuer: Option<String>,
    /// Optional `aud` a CCF token must name.
    #[serde(default)]
    pub token_audience: Option<String>,
    /// Clock skew allowed on `exp`, at most [`MAX_CAPIF_LEEWAY_S`].
    #[serde(default = "default_leeway")]
    pub token_leeway_s: u64,
    /// Our AEF id and APF id, given by the CCF at provider registration (`sealkm capif
    /// register`).
    pub aef_id: String,
    pub apf_id: String,
    /// Our client certificate and key towards the CCF (from registration); absent: none sent.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Where invokers reach `ss-kir` (published in `interfaceDescriptions`).
    pub publish_host: String,
    pub publish_port: u16,
    /// The one protocol the published `AefProfile` names, `HTTP_1_1` (default) or `HTTP_2`:
    /// the service listener serves both.
    #[serde(default = "default_protocol")]
    pub publish_protocol: String,
    /// Publish (or re-publish) in the background when the node starts (the leader does it).
    #[serde(default = "default_true")]
    pub publish_at_start: bool,
    /// How long a PKI invoker's authorisation fetched from the CCF is trusted, in seconds.
    #[serde(default = "default_ttl")]
    pub trusted_invoker_ttl_s: u64,
    /// Invocation log entries the spool holds at most (the oldest is dropped beyond).
    #[serde(default = "default_spool_max")]
    pub log_spool_max: usize,
    /// Entries of one invoker that make a batch flushed at once.
    #[serde(default = "default_batch")]
    pub log_batch: usize,
    /// A non-empty spool is flushed at least this often, in milliseconds.
    #[serde(default = "default_flush_ms")]
    pub log_flush_ms: u64,
}

impl CapifConfig {
    pub(super) fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.ccf_ca);
        fix(&mut self.ccf_token_keys);
        if let Some(p) = self.client_cert.as_mut() {
            fix(p);
        }
        if let Some(p) = self.client_key.as_mut() {
            fix(p);
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |why: &str| Err(ConfigError::Invalid(format!("[capif]: {why}")));
        if !self.ccf_url.starts_with("https://") || self.ccf_url.ends_with('/') {
            return bad("ccf_url must be https://host[:port] without a trailing /");
        }
        for (name, v) in [
            ("aef_id", &self.aef_id),
            ("apf_id", &self.apf_id),
            ("publish_host", &self.publish_host),
        ] {
            if v.is_empty() || v.contains(['/', '?', '#', ' ']) {
                return bad(&format!(
                    "{name} must be a non-empty id without / ? # or spaces"
                ));
            }
        }
        if self.ccf_names.is_empty() || self.ccf_names.iter().any(String::is_empty) {
            return bad("ccf_names must name the CCF's client certificate");
        }
        if self.token_leeway_s > MAX_CAPIF_LEEWAY_S {
            return bad("token_leeway_s is above 30");
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return bad("client_cert and client_key go together");
        }
        if self.log_spool_max == 0 || self.log_batch == 0 || self.log_flush_ms == 0 {
            return bad("log_spool_max, log_batch and log_flush_ms must be > 0");
        }
        if !crate::kms::capif::PROTOCOLS.contains(&self.publish_protocol.as_str()) {
            return bad("publish_protocol must be HTTP_1_1 or HTTP_2");
        }
        if self.trusted_invoker_ttl_s == 0 {
            return bad("trusted_invoker_ttl_s must be > 0");
        }
        Ok(())
    }

    /// Refuses a `ccf_ca` that holds a CA of the parties (`party_ca`): an invoker's
    /// certificate must never pass for a party's, nor a party's for the CCF's.
    pub(super) fn check_ca(&self, party_ca: &Path) -> Result<(), ConfigError> {
        let load =
            |p: &Path| crate::tls::load_certs(p).map_err(|e| ConfigError::Invalid(e.to_string()));
        let (ccf, party) = (load(&self.ccf_ca)?, load(party_ca)?);
        if ccf.iter().any(|x| party.contains(x)) {
            return Err(ConfigError::Invalid(
                "[capif] ccf_ca holds a CA of the parties (service_listener.client_ca)".into(),
            ));
        }
        Ok(())
    }
}
