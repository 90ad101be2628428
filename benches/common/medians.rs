//! Per-call medians shared by the ECCSI and SAKKE benches (`*_MEDIANS=1`), the figures that
//! `scripts/bench/wolfssl/run.sh` sets beside wolfSSL's: on a shared machine a preempted call
//! lands in the tail, not the median, so they are comparable with a C harness that times each
//! call the same way (criterion's means include the preemption).

/// Takes a result by value so that its drop is timed too.
pub fn consume<T>(_: T) {}

/// The median of `n` individually timed calls of `f`, each on the output of `setup` (not
/// timed).
pub fn median_us_with<S>(n: usize, mut setup: impl FnMut() -> S, mut f: impl FnMut(S)) -> f64 {
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let s = setup();
            let start = std::time::Instant::now();
            f(s);
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[n / 2]
}

/// The median of `n` individually timed calls of `f`.
pub fn median_us(n: usize, mut f: impl FnMut()) -> f64 {
    median_us_with(n, || (), |()| f())
}
