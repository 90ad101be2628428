//! The four published MIKEY-SAKKE I_MESSAGEs of an independent implementation
//! (tests/vectors/mikey-sakke-interop.json): framing, signature, decapsulation, key IDs.

use sealkm::crypto::mikey::{self, codes, CsIdMap, Payload};
use sealkm::crypto::CryptoError;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/mikey-sakke-interop.json"
    );
    let text = std::fs::read_to_string(path).expect("read interop vectors");
    serde_json::from_str(&text).expect("parse interop vectors")
}

fn hexs(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn u32_hex(v: &Value) -> u32 {
    u32::from_str_radix(v.as_str().expect("hex string"), 16).expect("u32 hex")
}

fn cases() -> Vec<Value> {
    vectors()["imessage_cases"]
        .as_array()
        .expect("cases")
        .clone()
}

fn message(case: &Value) -> Vec<u8> {
    let bytes = hexs(&case["i_message_hex"]);
    assert_eq!(
        bytes.len() as u64,
        case["i_message_length_octets"].as_u64().unwrap()
    );
    bytes
}

#[test]
fn there_are_four_cases() {
    assert_eq!(cases().len(), 4);
}

#[test]
fn parse_matches_every_decoded_field() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let d = &case["decoded_from_i_message"];
        let bytes = message(&case);
        let m = mikey::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        m.validate_structure()
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let h = &m.header;
        assert_eq!(h.version, 1, "{name}");
        assert_eq!(h.data_type, codes::DATA_TYPE_SAKKE, "{name}");
        assert!(!h.v, "{name}");
        assert_eq!(h.csb_id, u32_hex(&d["csb_id"]), "{name}");
        assert_eq!(
            u64::from(h.prf_func),
            d["prf_func"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            u64::from(h.cs_map.map_type()),
            d["cs_id_map_type"].as_u64().unwrap(),
            "{name}"
        );
        let tag: u64 = d["purpose_tag"].as_str().unwrap()[..1].parse().unwrap();
        assert_eq!(u64::from(m.purpose_tag()), tag, "{name}");

        // #CS and the map info octets, re-encoded from the typed map, equal the published ones.
        let n_cs = d["number_of_cs"].as_u64().unwrap() as usize;
        match &h.cs_map {
            CsIdMap::SrtpId(v) => assert_eq!(v.len(), n_cs, "{name}"),
            CsIdMap::GenericId(v) => assert_eq!(v.len(), n_cs, "{name}"),
            CsIdMap::Empty { n_cs: n } => assert_eq!(usize::from(*n), n_cs, "{name}"),
        }
        let map_info = hexs(&d["cs_id_map_info_hex"]);
        assert_eq!(
            &bytes[10..10 + map_info.len()],
            map_info.as_slice(),
            "{name}"
        );
        if let Some(spis) = d.get("generic_id_spi") {
            let CsIdMap::GenericId(entries) = &h.cs_map else {
                panic!("{name}: not GENERIC-ID")
            };
            let want: Vec<Vec<u8>> = spis.as_array().unwrap().iter().map(hexs).collect();
            let got: Vec<Vec<u8>> = entries.iter().map(|e| e.spi.clone()).collect();
            assert_eq!(got, want, "{name}");
        }

        let t = m.timestamp().expect("T");
        assert_eq!(
            u64::from(t.ts_type),
            d["timestamp_type"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            t.value.to_be_bytes().to_vec(),
            hexs(&d["timestamp_ntp_utc_64bit"]),
            "{name}"
        );
        assert_eq!(
            t.ntp_seconds(),
            d["timestamp_ntp_seconds"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(m.rand().unwrap(), hexs(&d["rand"]).as_slice(), "{name}");
        assert_eq!(
            m.rand().unwrap(),
            hexs(&case["expected"]["rand"]).as_slice(),
            "{name}"
        );

        let ids: Vec<_> = m.ids().collect();
        let want_ids = d["id_payloads"].as_array().unwrap();
        assert_eq!(ids.len(), want_ids.len(), "{name}");
        for (got, want) in ids.iter().zip(want_ids) {
            assert_eq!(
                u64::from(got.role),
                want["role"].as_u64().unwrap(),
                "{name}"
            );
            assert_eq!(
                u64::from(got.id_type),
                want["id_type"].as_u64().unwrap(),
                "{name}"
            );
            let value = match want.get("value_hex") {
                Some(h) => hexs(h),
                None => want["value"].as_str().unwrap().as_bytes().to_vec(),
            };
            assert_eq!(got.data, value, "{name}");
        }

        let s = m.sakke().expect("SAKKE");
        assert_eq!(
            u64::from(s.params),
            d["sakke_params"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            u64::from(s.id_scheme),
            d["sakke_id_scheme"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(s.data.len(), 273, "{name}");
        assert_eq!(s.data[0], 0x04, "{name}");

        let ext: Vec<u64> = m.extensions().map(|e| u64::from(e.ext_type)).collect();
        let want_ext: Vec<u64> = d["general_extension_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(ext, want_ext, "{name}");
        assert!(m.security_policy().is_some(), "{name}");

        assert_eq!(
            u64::from(m.sign.sig_type),
            d["sign_type"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(m.sign.signature.len(), codes::ECCSI_SIGNATURE_LEN, "{name}");

        // Payload order as published.
        let order: Vec<&str> = d["payload_order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut got = vec!["HDR"];
        for p in &m.payloads {
            got.push(match p {
                Payload::Timestamp(_) => "T",
                Payload::Rand(_) => "RAND",
                Payload::Id(id) => match id.role {
                    codes::role::UID_INITIATOR => "UID-initiator(3GPP?)",
                    codes::role::UID_RESPONDER => "UID-responder(3GPP?)",
                    codes::role::KMS_INITIATOR => "IDRkmsi",
                    codes::role::KMS_RESPONDER => "IDRkmsr",
                    _ => "IDR?",
                },
                Payload::SecurityPolicy(_) => "SP",
                Payload::Sakke(_) => "SAKKE",
                Payload::GeneralExt(e) if e.ext_type == 7 => "EXT7",
                Payload::GeneralExt(_) => "EXT?",
            });
        }
        got.push("SIGN");
        assert_eq!(got, order, "{name}");
    }
}

#[test]
fn encode_of_parse_is_the_identity() {
    for case in cases() {
        let bytes = message(&case);
        let m = mikey::parse(&bytes).unwrap();
        assert_eq!(mikey::encode(&m).unwrap(), bytes, "{}", case["name"]);
    }
}

#[test]
fn signed_part_ends_with_the_sign_header() {
    for case in cases() {
        let bytes = message(&case);
        let m = mikey::parse(&bytes).unwrap();
        let signed = mikey::signed_part(&bytes, &m.sign).unwrap();
        assert_eq!(signed.len(), bytes.len() - 129);
        assert_eq!(&signed[signed.len() - 2..], &[0x20, 0x81]);
    }
}

#[test]
fn every_truncation_is_an_error() {
    for case in cases() {
        let bytes = message(&case);
        for n in 0..bytes.len() {
            match mikey::parse(&bytes[..n]) {
                Err(CryptoError::Mikey(_)) => {}
                other => panic!("{} truncated to {n}: {other:?}", case["name"]),
            }
        }
    }
}

#[test]
fn trailing_octets_are_rejected() {
    for case in cases() {
        let mut bytes = message(&case);
        for extra in [&[0u8][..], &[0x20, 0x81], &[0xff; 7]] {
            let mut b = bytes.clone();
            b.extend_from_slice(extra);
            assert_eq!(
                mikey::parse(&b),
                Err(CryptoError::Mikey("trailing octets after the SIGN payload")),
                "{}",
                case["name"]
            );
        }
        bytes.truncate(bytes.len() - 1);
        assert!(mikey::parse(&bytes).is_err());
    }
}

#[test]
fn every_single_bit_flip_parses_or_fails_cleanly() {
    // Flipping a bit in framing fields must give a typed error, never a panic; flipping a bit
    // in content must still round-trip exactly.
    let bytes = message(&cases()[0]);
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            match mikey::parse(&b) {
                Ok(m) => assert_eq!(mikey::encode(&m).unwrap(), b),
                Err(CryptoError::Mikey(_)) => {}
                Err(e) => panic!("unexpected error kind {e:?}"),
            }
        }
    }
}

#[test]
fn header_version_and_data_type_are_checked() {
    let bytes = message(&cases()[2]);
    let mut b = bytes.clone();
    b[0] = 2;
    assert_eq!(
        mikey::parse(&b),
        Err(CryptoError::Mikey("unsupported MIKEY version"))
    );
    let mut b = bytes.clone();
    b[1] = 0;
    assert_eq!(
        mikey::parse(&b),
        Err(CryptoError::Mikey("HDR data type is not SAKKE (26)"))
    );
    let mut b = bytes;
    b[9] = 7; // unknown CS ID map type
    assert_eq!(
        mikey::parse(&b),
        Err(CryptoError::Mikey("unsupported CS ID map type"))
    );
}

// ---- ECCSI signature over the I_MESSAGE (needs kdf + eccsi) ----

use sealkm::crypto::{eccsi, kdf};

struct Kms {
    uri: String,
    period: u64,
    offset: u64,
    kpak: eccsi::Kpak,
}

fn kms() -> Kms {
    let v = vectors();
    let k = &v["kms_init"];
    Kms {
        uri: k["KmsUri"].as_str().unwrap().to_owned(),
        period: k["UserKeyPeriod"].as_u64().unwrap(),
        offset: k["UserKeyOffset"].as_u64().unwrap(),
        kpak: eccsi::Kpak::from_bytes(&hexs(&k["PubAuthKey_KPAK"])).unwrap(),
    }
}

fn uid_at(kms: &Kms, uri: &str, ntp_seconds: u64) -> [u8; 32] {
    let period_no = kdf::key_period_no(ntp_seconds, kms.period, kms.offset).unwrap();
    kdf::uid(uri, &kms.uri, kms.period, kms.offset, period_no)
}

fn initiator_uid(kms: &Kms, case: &Value, bytes: &[u8]) -> [u8; 32] {
    let m = mikey::parse(bytes).unwrap();
    uid_at(
        kms,
        case["initiator_uri"].as_str().unwrap(),
        m.timestamp().unwrap().ntp_seconds(),
    )
}

#[test]
fn signatures_verify_over_the_message_through_the_sign_header() {
    let kms = kms();
    for case in cases() {
        let bytes = message(&case);
        let m = mikey::parse(&bytes).unwrap();
        let uid = initiator_uid(&kms, &case, &bytes);
        // Role 8 carries exactly this UID; role 9 the responder's.
        assert_eq!(m.id(codes::role::UID_INITIATOR).unwrap().data, uid);
        let ruid = uid_at(
            &kms,
            case["responder_uri"].as_str().unwrap(),
            m.timestamp().unwrap().ntp_seconds(),
        );
        assert_eq!(m.id(codes::role::UID_RESPONDER).unwrap().data, ruid);

        let signed = mikey::signed_part(&bytes, &m.sign).unwrap();
        eccsi::verify(&kms.kpak, &uid, signed, &m.sign.signature)
            .unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
        // The reading without the SIGN header does not verify.
        let without_header = &signed[..signed.len() - 2];
        assert_eq!(
            eccsi::verify(&kms.kpak, &uid, without_header, &m.sign.signature),
            Err(CryptoError::BadSignature)
        );
        // Nor does the responder's UID.
        assert_eq!(
            eccsi::verify(&kms.kpak, &ruid, signed, &m.sign.signature),
            Err(CryptoError::BadSignature)
        );
    }
}

/// Parse, then verify exactly as a receiver does; any failure is returned.
fn parse_and_verify(kms: &Kms, uid: &[u8; 32], bytes: &[u8]) -> Result<(), CryptoError> {
    let m = mikey::parse(bytes)?;
    m.validate_structure()?;
    let signed = mikey::signed_part(bytes, &m.sign)?;
    eccsi::verify(&kms.kpak, uid, signed, &m.sign.signature)
}

#[test]
fn a_flipped_bit_anywhere_is_rejected() {
    let kms = kms();
    // One message fully (every bit: ~5600 verifications), the others on a stride.
    for (n, case) in cases().iter().enumerate() {
        let bytes = message(case);
        let uid = initiator_uid(&kms, case, &bytes);
        let stride = if n == 0 { 1 } else { 7 };
        for i in (0..bytes.len()).step_by(stride) {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                match parse_and_verify(&kms, &uid, &b) {
                    Err(CryptoError::BadSignature)
                    | Err(CryptoError::Mikey(_))
                    | Err(CryptoError::NotOnCurve { .. })
                    | Err(CryptoError::Malformed { .. })
                    | Err(CryptoError::ScalarOutOfRange { .. }) => {}
                    other => panic!("{}: bit {bit} of octet {i}: {other:?}", case["name"]),
                }
            }
        }
    }
}

// ---- open_i_message / build_i_message (needs sakke) ----

use sealkm::crypto::mikey::{BuildParams, Party, ReceiverContext, TrustedKms};
use sealkm::crypto::sakke;
use sealkm::crypto::secret::SecretBytes;

struct KeySet {
    uri: String,
    rsk: sakke::Rsk,
    ssk: eccsi::Ssk,
    pvt: eccsi::Pvt,
}

fn key_set(uri: &str) -> KeySet {
    let v = vectors();
    let ks = v["key_sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["UserUri"] == uri)
        .expect("key set");
    KeySet {
        uri: uri.to_owned(),
        rsk: sakke::Rsk::from_bytes(&hexs(&ks["UserDecryptKey_RSK"])).unwrap(),
        ssk: eccsi::Ssk::from_bytes(&hexs(&ks["UserSigningKeySSK"])).unwrap(),
        pvt: eccsi::Pvt::from_bytes(&hexs(&ks["UserPubTokenPVT"])).unwrap(),
    }
}

fn z() -> sakke::SakkePublicKey {
    sakke::SakkePublicKey::from_bytes(&hexs(&vectors()["kms_init"]["PubEncKey_Z"])).unwrap()
}

fn open_as(
    bytes: &[u8],
    receiver: &KeySet,
    initiator_uri: Option<&str>,
    kms: &Kms,
    z: &sakke::SakkePublicKey,
) -> Result<mikey::OpenedMessage, CryptoError> {
    let trusted = [TrustedKms {
        kms_uri: &kms.uri,
        key_period_s: kms.period,
        key_offset_s: kms.offset,
        kpak: &kms.kpak,
    }];
    let ctx = ReceiverContext {
        uri: &receiver.uri,
        kms_uri: &kms.uri,
        key_period_s: kms.period,
        key_offset_s: kms.offset,
        z,
        rsk: &receiver.rsk,
        trusted: &trusted,
        initiator_uri,
    };
    mikey::open_i_message(bytes, &ctx)
}

#[test]
fn open_recovers_the_published_keys_and_ids() {
    let kms = kms();
    let z = z();
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let bytes = message(&case);
        let exp = &case["expected"];
        let receiver = key_set(case["responder_uri"].as_str().unwrap());
        let initiator = case["initiator_uri"].as_str().unwrap();
        let o = open_as(&bytes, &receiver, Some(initiator), &kms, &z)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(o.key.expose().to_vec(), hexs(&exp["key"]), "{name}");
        assert_eq!(o.key_id, u32_hex(&exp["key_id"]), "{name}");
        assert_eq!(o.rand, hexs(&exp["rand"]), "{name}");
        assert_eq!(o.initiator_uri, initiator, "{name}");
        assert_eq!(o.initiator_kms_uri, kms.uri, "{name}");
        assert_eq!(o.key_period_no, 236, "{name}");
        assert_eq!(o.ntp_timestamp >> 32, 3968437672, "{name}");
        assert_eq!(
            o.csb_id,
            u32_hex(&case["decoded_from_i_message"]["csb_id"]),
            "{name}"
        );
        assert!(o.key_parameters.is_some(), "{name}");
        match exp["key_type"].as_str().unwrap() {
            "GMK" => {
                assert_eq!(o.purpose, Some(kdf::KeyPurpose::Gmk), "{name}");
                assert_eq!(o.gmk_id, Some(u32_hex(&exp["key_id"])), "{name}");
                assert_eq!(o.guk_id, Some(o.csb_id), "{name}");
                if let Some(g) = exp.get("guk_id") {
                    assert_eq!(o.guk_id, Some(u32_hex(g)), "{name}");
                }
                let key: [u8; 16] = *o.key.expose();
                assert_eq!(
                    kdf::guk_id(&key, o.key_id, &receiver.uri),
                    o.csb_id,
                    "{name}"
                );
            }
            other => {
                let want = if other == "CSK" {
                    kdf::KeyPurpose::Csk
                } else {
                    kdf::KeyPurpose::Pck
                };
                assert_eq!(o.purpose, Some(want), "{name}");
                assert_eq!(o.gmk_id, None, "{name}");
                assert_eq!(o.key_id, o.csb_id, "{name}");
            }
        }
    }
}

#[test]
fn open_refuses_wrong_or_missing_identities() {
    let kms = kms();
    let z = z();
    let case = &cases()[2]; // PCK alice -> bob
    let bytes = message(case);
    let bob = key_set("sip:bob@streamwide.com");
    let alice_uri = "sip:alice@streamwide.com";
    // No IDRi and no URI from signalling.
    assert!(matches!(
        open_as(&bytes, &bob, None, &kms, &z),
        Err(CryptoError::Mikey(_))
    ));
    // A URI whose UID is not the role-8 UID.
    assert_eq!(
        open_as(&bytes, &bob, Some("sip:mallory@streamwide.com"), &kms, &z).unwrap_err(),
        CryptoError::Mikey("initiator UID (role 8) does not match the initiator URI")
    );
    // Another receiver: the role-9 UID is not theirs.
    let gms = key_set("gms@streamwide.com");
    assert_eq!(
        open_as(&bytes, &gms, Some(alice_uri), &kms, &z).unwrap_err(),
        CryptoError::Mikey("responder UID (role 9) is not this receiver's UID")
    );
    // The initiator's KMS is not in the trust list.
    let other = Kms {
        uri: "kms.other.example".into(),
        ..kms
    };
    assert_eq!(
        open_as(&bytes, &bob, Some(alice_uri), &other, &z).unwrap_err(),
        CryptoError::Mikey("initiator's KMS is not trusted")
    );
}

/// Re-signs a (modified) message with the initiator's real key set from the vectors.
fn resign(m: &mut mikey::IMessage, signer: &eccsi::EccsiSigner) -> Vec<u8> {
    let mut b = mikey::encode(m).unwrap();
    let n = b.len() - 129;
    let sig = signer
        .sign(&b[..n], &ring::rand::SystemRandom::new())
        .unwrap();
    b.truncate(n);
    b.extend_from_slice(&sig);
    m.sign.signature = sig.to_vec();
    b
}

fn signer_for(ks: &KeySet, uid: &[u8; 32], kms: &Kms) -> eccsi::EccsiSigner {
    eccsi::EccsiSigner::new(&kms.kpak, uid, &ks.ssk, &ks.pvt).unwrap()
}

#[test]
fn a_flipped_bit_in_validly_signed_sakke_data_fails_decapsulation() {
    let kms = kms();
    let z = z();
    let case = &cases()[2];
    let bytes = message(case);
    let alice = key_set("sip:alice@streamwide.com");
    let bob = key_set("sip:bob@streamwide.com");
    let uid = initiator_uid(&kms, case, &bytes);
    let signer = signer_for(&alice, &uid, &kms);
    let m0 = mikey::parse(&bytes).unwrap();
    // Re-signing the unmodified message still opens (sanity check of the harness).
    let mut m = m0.clone();
    let b = resign(&mut m, &signer);
    assert_eq!(
        open_as(&b, &bob, Some(&alice.uri), &kms, &z)
            .unwrap()
            .key
            .expose()
            .to_vec(),
        hexs(&case["expected"]["key"])
    );
    // Flip bits in R (an x coordinate bit, a y coordinate bit) and in H (the masked SSV).
    for (octet, bit) in [(5usize, 0u8), (200, 3), (260, 7), (272, 0)] {
        let mut m = m0.clone();
        for p in m.payloads.iter_mut() {
            if let Payload::Sakke(s) = p {
                s.data[octet] ^= 1 << bit;
            }
        }
        let b = resign(&mut m, &signer);
        match open_as(&b, &bob, Some(&alice.uri), &kms, &z) {
            Err(CryptoError::DecapsulationFailed) | Err(CryptoError::NotOnCurve { .. }) => {}
            other => panic!("octet {octet} bit {bit}: {other:?}"),
        }
    }
    // Without re-signing, the same change is a bad signature.
    let mut b = bytes.clone();
    let sakke_at = b
        .windows(273)
        .position(|w| w == m0.sakke().unwrap().data.as_slice())
        .unwrap();
    b[sakke_at + 10] ^= 1;
    assert_eq!(
        open_as(&b, &bob, Some(&alice.uri), &kms, &z).unwrap_err(),
        CryptoError::BadSignature
    );
}

#[test]
fn build_then_open_with_the_interop_key_sets() {
    let kms = kms();
    let z = z();
    let rng = ring::rand::SystemRandom::new();
    let gms = key_set("gms@streamwide.com");
    let alice = key_set("sip:alice@streamwide.com");
    let ntp_timestamp = 0xec89_8da8_0000_0000u64;
    let ntp_s = ntp_timestamp >> 32;
    let gms_uid = uid_at(&kms, &gms.uri, ntp_s);
    let alice_uid = uid_at(&kms, &alice.uri, ntp_s);
    let signer = signer_for(&gms, &gms_uid, &kms);
    let gmk = SecretBytes::new([0x5a; 16]);
    let gmk_id = kdf::KeyPurpose::Gmk.key_id(0x0123_4567);
    let guk_id = kdf::guk_id(gmk.expose(), gmk_id, &alice.uri);
    let mut spi = gmk_id.to_be_bytes().to_vec();
    spi.extend_from_slice(&guk_id.to_be_bytes());
    for (uid_roles, to_self) in [(false, false), (true, true)] {
        let params = BuildParams {
            signer: &signer,
            initiator: Party {
                uri: &gms.uri,
                uid: &gms_uid,
                kms_uri: &kms.uri,
            },
            responder: Party {
                uri: &alice.uri,
                uid: &alice_uid,
                kms_uri: &kms.uri,
            },
            responder_z: &z,
            key: &gmk,
            csb_id: guk_id,
            cs_map: CsIdMap::generic_single(4, 0, spi.clone()),
            ntp_timestamp,
            security_policy: None,
            sakke_to_self: to_self.then_some(&z),
            key_parameters: Some(&[1, 2, 3]),
            uid_roles,
        };
        let bytes = mikey::build_i_message(&params, &rng).unwrap();
        let m = mikey::parse(&bytes).unwrap();
        assert_eq!(mikey::encode(&m).unwrap(), bytes);
        assert_eq!(
            m.id(codes::role::INITIATOR).unwrap().data,
            gms.uri.as_bytes()
        );
        assert_eq!(
            m.id(codes::role::RESPONDER).unwrap().data,
            alice.uri.as_bytes()
        );
        assert_eq!(m.id(codes::role::UID_INITIATOR).is_some(), uid_roles);
        // IDRi is present, so no URI from signalling is needed.
        let o = open_as(&bytes, &alice, None, &kms, &z).unwrap();
        assert_eq!(o.key, gmk);
        assert_eq!(o.gmk_id, Some(gmk_id));
        assert_eq!(o.guk_id, Some(guk_id));
        assert_eq!(o.key_parameters.as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(o.initiator_uri, gms.uri);
        // A contradicting URI from signalling is refused.
        assert_eq!(
            open_as(&bytes, &alice, Some(&alice.uri), &kms, &z).unwrap_err(),
            CryptoError::Mikey("IDRi does not name the expected initiator")
        );
        // SAKKE-to-self decrypts for the initiator with its own RSK.
        if to_self {
            let inner = m
                .extension(codes::EXT_SAKKE_TO_SELF)
                .unwrap()
                .sakke_to_self()
                .unwrap();
            let k = sakke::decapsulate(&z, &gms_uid, &gms.rsk, &inner.data).unwrap();
            assert_eq!(k, gmk);
        } else {
            assert!(m.extension(codes::EXT_SAKKE_TO_SELF).is_none());
        }
    }
}
