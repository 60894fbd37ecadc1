//! Per-worker counters, merged into the report at the end, so workers share nothing hot
//! but a few atomic counters.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::observe::{LeakExample, Observation};
use super::plan::LoadPlan;
use super::plan::Shape;
use super::report::{
    CacheSummary, LatencySummary, LeakSummary, LoadtestReport, NodeSummary, RequestMix, RunSettings,
};
use super::series::{HistogramBucket, SeriesPoint};
use crate::leak::LeakKind;
use crate::net::{Negotiated, RequestError};
use crate::ToolError;

/// Leak examples kept per kind: enough to debug from, few enough to read.
const EXAMPLES_PER_LEAK_KIND: usize = 3;
const MAX_ERROR_EXAMPLES: usize = 5;
/// Distinct cache-status tokens tracked before the rest are lumped into `OTHER`, so a
/// server sending unique values cannot grow memory without bound.
const MAX_CACHE_STATUS_KINDS: usize = 32;
/// Latency histogram range: 1µs to one hour, 3 significant digits.
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// Per-worker counters, merged into the report at the end.
pub(crate) struct WorkerStats {
    pub(crate) latency: Histogram<u64>,
    pub(crate) sent: RequestMix,
    pub(crate) responses: u64,
    /// Indexed by status code; `http::StatusCode` is always below 1000.
    pub(crate) statuses: Vec<u64>,
    pub(crate) cache_statuses: Vec<(String, u64)>,
    pub(crate) without_cache_status: u64,
    pub(crate) leak_counts: BTreeMap<LeakKind, u64>,
    pub(crate) leak_examples: Vec<LeakExample>,
    pub(crate) error_kinds: BTreeMap<&'static str, u64>,
    pub(crate) error_examples: Vec<String>,
    /// Distinct protocol/TLS outcomes of the connections opened, and how many opened.
    pub(crate) connections: Vec<Negotiated>,
    pub(crate) connects: u64,
}

impl WorkerStats {
    pub fn new() -> Result<Self, ToolError> {
        Ok(WorkerStats {
            latency: Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)
                .map_err(|err| ToolError::Internal(format!("latency histogram: {err}")))?,
            sent: RequestMix::default(),
            responses: 0,
            statuses: vec![0; 1000],
            cache_statuses: Vec::new(),
            without_cache_status: 0,
            leak_counts: BTreeMap::new(),
            leak_examples: Vec::new(),
            error_kinds: BTreeMap::new(),
            error_examples: Vec::new(),
            connections: Vec::new(),
            connects: 0,
        })
    }

    pub fn count_sent(&mut self, shape: Shape) {
        match shape {
            Shape::SimpleWithOrigin => self.sent.simple_with_origin += 1,
            Shape::SimpleWithoutOrigin => self.sent.simple_without_origin += 1,
            Shape::Preflight => self.sent.preflight += 1,
        }
    }

    pub fn record_latency(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency.saturating_record(micros);
    }

    /// Whether one more leak example of any kind may still be kept.
    pub fn wants_example(&self) -> bool {
        self.leak_examples.len() < EXAMPLES_PER_LEAK_KIND * 3
    }

    /// Counts one response from its observation; returns whether it leaked.
    pub fn commit(&mut self, seen: Observation) -> bool {
        self.responses += 1;
        if let Some(count) = self.statuses.get_mut(usize::from(seen.status)) {
            *count += 1;
        }
        match seen.cache_token() {
            Some(token) => {
                let token = String::from_utf8_lossy(token);
                self.count_cache_status(&token);
            }
            None => self.without_cache_status += 1,
        }
        let Some(kind) = seen.leak else {
            return false;
        };
        let count = self.leak_counts.entry(kind).or_default();
        *count += 1;
        if let Some(example) = seen.example {
            let kept = self
                .leak_examples
                .iter()
                .filter(|mine| mine.kind == kind)
                .count();
            if kept < EXAMPLES_PER_LEAK_KIND {
                self.leak_examples.push(*example);
            }
        }
        true
    }

    /// Remembers what a connection negotiated (a handful of distinct values at most).
    pub fn note_connection(&mut self, negotiated: Negotiated) {
        if !self.connections.contains(&negotiated) && self.connections.len() < 8 {
            self.connections.push(negotiated);
        }
        self.connects += 1;
    }

    fn count_cache_status(&mut self, token: &str) {
        if let Some((_, count)) = self
            .cache_statuses
            .iter_mut()
            .find(|(name, _)| name.eq_ignore_ascii_case(token))
        {
            *count += 1;
        } else if self.cache_statuses.len() < MAX_CACHE_STATUS_KINDS {
            self.cache_statuses.push((token.to_ascii_uppercase(), 1));
        } else {
            self.count_cache_status("OTHER");
        }
    }

    pub fn record_error(&mut self, err: &RequestError) {
        *self.error_kinds.entry(err.kind()).or_default() += 1;
        if self.error_examples.len() < MAX_ERROR_EXAMPLES {
            self.error_examples.push(err.to_string());
        }
    }

    pub fn merge(&mut self, other: WorkerStats) -> Result<(), ToolError> {
        self.latency
            .add(&other.latency)
            .map_err(|err| ToolError::Internal(format!("merging latency histograms: {err:?}")))?;
        self.sent.simple_with_origin += other.sent.simple_with_origin;
        self.sent.simple_without_origin += other.sent.simple_without_origin;
        self.sent.preflight += other.sent.preflight;
        self.responses += other.responses;
        for (mine, theirs) in self.statuses.iter_mut().zip(&other.statuses) {
            *mine += theirs;
        }
        for (token, count) in other.cache_statuses {
            match self
                .cache_statuses
                .iter_mut()
                .find(|(name, _)| *name == token)
            {
                Some((_, total)) => *total += count,
                None => self.cache_statuses.push((token, count)),
            }
        }
        self.without_cache_status += other.without_cache_status;
        for (kind, count) in other.leak_counts {
            *self.leak_counts.entry(kind).or_default() += count;
        }
        for example in other.leak_examples {
            let kept = self
                .leak_examples
                .iter()
                .filter(|mine| mine.kind == example.kind)
                .count();
            if kept < EXAMPLES_PER_LEAK_KIND {
                self.leak_examples.push(example);
            }
        }
        for (kind, count) in other.error_kinds {
            *self.error_kinds.entry(kind).or_default() += count;
        }
        for negotiated in other.connections {
            if !self.connections.contains(&negotiated) {
                self.connections.push(negotiated);
            }
        }
        self.connects += other.connects;
        for example in other.error_examples {
            if self.error_examples.len() < MAX_ERROR_EXAMPLES {
                self.error_examples.push(example);
            }
        }
        Ok(())
    }
}

impl WorkerStats {
    /// The report of a run from the workers' summed statistics.
    pub(crate) fn into_report(
        self,
        plan: &LoadPlan,
        elapsed: Duration,
        (timeline, latency_histogram): (Vec<SeriesPoint>, Vec<HistogramBucket>),
        nodes: Vec<NodeSummary>,
    ) -> LoadtestReport {
        let totals = self;
        let errors: u64 = totals.error_kinds.values().sum();
        let requests = totals.responses + errors;
        let elapsed_seconds = elapsed.as_secs_f64();
        let latency = &totals.latency;
        let latency_us = (totals.responses > 0).then(|| LatencySummary {
            min: latency.min(),
            mean: latency.mean(),
            p50: latency.value_at_quantile(0.50),
            p90: latency.value_at_quantile(0.90),
            p99: latency.value_at_quantile(0.99),
            p999: latency.value_at_quantile(0.999),
            max: latency.max(),
        });
        let status = totals
            .statuses
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(code, count)| (code.to_string(), *count))
            .collect();
        let statuses: BTreeMap<String, u64> = totals.cache_statuses.into_iter().collect();
        let hits = ["HIT", "STALE"]
            .iter()
            .filter_map(|name| statuses.get(*name))
            .sum();
        let with_status: u64 = statuses.values().sum();
        let count = |kind| totals.leak_counts.get(&kind).copied().unwrap_or(0);
        let mut examples = totals.leak_examples;
        examples.sort_by_key(|example| example.kind);
        let leaks = LeakSummary {
            total: totals.leak_counts.values().sum(),
            wrong_origin: count(LeakKind::WrongOrigin),
            missing_vary_origin: count(LeakKind::MissingVaryOrigin),
            acao_without_origin: count(LeakKind::AcaoWithoutOrigin),
            examples,
        };
        LoadtestReport {
            url: plan.url.clone(),
            settings: RunSettings {
                concurrency: plan.concurrency,
                origins: plan.origins.len(),
                paths: plan.paths.len(),
                preflight_share: plan.preflight_share,
                no_origin_share: plan.no_origin_share,
                duration_limit_seconds: plan.bounds.duration.map(|limit| limit.as_secs_f64()),
                request_limit: plan.bounds.requests,
                rate: plan.rate,
                interval_seconds: plan.interval.as_secs_f64(),
            },
            elapsed_seconds,
            requests,
            responses: totals.responses,
            errors,
            requests_per_second: if elapsed_seconds > 0.0 {
                requests as f64 / elapsed_seconds
            } else {
                0.0
            },
            sent: totals.sent,
            latency_us,
            status,
            cache: CacheSummary {
                hit_ratio: (with_status > 0).then(|| hits as f64 / with_status as f64),
                statuses,
                without_status: totals.without_cache_status,
                hits,
            },
            passed: errors == 0 && leaks.total == 0,
            leaks,
            error_kinds: totals
                .error_kinds
                .into_iter()
                .map(|(kind, count)| (kind.to_string(), count))
                .collect(),
            error_examples: totals.error_examples,
            connections: totals.connections,
            connects: totals.connects,
            timeline,
            latency_histogram,
            nodes,
        }
    }
}
