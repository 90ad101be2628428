//! ECCSI and KDF timings. Run:
//! `cargo bench --bench eccsi -- --warm-up-time 1 --measurement-time 3`
//! The C reference library measures issue 11.4 µs, sign 21 µs, verify 132 µs, pair
//! validation 46 µs; `p256/mul_by_generator` and `p256/generator_mul` are the crate baselines
//! for the fixed-base table in `p256ext`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use p256::{ProjectivePoint, Scalar};
use ring::rand::SystemRandom;
use sealkm::crypto::eccsi::{issue, verify, EccsiMasterSecret, EccsiSigner, EccsiVerifier};
use sealkm::crypto::kdf::{kdf, uid};
use sealkm::crypto::p256ext::{mul_g, mul_g_vartime, reduce_bytes};

fn benches(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let master = EccsiMasterSecret::generate(&rng).expect("master");
    let kpak = master.kpak();
    let id = uid(
        "sip:alice@example.org",
        "kms.example.org",
        2_592_000,
        0,
        1388,
    );
    let (ssk, pvt) = issue(&master, &id).expect("issue");
    let signer = EccsiSigner::new(&kpak, &id, &ssk, &pvt).expect("validate");
    let msg = [0x42u8; 600];
    let sig = signer.sign(&msg, &rng).expect("sign");
    let verifier = EccsiVerifier::new(&kpak, &id, &pvt).expect("verifier");
    let k = reduce_bytes(&[0x5Au8; 32]);

    c.bench_function("eccsi/issue", |b| b.iter(|| issue(&master, black_box(&id))));
    c.bench_function("eccsi/validate", |b| {
        b.iter(|| EccsiSigner::new(&kpak, black_box(&id), &ssk, &pvt))
    });
    c.bench_function("eccsi/sign", |b| {
        b.iter(|| signer.sign(black_box(&msg), &rng))
    });
    c.bench_function("eccsi/verify", |b| {
        b.iter(|| verify(&kpak, &id, black_box(&msg), &sig))
    });
    c.bench_function("eccsi/verify_cached", |b| {
        b.iter(|| verifier.verify(black_box(&msg), &sig))
    });
    c.bench_function("eccsi/verifier_new", |b| {
        b.iter(|| EccsiVerifier::new(&kpak, black_box(&id), &pvt))
    });
    c.bench_function("p256ext/mul_g", |b| b.iter(|| mul_g(black_box(&k))));
    c.bench_function("p256ext/mul_g_vartime", |b| {
        b.iter(|| mul_g_vartime(black_box(&k)))
    });
    c.bench_function("p256/mul_by_generator", |b| {
        b.iter(|| <ProjectivePoint as p256::elliptic_curve::Group>::mul_by_generator(black_box(&k)))
    });
    c.bench_function("p256/point_mul_vartime", |b| {
        let p = ProjectivePoint::GENERATOR * Scalar::from(3u64);
        b.iter(|| p.mul_vartime(black_box(&k)))
    });
    c.bench_function("kdf/uid", |b| {
        b.iter(|| {
            uid(
                black_box("sip:alice@example.org"),
                "kms.example.org",
                2_592_000,
                0,
                1388,
            )
        })
    });
    c.bench_function("kdf/kdf_fc50", |b| {
        b.iter(|| kdf(black_box(&[7u8; 16]), 0x50, &[b"sip:alice@example.org"]))
    });
}

criterion_group!(eccsi, benches);
criterion_main!(eccsi);
