//! Properties of the MIKEY I_MESSAGE codec: encode/parse round trip of random messages, and
//! the parser never panics on arbitrary or mutated octets (the stable-Rust stand-in for the
//! cargo-fuzz target `imessage_parse`).

use proptest::collection::vec;
use proptest::prelude::*;
use sealkm::crypto::mikey::{
    self, codes, CsIdMap, GeneralExt, GenericIdEntry, Header, IMessage, IdPayload, Payload,
    PolicyParam, SakkePayload, SecurityPolicy, SignPayload, SrtpIdEntry, Timestamp,
};
use sealkm::crypto::CryptoError;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

fn cs_map() -> impl Strategy<Value = CsIdMap> {
    prop_oneof![
        vec((any::<u8>(), any::<u32>(), any::<u32>()), 0..4).prop_map(|v| CsIdMap::SrtpId(
            v.into_iter()
                .map(|(policy_no, ssrc, roc)| SrtpIdEntry {
                    policy_no,
                    ssrc,
                    roc
                })
                .collect()
        )),
        any::<u8>().prop_map(|n_cs| CsIdMap::Empty { n_cs }),
        vec(
            (
                any::<u8>(),
                any::<u8>(),
                any::<bool>(),
                bytes(5),
                bytes(8),
                bytes(12)
            ),
            0..3
        )
        .prop_map(|v| {
            CsIdMap::GenericId(
                v.into_iter()
                    .map(
                        |(cs_id, prot_type, s, policies, session_data, spi)| GenericIdEntry {
                            cs_id,
                            prot_type,
                            s,
                            policies,
                            session_data,
                            spi,
                        },
                    )
                    .collect(),
            )
        }),
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (0u8..3, any::<u64>())
            .prop_map(|(ts_type, value)| Payload::Timestamp(Timestamp { ts_type, value })),
        bytes(32).prop_map(Payload::Rand),
        (any::<u8>(), any::<u8>(), bytes(40)).prop_map(|(role, id_type, data)| Payload::Id(
            IdPayload {
                role,
                id_type,
                data
            }
        )),
        (any::<u8>(), any::<u8>(), vec((any::<u8>(), bytes(4)), 0..6)).prop_map(
            |(policy_no, prot_type, ps)| {
                Payload::SecurityPolicy(SecurityPolicy {
                    policy_no,
                    prot_type,
                    params: ps
                        .into_iter()
                        .map(|(param_type, value)| PolicyParam { param_type, value })
                        .collect(),
                })
            }
        ),
        (any::<u8>(), any::<u8>(), bytes(300)).prop_map(
            |(params, id_scheme, data)| Payload::Sakke(SakkePayload {
                params,
                id_scheme,
                data
            })
        ),
        (any::<u8>(), bytes(80))
            .prop_map(|(ext_type, data)| Payload::GeneralExt(GeneralExt { ext_type, data })),
    ]
}

fn message() -> impl Strategy<Value = IMessage> {
    (
        any::<bool>(),
        0u8..0x80,
        any::<u32>(),
        cs_map(),
        vec(payload(), 0..12),
        0u8..16,
        bytes(200),
    )
        .prop_map(
            |(v, prf_func, csb_id, cs_map, payloads, sig_type, signature)| IMessage {
                header: Header {
                    version: 1,
                    data_type: codes::DATA_TYPE_SAKKE,
                    v,
                    prf_func,
                    csb_id,
                    cs_map,
                },
                payloads,
                sign: SignPayload {
                    sig_type,
                    signature,
                },
            },
        )
}

fn interop_messages() -> Vec<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/mikey-sakke-interop.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["imessage_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| hex::decode(c["i_message_hex"].as_str().unwrap()).unwrap())
        .collect()
}

/// Whatever the parser accepts re-encodes to the same octets; whatever it rejects is a typed
/// MIKEY error. Reaching the end of this function at all means no panic.
fn check_total(b: &[u8]) -> Result<(), TestCaseError> {
    match mikey::parse(b) {
        Ok(m) => {
            prop_assert_eq!(mikey::encode(&m).unwrap(), b.to_vec());
            let signed = mikey::signed_part(b, &m.sign).unwrap();
            prop_assert_eq!(signed.len() + m.sign.signature.len(), b.len());
            let _ = m.validate_structure();
            for e in m.extensions() {
                let _ = e.sakke_to_self();
            }
        }
        Err(e) => prop_assert!(matches!(e, CryptoError::Mikey(_)), "{e:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_parse_is_the_identity(m in message()) {
        let b = mikey::encode(&m).unwrap();
        let back = mikey::parse(&b).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(mikey::encode(&back).unwrap(), b);
    }

    #[test]
    fn arbitrary_octets_never_panic(b in bytes(2048)) {
        check_total(&b)?;
    }

    #[test]
    fn plausible_prefixes_never_panic(tail in bytes(600), next in any::<u8>()) {
        // Start from a valid HDR so that the payload parsers are reached.
        let mut b = vec![1, 26, next, 1, 0, 0, 0, 1, 0, 1];
        b.extend_from_slice(&tail);
        check_total(&b)?;
    }

    #[test]
    fn mutated_interop_messages_never_panic(
        which in 0usize..4,
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut b = interop_messages().swap_remove(which);
        for (i, v) in edits {
            let i = i.index(b.len());
            b[i] = v;
        }
        if do_cut {
            let n = cut.index(b.len());
            b.truncate(n);
        }
        check_total(&b)?;
    }

    #[test]
    fn sakke_to_self_layout_round_trips(params in any::<u8>(), id_scheme in any::<u8>(), data in bytes(300)) {
        let inner = SakkePayload { params, id_scheme, data };
        let ext = GeneralExt::new_sakke_to_self(&inner).unwrap();
        prop_assert_eq!(ext.ext_type, codes::EXT_SAKKE_TO_SELF);
        prop_assert_eq!(ext.sakke_to_self(), Some(inner));
    }
}

#[test]
fn over_long_fields_are_refused_by_the_encoder() {
    let mut m = IMessage {
        header: Header {
            version: 1,
            data_type: codes::DATA_TYPE_SAKKE,
            v: false,
            prf_func: 1,
            csb_id: 0,
            cs_map: CsIdMap::Empty { n_cs: 0 },
        },
        payloads: vec![Payload::Rand(vec![0; 256])],
        sign: SignPayload {
            sig_type: 2,
            signature: vec![0; 129],
        },
    };
    assert_eq!(
        mikey::encode(&m),
        Err(CryptoError::Mikey("RAND longer than 255 octets"))
    );
    m.payloads.clear();
    m.sign.signature = vec![0; 4096];
    assert_eq!(
        mikey::encode(&m),
        Err(CryptoError::Mikey("signature longer than 4095 octets"))
    );
    m.sign.signature = vec![0; 129];
    m.sign.sig_type = 16;
    assert!(mikey::encode(&m).is_err());
    m.sign.sig_type = 2;
    m.header.prf_func = 0x80;
    assert!(mikey::encode(&m).is_err());
}

// ---- build → open round trip with random identities (a pairing per case: 16 cases) ----

mod exchange {
    use super::*;
    use ring::rand::SystemRandom;
    use sealkm::crypto::mikey::{BuildParams, Party, ReceiverContext, TrustedKms};
    use sealkm::crypto::secret::SecretBytes;
    use sealkm::crypto::{eccsi, kdf, sakke};
    use std::sync::OnceLock;

    struct Kms {
        uri: &'static str,
        period: u64,
        offset: u64,
        eccsi: eccsi::EccsiMasterSecret,
        kpak: eccsi::Kpak,
        sakke: sakke::SakkeMasterSecret,
        z: sakke::SakkePublicKey,
    }

    fn new_kms(uri: &'static str, period: u64, offset: u64) -> Kms {
        let rng = SystemRandom::new();
        let e = eccsi::EccsiMasterSecret::generate(&rng).unwrap();
        let s = sakke::SakkeMasterSecret::generate(&rng).unwrap();
        Kms {
            uri,
            period,
            offset,
            kpak: e.kpak(),
            eccsi: e,
            z: s.public_key(),
            sakke: s,
        }
    }

    /// Two KMSs (initiator's and responder's domains), made once: master generation is slow.
    fn kmss() -> &'static (Kms, Kms) {
        static K: OnceLock<(Kms, Kms)> = OnceLock::new();
        K.get_or_init(|| {
            (
                new_kms("kms.a.example", 2_592_000, 0),
                new_kms("kms.b.example", 16_777_215, 1000),
            )
        })
    }

    fn uid(kms: &Kms, uri: &str, ntp_s: u64) -> [u8; 32] {
        let n = kdf::key_period_no(ntp_s, kms.period, kms.offset).unwrap();
        kdf::uid(uri, kms.uri, kms.period, kms.offset, n)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        #[test]
        fn build_then_open_round_trips(
            i_user in "[a-z]{1,12}",
            r_user in "[a-z]{1,12}",
            key in any::<[u8; 16]>(),
            tag in 0u32..7,
            low in any::<u32>(),
            ntp_s in 3_900_000_000u64..4_200_000_000,
            frac in any::<u32>(),
            cross_domain in any::<bool>(),
            uid_roles in any::<bool>(),
            with_sp in any::<bool>(),
        ) {
            let (ka, kb) = kmss();
            let (ki, kr) = if cross_domain { (ka, kb) } else { (ka, ka) };
            let i_uri = format!("sip:{i_user}@a.example");
            let r_uri = format!("sip:{r_user}@b.example");
            prop_assume!(i_uri != r_uri);
            let rng = SystemRandom::new();
            let i_uid = uid(ki, &i_uri, ntp_s);
            let r_uid = uid(kr, &r_uri, ntp_s);
            let (ssk, pvt) = eccsi::issue(&ki.eccsi, &i_uid).unwrap();
            let signer = eccsi::EccsiSigner::new(&ki.kpak, &i_uid, &ssk, &pvt).unwrap();
            let rsk = sakke::issue_rsk(&kr.sakke, &r_uid).unwrap();
            let key = SecretBytes::new(key);
            let purpose = kdf::KeyPurpose::of(tag << 28).unwrap();
            let key_id = purpose.key_id(low);
            let csb_id = if purpose == kdf::KeyPurpose::Gmk { kdf::guk_id(key.expose(), key_id, &r_uri) } else { key_id };
            let sp = SecurityPolicy { policy_no: 0, prot_type: 0, params: vec![PolicyParam { param_type: 0, value: vec![6] }] };
            let params = BuildParams {
                signer: &signer,
                initiator: Party { uri: &i_uri, uid: &i_uid, kms_uri: ki.uri },
                responder: Party { uri: &r_uri, uid: &r_uid, kms_uri: kr.uri },
                responder_z: &kr.z,
                key: &key,
                csb_id,
                cs_map: CsIdMap::Empty { n_cs: 0 },
                ntp_timestamp: (ntp_s << 32) | u64::from(frac),
                security_policy: with_sp.then_some(sp.clone()),
                sakke_to_self: None,
                key_parameters: None,
                uid_roles,
            };
            let bytes = mikey::build_i_message(&params, &rng).unwrap();
            let m = mikey::parse(&bytes).unwrap();
            prop_assert_eq!(mikey::encode(&m).unwrap(), bytes.clone());
            prop_assert_eq!(m.security_policy().cloned(), with_sp.then_some(sp));

            let trusted = [
                TrustedKms { kms_uri: ka.uri, key_period_s: ka.period, key_offset_s: ka.offset, kpak: &ka.kpak },
                TrustedKms { kms_uri: kb.uri, key_period_s: kb.period, key_offset_s: kb.offset, kpak: &kb.kpak },
            ];
            let ctx = ReceiverContext {
                uri: &r_uri,
                kms_uri: kr.uri,
                key_period_s: kr.period,
                key_offset_s: kr.offset,
                z: &kr.z,
                rsk: &rsk,
                trusted: &trusted,
                initiator_uri: None,
            };
            let o = mikey::open_i_message(&bytes, &ctx).unwrap();
            prop_assert_eq!(&o.key, &key);
            prop_assert_eq!(o.key_id, key_id);
            prop_assert_eq!(o.purpose, Some(purpose));
            prop_assert_eq!(o.csb_id, csb_id);
            prop_assert_eq!(&o.initiator_uri, &i_uri);
            prop_assert_eq!(o.initiator_uid, i_uid);
            prop_assert_eq!(o.initiator_kms_uri.as_str(), ki.uri);
            prop_assert_eq!(o.rand.len(), mikey::RAND_LEN);

            // A one-bit change in the signed part is caught by the signature.
            let mut bad = bytes.clone();
            let at = (low as usize) % (bytes.len() - 129);
            bad[at] ^= 1 << (frac % 8);
            prop_assert!(mikey::open_i_message(&bad, &ctx).is_err());
        }
    }
}
