//! KM-E, our link between two partner clusters (real processes, two independently keyed
//! domains, each with its own KM-E CA): the leader's Federator fetches the partner's
//! certificates over mutual TLS, stages new ones until an operator approves them, takes a
//! partner's rotation only through that approval, and revokes what the partner revoked within
//! one refresh. A client certificate of another CA, or naming another party, is refused; a
//! partner that answers for a KMS URI it was not configured for changes nothing; KM-E bodies
//! carry public certificates only.

mod common;

use std::path::Path;

use common::cluster::ureq_like::Agent;
use common::parties::block;
use common::{Env, Node};
use sealkm::dev::DEV_KMS_URI;
use sealkm::kms::xml::certificate::{CertRole, KmsCertificateDoc};
use sealkm::kms::xml::response::{KmsMessageDoc, KmsResponseBody};
use sealkm::tls::DevCa;

const B_KMS: &str = "kms.partner.test";
const A_NAME: &str = "km-e.sealkm.test";
const B_NAME: &str = "km-e.partner.test";

/// Writes `cert`/`key` PEMs issued by `ca` for `names` into `dir` as `<stem>-cert.pem` etc.
fn issue(ca: &DevCa, dir: &Path, stem: &str, names: &[&str]) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let (cert, key) = ca.issue(&names).unwrap();
    std::fs::write(dir.join(format!("{stem}-cert.pem")), cert).unwrap();
    std::fs::write(dir.join(format!("{stem}-key.pem")), key.as_bytes()).unwrap();
}

/// The `[federation]` section of a domain with `partners` (KMS URI, KM-E port, client
/// certificate name; their KM-E CA in `partner-ca.pem`, written by the caller).
fn federation_section(port: u16, partners: &[(&str, u16, &str, &str)]) -> String {
    let mut s = format!(
        "\n[federation]\nclient_cert = \"kme-client-cert.pem\"\nclient_key = \"kme-client-key.pem\"\n\
         refresh_s = 3600\n\n[federation.listener]\naddr = \"127.0.0.1:{port}\"\n\
         tls_cert = \"kme-listener-cert.pem\"\ntls_key = \"kme-listener-key.pem\"\n"
    );
    for (kms, partner_port, name, groups) in partners {
        s += &format!(
            "\n[[federation.partner]]\nkms_uri = \"{kms}\"\nurl = \"https://127.0.0.1:{partner_port}\"\n\
             ca = \"partner-ca.pem\"\nname = \"{name}\"\n{groups}\n"
        );
    }
    s
}

/// A partner entry of A that points at B's KM-E: B answers for its own KMS URI, not this one.
const NOT_B: &str = "kms.other.test";

struct Domain {
    env: Env,
    node: Node,
    ca: DevCa,
    port: u16,
}

impl Domain {
    fn admin(&self) -> Agent {
        Agent::new(&self.env.ca(), self.env.admin_token())
    }

    fn get(&self, path: &str) -> serde_json::Value {
        let (s, v) = self
            .admin()
            .get(&format!("{}/admin/v1/{path}", self.node.url))
            .unwrap();
        assert_eq!(s, 200, "{path}: {v}");
        v
    }

    fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.admin()
            .post(&format!("{}/admin/v1/{path}", self.node.url), &body)
            .unwrap()
    }

    fn refresh(&self) -> serde_json::Value {
        let (s, v) = self.post("federation/refresh", serde_json::json!({}));
        assert_eq!(s, 200, "{v}");
        v
    }

    fn cert_cache(&self) -> Vec<KmsCertificateDoc> {
        let user = "sip:alice@sealkm.test";
        let c = self.node.client(&self.env.ca(), Some(self.env.token(user)));
        let r = block(c.post("certcache", None)).unwrap();
        match r.doc.body {
            KmsResponseBody::Message(KmsMessageDoc::CertCache { certificates, .. }) => certificates,
            other => panic!("{other:?}"),
        }
    }

    /// Ids of the partner certificates staged for approval (in the replicated state).
    fn pending(&self) -> Vec<String> {
        self.get("federation/certificates")["pending"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn external(&self) -> Vec<(String, Option<bool>)> {
        self.cert_cache()
            .into_iter()
            .filter(|c| c.role == CertRole::External)
            .map(|c| (c.cert_uri.unwrap_or_default(), c.revoked))
            .collect()
    }
}

/// Two domains, each with a KM-E CA, listener and client certificates, partners of each other.
fn two_domains() -> (Domain, Domain) {
    let (pa, pb) = (
        sealkm::dev::free_port("127.0.0.1").unwrap(),
        sealkm::dev::free_port("127.0.0.1").unwrap(),
    );
    let (ca_a, ca_b) = (
        DevCa::generate("KM-E CA A").unwrap(),
        DevCa::generate("KM-E CA B").unwrap(),
    );
    let make = |kms: &'static str,
                own: &DevCa,
                other: &DevCa,
                port: u16,
                partners: &[(&str, u16, &str, &str)],
                name: &str| {
        let section = federation_section(port, partners);
        let env = Env::new(|t| t.replace(DEV_KMS_URI, kms) + &section);
        issue(own, env.dir(), "kme-listener", &["127.0.0.1", "localhost"]);
        issue(own, env.dir(), "kme-client", &[name]);
        std::fs::write(env.dir().join("partner-ca.pem"), &other.cert_pem).unwrap();
        env
    };
    let env_a = make(
        DEV_KMS_URI,
        &ca_a,
        &ca_b,
        pa,
        &[
            (B_KMS, pb, B_NAME, "share_groups = [\"fed-g\"]"),
            (NOT_B, pb, B_NAME, ""),
        ],
        A_NAME,
    );
    let env_b = make(
        B_KMS,
        &ca_b,
        &ca_a,
        pb,
        &[(DEV_KMS_URI, pa, A_NAME, "accept_groups = [\"fed-g\"]")],
        B_NAME,
    );
    let (node_a, node_b) = (env_a.start(), env_b.start());
    (
        Domain {
            env: env_a,
            node: node_a,
            ca: ca_a,
            port: pa,
        },
        Domain {
            env: env_b,
            node: node_b,
            ca: ca_b,
            port: pb,
        },
    )
}

/// GET the KM-E offer of `d` with the client certificate `stem` in `dir`, trusting `d`'s CA.
fn km_e_get(d: &Domain, dir: &Path, stem: &str) -> Result<(u16, Vec<u8>), String> {
    let ca = dir.join("kme-target-ca.pem");
    std::fs::write(&ca, &d.ca.cert_pem).unwrap();
    let tls = sealkm::tls::peer_client_config(
        &dir.join(format!("{stem}-cert.pem")),
        &dir.join(format!("{stem}-key.pem")),
        &ca,
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{}/km-e/v1/certificates", d.port);
    block(async move {
        let client = sealkm::client::http_client(tls);
        let mut r = client.get(url).send().await.map_err(|e| e.to_string())?;
        let body = r.body().await.map_err(|e| e.to_string())?;
        Ok((r.status().as_u16(), body.to_vec()))
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
    let (s, v) = a.post(
        "federation/pending/approve",
        serde_json::json!({"id": format!("{B_KMS}/cert/1")}),
    );
    assert_eq!(s, 200, "{v}");
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
    let (s, v) = b.post(
        &format!("communities/{B_KMS}/certificates"),
        serde_json::json!({"validity_days": 30}),
    );
    assert_eq!(s, 200, "{v}");
    let v = a.refresh();
    assert_eq!(
        v["partners"][B_KMS]["staged"],
        serde_json::json!([format!("{B_KMS}/cert/2")]),
        "{v}"
    );
    let (s, v) = a.post(
        "federation/pending/approve",
        serde_json::json!({"id": format!("{B_KMS}/cert/2")}),
    );
    assert_eq!(s, 200, "{v}");

    // B revokes its first certificate: A revokes it within one refresh.
    let (s, v) = b.post(
        &format!("communities/{B_KMS}/certificates/1/revoke"),
        serde_json::json!({}),
    );
    assert_eq!(s, 200, "{v}");
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
    a.refresh();
    let (s, v) = a.post(
        "federation/pending/approve",
        serde_json::json!({"id": format!("{B_KMS}/cert/1")}),
    );
    assert_eq!(s, 200, "{v}");
    b.refresh();
    let (s, v) = b.post(
        "federation/pending/approve",
        serde_json::json!({"id": format!("{DEV_KMS_URI}/cert/1")}),
    );
    assert_eq!(s, 200, "{v}");

    // A's GMS makes two versions of the federated group.
    let a_svc = a.node.service_url.clone().unwrap();
    grant(a.env.dir(), &a.node.url, DEV_GMS, "gms", &["*"]);
    let gms_a = client(
        a.env.dir(),
        &a_svc,
        Some("gms"),
        Some(token(a.env.dir(), DEV_GMS, &[])),
    );
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
    let b_svc = b.node.service_url.clone().unwrap();
    grant(b.env.dir(), &b.node.url, DEV_VAL, "val-server", &["fed-g"]);
    grant(b.env.dir(), &b.node.url, DEV_GMS, "gms", &["*"]);
    let b_dir = b.env.dir().to_owned();
    let val_b = |url: &str| client(&b_dir, url, Some("val"), Some(token(&b_dir, DEV_VAL, &[])));
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
}
