//! What caches say about themselves, and whether a second try changed the answer.

use super::{check, dash, summarize, Checklist, Observed};
use crate::probe::model::{check_id, Check, RequestKind, Verdict};

impl Checklist<'_> {
    pub(crate) fn cache_status(&self) -> Check {
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

    pub(crate) fn consistent_across_tries(&self) -> Check {
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
