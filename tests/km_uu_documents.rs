//! KM-UU documents against a real `sealkm` process: request namespaces, the SignedKmsRequest
//! wrapper, key sets for several users, a MIKEY-SAKKE I_MESSAGE between two provisioned users,
//! and the `sealkm client` command.

mod common;

use common::{error_code, init_cert, key_set};

use common::{ntp_hex, unix_now, Env, BIN};
use ring::rand::{SecureRandom, SystemRandom};
use sealkm::client::validate_key_set;
use sealkm::crypto::eccsi::{EccsiSigner, Kpak, Pvt, Ssk};
use sealkm::crypto::kdf;
use sealkm::crypto::mikey::{
    build_i_message, open_i_message, BuildParams, CsIdMap, Party, ReceiverContext, TrustedKms,
};
use sealkm::crypto::sakke::{Rsk, SakkePublicKey};
use sealkm::crypto::secret::SecretBytes;
use sealkm::kms::period::NTP_UNIX_OFFSET_S;
use sealkm::kms::xml::kms_error::KmsErrorCode;
use sealkm::kms::xml::response::{KmsMessageDoc, KmsResponseBody};

const ALICE: &str = "sip:alice@sealkm.test";
const BOB: &str = "sip:bob@sealkm.test";
const CAROL: &str = "sip:carol@sealkm.test";
const NS: &str = "urn:3gpp:ns:mcsecKMSInterface:1.0";

fn enc(uri: &str) -> String {
    uri.replace(':', "%3A").replace('@', "%40")
}

#[actix_rt::test]
async fn namespaces_and_the_signed_wrapper() {
    let env = Env::new(|c| c);
    let node = env.start();
    let c = node.client(&env.ca(), Some(env.token(ALICE)));
    let plain = key_set(&c.post("keyprov", None).await.unwrap());

    // A KmsRequest declared in another namespace is not a KMS request: 400.
    let other = format!(
        r#"<KmsRequest xmlns="urn:other" Version="1.1.0"><UserUri>{ALICE}</UserUri><KmsUri>kms.sealkm.test</KmsUri></KmsRequest>"#
    );
    let r = c.post("keyprov", Some(other)).await.unwrap();
    assert_eq!((r.status, error_code(&r)), (400, KmsErrorCode::BadRequest));
    // The same document in the right namespace is accepted (so the namespace was the reason).
    let right = format!(
        r#"<KmsRequest xmlns="{NS}" Version="1.1.0"><UserUri>{ALICE}</UserUri><KmsUri>kms.sealkm.test</KmsUri></KmsRequest>"#
    );
    assert_eq!(
        key_set(&c.post("keyprov", Some(right)).await.unwrap()),
        plain
    );

    // SignedKmsRequest with TrK-ID / Signature-ID: accepted, answered with a plain KmsResponse.
    let signed = format!(
        r#"<SignedKmsRequest xmlns="{NS}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><KmsRequest Version="1.1.0"><UserUri>{ALICE}</UserUri><KmsUri>kms.sealkm.test</KmsUri><Time>2026-01-01T00:00:00Z</Time><ClientReqUrl>https://kms.sealkm.test/keymanagement/identity/v1/keyprov</ClientReqUrl><TrK-ID>trk-0001</TrK-ID><Signature-ID>sig-0001</Signature-ID></KmsRequest><ds:Signature><ds:SignedInfo><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"/></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature></SignedKmsRequest>"#
    );
    let r = c.post("keyprov", Some(signed)).await.unwrap();
    assert_eq!(key_set(&r), plain);
    let raw = String::from_utf8_lossy(&r.raw);
    assert!(raw.contains("<KmsResponse"), "{raw}");
    assert!(
        !raw.contains("SignedKmsResponse") && !raw.contains("Signature>") && !raw.contains("ds:"),
        "the answer is unsigned: {raw}"
    );
    // A wrapper in another namespace is refused like a bare request.
    let wrong_wrapper = format!(
        r#"<SignedKmsRequest xmlns="urn:other"><KmsRequest xmlns="{NS}"><UserUri>{ALICE}</UserUri><KmsUri>kms.sealkm.test</KmsUri></KmsRequest></SignedKmsRequest>"#
    );
    let r = c.post("keyprov", Some(wrong_wrapper)).await.unwrap();
    assert_eq!(r.status, 400);
}

#[actix_rt::test]
async fn several_users_and_a_mikey_sakke_exchange_between_them() {
    let env = Env::new(|c| c);
    let node = env.start();
    let alice = node.client(&env.ca(), Some(env.token(ALICE)));
    let cert = init_cert(&alice.post("init", None).await.unwrap());

    // One explicit time for everyone, so every key set is for the same period.
    let ntp_s = unix_now() + NTP_UNIX_OFFSET_S;
    let t = ntp_hex(ntp_s);
    let mut sets = Vec::new();
    for user in [ALICE, BOB, CAROL] {
        let c = node.client(&env.ca(), Some(env.token(user)));
        let ks = key_set(
            &c.post(&format!("keyprov/{}/{t}", enc(user)), None)
                .await
                .unwrap(),
        );
        assert_eq!(ks.user_uri, user);
        validate_key_set(&cert, &ks).unwrap_or_else(|e| panic!("{user}: {e}"));
        sets.push(ks);
    }
    let period = kdf::key_period_no(ntp_s, cert.user_key_period, cert.user_key_offset).unwrap();
    for ks in &sets {
        assert_eq!(ks.key_period_no, period);
    }
    // Distinct users, distinct keys.
    assert_ne!(sets[0].user_id, sets[1].user_id);
    assert_ne!(sets[1].user_decrypt_key, sets[2].user_decrypt_key);
    assert_ne!(sets[0].user_signing_key_ssk, sets[2].user_signing_key_ssk);
    // A key set does not validate under another user's name.
    let mut swapped = sets[1].clone();
    swapped.user_uri = ALICE.into();
    assert!(validate_key_set(&cert, &swapped).is_err());

    // Alice sends Bob a PCK in a signed I_MESSAGE.
    let (a, b) = (&sets[0], &sets[1]);
    let kpak = Kpak::from_bytes(&cert.pub_auth_key).unwrap();
    let z = SakkePublicKey::from_bytes(&cert.pub_enc_key).unwrap();
    let signer = EccsiSigner::new(
        &kpak,
        &a.user_id,
        &Ssk::from_bytes(a.user_signing_key_ssk.expose()).unwrap(),
        &Pvt::from_bytes(&a.user_pub_token_pvt).unwrap(),
    )
    .unwrap();
    let rng = SystemRandom::new();
    let mut key = [0u8; 16];
    rng.fill(&mut key).unwrap();
    let key = SecretBytes::new(key);
    let csb_id = kdf::KeyPurpose::Pck.key_id(0x0ABC_DEF1);
    let params = BuildParams {
        signer: &signer,
        initiator: Party {
            uri: ALICE,
            uid: &a.user_id,
            kms_uri: &cert.kms_uri,
        },
        responder: Party {
            uri: BOB,
            uid: &b.user_id,
            kms_uri: &cert.kms_uri,
        },
        responder_z: &z,
        key: &key,
        csb_id,
        cs_map: CsIdMap::Empty { n_cs: 0 },
        ntp_timestamp: ntp_s << 32,
        security_policy: None,
        sakke_to_self: None,
        key_parameters: None,
        uid_roles: false,
    };
    let message = build_i_message(&params, &rng).unwrap();

    let trusted = [TrustedKms {
        kms_uri: &cert.kms_uri,
        key_period_s: cert.user_key_period,
        key_offset_s: cert.user_key_offset,
        kpak: &kpak,
    }];
    let bob_rsk = Rsk::from_bytes(b.user_decrypt_key.expose()).unwrap();
    let ctx = ReceiverContext {
        uri: BOB,
        kms_uri: &cert.kms_uri,
        key_period_s: cert.user_key_period,
        key_offset_s: cert.user_key_offset,
        z: &z,
        rsk: &bob_rsk,
        trusted: &trusted,
        initiator_uri: Some(ALICE),
    };
    let opened = open_i_message(&message, &ctx).expect("Bob opens Alice's I_MESSAGE");
    assert_eq!(opened.key.expose(), key.expose());
    assert_eq!(opened.key.expose().len(), 16);
    assert_eq!(opened.initiator_uri, ALICE);
    assert_eq!(opened.initiator_uid, a.user_id);
    assert_eq!(opened.key_id, csb_id);
    assert_eq!(opened.key_period_no, period);

    // Carol, with her own RSK, cannot open it as Bob.
    let carol_rsk = Rsk::from_bytes(sets[2].user_decrypt_key.expose()).unwrap();
    let carol_ctx = ReceiverContext {
        rsk: &carol_rsk,
        ..ctx
    };
    assert!(open_i_message(&message, &carol_ctx).is_err());
    // Nor can anyone claim the message came from Carol.
    let ctx = ReceiverContext {
        initiator_uri: Some(CAROL),
        rsk: &bob_rsk,
        ..carol_ctx
    };
    assert!(open_i_message(&message, &ctx).is_err());
}

#[test]
fn client_command_saves_validated_documents_and_checks_the_ca() {
    let env = Env::new(|c| c);
    let node = env.start();
    let out = env.dir().join("client-out");
    std::fs::create_dir_all(&out).unwrap();
    let token = env.token(ALICE);

    let run = |ca: &std::path::Path, out_dir: &std::path::Path| {
        std::process::Command::new(BIN)
            .current_dir(env.dir())
            .arg("client")
            .arg("--url")
            .arg(&node.url)
            .arg("--cacert")
            .arg(ca)
            .arg("--token")
            .arg(&token)
            .arg("keyprov")
            .arg("--out")
            .arg(out_dir)
            .output()
            .expect("run sealkm client")
    };
    let res = run(&env.ca(), &out);
    assert!(
        res.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    let saved = out.join("keyprov.xml");
    let xml = std::fs::read(&saved).expect("the key set document was saved");
    let doc = sealkm::kms::xml::response::parse_kms_response(&xml).expect("a KmsResponse");
    let KmsResponseBody::Message(KmsMessageDoc::KeyProv(sets)) = doc.body else {
        panic!("saved document is not a KmsKeyProv")
    };
    assert_eq!(sets[0].user_uri, ALICE);
    assert!(String::from_utf8_lossy(&res.stdout).contains("validated"));

    // Another CA: the TLS handshake fails and the client exits non-zero, saving nothing.
    let other_ca = sealkm::tls::DevCa::generate("some other CA").unwrap();
    let other_pem = env.dir().join("other-ca.pem");
    std::fs::write(&other_pem, &other_ca.cert_pem).unwrap();
    let out2 = env.dir().join("client-out-2");
    std::fs::create_dir_all(&out2).unwrap();
    let res = run(&other_pem, &out2);
    assert!(!res.status.success(), "a wrong CA must fail the request");
    assert!(!out2.join("keyprov.xml").exists());
}
