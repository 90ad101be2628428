//! Group keys end to end on a 3-node cluster of real processes.
//!
//! Spec flow (TS 33.180 E.1, TS 33.434 SEAL-X1): the group management server fetches its own
//! key set and the KMS certificate over SEAL-X1, generates a GMK, and sends it to two members
//! in I_MESSAGEs signed with its own SSK; each member, with its key set from KM-UU, verifies
//! the signature and decrypts the same GMK; the GUK-IDs match the F.1.3 derivation.
//!
//! Our extension: the same with a KMS-managed group key created through the leader and read
//! from another node after the leader was killed.

mod common;

use common::cluster::Cluster;
use common::parties::{block, call, client, grant, km_client, token};
use common::{init_cert, key_set};
use sealkm::client::gmk::{build_gmk_message, generate_gmk, open_gmk_message};
use sealkm::client::party::group_key_of;
use sealkm::client::{validate_key_set, KmClient};
use sealkm::crypto::kdf;
use sealkm::crypto::secret::SecretBytes;
use sealkm::dev::DEV_GMS;
use sealkm::kms::xml::certificate::KmsCertificateDoc;
use sealkm::kms::xml::keyset::KmsKeySetDoc;

const MEMBERS: [&str; 2] = ["sip:alice@sealkm.test", "sip:bob@sealkm.test"];

/// The GMS's KMS certificate and own key set over SEAL-X1 from node `id`.
fn gms_documents(c: &Cluster, id: u32) -> (KmsCertificateDoc, KmsKeySetDoc) {
    let km = km_client(
        c.dir(),
        c.service_url(id),
        "/seal-x1/v1/keymanagement",
        "gms",
        token(c.dir(), DEV_GMS, &[]),
    );
    let cert = init_cert(&block(km.post("init", None)).expect("init"));
    let ks = key_set(&block(km.post("keyprov", None)).expect("keyprov"));
    assert_eq!(
        ks.user_uri, DEV_GMS,
        "the key set is for the GMS's own name"
    );
    validate_key_set(&cert, &ks).expect("the GMS key set is valid");
    (cert, ks)
}

/// A member's key set over KM-UU from node `id`.
fn member_key_set(c: &Cluster, id: u32, uri: &str) -> KmsKeySetDoc {
    let km = KmClient::new(c.url(id), &c.ca(), Some(token(c.dir(), uri, &[]))).expect("client");
    key_set(&block(km.post("keyprov", None)).expect("keyprov"))
}

/// Sends `gmk` to every member and checks that each opens the same key and ids.
fn distribute_and_open(
    c: &Cluster,
    via: u32,
    gms: &(KmsCertificateDoc, KmsKeySetDoc),
    gmk: &SecretBytes<16>,
    gmk_id: u32,
) {
    let rng = ring::rand::SystemRandom::new();
    let ntp = kdf::ntp_seconds_from_unix(common::unix_now()) << 32;
    for uri in MEMBERS {
        let msg = build_gmk_message(&gms.0, &gms.1, uri, gmk, gmk_id, ntp, &rng).expect("build");
        let member = member_key_set(c, via, uri);
        let opened = open_gmk_message(&gms.0, &member, &msg, Some(DEV_GMS)).expect("open");
        assert_eq!(opened.key.expose(), gmk.expose(), "{uri} decrypts the GMK");
        assert_eq!(opened.initiator_uri, DEV_GMS);
        assert_eq!(opened.gmk_id, Some(gmk_id));
        assert_eq!(opened.guk_id, Some(kdf::guk_id(gmk.expose(), gmk_id, uri)));
        assert_ne!(
            kdf::guk_id(gmk.expose(), gmk_id, MEMBERS[0]),
            kdf::guk_id(gmk.expose(), gmk_id, MEMBERS[1]),
            "GUK-IDs differ per member"
        );
        // A message for one member does not open for the other.
        let other = member_key_set(
            c,
            via,
            if uri == MEMBERS[0] {
                MEMBERS[1]
            } else {
                MEMBERS[0]
            },
        );
        assert!(open_gmk_message(&gms.0, &other, &msg, Some(DEV_GMS)).is_err());
        // A tampered message is refused.
        let mut bad = msg.clone();
        let n = bad.len();
        bad[n - 5] ^= 1;
        assert!(open_gmk_message(&gms.0, &member, &bad, Some(DEV_GMS)).is_err());
    }
}

#[test]
fn gms_distributes_its_own_and_kms_managed_group_keys_across_a_leader_change() {
    let mut c = Cluster::start(3, |_, t| t);
    let leader = c.leader();
    grant(c.dir(), c.url(leader), DEV_GMS, "gms", &["*"]);

    // Spec flow: the GMS generates the GMK itself.
    let gms = gms_documents(&c, leader);
    let (gmk, gmk_id) = generate_gmk(&ring::rand::SystemRandom::new()).unwrap();
    assert_eq!(gmk_id >> 28, 0, "GMK purpose tag");
    distribute_and_open(&c, leader, &gms, &gmk, gmk_id);

    // Extension: the cluster makes the key; kill the leader; read it from another node.
    let gms_client = client(
        c.dir(),
        c.service_url(leader),
        Some("gms"),
        Some(token(c.dir(), DEV_GMS, &[])),
    );
    let created = call(&gms_client, "POST", "/seal-x1/v1/groups/fire-7/keys", None);
    assert_eq!(created.status, 201, "{}", created.json);
    let (gmk, gmk_id) = group_key_of(&created.json).unwrap();
    c.kill(leader);
    // Waits for a leader among the running nodes: a new one.
    let new_leader = c.leader();
    assert_ne!(new_leader, leader);
    let other = (1..=3).find(|&i| i != leader && i != new_leader).unwrap();
    for via in [new_leader, other] {
        let read = call(
            &client(
                c.dir(),
                c.service_url(via),
                Some("gms"),
                Some(token(c.dir(), DEV_GMS, &[])),
            ),
            "GET",
            "/seal-x1/v1/groups/fire-7/keys/current",
            None,
        );
        assert_eq!(read.status, 200, "node {via}: {}", read.json);
        let (read_gmk, read_id) = group_key_of(&read.json).unwrap();
        assert_eq!(
            (read_gmk.expose(), read_id),
            (gmk.expose(), gmk_id),
            "node {via}"
        );
    }
    let gms = gms_documents(&c, other);
    distribute_and_open(&c, other, &gms, &gmk, gmk_id);
}
