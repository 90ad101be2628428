//! Pure statistics of a load run: nearest-rank percentiles over a sorted sample, and the
//! summary text and JSON both load tools print.

use std::collections::BTreeMap;
use std::time::Duration;

/// The `p`-th percentile (0 < p <= 100) of an ascending `sorted` sample, nearest-rank method:
/// the smallest value with at least `p`% of the sample at or below it. `None` when empty.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// What a timed run collected.
#[derive(Default)]
pub struct Tally {
    /// Latencies (µs) of the expected answers.
    pub ok_us: Vec<u64>,
    /// Other answers by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Transport failures by message.
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    /// Records one request that took `us`: the expected status `want`, another status, or a
    /// transport error.
    pub fn record(&mut self, r: Result<u16, String>, want: u16, us: u64) {
        match r {
            Ok(st) if st == want => self.ok_us.push(us),
            Ok(st) => *self.statuses.entry(st).or_default() += 1,
            Err(e) => *self.errors.entry(e).or_default() += 1,
        }
    }

    /// Requests that did not get the expected answer.
    pub fn failed(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.errors.values().sum::<u64>()
    }

    /// The run's summary over `elapsed` (takes the latencies out of the tally).
    pub fn summary(&mut self, elapsed: Duration) -> Summary {
        let failed = self.failed();
        Summary::new(std::mem::take(&mut self.ok_us), failed, elapsed)
    }
}

/// Throughput and latency of one run (latencies of successful requests, in µs).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub ok: u64,
    pub failed: u64,
    pub elapsed_s: f64,
    /// Successful requests per second.
    pub rps: f64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub max_us: Option<u64>,
    pub mean_us: Option<u64>,
}

impl Summary {
    pub fn new(mut ok_us: Vec<u64>, failed: u64, elapsed: Duration) -> Self {
        ok_us.sort_unstable();
        let elapsed_s = elapsed.as_secs_f64();
        let ok = ok_us.len() as u64;
        let mean_us = (ok > 0).then(|| ok_us.iter().sum::<u64>() / ok);
        Self {
            ok,
            failed,
            elapsed_s,
            rps: if elapsed_s > 0.0 {
                ok as f64 / elapsed_s
            } else {
                0.0
            },
            p50_us: percentile(&ok_us, 50.0),
            p99_us: percentile(&ok_us, 99.0),
            max_us: ok_us.last().copied(),
            mean_us,
        }
    }
}

/// The latency figures of a run as JSON (`{"p50", "p99", "max", "mean"}`, microseconds).
pub fn latency_json(sum: &Summary) -> serde_json::Value {
    serde_json::json!({ "p50": sum.p50_us, "p99": sum.p99_us, "max": sum.max_us, "mean": sum.mean_us })
}

/// Non-200 answers as JSON (status as a string key).
pub fn statuses_json(statuses: &BTreeMap<u16, u64>) -> BTreeMap<String, u64> {
    statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// `p50 … p99 … max … (N ok in S s` — the text summary both load tools print (the caller
/// closes the parenthesis).
pub fn latency_text(sum: &Summary) -> String {
    let ms = |us: Option<u64>| us.map_or("-".into(), |u| format!("{:.3} ms", u as f64 / 1000.0));
    format!(
        "p50 {}  p99 {}  max {}  ({} ok in {:.2} s",
        ms(sum.p50_us),
        ms(sum.p99_us),
        ms(sum.max_us),
        sum.ok,
        sum.elapsed_s
    )
}

/// Prints every non-200 status and transport error of a run, one per line.
pub fn print_failures(statuses: &BTreeMap<u16, u64>, errors: &BTreeMap<String, u64>) {
    for (st, n) in statuses {
        println!("  non-200: HTTP {st} x {n}");
    }
    for (e, n) in errors {
        println!("  transport error x {n}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.1), Some(1));
        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[1, 2], 50.0), Some(1));
        assert_eq!(percentile(&[1, 2], 99.0), Some(2));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&v, 0.0), None);
        assert_eq!(percentile(&v, 101.0), None);
    }

    #[test]
    fn summary() {
        let s = Summary::new(vec![30, 10, 20, 40], 2, Duration::from_secs(2));
        assert_eq!(s.ok, 4);
        assert_eq!(s.failed, 2);
        assert_eq!(s.rps, 2.0);
        assert_eq!(s.p50_us, Some(20));
        assert_eq!(s.p99_us, Some(40));
        assert_eq!(s.max_us, Some(40));
        assert_eq!(s.mean_us, Some(25));
        let e = Summary::new(vec![], 0, Duration::ZERO);
        assert_eq!((e.rps, e.p50_us, e.max_us), (0.0, None, None));
    }
}
