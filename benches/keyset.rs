//! A whole user key set (TS 33.180 F.2.1 UID + ECCSI SSK/PVT + SAKKE RSK), as a cold KM-UU
//! keyprov issues it, and the client-side validation of one.
//! Run: cargo bench --bench keyset -- --warm-up-time 1 --measurement-time 3

use criterion::{criterion_group, criterion_main, Criterion};
use ring::rand::SystemRandom;
use sealkm::crypto::eccsi::EccsiSigner;
use sealkm::crypto::sakke;
use sealkm::kms::community::{Certificate, Community};
use sealkm::kms::master::MasterSecrets;
use sealkm::kms::period::PeriodParams;
use sealkm::kms::provision::issue_key_set;

fn bench(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let masters = MasterSecrets::generate(&rng).expect("masters");
    let community = Community::new(
        "kms.example.org".into(),
        PeriodParams {
            period_s: 2_592_000,
            offset_s: 0,
        },
    );
    let cert = Certificate {
        serial: 1,
        cert_uri: "kms.example.org/cert/1".into(),
        valid_from_unix: 0,
        valid_to_unix: u64::MAX,
        revoked: false,
        pub_enc_key: masters.z_pub.to_bytes(),
        pub_auth_key: masters.kpak.to_bytes().to_vec(),
        sealed_master: Vec::new(),
    };
    // Warm the process-wide fixed-base tables once, as a running node has them.
    let _ = issue_key_set(&community, &cert, &masters, "sip:warm@example.org", 1).expect("issue");
    let mut n = 0u64;
    c.bench_function("keyset/issue (UID + ECCSI + SAKKE RSK)", |b| {
        b.iter(|| {
            n += 1;
            issue_key_set(
                &community,
                &cert,
                &masters,
                &format!("sip:user{n}@example.org"),
                1,
            )
            .expect("issue")
        })
    });
    let ks = issue_key_set(&community, &cert, &masters, "sip:alice@example.org", 1).expect("issue");
    c.bench_function("keyset/validate (ECCSI pair + RSK pairing check)", |b| {
        b.iter(|| {
            EccsiSigner::new(&masters.kpak, &ks.uid, &ks.ssk, &ks.pvt).expect("eccsi");
            sakke::validate_rsk(&masters.z_pub, &ks.uid, &ks.rsk).expect("rsk");
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
