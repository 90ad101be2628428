//! `[federation]`: KM-E, our link between partner clusters (our extension: no KMS-to-KMS
//! interface exists in the specs, `../spec/FEDERATION.md` §4). Off unless configured. KM-E has
//! its own mutual-TLS listener and its own client credentials; each partner's CA is pinned and
//! may be neither the cluster's node CA nor the parties' CA.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;

fn default_refresh() -> u64 {
    60
}

/// `[federation]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// The KM-E listener (partners fetch our certificates here), mutual TLS: a client must
    /// present a certificate of a partner's pinned CA naming that partner.
    pub listener: KmEListenerConfig,
    /// Our client certificate and key towards the partners' KM-E listeners.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The community whose certificates KM-E offers (default: the default community).
    #[serde(default)]
    pub community: Option<String>,
    /// How often the leader's Federator fetches each partner's certificates, in seconds.
    #[serde(default = "default_refresh")]
    pub refresh_s: u64,
    #[serde(default, rename = "partner")]
    pub partners: Vec<PartnerConfig>,
}

/// `[federation.listener]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmEListenerConfig {
    pub addr: String,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
}

/// `[[federation.partner]]`: one partner operator's cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// The partner's KMS URI: every certificate it offers must be for it.
    pub kms_uri: String,
    /// Its KM-E base URL (`https://host:port`).
    pub url: String,
    /// Its CA (PEM), pinned: its listener's certificate and its client certificate chain to it.
    pub ca: PathBuf,
    /// The name (DNS or URI SAN) its client certificate must carry.
    pub name: String,
    /// Our communities whose CertCache serves its certificates once approved (empty: all).
    #[serde(default)]
    pub communities: Vec<String>,
    /// Federated groups we send to this partner: every key version, in order, as a
    /// MIKEY-SAKKE I_MESSAGE to its KMS's federation identity.
    #[serde(default)]
    pub share_groups: Vec<String>,
    /// Federated groups we accept from this partner: imported versions our GMS and VAL
    /// servers read like our own; read-only here.
    #[serde(default)]
    pub accept_groups: Vec<String>,
    /// How a new certificate of this partner (a key change) is taken.
    #[serde(default)]
    pub rotation: RotationPolicy,
}

/// `rotation` of a `[[federation.partner]]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotationPolicy {
    /// Staged until an operator approves it (`sealkm federation approve`).
    #[default]
    Manual,
    /// Taken at once when the partner's KM-E identity signed it under a previous certificate
    /// approved here (`kms::partner::rotation`); staged otherwise.
    Signed,
}

impl FederationConfig {
    pub(super) fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.listener.tls_cert);
        fix(&mut self.listener.tls_key);
        fix(&mut self.client_cert);
        fix(&mut self.client_key);
        for p in &mut self.partners {
            fix(&mut p.ca);
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("[federation] {m}")));
        if self.refresh_s == 0 {
            return bad("refresh_s must be > 0".into());
        }
        if self.partners.is_empty() {
            return bad("needs at least one [[federation.partner]]".into());
        }
        for (i, p) in self.partners.iter().enumerate() {
            crate::kms::names::validate_kms_uri(&p.kms_uri)
                .or_else(|e| bad(format!("partner {}: {e}", p.kms_uri)))?;
            if !p.url.starts_with("https://") {
                return bad(format!("partner {}: url must be https://", p.kms_uri));
            }
            if p.name.is_empty() || p.name.chars().any(char::is_control) {
                return bad(format!("partner {}: name is empty", p.kms_uri));
            }
            if self.partners[..i].iter().any(|o| o.kms_uri == p.kms_uri) {
                return bad(format!("partner {} is listed twice", p.kms_uri));
            }
            for g in p.share_groups.iter().chain(&p.accept_groups) {
                crate::kms::group::validate_group_id(g)
                    .or_else(|e| bad(format!("partner {}: {e}", p.kms_uri)))?;
            }
            if p.share_groups.iter().any(|g| p.accept_groups.contains(g)) {
                return bad(format!(
                    "partner {}: a group is either shared or accepted",
                    p.kms_uri
                ));
            }
            let elsewhere = self.partners[..i].iter().flat_map(|o| &o.accept_groups);
            if elsewhere.into_iter().any(|g| p.accept_groups.contains(g)) {
                return bad(format!(
                    "partner {}: a group is accepted from one partner only",
                    p.kms_uri
                ));
            }
        }
        Ok(())
    }

    /// Refuses a partner CA that is also the cluster's node CA or the parties' CA: KM-E
    /// credentials must never open the peer or the service listener, nor theirs KM-E.
    pub(super) fn check_cas(&self, others: &[&Path]) -> Result<(), ConfigError> {
        let certs =
            |p: &Path| crate::tls::load_certs(p).map_err(|e| ConfigError::Invalid(e.to_string()));
        let mut theirs = Vec::new();
        for o in others {
            theirs.extend(certs(o)?);
        }
        for p in &self.partners {
            if certs(&p.ca)?.iter().any(|c| theirs.contains(c)) {
                return Err(ConfigError::Invalid(format!(
                    "[federation] partner {}: its CA ({}) is also the node CA or the parties' \
                     CA; KM-E needs CAs of its own",
                    p.kms_uri,
                    p.ca.display()
                )));
            }
        }
        Ok(())
    }
}
