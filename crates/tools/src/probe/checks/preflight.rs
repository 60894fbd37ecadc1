//! What granted preflights allow, and what simple answers expose.

use std::collections::BTreeSet;

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_EXPOSE_HEADERS,
};

use super::{
    allowed_methods, check, dash, list_items, summarize, unexposed_candidates, Checklist, Observed,
};
use crate::cors::AcaoMatch;
use crate::probe::model::{check_id, Check, RequestKind, Verdict};

impl Checklist<'_> {
    /// The preflights that granted access (2xx with a usable ACAO) for the probed method
    /// and headers: only those must list what was asked.
    pub(crate) fn granted_preflights(&self) -> Vec<&Observed> {
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

    pub(crate) fn refused_preflights_note(&self) -> String {
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

    pub(crate) fn allow_methods(&self) -> Check {
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

    pub(crate) fn allow_headers(&self) -> Check {
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

    pub(crate) fn expose_headers(&self) -> Check {
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
}
/// What a preflight granted, for comparing two answers; headers are compared as
/// normalized sets so a reordering is not mistaken for a difference.
pub(crate) fn preflight_answer(seen: &Observed) -> impl PartialEq {
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
