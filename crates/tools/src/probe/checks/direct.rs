//! `--direct`: the edge's answers beside the origin's. Does `Origin` reach the origin, and
//! does something at the edge rewrite the CORS headers the origin generated?

use std::collections::BTreeMap;

use http::HeaderMap;

use super::{check, summarize, Checklist, Observed};
use crate::cors::{self, AcaoMatch};
use crate::probe::model::{check_id, Change, Check, FieldDifference, RequestKind, Verdict};

/// Hop-by-hop and per-message fields: differences there say nothing about the edge.
const IGNORED: [&str; 8] = [
    "connection",
    "date",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The CORS response fields, compared value by value.
const CORS_FIELDS: [&str; 6] = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
];

/// What a browser takes from a simple answer: ACAO, credentials, exposed headers.
fn simple_cors(headers: &HeaderMap) -> [Option<String>; 3] {
    [
        cors::joined(headers, "access-control-allow-origin"),
        cors::joined(headers, "access-control-allow-credentials"),
        cors::joined(headers, "access-control-expose-headers"),
    ]
}

/// Served from the edge's cache: a difference there is the cache's doing (judged by
/// `cross-origin-acao`), not a rewrite.
fn from_cache(seen: &Observed) -> bool {
    cors::cache_status_token_of(&seen.headers).is_some_and(|token| {
        token.eq_ignore_ascii_case(b"HIT") || token.eq_ignore_ascii_case(b"STALE")
    })
}

/// `Vary` names `Origin` itself (`Vary: *` does not count: it says nothing about Origin).
fn lists_origin(headers: &HeaderMap) -> bool {
    cors::list_contains(headers, "vary", "origin")
}

impl Checklist<'_> {
    /// The answer that best shows what the origin does with `origin`: the warm-up on the
    /// fresh key (it cannot have come from the edge's cache) for the first origin, the
    /// first GET otherwise.
    fn first_get<'s>(seen: &'s [Observed], origin: &str) -> Option<&'s Observed> {
        let of = |kind: RequestKind| {
            seen.iter().find(|seen| {
                seen.answered()
                    && seen.exchange.kind == kind
                    && seen.exchange.try_number == 1
                    && seen.exchange.origin.as_deref() == Some(origin)
            })
        };
        of(RequestKind::WarmSimple).or_else(|| of(RequestKind::Simple))
    }

    pub(crate) fn origin_forwarded(&self, direct: &[Observed]) -> Check {
        let without = direct
            .iter()
            .find(|seen| seen.answered() && seen.exchange.kind == RequestKind::NoOrigin);
        let Some(without) = without else {
            return check(
                check_id::ORIGIN_FORWARDED,
                Verdict::Warn,
                "not tested: the origin did not answer the GET without Origin",
            );
        };
        let baseline = simple_cors(&without.headers);
        for origin in &self.plan.origins {
            let (Some(at_origin), Some(at_edge)) = (
                Self::first_get(direct, origin),
                Self::first_get(self.observed, origin),
            ) else {
                continue;
            };
            let with = simple_cors(&at_origin.headers);
            if with == baseline {
                // The origin answers this origin as it answers no Origin: no evidence.
                continue;
            }
            let edge = simple_cors(&at_edge.headers);
            let acao = |value: &Option<String>| value.clone().unwrap_or_else(|| "none".into());
            return if edge == with {
                check(
                    check_id::ORIGIN_FORWARDED,
                    Verdict::Pass,
                    format!(
                        "the origin answers {origin} with ACAO {} (without Origin: {}) and the edge's answer matches: Origin reaches the origin",
                        acao(&with[0]),
                        acao(&baseline[0])
                    ),
                )
            } else if edge == baseline {
                check(
                    check_id::ORIGIN_FORWARDED,
                    Verdict::Fail,
                    format!(
                        "through the edge {origin} gets the origin's answer to a request without Origin (ACAO {}; the origin itself answers {}): the edge does not forward Origin ({})",
                        acao(&edge[0]),
                        acao(&with[0]),
                        at_edge.describe()
                    ),
                )
            } else {
                check(
                    check_id::ORIGIN_FORWARDED,
                    Verdict::Info,
                    format!(
                        "the edge answers {origin} with ACAO {}, the origin with {} and without Origin {}: the edge makes its own CORS answer, so whether Origin reaches the origin cannot be seen",
                        acao(&edge[0]),
                        acao(&with[0]),
                        acao(&baseline[0])
                    ),
                )
            };
        }
        check(
            check_id::ORIGIN_FORWARDED,
            Verdict::Info,
            "cannot tell: the origin answers every probed origin as it answers a request without Origin",
        )
    }

    pub(crate) fn edge_rewrites_cors(&self, direct: &[Observed]) -> Check {
        let mut failures = Vec::new();
        let mut changes = Vec::new();
        let mut adds_vary_origin = false;
        let mut compared = 0;
        for (edge, origin) in self.observed.iter().zip(direct) {
            if !(edge.answered() && origin.answered()) || from_cache(edge) {
                continue;
            }
            compared += 1;
            let who = edge.describe();
            if lists_origin(&origin.headers) && !lists_origin(&edge.headers) {
                failures.push(format!(
                    "{who}: the origin sent Vary: Origin, the edge stripped it (Vary: {})",
                    cors::joined(&edge.headers, "vary").unwrap_or_else(|| "none".into())
                ));
            } else if !lists_origin(&origin.headers) && lists_origin(&edge.headers) {
                adds_vary_origin = true;
            }
            let (acao_origin, acao_edge) = (
                cors::joined(&origin.headers, "access-control-allow-origin"),
                cors::joined(&edge.headers, "access-control-allow-origin"),
            );
            if acao_origin != acao_edge {
                let shown = |value: &Option<String>| value.clone().unwrap_or_else(|| "none".into());
                let rewrite = format!(
                    "{who}: ACAO {} at the origin, {} at the edge",
                    shown(&acao_origin),
                    shown(&acao_edge)
                );
                // Naming another origin leaks, `*` with credentials breaks every browser;
                // taking away what the origin allowed may be a stricter edge policy (cors-edge's
                // edge mode), so it is reported but not failed.
                let breaks = match (origin.acao(), edge.acao()) {
                    (_, AcaoMatch::OtherOrigin) => true,
                    (_, AcaoMatch::Wildcard) => cors::list_contains(
                        &edge.headers,
                        "access-control-allow-credentials",
                        "true",
                    ),
                    _ => false,
                };
                if breaks {
                    failures.push(rewrite);
                } else {
                    changes.push(rewrite);
                }
            }
            for field in &CORS_FIELDS[1..] {
                let (before, after) = (
                    cors::joined(&origin.headers, field),
                    cors::joined(&edge.headers, field),
                );
                if before != after {
                    changes.push(format!(
                        "{who}: {field} {} at the origin, {} at the edge",
                        before.as_deref().unwrap_or("none"),
                        after.as_deref().unwrap_or("none")
                    ));
                }
            }
        }
        if compared == 0 {
            return check(
                check_id::EDGE_REWRITES_CORS,
                Verdict::Warn,
                "not tested: no request got an answer from both the edge (outside its cache) and the origin",
            );
        }
        let note = if adds_vary_origin {
            " (the edge adds Vary: Origin where the origin forgot it, which keeps caches apart)"
        } else {
            ""
        };
        if !failures.is_empty() {
            check(
                check_id::EDGE_REWRITES_CORS,
                Verdict::Fail,
                format!(
                    "the edge rewrites the origin's CORS answer in {} responses so that it breaks or leaks: {}",
                    failures.len(),
                    summarize(&failures)
                ),
            )
        } else if !changes.is_empty() {
            check(
                check_id::EDGE_REWRITES_CORS,
                Verdict::Warn,
                format!(
                    "the edge changes the origin's CORS headers in {} responses (an edge CORS rule or function?): {}{note}",
                    changes.len(),
                    summarize(&changes)
                ),
            )
        } else {
            check(
                check_id::EDGE_REWRITES_CORS,
                Verdict::Pass,
                format!(
                    "in {compared} answers not served from the edge's cache, the CORS headers and Vary: Origin are the origin's{note}"
                ),
            )
        }
    }
}

/// Sort rank of a field in the diff: status, CORS, Vary, Cache-Control, the rest.
fn rank(field: &str) -> usize {
    if field == "status" {
        0
    } else if let Some(index) = CORS_FIELDS.iter().position(|name| *name == field) {
        1 + index
    } else if field == "vary" {
        10
    } else if field == "cache-control" {
        11
    } else {
        12
    }
}

/// Every field the edge changed, grouped: CORS fields and `Vary` by exact values, other
/// fields by name (their values vary per response: `Age`, `ETag`, …).
pub(crate) fn differences(edge: &[Observed], origin: &[Observed]) -> Vec<FieldDifference> {
    type Key = (usize, String, Change, Option<String>, Option<String>);
    let mut groups: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (edge, origin) in edge.iter().zip(origin) {
        let (Some(edge_status), Some(origin_status)) =
            (edge.exchange.status, origin.exchange.status)
        else {
            continue;
        };
        let step = edge.exchange.step;
        let mut record = |field: &str, before: Option<String>, after: Option<String>| {
            let change = match (&before, &after) {
                (None, Some(_)) => Change::Added,
                (Some(_), None) => Change::Stripped,
                _ => Change::Changed,
            };
            let exact = rank(field) <= 10;
            let key = if exact {
                (rank(field), field.to_string(), change, before, after)
            } else {
                (rank(field), field.to_string(), change, None, None)
            };
            groups.entry(key).or_default().push(step);
        };
        if edge_status != origin_status {
            record(
                "status",
                Some(origin_status.to_string()),
                Some(edge_status.to_string()),
            );
        }
        let mut names: Vec<&str> = origin
            .headers
            .keys()
            .chain(edge.headers.keys())
            .map(|name| name.as_str())
            .filter(|name| !IGNORED.contains(name))
            .collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let (before, after) = (
                cors::joined(&origin.headers, name),
                cors::joined(&edge.headers, name),
            );
            let same = if name == "vary" {
                normalized_list(&before) == normalized_list(&after)
            } else {
                before == after
            };
            if !same {
                record(name, before, after);
            }
        }
    }
    // Fields grouped by name keep one example of their values.
    let mut examples: BTreeMap<(String, Change), (Option<String>, Option<String>)> =
        BTreeMap::new();
    for (edge, origin) in edge.iter().zip(origin) {
        for name in edge.headers.keys().chain(origin.headers.keys()) {
            let name = name.as_str();
            if rank(name) > 10 {
                let before = cors::joined(&origin.headers, name);
                let after = cors::joined(&edge.headers, name);
                let change = match (&before, &after) {
                    (None, Some(_)) => Change::Added,
                    (Some(_), None) => Change::Stripped,
                    _ => Change::Changed,
                };
                if before != after {
                    examples
                        .entry((name.to_string(), change))
                        .or_insert((before, after));
                }
            }
        }
    }
    groups
        .into_iter()
        .map(|((_, field, change, before, after), steps)| {
            let (origin_value, edge_value) = if before.is_none() && after.is_none() {
                examples
                    .get(&(field.clone(), change))
                    .cloned()
                    .unwrap_or((None, None))
            } else {
                (before, after)
            };
            FieldDifference {
                field,
                change,
                origin_value,
                edge_value,
                steps,
            }
        })
        .collect()
}

/// A list header's items, lower-cased and sorted, to compare `Vary` by meaning.
fn normalized_list(value: &Option<String>) -> Vec<String> {
    let mut items: Vec<String> = value
        .iter()
        .flat_map(|text| text.split(','))
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect();
    items.sort_unstable();
    items.dedup();
    items
}
