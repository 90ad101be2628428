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
