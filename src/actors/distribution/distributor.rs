//! The [`Distributor`] actor: the shell around the pure decisions of `distribution` (the HTTP
//! client, the Raft proposals, and when to act). It runs on its own arbiter under an
//! [`actix::Supervisor`].
//!
//! When it acts (there is no fixed poll):
//! - it follows the key store's progress ([`crate::actors::progress`]): when its node becomes
//!   the leader (a new term) it makes a read barrier, handling nothing else meanwhile (retried
//!   [`super::BACKOFF_BASE`] after a failure), then runs a round that also settles every
//!   pending silent ack; while it leads, a round after a commit that appended an event (a
//!   commit of anything else — an ack, a new subscription, which starts after the newest
//!   event — gives no subscriber anything new), and such rounds take at most half of the
//!   actor's time: the next one waits at least as long as the last one took; when its node
//!   stops leading, it forgets its retry state and starts nothing new;
//! - a round for its own subscriber after each finished attempt (after a success the ack is
//!   applied: the next batch may go);
//! - at the earliest retry deadline of its backoff schedule ([`super::Schedule::next_retry`]),
//!   one timer at a time;
//! - when sent [`Round`].
//!
//! A round starts every attempt that is due and returns at once; each attempt runs on the
//! actor's arbiter and reports back as a [`Delivered`] message. All its state is soft (the
//! offsets are replicated), so a restart is safe: a round that cannot read the outbox stops the
//! actor, and its supervisor restarts it with a fresh schedule, acting again
//! [`RESTART_DELAY`] later (attempts in flight are dropped; their events are delivered again).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::watch;

use super::{plan, Backoff, Schedule, Step, ACK_SLACK, BACKOFF_BASE, MAX_BATCH, REQUEST_TIMEOUT};
use crate::actors::progress::{self, Progress};
use crate::node::KmsNode;
use crate::state::{Command, StateError};
use crate::store::StoreProgress;

/// How long a restarted Distributor waits before it acts again.
pub const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Run a round now (if this node leads and has caught up): start every attempt that is due.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<Rounded, StateError>")]
pub struct Round;

/// What a [`Round`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rounded {
    /// Not the leader, or not caught up yet: nothing started.
    NotLeading,
    /// The attempts started, by subscription id (empty: nothing was due).
    Started(Vec<(String, Step)>),
}

/// An attempt for a subscription ended: delivered (or only acknowledged) and the ack applied,
/// or failed with the reason.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Delivered {
    pub subscription_id: String,
    pub result: Result<(), String>,
}

/// Asks for the Distributor's soft state.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "DistributorView")]
pub struct Inspect;

/// The Distributor's soft state, as [`Inspect`] answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributorView {
    /// Leading and caught up: rounds run.
    pub leading: bool,
    /// Subscribers backing off, with their consecutive failures, by id.
    pub failing: Vec<(String, u32)>,
    /// The deadline of the retry timer, if one is set.
    pub retry_at: Option<Instant>,
}

/// Where the Distributor stands towards leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lead {
    Not,
    /// Leader in this term; the read barrier is under way.
    CatchingUp(u64),
    /// Leader in this term and caught up.
    Leading(u64),
}

/// The Distributor actor; start it with [`start`].
pub struct Distributor {
    node: Arc<KmsNode>,
    progress_rx: watch::Receiver<StoreProgress>,
    client: awc::Client,
    rng: ring::rand::SystemRandom,
    schedule: Schedule,
    /// The newest progress seen (none before the first and after a restart).
    progress: Option<StoreProgress>,
    lead: Lead,
    /// The one retry timer, with its deadline.
    retry: Option<(Instant, SpawnHandle)>,
    restarts: u32,
    /// The next round acknowledges every skipped event, whatever the slack (set when the
    /// node starts leading).
    settle: bool,
    /// The newest outbox event id when the last full round read the subscriptions.
    newest_seen: Option<u64>,
    /// No round for a commit before this (the last one's duration after its end), and the
    /// timer of the round that waits for it.
    commit_round_after: Option<Instant>,
    deferred: Option<SpawnHandle>,
}

/// Starts the Distributor of `node` on `arbiter`, following `progress` (the key store's
/// [`crate::store::KeyStoreHandle::watch`]; tests pass their own), notifying over `tls`
/// ([`super::client_tls`]). Keep the address: the Distributor lives as long as one exists.
pub fn start(
    node: Arc<KmsNode>,
    progress: watch::Receiver<StoreProgress>,
    tls: Arc<rustls::ClientConfig>,
    arbiter: &actix_rt::ArbiterHandle,
) -> Addr<Distributor> {
    Supervisor::start_in_arbiter(arbiter, move |_| {
        // The client is built on the arbiter it is used on.
        let client = awc::Client::builder()
            .connector(awc::Connector::new().rustls_0_23(tls))
            .timeout(REQUEST_TIMEOUT)
            .disable_redirects()
            .finish();
        Distributor {
            node,
            progress_rx: progress,
            client,
            rng: ring::rand::SystemRandom::new(),
            schedule: Schedule::new(Backoff::default()),
            progress: None,
            lead: Lead::Not,
            retry: None,
            restarts: 0,
            settle: false,
            newest_seen: None,
            commit_round_after: None,
            deferred: None,
        }
    })
}

impl Actor for Distributor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.restarts == 0 {
            self.listen(ctx);
        } else {
            ctx.run_later(RESTART_DELAY, |act, ctx| act.listen(ctx));
        }
    }
}

impl Supervised for Distributor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("distributor: restarting with a fresh schedule");
        self.restarts = self.restarts.saturating_add(1);
        self.schedule = Schedule::new(Backoff::default());
        self.progress = None;
        self.lead = Lead::Not;
        self.retry = None;
        self.settle = false;
        self.newest_seen = None;
        self.commit_round_after = None;
        self.deferred = None;
    }
}

impl Handler<Progress> for Distributor {
    type Result = ();

    fn handle(&mut self, Progress(p): Progress, ctx: &mut Context<Self>) {
        self.progressed(p, ctx);
    }
}

impl Handler<Round> for Distributor {
    type Result = Result<Rounded, StateError>;

    fn handle(&mut self, _: Round, ctx: &mut Context<Self>) -> Self::Result {
        if !matches!(self.lead, Lead::Leading(_)) {
            return Ok(Rounded::NotLeading);
        }
        self.round(ctx, None).map(Rounded::Started)
    }
}

impl Handler<Delivered> for Distributor {
    type Result = ();

    fn handle(&mut self, d: Delivered, ctx: &mut Context<Self>) {
        let id = &d.subscription_id;
        match d.result {
            Ok(()) => self.schedule.succeeded(id),
            Err(e) => {
                self.node.metrics.distribution_failed();
                let delay = self.schedule.failed(id, Instant::now(), jitter(&self.rng));
                tracing::warn!(subscription = %id, error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    failures = self.schedule.failures(id), "distributor: delivery failed");
            }
        }
        if matches!(self.lead, Lead::Leading(_)) {
            // After a success its next batch may go; after a failure, the timer moves.
            let _ = self.round(ctx, Some(id));
        }
    }
}

impl Handler<Inspect> for Distributor {
    type Result = MessageResult<Inspect>;

    fn handle(&mut self, _: Inspect, _: &mut Context<Self>) -> Self::Result {
        MessageResult(DistributorView {
            leading: matches!(self.lead, Lead::Leading(_)),
            failing: self.schedule.failing(),
            retry_at: self.retry.as_ref().map(|(t, _)| *t),
        })
    }
}

impl Distributor {
    /// Acts on the current progress, then on every change.
    fn listen(&mut self, ctx: &mut Context<Self>) {
        let mut rx = self.progress_rx.clone();
        let now = *rx.borrow_and_update();
        ctx.add_message_stream(progress::paced(rx, now, progress::PACE));
        self.progressed(now, ctx);
    }

    fn progressed(&mut self, p: StoreProgress, ctx: &mut Context<Self>) {
        let was = self.progress.replace(p);
        if !p.role.is_leader() {
            if self.lead != Lead::Not {
                tracing::info!("distributor: no longer the leader; delivery stops here");
            }
            self.stand_down(ctx);
            return;
        }
        match self.lead {
            Lead::Leading(term) if term == p.term => {
                if was.is_none_or(|w| p.applied > w.applied) {
                    self.commit_round(ctx);
                }
            }
            Lead::CatchingUp(term) if term == p.term => {}
            _ => {
                // A new term: whatever this node knew as an earlier leader is stale.
                self.stand_down(ctx);
                self.catch_up(p.term, ctx);
            }
        }
    }

    /// Not leading: forget every backoff and the timer (attempts in flight still report).
    fn stand_down(&mut self, ctx: &mut Context<Self>) {
        self.lead = Lead::Not;
        self.schedule.reset();
        self.settle = false;
        self.newest_seen = None;
        self.commit_round_after = None;
        for handle in [self.retry.take().map(|(_, h)| h), self.deferred.take()]
            .into_iter()
            .flatten()
        {
            ctx.cancel_future(handle);
        }
    }

    /// Leader in `term`: apply everything committed before it first (offsets, events), then
    /// run a round. The actor handles no other message until the barrier is done.
    fn catch_up(&mut self, term: u64, ctx: &mut Context<Self>) {
        self.lead = Lead::CatchingUp(term);
        let node = self.node.clone();
        let barrier = async move { node.read_barrier().await };
        ctx.wait(barrier.into_actor(self).map(move |res, act, ctx| {
            if act.lead != Lead::CatchingUp(term) {
                return;
            }
            match res {
                Ok(()) => {
                    tracing::info!("distributor: leader; delivering from the replicated offsets");
                    act.lead = Lead::Leading(term);
                    act.settle = true;
                    let _ = act.round(ctx, None);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "distributor: read barrier failed; retrying");
                    ctx.run_later(BACKOFF_BASE, move |act, ctx| {
                        if act.lead == Lead::CatchingUp(term) {
                            act.catch_up(term, ctx);
                        }
                    });
                }
            }
        }));
    }

    /// A round for a commit while leading: none when no event was appended since the last
    /// full round, and none sooner than the last one's duration after its end (later, by a
    /// timer), so that rounds over many subscriptions take at most half of the actor's time.
    fn commit_round(&mut self, ctx: &mut Context<Self>) {
        let newest = match self.node.store().state().newest_event_id() {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "distributor: reading the outbox failed; restarting");
                ctx.stop();
                return;
            }
        };
        if self.newest_seen == Some(newest) || self.deferred.is_some() {
            return;
        }
        let now = Instant::now();
        if let Some(after) = self.commit_round_after.filter(|&t| t > now) {
            let handle = ctx.run_later(after - now, |act, ctx| {
                act.deferred = None;
                if matches!(act.lead, Lead::Leading(_)) {
                    act.commit_round(ctx);
                }
            });
            self.deferred = Some(handle);
            return;
        }
        let _ = self.round(ctx, None);
        let end = Instant::now();
        self.commit_round_after = Some(end + (end - now));
    }

    /// One pass over every subscription (`only`: over that one), starting what is due, then
    /// the retry timer. A failure to read the outbox stops the actor (its supervisor restarts
    /// it).
    fn round(
        &mut self,
        ctx: &mut Context<Self>,
        only: Option<&str>,
    ) -> Result<Vec<(String, Step)>, StateError> {
        let res = self.start_due(ctx, only);
        match &res {
            Ok(_) => self.arm_retry(ctx),
            Err(e) => {
                tracing::error!(error = %e, "distributor: reading the outbox failed; restarting");
                ctx.stop();
            }
        }
        res
    }

    fn start_due(
        &mut self,
        ctx: &mut Context<Self>,
        only: Option<&str>,
    ) -> Result<Vec<(String, Step)>, StateError> {
        let node = self.node.clone();
        let state = node.store().state();
        let newest = state.newest_event_id()?;
        let slack = if self.settle { 1 } else { ACK_SLACK };
        let subs = match only {
            Some(id) => state.subscription(id)?.into_iter().collect(),
            None => {
                let subs = state.subscriptions()?;
                let ids: HashSet<&str> = subs.iter().map(|s| s.subscription.id.as_str()).collect();
                self.schedule.retain(|id| ids.contains(id));
                self.newest_seen = Some(newest);
                self.settle = false;
                subs
            }
        };
        let now = Instant::now();
        let mut started = Vec::new();
        for s in subs {
            let id = s.subscription.id;
            if !self.schedule.due(&id, now) {
                continue;
            }
            // Everything up to `from` is acknowledged or known to hold nothing for it (at a
            // term's settling round nothing is examined yet: `from` is the offset).
            let from = self.schedule.examined(&id, s.acked);
            if from >= newest && !s.must_resync {
                continue;
            }
            let Some(page) = state.events_for(&id, from, MAX_BATCH)? else {
                continue;
            };
            let step = plan(&id, s.acked, &page, slack);
            if step == Step::Idle {
                self.schedule.set_examined(&id, page.next_after);
                continue;
            }
            self.schedule.started(&id);
            let (node, client) = (self.node.clone(), self.client.clone());
            let (url, sub, attempt_step) = (s.subscription.callback_url, id.clone(), step.clone());
            let run = async move { attempt(&node, &client, &url, &sub, attempt_step).await };
            let report = id.clone();
            ctx.spawn(run.into_actor(self).map(move |result, _, ctx| {
                ctx.notify(Delivered {
                    subscription_id: report,
                    result,
                })
            }));
            started.push((id, step));
        }
        Ok(started)
    }

    /// One timer, at the earliest retry deadline ahead.
    fn arm_retry(&mut self, ctx: &mut Context<Self>) {
        let next = self.schedule.next_retry(Instant::now());
        if next.is_some() && self.retry.as_ref().map(|(t, _)| *t) == next {
            return;
        }
        if let Some((_, handle)) = self.retry.take() {
            ctx.cancel_future(handle);
        }
        if let Some(at) = next {
            let after = at.saturating_duration_since(Instant::now());
            let handle = ctx.run_later(after, |act, ctx| {
                act.retry = None;
                if matches!(act.lead, Lead::Leading(_)) {
                    let _ = act.round(ctx, None);
                }
            });
            self.retry = Some((at, handle));
        }
    }
}

fn jitter(rng: &ring::rand::SystemRandom) -> f64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 2];
    match rng.fill(&mut b) {
        Ok(()) => f64::from(u16::from_be_bytes(b)) / 65536.0,
        Err(_) => 0.5,
    }
}

/// One delivery (or a silent ack) and its ack through Raft.
async fn attempt(
    node: &KmsNode,
    client: &awc::Client,
    url: &str,
    id: &str,
    step: Step,
) -> Result<(), String> {
    let up_to = match step {
        Step::Idle => return Ok(()),
        Step::Ack { up_to } => up_to,
        Step::Deliver {
            notification,
            up_to,
        } => {
            let mut resp = client
                .post(url)
                .send_json(&notification)
                .await
                .map_err(|e| format!("POST {url}: {e}"))?;
            // Read (and drop) a small answer so the connection can be reused.
            let _ = resp.body().limit(64 * 1024).await;
            if !resp.status().is_success() {
                return Err(format!("POST {url}: HTTP {}", resp.status().as_u16()));
            }
            node.metrics
                .distribution_delivered(notification.events.len() as u64);
            up_to
        }
    };
    node.propose_ok(Command::AckEvents {
        subscription_id: id.to_owned(),
        up_to_event_id: up_to,
    })
    .await
    .map_err(|e| format!("acknowledging up to {up_to}: {e}"))?;
    node.metrics.distribution_acked();
    Ok(())
}
