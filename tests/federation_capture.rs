//! Every KM-E body between two real clusters, captured by recording relays in this test process
//! (no hook in the product): a plaintext GMK never crosses (it travels only inside a
//! MIKEY-SAKKE I_MESSAGE), and KSAK, z, the barrier keys, user key sets (the KMS federation
//! identities' and a user's) and replicated state (sealed GMKs, sealed master secrets) never
//! cross at all, in any encoding the code uses (raw, hex in either case, base64 standard or
//! URL-safe, padded or not, also inside every base64 or hex token of a body). Every body is
//! also one of the shapes KM-E defines (certificates, group keys, group key statuses), with no
//! other field.

mod common;

use base64::Engine;
use common::km_e::{approve_both, two_domains_relayed, B_KMS};
use common::parties::call;
use common::relay::Exchange;
use sealkm::dev::{DEV_GMS, DEV_KMS_URI, DEV_VAL};

/// A secret and what it is, for the failure message.
struct Secret {
    what: String,
    bytes: Vec<u8>,
}

/// `bytes` as every encoding the code uses writes it.
fn encodings(bytes: &[u8]) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    vec![
        bytes.to_vec(),
        hex::encode(bytes).into_bytes(),
        hex::encode_upper(bytes).into_bytes(),
        STANDARD.encode(bytes).into_bytes(),
        STANDARD_NO_PAD.encode(bytes).into_bytes(),
        URL_SAFE.encode(bytes).into_bytes(),
        URL_SAFE_NO_PAD.encode(bytes).into_bytes(),
    ]
}

/// The body and every decoding of its base64 or hex tokens (maximal runs of the base64 and
/// hex alphabets), so a secret inside a larger encoded value is found too.
fn views(body: &[u8]) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = vec![body.to_vec()];
    let alphabet = |c: &u8| c.is_ascii_alphanumeric() || b"+/=-_".contains(c);
    for token in body.split(|c| !alphabet(c)).filter(|t| t.len() >= 16) {
        out.extend(hex::decode(token).ok());
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            out.extend(engine.decode(token).ok());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn assert_clean(exchanges: &[Exchange], secrets: &[Secret]) {
    for x in exchanges {
        for (side, body) in [("request", &x.request), ("response", &x.response)] {
            let views = views(body);
            for s in secrets {
                for enc in encodings(&s.bytes) {
                    assert!(
                        !views.iter().any(|v| contains(v, &enc)),
                        "{} in the {side} body of {} {}",
                        s.what,
                        x.method,
                        x.path
                    );
                }
            }
        }
    }
}

/// Every body is a shape KM-E defines, with nothing else in it. (A request the relay could
/// not forward — the partner not listening yet when a Federator first refreshes — has only
/// its request body, which is checked.)
fn assert_shapes(exchanges: &[Exchange]) {
    for x in exchanges {
        let unreachable = x.status == 502 && x.response.is_empty();
        assert!(x.status == 200 || unreachable, "{x:?}");
        match (x.method.as_str(), x.path.as_str()) {
            ("GET", "/km-e/v1/certificates") if unreachable => assert!(x.request.is_empty()),
            ("POST", "/km-e/v1/group-keys") if unreachable => {
                let _: sealkm::node::federation::FederatedGroupKey =
                    serde_json::from_slice(&x.request).expect("a federated group key, no more");
            }
            ("GET", "/km-e/v1/certificates") => {
                assert!(x.request.is_empty());
                // Public certificates and rotation signatures over them, nothing else.
                let offer: sealkm::kms::partner::rotation::Offer =
                    serde_json::from_slice(&x.response).expect("an offer, no more");
                let ids: Vec<String> = offer
                    .certificates
                    .iter()
                    .map(|doc| {
                        let d = sealkm::kms::xml::parse_certificate_document(doc.as_bytes())
                            .expect("a KmsCertificate document");
                        sealkm::kms::partner::certificate_id(&d)
                    })
                    .collect();
                for r in &offer.rotations {
                    assert!(
                        ids.contains(&r.certificate) && ids.contains(&r.previous),
                        "{r:?}"
                    );
                    assert_eq!(r.signature.len(), 2 * sealkm::crypto::eccsi::SIGNATURE_LEN);
                }
            }
            ("POST", "/km-e/v1/group-keys") => {
                let _: sealkm::node::federation::FederatedGroupKey =
                    serde_json::from_slice(&x.request).expect("a federated group key, no more");
                let answer: serde_json::Value = serde_json::from_slice(&x.response).unwrap();
                assert_eq!(
                    answer
                        .as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>()),
                    Some(vec!["imported".to_owned()])
                );
            }
            ("POST", "/km-e/v1/group-key-status") if unreachable => {
                let _: sealkm::node::federated_status::StatusBatch =
                    serde_json::from_slice(&x.request).expect("a status batch, no more");
            }
            ("POST", "/km-e/v1/group-key-status") => {
                // Statuses only: group, version, GMK-ID, revoked, expiry; no key material.
                let batch: sealkm::node::federated_status::StatusBatch =
                    serde_json::from_slice(&x.request).expect("a status batch, no more");
                let answer: sealkm::node::federated_status::StatusAnswer =
                    serde_json::from_slice(&x.response).expect("a status answer, no more");
                assert_eq!(answer.results.len(), batch.statuses.len());
            }
            other => panic!("unexpected KM-E request {other:?}"),
        }
    }
}

/// Master secrets (KSAK, z), the barrier key, the sealed blobs of the replicated state and the
/// key sets (current period and its neighbours) of `identities` of the stopped domain in `env`.
fn secrets_of(env: &common::Env, kms_uri: &str, identities: &[String]) -> Vec<Secret> {
    let mut out = Vec::new();
    let cfg = sealkm::config::NodeConfig::load(&env.config()).unwrap();
    let barrier = sealkm::node::bootstrap::load_unseal_key(cfg.unseal_key_file.as_deref()).unwrap();
    let key = std::fs::read_to_string(env.dir().join("unseal.key")).unwrap();
    out.push(Secret {
        what: format!("{kms_uri}: barrier key"),
        bytes: hex::decode(key.trim()).unwrap(),
    });
    let state =
        sealkm::state::StateMachine::open(sled::open(cfg.data_dir.join("state")).unwrap()).unwrap();
    let community = state.community(kms_uri).unwrap().expect("community");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let period = community.period.period_at_unix(now).expect("a period");
    for cert in &community.certificates {
        let masters = sealkm::kms::master::MasterSecrets::unseal(
            &barrier,
            &sealkm::kms::community::master_aad(&cert.cert_uri),
            &cert.sealed_master,
        )
        .unwrap();
        let what = |x: &str| format!("{} {x}", cert.cert_uri);
        out.push(Secret {
            what: what("KSAK"),
            bytes: masters.ksak.to_bytes().expose().to_vec(),
        });
        out.push(Secret {
            what: what("z"),
            bytes: masters.z.to_bytes().expose().to_vec(),
        });
        out.push(Secret {
            what: what("sealed master secrets"),
            bytes: cert.sealed_master.clone(),
        });
        for id in identities {
            for n in period.saturating_sub(1)..=period + 1 {
                let set = sealkm::kms::provision::issue_key_set(&community, cert, &masters, id, n)
                    .unwrap();
                out.push(Secret {
                    what: what(&format!("SSK of {id} period {n}")),
                    bytes: set.ssk.to_bytes().expose().to_vec(),
                });
                out.push(Secret {
                    what: what(&format!("RSK of {id} period {n}")),
                    bytes: set.rsk.to_bytes().expose().to_vec(),
                });
            }
        }
    }
    for g in state.groups().unwrap() {
        for v in g.versions {
            out.push(Secret {
                what: format!(
                    "{kms_uri}: sealed GMK of {} version {}",
                    g.group_id, v.version
                ),
                bytes: v.sealed_gmk,
            });
        }
    }
    out
}

#[test]
fn no_km_e_body_carries_a_gmk_master_secret_key_set_or_replicated_state() {
    let (a, b, relays) = two_domains_relayed();
    // Both certificates approved both ways: every fetch goes through the relays.
    approve_both(&a, &b);

    // A's GMS makes three versions of the federated group; A delivers them to B.
    let gms_a = a.party(DEV_GMS, "gms", &["*"], "gms");
    for _ in 0..3 {
        let r = call(
            &gms_a,
            "POST",
            "/seal-x1/v1/groups/fed-g/keys",
            Some(serde_json::json!({})),
        );
        assert_eq!(r.status, 201, "{:?}", r.json);
    }
    let v = a.refresh();
    assert_eq!(v["partners"][B_KMS]["delivered"], 3, "{v}");
    b.refresh();

    // The GMKs, as A's GMS reads them over SEAL-X1, are what B's VAL server reads: the
    // captured bodies are the ones that carried them.
    let val_b = b.party(DEV_VAL, "val-server", &["fed-g"], "val");
    let mut secrets = Vec::new();
    for n in 1..=3 {
        let r = call(
            &gms_a,
            "GET",
            &format!("/seal-x1/v1/groups/fed-g/keys/{n}"),
            None,
        );
        let gmk = r.json["gmk"].as_str().expect("gmk").to_owned();
        let r = call(
            &val_b,
            "GET",
            &format!("/km-s/v1/groups/fed-g/keys/{n}"),
            None,
        );
        assert_eq!(
            r.json["gmk"].as_str(),
            Some(gmk.as_str()),
            "version {n} in B"
        );
        secrets.push(Secret {
            what: format!("GMK of version {n}"),
            bytes: hex::decode(&gmk).unwrap(),
        });
    }

    let a_to_b = relays.a_to_b.exchanges();
    let b_to_a = relays.b_to_a.exchanges();
    let count = |xs: &[Exchange], path: &str| xs.iter().filter(|x| x.path == path).count();
    assert!(count(&a_to_b, "/km-e/v1/certificates") >= 2, "{a_to_b:?}");
    let mut sent: Vec<u32> = a_to_b
        .iter()
        .filter(|x| x.path == "/km-e/v1/group-keys")
        .map(|x| {
            serde_json::from_slice::<sealkm::node::federation::FederatedGroupKey>(&x.request)
                .expect("a federated group key")
                .version
        })
        .collect();
    sent.dedup();
    assert_eq!(
        sent,
        [1, 2, 3],
        "every version crossed through the relay, in order"
    );
    assert!(count(&b_to_a, "/km-e/v1/certificates") >= 1, "{b_to_a:?}");
    let all: Vec<Exchange> = a_to_b.into_iter().chain(b_to_a).collect();
    assert_shapes(&all);

    // The other secrets, read from each stopped domain's own state.
    a.node.stop();
    b.node.stop();
    let ids = |kms: &str, user: &str| {
        vec![
            sealkm::kms::gmk_message::km_e_identity(kms),
            user.to_owned(),
        ]
    };
    secrets.extend(secrets_of(
        &a.env,
        DEV_KMS_URI,
        &ids(DEV_KMS_URI, "sip:alice@sealkm.test"),
    ));
    secrets.extend(secrets_of(
        &b.env,
        B_KMS,
        &ids(B_KMS, "sip:bob@partner.test"),
    ));
    // Sanity: the checker finds a secret where one is (raw, and inside a base64 token).
    let probe = &secrets[0].bytes;
    let planted = Exchange {
        method: "POST".into(),
        path: "/km-e/v1/group-keys".into(),
        request: format!(
            "{{\"i_message\":\"{}\"}}",
            base64::engine::general_purpose::STANDARD.encode([&[7u8][..], probe].concat())
        )
        .into_bytes(),
        status: 200,
        response: Vec::new(),
    };
    let found = std::panic::catch_unwind(|| assert_clean(&[planted], &secrets[..1]));
    assert!(found.is_err(), "the checker must find a GMK inside base64");
    assert_clean(&all, &secrets);
}
