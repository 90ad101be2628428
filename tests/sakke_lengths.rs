//! SAKKE lengths between sealkm and a shortest-length writer (issue: "about one message in 128
//! fails between them and us, both ways").
//!
//! RFC 6508 hashes g^r as 128 octets and writes H as 16; at least one deployed MIKEY-SAKKE
//! implementation hashes g^r without its leading zero octets and writes H without them. The
//! model of that writer below is independent of sealkm's encapsulation (g^r by
//! square-and-multiply in F_p², R by double-and-add). The SSVs that make the two forms differ
//! are found by a deterministic search (about 1 in 150 SSVs gives a g^r with a leading zero
//! octet, 1 in 256 an H with one).
//!
//! Checked: such messages decapsulate (w re-read at its shortest length; H left-padded);
//! tampered ones are still refused; our writer never emits a value whose two forms differ; and
//! the same holds through a signed MIKEY I_MESSAGE.

use crypto_bigint::U1024;
use sealkm::crypto::curve::{AffinePoint, JacobianPoint};
use sealkm::crypto::fp::{Fp, Fq};
use sealkm::crypto::fp2::Fp2;
use sealkm::crypto::mikey::{
    self, BuildParams, CsIdMap, Party, Payload, ReceiverContext, TrustedKms,
};
use sealkm::crypto::sakke::{
    decapsulate, encapsulate, encapsulate_drawing, encapsulate_random, encoding_is_unambiguous,
    hash_to_integer_range, issue_rsk, pairing, HashRange, Rsk, SakkeMasterSecret, SakkePublicKey,
};
use sealkm::crypto::secret::SecretBytes;
use sealkm::crypto::{eccsi, kdf, CryptoError};

const POINT: usize = 257;

struct Kms {
    z: SakkePublicKey,
    master: SakkeMasterSecret,
}

fn kms() -> Kms {
    let master = SakkeMasterSecret::from_bytes(&[0x3Cu8; 96]).expect("z_T");
    Kms {
        z: master.public_key(),
        master,
    }
}

fn strip(x: &[u8]) -> &[u8] {
    let n = x.iter().take_while(|&&b| b == 0).count();
    &x[n..]
}

/// What the shortest-length writer computes for (id, SSV): g^r (128 octets, before stripping),
/// R_(b,S), and H (16 octets, before stripping).
struct Model {
    g_r: [u8; 128],
    r_point: [u8; POINT],
    h: [u8; 16],
}

fn r_scalar(id: &[u8], ssv: &[u8; 16]) -> U1024 {
    let mut s = ssv.to_vec();
    s.extend_from_slice(id);
    U1024::from_be_slice(hash_to_integer_range(&s, HashRange::Q).expose())
}

fn g_r(id: &[u8], ssv: &[u8; 16]) -> [u8; 128] {
    let p = AffinePoint::generator();
    let g = pairing(&p, &p);
    Fp2::new(Fp::ONE, g)
        .pow_vartime(&r_scalar(id, ssv))
        .to_pfp()
        .to_be_bytes()
}

/// H of the shortest-length writer: SSV ⊕ HashToIntegerRange(g^r without leading zeros, 2^128).
fn short_h(g_r: &[u8; 128], ssv: &[u8; 16]) -> [u8; 16] {
    let mask = hash_to_integer_range(strip(g_r), HashRange::TwoPow128);
    let mut h = *ssv;
    for (o, m) in h.iter_mut().zip(mask.expose()) {
        *o ^= m;
    }
    h
}

fn model(z: &SakkePublicKey, id: &[u8], ssv: &[u8; 16]) -> Model {
    let g_r = g_r(id, ssv);
    let b = Fq::from_be_bytes_reduced(id).to_uint();
    let p = JacobianPoint::from_affine(&AffinePoint::generator());
    let bp_z = p
        .mul_vartime(&b)
        .add_vartime(&JacobianPoint::from_affine(z.point()));
    let r = bp_z
        .mul_vartime(&r_scalar(id, ssv))
        .to_affine_vartime()
        .expect("finite R");
    Model {
        g_r,
        r_point: r.to_bytes(),
        h: short_h(&g_r, ssv),
    }
}

/// The shortest-length writer's Encapsulated Data: R ‖ H without leading zero octets.
fn shortest_message(m: &Model) -> Vec<u8> {
    let mut out = m.r_point.to_vec();
    out.extend_from_slice(strip(&m.h));
    out
}

/// The first SSV in a fixed sequence whose (g^r, shortest-writer H) satisfy `want`.
fn find_ssv(id: &[u8], want: impl Fn(&[u8; 128], &[u8; 16]) -> bool) -> [u8; 16] {
    for i in 0u64..20_000 {
        let mut ssv = [0xA7u8; 16];
        ssv[8..].copy_from_slice(&i.to_be_bytes());
        let gr = g_r(id, &ssv);
        if want(&gr, &short_h(&gr, &ssv)) {
            return ssv;
        }
    }
    panic!("no SSV found");
}

fn id() -> Vec<u8> {
    b"2026-12\0tel:+447700900456\0".to_vec()
}

#[test]
fn a_message_hashing_g_r_at_its_shortest_length_decapsulates() {
    let k = kms();
    let id = id();
    let rsk = issue_rsk(&k.master, &id).expect("rsk");
    let ssv = find_ssv(&id, |gr, h| gr[0] == 0 && h[0] != 0);
    let m = model(&k.z, &id, &ssv);
    let theirs = shortest_message(&m);
    let ours = encapsulate(&k.z, &id, &SecretBytes::new(ssv)).expect("enc");
    // Same R, same length, a different H: the two readings disagree on this SSV.
    assert_eq!(theirs.len(), 273);
    assert_eq!(theirs[..POINT], ours[..POINT]);
    assert_ne!(theirs[POINT..], ours[POINT..]);
    // The RFC form still reads, and so does theirs.
    assert_eq!(
        decapsulate(&k.z, &id, &rsk, &ours)
            .expect("rfc form")
            .expose(),
        &ssv
    );
    assert_eq!(
        decapsulate(&k.z, &id, &rsk, &theirs)
            .expect("shortest g^r")
            .expose(),
        &ssv
    );
}

#[test]
fn a_hint_without_its_leading_zero_octet_is_left_padded() {
    let k = kms();
    let id = id();
    let rsk = issue_rsk(&k.master, &id).expect("rsk");
    // g^r without a leading zero: both writers agree on H, which starts with a zero octet.
    let ssv = find_ssv(&id, |gr, h| gr[0] != 0 && h[0] == 0);
    let m = model(&k.z, &id, &ssv);
    let theirs = shortest_message(&m);
    let ours = encapsulate(&k.z, &id, &SecretBytes::new(ssv)).expect("enc");
    assert_eq!(theirs.len(), 272);
    assert_eq!(ours.len(), 273);
    assert_eq!(ours[POINT], 0);
    assert_eq!(
        theirs[..],
        [&ours[..POINT], &ours[POINT + 1..]].concat()[..]
    );
    assert_eq!(
        decapsulate(&k.z, &id, &rsk, &theirs)
            .expect("272 octets")
            .expose(),
        &ssv
    );
}

#[test]
fn tampered_shortest_length_messages_are_refused() {
    let k = kms();
    let id = id();
    let rsk = issue_rsk(&k.master, &id).expect("rsk");
    let other = issue_rsk(&k.master, b"2026-12\0tel:+447700900789\0").expect("rsk");
    let long_g_r = find_ssv(&id, |gr, h| gr[0] == 0 && h[0] != 0);
    let short_h = find_ssv(&id, |gr, h| gr[0] != 0 && h[0] == 0);
    for ssv in [long_g_r, short_h] {
        let good = shortest_message(&model(&k.z, &id, &ssv));
        assert!(decapsulate(&k.z, &id, &rsk, &good).is_ok());
        let refused = |data: &[u8]| {
            assert_eq!(
                decapsulate(&k.z, &id, &rsk, data).map(|s| *s.expose()),
                Err(CryptoError::DecapsulationFailed)
            )
        };
        // A bit of H, first and last octet.
        for pos in [POINT, good.len() - 1] {
            let mut bad = good.clone();
            bad[pos] ^= 0x01;
            refused(&bad);
        }
        // H cut short by one more octet, or dropped.
        refused(&good[..good.len() - 1]);
        refused(&good[..POINT]);
        // −R.
        let r = AffinePoint::from_bytes(&good[..POINT], "R").expect("R");
        let mut neg = r.neg().to_bytes().to_vec();
        neg.extend_from_slice(&good[POINT..]);
        refused(&neg);
        // Another receiver's key, or the right key under another identity.
        assert_eq!(
            decapsulate(&k.z, &id, &other, &good).map(|s| *s.expose()),
            Err(CryptoError::DecapsulationFailed)
        );
        assert_eq!(
            decapsulate(&k.z, b"2026-12\0tel:+447700900789\0", &rsk, &good).map(|s| *s.expose()),
            Err(CryptoError::DecapsulationFailed)
        );
    }
    // Only leading zero octets are stripped: H computed over g^r without a nonzero first
    // octet is no encoding of anything and is refused.
    let ssv = find_ssv(&id, |gr, _| gr[0] != 0);
    let m = model(&k.z, &id, &ssv);
    let mask = hash_to_integer_range(&m.g_r[1..], HashRange::TwoPow128);
    let mut forged = m.r_point.to_vec();
    forged.extend(ssv.iter().zip(mask.expose()).map(|(s, x)| s ^ x));
    assert_eq!(
        decapsulate(&k.z, &id, &rsk, &forged).map(|s| *s.expose()),
        Err(CryptoError::DecapsulationFailed)
    );
    // Longer than R ‖ 16-octet H, or shorter than R: malformed.
    let mut long = shortest_message(&m);
    long.extend_from_slice(&[0; 2]);
    assert!(matches!(
        decapsulate(&k.z, &id, &rsk, &long),
        Err(CryptoError::Malformed { .. })
    ));
    assert!(matches!(
        decapsulate(&k.z, &id, &rsk, &m.r_point[..POINT - 1]),
        Err(CryptoError::Malformed { .. })
    ));
}

#[test]
fn our_writer_draws_again_until_both_readings_agree() {
    let k = kms();
    let id = id();
    let bad_g_r = find_ssv(&id, |gr, _| gr[0] == 0);
    let bad_h = find_ssv(&id, |gr, h| gr[0] != 0 && h[0] == 0);
    let good = find_ssv(&id, |gr, h| gr[0] != 0 && h[0] != 0);
    assert!(!encoding_is_unambiguous(&id, &SecretBytes::new(bad_g_r)));
    assert!(!encoding_is_unambiguous(&id, &SecretBytes::new(bad_h)));
    assert!(encoding_is_unambiguous(&id, &SecretBytes::new(good)));
    let mut draws = vec![bad_g_r, bad_h, good].into_iter();
    let mut drawn = 0;
    let (ssv, data) = encapsulate_drawing(&k.z, &id, &mut |buf| {
        drawn += 1;
        *buf = draws.next().expect("a draw");
        Ok(())
    })
    .expect("encapsulate");
    assert_eq!(drawn, 3);
    assert_eq!(ssv.expose(), &good);
    assert_eq!(data, encapsulate(&k.z, &id, &ssv).expect("enc"));
    assert_eq!(data, shortest_message(&model(&k.z, &id, &good)));
    // A source that only yields ambiguous SSVs is treated as broken, not looped on forever.
    assert_eq!(
        encapsulate_drawing(&k.z, &id, &mut |buf| {
            *buf = bad_g_r;
            Ok(())
        })
        .map(|(s, _)| *s.expose()),
        Err(CryptoError::Rng)
    );
}

#[test]
fn random_encapsulations_read_the_same_under_both_conventions() {
    let k = kms();
    let id = id();
    let rng = ring::rand::SystemRandom::new();
    // 128 draws: without the redraw, about 63 % of such runs would contain an ambiguous one.
    for _ in 0..128 {
        let (ssv, data) = encapsulate_random(&k.z, &id, &rng).expect("enc");
        let gr = g_r(&id, ssv.expose());
        assert_ne!(gr[0], 0);
        assert_ne!(data[POINT], 0);
        assert_eq!(short_h(&gr, ssv.expose())[..], data[POINT..]);
    }
}

#[test]
fn a_signed_i_message_from_a_shortest_length_writer_opens() {
    let k = kms();
    let ksak = eccsi::EccsiMasterSecret::from_bytes(&[0x21u8; 32]).expect("ksak");
    let kpak = ksak.kpak();
    let (kms_uri, period, offset) = ("kms.example.org", 2_592_000u64, 0u64);
    let ntp_timestamp = 0xec89_8da8_0000_0000u64;
    let period_no = kdf::key_period_no(ntp_timestamp >> 32, period, offset).expect("period");
    let (gms, alice) = ("sip:gms@example.org", "sip:alice@example.org");
    let gms_uid = kdf::uid(gms, kms_uri, period, offset, period_no);
    let alice_uid = kdf::uid(alice, kms_uri, period, offset, period_no);
    let (ssk, pvt) = eccsi::issue(&ksak, &gms_uid).expect("ssk");
    let signer = eccsi::EccsiSigner::new(&kpak, &gms_uid, &ssk, &pvt).expect("signer");
    let alice_rsk: Rsk = issue_rsk(&k.master, &alice_uid).expect("rsk");
    // A GMK whose g^r for Alice has a leading zero octet and whose shortest H also does.
    for want_short_h in [false, true] {
        let gmk = find_ssv(&alice_uid, |gr, h| {
            (gr[0] == 0) != want_short_h && (h[0] == 0) == want_short_h
        });
        let key = SecretBytes::new(gmk);
        let params = BuildParams {
            signer: &signer,
            initiator: Party {
                uri: gms,
                uid: &gms_uid,
                kms_uri,
            },
            responder: Party {
                uri: alice,
                uid: &alice_uid,
                kms_uri,
            },
            responder_z: &k.z,
            key: &key,
            csb_id: kdf::KeyPurpose::Gmk.key_id(0x0123_4567),
            cs_map: CsIdMap::Empty { n_cs: 0 },
            ntp_timestamp,
            security_policy: None,
            sakke_to_self: None,
            key_parameters: None,
            uid_roles: false,
        };
        let ours =
            mikey::build_i_message(&params, &ring::rand::SystemRandom::new()).expect("build");
        // Their message: the same, with their Encapsulated Data, signed by the GMS.
        let mut m = mikey::parse(&ours).expect("parse");
        for p in m.payloads.iter_mut() {
            if let Payload::Sakke(s) = p {
                s.data = shortest_message(&model(&k.z, &alice_uid, &gmk));
                assert_ne!(s.data, encapsulate(&k.z, &alice_uid, &key).expect("enc"));
            }
        }
        let mut theirs = mikey::encode(&m).expect("encode");
        let n = theirs.len() - 129;
        let sig = signer
            .sign(&theirs[..n], &ring::rand::SystemRandom::new())
            .expect("sign");
        theirs.truncate(n);
        theirs.extend_from_slice(&sig);
        let trusted = [TrustedKms {
            kms_uri,
            key_period_s: period,
            key_offset_s: offset,
            kpak: &kpak,
        }];
        let ctx = ReceiverContext {
            uri: alice,
            kms_uri,
            key_period_s: period,
            key_offset_s: offset,
            z: &k.z,
            rsk: &alice_rsk,
            trusted: &trusted,
            initiator_uri: None,
        };
        for bytes in [&ours, &theirs] {
            let opened = mikey::open_i_message(bytes, &ctx).expect("open");
            assert_eq!(opened.key.expose(), &gmk);
        }
    }
}
