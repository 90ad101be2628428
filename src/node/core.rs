//! [`KmsNode`]: what the API handlers call.
//!
//! Write path: secrets are generated and sealed here, then the command is proposed to the
//! [`KeyStoreHandle`] (Raft) and the call returns once it is applied on this node.
//! Read path: every read of the replicated state starts with a linearizable read barrier
//! (ReadIndex), so a partitioned or lagging node answers "unavailable" instead of serving old
//! state. Key sets are issued from the community's issuing certificate with the unsealed
//! master secrets, through a cache and admission control, and every delivery is audited.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::store::{KeyStoreHandle, StoreError};

use ring::rand::SystemRandom;
use thiserror::Error;

use super::admission::{Admission, Shed};
use super::cache::KeySetCache;
use super::groups::Keyed;
use crate::audit::{AuditEvent, AuditKind, AuditLog};
use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::crypto::seal::BarrierKey;
use crate::crypto::CryptoError;
use crate::kms::community::{master_aad, Certificate, Community};
use crate::kms::master::MasterSecrets;
use crate::kms::provision::{issue_key_set, KeySet};
use crate::kms::KmsError;
use crate::state::idempotency::{IdempotencyRecord, IdempotentResult};
use crate::state::{Command, Outcome, StateError, StateMachine};

#[derive(Debug, Error)]
pub enum NodeError {
    #[error(transparent)]
    Kms(#[from] KmsError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("refused: {0}")]
    Rejected(String),
    /// A request that can never succeed as sent (validated before proposing).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The thing asked about does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with a concurrent change (409); retrying may succeed.
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    #[error("overloaded")]
    Shed(Shed),
    /// A per-principal quota on the replicated state is used up (429, no Retry-After).
    #[error("quota exceeded: {0}")]
    Quota(String),
    #[error("cluster unavailable: {0}")]
    Unavailable(#[from] StoreError),
    #[error("unseal key does not match this data directory")]
    WrongUnsealKey,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<CryptoError> for NodeError {
    fn from(e: CryptoError) -> Self {
        NodeError::Kms(KmsError::Crypto(e))
    }
}

/// The certificate the first rotation request with `keyed` created.
fn recorded_certificate(
    rec: &IdempotencyRecord,
    keyed: &Keyed,
    kms_uri: &str,
) -> Result<String, NodeError> {
    match &rec.result {
        IdempotentResult::Certificate {
            kms_uri: k,
            cert_uri,
        } if rec.fingerprint == keyed.fingerprint && k == kms_uri => Ok(cert_uri.clone()),
        _ => Err(keyed.reused()),
    }
}

tokio::task_local! {
    /// Whether the current HTTP request already made its read barrier.
    static REQUEST_BARRIER: Cell<bool>;
}

/// Runs `fut` (one HTTP request) so that it makes at most one read barrier; see
/// [`KmsNode::read_barrier`].
pub async fn request_scope<F: std::future::Future>(fut: F) -> F::Output {
    REQUEST_BARRIER.scope(Cell::new(false), fut).await
}

/// Who asked (for the audit trail).
#[derive(Debug, Clone)]
pub struct Actor(pub String);

pub struct KmsNode {
    pub(crate) node_id: String,
    pub(crate) store: KeyStoreHandle,
    pub(crate) barrier: BarrierKey,
    masters: Mutex<HashMap<String, Arc<MasterSecrets>>>,
    cache: KeySetCache,
    admission: Admission,
    audit: AuditLog,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: SystemRandom,
    /// host name (lower case) → kms_uri
    hosts: HashMap<String, String>,
    default_community: String,
    pub(crate) periods_before: u64,
    pub(crate) periods_after: u64,
    pub metrics: super::metrics::Metrics,
    /// ReadIndex rounds made for HTTP requests ([`KmsNode::read_barrier`]).
    request_barriers: AtomicU64,
    /// The origin of the monotonic time admission control runs on.
    started: std::time::Instant,
}

impl KmsNode {
    /// Builds a node over an opened state; [`super::bootstrap`] checks the barrier key and
    /// creates the configured communities first.
    pub fn new(
        cfg: &NodeConfig,
        store: KeyStoreHandle,
        barrier: BarrierKey,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mut hosts = HashMap::new();
        for c in &cfg.communities {
            hosts.insert(c.kms_uri.to_ascii_lowercase(), c.kms_uri.clone());
            for a in &c.host_aliases {
                hosts.insert(a.to_ascii_lowercase(), c.kms_uri.clone());
            }
        }
        let default_community = cfg
            .communities
            .iter()
            .find(|c| c.default)
            .or_else(|| cfg.communities.first())
            .map(|c| c.kms_uri.clone())
            .unwrap_or_default();
        Self {
            node_id: cfg.node_id.clone(),
            store,
            barrier,
            masters: Mutex::new(HashMap::new()),
            cache: KeySetCache::new(cfg.keyprov.cache_entries),
            admission: Admission::new(
                cfg.admission.max_inflight_issuance,
                cfg.admission.per_identity_burst,
                cfg.admission.identity_window_s,
            ),
            audit,
            clock,
            rng: SystemRandom::new(),
            hosts,
            default_community,
            periods_before: cfg.keyprov.periods_before,
            periods_after: cfg.keyprov.periods_after,
            metrics: Default::default(),
            request_barriers: AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }

    pub fn now(&self) -> u64 {
        self.clock.now_unix()
    }

    /// Proposes a command and waits until it is applied on this node.
    pub async fn propose(&self, command: Command) -> Result<Outcome, NodeError> {
        Ok(self.store.propose(command).await?)
    }

    /// Proposes and turns a deterministic refusal into an error.
    pub async fn propose_ok(&self, command: Command) -> Result<(), NodeError> {
        match self.propose(command).await? {
            Outcome::Applied => Ok(()),
            Outcome::Rejected(r) => Err(NodeError::Rejected(r)),
        }
    }

    /// [`KmsNode::propose_ok`] of `command` made idempotent by `keyed`: a repeat of an
    /// applied request succeeds without writing; the key used for another request is a
    /// conflict.
    pub async fn propose_keyed(
        &self,
        keyed: Option<&Keyed>,
        command: Command,
    ) -> Result<(), NodeError> {
        match self.propose(Keyed::wrap(keyed, command)).await? {
            Outcome::Applied => Ok(()),
            Outcome::Rejected(r) => match keyed {
                Some(k) if self.keyed_for_another(k)? => Err(k.reused()),
                _ => Err(NodeError::Rejected(r)),
            },
        }
    }

    /// Whether `keyed` names a request already applied (after a read barrier): its repeat
    /// succeeds without a new check or write. The key used for another request is a conflict.
    async fn replayed(&self, keyed: Option<&Keyed>) -> Result<bool, NodeError> {
        let Some(k) = keyed else {
            return Ok(false);
        };
        self.read_barrier().await?;
        match self.state().idempotency_record(&k.key)? {
            Some(r) if r.fingerprint == k.fingerprint => Ok(true),
            Some(_) => Err(k.reused()),
            None => Ok(false),
        }
    }

    /// Whether `keyed`'s key is remembered for a request with another fingerprint.
    fn keyed_for_another(&self, keyed: &Keyed) -> Result<bool, NodeError> {
        Ok(self
            .state()
            .idempotency_record(&keyed.key)?
            .is_some_and(|r| r.fingerprint != keyed.fingerprint))
    }

    /// Waits until this node's state holds every write committed before the call
    /// (linearizable reads). Every public read below starts with it.
    ///
    /// Inside a [`request_scope`] (every HTTP request), only the first barrier of the request
    /// runs a ReadIndex round: a barrier that completed after the request arrived already makes
    /// every later read of the same request linearizable, so the others return at once. Those
    /// rounds are counted ([`KmsNode::request_barriers`]).
    pub async fn read_barrier(&self) -> Result<(), NodeError> {
        let in_request = REQUEST_BARRIER.try_with(|done| done.get());
        match in_request {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.store.read_barrier().await?;
                self.request_barriers.fetch_add(1, Ordering::Relaxed);
                let _ = REQUEST_BARRIER.try_with(|done| done.set(true));
                Ok(())
            }
            Err(_) => Ok(self.store.read_barrier().await?),
        }
    }

    /// ReadIndex rounds made for HTTP requests since the start (at most one per request).
    pub fn request_barriers(&self) -> u64 {
        self.request_barriers.load(Ordering::Relaxed)
    }

    /// Flushes the state machine to disk (on a clean shutdown).
    pub fn flush_state(&self) -> Result<(), NodeError> {
        Ok(self.state().flush()?)
    }

    /// The replicated state as this node has applied it (read after a barrier).
    pub(crate) fn state(&self) -> &StateMachine {
        self.store.state()
    }

    /// The key store (Raft) behind this node.
    pub fn store(&self) -> &KeyStoreHandle {
        &self.store
    }

    /// The community a request addressed to `host` selects (TS 33.180 roots the interface per
    /// domain: each community's KMS URI is its own DNS name), or the default one, read
    /// linearizably.
    pub async fn community_for_host(&self, host: Option<&str>) -> Result<Community, NodeError> {
        self.read_barrier().await?;
        self.community_for_host_local(host)
    }

    /// [`KmsNode::community_for_host`] as this node has applied it (callers hold a read
    /// barrier made for this request).
    pub fn community_for_host_local(&self, host: Option<&str>) -> Result<Community, NodeError> {
        self.community_local(&self.kms_uri_for_host(host))
    }

    /// The KMS URI a request addressed to `host` selects, from the configuration alone (no
    /// read of the replicated state).
    pub fn kms_uri_for_host(&self, host: Option<&str>) -> String {
        host.map(|h| strip_port(h).to_ascii_lowercase())
            .and_then(|h| self.hosts.get(&h).cloned())
            .unwrap_or_else(|| self.default_community.clone())
    }

    /// A community, read linearizably.
    pub async fn community(&self, kms_uri: &str) -> Result<Community, NodeError> {
        self.read_barrier().await?;
        self.community_local(kms_uri)
    }

    /// A community as this node has applied it (callers hold a read barrier).
    fn community_local(&self, kms_uri: &str) -> Result<Community, NodeError> {
        self.state()
            .community(kms_uri)?
            .ok_or_else(|| KmsError::UnknownCommunity(kms_uri.to_owned()).into())
    }

    /// Every community, read linearizably.
    pub async fn communities(&self) -> Result<Vec<Community>, NodeError> {
        self.read_barrier().await?;
        Ok(self.state().communities()?)
    }

    /// The unsealed master secrets of a certificate (cached per certificate).
    fn masters(&self, cert: &Certificate) -> Result<Arc<MasterSecrets>, NodeError> {
        let mut m = self.masters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ms) = m.get(&cert.cert_uri) {
            return Ok(ms.clone());
        }
        let ms = Arc::new(MasterSecrets::unseal(
            &self.barrier,
            &master_aad(&cert.cert_uri),
            &cert.sealed_master,
        )?);
        m.insert(cert.cert_uri.clone(), ms.clone());
        Ok(ms)
    }

    /// The key set of `identity` for `period` (default: the one current at `now_unix`). Checks
    /// revocation and the period window; a cache miss goes through admission control. The one
    /// time `now_unix` decides the window, the default period and the issuing certificate.
    ///
    /// Nothing is audited here: the caller renders its answer first and then records the
    /// delivery with [`KmsNode::audit_delivery`] before sending it (a delivery that cannot be
    /// audited is not made; an answer that cannot be rendered is never audited as delivered).
    /// `community` must come from a linearizable read ([`KmsNode::community_for_host`]) made
    /// for this request: the revocation check below reads the same applied state.
    pub async fn key_set(
        self: &Arc<Self>,
        community: &Community,
        identity: &str,
        period: Option<u64>,
        now_unix: u64,
    ) -> Result<Arc<KeySet>, NodeError> {
        if self
            .state()
            .revocation(&community.kms_uri, identity)?
            .is_some()
        {
            return Err(KmsError::IdentityRevoked.into());
        }
        let current = community
            .period
            .period_at_unix(now_unix)
            .ok_or(KmsError::BadTime)?;
        let (first, last) = (
            current.saturating_sub(self.periods_before),
            current.saturating_add(self.periods_after),
        );
        let requested = period.unwrap_or(current);
        if requested < first || requested > last {
            return Err(KmsError::PeriodOutOfWindow {
                requested,
                first,
                last,
            }
            .into());
        }
        let cert = community.issuing_certificate(now_unix)?.clone();
        let cached = self.cache.get(&cert.cert_uri, identity, requested);
        self.metrics.cache(cached.is_some());
        let set = match cached {
            Some(s) => s,
            None => {
                let _permit = self
                    .admission
                    .try_admit(identity, self.started.elapsed())
                    .map_err(NodeError::Shed)?;
                let masters = self.masters(&cert)?;
                let community = community.clone();
                let identity_owned = identity.to_owned();
                let started = std::time::Instant::now();
                // About a millisecond of CPU: off the async workers.
                let set = actix_web::rt::task::spawn_blocking(move || {
                    issue_key_set(&community, &cert, &masters, &identity_owned, requested)
                })
                .await
                .map_err(|e| NodeError::Internal(format!("issuance task failed: {e}")))??;
                self.metrics.issuance(started.elapsed().as_secs_f64());
                let set = Arc::new(set);
                self.cache.insert(set.clone());
                set
            }
        };
        Ok(set)
    }

    /// Records the delivery of `set` to `actor`; an error means the delivery must not be made.
    /// Resolves once a record of this exposure is synced: the first delivery of `set` to
    /// `actor` in this process waits for its own record, a repeat is recorded without waiting
    /// (see `audit::exposure`).
    pub async fn audit_delivery(&self, set: &KeySet, actor: &Actor) -> Result<(), NodeError> {
        self.audit
            .record_exposure(AuditEvent {
                kind: AuditKind::KeySetDelivered,
                actor: actor.0.clone(),
                identity: Some(set.user_uri.clone()),
                key_period: Some(set.period_no),
                community: Some(set.kms_uri.clone()),
                detail: Some(set.cert_uri.clone()),
            })
            .await
            .map_err(|e| NodeError::Internal(format!("audit: {e}")))
    }

    /// Creates a new certificate for `kms_uri` (first certificate or rotation): fresh master
    /// secrets, sealed before proposing. The previous certificate stays valid until its ValidTo.
    pub async fn rotate_certificate(
        &self,
        kms_uri: &str,
        validity_s: u64,
        actor: &Actor,
    ) -> Result<String, NodeError> {
        self.rotate_certificate_keyed(kms_uri, validity_s, actor, None)
            .await
    }

    /// A rotation (or first certificate); with an `idempotency_key`, a repeat of the same
    /// request answers the certificate the first one created.
    pub async fn rotate_certificate_keyed(
        &self,
        kms_uri: &str,
        validity_s: u64,
        actor: &Actor,
        idempotency_key: Option<&str>,
    ) -> Result<String, NodeError> {
        let keyed = idempotency_key.map(|k| {
            Keyed::new(
                actor,
                k,
                &[
                    b"rotate-certificate",
                    kms_uri.as_bytes(),
                    &validity_s.to_be_bytes(),
                ],
            )
        });
        let community = self.community(kms_uri).await?;
        if let Some(k) = &keyed {
            if let Some(rec) = self.state().idempotency_record(&k.key)? {
                return recorded_certificate(&rec, k, kms_uri);
            }
        }
        let (serial, cert_uri) = community.next_cert_uri();
        let masters = MasterSecrets::generate(&self.rng)?;
        let sealed_master = masters.seal(&self.barrier, &master_aad(&cert_uri), &self.rng)?;
        let now = self.now();
        let certificate = Certificate {
            serial,
            cert_uri: cert_uri.clone(),
            valid_from_unix: now,
            valid_to_unix: now.saturating_add(validity_s),
            revoked: false,
            pub_enc_key: masters.z_pub.to_bytes(),
            pub_auth_key: masters.kpak.to_bytes().to_vec(),
            sealed_master,
        };
        let add = Command::AddCertificate {
            kms_uri: kms_uri.to_owned(),
            certificate,
        };
        self.propose_ok(Keyed::wrap(keyed.as_ref(), add)).await?;
        if let Some(k) = &keyed {
            // An earlier attempt with this key committed after all: this one wrote nothing.
            if let Some(rec) = self.state().idempotency_record(&k.key)? {
                let first = recorded_certificate(&rec, k, kms_uri)?;
                if first != cert_uri {
                    return Ok(first);
                }
            }
        }
        let kind = if serial == 1 {
            AuditKind::CertificateCreated
        } else {
            AuditKind::CertificateRotated
        };
        self.audit_admin(kind, actor, None, kms_uri, Some(cert_uri.clone()));
        Ok(cert_uri)
    }

    pub async fn revoke_certificate(
        &self,
        kms_uri: &str,
        cert_uri: &str,
        actor: &Actor,
        idempotency_key: Option<&str>,
    ) -> Result<(), NodeError> {
        let keyed = idempotency_key.map(|k| {
            Keyed::new(
                actor,
                k,
                &[
                    b"revoke-certificate",
                    kms_uri.as_bytes(),
                    cert_uri.as_bytes(),
                ],
            )
        });
        if self.replayed(keyed.as_ref()).await? {
            return Ok(());
        }
        self.check_revoke_certificate(kms_uri, cert_uri).await?;
        let revoke = Command::RevokeCertificate {
            kms_uri: kms_uri.to_owned(),
            cert_uri: cert_uri.to_owned(),
        };
        self.propose_keyed(keyed.as_ref(), revoke).await?;
        self.cache.purge(|s| s.cert_uri == cert_uri);
        self.masters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(cert_uri);
        self.audit_admin(
            AuditKind::CertificateRevoked,
            actor,
            None,
            kms_uri,
            Some(cert_uri.to_owned()),
        );
        Ok(())
    }

    pub async fn revoke_identity(
        &self,
        kms_uri: &str,
        identity: &str,
        reason: &str,
        actor: &Actor,
        idempotency_key: Option<&str>,
    ) -> Result<(), NodeError> {
        let keyed = idempotency_key.map(|k| {
            Keyed::new(
                actor,
                k,
                &[
                    b"revoke-identity",
                    kms_uri.as_bytes(),
                    identity.as_bytes(),
                    reason.as_bytes(),
                ],
            )
        });
        if self.replayed(keyed.as_ref()).await? {
            return Ok(());
        }
        self.check_revoke_identity(kms_uri, identity, reason)
            .await?;
        let at_unix = self.now();
        let revoke = Command::RevokeIdentity {
            kms_uri: kms_uri.to_owned(),
            identity: identity.to_owned(),
            at_unix,
            reason: reason.to_owned(),
        };
        self.propose_keyed(keyed.as_ref(), revoke).await?;
        self.cache
            .purge(|s| s.kms_uri == kms_uri && s.user_uri == identity);
        self.audit_admin(
            AuditKind::IdentityRevoked,
            actor,
            Some(identity),
            kms_uri,
            Some(reason.to_owned()),
        );
        Ok(())
    }

    pub async fn reinstate_identity(
        &self,
        kms_uri: &str,
        identity: &str,
        actor: &Actor,
        idempotency_key: Option<&str>,
    ) -> Result<(), NodeError> {
        let keyed = idempotency_key.map(|k| {
            Keyed::new(
                actor,
                k,
                &[
                    b"reinstate-identity",
                    kms_uri.as_bytes(),
                    identity.as_bytes(),
                ],
            )
        });
        if self.replayed(keyed.as_ref()).await? {
            return Ok(());
        }
        self.check_reinstate_identity(kms_uri, identity).await?;
        let reinstate = Command::ReinstateIdentity {
            kms_uri: kms_uri.to_owned(),
            identity: identity.to_owned(),
        };
        self.propose_keyed(keyed.as_ref(), reinstate).await?;
        self.audit_admin(
            AuditKind::IdentityReinstated,
            actor,
            Some(identity),
            kms_uri,
            None,
        );
        Ok(())
    }

    /// Audits a committed change. The change is already durable, so a failing audit writer is
    /// logged loudly rather than turned into a failed request.
    pub(super) fn audit_admin(
        &self,
        kind: AuditKind,
        actor: &Actor,
        identity: Option<&str>,
        kms_uri: &str,
        detail: Option<String>,
    ) {
        // Queued without waiting for the disk (exits flush the queue).
        let res = self.audit.submit(AuditEvent {
            kind,
            actor: actor.0.clone(),
            identity: identity.map(str::to_owned),
            key_period: None,
            community: Some(kms_uri.to_owned()),
            detail,
        });
        if let Err(e) = res.map(drop) {
            tracing::error!(node = %self.node_id, error = %e, "audit record failed");
        }
    }

    /// Drops the unsealed master secrets, and the cached key sets, of every certificate this
    /// node's applied state shows revoked — also when another node proposed the revocation.
    /// Reads the local state (no barrier: it acts on what was applied). Returns how many
    /// certificates' secrets were dropped.
    pub fn forget_revoked_masters(&self) -> Result<usize, NodeError> {
        if self
            .masters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            return Ok(0);
        }
        let revoked: std::collections::HashSet<String> = self
            .state()
            .communities()?
            .into_iter()
            .flat_map(|c| c.certificates)
            .filter(|c| c.revoked)
            .map(|c| c.cert_uri)
            .collect();
        let mut m = self.masters.lock().unwrap_or_else(|p| p.into_inner());
        let before = m.len();
        m.retain(|uri, _| !revoked.contains(uri));
        let dropped = before - m.len();
        drop(m);
        if dropped > 0 {
            self.cache.purge(|s| revoked.contains(&s.cert_uri));
        }
        Ok(dropped)
    }

    /// The certificates whose master secrets this node holds unsealed.
    pub fn unsealed_certificates(&self) -> Vec<String> {
        let m = self.masters.lock().unwrap_or_else(|p| p.into_inner());
        m.keys().cloned().collect()
    }

    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    pub fn admission_inflight(&self) -> usize {
        self.admission.inflight()
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split(']')
            .next()
            .map(|h| h.trim_start_matches('['))
            .unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}
