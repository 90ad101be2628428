//! RFC 6508 Appendix A (parameter set 1 of RFC 6509 App. A), bit for bit, plus the published
//! MIKEY-SAKKE interop key sets (32-octet TS 33.180 UIDs as identifiers), plus rejections.

use crypto_bigint::U1024;
use sealkm::crypto::curve::{AffinePoint, JacobianPoint};
use sealkm::crypto::fp::{Fp, Fq};
use sealkm::crypto::fp2::Fp2;
use sealkm::crypto::sakke::{
    decapsulate, encapsulate, hash_to_integer_range, issue_rsk, pairing, validate_rsk, HashRange,
    Rsk, SakkeMasterSecret, SakkePublicKey,
};
use sealkm::crypto::secret::SecretBytes;
use sealkm::crypto::CryptoError;
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = match name {
        "rfc" => concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/rfc6508-sakke.json"
        ),
        _ => concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/mikey-sakke-interop.json"
        ),
    };
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("json")
}

fn hx(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("missing {key}"))).expect("hex")
}

fn fp(bytes: &[u8]) -> Fp {
    Fp::from_be_bytes(bytes).expect("canonical F_p element")
}

struct Rfc {
    v: Value,
    b: Vec<u8>,
    z: SakkePublicKey,
    rsk: Rsk,
    ssv: SecretBytes<16>,
}

fn rfc() -> Rfc {
    let v = load("rfc");
    let b = hx(&v, "b");
    let z = SakkePublicKey::from_bytes(&hx(&v, "Z")).expect("Z");
    let rsk = Rsk::from_bytes(&hx(&v, "RSK")).expect("RSK");
    let ssv = SecretBytes::from_slice(&hx(&v, "SSV")).expect("SSV");
    Rfc { v, b, z, rsk, ssv }
}

#[test]
fn domain_parameters_and_g() {
    let v = load("rfc");
    assert_eq!(hex::encode_upper(Fp::ZERO.to_be_bytes()).len(), 256);
    let p = AffinePoint::generator();
    assert_eq!(p.x.to_be_bytes().to_vec(), hx(&v, "Px"));
    assert_eq!(p.y.to_be_bytes().to_vec(), hx(&v, "Py"));
    assert_eq!(
        sealkm::crypto::fp::P.to_be_bytes().as_ref().to_vec(),
        hx(&v, "p")
    );
    assert_eq!(
        sealkm::crypto::fp::Q.to_be_bytes().as_ref().to_vec(),
        hx(&v, "q")
    );
    assert_eq!(b"2011-02\0tel:+447700900123\0".to_vec(), hx(&v, "b"));
    // ⟨P, P⟩ = g with the RFC 6508 §3.2 algorithm.
    assert_eq!(pairing(&p, &p).to_be_bytes().to_vec(), hx(&v, "g"));
}

#[test]
fn kms_public_key_and_rsk() {
    let t = rfc();
    let master = SakkeMasterSecret::from_bytes(&hx(&t.v, "z")).expect("z");
    let z = master.public_key();
    assert_eq!(z.to_bytes(), hx(&t.v, "Z"));
    assert_eq!(z, t.z);
    let rsk = issue_rsk(&master, &t.b).expect("issue");
    assert_eq!(rsk.to_bytes().expose().to_vec(), hx(&t.v, "RSK"));
    validate_rsk(&t.z, &t.b, &t.rsk).expect("published RSK validates");
    // The RFC-exact pairing as the RFC writes the check: ⟨[b]P + Z, K⟩ = g.
    let b = U1024::from_be_slice(&{
        let mut buf = [0u8; 128];
        buf[128 - t.b.len()..].copy_from_slice(&t.b);
        buf
    });
    let bp_z = JacobianPoint::from_affine(&AffinePoint::generator())
        .mul_vartime(&b)
        .add_vartime(&JacobianPoint::from_affine(z.point()))
        .to_affine_vartime()
        .expect("finite");
    let k = AffinePoint::from_bytes(&hx(&t.v, "RSK"), "RSK").expect("RSK point");
    assert_eq!(pairing(&bp_z, &k).to_be_bytes().to_vec(), hx(&t.v, "g"));
}

#[test]
fn encapsulation_intermediates_and_output() {
    let t = rfc();
    // r = HashToIntegerRange(SSV ‖ b, q).
    let mut s = t.ssv.expose().to_vec();
    s.extend_from_slice(&t.b);
    let r = hash_to_integer_range(&s, HashRange::Q);
    assert_eq!(r.expose().to_vec(), hx(&t.v, "r"));
    // R_(b,S) = [r]([b]P + Z), recomputed independently with the variable-time ladder.
    let r_int = U1024::from_be_slice(r.expose());
    let b_fq = Fq::from_be_bytes_reduced(&t.b);
    let bp_z = JacobianPoint::from_affine(&AffinePoint::generator())
        .mul_vartime(&b_fq.to_uint())
        .add_vartime(&JacobianPoint::from_affine(t.z.point()));
    let r_bs = bp_z
        .mul_vartime(&r_int)
        .to_affine_vartime()
        .expect("finite");
    assert_eq!(r_bs.to_bytes().to_vec(), hx(&t.v, "R_bS"));
    // g^r = (1 + i·g)^r read in PF_p.
    let g = fp(&hx(&t.v, "g"));
    let g_r = Fp2::new(Fp::ONE, g).pow_vartime(&r_int).to_pfp();
    assert_eq!(g_r.to_be_bytes().to_vec(), hx(&t.v, "g_r"));
    // mask and H.
    let mask = hash_to_integer_range(&g_r.to_be_bytes(), HashRange::TwoPow128);
    assert_eq!(mask.expose().to_vec(), hx(&t.v, "mask"));
    let h: Vec<u8> = mask
        .expose()
        .iter()
        .zip(t.ssv.expose())
        .map(|(a, b)| a ^ b)
        .collect();
    assert_eq!(h, hx(&t.v, "H"));
    // The API end to end.
    let data = encapsulate(&t.z, &t.b, &t.ssv).expect("encapsulate");
    assert_eq!(data, hx(&t.v, "EncapsulatedData"));
    // ⟨R_(b,S), K⟩ = g^r (what the receiver computes).
    let k = AffinePoint::from_bytes(&hx(&t.v, "RSK"), "RSK").expect("RSK point");
    assert_eq!(pairing(&r_bs, &k), g_r);
}

#[test]
fn decapsulation_recovers_ssv() {
    let t = rfc();
    let data = hx(&t.v, "EncapsulatedData");
    let ssv = decapsulate(&t.z, &t.b, &t.rsk, &data).expect("decapsulate");
    assert_eq!(ssv.expose().to_vec(), hx(&t.v, "SSV"));
}

#[test]
fn interop_key_sets_validate_with_uid_identifiers() {
    let v = load("interop");
    let z = SakkePublicKey::from_bytes(&hx(&v["kms_init"], "PubEncKey_Z")).expect("PubEncKey");
    let sets = v["key_sets"].as_array().expect("key_sets");
    assert_eq!(sets.len(), 4);
    let mut rsks = Vec::new();
    for set in sets {
        let uid = hx(set, "UserID");
        assert_eq!(uid.len(), 32);
        let rsk = Rsk::from_bytes(&hx(set, "UserDecryptKey_RSK")).expect("RSK decodes");
        validate_rsk(&z, &uid, &rsk).expect("interop RSK validates");
        rsks.push((uid, rsk));
    }
    // Cross-check: an RSK does not validate for another user's UID.
    assert_eq!(
        validate_rsk(&z, &rsks[1].0, &rsks[0].1),
        Err(CryptoError::InvalidRsk)
    );
    // Round trip to one of the interop users with the published Z.
    let ssv = SecretBytes::new([0x5Au8; 16]);
    let data = encapsulate(&z, &rsks[2].0, &ssv).expect("encapsulate");
    assert_eq!(
        decapsulate(&z, &rsks[2].0, &rsks[2].1, &data).expect("decapsulate"),
        ssv
    );
}

#[test]
fn flipped_rsk_bits_are_rejected() {
    let t = rfc();
    let good = hx(&t.v, "RSK");
    // A flipped coordinate bit leaves the curve: typed decoding error.
    let mut bad = good.clone();
    bad[100] ^= 0x01;
    assert!(matches!(
        Rsk::from_bytes(&bad),
        Err(CryptoError::NotOnCurve { .. })
    ));
    // A valid curve point that is not the RSK (−K, K + (0,0)) fails validation.
    let k = AffinePoint::from_bytes(&good, "RSK").expect("point");
    let neg = Rsk::from_bytes(&k.neg().to_bytes()).expect("−K is on the curve");
    assert_eq!(validate_rsk(&t.z, &t.b, &neg), Err(CryptoError::InvalidRsk));
    let two_torsion = JacobianPoint {
        x: Fp::ZERO,
        y: Fp::ZERO,
        z: Fp::ONE,
    };
    let k_plus_t = JacobianPoint::from_affine(&k).add_vartime(&two_torsion);
    let k_plus_t = k_plus_t.to_affine_vartime().expect("finite");
    let rsk_t = Rsk::from_bytes(&k_plus_t.to_bytes()).expect("on curve");
    // K + T with T of order 2: RFC 6508 §6.1.2's check cannot see T (the pairing with a first
    // argument of order q ignores it), so it passes; decapsulation's order check rejects it.
    assert_eq!(validate_rsk(&t.z, &t.b, &rsk_t), Ok(()));
    let data = hx(&t.v, "EncapsulatedData");
    assert_eq!(
        decapsulate(&t.z, &t.b, &rsk_t, &data),
        Err(CryptoError::DecapsulationFailed)
    );
    // Wrong identifier.
    assert_eq!(
        validate_rsk(&t.z, b"2011-03\0tel:+447700900123\0", &t.rsk),
        Err(CryptoError::InvalidRsk)
    );
    // Malformed lengths and prefix.
    assert!(matches!(
        Rsk::from_bytes(&good[..256]),
        Err(CryptoError::Malformed { .. })
    ));
    let mut pre = good.clone();
    pre[0] = 0x02;
    assert!(matches!(
        Rsk::from_bytes(&pre),
        Err(CryptoError::Malformed { .. })
    ));
}

#[test]
fn tampered_encapsulated_data_is_rejected() {
    let t = rfc();
    let data = hx(&t.v, "EncapsulatedData");
    // A bit of H: the SSV changes, the re-encapsulation check fails.
    for pos in [257usize, 265, 272] {
        let mut bad = data.clone();
        bad[pos] ^= 0x80;
        assert_eq!(
            decapsulate(&t.z, &t.b, &t.rsk, &bad),
            Err(CryptoError::DecapsulationFailed)
        );
    }
    // A bit of R: off the curve (typed decoding error).
    let mut bad = data.clone();
    bad[50] ^= 0x01;
    assert!(matches!(
        decapsulate(&t.z, &t.b, &t.rsk, &bad),
        Err(CryptoError::NotOnCurve { .. })
    ));
    // R replaced by another curve point (−R): decoding passes, the check fails.
    let r = AffinePoint::from_bytes(&data[..257], "R").expect("R");
    let mut swapped = r.neg().to_bytes().to_vec();
    swapped.extend_from_slice(&data[257..]);
    assert_eq!(
        decapsulate(&t.z, &t.b, &t.rsk, &swapped),
        Err(CryptoError::DecapsulationFailed)
    );
    // Wrong identifier.
    assert_eq!(
        decapsulate(&t.z, b"2011-03\0tel:+447700900123\0", &t.rsk, &data),
        Err(CryptoError::DecapsulationFailed)
    );
    // Lengths and prefix. A shorter H is read left-padded (shortest-length writers, see
    // tests/sakke_lengths.rs): cutting an octet off changes the SSV and fails the check.
    assert_eq!(
        decapsulate(&t.z, &t.b, &t.rsk, &data[..272]),
        Err(CryptoError::DecapsulationFailed)
    );
    assert!(matches!(
        decapsulate(&t.z, &t.b, &t.rsk, &data[..256]),
        Err(CryptoError::Malformed { .. })
    ));
    let mut long = data.clone();
    long.push(0);
    assert!(matches!(
        decapsulate(&t.z, &t.b, &t.rsk, &long),
        Err(CryptoError::Malformed { .. })
    ));
    let mut pre = data.clone();
    pre[0] = 0x00;
    assert!(matches!(
        decapsulate(&t.z, &t.b, &t.rsk, &pre),
        Err(CryptoError::Malformed { .. })
    ));
}

#[test]
fn public_key_and_master_secret_checks() {
    let t = rfc();
    let zb = hx(&t.v, "Z");
    // Off-curve.
    let mut bad = zb.clone();
    bad[256] ^= 0x01;
    assert!(matches!(
        SakkePublicKey::from_bytes(&bad),
        Err(CryptoError::NotOnCurve { .. })
    ));
    // On the curve but not of order q: (0, 0).
    let mut torsion = vec![0x04u8];
    torsion.extend_from_slice(&[0u8; 256]);
    assert!(SakkePublicKey::from_bytes(&torsion).is_err());
    // Non-canonical coordinate (x = p).
    let mut noncanon = vec![0x04u8];
    noncanon.extend_from_slice(&hx(&t.v, "p"));
    noncanon.extend_from_slice(&[0u8; 128]);
    assert!(matches!(
        SakkePublicKey::from_bytes(&noncanon),
        Err(CryptoError::Malformed { .. })
    ));
    // Master secret range [2, q − 1].
    assert!(SakkeMasterSecret::from_bytes(&[1]).is_err());
    assert!(SakkeMasterSecret::from_bytes(&hx(&t.v, "q")).is_err());
    assert!(SakkeMasterSecret::from_bytes(&[0u8; 129]).is_err());
    let m = SakkeMasterSecret::from_bytes(&[2]).expect("2 is allowed");
    assert_eq!(m.to_bytes().expose()[127], 2);
    assert!(!format!("{m:?}").contains('2'));
    // a + z ≡ 0 mod q: z = q − a.
    let a = Fq::from_be_bytes_reduced(b"collide");
    let z = SakkeMasterSecret::from_bytes(&(Fq::ZERO - a).to_be_bytes()).expect("z");
    assert_eq!(
        issue_rsk(&z, b"collide").err(),
        Some(CryptoError::MasterKeyCollision)
    );
}
