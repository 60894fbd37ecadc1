//! `cors-edge loadtest`: a load generator for cache behaviour.
//!
//! It spreads requests over N origins and M paths, mixes in a share of CORS preflights
//! and of requests without `Origin`, and checks every response for cross-origin leaks
//! while it measures throughput, latency and the hit ratio. A cache that ignores
//! `Vary: Origin` only shows its bug under concurrent, mixed-origin traffic, which is
//! exactly what this produces.
//!
//! Each worker owns one keep-alive HTTP/1.1 connection (hyper's low-level client) and
//! keeps its own counters and histogram, merged at the end, so workers share nothing
//! hot but two atomic counters.
//!
//! The run is always bounded: by `--duration` (default 10s), by `--requests`, or by
//! whichever comes first; each request is bounded by `--timeout`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use hdrhistogram::Histogram;
use http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
    HOST, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Empty;
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, Sleep};

use crate::client::{self, InlineConnection, RequestError};
use crate::cors::{self, AcaoMatch};
use crate::parse::{parse_duration, parse_header_line, parse_rate, parse_share};
use crate::target::TargetUrl;
use crate::{exit_code, ToolError};

/// The run length used when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// What preflights ask for: a non-simple method and two non-safelisted headers, the
/// shape of a typical JSON API call from a browser.
const PREFLIGHT_METHOD: &str = "PUT";
const PREFLIGHT_HEADERS: &str = "content-type,authorization";

/// Leak examples kept per kind: enough to debug from, few enough to read.
const EXAMPLES_PER_LEAK_KIND: usize = 3;
const MAX_ERROR_EXAMPLES: usize = 5;
/// Distinct cache-status tokens tracked before the rest are lumped into `OTHER`, so a
/// server sending unique values cannot grow memory without bound.
const MAX_CACHE_STATUS_KINDS: usize = 32;

/// Tokio's timer has millisecond granularity, so an open-loop worker wakes up to one
/// tick early rather than late; otherwise the timer's rounding would show up as latency.
const TIMER_TICK: Duration = Duration::from_millis(1);
/// Pause after a failed connect so a dead target is not hammered in a tight loop.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(20);

/// Latency histogram range: 1µs to one hour, 3 significant digits.
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// Arguments of `cors-edge loadtest`.
#[derive(Debug, Clone, Args)]
pub struct LoadtestArgs {
    /// Target URL (plain http://). Generated and listed paths are appended to its path.
    #[arg(value_name = "URL")]
    pub url: String,

    /// Number of origins, generated as https://o{i}.loadtest.example (i from 1).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub origins: usize,

    /// Read the origins from FILE, one per line (blank lines and # comments skipped).
    #[arg(long, value_name = "FILE", conflicts_with = "origins")]
    pub origins_file: Option<PathBuf>,

    /// Number of paths, generated as /p/{i} (i from 1) under the URL's path.
    /// Without --paths or --path-list every request goes to the URL's own path.
    #[arg(long, value_name = "M")]
    pub paths: Option<usize>,

    /// Read the paths from FILE, one per line, each appended to the URL's path.
    #[arg(long, value_name = "FILE", conflicts_with = "paths")]
    pub path_list: Option<PathBuf>,

    /// Share of requests that are CORS preflights, 0.0–1.0: OPTIONS with Origin,
    /// Access-Control-Request-Method: PUT and
    /// Access-Control-Request-Headers: content-type,authorization.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_share)]
    pub preflight_share: f64,

    /// Share of requests sent as GET without Origin, 0.0–1.0. The rest are GETs with
    /// Origin. Preflight and no-Origin shares together may not exceed 1.0.
    #[arg(long, value_name = "S", default_value_t = 0.0, value_parser = parse_share)]
    pub no_origin_share: f64,

    /// Number of keep-alive connections, each driven by its own worker.
    #[arg(long, value_name = "C", default_value_t = 32)]
    pub concurrency: usize,

    /// Stop after this long (500ms, 10s, 2m, …). Defaults to 10s when --requests is not
    /// given. 0 removes the time limit, and then --requests is required.
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Stop after exactly N requests (or at --duration, whichever comes first).
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,

    /// Open loop: schedule R requests per second at fixed intervals whatever the
    /// responses do, and measure latency from each request's scheduled start (so a
    /// stalled server shows up in the percentiles instead of being hidden).
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Extra request header, 'Name: value' (repeatable). A Host header given here
    /// replaces the URL's host, to reach a host-matched route.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header_line)]
    pub headers: Vec<(HeaderName, HeaderValue)>,

    /// Count a request as an error (and reconnect) when its response has not fully
    /// arrived after this long.
    #[arg(long, value_name = "D", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Print only the final report, as JSON on stdout; no progress output.
    #[arg(long)]
    pub json: bool,
}

impl LoadtestArgs {
    /// Arguments for `url` with every option at its command-line default.
    pub fn new(url: impl Into<String>) -> Self {
        LoadtestArgs {
            url: url.into(),
            origins: 8,
            origins_file: None,
            paths: None,
            path_list: None,
            preflight_share: 0.0,
            no_origin_share: 0.0,
            concurrency: 32,
            duration: None,
            requests: None,
            rate: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(5),
            json: false,
        }
    }
}

/// Runs the load test, prints the report on stdout (text, or JSON with `--json`) and
/// returns the exit code: [`exit_code::OK`] when there were no errors and no leaks,
/// [`exit_code::FAILED`] otherwise.
pub async fn run(args: LoadtestArgs) -> Result<i32, ToolError> {
    let report = execute(&args).await?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.render_text());
    }
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
    for handle in workers {
        match handle.await {
            Ok(stats) => totals.merge(stats)?,
            Err(err) => failure = Some(ToolError::Internal(format!("a load worker died: {err}"))),
        }
    }
    let elapsed = started.elapsed();
    progress.finish();
    if let Some(err) = failure {
        return Err(err);
    }
    Ok(LoadtestReport::from_totals(&plan, totals, elapsed))
}

/// When the run stops.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    duration: Option<Duration>,
    requests: Option<u64>,
}

impl Bounds {
    /// Checks everything about the arguments that clap cannot (or that a caller who built
    /// the struct by hand may have skipped); every problem is a usage error.
    fn from_args(args: &LoadtestArgs) -> Result<Self, ToolError> {
        let usage = |message: String| Err(ToolError::Usage(message));
        if args.concurrency == 0 {
            return usage("--concurrency must be at least 1".into());
        }
        if args.requests == Some(0) {
            return usage("--requests must be at least 1".into());
        }
        if args.origins_file.is_none() && args.origins == 0 {
            return usage(
                "--origins must be at least 1 (use --no-origin-share 1.0 for traffic without Origin)"
                    .into(),
            );
        }
        if args.paths == Some(0) {
            return usage("--paths must be at least 1".into());
        }
        for (flag, share) in [
            ("--preflight-share", args.preflight_share),
            ("--no-origin-share", args.no_origin_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return usage(format!("{flag} must be between 0.0 and 1.0, got {share}"));
            }
        }
        if args.preflight_share + args.no_origin_share > 1.0 + f64::EPSILON {
            return usage(format!(
                "--preflight-share ({}) and --no-origin-share ({}) add up to more than 1.0",
                args.preflight_share, args.no_origin_share
            ));
        }
        if let Some(rate) = args.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return usage(format!("--rate must be above 0, got {rate}"));
            }
        }
        if args.timeout.is_zero() {
            return usage("--timeout must be above 0".into());
        }
        if let Some((name, _)) = args
            .headers
            .iter()
            .find(|(name, _)| is_generated_header(name))
        {
            return usage(format!(
                "--header {name}: the load test sets this header itself (use --origins, --origins-file or --no-origin-share)"
            ));
        }
        let duration = match (args.duration, args.requests) {
            (None, None) => Some(DEFAULT_DURATION),
            (Some(limit), _) if limit.is_zero() => None,
            (limit, _) => limit,
        };
        if duration.is_none() && args.requests.is_none() {
            return usage(
                "the run would be unbounded: --duration 0 needs --requests N to stop".into(),
            );
        }
        Ok(Bounds {
            duration,
            requests: args.requests,
        })
    }
}

/// Headers the generator sets per request; a fixed value from `--header` would make
/// the leak checks judge responses against the wrong request.
fn is_generated_header(name: &HeaderName) -> bool {
    name == ORIGIN
        || name == ACCESS_CONTROL_REQUEST_METHOD
        || name == ACCESS_CONTROL_REQUEST_HEADERS
}

/// Everything a worker needs to build requests, resolved once before the run.
#[derive(Debug)]
struct LoadPlan {
    url: String,
    addr: SocketAddr,
    origins: Vec<HeaderValue>,
    paths: Vec<Uri>,
    /// Host plus the user's extra headers, copied into every request.
    base_headers: HeaderMap,
    preflight_method: HeaderValue,
    preflight_headers: HeaderValue,
    preflight_share: f64,
    no_origin_share: f64,
    concurrency: usize,
    bounds: Bounds,
    rate: Option<f64>,
    timeout: Duration,
}

impl LoadPlan {
    async fn build(args: &LoadtestArgs, bounds: Bounds) -> Result<Self, ToolError> {
        let target = TargetUrl::parse(&args.url)?;
        let origins = match &args.origins_file {
            Some(path) => read_origins(path)?,
            None => (1..=args.origins)
                .map(|i| {
                    HeaderValue::from_str(&format!("https://o{i}.loadtest.example"))
                        .map_err(|err| ToolError::Internal(err.to_string()))
                })
                .collect::<Result<_, _>>()?,
        };
        let paths = match (&args.path_list, args.paths) {
            (Some(path), _) => read_paths(path, &target)?,
            (None, Some(count)) => (1..=count)
                .map(|i| {
                    target
                        .joined_path(&format!("/p/{i}"))
                        .parse::<Uri>()
                        .map_err(|err| ToolError::Usage(format!("{}: {err}", args.url)))
                })
                .collect::<Result<_, _>>()?,
            (None, None) => vec![target
                .path_and_query()
                .parse::<Uri>()
                .map_err(|err| ToolError::Usage(format!("{}: {err}", args.url)))?],
        };

        let mut base_headers = HeaderMap::new();
        base_headers.insert(HOST, target.host_header.clone());
        for (name, value) in &args.headers {
            // Host replaces the URL's; anything else is added as given.
            if name == HOST {
                base_headers.insert(HOST, value.clone());
            } else {
                base_headers.append(name.clone(), value.clone());
            }
        }

        let addr = target.resolve().await?;
        Ok(LoadPlan {
            url: args.url.clone(),
            addr,
            origins,
            paths,
            base_headers,
            preflight_method: HeaderValue::from_static(PREFLIGHT_METHOD),
            preflight_headers: HeaderValue::from_static(PREFLIGHT_HEADERS),
            preflight_share: args.preflight_share,
            no_origin_share: args.no_origin_share,
            concurrency: args.concurrency,
            bounds,
            rate: args.rate,
            timeout: args.timeout,
        })
    }

    fn build_request(
        &self,
        shape: Shape,
        origin: &HeaderValue,
        path: &Uri,
    ) -> Request<client::Body> {
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = path.clone();
        let headers = request.headers_mut();
        headers.reserve(self.base_headers.len() + 3);
        for (name, value) in &self.base_headers {
            headers.append(name.clone(), value.clone());
        }
        match shape {
            Shape::SimpleWithOrigin => {
                headers.insert(ORIGIN, origin.clone());
            }
            Shape::SimpleWithoutOrigin => {}
            Shape::Preflight => {
                *request.method_mut() = Method::OPTIONS;
                let headers = request.headers_mut();
                headers.insert(ORIGIN, origin.clone());
                headers.insert(ACCESS_CONTROL_REQUEST_METHOD, self.preflight_method.clone());
                headers.insert(
                    ACCESS_CONTROL_REQUEST_HEADERS,
                    self.preflight_headers.clone(),
                );
            }
        }
        request
    }

    /// Picks the kind of the next request from one uniform draw, so the shares hold
    /// exactly in expectation: [0, P) preflight, [P, P+S) no Origin, rest simple.
    fn pick_shape(&self, draw: f64) -> Shape {
        if draw < self.preflight_share {
            Shape::Preflight
        } else if draw < self.preflight_share + self.no_origin_share {
            Shape::SimpleWithoutOrigin
        } else {
            Shape::SimpleWithOrigin
        }
    }
}

/// Non-empty, non-comment lines of a list file, with their 1-based line numbers.
fn list_lines(path: &Path, what: &'static str) -> Result<Vec<(usize, String)>, ToolError> {
    let text = std::fs::read_to_string(path).map_err(|source| ToolError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let lines: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim().to_string()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .collect();
    if lines.is_empty() {
        return Err(ToolError::EmptyFile {
            path: path.to_path_buf(),
            what,
        });
    }
    Ok(lines)
}

fn read_origins(path: &Path) -> Result<Vec<HeaderValue>, ToolError> {
    list_lines(path, "origin")?
        .into_iter()
        .map(|(line, origin)| {
            let invalid = |message: String| ToolError::InvalidLine {
                path: path.to_path_buf(),
                line,
                message,
            };
            // `null` is what browsers send from opaque origins (sandboxed frames, file:).
            if origin != "null" && !origin.contains("://") {
                return Err(invalid(format!(
                    "`{origin}` is not an origin (expected scheme://host[:port])"
                )));
            }
            HeaderValue::from_str(&origin)
                .map_err(|_| invalid(format!("`{origin}` is not a valid header value")))
        })
        .collect()
}

fn read_paths(path: &Path, target: &TargetUrl) -> Result<Vec<Uri>, ToolError> {
    list_lines(path, "path")?
        .into_iter()
        .map(|(line, entry)| {
            target
                .joined_path(&entry)
                .parse::<Uri>()
                .map_err(|err| ToolError::InvalidLine {
                    path: path.to_path_buf(),
                    line,
                    message: format!("`{entry}` is not a usable path: {err}"),
                })
        })
        .collect()
}

/// The three kinds of request the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    SimpleWithOrigin,
    SimpleWithoutOrigin,
    Preflight,
}

/// Hands out request slots: a global count for `--requests`, the deadline for
/// `--duration`, and with `--rate` each slot's scheduled start.
#[derive(Debug)]
struct Dispatcher {
    next_ticket: AtomicU64,
    request_limit: Option<u64>,
    started: Instant,
    deadline: Option<Instant>,
    rate: Option<f64>,
}

/// One request a worker may send; `scheduled` is its intended start in open loop.
struct Slot {
    scheduled: Option<Instant>,
}

impl Dispatcher {
    fn new(plan: &LoadPlan, started: Instant) -> Self {
        Dispatcher {
            next_ticket: AtomicU64::new(0),
            request_limit: plan.bounds.requests,
            started,
            deadline: plan.bounds.duration.map(|limit| started + limit),
            rate: plan.rate,
        }
    }

    /// The next slot, or `None` when the run is over.
    fn next(&self) -> Option<Slot> {
        if self.rate.is_none() && self.deadline.is_some_and(|end| Instant::now() >= end) {
            return None;
        }
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        if self.request_limit.is_some_and(|limit| ticket >= limit) {
            return None;
        }
        let scheduled = match self.rate {
            None => None,
            Some(rate) => {
                // Precision: f64 holds tickets exactly far beyond any run length.
                let at = self.started + Duration::from_secs_f64(ticket as f64 / rate);
                if self.deadline.is_some_and(|end| at >= end) {
                    return None;
                }
                Some(at)
            }
        };
        Some(Slot { scheduled })
    }
}

/// What workers share while running: the plan, the dispatcher and the live counters
/// the progress display reads.
struct Shared {
    plan: Arc<LoadPlan>,
    dispatcher: Dispatcher,
    completed: AtomicU64,
    errors: AtomicU64,
    leaks: AtomicU64,
}

async fn worker(index: usize, shared: Arc<Shared>, mut stats: WorkerStats) -> WorkerStats {
    let plan = &shared.plan;
    let mut rng = SplitMix64::new(index as u64);
    let mut connection: Option<InlineConnection> = None;
    let mut timer = RequestTimer::new(plan.timeout);

    while let Some(slot) = shared.dispatcher.next() {
        if let Some(scheduled) = slot.scheduled {
            let wake_at = scheduled.checked_sub(TIMER_TICK).unwrap_or(scheduled);
            if wake_at > Instant::now() {
                tokio::time::sleep_until(wake_at).await;
            }
        }

        let shape = plan.pick_shape(rng.next_f64());
        let origin = &plan.origins[rng.below(plan.origins.len())];
        let path = &plan.paths[rng.below(plan.paths.len())];
        stats.count_sent(shape);

        let outcome = timer
            .limit(async {
                let reusable = match connection.take() {
                    Some(mut open) => open.is_reusable().await.then_some(open),
                    None => None,
                };
                let mut open = match reusable {
                    Some(open) => open,
                    // Closed by the peer (keep-alive ended) or never opened: a fresh
                    // connection, not an error.
                    None => InlineConnection::open(plan.addr).await?,
                };
                let send_start = Instant::now();
                let request = plan.build_request(shape, origin, path);
                let head = open.exchange(request).await?;
                connection = Some(open);
                Ok::<_, RequestError>((send_start, head))
            })
            .await;

        match outcome {
            Ok((send_start, head)) => {
                // Open loop: a request sent late is measured from when it should
                // have started (coordinated omission); one sent up to a timer tick
                // early is measured from when it really started.
                let measured_from = slot.scheduled.map_or(send_start, |at| at.min(send_start));
                stats.record_latency(measured_from.elapsed());
                let leak = stats.record_response(shape, origin, path, &head);
                if leak {
                    shared.leaks.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(err) => {
                let reconnect_failed =
                    matches!(err, RequestError::Connect(_) | RequestError::Handshake(_));
                stats.record_error(&err);
                shared.errors.fetch_add(1, Ordering::Relaxed);
                // The connection's state is unknown after a failure; never reuse it.
                connection = None;
                if reconnect_failed {
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                }
            }
        }
        shared.completed.fetch_add(1, Ordering::Relaxed);
    }
    stats
}

/// Bounds each request of one worker by `limit`, re-arming a single timer only when it
/// fires instead of registering a timer per request: at ~100k requests per second the
/// per-request registration and removal is a visible share of the client's CPU.
struct RequestTimer {
    limit: Duration,
    /// Fires no later than the current request's due time; when it fires early (it
    /// was set for an earlier request) it is re-armed for the current one.
    alarm: Pin<Box<Sleep>>,
}

impl RequestTimer {
    fn new(limit: Duration) -> Self {
        RequestTimer {
            limit,
            alarm: Box::pin(tokio::time::sleep(limit)),
        }
    }

    async fn limit<T>(
        &mut self,
        work: impl Future<Output = Result<T, RequestError>>,
    ) -> Result<T, RequestError> {
        let due = Instant::now() + self.limit;
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                output = &mut work => return output,
                () = self.alarm.as_mut() => {
                    if Instant::now() >= due {
                        return Err(RequestError::Timeout);
                    }
                    self.alarm.as_mut().reset(due);
                }
            }
        }
    }
}

/// A small, fast, seedable generator (SplitMix64): the load mix needs uniform draws, not
/// cryptographic ones, and per-worker seeds make runs reproducible.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1): 53 random bits, so 1.0 is never drawn and a share of 1.0
    /// always wins.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform index below `bound` (bound > 0); the modulo bias is negligible for the
    /// list sizes used here.
    fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

/// The kinds of cross-origin leak the load test detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeakKind {
    /// `Access-Control-Allow-Origin` named an origin other than the request's: the
    /// cache served one origin's response to another.
    WrongOrigin,
    /// The ACAO named the request's origin but the response lacked `Vary: Origin`, so
    /// any cache downstream may serve it to other origins.
    MissingVaryOrigin,
    /// A request without `Origin` got an origin-specific ACAO: a response made for an
    /// origin was served from cache to someone else.
    AcaoWithoutOrigin,
}

impl LeakKind {
    fn describe(self) -> &'static str {
        match self {
            LeakKind::WrongOrigin => "ACAO names another origin",
            LeakKind::MissingVaryOrigin => "origin-specific ACAO without Vary: Origin",
            LeakKind::AcaoWithoutOrigin => "origin-specific ACAO on a request without Origin",
        }
    }
}

/// One observed leak, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakExample {
    pub kind: LeakKind,
    pub method: String,
    pub path: String,
    /// The `Origin` the request sent; `None` for requests without Origin.
    pub origin_sent: Option<String>,
    /// The `Access-Control-Allow-Origin` that came back.
    pub acao_received: String,
    pub vary: Option<String>,
    pub cache_status: Option<String>,
}

/// Per-worker counters, merged into the report at the end.
struct WorkerStats {
    latency: Histogram<u64>,
    sent: RequestMix,
    responses: u64,
    /// Indexed by status code; `http::StatusCode` is always below 1000.
    statuses: Vec<u64>,
    cache_statuses: Vec<(String, u64)>,
    without_cache_status: u64,
    leak_counts: BTreeMap<LeakKind, u64>,
    leak_examples: Vec<LeakExample>,
    error_kinds: BTreeMap<&'static str, u64>,
    error_examples: Vec<String>,
}

impl WorkerStats {
    fn new() -> Result<Self, ToolError> {
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
        })
    }

    fn count_sent(&mut self, shape: Shape) {
        match shape {
            Shape::SimpleWithOrigin => self.sent.simple_with_origin += 1,
            Shape::SimpleWithoutOrigin => self.sent.simple_without_origin += 1,
            Shape::Preflight => self.sent.preflight += 1,
        }
    }

    fn record_latency(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency.saturating_record(micros);
    }

    /// Counts one response and checks it for leaks; returns whether it leaked.
    fn record_response(
        &mut self,
        shape: Shape,
        origin: &HeaderValue,
        path: &Uri,
        head: &http::response::Parts,
    ) -> bool {
        self.responses += 1;
        if let Some(count) = self.statuses.get_mut(usize::from(head.status.as_u16())) {
            *count += 1;
        }
        match cors::cache_status_token_of(&head.headers) {
            Some(token) => self.count_cache_status(token),
            None => self.without_cache_status += 1,
        }

        let sent_origin = match shape {
            Shape::SimpleWithoutOrigin => None,
            Shape::SimpleWithOrigin | Shape::Preflight => Some(origin),
        };
        let acao = cors::classify_acao(&head.headers, sent_origin.map(HeaderValue::as_bytes));
        let leak = match (sent_origin, acao) {
            (_, AcaoMatch::Absent | AcaoMatch::Wildcard) => None,
            (None, _) => Some(LeakKind::AcaoWithoutOrigin),
            (Some(_), AcaoMatch::OtherOrigin) => Some(LeakKind::WrongOrigin),
            (Some(_), AcaoMatch::RequestOrigin) if !cors::varies_on(&head.headers, "origin") => {
                Some(LeakKind::MissingVaryOrigin)
            }
            (Some(_), AcaoMatch::RequestOrigin) => None,
        };
        let Some(kind) = leak else {
            return false;
        };
        let count = self.leak_counts.entry(kind).or_default();
        *count += 1;
        if *count <= EXAMPLES_PER_LEAK_KIND as u64 {
            self.leak_examples.push(LeakExample {
                kind,
                method: if shape == Shape::Preflight {
                    "OPTIONS"
                } else {
                    "GET"
                }
                .to_string(),
                path: path.to_string(),
                origin_sent: sent_origin
                    .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
                acao_received: cors::joined(&head.headers, ACCESS_CONTROL_ALLOW_ORIGIN)
                    .unwrap_or_default(),
                vary: cors::joined(&head.headers, VARY),
                cache_status: cors::cache_status(&head.headers).map(|(_, value)| value),
            });
        }
        true
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

    fn record_error(&mut self, err: &RequestError) {
        *self.error_kinds.entry(err.kind()).or_default() += 1;
        if self.error_examples.len() < MAX_ERROR_EXAMPLES {
            self.error_examples.push(err.to_string());
        }
    }

    fn merge(&mut self, other: WorkerStats) -> Result<(), ToolError> {
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
        for example in other.error_examples {
            if self.error_examples.len() < MAX_ERROR_EXAMPLES {
                self.error_examples.push(example);
            }
        }
        Ok(())
    }
}

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
    /// Count per error kind: connect, handshake, request, body, timeout.
    pub error_kinds: BTreeMap<String, u64>,
    pub error_examples: Vec<String>,
    /// No errors and no leaks.
    pub passed: bool,
}

impl LoadtestReport {
    fn from_totals(plan: &LoadPlan, totals: WorkerStats, elapsed: Duration) -> Self {
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
        }
    }

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

    /// The human-readable report.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let settings = &self.settings;
        let _ = writeln!(out, "cors-edge loadtest  {}", self.url);
        let mode = match settings.rate {
            Some(rate) => format!("open loop at {rate} req/s"),
            None => "closed loop".to_string(),
        };
        let _ = writeln!(
            out,
            "  {} connections, {} origins, {} paths, preflight share {}, no-Origin share {}, {mode}",
            settings.concurrency,
            settings.origins,
            settings.paths,
            settings.preflight_share,
            settings.no_origin_share,
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "requests   {} in {:.2}s = {:.0} req/s ({} responses, {} errors)",
            self.requests,
            self.elapsed_seconds,
            self.requests_per_second,
            self.responses,
            self.errors
        );
        let _ = writeln!(
            out,
            "sent       GET with Origin {}, GET without Origin {}, OPTIONS preflight {}",
            self.sent.simple_with_origin, self.sent.simple_without_origin, self.sent.preflight
        );
        match &self.latency_us {
            Some(latency) => {
                let _ = writeln!(
                    out,
                    "latency    p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (µs{})",
                    latency.p50,
                    latency.p90,
                    latency.p99,
                    latency.p999,
                    latency.max,
                    if settings.rate.is_some() {
                        ", from scheduled start"
                    } else {
                        ""
                    }
                );
            }
            None => {
                let _ = writeln!(out, "latency    no responses");
            }
        }
        let _ = writeln!(out, "status     {}", join_counts(&self.status));
        let cache = &self.cache;
        match cache.hit_ratio {
            Some(ratio) => {
                let _ = writeln!(
                    out,
                    "cache      hit ratio {:.1}% ({}){}",
                    ratio * 100.0,
                    join_counts(&cache.statuses),
                    if cache.without_status > 0 {
                        format!(", {} without a cache status", cache.without_status)
                    } else {
                        String::new()
                    }
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "cache      no response carried X-Cache (or another cache status)"
                );
            }
        }
        let leaks = &self.leaks;
        if leaks.total == 0 {
            let _ = writeln!(out, "leaks      none");
        } else {
            let _ = writeln!(
                out,
                "LEAKS      {} total: {} ACAO for another origin, {} without Vary: Origin, {} on requests without Origin",
                leaks.total, leaks.wrong_origin, leaks.missing_vary_origin, leaks.acao_without_origin
            );
            for example in &leaks.examples {
                let _ = writeln!(
                    out,
                    "  {}: {} {} from {} got ACAO {} (Vary: {}, cache: {})",
                    example.kind.describe(),
                    example.method,
                    example.path,
                    example.origin_sent.as_deref().unwrap_or("no Origin"),
                    example.acao_received,
                    example.vary.as_deref().unwrap_or("-"),
                    example.cache_status.as_deref().unwrap_or("-"),
                );
            }
        }
        if self.errors > 0 {
            let kinds: BTreeMap<String, u64> = self.error_kinds.clone();
            let _ = writeln!(out, "ERRORS     {}", join_counts(&kinds));
            for example in &self.error_examples {
                let _ = writeln!(out, "  {example}");
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "result     {}",
            match (leaks.total, self.errors) {
                (0, 0) => "PASS: no errors, no cross-origin leaks".to_string(),
                (0, errors) => format!("FAIL: {errors} request errors"),
                (leaked, 0) => format!("FAIL: {leaked} cross-origin leaks"),
                (leaked, errors) =>
                    format!("FAIL: {leaked} cross-origin leaks, {errors} request errors"),
            }
        );
        out
    }
}

fn join_counts(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "-".to_string();
    }
    counts
        .iter()
        .map(|(name, count)| format!("{name}: {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How progress is shown while the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProgressMode {
    /// `--json`: stdout carries only the report, and stderr stays quiet for scripts.
    Silent,
    /// A live progress bar on an interactive terminal.
    Bar,
    /// One line per second, readable in CI logs where a bar would be garbage.
    Lines,
}

fn progress_mode(json: bool) -> ProgressMode {
    if json {
        ProgressMode::Silent
    } else if std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Lines
    }
}

/// The progress display task; stopped (and its bar cleared) when the run ends.
struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn start(mode: ProgressMode, shared: &Arc<Shared>, started: Instant) -> Self {
        match mode {
            ProgressMode::Silent => Progress {
                task: None,
                bar: None,
            },
            ProgressMode::Bar => {
                let bounds = shared.plan.bounds;
                // The bar tracks whichever bound is known up front: the request count
                // if given, else the clock.
                let (length, by_requests) = match (bounds.requests, bounds.duration) {
                    (Some(requests), _) => (requests, true),
                    (None, Some(duration)) => (
                        u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                        false,
                    ),
                    (None, None) => (0, true),
                };
                let bar = indicatif::ProgressBar::new(length);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}",
                ) {
                    bar.set_style(style);
                }
                let shown = bar.clone();
                let shared = Arc::clone(shared);
                let task = tokio::spawn(async move {
                    let mut ticker = tokio::time::interval(Duration::from_millis(200));
                    loop {
                        ticker.tick().await;
                        let snapshot = Snapshot::take(&shared, started);
                        let position = if by_requests {
                            snapshot.completed
                        } else {
                            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
                        };
                        shown.set_position(position.min(length));
                        shown.set_message(snapshot.summary());
                    }
                });
                Progress {
                    task: Some(task),
                    bar: Some(bar),
                }
            }
            ProgressMode::Lines => {
                let shared = Arc::clone(shared);
                let task = tokio::spawn(async move {
                    let mut ticker = tokio::time::interval(Duration::from_secs(1));
                    // The first tick fires at once; a line at 0s says nothing.
                    ticker.tick().await;
                    loop {
                        ticker.tick().await;
                        let snapshot = Snapshot::take(&shared, started);
                        eprintln!(
                            "loadtest: {:.0}s {} requests, {}",
                            started.elapsed().as_secs_f64(),
                            snapshot.completed,
                            snapshot.summary()
                        );
                    }
                });
                Progress {
                    task: Some(task),
                    bar: None,
                }
            }
        }
    }

    fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Live counters read for the progress display.
struct Snapshot {
    completed: u64,
    errors: u64,
    leaks: u64,
    requests_per_second: f64,
}

impl Snapshot {
    fn take(shared: &Shared, started: Instant) -> Self {
        let completed = shared.completed.load(Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        Snapshot {
            completed,
            errors: shared.errors.load(Ordering::Relaxed),
            leaks: shared.leaks.load(Ordering::Relaxed),
            requests_per_second: if elapsed > 0.0 {
                completed as f64 / elapsed
            } else {
                0.0
            },
        }
    }

    fn summary(&self) -> String {
        format!(
            "{:.0} req/s, {} errors, {} leaks",
            self.requests_per_second, self.errors, self.leaks
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_split_one_uniform_draw() {
        let mut args = LoadtestArgs::new("http://127.0.0.1:1/");
        args.preflight_share = 0.25;
        args.no_origin_share = 0.5;
        let plan = LoadPlan {
            url: args.url.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            origins: vec![HeaderValue::from_static("https://a.example")],
            paths: vec![Uri::from_static("/")],
            base_headers: HeaderMap::new(),
            preflight_method: HeaderValue::from_static(PREFLIGHT_METHOD),
            preflight_headers: HeaderValue::from_static(PREFLIGHT_HEADERS),
            preflight_share: 0.25,
            no_origin_share: 0.5,
            concurrency: 1,
            bounds: Bounds {
                duration: None,
                requests: Some(1),
            },
            rate: None,
            timeout: Duration::from_secs(1),
        };
        assert_eq!(plan.pick_shape(0.0), Shape::Preflight);
        assert_eq!(plan.pick_shape(0.2499), Shape::Preflight);
        assert_eq!(plan.pick_shape(0.25), Shape::SimpleWithoutOrigin);
        assert_eq!(plan.pick_shape(0.7499), Shape::SimpleWithoutOrigin);
        assert_eq!(plan.pick_shape(0.75), Shape::SimpleWithOrigin);
    }

    #[test]
    fn uniform_draws_stay_below_one() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..10_000 {
            let draw = rng.next_f64();
            assert!((0.0..1.0).contains(&draw));
            assert!(rng.below(3) < 3);
        }
    }

    #[test]
    fn bounds_default_to_ten_seconds_and_refuse_unbounded_runs() {
        let args = LoadtestArgs::new("http://127.0.0.1:1/");
        let bounds = Bounds::from_args(&args).expect("valid");
        assert_eq!(bounds.duration, Some(DEFAULT_DURATION));
        assert_eq!(bounds.requests, None);

        let mut only_requests = args.clone();
        only_requests.requests = Some(100);
        let bounds = Bounds::from_args(&only_requests).expect("valid");
        assert_eq!(bounds.duration, None);
        assert_eq!(bounds.requests, Some(100));

        let mut unbounded = args.clone();
        unbounded.duration = Some(Duration::ZERO);
        let err = Bounds::from_args(&unbounded).expect_err("unbounded");
        assert_eq!(err.exit_code(), exit_code::USAGE);

        let mut too_much = args;
        too_much.preflight_share = 0.7;
        too_much.no_origin_share = 0.5;
        assert_eq!(
            Bounds::from_args(&too_much)
                .expect_err("shares")
                .exit_code(),
            exit_code::USAGE
        );
    }
}
