//! Prometheus metrics (prefix `cors_edge_`). Labels only take bounded values: route names from
//! the config, request kinds, cache statuses, decisions and reasons defined in code.
//!
//! Registered in the default registry of the `prometheus` version that `pingora-prometheus`
//! re-exports; another version would have its own registry and `/metrics` would be empty.

use cors_edge_core::cors::UnsafeReason;
use cors_edge_core::outcome::{CacheStatus, CorsOutcome, PreflightResult, TrafficKind};
use once_cell::sync::Lazy;
use pingora_prometheus::prometheus::{
    self, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, TextEncoder,
};

/// Buckets from 50µs: cache hits are sub-millisecond and must not all land in the first bucket.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

pub struct Metrics {
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub upstream_duration: HistogramVec,
    pub preflights: IntCounterVec,
    pub cors_decisions: IntCounterVec,
    pub cache_entries: IntGauge,
    pub cache_bytes: IntGauge,
    pub cache_evictions: IntCounter,
    pub purges: IntCounterVec,
    pub purged_entries: IntCounter,
    pub unsafe_upstream: IntCounterVec,
    pub access_log_dropped: IntCounter,
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name} is malformed: {e}"));
    register(Box::new(counter.clone()));
    counter
}

fn histogram_vec(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    let histogram = HistogramVec::new(opts, labels)
        .unwrap_or_else(|e| panic!("metric {name} is malformed: {e}"));
    register(Box::new(histogram.clone()));
    histogram
}

fn register(collector: Box<dyn prometheus::core::Collector>) {
    // Registration fails only for a duplicate name, which is a programming error caught by
    // the first test that starts the gateway.
    if let Err(e) = prometheus::register(collector) {
        panic!("metric registration failed: {e}");
    }
}

pub static METRICS: Lazy<Metrics> = Lazy::new(|| {
    let cache_entries = gauge("cors_edge_cache_entries", "Entries in the cache");
    let cache_bytes = gauge(
        "cors_edge_cache_bytes",
        "Bytes held by the cache, headers and bodies",
    );
    let cache_evictions = counter(
        "cors_edge_cache_evictions_total",
        "Entries evicted to stay under cache.max_bytes",
    );
    let purged_entries = counter(
        "cors_edge_purged_entries_total",
        "Entries matched by purges",
    );
    let purges = counter_vec(
        "cors_edge_purges_total",
        "Purge requests by selector",
        &["selector"],
    );
    let access_log_dropped = counter(
        "cors_edge_access_log_dropped_total",
        "Access log lines dropped because the writer fell behind or could not write",
    );
    Metrics {
        requests: counter_vec(
            "cors_edge_requests_total",
            "Requests by route, kind (simple, preflight, other) and cache status",
            &["route", "kind", "cache"],
        ),
        request_duration: histogram_vec(
            "cors_edge_request_duration_seconds",
            "Time from request to the end of the response",
            &["route", "kind"],
        ),
        upstream_duration: histogram_vec(
            "cors_edge_upstream_duration_seconds",
            "Time from sending the upstream request to its response header",
            &["route"],
        ),
        preflights: counter_vec(
            "cors_edge_preflight_total",
            "Preflights by route and result (hit, miss, answered, denied)",
            &["route", "result"],
        ),
        cors_decisions: counter_vec(
            "cors_edge_cors_decisions_total",
            "CORS decisions by route and decision",
            &["route", "decision"],
        ),
        cache_entries,
        cache_bytes,
        cache_evictions,
        purges,
        purged_entries,
        unsafe_upstream: counter_vec(
            "cors_edge_unsafe_upstream_responses_total",
            "Upstream responses the gateway had to protect, by reason",
            &["reason"],
        ),
        access_log_dropped,
    }
});

/// The cluster purge bus (`cluster:`), registered when a cluster is configured.
pub struct ClusterMetrics {
    pub connected: IntGauge,
    pub published: IntCounter,
    pub received: IntCounter,
    queued: IntGauge,
    pub resyncs: IntCounter,
}

impl ClusterMetrics {
    pub fn set_queued(&self, purges: usize) {
        self.queued.set(i64::try_from(purges).unwrap_or(i64::MAX));
    }
}

fn gauge(name: &str, help: &str) -> IntGauge {
    let gauge = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(Box::new(gauge.clone()));
    gauge
}

fn counter(name: &str, help: &str) -> IntCounter {
    let counter = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(Box::new(counter.clone()));
    counter
}

pub static CLUSTER_METRICS: Lazy<ClusterMetrics> = Lazy::new(|| {
    ClusterMetrics {
    connected: gauge(
        "cors_edge_cluster_connected",
        "1 while this node reads the cluster purge stream",
    ),
    published: counter(
        "cors_edge_cluster_purges_published_total",
        "Purges this node sent to the cluster",
    ),
    received: counter(
        "cors_edge_cluster_purges_received_total",
        "Purges from other nodes applied to this node's cache",
    ),
    queued: gauge(
        "cors_edge_cluster_publish_queue",
        "Purges waiting for Redis to be reachable",
    ),
    resyncs: counter(
        "cors_edge_cluster_resyncs_total",
        "Times the purge stream was read again from its beginning (Redis restarted or the stream was recreated)",
    ),
}
});

/// Creates every series whose label values are known in advance at 0, so that `rate()` and
/// alerts see them before their first event (Prometheus practice). Route series are created
/// when a route is built ([`RouteMetrics::new`]).
pub fn register_known_series() {
    let m = &*METRICS;
    for selector in cors_edge_core::purge::selector_labels() {
        m.purges.with_label_values(&[selector]);
    }
    for reason in UnsafeReason::ALL {
        m.unsafe_upstream.with_label_values(&[reason.as_str()]);
    }
}

/// Counters and histograms of one route, every series created at 0 when the route is built,
/// indexed by the outcome enums so the request path does no label lookups.
pub struct RouteMetrics {
    requests: Vec<IntCounter>,
    durations: Vec<Histogram>,
    pub upstream_duration: Histogram,
    decisions: Vec<IntCounter>,
    preflights: Vec<IntCounter>,
}

impl RouteMetrics {
    pub fn new(route: &str) -> Self {
        let m = &*METRICS;
        let requests = TrafficKind::ALL
            .iter()
            .flat_map(|kind| {
                CacheStatus::ALL.iter().map(move |status| {
                    m.requests
                        .with_label_values(&[route, kind.as_str(), status.as_str()])
                })
            })
            .collect();
        let durations = TrafficKind::ALL
            .iter()
            .map(|kind| {
                m.request_duration
                    .with_label_values(&[route, kind.as_str()])
            })
            .collect();
        let decisions = CorsOutcome::ALL
            .iter()
            .map(|o| m.cors_decisions.with_label_values(&[route, o.as_str()]))
            .collect();
        let preflights = PreflightResult::ALL
            .iter()
            .map(|r| m.preflights.with_label_values(&[route, r.as_str()]))
            .collect();
        RouteMetrics {
            requests,
            durations,
            upstream_duration: m.upstream_duration.with_label_values(&[route]),
            decisions,
            preflights,
        }
    }

    /// Counts `cors_decisions_total{route, decision}`.
    pub fn cors_decision(&self, outcome: CorsOutcome) {
        if let Some(counter) = self.decisions.get(outcome.index()) {
            counter.inc();
        }
    }

    /// Counts `preflight_total{route, result}`.
    pub fn preflight(&self, result: PreflightResult) {
        if let Some(counter) = self.preflights.get(result.index()) {
            counter.inc();
        }
    }

    pub fn request(&self, kind: TrafficKind, status: CacheStatus, seconds: f64) {
        let index = kind.index() * CacheStatus::ALL.len() + status.index();
        if let Some(counter) = self.requests.get(index) {
            counter.inc();
        }
        if let Some(histogram) = self.durations.get(kind.index()) {
            histogram.observe(seconds);
        }
    }
}

/// The text exposition of every registered metric.
pub fn render() -> Vec<u8> {
    let mut buffer = Vec::new();
    let families = prometheus::gather();
    if let Err(e) = TextEncoder::new().encode(&families, &mut buffer) {
        tracing::error!("metrics encoding failed: {e}");
    }
    buffer
}

/// The sharded cache (`cluster.peers`): what happened between nodes, and the ring's size.
pub struct PeerMetrics {
    requests: IntCounterVec,
    /// `cors_edge_cluster_peers{state="healthy"|"unhealthy"}`: the ring's members by health.
    peers: IntGaugeVec,
}

/// The `result` label values of `cors_edge_cluster_peer_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerResult {
    /// A local miss sent to its owner.
    Forwarded,
    /// A request from an authenticated peer, answered by this node as the owner.
    ServedAsOwner,
    /// The owner was unreachable: fetched from the upstream instead.
    Failover,
    /// A request carried the peer marker with a wrong or missing token (an ordinary client).
    Refused,
}

impl PeerResult {
    pub const ALL: [PeerResult; 4] = [
        PeerResult::Forwarded,
        PeerResult::ServedAsOwner,
        PeerResult::Failover,
        PeerResult::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PeerResult::Forwarded => "forwarded",
            PeerResult::ServedAsOwner => "served_as_owner",
            PeerResult::Failover => "failover",
            PeerResult::Refused => "refused",
        }
    }
}

impl PeerMetrics {
    pub fn count(&self, result: PeerResult) {
        self.requests.with_label_values(&[result.as_str()]).inc();
    }

    pub fn set_ring(&self, members: usize, healthy: usize) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.peers
            .with_label_values(&["healthy"])
            .set(count(healthy));
        self.peers
            .with_label_values(&["unhealthy"])
            .set(count(members.saturating_sub(healthy)));
    }
}

pub static PEER_METRICS: Lazy<PeerMetrics> = Lazy::new(|| {
    let requests = counter_vec(
        "cors_edge_cluster_peer_requests_total",
        "Requests between nodes of the sharded cache, by result (forwarded, served_as_owner, failover, refused)",
        &["result"],
    );
    for result in PeerResult::ALL {
        requests.with_label_values(&[result.as_str()]);
    }
    let peers = IntGaugeVec::new(
        Opts::new(
            "cors_edge_cluster_peers",
            "Nodes of the ring (the resolved cluster.peers) by health: keys are spread over the healthy ones",
        ),
        &["state"],
    )
    .unwrap_or_else(|e| panic!("metric cors_edge_cluster_peers: {e}"));
    register(Box::new(peers.clone()));
    for state in ["healthy", "unhealthy"] {
        peers.with_label_values(&[state]);
    }
    PeerMetrics { requests, peers }
});
