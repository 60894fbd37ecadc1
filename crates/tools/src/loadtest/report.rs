//! The load test's report model, serialized as it is for `--json` and embedded in the
//! HTML report. Built from the workers' totals by `stats` (which depends on this module, not
//! the other way round).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::observe::LeakExample;
use super::series::{HistogramBucket, SeriesPoint};
use crate::exit_code;
use crate::net::Negotiated;

/// How many requests of each kind were sent (including those that then failed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMix {
    pub simple_with_origin: u64,
    pub simple_without_origin: u64,
    pub preflight: u64,
}

/// Latency percentiles in microseconds, over successful responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// Cache statuses as the responses reported them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheSummary {
    /// Count per status, by the first token of `X-Cache` (or `CF-Cache-Status`,
    /// `X-Cache-Status`), upper-cased.
    pub statuses: BTreeMap<String, u64>,
    /// Responses that carried no cache-status header at all.
    pub without_status: u64,
    /// HIT and STALE responses: served from cache.
    pub hits: u64,
    /// `hits` over the responses that carried a cache status; `None` when none did.
    pub hit_ratio: Option<f64>,
}

impl CacheSummary {
    /// From the count per cache status and the responses without one.
    pub(crate) fn of(statuses: BTreeMap<String, u64>, without_status: u64) -> Self {
        let hits = ["HIT", "STALE"]
            .iter()
            .filter_map(|name| statuses.get(*name))
            .sum();
        let with_status: u64 = statuses.values().sum();
        CacheSummary {
            hit_ratio: (with_status > 0).then(|| hits as f64 / with_status as f64),
            statuses,
            without_status,
            hits,
        }
    }
}

/// One node of a cluster the run spread its connections over (one `--connect-to` each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// Where its connections went.
    pub address: String,
    pub responses: u64,
    pub errors: u64,
    /// The node's own cache statuses: a MISS on a node of a sharded cache may still have
    /// been served from its owner's cache; the upstream's request count tells what reached it.
    pub cache: CacheSummary,
}

/// Cross-origin leaks seen, counted by kind, with a few examples of each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakSummary {
    pub total: u64,
    pub wrong_origin: u64,
    pub missing_vary_origin: u64,
    pub acao_without_origin: u64,
    pub examples: Vec<LeakExample>,
}

/// The settings the run used, echoed so a saved report explains itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    pub concurrency: usize,
    pub origins: usize,
    pub paths: usize,
    pub preflight_share: f64,
    pub no_origin_share: f64,
    pub duration_limit_seconds: Option<f64>,
    pub request_limit: Option<u64>,
    /// Requests per second scheduled in open loop; `None` for closed loop.
    pub rate: Option<f64>,
    /// The width of one point of `timeline`.
    pub interval_seconds: f64,
}

/// The result of a load test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadtestReport {
    pub url: String,
    pub settings: RunSettings,
    pub elapsed_seconds: f64,
    /// Requests that completed, with a response or an error.
    pub requests: u64,
    pub responses: u64,
    pub errors: u64,
    pub requests_per_second: f64,
    pub sent: RequestMix,
    /// `None` when no response arrived.
    pub latency_us: Option<LatencySummary>,
    /// Count per HTTP status code.
    pub status: BTreeMap<String, u64>,
    pub cache: CacheSummary,
    pub leaks: LeakSummary,
    /// Count per error kind: connect, tls, handshake, request, response, timeout.
    pub error_kinds: BTreeMap<String, u64>,
    pub error_examples: Vec<String>,
    /// What the connections negotiated (protocol, TLS version, address); one entry
    /// unless the server answered differently over the run.
    pub connections: Vec<Negotiated>,
    /// Connections opened (one per worker, more when the server closes keep-alive).
    pub connects: u64,
    /// The run over time, one point per interval (`settings.interval_seconds`).
    pub timeline: Vec<SeriesPoint>,
    /// Latency of every response, in log-linear buckets (about 12% wide).
    pub latency_histogram: Vec<HistogramBucket>,
    /// No errors and no leaks.
    pub passed: bool,
    /// Per node, when several `--connect-to` rules matched (a cluster); empty otherwise.
    #[serde(default)]
    pub nodes: Vec<NodeSummary>,
}

impl LoadtestReport {
    /// [`exit_code::OK`] without errors and leaks, [`exit_code::FAILED`] otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.passed {
            exit_code::OK
        } else {
            exit_code::FAILED
        }
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail; should it ever,
        // an error object is still valid JSON for the reader.
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|err| format!("{{\"error\": {:?}}}", err.to_string()))
    }
}
