//! How an actor follows the key store without polling: the store's progress watch
//! ([`super::KeyStoreHandle::watch`]) as a stream of [`Progress`] messages, added to an actor
//! with `ctx.add_message_stream(progress::changes(rx))` after it read the current value with
//! `rx.borrow_and_update()` (so it acts on that value before any message).
//!
//! The stream yields one message per change the receiver has not seen yet. Changes made while
//! the actor is busy coalesce into the newest one (a watch holds one value), so a burst of
//! commits costs one message. The stream ends when the key store stops.

use actix::Message;
use futures_util::Stream;
use tokio::sync::watch;

use crate::store::StoreProgress;

/// The key store's progress changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct Progress(pub StoreProgress);

/// The changes of `rx` it has not seen yet, as messages.
pub fn changes(rx: watch::Receiver<StoreProgress>) -> impl Stream<Item = Progress> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let p = *rx.borrow_and_update();
        Some((Progress(p), rx))
    })
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

    #[actix_rt::test]
    async fn one_message_per_unseen_change_and_none_for_an_unchanged_value() {
        let (tx, mut rx) = watch::channel(at(1));
        assert_eq!(*rx.borrow_and_update(), at(1));
        let mut s = std::pin::pin!(changes(rx));
        assert!(s.next().now_or_never().is_none(), "nothing new: no message");
        // Two changes before the actor looks: one message, the newest.
        tx.send_replace(at(2));
        tx.send_replace(at(3));
        assert_eq!(s.next().await, Some(Progress(at(3))));
        // An unchanged value published as the key store does wakes nobody.
        tx.send_if_modified(|p| std::mem::replace(p, at(3)) != at(3));
        assert!(s.next().now_or_never().is_none());
        drop(tx);
        assert_eq!(s.next().await, None, "the store stopped: the stream ends");
    }
}
