//! The group key expiry sweeper, an actix actor on its own arbiter under an
//! [`actix::Supervisor`]. On the leader only, a sweep notes every group key version whose expiry
//! has passed (`NoteGroupKeyExpired` through Raft), so subscribers get one `group-key-expired`
//! event per version. The decision is `StateMachine::group_key_expiries`; apply refuses a second
//! note, so a new leader that sweeps again, or two sweeps racing, never emit an event twice.
//!
//! When it sweeps (there is no fixed poll):
//! - at once when its node becomes the leader (a new term), learnt from the key store's
//!   progress ([`super::progress`]);
//! - after a commit (the applied index grew: a commit may add or move an expiry), at most once
//!   per [`MIN_GAP`], since a sweep reads every group;
//! - at the earliest expiry still ahead that the last sweep saw (by this node's clock), and at
//!   the latest [`MAX_SLEEP`] after the last sweep, as a safety net;
//! - [`RETRY`] after a sweep the cluster could not serve (no leader, timeout, disk full);
//! - when sent [`Sweep`].
//!
//! Sweeps never overlap (a sweep holds the actor's mailbox until it is done). While its node
//! is not the leader it does nothing and keeps no timer. Its only state is when to wake, so a
//! restart is safe: a sweep that cannot read the state stops the actor, and its supervisor
//! restarts it fresh, acting again [`RESTART_DELAY`] later.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::watch;

use super::progress::{self, Progress};
use crate::node::groups::ExpirySweep;
use crate::node::{KmsNode, NodeError};
use crate::store::StoreProgress;

/// The longest the leader goes without a sweep.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);
/// The shortest time between two sweeps caused by commits.
pub const MIN_GAP: Duration = Duration::from_secs(1);
/// How soon a sweep the cluster could not serve is tried again.
pub const RETRY: Duration = Duration::from_secs(1);
/// How long a restarted sweeper waits before it acts again.
pub const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Sweep now, if this node leads; answered once the sweep is done.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<Swept, NodeError>")]
pub struct Sweep;

/// What a [`Sweep`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swept {
    /// This node does not lead (as far as the sweeper knows): nothing proposed.
    NotLeader,
    Done(ExpirySweep),
}

/// How long to sleep after a sweep that saw `next_expiry` as the earliest expiry ahead, at
/// `now_ms` (Unix milliseconds): until that expiry, at most [`MAX_SLEEP`].
pub fn sleep_after_sweep(next_expiry: Option<u64>, now_ms: u64) -> Duration {
    next_expiry.map_or(MAX_SLEEP, |e| {
        Duration::from_millis(e.saturating_mul(1000).saturating_sub(now_ms)).min(MAX_SLEEP)
    })
}

/// The sweeper actor; start it with [`start`].
pub struct ExpirySweeper {
    node: Arc<KmsNode>,
    progress_rx: watch::Receiver<StoreProgress>,
    /// The newest progress seen (none before the first and after a restart).
    progress: Option<StoreProgress>,
    /// The applied index and the time the last sweep started at.
    last_sweep: Option<(u64, Instant)>,
    /// The one pending wake-up, with its deadline.
    timer: Option<(Instant, SpawnHandle)>,
    restarts: u32,
}

/// Starts the sweeper of `node` on `arbiter`, following `progress` (the key store's
/// [`super::KeyStoreHandle::watch`]; tests pass their own). Keep the address: the sweeper lives
/// as long as one exists.
pub fn start(
    node: Arc<KmsNode>,
    progress: watch::Receiver<StoreProgress>,
    arbiter: &actix_rt::ArbiterHandle,
) -> Addr<ExpirySweeper> {
    Supervisor::start_in_arbiter(arbiter, move |_| ExpirySweeper {
        node,
        progress_rx: progress,
        progress: None,
        last_sweep: None,
        timer: None,
        restarts: 0,
    })
}

impl Actor for ExpirySweeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.restarts == 0 {
            self.listen(ctx);
        } else {
            ctx.run_later(RESTART_DELAY, |act, ctx| act.listen(ctx));
        }
    }
}

impl Supervised for ExpirySweeper {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("expiry sweeper: restarting");
        self.restarts = self.restarts.saturating_add(1);
        self.progress = None;
        self.last_sweep = None;
        self.timer = None;
    }
}

impl Handler<Progress> for ExpirySweeper {
    type Result = ();

    fn handle(&mut self, Progress(p): Progress, ctx: &mut Context<Self>) {
        self.progressed(p, ctx);
    }
}

impl Handler<Sweep> for ExpirySweeper {
    type Result = AtomicResponse<Self, Result<Swept, NodeError>>;

    fn handle(&mut self, _: Sweep, ctx: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(self.sweep(ctx))
    }
}

impl ExpirySweeper {
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
            if was.is_some_and(|w| w.role.is_leader()) {
                tracing::info!("expiry sweeper: no longer the leader; sweeping stops here");
            }
            self.cancel_timer(ctx);
            return;
        }
        let same_term = was.is_some_and(|w| w.role.is_leader() && w.term == p.term);
        match self.last_sweep {
            Some((applied, at)) if same_term => {
                if p.applied > applied {
                    self.wake_at(at + MIN_GAP, ctx);
                }
            }
            _ => {
                let sweep = self.sweep(ctx).map(|_, _, _| ());
                ctx.wait(sweep);
            }
        }
    }

    /// One sweep (on the leader), then the wake-up after it.
    fn sweep(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<Swept, NodeError>> {
        self.cancel_timer(ctx);
        let Some(p) = self.progress.filter(|p| p.role.is_leader()) else {
            return Box::pin(actix::fut::ready(Ok(Swept::NotLeader)));
        };
        self.last_sweep = Some((p.applied, Instant::now()));
        let node = self.node.clone();
        let sweep = async move { node.groups.note_expired_group_keys().await };
        Box::pin(sweep.into_actor(self).map(|res, act, ctx| {
            match &res {
                Ok(s) => {
                    if s.noted > 0 {
                        tracing::info!(versions = s.noted, "group key versions noted expired");
                    }
                    let sleep = sleep_after_sweep(s.next_expiry, act.node.clock.now_unix_ms());
                    act.wake_at(Instant::now() + sleep, ctx);
                }
                Err(e @ (NodeError::Unavailable(_) | NodeError::AfterProposal(_))) => {
                    tracing::warn!(error = %e, retry_in_ms = RETRY.as_millis() as u64,
                        "group key expiry sweep failed");
                    act.wake_at(Instant::now() + RETRY, ctx);
                }
                Err(e) => {
                    tracing::error!(error = %e, "group key expiry sweep failed; the sweeper restarts");
                    ctx.stop();
                }
            }
            res.map(Swept::Done)
        }))
    }

    /// Sweeps at `deadline`, or earlier if a wake-up is already set before it.
    fn wake_at(&mut self, deadline: Instant, ctx: &mut Context<Self>) {
        if self.timer.as_ref().is_some_and(|(t, _)| *t <= deadline) {
            return;
        }
        self.cancel_timer(ctx);
        let after = deadline.saturating_duration_since(Instant::now());
        let handle = ctx.run_later(after, |act, ctx| {
            act.timer = None;
            let sweep = act.sweep(ctx).map(|_, _, _| ());
            ctx.wait(sweep);
        });
        self.timer = Some((deadline, handle));
    }

    fn cancel_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweeper_sleeps_until_the_next_expiry_at_most_max_sleep() {
        let now_ms = 1_000_000_500;
        assert_eq!(sleep_after_sweep(None, now_ms), MAX_SLEEP);
        assert_eq!(
            sleep_after_sweep(Some(1_000_010), now_ms),
            Duration::from_millis(9_500)
        );
        assert_eq!(sleep_after_sweep(Some(1_000_000), now_ms), Duration::ZERO);
        assert_eq!(sleep_after_sweep(Some(2_000_000), now_ms), MAX_SLEEP);
        assert_eq!(sleep_after_sweep(Some(u64::MAX), now_ms), MAX_SLEEP);
    }
}
