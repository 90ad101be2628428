//! Two single-node domains federated over KM-E (each with its own KM-E CA, listener and
//! client certificates), optionally through recording relays: shared by the KM-E suites.

#![allow(dead_code)]

use std::path::Path;

use super::cluster::ureq_like::Agent;
use super::parties::block;
use super::relay::Relay;
use super::{Env, Node};
use sealkm::dev::DEV_KMS_URI;
use sealkm::kms::xml::certificate::{CertRole, KmsCertificateDoc};
use sealkm::kms::xml::response::{KmsMessageDoc, KmsResponseBody};
use sealkm::tls::DevCa;

pub const B_KMS: &str = "kms.partner.test";
pub const A_NAME: &str = "km-e.sealkm.test";
pub const B_NAME: &str = "km-e.partner.test";

/// Writes `cert`/`key` PEMs issued by `ca` for `names` into `dir` as `<stem>-cert.pem` etc.
pub fn issue(ca: &DevCa, dir: &Path, stem: &str, names: &[&str]) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let (cert, key) = ca.issue(&names).unwrap();
    std::fs::write(dir.join(format!("{stem}-cert.pem")), cert).unwrap();
    std::fs::write(dir.join(format!("{stem}-key.pem")), key.as_bytes()).unwrap();
}

/// The `[federation]` section of a domain with `partners` (KMS URI, KM-E port, client
/// certificate name; their KM-E CA in `partner-ca.pem`, written by the caller).
pub fn federation_section(port: u16, partners: &[(&str, u16, &str, &str)]) -> String {
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
pub const NOT_B: &str = "kms.other.test";

pub struct Domain {
    pub env: Env,
    pub node: Node,
    pub ca: DevCa,
    pub port: u16,
}

impl Domain {
    pub fn admin(&self) -> Agent {
        Agent::new(&self.env.ca(), self.env.admin_token())
    }

    pub fn get(&self, path: &str) -> serde_json::Value {
        let (s, v) = self
            .admin()
            .get(&format!("{}/admin/v1/{path}", self.node.url))
            .unwrap();
        assert_eq!(s, 200, "{path}: {v}");
        v
    }

    pub fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.admin()
            .post(&format!("{}/admin/v1/{path}", self.node.url), &body)
            .unwrap()
    }

    /// Grants `principal` `role` on `groups` and returns its service-listener client (its
    /// certificate `stem`, a token of this domain).
    pub fn party(
        &self,
        principal: &str,
        role: &str,
        groups: &[&str],
        stem: &str,
    ) -> sealkm::client::party::PartyClient {
        let dir = self.env.dir();
        super::parties::grant(dir, &self.node.url, principal, role, groups);
        let svc = self.node.service_url.clone().expect("service listener");
        let token = super::parties::token(dir, principal, &[]);
        super::parties::client(dir, &svc, Some(stem), Some(token))
    }

    /// Adds a certificate to this domain's community `kms` (a rotation; 200 expected).
    pub fn add_certificate(&self, kms: &str) {
        let (s, v) = self.post(
            &format!("communities/{kms}/certificates"),
            serde_json::json!({"validity_days": 30}),
        );
        assert_eq!(s, 200, "{v}");
    }

    /// Revokes certificate `serial` of this domain's community `kms` (200 expected).
    pub fn revoke_certificate(&self, kms: &str, serial: u32) {
        let (s, v) = self.post(
            &format!("communities/{kms}/certificates/{serial}/revoke"),
            serde_json::json!({}),
        );
        assert_eq!(s, 200, "{v}");
    }

    /// Approves the staged partner certificate `id` (200 expected).
    pub fn approve(&self, id: &str) {
        let (s, v) = self.post(
            "federation/pending/approve",
            serde_json::json!({ "id": id }),
        );
        assert_eq!(s, 200, "approve {id}: {v}");
    }

    pub fn refresh(&self) -> serde_json::Value {
        let (s, v) = self.post("federation/refresh", serde_json::json!({}));
        assert_eq!(s, 200, "{v}");
        v
    }

    pub fn cert_cache(&self) -> Vec<KmsCertificateDoc> {
        let user = "sip:alice@sealkm.test";
        let c = self.node.client(&self.env.ca(), Some(self.env.token(user)));
        let r = block(c.post("certcache", None)).unwrap();
        match r.doc.body {
            KmsResponseBody::Message(KmsMessageDoc::CertCache { certificates, .. }) => certificates,
            other => panic!("{other:?}"),
        }
    }

    /// Ids of the partner certificates staged for approval (in the replicated state).
    pub fn pending(&self) -> Vec<String> {
        self.get("federation/certificates")["pending"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn external(&self) -> Vec<(String, Option<bool>)> {
        self.cert_cache()
            .into_iter()
            .filter(|c| c.role == CertRole::External)
            .map(|c| (c.cert_uri.unwrap_or_default(), c.revoked))
            .collect()
    }
}

/// Each domain fetches the other's first certificate and approves it: both trust each other.
pub fn approve_both(a: &Domain, b: &Domain) {
    a.refresh();
    a.approve(&format!("{B_KMS}/cert/1"));
    b.refresh();
    b.approve(&format!("{DEV_KMS_URI}/cert/1"));
}

/// Two domains, each with a KM-E CA, listener and client certificates, partners of each other.
pub fn two_domains() -> (Domain, Domain) {
    let (a, b, _) = two_domains_with(false, "");
    (a, b)
}

/// [`two_domains`] where A takes B's rotations signed under a certificate it approved
/// (`rotation = "signed"`) without an operator.
pub fn two_domains_signed_rotation() -> (Domain, Domain) {
    let (a, b, _) = two_domains_with(false, "rotation = \"signed\"");
    (a, b)
}

/// The KM-E relays of [`two_domains_relayed`]: `a_to_b` carries A's Federator's requests to
/// B's KM-E listener, `b_to_a` the other way.
pub struct Relays {
    pub a_to_b: Relay,
    pub b_to_a: Relay,
}

/// [`two_domains`] with each partner's KM-E URL pointing at a recording relay in this test
/// process (a TLS server certificate of the partner's KM-E CA, which the Federator pins; the
/// configured client certificate towards the partner's listener), so every KM-E request and
/// response body is captured.
pub fn two_domains_relayed() -> (Domain, Domain, Relays) {
    let (a, b, relays) = two_domains_with(true, "");
    (a, b, relays.expect("relays"))
}

fn two_domains_with(relayed: bool, a_to_b: &str) -> (Domain, Domain, Option<Relays>) {
    let (pa, pb) = (
        sealkm::dev::free_port("127.0.0.1").unwrap(),
        sealkm::dev::free_port("127.0.0.1").unwrap(),
    );
    let (ca_a, ca_b) = (
        DevCa::generate("KM-E CA A").unwrap(),
        DevCa::generate("KM-E CA B").unwrap(),
    );
    let relays = relayed.then(|| {
        let dir = tempfile::tempdir().unwrap();
        let relay = |own: &DevCa, target: &DevCa, port: u16, name: &str, stem: &str| {
            issue(own, dir.path(), stem, &[name]);
            let target_ca = dir.path().join(format!("{stem}-target-ca.pem"));
            std::fs::write(&target_ca, &target.cert_pem).unwrap();
            Relay::start(
                target,
                &format!("https://127.0.0.1:{port}"),
                sealkm::tls::peer_client_config(
                    &dir.path().join(format!("{stem}-cert.pem")),
                    &dir.path().join(format!("{stem}-key.pem")),
                    &target_ca,
                )
                .unwrap(),
            )
        };
        Relays {
            a_to_b: relay(&ca_a, &ca_b, pb, A_NAME, "a"),
            b_to_a: relay(&ca_b, &ca_a, pa, B_NAME, "b"),
        }
    });
    // Where each Federator reaches its partner: the listener itself, or the relay.
    let (to_b, to_a) = match &relays {
        Some(r) => (r.a_to_b.port, r.b_to_a.port),
        None => (pb, pa),
    };
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
            (
                B_KMS,
                to_b,
                B_NAME,
                &format!("share_groups = [\"fed-g\"]\n{a_to_b}"),
            ),
            (NOT_B, to_b, B_NAME, ""),
        ],
        A_NAME,
    );
    let env_b = make(
        B_KMS,
        &ca_b,
        &ca_a,
        pb,
        &[(DEV_KMS_URI, to_a, A_NAME, "accept_groups = [\"fed-g\"]")],
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
        relays,
    )
}
