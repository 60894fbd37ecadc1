//! `cors-edge probe`: the CDN-and-CORS debugging checklist, automated.
//!
//! It works against any plain-`http://` URL and only looks at what comes back, so it
//! can judge cors-edge, another cache, or an API with no cache at all.
//!
//! # What it sends, in order
//!
//! 1. For each `--origin`, twice (the second try shows what a cache does with the
//!    first): a simple `GET` with `Origin`, then a preflight `OPTIONS` with `Origin`,
//!    `Access-Control-Request-Method` (`--method`) and, when `--header` is given,
//!    `Access-Control-Request-Headers`.
//! 2. A `GET` without `Origin`, twice: after the origins warmed the cache, this is the
//!    request that receives a wrongly shared origin-specific answer.
//! 3. Two preflights from the first origin that differ from its first one only in the
//!    requested method, or only in the requested headers, to see whether the answer
//!    depends on them.
//! 4. The classic: on a fresh cache key (a unique `cors-probe` query parameter unless
//!    `--no-cache-buster`), the first origin warms a `GET` and a preflight, then every
//!    other origin asks for the same. A cache that ignores `Vary: Origin` hands the
//!    first origin's `Access-Control-Allow-Origin` to the others.
//!
//! # How the checks decide
//!
//! Each check has a stable id (see [`check_id`]) and a verdict: FAIL is what breaks
//! browsers or leaks across origins, WARN what is risky or inconclusive, INFO is
//! observation. The preflight `Vary` check is deliberately a WARN and only fires on
//! evidence: when changing the requested method (or headers) changed the answer, the
//! answer depends on it and `Vary` must list it; when the answer stayed the same it may
//! be static (no `Vary` needed) or a cache may have collapsed the two, which only a
//! probe of the API itself can tell apart.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, AGE, HOST, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use http_body_util::Empty;
use serde::{Deserialize, Serialize};

use crate::client;
use crate::cors::{self, AcaoMatch};
use crate::parse::{parse_duration, parse_header_line};
use crate::target::TargetUrl;
use crate::{exit_code, ToolError};

/// Arguments of `cors-edge probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// URL to probe (plain http://).
    #[arg(value_name = "URL")]
    pub url: String,

    /// Origin to send, as scheme://host or scheme://host:port (repeatable; give two or more to
    /// test whether one origin receives another's cached answer).
    #[arg(long = "origin", value_name = "ORIGIN", required = true)]
    pub origins: Vec<String>,

    /// Method the preflights ask for (Access-Control-Request-Method).
    #[arg(long, value_name = "METHOD", default_value = "PUT")]
    pub method: String,

    /// Header the preflights ask for (Access-Control-Request-Headers); repeatable or
    /// comma-separated, e.g. --header authorization --header content-type.
    #[arg(long = "header", value_name = "NAME")]
    pub request_headers: Vec<String>,

    /// Check for credentialed requests (cookies, HTTP auth): ACAO must then name the
    /// origin, never `*`, and Access-Control-Allow-Credentials must be true.
    #[arg(long)]
    pub credentials: bool,

    /// Extra header sent with every request, 'Name: value' (repeatable). A Host header
    /// given here replaces the URL's host.
    #[arg(long = "send-header", value_name = "NAME: VALUE", value_parser = parse_header_line)]
    pub send_headers: Vec<(HeaderName, HeaderValue)>,

    /// Give up on a request after this long.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Run the warm-then-ask test on the URL as given instead of on a fresh cache key
    /// (a unique `cors-probe` query parameter), for servers that reject unknown
    /// parameters.
    #[arg(long)]
    pub no_cache_buster: bool,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl ProbeArgs {
    /// Arguments for `url` and `origins` with every option at its command-line default.
    pub fn new(url: impl Into<String>, origins: &[&str]) -> Self {
        ProbeArgs {
            url: url.into(),
            origins: origins.iter().map(|origin| origin.to_string()).collect(),
            method: "PUT".to_string(),
            request_headers: Vec::new(),
            credentials: false,
            send_headers: Vec::new(),
            timeout: Duration::from_secs(10),
            no_cache_buster: false,
            json: false,
        }
    }
}

/// The stable ids of the checks, for scripts that read `--json` and for docs.
pub mod check_id {
    /// Every request got a response.
    pub const REQUESTS_COMPLETED: &str = "requests-completed";
    /// INFO: what ACAO each origin got back (reflected, `*`, none).
    pub const ACAO_RETURNED: &str = "acao-returned";
    /// ACAO names the requesting origin or `*`, never another origin.
    pub const ACAO_MATCHES_ORIGIN: &str = "acao-matches-origin";
    /// A later origin did not receive an earlier origin's (cached) ACAO.
    pub const CROSS_ORIGIN_ACAO: &str = "cross-origin-acao";
    /// A request without Origin did not receive an origin-specific ACAO.
    pub const ACAO_WITHOUT_ORIGIN: &str = "acao-without-origin";
    /// `Vary: Origin` is present wherever the ACAO depends on the origin.
    pub const VARY_ORIGIN: &str = "vary-origin";
    /// Preflight answers that depend on the requested method/headers vary on them.
    pub const PREFLIGHT_VARY: &str = "preflight-vary";
    /// Never `ACAO: *` together with `Access-Control-Allow-Credentials: true`.
    pub const WILDCARD_WITH_CREDENTIALS: &str = "wildcard-with-credentials";
    /// With `--credentials`: ACAO names the origin and credentials are allowed.
    pub const CREDENTIALS: &str = "credentials";
    /// Granted preflights allow the requested method.
    pub const ALLOW_METHODS: &str = "allow-methods";
    /// Granted preflights allow every requested header.
    pub const ALLOW_HEADERS: &str = "allow-headers";
    /// Non-safelisted response headers are exposed to scripts.
    pub const EXPOSE_HEADERS: &str = "expose-headers";
    /// INFO: cache status and Age of each try.
    pub const CACHE_STATUS: &str = "cache-status";
    /// The second try of each request carried the same CORS headers as the first.
    pub const CONSISTENT_ACROSS_TRIES: &str = "consistent-across-tries";
}

/// A check's verdict, or the whole probe's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Info,
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Info => "INFO",
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One check of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable id from [`check_id`].
    pub id: String,
    pub verdict: Verdict,
    /// One line saying what was seen and why it matters.
    pub message: String,
}

/// Why a request was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestKind {
    /// GET with Origin.
    Simple,
    /// OPTIONS with Origin, the probed method and headers.
    Preflight,
    /// GET without Origin.
    NoOrigin,
    /// Preflight asking for another method than `--method`.
    PreflightOtherMethod,
    /// Preflight asking for other headers than `--header`.
    PreflightOtherHeaders,
    /// The first origin's GET on a fresh cache key.
    WarmSimple,
    /// Another origin's GET on that key after the warm-up.
    AskSimple,
    /// The first origin's preflight on a fresh cache key.
    WarmPreflight,
    /// Another origin's preflight on that key after the warm-up.
    AskPreflight,
}

impl RequestKind {
    fn label(self) -> &'static str {
        match self {
            RequestKind::Simple => "GET",
            RequestKind::Preflight => "preflight",
            RequestKind::NoOrigin => "GET without Origin",
            RequestKind::PreflightOtherMethod => "preflight, other method",
            RequestKind::PreflightOtherHeaders => "preflight, other headers",
            RequestKind::WarmSimple => "GET warm-up",
            RequestKind::AskSimple => "GET after warm-up",
            RequestKind::WarmPreflight => "preflight warm-up",
            RequestKind::AskPreflight => "preflight after warm-up",
        }
    }

    fn is_preflight(self) -> bool {
        matches!(
            self,
            RequestKind::Preflight
                | RequestKind::PreflightOtherMethod
                | RequestKind::PreflightOtherHeaders
                | RequestKind::WarmPreflight
                | RequestKind::AskPreflight
        )
    }
}

/// The response headers the checklist looks at, as received (several lines of one
/// header joined with `, `).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenHeaders {
    pub access_control_allow_origin: Option<String>,
    pub access_control_allow_credentials: Option<String>,
    pub access_control_allow_methods: Option<String>,
    pub access_control_allow_headers: Option<String>,
    pub access_control_expose_headers: Option<String>,
    pub access_control_max_age: Option<String>,
    pub vary: Option<String>,
    /// `X-Cache: HIT`-style: the first of X-Cache, CF-Cache-Status, X-Cache-Status.
    pub cache_status: Option<String>,
    pub age: Option<String>,
}

/// One request and what came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// 1-based position in the order sent.
    pub step: usize,
    pub kind: RequestKind,
    /// 1 or 2 for requests sent twice; 1 otherwise.
    pub try_number: u8,
    pub method: String,
    pub path: String,
    pub origin: Option<String>,
    pub request_method: Option<String>,
    pub request_headers: Option<String>,
    /// `None` when the request failed; see `error`.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub headers: SeenHeaders,
}

/// The result of a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub url: String,
    pub origins: Vec<String>,
    pub method: String,
    pub request_headers: Vec<String>,
    pub credentials: bool,
    pub exchanges: Vec<Exchange>,
    pub checks: Vec<Check>,
    /// FAIL if any check failed, else WARN if any warned, else PASS.
    pub overall: Verdict,
    pub failed: usize,
    pub warnings: usize,
}

impl ProbeReport {
    /// [`exit_code::FAILED`] when any check failed, [`exit_code::OK`] otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.overall == Verdict::Fail {
            exit_code::FAILED
        } else {
            exit_code::OK
        }
    }

    /// The check with this id, if it was run.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|check| check.id == id)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Plain strings and numbers cannot fail to serialize; should it ever happen,
        // an error object is still valid JSON for the reader.
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|err| format!("{{\"error\": {:?}}}", err.to_string()))
    }

    /// The human-readable report: the requests as a table, the checks, the verdict.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "cors-edge probe  {}", self.url);
        let asked = if self.request_headers.is_empty() {
            format!("preflights ask for {}", self.method)
        } else {
            format!(
                "preflights ask for {} with {}",
                self.method,
                self.request_headers.join(", ")
            )
        };
        let _ = writeln!(
            out,
            "  origins {}; {asked}{}",
            self.origins.join(", "),
            if self.credentials {
                "; credentialed"
            } else {
                ""
            }
        );
        let _ = writeln!(out);

        let header = [
            "#", "request", "origin", "method", "status", "ACAO", "Vary", "cache", "Age",
        ]
        .map(str::to_string);
        let rows: Vec<[String; 9]> = self
            .exchanges
            .iter()
            .map(|exchange| {
                let seen = &exchange.headers;
                let request = if exchange.try_number > 1 {
                    format!("{} (try {})", exchange.kind.label(), exchange.try_number)
                } else {
                    exchange.kind.label().to_string()
                };
                [
                    exchange.step.to_string(),
                    request,
                    exchange.origin.clone().unwrap_or_else(|| "-".into()),
                    exchange.method.clone(),
                    exchange
                        .status
                        .map_or_else(|| "ERROR".into(), |status| status.to_string()),
                    dash(&seen.access_control_allow_origin),
                    abbreviate_vary(&dash(&seen.vary)),
                    seen.cache_status.as_deref().map_or_else(
                        || "-".into(),
                        |status| {
                            status
                                .split_once(": ")
                                .map_or(status, |(_, v)| v)
                                .to_string()
                        },
                    ),
                    dash(&seen.age),
                ]
            })
            .collect();
        let mut widths = header.clone().map(|cell| cell.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
        }
        for exchange in &self.exchanges {
            if let Some(error) = &exchange.error {
                let _ = writeln!(out, "  request {} failed: {error}", exchange.step);
            }
        }
        if self.exchanges.iter().any(|exchange| {
            exchange
                .headers
                .vary
                .as_deref()
                .is_some_and(|vary| vary.to_ascii_lowercase().contains("access-control-request"))
        }) {
            let _ = writeln!(
                out,
                "  (ACR-Method/ACR-Headers: Access-Control-Request-Method/-Headers)"
            );
        }
        let _ = writeln!(out);

        let _ = writeln!(out, "checks");
        let id_width = self
            .checks
            .iter()
            .map(|check| check.id.len())
            .max()
            .unwrap_or(0);
        for check in &self.checks {
            let _ = writeln!(
                out,
                "  {}  {:<id_width$}  {}",
                check.verdict.label(),
                check.id,
                check.message
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "overall: {} ({} failed, {} warnings, {} checks)",
            self.overall.label(),
            self.failed,
            self.warnings,
            self.checks.len()
        );
        out
    }
}

fn dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".to_string())
}

/// Keeps the table narrow: the two preflight request headers are long and common.
fn abbreviate_vary(vary: &str) -> String {
    vary.replace("Access-Control-Request-Method", "ACR-Method")
        .replace("access-control-request-method", "ACR-Method")
        .replace("Access-Control-Request-Headers", "ACR-Headers")
        .replace("access-control-request-headers", "ACR-Headers")
}

/// Runs the probe, prints the report on stdout (text, or JSON with `--json`) and
/// returns the exit code: [`exit_code::FAILED`] when any check failed.
pub async fn run(args: ProbeArgs) -> Result<i32, ToolError> {
    let report = execute(&args).await?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.render_text());
    }
    Ok(report.exit_code())
}

/// Runs the probe and returns its report without printing anything.
pub async fn execute(args: &ProbeArgs) -> Result<ProbeReport, ToolError> {
    let plan = ProbePlan::from_args(args)?;
    let addr = plan.target.resolve().await?;
    let observed = send_all(&plan, addr).await;
    let checks = Checklist {
        plan: &plan,
        observed: &observed,
    }
    .run();
    let failed = checks
        .iter()
        .filter(|check| check.verdict == Verdict::Fail)
        .count();
    let warnings = checks
        .iter()
        .filter(|check| check.verdict == Verdict::Warn)
        .count();
    let overall = if failed > 0 {
        Verdict::Fail
    } else if warnings > 0 {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    Ok(ProbeReport {
        url: args.url.clone(),
        origins: plan.origins.clone(),
        method: plan.method.clone(),
        request_headers: plan.request_headers.clone(),
        credentials: plan.credentials,
        exchanges: observed.into_iter().map(|seen| seen.exchange).collect(),
        checks,
        overall,
        failed,
        warnings,
    })
}

/// The validated arguments.
struct ProbePlan {
    target: TargetUrl,
    origins: Vec<String>,
    /// Normalized: the standard methods upper-cased, as browsers send them.
    method: String,
    /// Lower-cased, de-duplicated, in the order given.
    request_headers: Vec<String>,
    credentials: bool,
    base_headers: HeaderMap,
    timeout: Duration,
    cache_buster: bool,
}

impl ProbePlan {
    fn from_args(args: &ProbeArgs) -> Result<Self, ToolError> {
        let usage = |message: String| ToolError::Usage(message);
        let target = TargetUrl::parse(&args.url)?;
        if args.origins.is_empty() {
            return Err(usage("give at least one --origin".into()));
        }
        let mut origins = Vec::new();
        for origin in &args.origins {
            let origin = origin.trim();
            if origin != "null" && !origin.contains("://") {
                return Err(usage(format!(
                    "--origin `{origin}` is not an origin (expected scheme://host[:port])"
                )));
            }
            if HeaderValue::from_str(origin).is_err() {
                return Err(usage(format!(
                    "--origin `{origin}` is not a valid header value"
                )));
            }
            if origins.iter().any(|seen| seen == origin) {
                return Err(usage(format!("--origin `{origin}` is given twice")));
            }
            origins.push(origin.to_string());
        }

        let method = normalize_method(&args.method);
        if Method::from_bytes(method.as_bytes()).is_err() {
            return Err(usage(format!(
                "--method `{}` is not an HTTP method",
                args.method
            )));
        }
        let mut request_headers: Vec<String> = Vec::new();
        for name in args.request_headers.iter().flat_map(|list| list.split(',')) {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(usage(format!("--header `{name}` is not a header name")));
            }
            if !request_headers.contains(&name) {
                request_headers.push(name);
            }
        }
        if args.timeout.is_zero() {
            return Err(usage("--timeout must be above 0".into()));
        }

        if let Some((name, _)) = args.send_headers.iter().find(|(name, _)| {
            name == ORIGIN
                || name == ACCESS_CONTROL_REQUEST_METHOD
                || name == ACCESS_CONTROL_REQUEST_HEADERS
        }) {
            return Err(usage(format!(
                "--send-header {name}: the probe sets this header itself (use --origin, --method, --header)"
            )));
        }
        let mut base_headers = HeaderMap::new();
        base_headers.insert(HOST, target.host_header.clone());
        for (name, value) in &args.send_headers {
            if name == HOST {
                base_headers.insert(HOST, value.clone());
            } else {
                base_headers.append(name.clone(), value.clone());
            }
        }
        Ok(ProbePlan {
            target,
            origins,
            method,
            request_headers,
            credentials: args.credentials,
            base_headers,
            timeout: args.timeout,
            cache_buster: !args.no_cache_buster,
        })
    }

    /// A method to ask for that differs from `--method`.
    fn other_method(&self) -> &'static str {
        if self.method == "DELETE" {
            "PATCH"
        } else {
            "DELETE"
        }
    }

    /// Headers to ask for that differ from `--header`: one more, unknown to the API.
    fn other_headers(&self) -> Vec<String> {
        let mut headers = self.request_headers.clone();
        headers.push("x-cors-probe".to_string());
        headers
    }

    /// The path for the warm-then-ask test: a key no cache has seen yet.
    fn fresh_path(&self) -> String {
        let base = self.target.path_and_query();
        if !self.cache_buster {
            return base;
        }
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let separator = if base.contains('?') { '&' } else { '?' };
        format!(
            "{base}{separator}cors-probe={nonce:x}{:x}",
            std::process::id()
        )
    }
}

/// Browsers upper-case these six methods and send any other one as written.
fn normalize_method(method: &str) -> String {
    let upper = method.trim().to_ascii_uppercase();
    if ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"].contains(&upper.as_str()) {
        upper
    } else {
        method.trim().to_string()
    }
}

/// One exchange plus the raw response headers the checks read.
struct Observed {
    exchange: Exchange,
    headers: HeaderMap,
}

impl Observed {
    fn acao(&self) -> AcaoMatch {
        cors::classify_acao(
            &self.headers,
            self.exchange.origin.as_deref().map(str::as_bytes),
        )
    }

    fn answered(&self) -> bool {
        self.exchange.status.is_some()
    }

    fn is_success(&self) -> bool {
        self.exchange
            .status
            .is_some_and(|status| (200..300).contains(&status))
    }

    /// "GET from https://a.example (try 2)": how messages name a request.
    fn describe(&self) -> String {
        let mut text = format!("#{} {}", self.exchange.step, self.exchange.kind.label());
        if let Some(origin) = &self.exchange.origin {
            let _ = write!(text, " from {origin}");
        }
        if self.exchange.try_number > 1 {
            let _ = write!(text, " (try {})", self.exchange.try_number);
        }
        if let Some(status) = &self.exchange.headers.cache_status {
            let _ = write!(text, " [{status}]");
        }
        text
    }
}

/// What one request should look like.
struct Planned {
    kind: RequestKind,
    try_number: u8,
    path: String,
    origin: Option<String>,
    /// For preflights: the method and headers asked for.
    preflight: Option<(String, Vec<String>)>,
}

fn planned_requests(plan: &ProbePlan) -> Vec<Planned> {
    let path = plan.target.path_and_query();
    let preflight = Some((plan.method.clone(), plan.request_headers.clone()));
    let mut requests = Vec::new();
    for origin in &plan.origins {
        for (kind, preflight) in [
            (RequestKind::Simple, None),
            (RequestKind::Preflight, preflight.clone()),
        ] {
            for try_number in 1..=2 {
                requests.push(Planned {
                    kind,
                    try_number,
                    path: path.clone(),
                    origin: Some(origin.clone()),
                    preflight: preflight.clone(),
                });
            }
        }
    }
    for try_number in 1..=2 {
        requests.push(Planned {
            kind: RequestKind::NoOrigin,
            try_number,
            path: path.clone(),
            origin: None,
            preflight: None,
        });
    }
    let first = plan.origins.first().cloned();
    requests.push(Planned {
        kind: RequestKind::PreflightOtherMethod,
        try_number: 1,
        path: path.clone(),
        origin: first.clone(),
        preflight: Some((
            plan.other_method().to_string(),
            plan.request_headers.clone(),
        )),
    });
    requests.push(Planned {
        kind: RequestKind::PreflightOtherHeaders,
        try_number: 1,
        path: path.clone(),
        origin: first,
        preflight: Some((plan.method.clone(), plan.other_headers())),
    });
    if plan.origins.len() >= 2 {
        let fresh = plan.fresh_path();
        for (warm, ask, preflight) in [
            (RequestKind::WarmSimple, RequestKind::AskSimple, None),
            (
                RequestKind::WarmPreflight,
                RequestKind::AskPreflight,
                preflight.clone(),
            ),
        ] {
            for (index, origin) in plan.origins.iter().enumerate() {
                requests.push(Planned {
                    kind: if index == 0 { warm } else { ask },
                    try_number: 1,
                    path: fresh.clone(),
                    origin: Some(origin.clone()),
                    preflight: preflight.clone(),
                });
            }
        }
    }
    requests
}

/// Sends every planned request in order, each on a fresh connection so a connection's
/// state can never influence the next answer; failures are recorded, not fatal.
async fn send_all(plan: &ProbePlan, addr: SocketAddr) -> Vec<Observed> {
    let mut observed = Vec::new();
    for (index, planned) in planned_requests(plan).into_iter().enumerate() {
        observed.push(send_one(plan, addr, index + 1, planned).await);
    }
    observed
}

async fn send_one(plan: &ProbePlan, addr: SocketAddr, step: usize, planned: Planned) -> Observed {
    let method = if planned.preflight.is_some() {
        Method::OPTIONS
    } else {
        Method::GET
    };
    let mut exchange = Exchange {
        step,
        kind: planned.kind,
        try_number: planned.try_number,
        method: method.to_string(),
        path: planned.path.clone(),
        origin: planned.origin.clone(),
        request_method: planned.preflight.as_ref().map(|(method, _)| method.clone()),
        request_headers: planned
            .preflight
            .as_ref()
            .filter(|(_, headers)| !headers.is_empty())
            .map(|(_, headers)| headers.join(",")),
        status: None,
        error: None,
        headers: SeenHeaders::default(),
    };

    let request = match build_request(plan, &method, &exchange) {
        Ok(request) => request,
        Err(message) => {
            exchange.error = Some(message);
            return Observed {
                exchange,
                headers: HeaderMap::new(),
            };
        }
    };
    let outcome = tokio::time::timeout(plan.timeout, async {
        let mut sender = client::connect(addr).await?;
        client::exchange(&mut sender, request).await
    })
    .await
    .unwrap_or(Err(client::RequestError::Timeout));

    match outcome {
        Ok(head) => {
            exchange.status = Some(head.status.as_u16());
            exchange.headers = seen_headers(&head.headers);
            Observed {
                exchange,
                headers: head.headers,
            }
        }
        Err(err) => {
            exchange.error = Some(err.to_string());
            Observed {
                exchange,
                headers: HeaderMap::new(),
            }
        }
    }
}

fn build_request(
    plan: &ProbePlan,
    method: &Method,
    exchange: &Exchange,
) -> Result<Request<client::Body>, String> {
    let mut request = Request::new(Empty::new());
    *request.method_mut() = method.clone();
    *request.uri_mut() = exchange
        .path
        .parse()
        .map_err(|err| format!("path `{}`: {err}", exchange.path))?;
    let headers = request.headers_mut();
    for (name, value) in &plan.base_headers {
        headers.append(name.clone(), value.clone());
    }
    let value = |text: &str| {
        HeaderValue::from_str(text).map_err(|_| format!("`{text}` is not a valid header value"))
    };
    if let Some(origin) = &exchange.origin {
        headers.insert(ORIGIN, value(origin)?);
    }
    if let Some(requested) = &exchange.request_method {
        headers.insert(ACCESS_CONTROL_REQUEST_METHOD, value(requested)?);
    }
    if let Some(requested) = &exchange.request_headers {
        headers.insert(ACCESS_CONTROL_REQUEST_HEADERS, value(requested)?);
    }
    Ok(request)
}

fn seen_headers(headers: &HeaderMap) -> SeenHeaders {
    SeenHeaders {
        access_control_allow_origin: cors::joined(headers, ACCESS_CONTROL_ALLOW_ORIGIN),
        access_control_allow_credentials: cors::joined(headers, ACCESS_CONTROL_ALLOW_CREDENTIALS),
        access_control_allow_methods: cors::joined(headers, ACCESS_CONTROL_ALLOW_METHODS),
        access_control_allow_headers: cors::joined(headers, ACCESS_CONTROL_ALLOW_HEADERS),
        access_control_expose_headers: cors::joined(headers, ACCESS_CONTROL_EXPOSE_HEADERS),
        access_control_max_age: cors::joined(headers, ACCESS_CONTROL_MAX_AGE),
        vary: cors::joined(headers, VARY),
        cache_status: cors::cache_status(headers)
            .map(|(name, value)| format!("{}: {value}", display_name(name))),
        age: cors::joined(headers, AGE),
    }
}

fn display_name(name: &str) -> &str {
    match name {
        "x-cache" => "X-Cache",
        "cf-cache-status" => "CF-Cache-Status",
        "x-cache-status" => "X-Cache-Status",
        other => other,
    }
}

/// Response headers a script may read without `Access-Control-Expose-Headers`
/// (the Fetch standard's CORS-safelisted response header names).
const SAFELISTED_RESPONSE_HEADERS: [&str; 7] = [
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
];

/// Response headers that are about transport, caching infrastructure or security
/// policy: scripts have no use for them, so not exposing them is not worth a warning.
const INFRASTRUCTURE_HEADERS: [&str; 28] = [
    "accept-ranges",
    "age",
    "alt-svc",
    "cf-cache-status",
    "cf-ray",
    "connection",
    "content-encoding",
    "content-security-policy",
    "cross-origin-embedder-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "date",
    "keep-alive",
    "nel",
    "permissions-policy",
    "referrer-policy",
    "report-to",
    "server",
    "set-cookie",
    "strict-transport-security",
    "timing-allow-origin",
    "transfer-encoding",
    "vary",
    "via",
    "x-cache",
    "x-cache-status",
    "x-content-type-options",
    "x-frame-options",
];

/// Headers an application likely wants scripts to read but that need exposing.
fn unexposed_candidates(headers: &HeaderMap) -> BTreeSet<String> {
    headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| {
            !SAFELISTED_RESPONSE_HEADERS.contains(name)
                && !INFRASTRUCTURE_HEADERS.contains(name)
                && !name.starts_with("access-control-")
                && !name.starts_with("x-powered-by")
        })
        .map(str::to_string)
        .collect()
}

/// Lower-cased items of a comma-separated list header.
fn list_items(headers: &HeaderMap, name: &HeaderName) -> BTreeSet<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(','))
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect()
}

/// Items of `Access-Control-Allow-Methods` as sent: methods match case-sensitively.
fn allowed_methods(headers: &HeaderMap) -> BTreeSet<String> {
    headers
        .get_all(ACCESS_CONTROL_ALLOW_METHODS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(','))
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// Runs the checks over the observed exchanges.
struct Checklist<'a> {
    plan: &'a ProbePlan,
    observed: &'a [Observed],
}

fn check(id: &str, verdict: Verdict, message: impl Into<String>) -> Check {
    Check {
        id: id.to_string(),
        verdict,
        message: message.into(),
    }
}

/// "a, b and 3 more": keeps one-line messages one line.
fn summarize(items: &[String]) -> String {
    const SHOWN: usize = 2;
    let mut text = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > SHOWN {
        let _ = write!(text, "; and {} more", items.len() - SHOWN);
    }
    text
}

impl Checklist<'_> {
    fn run(&self) -> Vec<Check> {
        let answered = self.observed.iter().filter(|seen| seen.answered()).count();
        let requests = self.requests_completed();
        if answered == 0 {
            // Nothing came back: every other check would judge an empty set.
            return vec![requests];
        }
        let mut checks = vec![
            requests,
            self.acao_returned(),
            self.acao_matches_origin(),
            self.cross_origin_acao(),
            self.acao_without_origin(),
            self.vary_origin(),
            self.preflight_vary(),
            self.wildcard_with_credentials(),
        ];
        if self.plan.credentials {
            checks.push(self.credentials());
        }
        checks.extend([
            self.allow_methods(),
            self.allow_headers(),
            self.expose_headers(),
            self.cache_status(),
            self.consistent_across_tries(),
        ]);
        checks
    }

    fn answered(&self) -> impl Iterator<Item = &Observed> {
        self.observed.iter().filter(|seen| seen.answered())
    }

    fn of_kind(&self, kind: RequestKind) -> impl Iterator<Item = &Observed> {
        self.answered()
            .filter(move |seen| seen.exchange.kind == kind)
    }

    fn requests_completed(&self) -> Check {
        let failed: Vec<String> = self
            .observed
            .iter()
            .filter_map(|seen| {
                seen.exchange
                    .error
                    .as_ref()
                    .map(|error| format!("{}: {error}", seen.describe()))
            })
            .collect();
        if failed.is_empty() {
            check(
                check_id::REQUESTS_COMPLETED,
                Verdict::Pass,
                format!("all {} requests were answered", self.observed.len()),
            )
        } else {
            check(
                check_id::REQUESTS_COMPLETED,
                Verdict::Fail,
                format!(
                    "{} of {} requests failed: {}",
                    failed.len(),
                    self.observed.len(),
                    summarize(&failed)
                ),
            )
        }
    }

    fn acao_returned(&self) -> Check {
        let describe = |seen: Option<&Observed>| -> String {
            let Some(seen) = seen else {
                return "no answer".to_string();
            };
            match seen.acao() {
                AcaoMatch::Absent => "none".to_string(),
                AcaoMatch::Wildcard => "*".to_string(),
                AcaoMatch::RequestOrigin => "reflected".to_string(),
                AcaoMatch::OtherOrigin => format!(
                    "names {}",
                    seen.exchange
                        .headers
                        .access_control_allow_origin
                        .as_deref()
                        .unwrap_or("?")
                ),
            }
        };
        let first_of = |kind: RequestKind, origin: Option<&str>| {
            self.of_kind(kind).find(|seen| {
                seen.exchange.try_number == 1 && seen.exchange.origin.as_deref() == origin
            })
        };
        let mut parts: Vec<String> = self
            .plan
            .origins
            .iter()
            .map(|origin| {
                format!(
                    "{origin}: GET {}, preflight {}",
                    describe(first_of(RequestKind::Simple, Some(origin))),
                    describe(first_of(RequestKind::Preflight, Some(origin)))
                )
            })
            .collect();
        parts.push(format!(
            "no Origin: GET {}",
            describe(first_of(RequestKind::NoOrigin, None))
        ));
        check(check_id::ACAO_RETURNED, Verdict::Info, parts.join("; "))
    }

    fn acao_matches_origin(&self) -> Check {
        let wrong: Vec<String> = self
            .answered()
            .filter(|seen| seen.exchange.origin.is_some() && seen.acao() == AcaoMatch::OtherOrigin)
            .map(|seen| {
                format!(
                    "{} got ACAO {}",
                    seen.describe(),
                    dash(&seen.exchange.headers.access_control_allow_origin)
                )
            })
            .collect();
        if !wrong.is_empty() {
            return check(
                check_id::ACAO_MATCHES_ORIGIN,
                Verdict::Fail,
                format!(
                    "{} responses name an origin other than the requester's: {}",
                    wrong.len(),
                    summarize(&wrong)
                ),
            );
        }
        let any_acao = self
            .answered()
            .any(|seen| seen.exchange.origin.is_some() && seen.acao() != AcaoMatch::Absent);
        check(
            check_id::ACAO_MATCHES_ORIGIN,
            Verdict::Pass,
            if any_acao {
                "every ACAO named the requesting origin or was *"
            } else {
                "no response carried ACAO (are these origins allowed?)"
            },
        )
    }

    fn cross_origin_acao(&self) -> Check {
        if self.plan.origins.len() < 2 {
            return check(
                check_id::CROSS_ORIGIN_ACAO,
                Verdict::Info,
                "not tested: give two or more --origin to see whether one gets another's cached answer",
            );
        }
        // Evidence of a shared cache entry: an origin's response names an origin this
        // probe sent earlier. An ACAO naming some origin never sent here is a fixed
        // configuration, judged by acao-matches-origin instead.
        let replayed: Vec<String> = self
            .answered()
            .filter(|seen| seen.exchange.origin.is_some())
            .filter_map(|seen| {
                let acao = seen
                    .exchange
                    .headers
                    .access_control_allow_origin
                    .as_deref()?;
                let sender = seen.exchange.origin.as_deref()?;
                let earlier = self.observed[..seen.exchange.step - 1]
                    .iter()
                    .any(|before| before.exchange.origin.as_deref() == Some(acao));
                (acao != sender && earlier)
                    .then(|| format!("{} got {acao}'s ACAO", seen.describe()))
            })
            .collect();
        if replayed.is_empty() {
            check(
                check_id::CROSS_ORIGIN_ACAO,
                Verdict::Pass,
                format!(
                    "after {} warmed the cache, the other origins still got answers of their own",
                    self.plan.origins[0]
                ),
            )
        } else {
            check(
                check_id::CROSS_ORIGIN_ACAO,
                Verdict::Fail,
                format!(
                    "{} responses carried an earlier origin's ACAO (a cache ignores Vary: Origin): {}",
                    replayed.len(),
                    summarize(&replayed)
                ),
            )
        }
    }

    fn acao_without_origin(&self) -> Check {
        let mut verdict = Verdict::Pass;
        let mut findings = Vec::new();
        for seen in self.of_kind(RequestKind::NoOrigin) {
            if !seen.acao().is_origin_specific() {
                continue;
            }
            let acao = dash(&seen.exchange.headers.access_control_allow_origin);
            if self.plan.origins.contains(&acao) {
                verdict = Verdict::Fail;
                findings.push(format!(
                    "{} got ACAO {acao}: a response made for that origin was replayed",
                    seen.describe()
                ));
            } else {
                verdict = verdict.max(Verdict::Warn);
                findings.push(format!(
                    "{} got ACAO {acao}: a fixed origin? caches need Vary: Origin all the same",
                    seen.describe()
                ));
            }
        }
        let message = if findings.is_empty() {
            "requests without Origin got no origin-specific ACAO".to_string()
        } else {
            summarize(&findings)
        };
        check(check_id::ACAO_WITHOUT_ORIGIN, verdict, message)
    }

    fn vary_origin(&self) -> Check {
        let mut missing = Vec::new();
        let mut depends_any = false;
        for preflight in [false, true] {
            let group: Vec<&Observed> = self
                .answered()
                .filter(|seen| seen.exchange.kind.is_preflight() == preflight)
                .collect();
            // The ACAO depends on the origin when it ever names one, or when origins
            // got different kinds of answer (`*` for some, none for others).
            let kinds: BTreeSet<bool> = group
                .iter()
                .filter(|seen| seen.exchange.origin.is_some())
                .map(|seen| seen.acao() == AcaoMatch::Absent)
                .collect();
            let depends =
                kinds.len() > 1 || group.iter().any(|seen| seen.acao().is_origin_specific());
            if !depends {
                continue;
            }
            depends_any = true;
            // Every response of the group counts, the one without Origin included:
            // cached without Vary: Origin, it would be served to the origins as well.
            missing.extend(
                group
                    .iter()
                    .filter(|seen| !cors::varies_on(&seen.headers, "origin"))
                    .map(|seen| seen.describe()),
            );
        }
        if !missing.is_empty() {
            check(
                check_id::VARY_ORIGIN,
                Verdict::Fail,
                format!(
                    "the ACAO depends on the origin but {} responses lack Vary: Origin, so a cache may serve them to other origins: {}",
                    missing.len(),
                    summarize(&missing)
                ),
            )
        } else if depends_any {
            check(
                check_id::VARY_ORIGIN,
                Verdict::Pass,
                "the ACAO depends on the origin and every response carried Vary: Origin",
            )
        } else {
            check(
                check_id::VARY_ORIGIN,
                Verdict::Pass,
                "the ACAO is the same for every origin (* or none): Vary: Origin is not needed",
            )
        }
    }

    fn preflight_vary(&self) -> Check {
        let baseline = self
            .of_kind(RequestKind::Preflight)
            .find(|seen| seen.exchange.try_number == 1);
        let Some(baseline) = baseline else {
            return check(
                check_id::PREFLIGHT_VARY,
                Verdict::Info,
                "not tested: the first preflight got no answer",
            );
        };
        let mut verdict = Verdict::Pass;
        let mut notes = Vec::new();
        for (kind, request_header, what) in [
            (
                RequestKind::PreflightOtherMethod,
                "Access-Control-Request-Method",
                "method",
            ),
            (
                RequestKind::PreflightOtherHeaders,
                "Access-Control-Request-Headers",
                "headers",
            ),
        ] {
            let Some(other) = self.of_kind(kind).next() else {
                notes.push(format!("the other-{what} preflight got no answer"));
                verdict = verdict.max(Verdict::Info);
                continue;
            };
            if preflight_answer(baseline) == preflight_answer(other) {
                notes.push(format!("same answer for other {what}"));
                continue;
            }
            let lacking: Vec<String> = [baseline, other]
                .iter()
                .filter(|seen| !cors::varies_on(&seen.headers, request_header))
                .map(|seen| format!("#{}", seen.exchange.step))
                .collect();
            if lacking.is_empty() {
                notes.push(format!(
                    "answer depends on the requested {what}; Vary lists {request_header}"
                ));
            } else {
                verdict = verdict.max(Verdict::Warn);
                notes.push(format!(
                    "answer depends on the requested {what} but Vary lacks {request_header} on {}: a cache may replay one answer for another",
                    lacking.join(", ")
                ));
            }
        }
        if verdict == Verdict::Pass && notes.iter().all(|note| note.starts_with("same answer")) {
            notes.push(
                "a static answer needs no Vary on them (if a cache answered both, probe the API directly to be sure)"
                    .to_string(),
            );
        }
        // An unanswered comparison is inconclusive, not a pass.
        if verdict == Verdict::Info {
            verdict = Verdict::Warn;
        }
        check(check_id::PREFLIGHT_VARY, verdict, notes.join("; "))
    }

    fn wildcard_with_credentials(&self) -> Check {
        let offending: Vec<String> = self
            .answered()
            .filter(|seen| {
                seen.acao() == AcaoMatch::Wildcard
                    && cors::list_contains(&seen.headers, &ACCESS_CONTROL_ALLOW_CREDENTIALS, "true")
            })
            .map(Observed::describe)
            .collect();
        if offending.is_empty() {
            check(
                check_id::WILDCARD_WITH_CREDENTIALS,
                Verdict::Pass,
                "no response combined ACAO * with Access-Control-Allow-Credentials: true",
            )
        } else {
            check(
                check_id::WILDCARD_WITH_CREDENTIALS,
                Verdict::Fail,
                format!(
                    "{} responses send ACAO * with Access-Control-Allow-Credentials: true, which browsers reject: {}",
                    offending.len(),
                    summarize(&offending)
                ),
            )
        }
    }

    fn credentials(&self) -> Check {
        let with_origin: Vec<&Observed> = self
            .answered()
            .filter(|seen| seen.exchange.origin.is_some())
            .collect();
        let wildcard: Vec<String> = with_origin
            .iter()
            .filter(|seen| seen.acao() == AcaoMatch::Wildcard)
            .map(|seen| seen.describe())
            .collect();
        if !wildcard.is_empty() {
            return check(
                check_id::CREDENTIALS,
                Verdict::Fail,
                format!(
                    "{} responses answer ACAO *, which credentialed requests may not use: {}",
                    wildcard.len(),
                    summarize(&wildcard)
                ),
            );
        }
        let without_allow: Vec<String> = with_origin
            .iter()
            .filter(|seen| {
                seen.acao() == AcaoMatch::RequestOrigin
                    && !cors::list_contains(
                        &seen.headers,
                        &ACCESS_CONTROL_ALLOW_CREDENTIALS,
                        "true",
                    )
            })
            .map(|seen| seen.describe())
            .collect();
        if without_allow.is_empty() {
            check(
                check_id::CREDENTIALS,
                Verdict::Pass,
                "allowed origins are named explicitly with Access-Control-Allow-Credentials: true",
            )
        } else {
            check(
                check_id::CREDENTIALS,
                Verdict::Warn,
                format!(
                    "{} responses allow the origin but not credentials (no Access-Control-Allow-Credentials: true): {}",
                    without_allow.len(),
                    summarize(&without_allow)
                ),
            )
        }
    }

    /// The preflights that granted access (2xx with a usable ACAO) for the probed method
    /// and headers: only those must list what was asked.
    fn granted_preflights(&self) -> Vec<&Observed> {
        self.answered()
            .filter(|seen| {
                matches!(
                    seen.exchange.kind,
                    RequestKind::Preflight | RequestKind::WarmPreflight | RequestKind::AskPreflight
                ) && seen.is_success()
                    && matches!(seen.acao(), AcaoMatch::RequestOrigin | AcaoMatch::Wildcard)
            })
            .collect()
    }

    fn refused_preflights_note(&self) -> String {
        let refused: Vec<String> = self
            .of_kind(RequestKind::Preflight)
            .filter(|seen| seen.exchange.try_number == 1)
            .filter(|seen| !seen.is_success() || seen.acao() == AcaoMatch::Absent)
            .map(|seen| {
                format!(
                    "{} answered {} {}",
                    seen.exchange.origin.as_deref().unwrap_or("?"),
                    seen.exchange.status.unwrap_or(0),
                    if seen.acao() == AcaoMatch::Absent {
                        "without ACAO"
                    } else {
                        ""
                    }
                )
                .trim_end()
                .to_string()
            })
            .collect();
        if refused.is_empty() {
            String::new()
        } else {
            format!(" (refused: {})", refused.join(", "))
        }
    }

    fn allow_methods(&self) -> Check {
        let method = &self.plan.method;
        let granted = self.granted_preflights();
        if granted.is_empty() {
            return check(
                check_id::ALLOW_METHODS,
                Verdict::Info,
                format!(
                    "no preflight was granted, nothing to check{}",
                    self.refused_preflights_note()
                ),
            );
        }
        // GET, HEAD and POST never need listing; `*` covers every method except for
        // credentialed requests, where it is a literal method name.
        let safelisted = ["GET", "HEAD", "POST"].contains(&method.as_str());
        let missing: Vec<String> = granted
            .iter()
            .filter(|seen| {
                let allowed = allowed_methods(&seen.headers);
                !(safelisted
                    || allowed.contains(method.as_str())
                    || (!self.plan.credentials && allowed.contains("*")))
            })
            .map(|seen| {
                format!(
                    "{} allows {}",
                    seen.describe(),
                    dash(&seen.exchange.headers.access_control_allow_methods)
                )
            })
            .collect();
        if missing.is_empty() {
            check(
                check_id::ALLOW_METHODS,
                Verdict::Pass,
                format!(
                    "granted preflights allow {method}{}",
                    self.refused_preflights_note()
                ),
            )
        } else {
            check(
                check_id::ALLOW_METHODS,
                Verdict::Fail,
                format!(
                    "{} granted preflights do not allow {method}: {}",
                    missing.len(),
                    summarize(&missing)
                ),
            )
        }
    }

    fn allow_headers(&self) -> Check {
        if self.plan.request_headers.is_empty() {
            return check(
                check_id::ALLOW_HEADERS,
                Verdict::Info,
                "no --header given: the preflights asked for no headers",
            );
        }
        let granted = self.granted_preflights();
        if granted.is_empty() {
            return check(
                check_id::ALLOW_HEADERS,
                Verdict::Info,
                format!(
                    "no preflight was granted, nothing to check{}",
                    self.refused_preflights_note()
                ),
            );
        }
        let mut problems = Vec::new();
        for seen in granted {
            let allowed = list_items(&seen.headers, &ACCESS_CONTROL_ALLOW_HEADERS);
            // `*` covers every header but Authorization, and nothing at all for
            // credentialed requests.
            let wildcard = !self.plan.credentials && allowed.contains("*");
            let missing: Vec<&str> = self
                .plan
                .request_headers
                .iter()
                .filter(|name| {
                    !(allowed.contains(name.as_str())
                        || (wildcard && name.as_str() != "authorization"))
                })
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                problems.push(format!("{} lacks {}", seen.describe(), missing.join(", ")));
            }
        }
        if problems.is_empty() {
            check(
                check_id::ALLOW_HEADERS,
                Verdict::Pass,
                format!(
                    "granted preflights allow {}{}",
                    self.plan.request_headers.join(", "),
                    self.refused_preflights_note()
                ),
            )
        } else {
            check(
                check_id::ALLOW_HEADERS,
                Verdict::Fail,
                format!(
                    "{} granted preflights do not allow every requested header: {}",
                    problems.len(),
                    summarize(&problems)
                ),
            )
        }
    }

    fn expose_headers(&self) -> Check {
        let cors_gets: Vec<&Observed> = self
            .of_kind(RequestKind::Simple)
            .filter(|seen| matches!(seen.acao(), AcaoMatch::RequestOrigin | AcaoMatch::Wildcard))
            .collect();
        if cors_gets.is_empty() {
            return check(
                check_id::EXPOSE_HEADERS,
                Verdict::Info,
                "no GET was allowed cross-origin, nothing to check",
            );
        }
        let mut exposed = BTreeSet::new();
        let mut candidates = BTreeSet::new();
        let mut any_without_list = false;
        for seen in &cors_gets {
            let listed = list_items(&seen.headers, &ACCESS_CONTROL_EXPOSE_HEADERS);
            let wildcard = !self.plan.credentials && listed.contains("*");
            let here = unexposed_candidates(&seen.headers);
            if listed.is_empty() && !here.is_empty() {
                any_without_list = true;
            }
            for name in here {
                if !(wildcard || listed.contains(&name)) {
                    candidates.insert(name);
                }
            }
            exposed.extend(listed);
        }
        let candidates: Vec<String> = candidates.into_iter().collect();
        let exposed: Vec<String> = exposed.into_iter().collect();
        if any_without_list {
            check(
                check_id::EXPOSE_HEADERS,
                Verdict::Warn,
                format!(
                    "no Access-Control-Expose-Headers, so scripts cannot read {}",
                    candidates.join(", ")
                ),
            )
        } else if exposed.is_empty() {
            check(
                check_id::EXPOSE_HEADERS,
                Verdict::Info,
                "nothing exposed and nothing beyond the safelisted headers to expose",
            )
        } else if candidates.is_empty() {
            check(
                check_id::EXPOSE_HEADERS,
                Verdict::Info,
                format!("exposed: {}", exposed.join(", ")),
            )
        } else {
            check(
                check_id::EXPOSE_HEADERS,
                Verdict::Info,
                format!(
                    "exposed: {}; not exposed: {}",
                    exposed.join(", "),
                    candidates.join(", ")
                ),
            )
        }
    }

    fn cache_status(&self) -> Check {
        let any = self.answered().any(|seen| {
            seen.exchange.headers.cache_status.is_some() || seen.exchange.headers.age.is_some()
        });
        if !any {
            return check(
                check_id::CACHE_STATUS,
                Verdict::Info,
                "no X-Cache, CF-Cache-Status, X-Cache-Status or Age: not cached, or the cache does not say",
            );
        }
        let status_of = |seen: &Observed| -> String {
            let headers = &seen.exchange.headers;
            let status = headers.cache_status.as_deref().map_or("-", |status| {
                status.split_once(": ").map_or(status, |(_, value)| value)
            });
            match &headers.age {
                Some(age) => format!("{status} (Age {age})"),
                None => status.to_string(),
            }
        };
        let mut parts = Vec::new();
        let mut keys: Vec<(RequestKind, Option<String>)> = Vec::new();
        for seen in self.observed {
            let key = (seen.exchange.kind, seen.exchange.origin.clone());
            if matches!(
                seen.exchange.kind,
                RequestKind::Simple | RequestKind::Preflight | RequestKind::NoOrigin
            ) && !keys.contains(&key)
            {
                keys.push(key);
            }
        }
        for (kind, origin) in keys {
            let tries: Vec<String> = self
                .answered()
                .filter(|seen| seen.exchange.kind == kind && seen.exchange.origin == origin)
                .map(status_of)
                .collect();
            let subject = match &origin {
                Some(origin) => format!("{origin} {}", kind.label()),
                None => kind.label().to_string(),
            };
            parts.push(format!("{subject}: {}", tries.join(" → ")));
        }
        check(check_id::CACHE_STATUS, Verdict::Info, parts.join("; "))
    }

    fn consistent_across_tries(&self) -> Check {
        let mut verdict = Verdict::Pass;
        let mut differences = Vec::new();
        for second in self.answered().filter(|seen| seen.exchange.try_number == 2) {
            let Some(first) = self.answered().find(|seen| {
                seen.exchange.try_number == 1
                    && seen.exchange.kind == second.exchange.kind
                    && seen.exchange.origin == second.exchange.origin
            }) else {
                continue;
            };
            let (a, b) = (&first.exchange.headers, &second.exchange.headers);
            if a.access_control_allow_origin != b.access_control_allow_origin {
                verdict = Verdict::Fail;
                differences.push(format!(
                    "{}: ACAO {} on try 1, {} on try 2{}",
                    second.describe(),
                    dash(&a.access_control_allow_origin),
                    dash(&b.access_control_allow_origin),
                    if b.access_control_allow_origin.is_none() {
                        " (stripped)"
                    } else {
                        ""
                    }
                ));
                continue;
            }
            let fields = [
                (
                    "status",
                    first.exchange.status.map(|s| s.to_string()),
                    second.exchange.status.map(|s| s.to_string()),
                ),
                ("Vary", a.vary.clone(), b.vary.clone()),
                (
                    "Access-Control-Allow-Credentials",
                    a.access_control_allow_credentials.clone(),
                    b.access_control_allow_credentials.clone(),
                ),
                (
                    "Access-Control-Allow-Methods",
                    a.access_control_allow_methods.clone(),
                    b.access_control_allow_methods.clone(),
                ),
                (
                    "Access-Control-Allow-Headers",
                    a.access_control_allow_headers.clone(),
                    b.access_control_allow_headers.clone(),
                ),
                (
                    "Access-Control-Expose-Headers",
                    a.access_control_expose_headers.clone(),
                    b.access_control_expose_headers.clone(),
                ),
            ];
            for (name, before, after) in fields {
                if before != after {
                    verdict = verdict.max(Verdict::Warn);
                    differences.push(format!(
                        "{}: {name} {} on try 1, {} on try 2",
                        second.describe(),
                        before.as_deref().unwrap_or("-"),
                        after.as_deref().unwrap_or("-")
                    ));
                }
            }
        }
        if differences.is_empty() {
            check(
                check_id::CONSISTENT_ACROSS_TRIES,
                Verdict::Pass,
                "each second try carried the same CORS headers as the first",
            )
        } else {
            check(
                check_id::CONSISTENT_ACROSS_TRIES,
                verdict,
                format!(
                    "the second try differs from the first (a cache changes or strips headers): {}",
                    summarize(&differences)
                ),
            )
        }
    }
}

/// What a preflight granted, for comparing two answers; headers are compared as
/// normalized sets so a reordering is not mistaken for a difference.
fn preflight_answer(seen: &Observed) -> impl PartialEq {
    (
        seen.exchange.status,
        seen.exchange.headers.access_control_allow_origin.clone(),
        list_items(&seen.headers, &ACCESS_CONTROL_ALLOW_METHODS),
        list_items(&seen.headers, &ACCESS_CONTROL_ALLOW_HEADERS),
        seen.exchange
            .headers
            .access_control_allow_credentials
            .clone(),
        seen.exchange.headers.access_control_max_age.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_are_upper_cased_like_browsers_do() {
        assert_eq!(normalize_method("put"), "PUT");
        assert_eq!(normalize_method("Delete"), "DELETE");
        assert_eq!(normalize_method("patch"), "patch");
    }

    #[test]
    fn arguments_are_validated_as_usage_errors() {
        let ok = ProbeArgs::new("http://127.0.0.1:1/", &["https://a.example"]);
        assert!(ProbePlan::from_args(&ok).is_ok());
        for bad in [
            ProbeArgs::new("http://127.0.0.1:1/", &[]),
            ProbeArgs::new("http://127.0.0.1:1/", &["a.example"]),
            ProbeArgs::new(
                "http://127.0.0.1:1/",
                &["https://a.example", "https://a.example"],
            ),
            ProbeArgs::new("https://127.0.0.1:1/", &["https://a.example"]),
        ] {
            let err = ProbePlan::from_args(&bad).err().expect("invalid");
            assert_eq!(err.exit_code(), exit_code::USAGE, "{bad:?}");
        }
    }

    #[test]
    fn requested_headers_are_split_lowercased_and_deduplicated() {
        let mut args = ProbeArgs::new("http://127.0.0.1:1/", &["https://a.example"]);
        args.request_headers = vec!["Authorization, content-type".into(), "authorization".into()];
        let plan = ProbePlan::from_args(&args).expect("valid");
        assert_eq!(plan.request_headers, ["authorization", "content-type"]);
        assert_eq!(
            plan.other_headers(),
            ["authorization", "content-type", "x-cors-probe"]
        );
        assert_eq!(plan.other_method(), "DELETE");
    }

    #[test]
    fn the_plan_warms_with_the_first_origin_and_asks_with_the_others() {
        let args = ProbeArgs::new(
            "http://127.0.0.1:1/x",
            &["https://a.example", "https://b.example"],
        );
        let plan = ProbePlan::from_args(&args).expect("valid");
        let requests = planned_requests(&plan);
        // 2 origins × (2 GET + 2 preflight) + 2 without Origin + 2 variants + 2 × 2 warm/ask.
        assert_eq!(requests.len(), 8 + 2 + 2 + 4);
        let warm = requests
            .iter()
            .position(|r| r.kind == RequestKind::WarmSimple)
            .expect("warm-up");
        assert_eq!(requests[warm].origin.as_deref(), Some("https://a.example"));
        assert_eq!(requests[warm + 1].kind, RequestKind::AskSimple);
        assert_eq!(
            requests[warm + 1].origin.as_deref(),
            Some("https://b.example")
        );
        assert!(requests[warm].path.starts_with("/x?cors-probe="));
    }
}
