//! This KMS as a CAPIF API exposing function (AEF) and API publishing function (APF) of
//! `ss-kir` (TS 29.549 clause 8; the calls are TS 29.222's): the node's links to the CAPIF core
//! function (CCF). [`Capif`] is shared by the HTTP handlers and the background tasks:
//!
//! - publishing (`Publish_Service_API`): [`Capif::publish`] POSTs the `ServiceAPIDescription`
//!   of `ss-kir` once and keeps the CCF's `apiId` in the replicated state; later calls PUT the
//!   same description to that id (idempotent; a CCF that forgot it gets a new POST).
//!   [`publish_at_start`] does it in the background on the leader, retrying with backoff: the
//!   node serves whether or not the CCF answers;
//! - PKI invokers (`CAPIF_Security_API`): [`Capif::authorize_pki`] fetches
//!   `trustedInvokers/{apiInvokerId}` on first use and caches a positive answer for
//!   `trusted_invoker_ttl_s`; while the CCF cannot be reached an invoker not in the cache is
//!   refused (503);
//! - OAUTH invokers: [`Capif::verify_token`] ([`crate::auth::capif`]);
//! - invocation logs (`Logging_API_Invocation_API`): [`logs`].
//!
//! No call to the CCF is made on a request's path except the first `trustedInvokers` look-up
//! of a PKI invoker; every CCF call has a timeout ([`CCF_TIMEOUT`]).

pub mod logs;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::auth::capif::{load_keys, CapifToken, CcfTokenVerifier};
use crate::auth::AuthError;
use crate::config::CapifConfig;
use crate::kms::capif::{service_api_description, trusted_for_pki, API_NAME};
use crate::node::core::Actor;
use crate::node::{KmsNode, NodeError};

/// What is escaped in an id put into a path segment (RFC 3986 `pchar` keeps the rest).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// How long one call to the CCF may take.
pub const CCF_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a CAPIF operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CapifError {
    /// The CCF did not answer (connection, TLS, timeout) or answered 5xx.
    #[error("the CAPIF core function cannot be reached: {0}")]
    Unreachable(String),
    /// The CCF answered, and not as the call needs.
    #[error("the CAPIF core function refused: {0}")]
    Refused(String),
    /// The CCF does not authorise this invoker here.
    #[error("the CAPIF core function does not authorise invoker {0} on this AEF")]
    NotAuthorised(String),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("[capif]: {0}")]
    Config(String),
}

/// The node's CAPIF links (see module docs).
pub struct Capif {
    pub cfg: Arc<CapifConfig>,
    node: Arc<KmsNode>,
    tls: Arc<rustls::ClientConfig>,
    tokens: CcfTokenVerifier,
    /// The CCF's CA as a client-certificate verifier (PKI invokers, the CCF's own certificate).
    ccf_roots: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    /// PKI invokers the CCF authorised, until when.
    trusted: Mutex<HashMap<String, Instant>>,
    pub logs: logs::LogSpool,
}

impl Capif {
    /// Loads the CCF's CA and token keys and opens the log spool under `data_dir`.
    pub fn new(
        cfg: CapifConfig,
        node: Arc<KmsNode>,
        data_dir: &std::path::Path,
    ) -> Result<Self, CapifError> {
        let err = |e: &dyn std::fmt::Display| CapifError::Config(e.to_string());
        let tls = match (&cfg.client_cert, &cfg.client_key) {
            (Some(c), Some(k)) => crate::tls::peer_client_config(c, k, &cfg.ccf_ca),
            _ => crate::tls::client_config(&cfg.ccf_ca),
        }
        .map_err(|e| err(&e))?;
        let text = std::fs::read_to_string(&cfg.ccf_token_keys)
            .map_err(|e| err(&format!("{}: {e}", cfg.ccf_token_keys.display())))?;
        let jwks =
            load_keys(&text).map_err(|e| err(&format!("{}: {e}", cfg.ccf_token_keys.display())))?;
        let tokens = CcfTokenVerifier::new(
            jwks,
            cfg.token_issuer.clone(),
            cfg.token_audience.clone(),
            cfg.token_leeway_s,
            &cfg.aef_id,
        );
        let mut roots = rustls::RootCertStore::empty();
        for c in crate::tls::load_certs(&cfg.ccf_ca).map_err(|e| err(&e))? {
            roots.add(c).map_err(|e| err(&e))?;
        }
        let ccf_roots = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .map_err(|e| err(&e))?;
        let logs = logs::LogSpool::open(&data_dir.join(logs::SPOOL_FILE), cfg.log_spool_max)
            .map_err(|e| err(&e))?;
        Ok(Self {
            cfg: Arc::new(cfg),
            node,
            tls: Arc::new(tls),
            tokens,
            ccf_roots,
            trusted: Mutex::new(HashMap::new()),
            logs,
        })
    }

    /// A client for the CCF (awc clients are per thread: made per use).
    pub(crate) fn client(&self) -> awc::Client {
        awc::Client::builder()
            .connector(awc::Connector::new().rustls_0_23(self.tls.clone()))
            .timeout(CCF_TIMEOUT)
            .finish()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.ccf_url)
    }

    /// Whether a client certificate (DER) was issued under the CCF's CA and is valid now.
    pub fn issued_by_ccf(&self, leaf: &rustls::pki_types::CertificateDer<'_>) -> bool {
        self.ccf_roots
            .verify_client_cert(leaf, &[], rustls::pki_types::UnixTime::now())
            .is_ok()
    }

    /// Verifies an OAUTH invoker's bearer token for `ss-kir` of this AEF.
    pub fn verify_token(&self, token: &str, now: u64) -> Result<CapifToken, AuthError> {
        self.tokens.verify(token, now, API_NAME)
    }

    /// The CCF's `apiId` of our `ss-kir` publication, as this node applied it.
    pub fn api_id(&self) -> Result<Option<String>, NodeError> {
        self.node.parties.capif_api_id_local(API_NAME)
    }

    /// Publishes `ss-kir` (or updates the publication the state names); returns the `apiId`.
    pub async fn publish(&self, actor: &Actor) -> Result<String, CapifError> {
        self.node.read_barrier().await?;
        let c = &self.cfg;
        let mut desc = service_api_description(
            &c.aef_id,
            &c.publish_host,
            c.publish_port,
            &c.publish_protocol,
        );
        let base = format!("/published-apis/v1/{}/service-apis", c.apf_id);
        if let Some(id) = self.api_id()? {
            desc["apiId"] = Value::String(id.clone());
            let (status, _) = self
                .send("PUT", &format!("{base}/{id}"), Some(&desc))
                .await?;
            match status {
                200 | 204 => return Ok(id),
                404 => {
                    tracing::warn!(api_id = %id, "the CCF no longer knows our publication; publishing anew");
                    desc.as_object_mut().map(|o| o.remove("apiId"));
                }
                s => return Err(CapifError::Refused(format!("PUT publication: HTTP {s}"))),
            }
        }
        let (status, body) = self.send("POST", &base, Some(&desc)).await?;
        if status != 201 && status != 200 {
            return Err(CapifError::Refused(format!("publish: HTTP {status}")));
        }
        let id = body
            .get("apiId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or_else(|| CapifError::Refused("publish answer has no apiId".into()))?
            .to_owned();
        self.node
            .parties
            .capif_set_publication(API_NAME, Some(id.clone()), actor)
            .await?;
        Ok(id)
    }

    /// Withdraws the publication (a CCF that no longer knows it counts as done).
    pub async fn unpublish(&self, actor: &Actor) -> Result<Option<String>, CapifError> {
        self.node.read_barrier().await?;
        let Some(id) = self.api_id()? else {
            return Ok(None);
        };
        let path = format!("/published-apis/v1/{}/service-apis/{id}", self.cfg.apf_id);
        let (status, _) = self.send("DELETE", &path, None).await?;
        if !matches!(status, 200 | 204 | 404) {
            return Err(CapifError::Refused(format!("unpublish: HTTP {status}")));
        }
        self.node
            .parties
            .capif_set_publication(API_NAME, None, actor)
            .await?;
        Ok(Some(id))
    }

    /// A PKI invoker's authorisation: the cache, else `trustedInvokers` at the CCF.
    pub async fn authorize_pki(&self, invoker: &str) -> Result<(), CapifError> {
        let now = Instant::now();
        {
            let mut t = self.trusted.lock().unwrap_or_else(|p| p.into_inner());
            match t.get(invoker) {
                Some(until) if *until > now => return Ok(()),
                Some(_) => {
                    t.remove(invoker);
                }
                None => {}
            }
        }
        let id: String = percent_encoding::utf8_percent_encode(invoker, PATH_SEGMENT).collect();
        let path = format!(
            "/capif-security/v1/trustedInvokers/{id}?authenticationInfo=true&authorizationInfo=true"
        );
        let (status, body) = self.send("GET", &path, None).await?;
        let api_id = self.api_id()?;
        if status == 200 && trusted_for_pki(&body, &self.cfg.aef_id, api_id.as_deref()) {
            let until = now + Duration::from_secs(self.cfg.trusted_invoker_ttl_s);
            let mut t = self.trusted.lock().unwrap_or_else(|p| p.into_inner());
            if t.len() >= 100_000 {
                t.retain(|_, u| *u > now);
            }
            t.insert(invoker.to_owned(), until);
            return Ok(());
        }
        Err(CapifError::NotAuthorised(invoker.to_owned()))
    }

    /// Forgets a cached PKI authorisation (the CCF revoked the invoker).
    pub fn forget(&self, invoker: &str) {
        self.trusted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(invoker);
    }

    /// One call to the CCF: (status, JSON body or `Null`). 5xx and transport failures are
    /// [`CapifError::Unreachable`].
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), CapifError> {
        let client = self.client();
        let url = self.url(path);
        let req = match method {
            "POST" => client.post(url),
            "PUT" => client.put(url),
            "DELETE" => client.delete(url),
            _ => client.get(url),
        }
        .insert_header(("Accept", "application/json"));
        let sent = match body {
            Some(b) => req.send_json(b).await,
            None => req.send().await,
        };
        let mut resp = sent.map_err(|e| CapifError::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        if status >= 500 {
            return Err(CapifError::Unreachable(format!("HTTP {status}")));
        }
        let bytes = resp
            .body()
            .limit(1 << 20)
            .await
            .map_err(|e| CapifError::Unreachable(e.to_string()))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// `GET /admin/v1/capif`: what this node knows.
    pub fn status(&self) -> Result<Value, CapifError> {
        Ok(serde_json::json!({
            "ccfUrl": self.cfg.ccf_url,
            "aefId": self.cfg.aef_id,
            "apfId": self.cfg.apf_id,
            "apiName": API_NAME,
            "apiId": self.api_id()?,
            "securityMethods": crate::kms::capif::SECURITY_METHODS,
            "logs": self.logs.status(),
        }))
    }
}

/// Publishes `ss-kir` in the background once this node leads (retrying with backoff, 1 s
/// to 60 s, until the CCF accepts it). Spawn on the node's runtime; it never blocks serving.
pub async fn publish_at_start(capif: Arc<Capif>) {
    let mut wait = Duration::from_secs(1);
    let actor = Actor("capif-publisher".into());
    loop {
        if capif.node.store().status().role.is_leader() {
            match capif.publish(&actor).await {
                Ok(id) => {
                    tracing::info!(api_id = %id, "ss-kir published to the CCF");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "publishing ss-kir to the CCF failed; retrying")
                }
            }
            wait = (wait * 2).min(Duration::from_secs(60));
        }
        tokio::time::sleep(wait).await;
    }
}
