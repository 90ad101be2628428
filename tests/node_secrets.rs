//! A node in this process (a cluster of one, no listeners): a key delivery is answered only
//! once its audit record is synced (a repeat of the same delivery only once a record of it
//! is); the unsealed master secrets of a certificate revoked
//! through another node (a command applied, not proposed here) are dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealkm::audit::{verify_file, AuditLog};
use sealkm::clock::{Clock, SystemClock};
use sealkm::config::NodeConfig;
use sealkm::net::transport::INBOX_LEN;
use sealkm::node::bootstrap;
use sealkm::node::core::Actor;
use sealkm::node::KmsNode;
use sealkm::state::{Command, StateMachine};
use sealkm::store::{self, StoreOptions};

/// Holds the audit writer after a sync, before it acknowledges, while `hold` is set.
struct Gate {
    hold: AtomicBool,
    reached: tokio::sync::mpsc::UnboundedSender<()>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
}

struct InProcess {
    _dir: tempfile::TempDir,
    node: Arc<KmsNode>,
    audit_file: std::path::PathBuf,
}

async fn start_node(hook: sealkm::audit::SyncHook) -> InProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg_path = sealkm::dev::ensure(&sealkm::dev::DevOptions {
        dir: dir.path().to_owned(),
        addr: "127.0.0.1:0".into(),
        nodes: 1,
    })
    .expect("dev env");
    let cfg = NodeConfig::load(&cfg_path).expect("config");
    std::fs::create_dir_all(&cfg.data_dir).expect("data dir");
    let state =
        StateMachine::open(sled::open(cfg.data_dir.join("state")).expect("sled")).expect("state");
    let (inbox_tx, inbox_rx) = tokio::sync::mpsc::channel(INBOX_LEN);
    std::mem::forget(inbox_tx);
    let store = store::start(
        StoreOptions::single_node(1, cfg.data_dir.join("raft"), cfg.data_dir.join("snapshots")),
        state,
        inbox_rx,
    )
    .expect("store");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let audit_clock = clock.clone();
    let audit = AuditLog::open_with_sync_hook(
        &cfg.audit_file,
        "node1",
        move || audit_clock.now_unix_ms(),
        hook,
    )
    .expect("audit");
    let barrier = bootstrap::load_unseal_key(cfg.unseal_key_file.as_deref()).expect("key");
    let node = Arc::new(KmsNode::new(&cfg, store, barrier, audit, clock));
    // A cluster of one elects itself; until then a step answers "unavailable".
    loop {
        let res = async {
            bootstrap::check_barrier(&node).await?;
            bootstrap::ensure_communities(&node, &cfg).await
        }
        .await;
        match res {
            Ok(()) => break,
            Err(sealkm::node::NodeError::Unavailable(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("bootstrap: {e}"),
        }
    }
    InProcess {
        _dir: dir,
        node,
        audit_file: cfg.audit_file.clone(),
    }
}

#[actix_rt::test]
async fn a_key_delivery_is_answered_only_after_its_audit_record_is_synced() {
    let (reached_tx, mut reached) = tokio::sync::mpsc::unbounded_channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let gate = Arc::new(Gate {
        hold: AtomicBool::new(false),
        reached: reached_tx,
        release: Mutex::new(release_rx),
    });
    let hook_gate = gate.clone();
    let n = start_node(Box::new(move || {
        if hook_gate.hold.load(Ordering::SeqCst) {
            let _ = hook_gate.reached.send(());
            let _ = hook_gate.release.lock().unwrap().recv();
        }
    }))
    .await;
    n.node
        .audit_log()
        .flush()
        .expect("bootstrap records synced");
    let before = verify_file(&n.audit_file).expect("valid").records;

    gate.hold.store(true, Ordering::SeqCst);
    let community = n.node.community_for_host(None).await.expect("community");
    let node = n.node.clone();
    let delivery = actix_rt::spawn(async move {
        let now = node.now();
        node.key_sets
            .key_set_for(
                &community,
                "sip:alice@sealkm.test",
                None,
                now,
                &Actor("test".into()),
            )
            .await
    });
    // The writer has written and synced the batch with the delivery's record and is held
    // before acknowledging it: the delivery must still be waiting.
    reached.recv().await.expect("the writer synced a batch");
    let answered_early = delivery.is_finished();
    // Released before asserting, so a failure does not leave the writer held.
    gate.hold.store(false, Ordering::SeqCst);
    release_tx.send(()).expect("release");
    assert!(
        !answered_early,
        "the key set was handed out before its audit record was acknowledged as durable"
    );
    let set = delivery.await.expect("task").expect("key set");
    assert_eq!(set.user_uri, "sip:alice@sealkm.test");
    let after = verify_file(&n.audit_file).expect("valid");
    assert_eq!(after.records, before + 1);
    let last = std::fs::read_to_string(&n.audit_file).expect("read");
    assert!(last.lines().last().unwrap().contains("key_set_delivered"));

    // The same delivery again: a synced record of this exposure exists, so it is answered
    // without waiting for the (held) writer, and its own record is still written.
    use futures_util::FutureExt;
    gate.hold.store(true, Ordering::SeqCst);
    let alice = Actor("test".into());
    let community = n.node.community_for_host(None).await.expect("community");
    let now = n.node.now();
    let deliver = |actor: Actor| {
        let node = n.node.clone();
        let community = community.clone();
        async move {
            node.key_sets
                .key_set_for(&community, "sip:alice@sealkm.test", None, now, &actor)
                .await
        }
    };
    let repeat = deliver(alice.clone()).now_or_never();
    assert!(
        matches!(&repeat, Some(Ok(again)) if Arc::ptr_eq(again, &set)),
        "a repeat waited or was issued again: {repeat:?}"
    );
    // Another principal receiving the same key set is a new exposure: it waits.
    let someone_else = Actor("someone-else".into());
    let mut other = Box::pin(deliver(someone_else.clone()));
    let other_early = (&mut other).now_or_never();
    reached.recv().await.expect("the writer synced a batch");
    gate.hold.store(false, Ordering::SeqCst);
    release_tx.send(()).expect("release");
    assert!(
        other_early.is_none(),
        "a new exposure was answered before its record"
    );
    other.await.expect("durable");
    n.node.audit_log().flush().expect("flushed");
    assert_eq!(
        verify_file(&n.audit_file).expect("valid").records,
        before + 3
    );

    // A recorded delivery that was not made after all is recorded as withheld.
    n.node.key_sets.withheld(&set, &someone_else);
    n.node.audit_log().flush().expect("flushed");
    let log = std::fs::read_to_string(&n.audit_file).expect("read");
    let last = log.lines().last().expect("a record");
    assert!(
        last.contains("key_set_withheld") && last.contains("someone-else"),
        "{last}"
    );
    assert_eq!(
        verify_file(&n.audit_file).expect("valid").records,
        before + 4
    );
}

#[actix_rt::test]
async fn master_secrets_of_a_certificate_revoked_elsewhere_are_dropped() {
    let n = start_node(Box::new(|| {})).await;
    let community = n.node.community_for_host(None).await.expect("community");
    n.node
        .key_sets
        .key_set(&community, "sip:bob@sealkm.test", None, n.node.now())
        .await
        .expect("key set");
    let cert_uri = community
        .issuing_certificate(n.node.now())
        .expect("issuing")
        .cert_uri
        .clone();
    assert_eq!(
        n.node.key_sets.unsealed_certificates(),
        vec![cert_uri.clone()]
    );
    assert_eq!(n.node.key_sets.forget_revoked_masters().expect("sweep"), 0);
    // The revocation as another node's proposal arrives here: applied, not proposed by this
    // node's revoke_certificate (which evicts its own cache).
    n.node
        .propose_ok(Command::RevokeCertificate {
            kms_uri: community.kms_uri.clone(),
            cert_uri: cert_uri.clone(),
        })
        .await
        .expect("revoked");
    assert_eq!(n.node.key_sets.unsealed_certificates(), vec![cert_uri]);
    assert_eq!(n.node.key_sets.forget_revoked_masters().expect("sweep"), 1);
    assert!(n.node.key_sets.unsealed_certificates().is_empty());
}
