//! ECCSI and KDF timings. Run:
//! `cargo bench --bench eccsi -- --warm-up-time 1 --measurement-time 3`
//! (`eccsi/validate` meets one KPAK again and again, so after its second call it runs with
//! the KPAK's fixed-base table; `ECCSI_MEDIANS=1` adds `eccsi/validate_first_kpak`, without.)
//! docs/PERFORMANCE.md has the figures, next to the C reference library's from the same window.
//! `ec256/*` are the point multiplications under the ECCSI lines (the `mulx`/`adx` field where
//! the CPU has it; `*_portable` with the `u128` field); `p256/*` are the `p256` crate's, the
//! baseline they replaced.

#[path = "common/medians.rs"]
mod medians;
use medians::{consume, median_us};

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
    ec256::set_backend(ec256::default_backend());
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

/// `ECCSI_MEDIANS=1 cargo bench --bench eccsi`: per-call medians of the ECCSI lines and of the
/// point multiplications under them, for each field backend, printed after criterion's.
fn medians(_: &mut Criterion) {
    if std::env::var_os("ECCSI_MEDIANS").is_none() {
        return;
    }
    let rng = SystemRandom::new();
    let master = EccsiMasterSecret::generate(&rng).expect("master");
    let kpak = master.kpak();
    let id = b"sip:alice@example.org........................................";
    let (ssk, pvt) = issue(&master, id).expect("issue");
    let signer = EccsiSigner::new(&kpak, id, &ssk, &pvt).expect("validate");
    let msg = [0x42u8; 600];
    let sig = signer.sign(&msg, &rng).expect("sign");
    let verifier = EccsiVerifier::new(&kpak, id, &pvt).expect("verifier");
    let k = reduce_bytes(&[0x5Au8; 32]);
    let p = ec256::mul_g(&Scalar::from(3u64));
    let n = 3000;
    // Pairs under KPAKs validated nowhere else: each call meets its KPAK for the first time
    // (no fixed-base table), as a client validating its first key set does.
    let fresh: Vec<_> = (0..2 * n)
        .map(|_| {
            let m = EccsiMasterSecret::generate(&rng).expect("master");
            let (ssk, pvt) = issue(&m, id).expect("issue");
            (m.kpak(), ssk, pvt)
        })
        .collect();
    let mut fresh = fresh.iter();
    for (name, be) in [("adx", Backend::Adx), ("portable", Backend::Portable)] {
        ec256::set_backend(be);
        let lines: [(&str, f64); 11] = [
            (
                "eccsi/issue",
                median_us(n, || consume(black_box(issue(&master, id)))),
            ),
            (
                "eccsi/validate",
                median_us(n, || {
                    consume(black_box(EccsiSigner::new(&kpak, id, &ssk, &pvt)))
                }),
            ),
            (
                "eccsi/validate_first_kpak",
                median_us(n, || {
                    let (kpak, ssk, pvt) = fresh.next().expect("enough fresh pairs");
                    consume(black_box(EccsiSigner::new(kpak, id, ssk, pvt)))
                }),
            ),
            (
                "ec256/base_table",
                median_us(n / 10, || consume(black_box(ec256::base_table_vartime(&p)))),
            ),
            (
                "eccsi/sign",
                median_us(n, || consume(black_box(signer.sign(&msg, &rng)))),
            ),
            (
                "eccsi/verify",
                median_us(n, || consume(black_box(verify(&kpak, id, &msg, &sig)))),
            ),
            (
                "eccsi/verify_cached",
                median_us(n, || consume(black_box(verifier.verify(&msg, &sig)))),
            ),
            (
                "ec256/mul_g",
                median_us(n, || consume(black_box(ec256::mul_g(&k)))),
            ),
            (
                "ec256/mul_g_vartime",
                median_us(n, || consume(black_box(ec256::mul_g_vartime(&k)))),
            ),
            (
                "ec256/lincomb_g_p",
                median_us(n, || {
                    consume(black_box(ec256::lincomb_vartime(Some(&k), &[(p, k)])))
                }),
            ),
            (
                "ec256/to_affine",
                median_us(n, || consume(black_box(ec256::to_affine(&p)))),
            ),
        ];
        for (line, us) in lines {
            println!("median {line} ({name}): {us:.2} µs");
        }
    }
    ec256::set_backend(ec256::default_backend());
}

criterion_group!(eccsi, benches, medians);
criterion_main!(eccsi);
