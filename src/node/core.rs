//! [`NodeCore`]: what every service of a node shares, and the node's error type.
//!
//! Write path: a service generates and seals what a command needs, then the command is
//! proposed to the [`KeyStoreHandle`] (Raft) and the call returns once it is applied on this
//! node. Read path: every read of the replicated state starts with a linearizable read
//! barrier (ReadIndex; at most one round per HTTP request), so a partitioned or lagging node
//! answers "unavailable" instead of serving old state.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::store::{KeyStoreHandle, StoreError};

use ring::rand::SystemRandom;
use thiserror::Error;

use super::admission::Shed;
use super::groups::Keyed;
use crate::audit::{AuditEvent, AuditKind, AuditLog};
use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::crypto::seal::BarrierKey;
use crate::crypto::CryptoError;
use crate::kms::community::Community;
use crate::kms::KmsError;
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
    /// This node's clock is too far from the leader's, or unknown (the clock-skew rule,
    /// [`NodeCore::check_clock`]): time-dependent keys are not issued here (503).
    #[error("this node's clock is {0}")]
    ClockSkew(String),
    /// The key store refused a step of a request after an earlier step of the same request
    /// was proposed (and may have committed): unlike [`NodeError::Unavailable`] with a
    /// refusal before proposal ([`StoreError::not_proposed`]), the request's effect is unknown.
    #[error("cluster unavailable after an earlier write of this request: {0}")]
    AfterProposal(StoreError),
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

/// How recent the leader's clock stamp must be for [`NodeCore::check_clock`].
pub const CLOCK_STAMP_MAX_AGE_MS: u64 = 5_000;

tokio::task_local! {
    /// Whether the current HTTP request already made its read barrier.
    static REQUEST_BARRIER: Cell<bool>;
    /// Whether the current HTTP request has proposed anything yet (see [`NodeCore::refused`]).
    static REQUEST_PROPOSED: Cell<bool>;
}

/// Runs `fut` (one HTTP request) so that it makes at most one read barrier (see
/// [`NodeCore::read_barrier`]) and so that a refusal says whether the request proposed
/// anything before it (see [`NodeCore::propose`]).
pub async fn request_scope<F: std::future::Future>(fut: F) -> F::Output {
    REQUEST_PROPOSED
        .scope(
            Cell::new(false),
            REQUEST_BARRIER.scope(Cell::new(false), fut),
        )
        .await
}

/// The error for a key store refusal `e` in the current request: a refusal before proposal
/// ([`StoreError::not_proposed`]) after an earlier proposal of the same request is
/// [`NodeError::AfterProposal`]; anything else (and anything outside a request: background
/// tasks answer nobody) is [`NodeError::Unavailable`].
fn refused(e: StoreError) -> NodeError {
    let proposed_before = REQUEST_PROPOSED.try_with(Cell::get).unwrap_or(false);
    if e.not_proposed() && proposed_before {
        NodeError::AfterProposal(e)
    } else {
        NodeError::Unavailable(e)
    }
}

/// A proposal's result as [`NodeCore::propose`] returns it; unless it was refused before
/// proposal, the current request is marked as having proposed.
fn noted(r: Result<Outcome, StoreError>) -> Result<Outcome, NodeError> {
    let proposed = !matches!(&r, Err(e) if e.not_proposed());
    let r = r.map_err(refused);
    if proposed {
        let _ = REQUEST_PROPOSED.try_with(|p| p.set(true));
    }
    r
}

/// Who asked (for the audit trail).
#[derive(Debug, Clone)]
pub struct Actor(pub String);

/// What every service of a node shares: the key store (propose, read barrier, the applied
/// state), the barrier key, the audit trail, the clock, the host → community map and the
/// metrics. The services ([`super::KmsNode`]'s fields) reach it through `Deref`.
pub struct NodeCore {
    pub(crate) node_id: String,
    pub(crate) store: KeyStoreHandle,
    pub(crate) barrier: BarrierKey,
    pub(super) audit: AuditLog,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: SystemRandom,
    /// host name (lower case) → kms_uri
    hosts: HashMap<String, String>,
    default_community: String,
    /// Each configured community's KMS URI and the user URI domains it serves, in config order.
    domains: Vec<(String, Vec<String>)>,
    /// KM-E: group ids imported from partners (read-only here).
    imported_groups: Vec<String>,
    pub metrics: super::metrics::Metrics,
    /// ReadIndex rounds made for HTTP requests ([`NodeCore::read_barrier`]).
    request_barriers: AtomicU64,
    /// `[raft] max_clock_skew_ms` (the clock-skew rule; `None`: a cluster of one).
    max_clock_skew_ms: Option<u64>,
}

impl NodeCore {
    pub(super) fn new(
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
            audit,
            clock,
            rng: SystemRandom::new(),
            hosts,
            default_community,
            domains: cfg
                .communities
                .iter()
                .map(|c| (c.kms_uri.clone(), c.domains()))
                .collect(),
            imported_groups: cfg
                .federation
                .iter()
                .flat_map(|f| f.partners.iter().flat_map(|p| p.accept_groups.clone()))
                .collect(),
            metrics: Default::default(),
            request_barriers: AtomicU64::new(0),
            max_clock_skew_ms: cfg.raft.as_ref().map(|r| r.max_clock_skew_ms),
        }
    }

    pub fn now(&self) -> u64 {
        self.clock.now_unix()
    }

    /// Proposes a command and waits until it is applied on this node.
    ///
    /// Within a request ([`request_scope`]) a refusal before proposal is
    /// [`NodeError::Unavailable`] (the API answers "not proposed") only while the request has
    /// proposed nothing yet; after a first proposal, whatever its outcome, it is
    /// [`NodeError::AfterProposal`], so a request of several writes never claims it wrote
    /// nothing when an earlier write of it may have committed.
    pub async fn propose(&self, command: Command) -> Result<Outcome, NodeError> {
        noted(self.store.propose(command).await)
    }

    /// Proposes and turns a deterministic refusal into an error.
    pub async fn propose_ok(&self, command: Command) -> Result<(), NodeError> {
        match self.propose(command).await? {
            Outcome::Applied => Ok(()),
            Outcome::Rejected(r) => Err(NodeError::Rejected(r)),
        }
    }

    /// [`NodeCore::propose_ok`] of `command` made idempotent by `keyed`: a repeat of an
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
    pub(super) async fn replayed(&self, keyed: Option<&Keyed>) -> Result<bool, NodeError> {
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
    /// rounds are counted ([`NodeCore::request_barriers`]).
    pub async fn read_barrier(&self) -> Result<(), NodeError> {
        let in_request = REQUEST_BARRIER.try_with(|done| done.get());
        match in_request {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.store.read_barrier().await.map_err(refused)?;
                self.request_barriers.fetch_add(1, Ordering::Relaxed);
                let _ = REQUEST_BARRIER.try_with(|done| done.set(true));
                Ok(())
            }
            Err(_) => Ok(self.store.read_barrier().await.map_err(refused)?),
        }
    }

    /// The clock-skew rule: the leader's clock is the cluster's; a follower serves
    /// time-dependent keys only while the leader's last Raft batch (within
    /// [`CLOCK_STAMP_MAX_AGE_MS`]) showed the two clocks within `[raft] max_clock_skew_ms`.
    /// So no two nodes hand out different "current" key sets for one request time beyond the
    /// bound. A leader, a cluster of one and a node that knows no leader pass (the latter is
    /// refused by its read barrier).
    pub fn check_clock(&self) -> Result<(), NodeError> {
        let Some(bound) = self.max_clock_skew_ms else {
            return Ok(());
        };
        let s = self.store.status();
        if s.leader_id == 0 || s.leader_id == s.id {
            return Ok(());
        }
        match self
            .store
            .peer_clocks()
            .offset(s.leader_id, CLOCK_STAMP_MAX_AGE_MS)
        {
            Some(o) if o.unsigned_abs() <= bound => Ok(()),
            Some(o) => Err(NodeError::ClockSkew(format!(
                "{} ms {} the leader's (node {}), beyond the {bound} ms bound",
                o.unsigned_abs(),
                if o > 0 { "behind" } else { "ahead of" },
                s.leader_id
            ))),
            None => Err(NodeError::ClockSkew(format!(
                "not compared with the leader's (node {}) in the last {CLOCK_STAMP_MAX_AGE_MS} ms",
                s.leader_id
            ))),
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
    pub async fn community_for_host(
        &self,
        host: Option<&str>,
    ) -> Result<Arc<Community>, NodeError> {
        self.read_barrier().await?;
        self.community_for_host_local(host)
    }

    /// [`NodeCore::community_for_host`] as this node has applied it (callers hold a read
    /// barrier made for this request).
    pub fn community_for_host_local(
        &self,
        host: Option<&str>,
    ) -> Result<Arc<Community>, NodeError> {
        self.community_local(&self.kms_uri_for_host(host))
    }

    /// The KMS URI a request addressed to `host` selects, from the configuration alone (no
    /// read of the replicated state).
    pub fn kms_uri_for_host(&self, host: Option<&str>) -> String {
        host.map(|h| strip_port(h).to_ascii_lowercase())
            .and_then(|h| self.hosts.get(&h).cloned())
            .unwrap_or_else(|| self.default_community.clone())
    }

    /// The user URI domains community `kms_uri` serves (its `KmsDomainList`), from the config.
    pub fn kms_domains(&self, kms_uri: &str) -> &[String] {
        self.domains
            .iter()
            .find(|(k, _)| k == kms_uri)
            .map_or(&[], |(_, d)| d.as_slice())
    }

    /// Refuses a change to a group imported from a partner over KM-E (read-only here: its
    /// versions come only from the partner).
    pub fn refuse_imported(&self, group_id: &str) -> Result<(), NodeError> {
        if self.imported_groups.iter().any(|g| g == group_id) {
            return Err(NodeError::Forbidden(format!(
                "group {group_id} is imported from a partner domain: read-only here"
            )));
        }
        Ok(())
    }

    /// Every configured community with its domains, in config order.
    pub fn all_kms_domains(&self) -> &[(String, Vec<String>)] {
        &self.domains
    }

    /// A community, read linearizably.
    pub async fn community(&self, kms_uri: &str) -> Result<Arc<Community>, NodeError> {
        self.read_barrier().await?;
        self.community_local(kms_uri)
    }

    /// A community as this node has applied it (callers hold a read barrier).
    fn community_local(&self, kms_uri: &str) -> Result<Arc<Community>, NodeError> {
        self.state()
            .community_shared(kms_uri)?
            .ok_or_else(|| KmsError::UnknownCommunity(kms_uri.to_owned()).into())
    }

    /// Every community, read linearizably.
    pub async fn communities(&self) -> Result<Vec<Community>, NodeError> {
        self.read_barrier().await?;
        Ok(self.state().communities()?)
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
        // Queued without waiting for the disk (synced lazily; exits flush the queue).
        let res = self.audit.queue(AuditEvent {
            kind,
            actor: actor.0.clone(),
            identity: identity.map(str::to_owned),
            key_period: None,
            community: Some(kms_uri.to_owned()),
            detail,
        });
        if let Err(e) = res {
            tracing::error!(node = %self.node_id, error = %e, "audit record failed");
        }
    }

    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
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

#[cfg(test)]
mod tests {
    use super::*;

    fn not_proposed(e: &NodeError) -> bool {
        matches!(e, NodeError::Unavailable(s) if s.not_proposed())
    }

    #[actix_rt::test]
    async fn a_refusal_is_not_proposed_only_before_the_requests_first_proposal() {
        request_scope(async {
            // Refusals before proposal leave the request as it was.
            let e = noted(Err(StoreError::NoLeader)).expect_err("refused");
            assert!(not_proposed(&e));
            let e = noted(Err(StoreError::Busy)).expect_err("refused");
            assert!(not_proposed(&e));
            // A proposal whose commit is unknown is never "not proposed", and marks the
            // request like any other proposal.
            let e = noted(Err(StoreError::Timeout)).expect_err("timed out");
            assert!(matches!(e, NodeError::Unavailable(StoreError::Timeout)));
            let e = noted(Err(StoreError::NoLeader)).expect_err("refused");
            assert!(matches!(e, NodeError::AfterProposal(StoreError::NoLeader)));
        })
        .await;
        request_scope(async {
            assert_eq!(
                noted(Ok(Outcome::Applied)).expect("applied"),
                Outcome::Applied
            );
            let e = refused(StoreError::DiskFull("full".into()));
            assert!(matches!(e, NodeError::AfterProposal(_)));
            let e = refused(StoreError::Timeout);
            assert!(matches!(e, NodeError::Unavailable(StoreError::Timeout)));
        })
        .await;
        // A rejected proposal was proposed too.
        request_scope(async {
            let _ = noted(Ok(Outcome::Rejected("no".into())));
            assert!(matches!(
                refused(StoreError::Busy),
                NodeError::AfterProposal(_)
            ));
        })
        .await;
        // Each request starts afresh; outside a request nothing is tracked.
        request_scope(async { assert!(not_proposed(&refused(StoreError::NoLeader))) }).await;
        assert!(not_proposed(&refused(StoreError::NoLeader)));
    }
}
