//! Two independently keyed sealkm domains (each its own dev environment: its own CA, identity
//! provider, admin credential and master secrets) federated the standard way (TS 33.180 Annex
//! L.3.2: each operator exports its KMS certificate and imports the partner's), then used as
//! TS 33.180 5.2.7.2 / Annex E describe: a GMS of domain A sends a GMK to a member of domain B
//! (encrypted under B's Z and UID parameters, signed with A's key set), the member verifies
//! with A's KPAK from its own CertCache; member to member across the boundary; refusals that
//! change nothing; partner revocation and rotation; the domain lookup.

mod common;

use std::path::{Path, PathBuf};

use common::cluster::ureq_like::Agent;
use common::parties::{block, grant, token};
use common::{init_cert, key_set, run_sealkm, Env, Node};
use sealkm::client::gmk::{build_gmk_message_to, member_certificate, open_gmk_message_from};
use sealkm::client::KmClient;
use sealkm::crypto::kdf;
use sealkm::dev::{DEV_GMS, DEV_KMS_URI};
use sealkm::kms::xml::certificate::{CertRole, KmsCertificateDoc};
use sealkm::kms::xml::response::{KmsMessageDoc, KmsResponseBody};

const B_KMS: &str = "kms.partner.test";
const ALICE: &str = "sip:alice@sealkm.test";
const BOB: &str = "sip:bob@partner.test";

struct Domain {
    env: Env,
    node: Node,
}

impl Domain {
    fn start(kms_uri: &str) -> Self {
        let env = Env::new(|t| t.replace(DEV_KMS_URI, kms_uri));
        let node = env.start();
        Self { env, node }
    }

    fn dir(&self) -> &Path {
        self.env.dir()
    }

    fn admin(&self) -> Agent {
        Agent::new(&self.env.ca(), self.env.admin_token())
    }

    /// `sealkm federation <args>` against this domain's node; (success, stdout + stderr).
    fn cli(&self, args: &[&str]) -> (bool, String) {
        let mut all = vec![
            "federation",
            "--dir",
            self.dir().to_str().unwrap(),
            "--url",
            &self.node.url,
        ];
        all.extend_from_slice(args);
        let out = run_sealkm(&all);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn export(&self, file: &Path) {
        let (ok, out) = self.cli(&["export", "--file", file.to_str().unwrap()]);
        assert!(ok, "{out}");
    }

    /// KM-UU client of `user` in this domain.
    fn member(&self, user: &str) -> KmClient {
        self.node.client(&self.env.ca(), Some(self.env.token(user)))
    }

    /// The CertCache of this domain as `user` sees it: (CacheNum, certificates).
    fn cert_cache(&self, user: &str) -> (u64, Vec<KmsCertificateDoc>) {
        let r = block(self.member(user).post("certcache", None)).expect("certcache");
        assert_eq!(r.status, 200);
        match r.doc.body {
            KmsResponseBody::Message(KmsMessageDoc::CertCache {
                cache_num,
                certificates,
            }) => (cache_num, certificates),
            other => panic!("expected KmsCertCache, got {other:?}"),
        }
    }

    fn digest(&self) -> String {
        let (s, v) = self
            .admin()
            .get(&format!("{}/admin/v1/status", self.node.url))
            .unwrap();
        assert_eq!(s, 200);
        v["digest"].as_str().unwrap().to_owned()
    }
}

fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[test]
fn two_domains_federate_by_certificate_exchange_and_send_keys_across() {
    let a = Domain::start(DEV_KMS_URI);
    let b = Domain::start(B_KMS);
    let work = tempfile::tempdir().unwrap();
    let (a_xml, b_xml) = (file(work.path(), "a.xml"), file(work.path(), "b.xml"));
    a.export(&a_xml);
    b.export(&b_xml);
    let text = std::fs::read_to_string(&a_xml).unwrap();
    assert!(text.contains("Role=\"Root\""), "{text}");
    assert!(
        text.contains("<KmsDomain>sealkm.test</KmsDomain>"),
        "{text}"
    );

    // Refusals change nothing: our own certificate, a garbled one, an unknown community.
    let before = a.digest();
    let (ok, out) = a.cli(&["import", "--file", a_xml.to_str().unwrap()]);
    assert!(!ok && out.contains("KMS URI of this cluster"), "{out}");
    let garbled = file(work.path(), "garbled.xml");
    std::fs::write(
        &garbled,
        std::fs::read_to_string(&b_xml)
            .unwrap()
            .replace("<PubAuthKey>04", "<PubAuthKey>05"),
    )
    .unwrap();
    let (ok, out) = a.cli(&["import", "--file", garbled.to_str().unwrap()]);
    assert!(!ok && out.contains("PubAuthKey"), "{out}");
    let (ok, out) = a.cli(&[
        "import",
        "--file",
        b_xml.to_str().unwrap(),
        "--community",
        "kms.nowhere.test",
    ]);
    assert!(!ok && out.contains("unknown community"), "{out}");
    assert_eq!(a.digest(), before, "refused imports wrote nothing");

    // The exchange, both ways: External in each CertCache, with a new CacheNum.
    let (num_before, certs) = a.cert_cache(ALICE);
    assert!(certs.iter().all(|c| c.role == CertRole::Root));
    let (ok, out) = a.cli(&["import", "--file", b_xml.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (ok, out) = b.cli(&["import", "--file", a_xml.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (num_after, certs) = a.cert_cache(ALICE);
    assert!(num_after > num_before);
    let ext: Vec<_> = certs
        .iter()
        .filter(|c| c.role == CertRole::External)
        .collect();
    assert_eq!(ext.len(), 1);
    assert_eq!(ext[0].kms_uri, B_KMS);
    assert_eq!(ext[0].kms_domains, vec!["partner.test"]);
    // A client holding the current CacheNum gets an empty cache back.
    let r = block(
        a.member(ALICE)
            .post(&format!("certcache/{num_after}"), None),
    )
    .unwrap();
    match r.doc.body {
        KmsResponseBody::Message(KmsMessageDoc::CertCache { certificates, .. }) => {
            assert!(certificates.is_empty())
        }
        other => panic!("{other:?}"),
    }
    // The same import again is accepted and changes nothing.
    let digest = a.digest();
    let (ok, out) = a.cli(&["import", "--file", b_xml.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_eq!(a.digest(), digest);

    // The domain lookup: admin, and the GMS on SEAL-X1.
    let (ok, out) = a.cli(&["lookup", "--uri", BOB]);
    assert!(
        ok && out.contains(B_KMS) && out.contains("\"ours\":false"),
        "{out}"
    );
    let (ok, out) = a.cli(&["lookup", "--uri", ALICE]);
    assert!(
        ok && out.contains(DEV_KMS_URI) && out.contains("\"ours\":true"),
        "{out}"
    );
    let (ok, _) = a.cli(&["lookup", "--uri", "sip:carol@elsewhere.test"]);
    assert!(!ok, "no KMS serves elsewhere.test");
    let a_service = a.node.service_url.clone().expect("service listener");
    grant(a.dir(), &a.node.url, DEV_GMS, "gms", &["*"]);
    let gms = common::parties::client(
        a.dir(),
        &a_service,
        Some("gms"),
        Some(token(a.dir(), DEV_GMS, &[])),
    );
    let r = block(gms.call(
        "GET",
        &format!(
            "/seal-x1/v1/domain-lookup?uri={}",
            percent_encoding::utf8_percent_encode(BOB, percent_encoding::NON_ALPHANUMERIC)
        ),
        None,
    ))
    .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["kms_uri"], B_KMS);

    // GMS (A) → member (B), the TS 33.180 flow, through the CLI of both sides.
    let msg = file(work.path(), "gmk.bin");
    let out = run_sealkm([
        "client",
        "--dir",
        a.dir().to_str().unwrap(),
        "--url",
        &a_service,
        "gms",
        "imessage",
        "--to",
        BOB,
        "--out",
        msg.to_str().unwrap(),
    ]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("({B_KMS})")),
        "encrypted for B: {text}"
    );
    let fingerprint = |t: &str| {
        t.split("GMK fingerprint ")
            .nth(1)
            .map(|f| f.trim().to_owned())
            .expect("fingerprint")
    };
    let sent = fingerprint(&text);
    let open = |d: &Domain, user: &str| {
        run_sealkm([
            "client",
            "--dir",
            d.dir().to_str().unwrap(),
            "--url",
            &d.node.url,
            "--user",
            user,
            "imessage",
            "open",
            "--file",
            msg.to_str().unwrap(),
            "--from",
            DEV_GMS,
        ])
    };
    let out = open(&b, BOB);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        fingerprint(&text),
        sent,
        "bob decrypts the GMK the GMS sent"
    );
    // Another member of B cannot open it.
    assert!(!open(&b, "sip:carol@partner.test").status.success());

    // Member to member: alice (A) → bob (B) with the library, bob's side from B only.
    let a_km = a.member(ALICE);
    let a_cert = init_cert(&block(a_km.post("init", None)).unwrap());
    let alice = key_set(&block(a_km.post("keyprov", None)).unwrap());
    let (_, a_cache) = a.cert_cache(ALICE);
    let now = common::unix_now();
    let bob_cert = member_certificate(&a_cert, &a_cache, BOB, now);
    assert_eq!(bob_cert.kms_uri, B_KMS);
    let (gmk, gmk_id) =
        sealkm::client::gmk::generate_gmk(&ring::rand::SystemRandom::new()).unwrap();
    let ntp = kdf::ntp_seconds_from_unix(now) << 32;
    let m = build_gmk_message_to(
        &a_cert,
        bob_cert,
        &alice,
        BOB,
        &gmk,
        gmk_id,
        ntp,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let b_km = b.member(BOB);
    let b_cert = init_cert(&block(b_km.post("init", None)).unwrap());
    let bob = key_set(&block(b_km.post("keyprov", None)).unwrap());
    let (_, b_cache) = b.cert_cache(BOB);
    let mut senders = vec![b_cert.clone()];
    senders.extend(b_cache.into_iter().filter(|c| c.role == CertRole::External));
    let opened = open_gmk_message_from(&b_cert, &senders, &bob, &m, Some(ALICE)).unwrap();
    assert_eq!(opened.key.expose(), gmk.expose());
    // Without A's certificate in B's cache, the signature has no KPAK to verify under.
    assert!(open_gmk_message_from(
        &b_cert,
        std::slice::from_ref(&b_cert),
        &bob,
        &m,
        Some(ALICE)
    )
    .is_err());

    // Revocation in B: served Revoked=true, no longer trusted, no longer looked up.
    let (_, list) = b
        .admin()
        .get(&format!("{}/admin/v1/federation/certificates", b.node.url))
        .unwrap();
    let a_id = list["certificates"][0]["id"].as_str().unwrap().to_owned();
    let (num_before, _) = b.cert_cache(BOB);
    let (ok, out) = b.cli(&["revoke", "--id", &a_id]);
    assert!(ok, "{out}");
    let (num_after, b_cache) = b.cert_cache(BOB);
    assert!(num_after > num_before);
    let revoked: Vec<_> = b_cache
        .iter()
        .filter(|c| c.role == CertRole::External)
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].revoked, Some(true));
    let mut senders = vec![b_cert.clone()];
    senders.extend(b_cache.into_iter().filter(|c| c.role == CertRole::External));
    assert!(open_gmk_message_from(&b_cert, &senders, &bob, &m, Some(ALICE)).is_err());
    let (ok, _) = b.cli(&["lookup", "--uri", ALICE]);
    assert!(!ok, "a revoked partner serves no lookup");

    // Rotation in B: A takes the new certificate only as an explicit rotation.
    let (s, v) = b
        .admin()
        .post(
            &format!("{}/admin/v1/communities/{B_KMS}/certificates", b.node.url),
            &serde_json::json!({"validity_days": 30}),
        )
        .unwrap();
    assert_eq!(s, 200, "{v}");
    let b2 = file(work.path(), "b2.xml");
    b.export(&b2);
    let before = a.digest();
    let (ok, out) = a.cli(&["import", "--file", b2.to_str().unwrap()]);
    assert!(!ok && out.contains("rotation"), "{out}");
    assert_eq!(a.digest(), before);
    let (ok, out) = a.cli(&["import", "--file", b2.to_str().unwrap(), "--rotate"]);
    assert!(ok, "{out}");
    let (ok, out) = a.cli(&["list"]);
    assert!(ok && out.contains(&format!("{B_KMS}/cert/2")), "{out}");
    let (ok, out) = a.cli(&["remove", "--id", &format!("{B_KMS}/cert/1")]);
    assert!(ok, "{out}");
    let (_, a_cache) = a.cert_cache(ALICE);
    let ext: Vec<_> = a_cache
        .iter()
        .filter(|c| c.role == CertRole::External)
        .map(|c| c.cert_uri.clone().unwrap_or_default())
        .collect();
    assert_eq!(ext, vec![format!("{B_KMS}/cert/2")]);
}

#[test]
fn federation_routes_authenticate_first() {
    let a = Domain::start(DEV_KMS_URI);
    let wrong = Agent::new(&a.env.ca(), "not-the-credential".into());
    for (path, body) in [
        ("federation/export", None),
        ("federation/certificates", None),
        (
            "federation/certificates",
            Some(serde_json::json!({"document": "<garbage"})),
        ),
        (
            "federation/certificates/revoke",
            Some(serde_json::json!({"x": 1})),
        ),
        ("federation/lookup?uri=sip:a@b.test", None),
    ] {
        let url = format!("{}/admin/v1/{path}", a.node.url);
        let (s, _) = match &body {
            Some(b) => wrong.post(&url, b).unwrap(),
            None => wrong.get(&url).unwrap(),
        };
        assert_eq!(s, 401, "{path}");
    }
    // A party without a grant gets 403 from the lookup, before any work.
    let service = a.node.service_url.clone().unwrap();
    let c = common::parties::client(
        a.dir(),
        &service,
        Some("gms"),
        Some(token(a.dir(), DEV_GMS, &[])),
    );
    let r = block(c.call("GET", "/seal-x1/v1/domain-lookup?uri=sip:a@b.test", None)).unwrap();
    assert_eq!(r.status, 403, "{:?}", r.json);
    let r = block(c.call("GET", "/km-s/v1/domain-lookup?uri=sip:a@b.test", None)).unwrap();
    assert_eq!(r.status, 403, "{:?}", r.json);
}

#[test]
fn visiting_users_of_a_trusted_partner_idp_get_keys_of_our_domain_for_its_domains_only() {
    // Domain B's identity provider (its own keys and issuer); no B node is needed.
    let b = Env::new(|t| {
        t.replace(DEV_KMS_URI, B_KMS)
            .replace(sealkm::dev::DEV_ISSUER, "https://idms.partner.test")
    });
    let b_jwks = b.dir().join("jwks.json");
    let visiting = format!(
        "\n[[auth.visiting]]\nissuer = \"https://idms.partner.test\"\njwks_file = {:?}\n\
         domains = [\"partner.test\"]\ncommunities = [\"{DEV_KMS_URI}\"]\n",
        b_jwks.to_str().unwrap()
    );
    let a = Env::new(|t| t + &visiting);
    let node = a.start();

    // Bob of B, authenticated by B's identity provider, gets a key set of OUR domain.
    let bob = node.client(&a.ca(), Some(b.token(BOB)));
    let r = block(bob.post("keyprov", None)).unwrap();
    let ks = key_set(&r);
    assert_eq!(ks.user_uri, BOB);
    assert_eq!(ks.kms_uri, DEV_KMS_URI);
    let cert = init_cert(&block(bob.post("init", None)).unwrap());
    sealkm::client::validate_key_set(&cert, &ks).expect("a valid key set of our KMS");

    // B's provider may not speak for our own users, nor for anyone outside partner.test.
    for outsider in [ALICE, "sip:eve@elsewhere.test"] {
        let r = block(
            node.client(&a.ca(), Some(b.token(outsider)))
                .post("keyprov", None),
        )
        .unwrap();
        assert_eq!(r.status, 403, "{outsider}: {:?}", r.doc.body);
    }
    // A token of an identity provider nobody configured is refused.
    let c = Env::new(|t| t.replace(sealkm::dev::DEV_ISSUER, "https://idms.stranger.test"));
    let r = block(
        node.client(&a.ca(), Some(c.token(BOB)))
            .post("keyprov", None),
    )
    .unwrap();
    assert_eq!(r.status, 401, "{:?}", r.doc.body);
}
