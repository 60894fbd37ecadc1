//! Checks on who the ACAO names and whether caches are told to keep origins apart.

use std::collections::BTreeSet;

use super::preflight::preflight_answer;
use super::{check, dash, summarize, Checklist, Observed};
use crate::cors::{self, AcaoMatch};
use crate::probe::model::{check_id, Check, RequestKind, Verdict};

impl Checklist<'_> {
    pub(crate) fn acao_returned(&self) -> Check {
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

    pub(crate) fn acao_matches_origin(&self) -> Check {
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

    pub(crate) fn cross_origin_acao(&self) -> Check {
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

    pub(crate) fn acao_without_origin(&self) -> Check {
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

    pub(crate) fn vary_origin(&self) -> Check {
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

    pub(crate) fn preflight_vary(&self) -> Check {
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

    pub(crate) fn wildcard_with_credentials(&self) -> Check {
        let offending: Vec<String> = self
            .answered()
            .filter(|seen| {
                seen.acao() == AcaoMatch::Wildcard
                    && cors::list_contains(
                        &seen.headers,
                        "access-control-allow-credentials",
                        "true",
                    )
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

    pub(crate) fn credentials(&self) -> Check {
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
                        "access-control-allow-credentials",
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
}
