//! Node metrics in Prometheus text format: requests by endpoint and status, cold issuance
//! latency (histogram), key-set cache hits and misses, refused tokens. Plain atomics and one
//! small mutex-guarded map; rendering is a pure function of the counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the issuance latency buckets.
const ISSUANCE_BUCKETS_S: [f64; 10] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    issuance_buckets: [AtomicU64; ISSUANCE_BUCKETS_S.len()],
    issuance_count: AtomicU64,
    issuance_sum_us: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    tokens_refused: AtomicU64,
    /// Distributor (leader only): events in acknowledged notifications, failed attempts,
    /// acks committed.
    events_delivered: AtomicU64,
    deliveries_failed: AtomicU64,
    event_acks: AtomicU64,
}

impl Metrics {
    pub fn request(&self, endpoint: &'static str, status: u16) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((endpoint, status))
            .or_default() += 1;
    }

    pub fn issuance(&self, seconds: f64) {
        for (i, bound) in ISSUANCE_BUCKETS_S.iter().enumerate() {
            if seconds <= *bound {
                self.issuance_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.issuance_count.fetch_add(1, Ordering::Relaxed);
        self.issuance_sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn cache(&self, hit: bool) {
        let c = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn token_refused(&self) {
        self.tokens_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn distribution_delivered(&self, events: u64) {
        self.events_delivered.fetch_add(events, Ordering::Relaxed);
    }

    pub fn distribution_failed(&self) {
        self.deliveries_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn distribution_acked(&self) {
        self.event_acks.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition (format 0.0.4).
    pub fn render(&self, raft: &crate::actors::StoreStatus, inflight: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE sealkm_requests_total counter");
        for ((ep, st), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "sealkm_requests_total{{endpoint=\"{ep}\",status=\"{st}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# TYPE sealkm_issuance_seconds histogram");
        for (i, bound) in ISSUANCE_BUCKETS_S.iter().enumerate() {
            let n = self.issuance_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "sealkm_issuance_seconds_bucket{{le=\"{bound}\"}} {n}");
        }
        let count = self.issuance_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "sealkm_issuance_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.issuance_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "sealkm_issuance_seconds_sum {sum}\nsealkm_issuance_seconds_count {count}"
        );
        let _ = writeln!(out, "# TYPE sealkm_keyset_cache_total counter");
        let _ = writeln!(
            out,
            "sealkm_keyset_cache_total{{result=\"hit\"}} {}",
            self.cache_hits.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "sealkm_keyset_cache_total{{result=\"miss\"}} {}",
            self.cache_misses.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE sealkm_tokens_refused_total counter");
        let _ = writeln!(
            out,
            "sealkm_tokens_refused_total {}",
            self.tokens_refused.load(Ordering::Relaxed)
        );
        for (name, v) in [
            ("sealkm_events_delivered_total", &self.events_delivered),
            (
                "sealkm_event_deliveries_failed_total",
                &self.deliveries_failed,
            ),
            ("sealkm_event_acks_total", &self.event_acks),
        ] {
            let v = v.load(Ordering::Relaxed);
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {v}");
        }
        for (name, v) in [
            ("sealkm_raft_term", raft.term),
            ("sealkm_raft_commit_index", raft.commit),
            ("sealkm_applied_index", raft.applied),
            ("sealkm_raft_leader_id", raft.leader_id),
            ("sealkm_raft_snapshot_index", raft.snapshot_index),
            ("sealkm_raft_is_leader", u64::from(raft.role.is_leader())),
        ] {
            let _ = writeln!(out, "# TYPE {name} gauge\n{name} {v}");
        }
        let _ = writeln!(
            out,
            "# TYPE sealkm_raft_fsync_seconds summary\nsealkm_raft_fsync_seconds_count {}\nsealkm_raft_fsync_seconds_sum {}",
            raft.fsyncs,
            raft.fsync_micros as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# TYPE sealkm_issuance_inflight gauge\nsealkm_issuance_inflight {inflight}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("keyprov", 200);
        m.request("keyprov", 200);
        m.request("init", 401);
        m.issuance(0.0015);
        m.cache(true);
        m.cache(false);
        m.token_refused();
        m.distribution_delivered(3);
        m.distribution_failed();
        m.distribution_acked();
        let raft = crate::actors::StoreStatus {
            applied: 7,
            term: 3,
            role: crate::actors::store::NodeRole::Leader,
            ..Default::default()
        };
        let t = m.render(&raft, 0);
        assert!(
            t.contains("sealkm_requests_total{endpoint=\"keyprov\",status=\"200\"} 2"),
            "{t}"
        );
        assert!(t.contains("sealkm_requests_total{endpoint=\"init\",status=\"401\"} 1"));
        assert!(t.contains("sealkm_issuance_seconds_bucket{le=\"0.001\"} 0"));
        assert!(t.contains("sealkm_issuance_seconds_bucket{le=\"0.002\"} 1"));
        assert!(t.contains("sealkm_issuance_seconds_bucket{le=\"+Inf\"} 1"));
        assert!(t.contains("sealkm_keyset_cache_total{result=\"hit\"} 1"));
        assert!(t.contains("sealkm_tokens_refused_total 1"));
        assert!(t.contains("sealkm_events_delivered_total 3"));
        assert!(t.contains("sealkm_event_deliveries_failed_total 1"));
        assert!(t.contains("sealkm_event_acks_total 1"));
        assert!(t.contains("sealkm_applied_index 7"));
        assert!(t.contains("sealkm_raft_term 3"));
        assert!(t.contains("sealkm_raft_is_leader 1"));
    }
}
