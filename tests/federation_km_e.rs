//! KM-E, our link between two partner clusters (real processes, two independently keyed
//! domains, each with its own KM-E CA): the leader's Federator fetches the partner's
//! certificates over mutual TLS, stages new ones until an operator approves them, takes a
//! partner's rotation only through that approval, and revokes what the partner revoked within
//! one refresh. A client certificate of another CA, or naming another party, is refused; a
//! partner that answers for a KMS URI it was not configured for changes nothing; KM-E bodies
//! carry public certificates only.

mod common;

use std::path::Path;

use common::km_e::{
    approve_both, issue, two_domains, two_domains_signed_rotation, Domain, B_KMS, B_NAME, NOT_B,
};
use common::parties::block;
use common::Node;
use sealkm::dev::DEV_KMS_URI;
use sealkm::tls::DevCa;

/// GET the KM-E offer of `d` with the client certificate `stem` in `dir`, trusting `d`'s CA.
fn km_e_get(d: &Domain, dir: &Path, stem: &str) -> Result<(u16, Vec<u8>), String> {
    km_e_call(d, dir, stem, "/km-e/v1/certificates", None)
}

/// GET (no body) or POST `body` to `path` of `d`'s KM-E listener with the client certificate
/// `stem` in `dir`, trusting `d`'s CA.
fn km_e_call(
    d: &Domain,
    dir: &Path,
    stem: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(u16, Vec<u8>), String> {
    let ca = dir.join("kme-target-ca.pem");
    std::fs::write(&ca, &d.ca.cert_pem).unwrap();
    let tls = sealkm::tls::peer_client_config(
        &dir.join(format!("{stem}-cert.pem")),
        &dir.join(format!("{stem}-key.pem")),
        &ca,
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{}{path}", d.port);
    block(async move {
        let client = sealkm::client::http_client(tls);
        let sent = match body {
            None => client.get(url).send().await,
            Some(b) => client.post(url).send_json(&b).await,
        };
        let mut r = sent.map_err(|e| e.to_string())?;
        let body = r.body().await.map_err(|e| e.to_string())?;
        Ok((r.status().as_u16(), body.to_vec()))
    })
}

/// The HTTP version and status of `GET /km-e/v1/certificates` of `d` with the client
/// certificate `stem` in `dir`, offering only `alpn`.
fn km_e_version(d: &Domain, dir: &Path, stem: &str, alpn: &[u8]) -> (awc::http::Version, u16) {
    let ca = dir.join("kme-target-ca.pem");
    std::fs::write(&ca, &d.ca.cert_pem).unwrap();
    let mut tls = sealkm::tls::peer_client_config(
        &dir.join(format!("{stem}-cert.pem")),
        &dir.join(format!("{stem}-key.pem")),
        &ca,
    )
    .unwrap();
    tls.alpn_protocols = vec![alpn.to_vec()];
    let url = format!("https://127.0.0.1:{}/km-e/v1/certificates", d.port);
    block(async move {
        let r = sealkm::client::http_client(tls)
            .get(url)
            .send()
            .await
            .expect("KM-E");
        (r.version(), r.status().as_u16())
    })
}

#[test]
fn km_e_stages_approves_rotates_and_revokes_between_two_clusters() {
    let (a, b) = two_domains();

    // A new partner certificate is staged, not trusted, until an operator approves it. (The
    // Federator also refreshes when its node becomes the leader, so whichever refresh staged
    // it, the state is what counts.)
    a.refresh();
    assert_eq!(a.pending(), vec![format!("{B_KMS}/cert/1")]);
    let list = a.get("federation/certificates");
    assert!(
        list["certificates"].as_array().unwrap().is_empty(),
        "{list}"
    );
    assert!(a.external().is_empty(), "not served before approval");
    a.approve(&format!("{B_KMS}/cert/1"));
    assert!(a.pending().is_empty());
    assert_eq!(a.external(), vec![(format!("{B_KMS}/cert/1"), Some(false))]);
    // Nothing new: a refresh stages nothing.
    let v = a.refresh();
    assert_eq!(v["partners"][B_KMS]["staged"], serde_json::json!([]), "{v}");
    assert!(a.pending().is_empty());
    // Both ways: B fetches A's certificate too.
    b.refresh();
    assert_eq!(b.pending(), vec![format!("{DEV_KMS_URI}/cert/1")]);

    // B rotates: the new certificate is staged and taken only by approval.
    b.add_certificate(B_KMS);
    let v = a.refresh();
    assert_eq!(
        v["partners"][B_KMS]["staged"],
        serde_json::json!([format!("{B_KMS}/cert/2")]),
        "{v}"
    );
    a.approve(&format!("{B_KMS}/cert/2"));

    // B revokes its first certificate: A revokes it within one refresh.
    b.revoke_certificate(B_KMS, 1);
    let v = a.refresh();
    assert_eq!(
        v["partners"][B_KMS]["revoked"],
        serde_json::json!([format!("{B_KMS}/cert/1")]),
        "{v}"
    );
    let mut ext = a.external();
    ext.sort();
    assert_eq!(
        ext,
        vec![
            (format!("{B_KMS}/cert/1"), Some(true)),
            (format!("{B_KMS}/cert/2"), Some(false)),
        ]
    );
    let status = a.get("federation/status");
    assert!(
        status["partners"][B_KMS]["last_sync_unix"].is_u64(),
        "{status}"
    );
}

#[test]
fn km_e_takes_a_rotation_signed_under_an_approved_certificate_without_an_operator() {
    let (a, b) = two_domains_signed_rotation();
    let cert = |n: u32| format!("{B_KMS}/cert/{n}");
    // The first certificate has nothing to be vouched for by: staged, approved by hand.
    a.refresh();
    assert_eq!(a.pending(), vec![cert(1)]);
    a.approve(&cert(1));

    // B rotates: its KM-E identity signs the new certificate under the first, which A
    // approved, so A takes it within one refresh and serves it.
    b.add_certificate(B_KMS);
    let v = a.refresh();
    assert_eq!(
        v["partners"][B_KMS]["approved"],
        serde_json::json!([cert(2)]),
        "{v}"
    );
    assert_eq!(v["partners"][B_KMS]["staged"], serde_json::json!([]), "{v}");
    assert!(a.pending().is_empty());
    let mut ext = a.external();
    ext.sort();
    assert_eq!(ext, vec![(cert(1), Some(false)), (cert(2), Some(false))]);
    // Nothing new: nothing approved again.
    let v = a.refresh();
    assert_eq!(
        v["partners"][B_KMS]["approved"],
        serde_json::json!([]),
        "{v}"
    );

    // B rotates again and revokes both earlier certificates before A looks: no valid
    // certificate is left to sign under, so the third waits for A's operator, as without the
    // policy.
    b.add_certificate(B_KMS);
    for n in [1, 2] {
        b.revoke_certificate(B_KMS, n);
    }
    let v = a.refresh();
    assert_eq!(
        v["partners"][B_KMS]["approved"],
        serde_json::json!([]),
        "{v}"
    );
    assert_eq!(
        v["partners"][B_KMS]["staged"],
        serde_json::json!([cert(3)]),
        "{v}"
    );
    assert_eq!(a.pending(), vec![cert(3)]);
    let mut ext = a.external();
    ext.sort();
    assert_eq!(ext, vec![(cert(1), Some(true)), (cert(2), Some(true))]);
}

#[test]
fn km_e_refuses_strangers_and_changes_nothing_for_a_partner_answering_for_another_kms() {
    let (a, b) = two_domains();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();

    // B's real client certificate is served A's public certificates only.
    std::fs::copy(
        b.env.dir().join("kme-client-cert.pem"),
        dir.join("b-cert.pem"),
    )
    .unwrap();
    std::fs::copy(
        b.env.dir().join("kme-client-key.pem"),
        dir.join("b-key.pem"),
    )
    .unwrap();
    // KM-E answers in the HTTP version offered by ALPN, h2 or http/1.1 alone.
    for (alpn, version) in [
        (b"h2".as_slice(), awc::http::Version::HTTP_2),
        (b"http/1.1".as_slice(), awc::http::Version::HTTP_11),
    ] {
        assert_eq!(km_e_version(&a, dir, "b", alpn), (version, 200));
    }
    let (s, body) = km_e_get(&a, dir, "b").unwrap();
    assert_eq!(s, 200);
    let text = String::from_utf8(body).unwrap();
    let offer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(offer["kms_uri"], DEV_KMS_URI);
    for c in offer["certificates"].as_array().unwrap() {
        sealkm::kms::xml::parse_certificate_document(c.as_str().unwrap().as_bytes()).unwrap();
    }
    for secret in [
        "KeySet",
        "UserDecryptKey",
        "UserSigningKey",
        "PubToken",
        "sealed",
    ] {
        assert!(!text.contains(secret), "a KM-E body carries {secret}");
    }

    // B's CA, but not B's name: 403 before anything is read.
    issue(&b.ca, dir, "other-name", &["evil.partner.test"]);
    let (s, _) = km_e_get(&a, dir, "other-name").unwrap();
    assert_eq!(s, 403);
    // B's name, another CA (A's party CA, a stranger's): the handshake fails.
    let stranger = DevCa::generate("stranger").unwrap();
    issue(&stranger, dir, "stranger", &[B_NAME]);
    assert!(km_e_get(&a, dir, "stranger").is_err());
    let party_ca = DevCa::load(
        &std::fs::read_to_string(a.env.dir().join(sealkm::dev::CA_CERT)).unwrap(),
        &std::fs::read_to_string(a.env.dir().join("ca-key.pem")).unwrap(),
    )
    .unwrap();
    issue(&party_ca, dir, "party", &[B_NAME]);
    assert!(km_e_get(&a, dir, "party").is_err());

    // A partner answering for a KMS URI it was not configured for: refused, nothing written.
    let v = a.refresh();
    let err = v["partners"][NOT_B]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(err.contains("answered as kms.partner.test"), "{v}");
    let list = a.get("federation/certificates");
    let all = list["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .chain(list["pending"].as_array().unwrap());
    for c in all {
        assert_eq!(c["kms_uri"], B_KMS, "{list}");
    }
    // A partner that is down: its status says so, and nothing changes.
    let before = a.get("status")["digest"].clone();
    let failures = a.get("federation/status")["partners"][B_KMS]["failures"]
        .as_u64()
        .unwrap();
    drop(b);
    let v = a.refresh();
    assert!(
        v["partners"][B_KMS]["last_error"].is_string(),
        "B is down: {v}"
    );
    assert_eq!(v["partners"][B_KMS]["failures"], failures + 1, "{v}");
    assert_eq!(a.get("status")["digest"], before);
}

/// A group key answer's GMK (hex) through the party client `c` at `path`.
fn gmk_at(c: &sealkm::client::party::PartyClient, path: &str) -> String {
    let r = common::parties::call(c, "GET", path, None);
    assert_eq!(r.status, 200, "{path}: {:?}", r.json);
    r.json["gmk"].as_str().expect("gmk").to_owned()
}

#[test]
fn km_e_federated_group_versions_reach_the_partner_in_order_once_even_after_it_was_down() {
    use common::parties::{call, client, grant, token};
    use sealkm::dev::{DEV_GMS, DEV_VAL};
    let (a, mut b) = two_domains();
    // Both certificates approved both ways (the sender encrypts under B's, B verifies A's).
    approve_both(&a, &b);

    // B's VAL server subscribes to federated imports before any version exists.
    let b_svc = b.node.service_url.clone().unwrap();
    grant(b.env.dir(), &b.node.url, DEV_VAL, "val-server", &["fed-g"]);
    let b_dir = b.env.dir().to_owned();
    let val_b = |url: &str| client(&b_dir, url, Some("val"), Some(token(&b_dir, DEV_VAL, &[])));
    let receiver = common::receiver::Receiver::start(b.env.dir());
    let r = call(
        &val_b(&b_svc),
        "POST",
        "/km-s/v1/subscriptions",
        Some(
            serde_json::json!({"id": "fed", "callback_url": receiver.url(),
            "kinds": ["federated-key-imported"]}),
        ),
    );
    assert!(r.status == 200 || r.status == 201, "{:?}", r.json);

    // A's GMS makes two versions of the federated group.
    let gms_a = a.party(DEV_GMS, "gms", &["*"], "gms");
    for _ in 0..2 {
        let r = call(
            &gms_a,
            "POST",
            "/seal-x1/v1/groups/fed-g/keys",
            Some(serde_json::json!({})),
        );
        assert_eq!(r.status, 201, "{:?}", r.json);
    }
    let v = a.refresh();
    assert_eq!(v["partners"][B_KMS]["delivered"], 2, "{v}");
    let gmks_a: Vec<String> = (1..=2)
        .map(|n| gmk_at(&gms_a, &format!("/seal-x1/v1/groups/fed-g/keys/{n}")))
        .collect();

    // B's VAL server reads them like B's own; B's GMS may not change them.
    grant(b.env.dir(), &b.node.url, DEV_GMS, "gms", &["*"]);
    for (n, gmk) in gmks_a.iter().enumerate() {
        assert_eq!(
            &gmk_at(
                &val_b(&b_svc),
                &format!("/km-s/v1/groups/fed-g/keys/{}", n + 1)
            ),
            gmk,
            "version {} is the same GMK in B",
            n + 1
        );
    }
    let gms_b = client(
        b.env.dir(),
        &b_svc,
        Some("gms"),
        Some(token(b.env.dir(), DEV_GMS, &[])),
    );
    let r = call(
        &gms_b,
        "POST",
        "/seal-x1/v1/groups/fed-g/keys",
        Some(serde_json::json!({})),
    );
    assert_eq!(r.status, 403, "read-only in B: {:?}", r.json);
    // Each import was announced to B's subscriber: group, version, GMK-ID, partner; no key.
    let gmk_ids: Vec<String> = (1..=2)
        .map(|n| {
            let r = call(
                &gms_a,
                "GET",
                &format!("/seal-x1/v1/groups/fed-g/keys/{n}"),
                None,
            );
            r.json["gmk_id"].as_str().expect("gmk_id").to_owned()
        })
        .collect();
    assert_imported(&receiver, &gmk_ids, &gmks_a);
    // Nothing new: nothing sent again.
    let v = a.refresh();
    assert_eq!(v["partners"][B_KMS]["delivered"], 2, "{v}");

    // B down: the third version waits; back: it arrives, once, in order.
    let _ = b.node.child.kill();
    let _ = b.node.child.wait();
    let r = call(
        &gms_a,
        "POST",
        "/seal-x1/v1/groups/fed-g/keys",
        Some(serde_json::json!({})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
    let v = a.refresh();
    assert!(v["partners"][B_KMS]["last_error"].is_string(), "{v}");
    b.node = Node::start(&b.env.config(), &[]);
    let v = a.refresh();
    assert_eq!(v["partners"][B_KMS]["delivered"], 3, "{v}");
    assert_eq!(
        gmk_at(
            &val_b(b.node.service_url.as_deref().unwrap()),
            "/km-s/v1/groups/fed-g/keys/3"
        ),
        gmk_at(&gms_a, "/seal-x1/v1/groups/fed-g/keys/3")
    );
    let r = call(&gms_a, "GET", "/seal-x1/v1/groups/fed-g/keys/3", None);
    let mut gmk_ids = gmk_ids;
    gmk_ids.push(r.json["gmk_id"].as_str().expect("gmk_id").to_owned());
    let mut gmks = gmks_a;
    gmks.push(gmk_at(&gms_a, "/seal-x1/v1/groups/fed-g/keys/3"));
    assert_imported(&receiver, &gmk_ids, &gmks);
}

/// B's view (through its VAL server, KM-S) of version `n` of `fed-g`: (revoked, expiry).
fn status_in(c: &sealkm::client::party::PartyClient, n: u64) -> (bool, serde_json::Value) {
    let r = common::parties::call(c, "GET", "/km-s/v1/groups/fed-g/keys", None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    let v = r.json["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["version"] == n)
        .cloned()
        .unwrap_or_else(|| panic!("version {n} not in B: {:?}", r.json));
    (v["revoked"] == true, v["expires_unix"].clone())
}

#[test]
fn km_e_revocations_and_expiries_of_federated_versions_cross_to_the_partner() {
    use common::parties::call;
    use sealkm::dev::{DEV_GMS, DEV_VAL};
    let (a, b) = two_domains();
    // A approves B's certificate (it can wrap for B); B does not approve A's yet, so nothing
    // A makes can be imported in B before that.
    a.refresh();
    a.approve(&format!("{B_KMS}/cert/1"));
    b.refresh();

    let val_b = b.party(DEV_VAL, "val-server", &["fed-g"], "val");
    let receiver = common::receiver::Receiver::start(b.env.dir());
    let r = call(
        &val_b,
        "POST",
        "/km-s/v1/subscriptions",
        Some(
            serde_json::json!({"id": "st", "callback_url": receiver.url(),
            "kinds": ["group-key-revoked", "group-key-expiry-set"]}),
        ),
    );
    assert!(r.status == 200 || r.status == 201, "{:?}", r.json);

    let gms_a = a.party(DEV_GMS, "gms", &["*"], "gms");
    let post = |path: &str| call(&gms_a, "POST", path, Some(serde_json::json!({})));
    // Version 1 revoked in A before it could be delivered.
    assert_eq!(post("/seal-x1/v1/groups/fed-g/keys").status, 201);
    let r = post("/seal-x1/v1/groups/fed-g/keys/1/revoke");
    assert_eq!(r.status, 200, "{:?}", r.json);
    b.approve(&format!("{DEV_KMS_URI}/cert/1"));
    let v = a.refresh();
    assert_eq!(v["partners"][B_KMS]["delivered"], 1, "{v}");
    assert!(status_in(&val_b, 1).0, "arrives revoked");

    // Version 2 delivered live, then given an expiry in A: B shows it after one pass.
    assert_eq!(post("/seal-x1/v1/groups/fed-g/keys").status, 201);
    let v = a.refresh();
    assert_eq!(v["partners"][B_KMS]["delivered"], 2, "{v}");
    assert_eq!(status_in(&val_b, 2), (false, serde_json::Value::Null));
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400;
    let r = call(
        &gms_a,
        "PUT",
        "/seal-x1/v1/groups/fed-g/keys/2/expiry",
        Some(serde_json::json!({"expires_unix": expiry})),
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    let v = a.refresh();
    assert!(v["partners"][B_KMS]["last_error"].is_null(), "{v}");
    assert_eq!(status_in(&val_b, 2), (false, serde_json::json!(expiry)));

    // B's own GMS may not revoke or change the imported version.
    let gms_b = b.party(DEV_GMS, "gms", &["*"], "gms");
    let r = call(
        &gms_b,
        "POST",
        "/seal-x1/v1/groups/fed-g/keys/2/revoke",
        Some(serde_json::json!({})),
    );
    assert_eq!(r.status, 403, "read-only in B: {:?}", r.json);
    let r = call(
        &gms_b,
        "PUT",
        "/seal-x1/v1/groups/fed-g/keys/2/expiry",
        Some(serde_json::json!({"expires_unix": null})),
    );
    assert_eq!(r.status, 403, "read-only in B: {:?}", r.json);

    // Version 2 revoked in A after delivery: B's VAL server and GMS see it revoked, awaited
    // by polling B's API (the commit starts a delivery pass; no refresh asked for).
    let r = post("/seal-x1/v1/groups/fed-g/keys/2/revoke");
    assert_eq!(r.status, 200, "{:?}", r.json);
    common::cluster::poll(|| status_in(&val_b, 2).0.then_some(()));
    let r = call(&gms_b, "GET", "/seal-x1/v1/groups/fed-g/keys", None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["versions"][1]["revoked"], true, "{:?}", r.json);
    assert!(r.json["current_version"].is_null(), "{:?}", r.json);

    // B's subscriber got B's usual events: v1 revoked, v2 expiry set, v2 revoked; once each.
    let events = common::cluster::poll(|| {
        let mut seen = std::collections::BTreeSet::new();
        let events: Vec<(String, u64)> = receiver
            .events("st")
            .into_iter()
            .filter(|e| seen.insert(e["id"].as_u64()))
            .map(|e| {
                (
                    e["kind"].as_str().unwrap_or_default().to_owned(),
                    e["subject"]["version"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        (events.len() >= 3).then_some(events)
    });
    assert_eq!(
        events,
        [
            ("group-key-revoked".to_owned(), 1),
            ("group-key-expiry-set".to_owned(), 2),
            ("group-key-revoked".to_owned(), 2),
        ]
    );
}

#[test]
fn km_e_a_status_refused_for_good_does_not_hold_up_the_rest_of_its_batch() {
    use common::parties::call;
    use sealkm::dev::{DEV_GMS, DEV_VAL};
    let (a, b) = two_domains();
    approve_both(&a, &b);
    let gms_a = a.party(DEV_GMS, "gms", &["*"], "gms");
    let r = call(
        &gms_a,
        "POST",
        "/seal-x1/v1/groups/fed-g/keys",
        Some(serde_json::json!({})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
    let gmk_id = u32::from_str_radix(r.json["gmk_id"].as_str().expect("gmk_id"), 16).unwrap();
    let v = a.refresh();
    assert_eq!(v["partners"][B_KMS]["delivered"], 1, "{v}");

    // A batch from A (its KM-E client certificate) whose first two statuses B refuses for
    // good (a group B does not accept from A; a GMK-ID B never imported) and whose third
    // revokes the imported version: answered per status, and the third applied.
    let status = |group: &str, gmk_id: u32| {
        serde_json::json!({"group_id": group, "version": 1, "gmk_id": gmk_id,
            "revoked": true, "expires_unix": null})
    };
    let batch = serde_json::json!({"statuses": [
        status("not-shared", gmk_id), status("fed-g", gmk_id ^ 1), status("fed-g", gmk_id)]});
    let (s, body) = km_e_call(
        &b,
        a.env.dir(),
        "kme-client",
        "/km-e/v1/group-key-status",
        Some(batch),
    )
    .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(s, 200, "{answer}");
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 3, "{answer}");
    assert!(
        results[0]["refused"]
            .as_str()
            .unwrap()
            .contains("not accepted"),
        "{answer}"
    );
    assert!(
        results[1]["refused"]
            .as_str()
            .unwrap()
            .contains("not imported"),
        "{answer}"
    );
    assert_eq!(
        results[2],
        serde_json::json!({"applied": "revoked"}),
        "{answer}"
    );
    let val_b = b.party(DEV_VAL, "val-server", &["fed-g"], "val");
    assert!(status_in(&val_b, 1).0, "revoked in B");
}

/// Waits until `receiver` got a `federated-key-imported` event of subscription `fed` for each
/// of the versions 1..=`gmk_ids.len()` of `fed-g` (redeliveries counted once, by event id),
/// then checks them: in version order, each once, with its GMK-ID and A's KMS URI, and no
/// notification body carrying a GMK (`gmks`, hex) in any case.
fn assert_imported(receiver: &common::receiver::Receiver, gmk_ids: &[String], gmks: &[String]) {
    let events = common::cluster::poll(|| {
        let mut seen = std::collections::BTreeSet::new();
        let events: Vec<serde_json::Value> = receiver
            .events("fed")
            .into_iter()
            .filter(|e| seen.insert(e["id"].as_u64()))
            .collect();
        (events.len() >= gmk_ids.len()).then_some(events)
    });
    let got: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            assert_eq!(e["kind"], "federated-key-imported", "{e}");
            e["subject"].clone()
        })
        .collect();
    let want: Vec<serde_json::Value> = gmk_ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            serde_json::json!({"type": "federated-group-key", "group_id": "fed-g",
                "version": n + 1, "gmk_id": id, "partner_kms_uri": DEV_KMS_URI})
        })
        .collect();
    assert_eq!(got, want);
    for n in receiver.notifications() {
        let body = n.to_string().to_ascii_lowercase();
        for gmk in gmks {
            assert!(!body.contains(&gmk.to_ascii_lowercase()), "a GMK in {body}");
        }
    }
}
