//! The probe's report model: checks, verdicts, exchanges, and the edge-versus-origin
//! comparison, serialized as they are for `--json`.

use serde::{Deserialize, Serialize};

use crate::exit_code;
use crate::net::Negotiated;

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
    /// With `--direct`: the edge forwards `Origin` to the origin (its answers follow the
    /// origin's answers per `Origin`, not the origin's answer without one).
    pub const ORIGIN_FORWARDED: &str = "origin-forwarded";
    /// With `--direct`: the edge passes the origin's CORS headers and `Vary` through
    /// unchanged, or what it changes keeps them correct.
    pub const EDGE_REWRITES_CORS: &str = "edge-rewrites-cors";
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
    pub(crate) fn label(self) -> &'static str {
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
    pub(crate) fn label(self) -> &'static str {
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

    pub(crate) fn is_preflight(self) -> bool {
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
    /// The protocol and TLS version of the first connection that completed (`None` when
    /// every connection failed).
    pub connection: Option<Negotiated>,
    pub exchanges: Vec<Exchange>,
    /// With `--direct`: the same requests sent to the origin, and what the edge changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct: Option<DirectComparison>,
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
}

/// `--direct`: the origin's answers beside the edge's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectComparison {
    pub url: String,
    pub connection: Option<Negotiated>,
    /// The same requests as `exchanges`, same steps, sent to the origin.
    pub exchanges: Vec<Exchange>,
    /// Every difference between the edge's and the origin's answer, grouped by field and
    /// values, with the steps it was seen on.
    pub differences: Vec<FieldDifference>,
}

/// How the edge changed one response field relative to the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Present at the edge only.
    Added,
    /// Present at the origin only.
    Stripped,
    /// Present at both with different values.
    Changed,
}

/// One field's difference, with the requests (steps) where it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDifference {
    /// Lower-case header name, or `status`.
    pub field: String,
    pub change: Change,
    pub origin_value: Option<String>,
    pub edge_value: Option<String>,
    pub steps: Vec<usize>,
}
