//! `cors-edge loadtest`: a load generator for cache behaviour.
//!
//! It spreads requests over N origins and M paths, mixes in a share of CORS preflights
//! and of requests without `Origin`, and checks every response for cross-origin leaks
//! while it measures throughput, latency and the hit ratio. A cache that ignores
//! `Vary: Origin` only shows its bug under concurrent, mixed-origin traffic, which is
//! exactly what this produces.
//!
//! Each worker owns one keep-alive connection (http or https; HTTP/1.1 through a small
//! allocation-free client, HTTP/2 through hyper's) and keeps its own counters and
//! histogram, merged at the end, so workers share nothing hot but a few atomic counters.
//!
//! The run is always bounded: by `--duration` (default 10s), by `--requests`, or by
//! whichever comes first; each request is bounded by `--timeout`.
//!
//! Layout: [`LoadtestArgs`] (arguments), `plan` (requests as data), `worker` (the one
//! place that does I/O), `observe` (the per-response leak judgement, a pure function),
//! `stats` and `series` (counting), `report` (the model), `text` and `html` (renderers;
//! JSON is the model serialized).

mod args;
mod html;
mod observe;
mod plan;
mod progress;
mod report;
mod series;
mod stats;
mod text;
mod worker;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::time::Instant;

pub use crate::leak::LeakKind;
pub use args::{LoadtestArgs, DEFAULT_DURATION};
pub use observe::LeakExample;
pub use report::{
    CacheSummary, LatencySummary, LeakSummary, LoadtestReport, NodeSummary, RequestMix, RunSettings,
};
pub use series::{HistogramBucket, SeriesPoint};

use args::Bounds;
use plan::LoadPlan;
use progress::{progress_mode, Progress};
use series::Timeline;
use stats::WorkerStats;
use worker::{worker, Dispatcher, Shared};

use crate::ToolError;

/// Runs the load test, prints the report on stdout (text, or JSON with `--json`) and
/// returns the exit code: [`exit_code::OK`] when there were no errors and no leaks,
/// [`exit_code::FAILED`] otherwise.
pub async fn run(args: LoadtestArgs) -> Result<i32, ToolError> {
    run_to(args, &mut std::io::stdout()).await
}

/// [`run`], writing the report to `out` instead of stdout.
pub async fn run_to(args: LoadtestArgs, out: &mut impl std::io::Write) -> Result<i32, ToolError> {
    // Opened before the run so a path that cannot be written fails at once.
    let html_file = match &args.report {
        Some(path) => Some(html::create(path)?),
        None => None,
    };
    let report = execute(&args).await?;
    if let Some(file) = html_file {
        file.write(&report)?;
    }
    let text = if args.json {
        format!("{}\n", report.to_json())
    } else {
        report.render_text()
    };
    crate::error::write_report(out, &text)?;
    Ok(report.exit_code())
}

/// Runs the load test and returns its report without printing it. Progress still goes
/// to stderr unless `--json` is set.
pub async fn execute(args: &LoadtestArgs) -> Result<LoadtestReport, ToolError> {
    let bounds = Bounds::from_args(args)?;
    let plan = Arc::new(LoadPlan::build(args, bounds).await?);

    let mut worker_stats = Vec::with_capacity(plan.concurrency);
    for _ in 0..plan.concurrency {
        worker_stats.push(WorkerStats::new()?);
    }

    let started = Instant::now();
    let shared = Arc::new(Shared {
        dispatcher: Dispatcher::new(&plan, started),
        timeline: Timeline::new(plan.interval),
        started,
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        leaks: AtomicU64::new(0),
        plan: Arc::clone(&plan),
    });
    let progress = Progress::start(progress_mode(args.json), &shared, started);

    let workers: Vec<_> = worker_stats
        .into_iter()
        .enumerate()
        .map(|(index, stats)| tokio::spawn(worker(index, Arc::clone(&shared), stats)))
        .collect();
    let mut totals = WorkerStats::new()?;
    let mut failure = None;
    let mut nodes = NodeTally::new(&plan);
    for (index, handle) in workers.into_iter().enumerate() {
        match handle.await {
            Ok(stats) => {
                nodes.add(index, &stats);
                totals.merge(stats)?;
            }
            Err(err) => failure = Some(ToolError::Internal(format!("a load worker died: {err}"))),
        }
    }
    let elapsed = started.elapsed();
    progress.finish();
    if let Some(err) = failure {
        return Err(err);
    }
    let series = shared.timeline.finish(elapsed);
    Ok(totals.into_report(&plan, elapsed, series, nodes.finish()))
}

/// Per node of a cluster (several `--connect-to` rules): what its workers saw.
struct NodeTally {
    nodes: Vec<Tally>,
}

struct Tally {
    address: String,
    responses: u64,
    errors: u64,
    statuses: BTreeMap<String, u64>,
    without_status: u64,
}

impl NodeTally {
    fn new(plan: &LoadPlan) -> Self {
        let nodes = if plan.endpoints.len() < 2 {
            Vec::new()
        } else {
            plan.endpoints
                .iter()
                .map(|endpoint| Tally {
                    address: endpoint.addr.to_string(),
                    responses: 0,
                    errors: 0,
                    statuses: BTreeMap::new(),
                    without_status: 0,
                })
                .collect()
        };
        NodeTally { nodes }
    }

    /// Worker `worker` connected to node `worker % nodes` (see `LoadPlan::endpoint_of`).
    fn add(&mut self, worker: usize, stats: &WorkerStats) {
        let count = self.nodes.len();
        if count == 0 {
            return;
        }
        let Some(node) = self.nodes.get_mut(worker % count) else {
            return;
        };
        node.responses += stats.responses;
        node.errors += stats.error_kinds.values().sum::<u64>();
        for (status, n) in &stats.cache_statuses {
            *node.statuses.entry(status.clone()).or_default() += n;
        }
        node.without_status += stats.without_cache_status;
    }

    fn finish(self) -> Vec<NodeSummary> {
        self.nodes
            .into_iter()
            .map(|node| NodeSummary {
                address: node.address,
                responses: node.responses,
                errors: node.errors,
                cache: CacheSummary::of(node.statuses, node.without_status),
            })
            .collect()
    }
}
