//! The checks, as pure functions over recorded observations: nothing here does I/O, so
//! each check is unit-tested on synthetic answers (see `tests`) as well as through live
//! servers.

mod acao;
mod cache;
mod direct;
pub(crate) use direct::differences;
mod preflight;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use http::header::ACCESS_CONTROL_ALLOW_METHODS;
use http::{HeaderMap, HeaderName};

use super::model::{check_id, Check, Exchange, RequestKind, Verdict};
use super::plan::ProbePlan;
use crate::cors::{self, AcaoMatch};

/// One exchange plus the raw response headers the checks read.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    pub exchange: Exchange,
    pub headers: HeaderMap,
}

impl Observed {
    pub(crate) fn acao(&self) -> AcaoMatch {
        cors::classify_acao(
            &self.headers,
            self.exchange.origin.as_deref().map(str::as_bytes),
        )
    }

    pub(crate) fn answered(&self) -> bool {
        self.exchange.status.is_some()
    }

    pub(crate) fn is_success(&self) -> bool {
        self.exchange
            .status
            .is_some_and(|status| (200..300).contains(&status))
    }

    /// "GET from https://a.example (try 2)": how messages name a request.
    pub(crate) fn describe(&self) -> String {
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
pub(crate) fn unexposed_candidates(headers: &HeaderMap) -> BTreeSet<String> {
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
pub(crate) fn list_items(headers: &HeaderMap, name: &HeaderName) -> BTreeSet<String> {
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
pub(crate) fn allowed_methods(headers: &HeaderMap) -> BTreeSet<String> {
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
pub(crate) struct Checklist<'a> {
    pub plan: &'a ProbePlan,
    pub observed: &'a [Observed],
    /// With `--direct`: the origin's answers to the same requests, same order.
    pub direct: Option<&'a [Observed]>,
}

pub(crate) fn check(id: &str, verdict: Verdict, message: impl Into<String>) -> Check {
    Check {
        id: id.to_string(),
        verdict,
        message: message.into(),
    }
}

/// "a, b and 3 more": keeps one-line messages one line.
pub(crate) fn summarize(items: &[String]) -> String {
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
    pub fn run(&self) -> Vec<Check> {
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
        if let Some(direct) = self.direct {
            checks.push(self.origin_forwarded(direct));
            checks.push(self.edge_rewrites_cors(direct));
        }
        checks
    }

    pub(crate) fn answered(&self) -> impl Iterator<Item = &Observed> {
        self.observed.iter().filter(|seen| seen.answered())
    }

    pub(crate) fn of_kind(&self, kind: RequestKind) -> impl Iterator<Item = &Observed> {
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
}

pub(crate) fn dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".to_string())
}
