//! ECCSI and KDF timings. Run:
//! `cargo bench --bench eccsi -- --warm-up-time 1 --measurement-time 3`
//! docs/PERFORMANCE.md has the figures, next to the C reference library's from the same window.
//! `ec256/*` are the point multiplications under the ECCSI lines (the `mulx`/`adx` field where
//! the CPU has it; `*_portable` with the `u128` field); `p256/*` are the `p256` crate's, the
//! baseline they replaced.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use p256::{ProjectivePoint, Scalar};
use ring::rand::SystemRandom;
use sealkm::crypto::ec256::{self, Backend};
use sealkm::crypto::eccsi::{issue, verify, EccsiMasterSecret, EccsiSigner, EccsiVerifier};
use sealkm::crypto::kdf::{kdf, uid};
use sealkm::crypto::p256ext::reduce_bytes;

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
    let p = ec256::mul_g(&Scalar::from(3u64));
    for (name, be) in [("", Backend::Adx), ("_portable", Backend::Portable)] {
        ec256::set_backend(be);
        c.bench_function(&format!("ec256/mul_g{name}"), |b| {
            b.iter(|| ec256::mul_g(black_box(&k)))
        });
        c.bench_function(&format!("ec256/mul_g_vartime{name}"), |b| {
            b.iter(|| ec256::mul_g_vartime(black_box(&k)))
        });
        c.bench_function(&format!("ec256/lincomb_g_p_vartime{name}"), |b| {
            b.iter(|| ec256::lincomb_vartime(Some(black_box(&k)), &[(p, k)]))
        });
        c.bench_function(&format!("ec256/to_affine{name}"), |b| {
            b.iter(|| ec256::to_affine(black_box(&p)))
        });
    }
    ec256::set_backend(ec256::detect());
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
