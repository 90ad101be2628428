//! The leader's actors driven through their messages, over a node in this process (a cluster
//! of one, no listeners): the key store publishes its progress on a watch; the expiry sweeper
//! notes an expired version once, and only while it leads; the Distributor acknowledges events
//! its subscriber does not receive once it leads, backs a failing subscriber off and forgets
//! that when it stops leading.
//!
//! Leadership is told to an actor by a `Progress` message (each actor is started on a watch
//! the test owns, so the node really leading does not tell it). Effects are awaited on the key
//! store's watch (woken by each commit), never by sleeping.

use std::sync::Arc;
use std::time::Duration;

use sealkm::actors::distribution::{self, Delivered, Inspect, Round, Rounded};
use sealkm::actors::expiry::{self, Sweep, Swept};
use sealkm::actors::progress::Progress;
use sealkm::clock::{Clock, ManualClock, SystemClock};
use sealkm::config::NodeConfig;
use sealkm::dev::DEV_GMS;
use sealkm::kms::events::EventKind;
use sealkm::node::core::Actor as Who;
use sealkm::node::groups::ExpirySweep;
use sealkm::node::{bootstrap, KmsNode};
use sealkm::state::StateMachine;
use sealkm::store::NodeRole;
use sealkm::store::StoreProgress;
use tokio::sync::watch;

/// Bound of a wait for an effect (a hung actor fails the test instead of hanging it).
const DEADLINE: Duration = Duration::from_secs(120);

struct InProcess {
    _dir: tempfile::TempDir,
    node: Arc<KmsNode>,
}

async fn start_node(clock: Arc<dyn Clock>) -> InProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg_path = sealkm::dev::ensure(&sealkm::dev::DevOptions {
        dir: dir.path().to_owned(),
        addr: "127.0.0.1:0".into(),
        nodes: 1,
    })
    .expect("dev env");
    let cfg = NodeConfig::load(&cfg_path).expect("config");
    let node = bootstrap::open_node(&cfg, clock).await.expect("node");
    InProcess { _dir: dir, node }
}

fn who() -> Who {
    Who("test".into())
}

/// The node's progress now, with `role`.
fn progress(node: &KmsNode, role: NodeRole) -> StoreProgress {
    StoreProgress {
        role,
        ..*node.store().watch().borrow()
    }
}

/// A progress watch the test owns, saying this node follows.
fn following(node: &KmsNode) -> (watch::Sender<StoreProgress>, watch::Receiver<StoreProgress>) {
    watch::channel(progress(node, NodeRole::Follower))
}

/// Waits until `cond` holds on the node's state, checking after each change of the key
/// store's progress.
async fn until(node: &KmsNode, what: &str, mut cond: impl FnMut(&StateMachine) -> bool) {
    let mut rx = node.store().watch();
    let state = node.store().state();
    tokio::time::timeout(DEADLINE, rx.wait_for(|_| cond(state)))
        .await
        .unwrap_or_else(|_| panic!("{what}: not seen"))
        .expect("the key store runs");
}

fn acked(node: &KmsNode, id: &str) -> u64 {
    node.store()
        .state()
        .subscription(id)
        .expect("state")
        .expect("subscription")
        .acked
}

#[actix_rt::test]
async fn the_key_store_publishes_its_progress_on_a_watch() {
    let n = start_node(Arc::new(SystemClock)).await;
    let mut rx = n.node.store().watch();
    let before = *rx.borrow_and_update();
    assert_eq!(before.role, NodeRole::Leader, "a cluster of one leads");
    assert!(before.term >= 1 && before.applied >= 1, "{before:?}");
    n.node
        .groups
        .create_group_key("g", None, &who(), None)
        .await
        .expect("created");
    rx.changed().await.expect("published");
    let after = *rx.borrow_and_update();
    assert!(after.applied > before.applied, "{before:?} → {after:?}");
    assert_eq!((after.role, after.term), (before.role, before.term));
}

#[actix_rt::test]
async fn a_leading_sweeper_notes_an_expired_version_once_when_told_to_sweep() {
    let t0 = SystemClock.now_unix();
    let clock = Arc::new(ManualClock::new(t0));
    let n = start_node(clock.clone()).await;
    n.node
        .groups
        .create_group_key("g", Some(3600), &who(), None)
        .await
        .expect("created");
    let arbiter = actix_rt::Arbiter::new();
    let (_tx, rx) = watch::channel(progress(&n.node, NodeRole::Leader));
    let sweeper = expiry::start(n.node.clone(), rx, &arbiter.handle());

    // Nothing expired yet: nothing noted, and it knows when to look again.
    let swept = sweeper.send(Sweep).await.expect("alive").expect("swept");
    let expected = ExpirySweep {
        noted: 0,
        next_expiry: Some(t0 + 3600),
    };
    assert_eq!(swept, Swept::Done(expected));

    clock.set(t0 + 3600);
    let swept = sweeper.send(Sweep).await.expect("alive").expect("swept");
    let expected = ExpirySweep {
        noted: 1,
        next_expiry: None,
    };
    assert_eq!(swept, Swept::Done(expected));
    let state = n.node.store().state();
    assert_eq!(state.unnoted_expired_group_keys(t0 + 3600).unwrap(), vec![]);
    // Swept again: nothing new to note.
    let swept = sweeper.send(Sweep).await.expect("alive").expect("swept");
    let expected = ExpirySweep {
        noted: 0,
        next_expiry: None,
    };
    assert_eq!(swept, Swept::Done(expected));
    arbiter.stop();
}

#[actix_rt::test]
async fn a_sweeper_that_does_not_lead_proposes_nothing_until_it_leads() {
    let t0 = SystemClock.now_unix();
    let clock = Arc::new(ManualClock::new(t0));
    let n = start_node(clock.clone()).await;
    n.node
        .groups
        .create_group_key("g", Some(10), &who(), None)
        .await
        .expect("created");
    clock.set(t0 + 10);
    let due = vec![("g".to_owned(), 1)];
    let state = n.node.store().state();
    let arbiter = actix_rt::Arbiter::new();
    let (_tx, rx) = following(&n.node);
    let sweeper = expiry::start(n.node.clone(), rx, &arbiter.handle());

    let swept = sweeper.send(Sweep).await.expect("alive").expect("swept");
    assert_eq!(swept, Swept::NotLeader);
    assert_eq!(state.unnoted_expired_group_keys(t0 + 10).unwrap(), due);

    // Told it leads, it sweeps at once (and handles the next message after that sweep).
    let leader = progress(&n.node, NodeRole::Leader);
    sweeper.send(Progress(leader)).await.expect("alive");
    let swept = sweeper.send(Sweep).await.expect("alive").expect("swept");
    assert!(
        matches!(swept, Swept::Done(ExpirySweep { noted: 0, .. })),
        "noted by the sweep on becoming leader: {swept:?}"
    );
    assert_eq!(state.unnoted_expired_group_keys(t0 + 10).unwrap(), vec![]);

    // Told it no longer leads: it proposes nothing, though a version has expired.
    n.node
        .groups
        .create_group_key("h", Some(10), &who(), None)
        .await
        .expect("created");
    clock.set(t0 + 20);
    sweeper
        .send(Progress(progress(&n.node, NodeRole::Follower)))
        .await
        .expect("alive");
    let swept = sweeper.send(Sweep).await.expect("alive").expect("swept");
    assert_eq!(swept, Swept::NotLeader);
    assert_eq!(
        state.unnoted_expired_group_keys(t0 + 20).unwrap(),
        vec![("h".to_owned(), 1)]
    );
    arbiter.stop();
}

#[actix_rt::test]
async fn the_sweeper_following_the_key_store_notes_an_expired_version_by_itself() {
    let t0 = SystemClock.now_unix();
    let clock = Arc::new(ManualClock::new(t0));
    let n = start_node(clock.clone()).await;
    n.node
        .groups
        .create_group_key("g", Some(3600), &who(), None)
        .await
        .expect("created");
    let arbiter = actix_rt::Arbiter::new();
    let sweeper = expiry::start(n.node.clone(), n.node.store().watch(), &arbiter.handle());
    // It led from its start and swept then: nothing was due.
    let swept = sweeper.send(Sweep).await.expect("alive").expect("swept");
    assert!(
        matches!(swept, Swept::Done(ExpirySweep { noted: 0, .. })),
        "{swept:?}"
    );
    clock.set(t0 + 3600);
    // A commit wakes it (a second after its last sweep at most; its timer for the next
    // expiry is a minute away, since the clock jumped instead of running).
    n.node
        .groups
        .create_group_key("other", None, &who(), None)
        .await
        .expect("created");
    until(&n.node, "the expired version noted", |s| {
        s.unnoted_expired_group_keys(t0 + 3600).unwrap().is_empty()
    })
    .await;
    arbiter.stop();
}

/// A subscription of the dev GMS that nobody answers.
async fn subscribe(node: &KmsNode, id: &str, kinds: &[EventKind]) {
    node.parties
        .acl_set(DEV_GMS, "gms", &["*".to_owned()], &who())
        .await
        .expect("ACL entry");
    node.parties
        .subscribe(
            DEV_GMS,
            id,
            "https://127.0.0.1:9/never",
            kinds,
            None,
            &who(),
        )
        .await
        .expect("subscribed");
}

fn no_tls() -> Arc<rustls::ClientConfig> {
    Arc::new(sealkm::tls::empty_client_config().expect("client config"))
}

/// Appends an event of another kind than the subscriptions here receive (a group key is
/// created) and returns the newest event id.
async fn group_key_event(node: &KmsNode) -> u64 {
    node.groups
        .create_group_key("g", None, &who(), None)
        .await
        .expect("created");
    node.store().state().newest_event_id().expect("state")
}

/// A Distributor of `node` on its own arbiter, told that its node leads (it has made its read
/// barrier and first round when this returns): its address, its arbiter, the progress it was
/// told, and the sender of its watch (keep it: the Distributor follows that watch).
async fn leading_distributor(
    node: &Arc<KmsNode>,
) -> (
    actix::Addr<distribution::Distributor>,
    actix_rt::Arbiter,
    StoreProgress,
    watch::Sender<StoreProgress>,
) {
    let arbiter = actix_rt::Arbiter::new();
    let (tx, rx) = following(node);
    let d = distribution::start(node.clone(), rx, no_tls(), &arbiter.handle());
    let leader = progress(node, NodeRole::Leader);
    d.send(Progress(leader)).await.expect("alive");
    (d, arbiter, leader, tx)
}

#[actix_rt::test]
async fn a_distributor_acknowledges_events_its_subscriber_does_not_get_once_it_leads() {
    let n = start_node(Arc::new(SystemClock)).await;
    subscribe(&n.node, "revocations", &[EventKind::CertificateRevoked]).await;
    let newest = group_key_event(&n.node).await;
    assert!(newest > 0 && acked(&n.node, "revocations") < newest);
    let arbiter = actix_rt::Arbiter::new();
    let (_tx, rx) = following(&n.node);
    let d = distribution::start(n.node.clone(), rx, no_tls(), &arbiter.handle());

    let round = d.send(Round).await.expect("alive");
    assert!(matches!(round, Ok(Rounded::NotLeading)), "{round:?}");
    assert!(!d.send(Inspect).await.expect("alive").leading);

    // Told it leads: read barrier, then a round that acknowledges the skipped event.
    let leader = progress(&n.node, NodeRole::Leader);
    d.send(Progress(leader)).await.expect("alive");
    until(&n.node, "the ack", |_| {
        acked(&n.node, "revocations") == newest
    })
    .await;
    let view = d.send(Inspect).await.expect("alive");
    assert!(view.leading && view.failing.is_empty(), "{view:?}");
    // Nothing left to do for it.
    let round = d.send(Round).await.expect("alive");
    assert!(
        matches!(&round, Ok(Rounded::Started(v)) if v.is_empty()),
        "{round:?}"
    );
    arbiter.stop();
}

#[actix_rt::test]
async fn a_leading_distributor_lets_skipped_events_wait_for_their_ack_until_the_slack_or_a_new_term(
) {
    let n = start_node(Arc::new(SystemClock)).await;
    subscribe(&n.node, "revocations", &[EventKind::CertificateRevoked]).await;
    let (d, arbiter, leader, _tx) = leading_distributor(&n.node).await;
    assert!(d.send(Inspect).await.expect("alive").leading);
    let before = acked(&n.node, "revocations");

    // An event it does not receive: one of far fewer than ACK_SLACK, so no proposal for it.
    let newest = group_key_event(&n.node).await;
    assert!(newest > before && distribution::ACK_SLACK > newest - before);
    for _ in 0..2 {
        let round = d.send(Round).await.expect("alive");
        assert!(
            matches!(&round, Ok(Rounded::Started(v)) if v.is_empty()),
            "{round:?}"
        );
    }
    assert_eq!(acked(&n.node, "revocations"), before);

    // A new term settles it: the first round acknowledges every skipped event.
    let follower = progress(&n.node, NodeRole::Follower);
    d.send(Progress(follower)).await.expect("alive");
    let next_term = StoreProgress {
        term: leader.term + 1,
        ..leader
    };
    d.send(Progress(next_term)).await.expect("alive");
    until(&n.node, "the ack of the new term", |_| {
        acked(&n.node, "revocations") == newest
    })
    .await;
    arbiter.stop();
}

#[actix_rt::test]
async fn a_distributor_backs_off_a_failing_subscriber_and_forgets_it_when_it_stops_leading() {
    let n = start_node(Arc::new(SystemClock)).await;
    subscribe(&n.node, "keys", &[EventKind::GroupKeyCreated]).await;
    let (d, arbiter, leader, _tx) = leading_distributor(&n.node).await;

    let failed = Delivered {
        subscription_id: "keys".into(),
        result: Err("connection refused".into()),
    };
    d.send(failed.clone()).await.expect("alive");
    d.send(failed).await.expect("alive");
    let view = d.send(Inspect).await.expect("alive");
    assert!(view.leading, "{view:?}");
    assert_eq!(view.failing, vec![("keys".to_owned(), 2)]);

    // No longer the leader: the backoff is forgotten, no timer is left, nothing starts.
    let follower = progress(&n.node, NodeRole::Follower);
    d.send(Progress(follower)).await.expect("alive");
    let view = d.send(Inspect).await.expect("alive");
    assert!(!view.leading && view.failing.is_empty(), "{view:?}");
    assert_eq!(view.retry_at, None);
    let round = d.send(Round).await.expect("alive");
    assert!(matches!(round, Ok(Rounded::NotLeading)), "{round:?}");

    // A success clears a subscriber's failures.
    d.send(Progress(leader)).await.expect("alive");
    for result in [Err("HTTP 503".to_owned()), Ok(())] {
        let report = Delivered {
            subscription_id: "keys".into(),
            result,
        };
        d.send(report).await.expect("alive");
    }
    assert_eq!(d.send(Inspect).await.expect("alive").failing, vec![]);
    arbiter.stop();
}
