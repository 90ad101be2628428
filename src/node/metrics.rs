//! Node metrics in the Prometheus text format (0.0.4), kept and encoded by the `prometheus`
//! crate: requests by endpoint and status, cold issuance latency (histogram), key-set cache hits
//! and misses, refused tokens, distributor counters. This module owns the metric names, types,
//! labels and buckets; values owned elsewhere (the Raft status, the request barrier count, the
//! in-flight issuance count) are sampled by the caller and passed to [`Metrics::render`].

use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Upper bounds (seconds) of the issuance latency buckets.
const ISSUANCE_BUCKETS_S: [f64; 10] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    issuance: Histogram,
    cache_hits: IntCounter,
    cache_misses: IntCounter,
    tokens_refused: IntCounter,
    /// Distributor (leader only): events in acknowledged notifications, failed attempts,
    /// acks committed.
    events_delivered: IntCounter,
    deliveries_failed: IntCounter,
    event_acks: IntCounter,
    /// KM-E (the leader's Federator), per partner KMS URI: the time of the last good refresh,
    /// failed refreshes, certificates staged by the last refresh.
    partner_last_sync: IntGaugeVec,
    partner_failures: IntCounterVec,
    partner_staged: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        // The names, labels and buckets are constants (checked by the tests below), so building
        // and registering them cannot fail at run time.
        const FIXED: &str = "the node metrics are well-formed and registered once";
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect(FIXED);
            registry.register(Box::new(c.clone())).expect(FIXED);
            c
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect(FIXED);
            registry.register(Box::new(c.clone())).expect(FIXED);
            c
        };
        let requests = counter_vec(
            "sealkm_requests_total",
            "Requests answered, by endpoint and HTTP status.",
            &["endpoint", "status"],
        );
        let cache = counter_vec(
            "sealkm_keyset_cache_total",
            "Key set cache lookups, by result.",
            &["result"],
        );
        let issuance = Histogram::with_opts(
            HistogramOpts::new(
                "sealkm_issuance_seconds",
                "Latency of cold key set issuance.",
            )
            .buckets(ISSUANCE_BUCKETS_S.to_vec()),
        )
        .expect(FIXED);
        registry.register(Box::new(issuance.clone())).expect(FIXED);
        Self {
            requests,
            issuance,
            cache_hits: cache.with_label_values(&["hit"]),
            cache_misses: cache.with_label_values(&["miss"]),
            tokens_refused: counter("sealkm_tokens_refused_total", "Access tokens refused."),
            events_delivered: counter(
                "sealkm_events_delivered_total",
                "Events in notifications the subscriber acknowledged.",
            ),
            deliveries_failed: counter(
                "sealkm_event_deliveries_failed_total",
                "Failed notification delivery attempts.",
            ),
            event_acks: counter(
                "sealkm_event_acks_total",
                "Delivery acknowledgements committed.",
            ),
            partner_last_sync: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "sealkm_federation_last_sync_seconds",
                        "KM-E: Unix time of the last successful refresh of each partner.",
                    ),
                    &["partner"],
                )
                .expect(FIXED);
                registry.register(Box::new(g.clone())).expect(FIXED);
                g
            },
            partner_failures: counter_vec(
                "sealkm_federation_refresh_failures_total",
                "KM-E: failed refreshes of each partner.",
                &["partner"],
            ),
            partner_staged: counter_vec(
                "sealkm_federation_staged_total",
                "KM-E: partner certificates staged for approval.",
                &["partner"],
            ),
            registry,
        }
    }
}

impl Metrics {
    pub fn request(&self, endpoint: &'static str, status: u16) {
        self.requests
            .with_label_values(&[endpoint, &status.to_string()])
            .inc();
    }

    pub fn issuance(&self, seconds: f64) {
        self.issuance.observe(seconds);
    }

    pub fn cache(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    pub fn token_refused(&self) {
        self.tokens_refused.inc();
    }

    pub fn distribution_delivered(&self, events: u64) {
        self.events_delivered.inc_by(events);
    }

    pub fn distribution_failed(&self) {
        self.deliveries_failed.inc();
    }

    pub fn distribution_acked(&self) {
        self.event_acks.inc();
    }

    /// A successful KM-E refresh of `partner` at `now_unix` that staged `staged` certificates.
    pub fn federation_synced(&self, partner: &str, now_unix: u64, staged: u64) {
        self.partner_last_sync
            .with_label_values(&[partner])
            .set(i64::try_from(now_unix).unwrap_or(i64::MAX));
        self.partner_staged
            .with_label_values(&[partner])
            .inc_by(staged);
    }

    /// A failed KM-E refresh of `partner`.
    pub fn federation_failed(&self, partner: &str) {
        self.partner_failures.with_label_values(&[partner]).inc();
    }

    /// Prometheus text exposition (format 0.0.4, [`CONTENT_TYPE`]) of this node's metrics and of
    /// the values sampled by the caller: the Raft status, the number of cold issuances in flight
    /// and the number of ReadIndex rounds made for requests.
    pub fn render(
        &self,
        raft: &crate::store::StoreStatus,
        inflight: usize,
        request_barriers: u64,
    ) -> Result<String, prometheus::Error> {
        let mut families = self.registry.gather();
        families.push(sampled(
            "sealkm_request_read_barriers_total",
            "ReadIndex rounds made for requests (at most one per request).",
            MetricType::COUNTER,
            counter(request_barriers),
        ));
        for (name, help, v) in [
            ("sealkm_raft_term", "The Raft term.", raft.term),
            (
                "sealkm_raft_commit_index",
                "The Raft commit index.",
                raft.commit,
            ),
            (
                "sealkm_applied_index",
                "The last Raft index applied to the state machine.",
                raft.applied,
            ),
            (
                "sealkm_raft_leader_id",
                "The node id of the leader this node knows (0: none).",
                raft.leader_id,
            ),
            (
                "sealkm_raft_snapshot_index",
                "The index of the latest Raft snapshot.",
                raft.snapshot_index,
            ),
            (
                "sealkm_raft_is_leader",
                "1 if this node is the Raft leader.",
                u64::from(raft.role.is_leader()),
            ),
            (
                "sealkm_issuance_inflight",
                "Cold key set issuances in flight.",
                inflight as u64,
            ),
        ] {
            families.push(sampled(name, help, MetricType::GAUGE, gauge(v)));
        }
        families.push(sampled(
            "sealkm_raft_fsync_seconds",
            "Synced writes of the Raft log.",
            MetricType::SUMMARY,
            summary(raft.fsyncs, raft.fsync_micros as f64 / 1e6),
        ));
        let mut out = String::new();
        TextEncoder::new().encode_utf8(&families, &mut out)?;
        Ok(out)
    }
}

/// A family of one unlabelled sample whose value is owned elsewhere and read at render time.
fn sampled(name: &str, help: &str, kind: MetricType, sample: proto::Metric) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_owned());
    f.set_help(help.to_owned());
    f.set_field_type(kind);
    f.mut_metric().push(sample);
    f
}

fn counter(value: u64) -> proto::Metric {
    let mut c = proto::Counter::default();
    c.set_value(value as f64);
    let mut m = proto::Metric::default();
    m.set_counter(c);
    m
}

fn gauge(value: u64) -> proto::Metric {
    let mut g = proto::Gauge::default();
    g.set_value(value as f64);
    let mut m = proto::Metric::default();
    m.set_gauge(g);
    m
}

/// A summary without quantiles: only its count and sum.
fn summary(count: u64, sum: f64) -> proto::Metric {
    let mut s = proto::Summary::default();
    s.set_sample_count(count);
    s.set_sample_sum(sum);
    let mut m = proto::Metric::default();
    m.set_summary(s);
    m
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
        let raft = crate::store::StoreStatus {
            applied: 7,
            term: 3,
            fsyncs: 4,
            fsync_micros: 2_500,
            role: crate::store::NodeRole::Leader,
            ..Default::default()
        };
        let t = m.render(&raft, 2, 5).expect("render");
        for line in [
            "# TYPE sealkm_requests_total counter",
            "sealkm_requests_total{endpoint=\"keyprov\",status=\"200\"} 2",
            "sealkm_requests_total{endpoint=\"init\",status=\"401\"} 1",
            "# TYPE sealkm_issuance_seconds histogram",
            "sealkm_issuance_seconds_bucket{le=\"0.0005\"} 0",
            "sealkm_issuance_seconds_bucket{le=\"0.001\"} 0",
            "sealkm_issuance_seconds_bucket{le=\"0.002\"} 1",
            "sealkm_issuance_seconds_bucket{le=\"1\"} 1",
            "sealkm_issuance_seconds_bucket{le=\"+Inf\"} 1",
            "sealkm_issuance_seconds_sum 0.0015",
            "sealkm_issuance_seconds_count 1",
            "# TYPE sealkm_keyset_cache_total counter",
            "sealkm_keyset_cache_total{result=\"hit\"} 1",
            "sealkm_keyset_cache_total{result=\"miss\"} 1",
            "# TYPE sealkm_tokens_refused_total counter",
            "sealkm_tokens_refused_total 1",
            "# TYPE sealkm_events_delivered_total counter",
            "sealkm_events_delivered_total 3",
            "sealkm_event_deliveries_failed_total 1",
            "sealkm_event_acks_total 1",
            "# TYPE sealkm_request_read_barriers_total counter",
            "sealkm_request_read_barriers_total 5",
            "# TYPE sealkm_applied_index gauge",
            "sealkm_applied_index 7",
            "sealkm_raft_term 3",
            "sealkm_raft_commit_index 0",
            "sealkm_raft_leader_id 0",
            "sealkm_raft_snapshot_index 0",
            "sealkm_raft_is_leader 1",
            "# TYPE sealkm_issuance_inflight gauge",
            "sealkm_issuance_inflight 2",
            "# TYPE sealkm_raft_fsync_seconds summary",
            "sealkm_raft_fsync_seconds_count 4",
            "sealkm_raft_fsync_seconds_sum 0.0025",
        ] {
            assert!(t.lines().any(|l| l == line), "no {line:?} in\n{t}");
        }
    }

    #[test]
    fn a_fresh_node_renders_zero_counters_and_no_empty_families() {
        let t = Metrics::default()
            .render(&crate::store::StoreStatus::default(), 0, 0)
            .expect("render");
        assert!(t
            .lines()
            .any(|l| l == "sealkm_keyset_cache_total{result=\"miss\"} 0"));
        assert!(t.lines().any(|l| l == "sealkm_issuance_seconds_count 0"));
        assert!(t
            .lines()
            .any(|l| l == "sealkm_request_read_barriers_total 0"));
        assert!(t.lines().any(|l| l == "sealkm_raft_is_leader 0"));
        // No request was answered yet: the labelled family has no samples and is left out.
        assert!(!t.contains("sealkm_requests_total"), "{t}");
    }

    #[test]
    fn federation_metrics_are_per_partner() {
        let m = Metrics::default();
        m.federation_synced("kms.b.test", 1_800_000_000, 2);
        m.federation_failed("kms.c.test");
        let t = m
            .render(&crate::store::StoreStatus::default(), 0, 0)
            .expect("render");
        for line in [
            "sealkm_federation_last_sync_seconds{partner=\"kms.b.test\"} 1800000000",
            "sealkm_federation_staged_total{partner=\"kms.b.test\"} 2",
            "sealkm_federation_refresh_failures_total{partner=\"kms.c.test\"} 1",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} in {t}");
        }
    }
}
