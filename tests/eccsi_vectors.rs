//! RFC 6507 Appendix A and the interop key sets, plus negative cases.

use ring::rand::SystemRandom;
use sealkm::crypto::eccsi::{
    issue, issue_with_v, verify, EccsiMasterSecret, EccsiSigner, EccsiVerifier, Kpak, Pvt, Ssk,
};
use sealkm::crypto::CryptoError;
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn field(v: &Value, key: &str) -> Vec<u8> {
    let h = v[key].as_str().unwrap_or_else(|| panic!("missing {key}"));
    hex::decode(h).unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// RFC 6507 writes KSAK, v and j as short integers: left-pad to 32 octets.
fn scalar32(v: &Value, key: &str) -> Vec<u8> {
    let h = v[key].as_str().unwrap_or_else(|| panic!("missing {key}"));
    let padded = format!("{h:0>64}");
    hex::decode(padded).unwrap_or_else(|e| panic!("{key}: {e}"))
}

struct Rfc {
    v: Value,
    master: EccsiMasterSecret,
    id: Vec<u8>,
}

fn rfc() -> Rfc {
    let v = load("rfc6507-eccsi.json");
    let master = EccsiMasterSecret::from_bytes(&scalar32(&v, "KSAK")).expect("KSAK");
    let id = field(&v, "ID");
    Rfc { v, master, id }
}

#[test]
fn rfc6507_kpak_from_ksak() {
    let t = rfc();
    assert_eq!(t.master.kpak().to_bytes().to_vec(), field(&t.v, "KPAK"));
    assert_eq!(
        Kpak::from_bytes(&field(&t.v, "KPAK")).expect("KPAK decodes"),
        t.master.kpak()
    );
    assert_eq!(
        t.master.to_bytes().expose().to_vec(),
        scalar32(&t.v, "KSAK")
    );
}

#[test]
fn rfc6507_issue_validate_sign_verify() {
    let t = rfc();
    let (ssk, pvt) = issue_with_v(&t.master, &t.id, &scalar32(&t.v, "v")).expect("issue");
    assert_eq!(pvt.to_bytes().to_vec(), field(&t.v, "PVT"));
    assert_eq!(ssk.to_bytes().expose().to_vec(), field(&t.v, "SSK"));

    let kpak = t.master.kpak();
    let signer = EccsiSigner::new(&kpak, &t.id, &ssk, &pvt).expect("pair validates");
    assert_eq!(signer.hs().to_vec(), field(&t.v, "HS"));

    let msg = field(&t.v, "M");
    let sig = signer
        .sign_with_j(&msg, &scalar32(&t.v, "j"))
        .expect("sign");
    assert_eq!(sig.to_vec(), field(&t.v, "Signature"));
    assert_eq!(sig[..32].to_vec(), field(&t.v, "r"));
    assert_eq!(sig[..32].to_vec(), field(&t.v, "J")[1..33].to_vec());
    assert_eq!(sig[32..64].to_vec(), field(&t.v, "s"));
    assert_eq!(field(&t.v, "s"), field(&t.v, "s_prime"));
    assert_eq!(sig[64..].to_vec(), field(&t.v, "PVT"));

    // HE = SHA-256(HS ‖ r ‖ M).
    let mut he_in = field(&t.v, "HS");
    he_in.extend(field(&t.v, "r"));
    he_in.extend(&msg);
    let he = ring::digest::digest(&ring::digest::SHA256, &he_in);
    assert_eq!(he.as_ref().to_vec(), field(&t.v, "HE"));

    verify(&kpak, &t.id, &msg, &field(&t.v, "Signature")).expect("RFC signature verifies");
    let verifier = EccsiVerifier::new(&kpak, &t.id, &pvt).expect("verifier");
    assert_eq!(verifier.y_bytes().to_vec(), field(&t.v, "Y"));
    verifier
        .verify(&msg, &field(&t.v, "Signature"))
        .expect("RFC signature verifies (cached)");

    // A fresh random signature verifies too.
    let rng = SystemRandom::new();
    let sig2 = signer.sign(&msg, &rng).expect("sign");
    assert_ne!(sig2, sig);
    verify(&kpak, &t.id, &msg, &sig2).expect("verifies");
    verifier.verify(&msg, &sig2).expect("verifies (cached)");
}

#[test]
fn rfc6507_negative_cases() {
    let t = rfc();
    let kpak = t.master.kpak();
    let msg = field(&t.v, "M");
    let sig = field(&t.v, "Signature");
    let pvt = Pvt::from_bytes(&field(&t.v, "PVT")).expect("PVT");
    let verifier = EccsiVerifier::new(&kpak, &t.id, &pvt).expect("verifier");

    // A flipped bit in r, in s, and in the PVT part.
    for pos in [0usize, 31, 32, 63, 64 + 10, 128] {
        let mut bad = sig.clone();
        bad[pos] ^= 0x01;
        assert_eq!(
            verify(&kpak, &t.id, &msg, &bad),
            Err(CryptoError::BadSignature),
            "flip at {pos}"
        );
        assert_eq!(verifier.verify(&msg, &bad), Err(CryptoError::BadSignature));
    }
    // Truncated / extended.
    assert_eq!(
        verify(&kpak, &t.id, &msg, &sig[..128]),
        Err(CryptoError::BadSignature)
    );
    let mut long = sig.clone();
    long.push(0);
    assert_eq!(
        verify(&kpak, &t.id, &msg, &long),
        Err(CryptoError::BadSignature)
    );
    // r = 0, s = 0, s = q (out of range).
    let q = field(&t.v, "q");
    for (range, value) in [(0..32, vec![0u8; 32]), (32..64, vec![0u8; 32]), (32..64, q)] {
        let mut bad = sig.clone();
        bad[range].copy_from_slice(&value);
        assert_eq!(
            verify(&kpak, &t.id, &msg, &bad),
            Err(CryptoError::BadSignature)
        );
    }
    // Other message, other identifier.
    let mut other_msg = msg.clone();
    other_msg[0] ^= 1;
    assert_eq!(
        verify(&kpak, &t.id, &other_msg, &sig),
        Err(CryptoError::BadSignature)
    );
    let mut other_id = t.id.clone();
    other_id[0] ^= 1;
    assert_eq!(
        verify(&kpak, &other_id, &msg, &sig),
        Err(CryptoError::BadSignature)
    );

    // Key pair validation: a flipped bit in SSK, a different (valid) PVT, an off-curve PVT.
    let mut ssk_bytes = field(&t.v, "SSK");
    ssk_bytes[31] ^= 1;
    let bad_ssk = Ssk::from_bytes(&ssk_bytes).expect("still a scalar");
    assert_eq!(
        EccsiSigner::new(&kpak, &t.id, &bad_ssk, &pvt).err(),
        Some(CryptoError::InvalidEccsiKeyPair)
    );
    let ssk = Ssk::from_bytes(&field(&t.v, "SSK")).expect("SSK");
    let other_pvt = Pvt::from_bytes(&field(&t.v, "J")).expect("J is a point");
    assert_eq!(
        EccsiSigner::new(&kpak, &t.id, &ssk, &other_pvt).err(),
        Some(CryptoError::InvalidEccsiKeyPair)
    );
    let mut pvt_bytes = field(&t.v, "PVT");
    pvt_bytes[40] ^= 1;
    assert_eq!(
        Pvt::from_bytes(&pvt_bytes).err(),
        Some(CryptoError::NotOnCurve { what: "PVT" })
    );
    // Wrong identifier for the pair.
    let mut other_id = t.id.clone();
    other_id.push(0);
    assert_eq!(
        EccsiSigner::new(&kpak, &other_id, &ssk, &pvt).err(),
        Some(CryptoError::InvalidEccsiKeyPair)
    );
    // Encodings.
    assert!(matches!(
        Ssk::from_bytes(&[0u8; 32]),
        Err(CryptoError::ScalarOutOfRange { .. })
    ));
    assert!(matches!(
        Ssk::from_bytes(&field(&t.v, "q")),
        Err(CryptoError::ScalarOutOfRange { .. })
    ));
    assert!(matches!(
        Ssk::from_bytes(&[1u8; 31]),
        Err(CryptoError::Malformed { .. })
    ));
    assert!(matches!(
        EccsiMasterSecret::from_bytes(&[0u8; 32]),
        Err(CryptoError::ScalarOutOfRange { .. })
    ));
    assert!(matches!(
        Kpak::from_bytes(&[0u8; 1]),
        Err(CryptoError::Malformed { .. })
    ));
}

#[test]
fn interop_key_sets_validate() {
    let v = load("mikey-sakke-interop.json");
    let kpak = Kpak::from_bytes(&field(&v["kms_init"], "PubAuthKey_KPAK")).expect("KPAK");
    let sets = v["key_sets"].as_array().expect("key_sets");
    assert_eq!(sets.len(), 4);
    let rng = SystemRandom::new();
    for ks in sets {
        let id = field(ks, "UserID");
        assert_eq!(id.len(), 32);
        let ssk = Ssk::from_bytes(&field(ks, "UserSigningKeySSK")).expect("SSK");
        let pvt = Pvt::from_bytes(&field(ks, "UserPubTokenPVT")).expect("PVT");
        let signer = EccsiSigner::new(&kpak, &id, &ssk, &pvt).expect("interop pair validates");
        let sig = signer.sign(b"interop", &rng).expect("sign");
        verify(&kpak, &id, b"interop", &sig).expect("verify");
        // Not valid for another identity's UID.
        let mut other = id.clone();
        other[31] ^= 0x80;
        assert_eq!(
            EccsiSigner::new(&kpak, &other, &ssk, &pvt).err(),
            Some(CryptoError::InvalidEccsiKeyPair)
        );
    }
}

#[test]
fn deterministic_issuance() {
    let rng = SystemRandom::new();
    let master = EccsiMasterSecret::generate(&rng).expect("master");
    let kpak = master.kpak();
    let id_a = b"2025-10\0tel:+447700900123\0".to_vec();
    let id_b = b"2025-10\0tel:+447700900124\0".to_vec();

    let (ssk1, pvt1) = issue(&master, &id_a).expect("issue");
    let (ssk2, pvt2) = issue(&master, &id_a).expect("issue");
    assert_eq!(pvt1, pvt2);
    assert_eq!(ssk1.to_bytes(), ssk2.to_bytes());

    // The same KSAK loaded elsewhere issues the same pair (no second secret).
    let copy = EccsiMasterSecret::from_bytes(master.to_bytes().expose()).expect("reload");
    let (ssk3, pvt3) = issue(&copy, &id_a).expect("issue");
    assert_eq!(pvt1, pvt3);
    assert_eq!(ssk1.to_bytes(), ssk3.to_bytes());

    // Different identifier: different v, so a different PVT.
    let (ssk_b, pvt_b) = issue(&master, &id_b).expect("issue");
    assert_ne!(pvt1, pvt_b);
    assert_ne!(ssk1.to_bytes(), ssk_b.to_bytes());

    // Another master: different pair for the same id.
    let other = EccsiMasterSecret::generate(&rng).expect("master");
    let (_, pvt_o) = issue(&other, &id_a).expect("issue");
    assert_ne!(pvt1, pvt_o);

    // Issued pairs validate and sign.
    for (id, ssk, pvt) in [(&id_a, &ssk1, &pvt1), (&id_b, &ssk_b, &pvt_b)] {
        let signer = EccsiSigner::new(&kpak, id, ssk, pvt).expect("issued pair validates");
        let sig = signer.sign(b"m", &rng).expect("sign");
        verify(&kpak, id, b"m", &sig).expect("verify");
    }
}

#[test]
fn secrets_are_not_printed() {
    let t = rfc();
    let (ssk, _) = issue_with_v(&t.master, &t.id, &scalar32(&t.v, "v")).expect("issue");
    let ssk_hex = hex::encode(ssk.to_bytes().expose());
    for shown in [format!("{ssk:?}"), format!("{:?}", t.master)] {
        assert!(!shown.to_lowercase().contains(&ssk_hex), "{shown}");
        assert!(!shown.contains("12345"), "{shown}");
    }
}
