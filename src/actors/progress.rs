//! How an actor follows the key store without polling: the store's progress watch
//! ([`super::KeyStoreHandle::watch`]) as a stream of [`Progress`] messages, added to an actor
//! with `ctx.add_message_stream(progress::paced(rx, seen, PACE))` after it read the current
//! value `seen` with `rx.borrow_and_update()` (so it acts on that value before any message).
//!
//! The actors that use it (sweeper, Distributor, Federator) act only while their node leads. A
//! change of role or term comes at once; a commit that changes only the applied index wakes
//! them only on the leader, and at most once per `gap` (with the newest value: changes made
//! meanwhile coalesce, a watch holds one value). On a write-heavy node that spares a thread
//! wake-up per actor per commit. The stream ends when the key store stops.

use std::time::Duration;

use actix::Message;
use futures_util::Stream;
use tokio::sync::watch;

use crate::store::StoreProgress;

/// The key store's progress changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct Progress(pub StoreProgress);

/// The gap [`paced`] keeps between two wake-ups for commits on the leader, for the actors
/// that use it.
pub const PACE: Duration = Duration::from_millis(10);

/// The changes of `rx` after `seen` (which the actor read with `borrow_and_update` and acted
/// on) that an actor acting only while its node leads needs: role and term changes at once;
/// changes of the applied index alone only while leading, and at most one per `gap`.
pub fn paced(
    rx: watch::Receiver<StoreProgress>,
    seen: StoreProgress,
    gap: Duration,
) -> impl Stream<Item = Progress> {
    futures_util::stream::unfold(
        (rx, seen, tokio::time::Instant::now()),
        move |(mut rx, last, at)| async move {
            loop {
                rx.changed().await.ok()?;
                let p = *rx.borrow_and_update();
                let same_lead = p.role == last.role && p.term == last.term;
                if same_lead && !p.role.is_leader() {
                    // A follower's commits: nothing for these actors.
                    continue;
                }
                if same_lead {
                    // A commit on the leader: at most one wake-up per gap, with the newest.
                    tokio::time::sleep_until(at + gap).await;
                    let p = *rx.borrow_and_update();
                    return Some((Progress(p), (rx, p, tokio::time::Instant::now())));
                }
                return Some((Progress(p), (rx, p, tokio::time::Instant::now())));
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NodeRole;
    use futures_util::{FutureExt, StreamExt};

    fn at(applied: u64) -> StoreProgress {
        StoreProgress {
            applied,
            role: NodeRole::Leader,
            term: 2,
        }
    }

    fn follower(applied: u64) -> StoreProgress {
        StoreProgress {
            role: NodeRole::Follower,
            ..at(applied)
        }
    }

    #[actix_rt::test]
    async fn paced_passes_lead_changes_skips_follower_commits_and_coalesces_leader_commits() {
        // Paused time: the gap passes only when the test waits for it.
        tokio::time::pause();
        let (tx, mut rx) = watch::channel(follower(1));
        let seen = *rx.borrow_and_update();
        let mut s = std::pin::pin!(paced(rx, seen, Duration::from_secs(3600)));
        // A follower's commits wake nobody.
        tx.send_replace(follower(2));
        tx.send_replace(follower(3));
        assert!(s.next().now_or_never().is_none());
        // Becoming leader comes through (with the newest applied index).
        tx.send_replace(at(4));
        assert_eq!(s.next().await, Some(Progress(at(4))));
        // Commits on the leader: one message with the newest, after the gap.
        tx.send_replace(at(5));
        let mut next = s.next();
        assert!(
            (&mut next).now_or_never().is_none(),
            "held until the gap passes"
        );
        tx.send_replace(at(6));
        tx.send_replace(at(7));
        assert_eq!(next.await, Some(Progress(at(7))));
        // Losing the lead comes through at once.
        tx.send_replace(follower(7));
        assert_eq!(s.next().await, Some(Progress(follower(7))));
        drop(tx);
        assert_eq!(s.next().await, None);
    }
}
