//! The KeyStore actor driven through its messages: a cluster of one on temporary disks.

use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::kms::period::PeriodParams;

struct Fixture {
    _dir: tempfile::TempDir,
    handle: KeyStoreHandle,
    /// Kept so the peer stream stays open.
    _inbox: mpsc::Sender<Message>,
}

fn single_node() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let state =
        StateMachine::open(sled::open(dir.path().join("state")).expect("sled")).expect("state");
    let (inbox_tx, inbox_rx) = mpsc::channel(16);
    let handle = start(
        StoreOptions::single_node(1, dir.path().join("raft"), dir.path().join("snapshots")),
        state,
        inbox_rx,
    )
    .expect("store");
    Fixture {
        _dir: dir,
        handle,
        _inbox: inbox_tx,
    }
}

fn community(name: &str) -> Command {
    Command::CreateCommunity {
        kms_uri: name.into(),
        period: PeriodParams {
            period_s: 2_592_000,
            offset_s: 0,
        },
    }
}

#[actix_rt::test]
async fn proposals_reads_and_membership_steps_are_answered_through_messages() {
    let f = single_node();
    let addr = f.handle.addr().clone();

    // Several proposals sent before any answer is awaited: each is answered once applied.
    let mut replies = Vec::new();
    for i in 0..8 {
        let (reply, rx) = oneshot::channel();
        addr.send(Propose {
            command: community(&format!("kms{i}.example.org")),
            reply,
        })
        .await
        .expect("delivered");
        replies.push(rx);
    }
    for rx in replies {
        assert_eq!(rx.await.expect("answered"), Ok(Outcome::Applied));
    }
    // A refused command is answered as refused (and changes nothing).
    let (reply, rx) = oneshot::channel();
    addr.send(Propose {
        command: Command::RevokeCertificate {
            kms_uri: "unknown.example.org".into(),
            cert_uri: "cert-1".into(),
        },
        reply,
    })
    .await
    .expect("delivered");
    assert!(matches!(
        rx.await.expect("answered"),
        Ok(Outcome::Rejected(_))
    ));

    // A read barrier, then the state has every write.
    let (reply, rx) = oneshot::channel();
    addr.send(ReadBarrier(reply)).await.expect("delivered");
    assert_eq!(rx.await.expect("answered"), Ok(()));
    assert!(f
        .handle
        .state()
        .community("kms7.example.org")
        .expect("read")
        .is_some());

    // A membership step the configuration refuses is answered with the reason.
    let (reply, rx) = oneshot::channel();
    addr.send(ChangeMembers {
        change: MemberChange::Promote { id: 9 },
        reply,
    })
    .await
    .expect("delivered");
    assert!(matches!(
        rx.await.expect("answered"),
        Err(StoreError::Invalid(_))
    ));
}

#[actix_rt::test]
async fn a_stop_is_answered_after_the_log_is_closed_and_later_requests_are_refused() {
    let f = single_node();
    f.handle.read_barrier().await.expect("a leader of one");
    let (tx, rx) = oneshot::channel();
    f.handle.addr().send(Stop(tx)).await.expect("delivered");
    rx.await.expect("answered");
    assert!(matches!(
        f.handle.propose(community("late.example.org")).await,
        Err(StoreError::Stopped(_))
    ));
    // A requested stop is not a fatal error: `fatal` resolves (the actor is gone) with the
    // generic reason, never with a fatal error's text.
    let why = f.handle.fatal().await;
    assert!(why.contains("ended"), "{why}");
}
