//! SAKKE benchmarks (RFC 6508, parameter set 1). Run short on the shared machine:
//! cargo bench --bench sakke -- --warm-up-time 1 --measurement-time 3
//!
//! The public key's per-key precomputation (its Miller lines and [r]Z table) and the global
//! tables are built before measuring. "decapsulate_cached" reuses an Rsk whose Miller lines are
//! already computed; "*_fresh_rsk" / "rsk_validate" decode the RSK anew in every iteration.
//!
//! The group "mont" measures F_p multiplication, RSK issue and decapsulation once per
//! Montgomery multiplication backend (`fp::mont`: crypto-bigint's, the portable CIOS, the
//! x86-64 ADX one, the AVX-512 IFMA one where the CPU has them), back to back in one run: `cargo bench --bench sakke -- mont/`.
//!
//! `SAKKE_MEDIANS=1 cargo bench --bench sakke -- medians` prints per-call medians instead
//! (`median sakke/<op> (<backend>): X µs`, for each Montgomery backend), comparable with the
//! wolfSSL harness in scripts/bench/wolfssl/ (SAKKE_MEDIANS_N calls per line, default 300;
//! SAKKE_MEDIANS_BACKENDS=adx,ifma limits the run to the backends named).

#[path = "common/medians.rs"]
mod medians;
use medians::{consume, median_us, median_us_with};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use sealkm::crypto::curve::{table::FixedBaseTable, AffinePoint};
use sealkm::crypto::fp::mont::{self, Backend};
use sealkm::crypto::fp::Fq;
use sealkm::crypto::pairing::MillerLines;
use sealkm::crypto::sakke::{
    decapsulate, encapsulate, issue_rsk, pairing, validate_rsk, Rsk, SakkeMasterSecret,
};
use sealkm::crypto::secret::SecretBytes;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let master = SakkeMasterSecret::from_bytes(&[0x5Au8; 100]).expect("z");
    let z = master.public_key();
    let id = [0xA5u8; 32];
    let rsk = issue_rsk(&master, &id).expect("rsk");
    let rsk_bytes = rsk.to_bytes();
    let ssv = SecretBytes::new([7u8; 16]);
    // Warm the caches (P table, g table, Z table, RSK lines).
    let data = encapsulate(&z, &id, &ssv).expect("enc");
    validate_rsk(&z, &id, &rsk).expect("valid");
    decapsulate(&z, &id, &rsk, &data).expect("dec");

    let mut g = c.benchmark_group("sakke");
    g.sample_size(20);
    g.bench_function("rsk_issue", |b| {
        b.iter(|| issue_rsk(&master, black_box(&id)))
    });
    g.bench_function("rsk_validate", |b| {
        b.iter_batched(
            || Rsk::from_bytes(rsk_bytes.expose()).expect("rsk"),
            |r| validate_rsk(&z, &id, &r),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("encapsulate", |b| {
        b.iter(|| encapsulate(&z, black_box(&id), &ssv))
    });
    g.bench_function("decapsulate_cached", |b| {
        b.iter(|| decapsulate(&z, &id, &rsk, black_box(&data)))
    });
    g.bench_function("decapsulate_fresh_rsk", |b| {
        b.iter_batched(
            || Rsk::from_bytes(rsk_bytes.expose()).expect("rsk"),
            |r| decapsulate(&z, &id, &r, &data),
            BatchSize::SmallInput,
        )
    });
    let p = AffinePoint::generator();
    let k = AffinePoint::from_bytes(rsk_bytes.expose(), "rsk").expect("pt");
    g.bench_function("pairing_rfc", |b| {
        b.iter(|| pairing(black_box(&p), black_box(&k)))
    });
    g.bench_function("miller_lines_new", |b| {
        b.iter(|| MillerLines::new(black_box(&k)))
    });
    let lines = MillerLines::new(&k);
    g.bench_function("miller_lines_eval", |b| {
        b.iter(|| lines.eval(black_box(&p)))
    });
    let table8 = FixedBaseTable::<8>::new(&p);
    let s = Fq::from_be_bytes_reduced(&[0xC3u8; 128]);
    g.bench_function("fixed_base_sP_w8", |b| b.iter(|| table8.mul(black_box(&s))));
    let table6 = FixedBaseTable::<6>::new(&p);
    g.bench_function("fixed_base_sP_w6", |b| b.iter(|| table6.mul(black_box(&s))));
    let x = sealkm::crypto::fp::Fp::from_u64(0x1234_5678_9ABC_DEF0)
        .invert()
        .0;
    g.bench_function("fp_mul", |b| b.iter(|| black_box(x) * black_box(x)));
    g.bench_function("fp_invert", |b| b.iter(|| black_box(x).invert()));
    g.bench_function("fp_add", |b| b.iter(|| black_box(x) + black_box(x)));
    g.bench_function("fp_sub", |b| b.iter(|| black_box(x) - black_box(-x)));
    g.finish();

    let mut g = c.benchmark_group("mont");
    g.sample_size(20);
    for be in [
        Backend::CryptoBigint,
        Backend::Portable,
        Backend::Adx,
        Backend::Ifma,
    ] {
        if !available(be) {
            continue;
        }
        mont::set_backend(be);
        let name = format!("{be:?}");
        g.bench_function(format!("fp_mul/{name}"), |b| {
            b.iter(|| black_box(x) * black_box(x))
        });
        g.bench_function(format!("rsk_issue/{name}"), |b| {
            b.iter(|| issue_rsk(&master, black_box(&id)))
        });
        g.bench_function(format!("decapsulate_cached/{name}"), |b| {
            b.iter(|| decapsulate(&z, &id, &rsk, black_box(&data)))
        });
    }
    mont::set_backend(mont::detect());
    g.finish();
}

/// `SAKKE_MEDIANS=1 cargo bench --bench sakke -- medians`: per-call medians of the SAKKE lines
/// for each Montgomery backend. "decapsulate_cached" reuses one `Rsk` (its Miller lines
/// computed once); "decapsulate_first_use" and "rsk_validate" get an `Rsk` decoded afresh for
/// every call (the decoding itself is not timed, as the wolfSSL harness gets a decoded point).
/// "encapsulate" goes to one identifier again and again (from its second use on, with the
/// table of its receiver point [b]P + Z); "encapsulate_first_recipient" to a new identifier
/// each call (no such table).
fn medians(_: &mut Criterion) {
    if std::env::var_os("SAKKE_MEDIANS").is_none() {
        return;
    }
    let n: usize = std::env::var("SAKKE_MEDIANS_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(300);
    let master = SakkeMasterSecret::from_bytes(&[0x5Au8; 100]).expect("z");
    let z = master.public_key();
    let id = b"sip:alice@example.org........................................";
    let rsk = issue_rsk(&master, id).expect("rsk");
    let rsk_bytes = rsk.to_bytes();
    let fresh = || Rsk::from_bytes(rsk_bytes.expose()).expect("rsk");
    let ssv = SecretBytes::new([7u8; 16]);
    // Check every line once (and warm the global and per-key tables and the RSK's lines).
    let data = encapsulate(&z, id, &ssv).expect("enc");
    validate_rsk(&z, id, &fresh()).expect("valid");
    let out = decapsulate(&z, id, &rsk, &data).expect("dec");
    assert_eq!(out.expose(), ssv.expose(), "decapsulated SSV differs");
    let out = decapsulate(&z, id, &fresh(), &data).expect("dec");
    assert_eq!(out.expose(), ssv.expose(), "decapsulated SSV differs");
    // SAKKE_MEDIANS_BACKENDS=adx,ifma measures only those backends (default: all).
    let wanted: Option<Vec<String>> = std::env::var("SAKKE_MEDIANS_BACKENDS")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    println!("# sakke medians: {n} calls per line");
    // New identifiers across all backends' rounds (none is met twice).
    let mut fresh_id = 0u64;
    for (name, be) in [
        ("crypto-bigint", Backend::CryptoBigint),
        ("portable", Backend::Portable),
        ("adx", Backend::Adx),
        ("ifma", Backend::Ifma),
    ] {
        if !available(be) || !wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == name)) {
            continue;
        }
        mont::set_backend(be);
        let lines: [(&str, f64); 6] = [
            (
                "sakke/rsk_issue",
                median_us(n, || consume(black_box(issue_rsk(&master, id)))),
            ),
            (
                "sakke/rsk_validate",
                median_us_with(n, fresh, |r| consume(black_box(validate_rsk(&z, id, &r)))),
            ),
            (
                "sakke/encapsulate",
                median_us(n, || consume(black_box(encapsulate(&z, id, &ssv)))),
            ),
            (
                "sakke/encapsulate_first_recipient",
                median_us(n, || {
                    fresh_id += 1;
                    let id = format!("sip:{fresh_id}@example.org");
                    consume(black_box(encapsulate(&z, id.as_bytes(), &ssv)))
                }),
            ),
            (
                "sakke/decapsulate_cached",
                median_us(n, || {
                    consume(black_box(decapsulate(&z, id, &rsk, black_box(&data))))
                }),
            ),
            (
                "sakke/decapsulate_first_use",
                median_us_with(n, fresh, |r| {
                    consume(black_box(decapsulate(&z, id, &r, black_box(&data))))
                }),
            ),
        ];
        for (line, us) in lines {
            println!("median {line} ({name}): {us:.2} µs");
        }
    }
    mont::set_backend(mont::detect());
}

/// Whether this CPU runs backend `be` (`set_backend` would otherwise fall back silently).
fn available(be: Backend) -> bool {
    match be {
        Backend::Adx => sealkm::crypto::has_mulx_adx(),
        Backend::Ifma => mont::has_ifma(),
        _ => true,
    }
}

criterion_group!(benches, bench, medians);
criterion_main!(benches);
