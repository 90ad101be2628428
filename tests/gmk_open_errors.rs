//! `imessage open` names the real cause (issue 10, item 12): opening a GMK I_MESSAGE fails with
//! a typed error that tells the receiver's own key material apart from the message, and the
//! message's failures apart from each other (malformed, signature, not for this receiver).
//! Pure, on the published interop KMS, key sets and GMK I_MESSAGE.

use sealkm::client::gmk::{open_gmk_message, OpenGmkError};
use sealkm::crypto::secret::SecretVec;
use sealkm::crypto::CryptoError;
use sealkm::kms::xml::certificate::{CertRole, KmsCertificateDoc, KMS_CERTIFICATE_VERSION};
use sealkm::kms::xml::keyset::KmsKeySetDoc;
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/mikey-sakke-interop.json")).expect("vectors")
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn certificate(v: &Value) -> KmsCertificateDoc {
    let init = &v["kms_init"];
    KmsCertificateDoc {
        version: KMS_CERTIFICATE_VERSION.to_owned(),
        role: CertRole::Root,
        is_security_gateway: None,
        cert_uri: None,
        kms_uri: init["KmsUri"].as_str().unwrap().to_owned(),
        issuer: None,
        valid_from: None,
        valid_to: None,
        revoked: None,
        user_id_format: "2".into(),
        user_key_period: init["UserKeyPeriod"].as_u64().unwrap(),
        user_key_offset: init["UserKeyOffset"].as_u64().unwrap(),
        pub_enc_key: unhex(&init["PubEncKey_Z"]),
        pub_auth_key: unhex(&init["PubAuthKey_KPAK"]),
        parameter_set: Some(1),
        kms_domains: Vec::new(),
    }
}

fn key_set(v: &Value, label: &str) -> KmsKeySetDoc {
    let ks = v["key_sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == label)
        .expect("key set");
    KmsKeySetDoc {
        kms_uri: v["kms_init"]["KmsUri"].as_str().unwrap().to_owned(),
        cert_uri: None,
        issuer: None,
        user_uri: ks["UserUri"].as_str().unwrap().to_owned(),
        user_id: unhex(&ks["UserID"]).try_into().unwrap(),
        valid_from: None,
        valid_to: None,
        key_period_no: ks["KeyPeriodNo"].as_u64().unwrap(),
        revoked: None,
        user_decrypt_key: SecretVec::new(unhex(&ks["UserDecryptKey_RSK"])),
        user_signing_key_ssk: SecretVec::new(unhex(&ks["UserSigningKeySSK"])),
        user_pub_token_pvt: unhex(&ks["UserPubTokenPVT"]),
    }
}

#[test]
fn a_message_error_is_not_blamed_on_the_key_set() {
    let v = vectors();
    let case = &v["imessage_cases"][0];
    assert_eq!(case["key_type"], "GMK");
    let msg = unhex(&case["i_message_hex"]);
    let gms = case["initiator_uri"].as_str().unwrap();
    let cert = certificate(&v);
    let alice = key_set(&v, "Alice");

    let opened = open_gmk_message(&cert, &alice, &msg, Some(gms)).expect("opens");
    assert_eq!(
        opened.key.expose().as_slice(),
        unhex(&case["expected"]["key"]).as_slice()
    );

    let not_key_material = |e: &OpenGmkError| {
        assert!(!matches!(e, OpenGmkError::KeyMaterial(_)), "{e:?}");
        assert!(!e.to_string().contains("key material"), "{e}");
    };
    // Bob's key set is fine; the message names another receiver (its role-9 UID is Alice's).
    let e = open_gmk_message(&cert, &key_set(&v, "Bob"), &msg, Some(gms)).unwrap_err();
    assert!(
        matches!(e, OpenGmkError::Message(CryptoError::Mikey(_))),
        "{e:?}"
    );
    not_key_material(&e);
    // From another initiator than the expected one (its role-8 UID names the GMS).
    let e = open_gmk_message(&cert, &alice, &msg, Some("sip:bob@streamwide.com")).unwrap_err();
    assert!(
        matches!(e, OpenGmkError::Message(CryptoError::Mikey(_))),
        "{e:?}"
    );
    not_key_material(&e);
    // An altered signature.
    let mut altered = msg.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    let e = open_gmk_message(&cert, &alice, &altered, Some(gms)).unwrap_err();
    assert_eq!(e, OpenGmkError::Signature);
    not_key_material(&e);
    // Truncated, or no initiator known at all: the message is refused as such.
    for (bytes, from) in [(&msg[..msg.len() / 2], Some(gms)), (&msg[..], None)] {
        let e = open_gmk_message(&cert, &alice, bytes, from).unwrap_err();
        assert!(
            matches!(e, OpenGmkError::Message(CryptoError::Mikey(_))),
            "{e:?}"
        );
        not_key_material(&e);
    }

    // Only unusable key material is reported as such.
    let mut broken = cert.clone();
    broken.pub_auth_key[10] ^= 1;
    let e = open_gmk_message(&broken, &alice, &msg, Some(gms)).unwrap_err();
    assert!(matches!(e, OpenGmkError::KeyMaterial(_)), "{e:?}");
    assert!(e.to_string().starts_with("key material does not validate"));
    let mut no_rsk = alice.clone();
    no_rsk.user_decrypt_key = SecretVec::new(vec![4; 10]);
    assert!(matches!(
        open_gmk_message(&cert, &no_rsk, &msg, Some(gms)),
        Err(OpenGmkError::KeyMaterial(_))
    ));
}
