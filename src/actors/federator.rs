//! The Federator (KM-E, our extension: `../spec/FEDERATION.md` §4), an actix actor on its own
//! arbiter under an [`actix::Supervisor`]. On the leader only, it fetches every configured
//! partner's current KMS certificates from the partner's KM-E listener
//! (`GET /km-e/v1/certificates`, mutual TLS: our KM-E client certificate, the partner's pinned
//! CA) and hands them to [`crate::node::Federation::take_offer`]: new or changed certificates
//! are staged until an operator approves them (`sealkm federation approve`); certificates the
//! partner revoked are revoked here within one refresh; a certificate for a KMS URI the partner
//! does not own, or one that fails the import checks, is refused and nothing is written.
//!
//! When it refreshes: at once when its node becomes the leader, then every `refresh_s`
//! seconds, and when sent [`Refresh`]. Refreshes never overlap. A refresh also delivers the
//! due versions of the groups shared with each partner (KM-E federated groups: in order,
//! each acknowledgement recorded through Raft, so a new leader resumes); between refreshes a
//! commit (the applied index grew) starts a delivery pass [`DELIVERY_GAP`] later. It keeps, per partner, the
//! time of the last good refresh, the last error and the failure count ([`Status`]); that is
//! all its state, so a restart is safe.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::watch;

use super::progress::{self, Progress};
use crate::config::{FederationConfig, PartnerConfig};
use crate::node::core::Actor as Who;
use crate::node::federated_status::{FederatedKeyStatus, StatusAnswer, StatusBatch, StatusResult};
use crate::node::federation::OfferTaken;
use crate::node::KmsNode;
use crate::store::StoreProgress;

/// Largest KM-E answer read from a partner.
pub const MAX_OFFER_BYTES: usize = 256 * 1024;
/// How long one fetch from a partner may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest time between two delivery passes caused by commits.
pub const DELIVERY_GAP: Duration = Duration::from_millis(20);
/// How long a restarted Federator waits before it acts again.
pub const RESTART_DELAY: Duration = Duration::from_secs(1);

pub use crate::kms::partner::rotation::Offer;

/// The Federator's view of one partner.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartnerStatus {
    /// When a refresh of this partner last succeeded (Unix seconds).
    pub last_sync_unix: Option<u64>,
    /// Why the last refresh failed, if it did.
    pub last_error: Option<String>,
    /// Failed refreshes since the start.
    pub failures: u64,
    /// Federated group key versions this partner acknowledged since the start.
    pub delivered: u64,
    /// What the last successful refresh did.
    pub staged: Vec<String>,
    pub approved: Vec<String>,
    pub revoked: Vec<String>,
    pub refused: Vec<String>,
}

/// Refresh every partner now, if this node leads; answered with each partner's status.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Refreshed")]
pub struct Refresh;

/// What a [`Refresh`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// This node does not lead: nothing fetched.
    NotLeader,
    Done(BTreeMap<String, PartnerStatus>),
}

/// Every partner's status.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "BTreeMap<String, PartnerStatus>")]
pub struct Status;

/// The Federator; start it with [`start`].
pub struct Federator {
    node: Arc<KmsNode>,
    cfg: Arc<FederationConfig>,
    /// Each partner's client TLS config (its pinned CA, our KM-E client certificate).
    tls: Vec<(PartnerConfig, Arc<rustls::ClientConfig>)>,
    /// One HTTPS client per partner, made on the actor's own thread (awc is not `Send`).
    clients: std::rc::Rc<Vec<(PartnerConfig, awc::Client)>>,
    progress_rx: watch::Receiver<StoreProgress>,
    progress: Option<StoreProgress>,
    status: BTreeMap<String, PartnerStatus>,
    timer: Option<SpawnHandle>,
    /// The pending delivery pass after a commit.
    delivery: Option<SpawnHandle>,
    /// The status of each delivered version the partner last acknowledged, while this node
    /// leads (not replicated: a new leader reports every status once again, idempotent).
    reported: Reported,
    restarts: u32,
}

/// The client TLS config towards each partner: our KM-E client certificate, its pinned CA.
pub fn partner_tls(
    cfg: &FederationConfig,
) -> Result<Vec<(PartnerConfig, Arc<rustls::ClientConfig>)>, crate::tls::TlsError> {
    cfg.partners
        .iter()
        .map(|p| {
            let tls = crate::tls::peer_client_config(&cfg.client_cert, &cfg.client_key, &p.ca)?;
            Ok((p.clone(), Arc::new(tls)))
        })
        .collect()
}

/// Starts the Federator of `node` on `arbiter`, following `progress`.
pub fn start(
    node: Arc<KmsNode>,
    cfg: Arc<FederationConfig>,
    tls: Vec<(PartnerConfig, Arc<rustls::ClientConfig>)>,
    progress: watch::Receiver<StoreProgress>,
    arbiter: &actix_rt::ArbiterHandle,
) -> Addr<Federator> {
    Supervisor::start_in_arbiter(arbiter, move |_| Federator {
        node,
        cfg,
        clients: std::rc::Rc::new(clients_for(&tls)),
        tls,
        progress_rx: progress,
        progress: None,
        status: BTreeMap::new(),
        timer: None,
        delivery: None,
        reported: Reported::default(),
        restarts: 0,
    })
}

impl Actor for Federator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.restarts == 0 {
            self.listen(ctx);
        } else {
            ctx.run_later(RESTART_DELAY, |act, ctx| act.listen(ctx));
        }
    }
}

impl Supervised for Federator {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("federator: restarting");
        self.restarts = self.restarts.saturating_add(1);
        self.progress = None;
        self.timer = None;
        self.delivery = None;
        self.reported = Reported::default();
        self.clients = std::rc::Rc::new(clients_for(&self.tls));
    }
}

impl Handler<Progress> for Federator {
    type Result = ();

    fn handle(&mut self, Progress(p): Progress, ctx: &mut Context<Self>) {
        self.progressed(p, ctx);
    }
}

impl Handler<Refresh> for Federator {
    type Result = AtomicResponse<Self, Refreshed>;

    fn handle(&mut self, _: Refresh, ctx: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(self.refresh(ctx))
    }
}

impl Handler<Status> for Federator {
    type Result = MessageResult<Status>;

    fn handle(&mut self, _: Status, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status.clone())
    }
}

fn clients_for(
    tls: &[(PartnerConfig, Arc<rustls::ClientConfig>)],
) -> Vec<(PartnerConfig, awc::Client)> {
    tls.iter()
        .map(|(p, t)| {
            let client = awc::Client::builder()
                .connector(awc::Connector::new().rustls_0_23(t.clone()))
                .timeout(FETCH_TIMEOUT)
                .finish();
            (p.clone(), client)
        })
        .collect()
}

/// Sends every due version of the groups shared with `partner`, in order per group, and
/// records each acknowledgement through Raft (a new leader resumes after the last one; a
/// version sent twice is acknowledged again by the partner, idempotent by GMK-ID). Stops at
/// the first failure (the rest is sent at the next refresh). Returns how many were sent.
async fn deliver(
    node: &KmsNode,
    community: Option<&str>,
    partner: &PartnerConfig,
    client: &awc::Client,
    who: &Who,
) -> Result<u64, String> {
    let due = node
        .federation
        .wrap_due(community, partner)
        .await
        .map_err(|e| e.to_string())?;
    let mut sent = 0;
    for body in due {
        post_json(client, partner, "/km-e/v1/group-keys", &body)
            .await
            .map_err(|e| format!("{} version {}: {e}", body.group_id, body.version))?;
        node.federation
            .note_delivered(&partner.kms_uri, &body.group_id, body.version, who)
            .await
            .map_err(|e| e.to_string())?;
        sent += 1;
    }
    Ok(sent)
}

/// POSTs `body` as JSON to `path` of `partner`'s KM-E and reads its answer (at most
/// [`MAX_OFFER_BYTES`]); a non-2xx answer is an error with its status and the start of its
/// body.
async fn post_json<T: serde::Serialize>(
    client: &awc::Client,
    partner: &PartnerConfig,
    path: &str,
    body: &T,
) -> Result<actix_web::web::Bytes, String> {
    let url = format!("{}{path}", partner.url.trim_end_matches('/'));
    let mut resp = client
        .post(&url)
        .send_json(body)
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        return resp
            .body()
            .limit(MAX_OFFER_BYTES)
            .await
            .map_err(|e| e.to_string());
    }
    let text = resp.body().limit(4096).await.unwrap_or_default();
    Err(format!(
        "HTTP {}: {}",
        resp.status(),
        String::from_utf8_lossy(&text)
    ))
}

/// Statuses acknowledged by each partner, keyed by (partner, group, version).
type Reported =
    std::rc::Rc<std::cell::RefCell<BTreeMap<(String, String, u32), FederatedKeyStatus>>>;

/// Reports to `partner` the status (revoked, expiry) of every delivered version whose status
/// changed since it last acknowledged one (all of them after a restart or a new leader), in
/// one `POST /km-e/v1/group-key-status`. A status the partner refuses for good is not sent
/// again (until a restart or a new leader): returns those refusals.
async fn report_status(
    node: &KmsNode,
    partner: &PartnerConfig,
    client: &awc::Client,
    reported: &Reported,
) -> Result<Vec<String>, String> {
    let now = node
        .federation
        .delivered_status(partner)
        .await
        .map_err(|e| e.to_string())?;
    let key = |s: &FederatedKeyStatus| (partner.kms_uri.clone(), s.group_id.clone(), s.version);
    let changed: Vec<FederatedKeyStatus> = {
        let seen = reported.borrow();
        now.into_iter()
            .filter(|s| seen.get(&key(s)) != Some(s))
            .collect()
    };
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let body = StatusBatch { statuses: changed };
    let answer = post_json(client, partner, "/km-e/v1/group-key-status", &body)
        .await
        .map_err(|e| format!("status: {e}"))?;
    let answer: StatusAnswer =
        serde_json::from_slice(&answer).map_err(|e| format!("status answer: {e}"))?;
    if answer.results.len() != body.statuses.len() {
        return Err(format!(
            "status answer: {} results for {} statuses",
            answer.results.len(),
            body.statuses.len()
        ));
    }
    let mut seen = reported.borrow_mut();
    let mut refused = Vec::new();
    for (s, r) in body.statuses.iter().zip(answer.results) {
        seen.insert(key(s), s.clone());
        if let StatusResult::Refused(why) = r {
            refused.push(format!("status of {}", why));
        }
    }
    Ok(refused)
}

/// Fetches `partner`'s offer.
async fn fetch(partner: &PartnerConfig, client: &awc::Client) -> Result<Offer, String> {
    let url = format!("{}/km-e/v1/certificates", partner.url.trim_end_matches('/'));
    let mut resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let body = resp
        .body()
        .limit(MAX_OFFER_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let offer: Offer = serde_json::from_slice(&body).map_err(|e| format!("offer: {e}"))?;
    if offer.kms_uri != partner.kms_uri {
        return Err(format!(
            "the partner answered as {}, not {}",
            offer.kms_uri, partner.kms_uri
        ));
    }
    Ok(offer)
}

impl Federator {
    fn listen(&mut self, ctx: &mut Context<Self>) {
        let mut rx = self.progress_rx.clone();
        let now = *rx.borrow_and_update();
        ctx.add_message_stream(progress::paced(rx, now, progress::PACE));
        self.progressed(now, ctx);
    }

    fn progressed(&mut self, p: StoreProgress, ctx: &mut Context<Self>) {
        let was = self.progress.replace(p);
        if !p.role.is_leader() {
            self.cancel_timer(ctx);
            self.reported.borrow_mut().clear();
            return;
        }
        let same_term = was.is_some_and(|w| w.role.is_leader() && w.term == p.term);
        if !same_term {
            let refresh = self.refresh(ctx).map(|_, _, _| ());
            ctx.wait(refresh);
        } else if was.is_some_and(|w| p.applied > w.applied) && self.shares_groups() {
            // A commit may be a new version of a shared group: deliver soon (one pass per
            // DELIVERY_GAP at most; commits meanwhile are covered by the pending pass).
            if self.delivery.is_none() {
                self.delivery = Some(ctx.run_later(DELIVERY_GAP, |act, ctx| {
                    act.delivery = None;
                    let pass = act.deliver_pass().map(|_, _, _| ());
                    ctx.wait(pass);
                }));
            }
        }
    }

    fn shares_groups(&self) -> bool {
        self.cfg.partners.iter().any(|p| !p.share_groups.is_empty())
    }

    /// Delivers the due versions of every partner's shared groups (no certificate fetch).
    fn deliver_pass(&mut self) -> ResponseActFuture<Self, ()> {
        if !self.progress.is_some_and(|p| p.role.is_leader()) {
            return Box::pin(actix::fut::ready(()));
        }
        let node = self.node.clone();
        let clients = self.clients.clone();
        let community = self.cfg.community.clone();
        let reported = self.reported.clone();
        let work = async move {
            let who = Who("km-e federator".into());
            let mut out = Vec::new();
            for (partner, client) in clients.iter() {
                if partner.share_groups.is_empty() {
                    continue;
                }
                let res = match deliver(&node, community.as_deref(), partner, client, &who).await {
                    Ok(n) => report_status(&node, partner, client, &reported)
                        .await
                        .map(|refused| {
                            if !refused.is_empty() {
                                tracing::warn!(partner = %partner.kms_uri, ?refused, "KM-E: statuses refused by the partner");
                            }
                            n
                        }),
                    Err(e) => Err(e),
                };
                out.push((partner.kms_uri.clone(), res));
            }
            out
        };
        Box::pin(work.into_actor(self).map(|results, act, _| {
            for (partner, res) in results {
                let s = act.status.entry(partner.clone()).or_default();
                match res {
                    Ok(n) => s.delivered = s.delivered.saturating_add(n),
                    Err(e) => {
                        tracing::warn!(%partner, error = %e, "KM-E: group key delivery failed");
                        s.last_error = Some(format!("group key delivery: {e}"));
                        s.failures = s.failures.saturating_add(1);
                        act.node.metrics.federation_failed(&partner);
                    }
                }
            }
        }))
    }

    /// One refresh of every partner (on the leader), then the next one `refresh_s` later.
    fn refresh(&mut self, ctx: &mut Context<Self>) -> ResponseActFuture<Self, Refreshed> {
        self.cancel_timer(ctx);
        if !self.progress.is_some_and(|p| p.role.is_leader()) {
            return Box::pin(actix::fut::ready(Refreshed::NotLeader));
        }
        let node = self.node.clone();
        let clients = self.clients.clone();
        let community = self.cfg.community.clone();
        let reported = self.reported.clone();
        let work = async move {
            let who = Who("km-e federator".into());
            let mut out: Vec<(String, Result<OfferTaken, String>)> = Vec::new();
            for (partner, client) in clients.iter() {
                let res = match fetch(partner, client).await {
                    Ok(offer) => node
                        .federation
                        .take_offer(partner, &offer, &who)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                let res = match res {
                    Ok(mut taken) => {
                        match deliver(&node, community.as_deref(), partner, client, &who).await {
                            Ok(n) => {
                                taken.delivered = n;
                                match report_status(&node, partner, client, &reported).await {
                                    Ok(refused) => {
                                        taken.refused.extend(refused);
                                        Ok(taken)
                                    }
                                    Err(e) => Err(format!("group key status: {e}")),
                                }
                            }
                            Err(e) => Err(format!("group key delivery: {e}")),
                        }
                    }
                    Err(e) => Err(e),
                };
                out.push((partner.kms_uri.clone(), res));
            }
            out
        };
        Box::pin(work.into_actor(self).map(|results, act, ctx| {
            let now = act.node.now();
            for (partner, res) in results {
                let s = act.status.entry(partner.clone()).or_default();
                match res {
                    Ok(t) => {
                        if !t.refused.is_empty() {
                            tracing::warn!(%partner, refused = ?t.refused, "KM-E: partner certificates refused");
                        }
                        act.node
                            .metrics
                            .federation_synced(&partner, now, t.staged.len() as u64);
                        s.last_sync_unix = Some(now);
                        s.last_error = None;
                        s.delivered = s.delivered.saturating_add(t.delivered);
                        s.staged = t.staged;
                        s.approved = t.approved;
                        s.revoked = t.revoked;
                        s.refused = t.refused;
                    }
                    Err(e) => {
                        tracing::warn!(%partner, error = %e, "KM-E: partner refresh failed");
                        act.node.metrics.federation_failed(&partner);
                        s.last_error = Some(e);
                        s.failures = s.failures.saturating_add(1);
                    }
                }
            }
            let every = Duration::from_secs(act.cfg.refresh_s);
            act.timer = Some(ctx.run_later(every, |act, ctx| {
                act.timer = None;
                let refresh = act.refresh(ctx).map(|_, _, _| ());
                ctx.wait(refresh);
            }));
            Refreshed::Done(act.status.clone())
        }))
    }

    fn cancel_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.timer.take() {
            ctx.cancel_future(handle);
        }
    }
}
