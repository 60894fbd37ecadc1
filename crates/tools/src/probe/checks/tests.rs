//! The checks on synthetic observations: each verdict from answers written by hand, with
//! no server involved.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{differences, Checklist, Observed};
use crate::probe::args::ProbeArgs;
use crate::probe::io::seen_headers;
use crate::probe::model::{check_id, Change, Exchange, RequestKind, Verdict};
use crate::probe::plan::{planned_requests, ProbePlan};

const A: &str = "https://a.example";
const B: &str = "https://b.example";

fn plan(origins: &[&str]) -> ProbePlan {
    ProbePlan::from_args(&ProbeArgs::new("http://edge.test/x", origins)).expect("plan")
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    map
}

/// Every planned request answered by `answer(origin, kind)`.
fn observe(
    plan: &ProbePlan,
    answer: impl Fn(Option<&str>, RequestKind) -> (u16, HeaderMap),
) -> Vec<Observed> {
    planned_requests(plan)
        .into_iter()
        .enumerate()
        .map(|(index, planned)| {
            let (status, headers) = answer(planned.origin.as_deref(), planned.kind);
            Observed {
                exchange: Exchange {
                    step: index + 1,
                    kind: planned.kind,
                    try_number: planned.try_number,
                    method: if planned.preflight.is_some() {
                        "OPTIONS"
                    } else {
                        "GET"
                    }
                    .into(),
                    path: "/x".into(),
                    origin: planned.origin.clone(),
                    request_method: planned.preflight.as_ref().map(|(m, _)| m.clone()),
                    request_headers: None,
                    status: Some(status),
                    error: None,
                    headers: seen_headers(&headers),
                },
                headers,
            }
        })
        .collect()
}

/// A correct API: reflects A and B, with Vary: Origin, nothing for requests without Origin.
fn good_api(origin: Option<&str>, kind: RequestKind) -> (u16, HeaderMap) {
    let mut pairs = vec![("vary", "Origin"), ("cache-control", "max-age=60")];
    if let Some(origin) = origin {
        pairs.push(("access-control-allow-origin", origin));
        if kind.is_preflight() {
            pairs.push(("access-control-allow-methods", "PUT, DELETE"));
        }
    }
    (if kind.is_preflight() { 204 } else { 200 }, headers(&pairs))
}

fn verdict_of(
    plan: &ProbePlan,
    edge: &[Observed],
    direct: Option<&[Observed]>,
    id: &str,
) -> Verdict {
    let checks = Checklist {
        plan,
        observed: edge,
        direct,
    }
    .run();
    checks
        .iter()
        .find(|check| check.id == id)
        .unwrap_or_else(|| panic!("no {id} in {checks:?}"))
        .verdict
}

#[test]
fn a_transparent_edge_passes_both_direct_checks() {
    let plan = plan(&[A, B]);
    let origin = observe(&plan, good_api);
    let edge = observe(&plan, |o, k| {
        let (status, mut headers) = good_api(o, k);
        headers.insert("x-cache", HeaderValue::from_static("MISS"));
        (status, headers)
    });
    assert_eq!(
        verdict_of(&plan, &edge, Some(&origin), check_id::ORIGIN_FORWARDED),
        Verdict::Pass
    );
    assert_eq!(
        verdict_of(&plan, &edge, Some(&origin), check_id::EDGE_REWRITES_CORS),
        Verdict::Pass
    );
    let diff = differences(&edge, &origin);
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert_eq!(
        (diff[0].field.as_str(), diff[0].change),
        ("x-cache", Change::Added)
    );
    assert_eq!(diff[0].steps.len(), edge.len());
    // Without --direct the two checks are not run at all.
    let checks = Checklist {
        plan: &plan,
        observed: &edge,
        direct: None,
    }
    .run();
    assert!(checks
        .iter()
        .all(|check| check.id != check_id::ORIGIN_FORWARDED));
}

#[test]
fn an_edge_that_strips_vary_origin_fails() {
    let plan = plan(&[A, B]);
    let origin = observe(&plan, good_api);
    let edge = observe(&plan, |o, k| {
        let (status, mut headers) = good_api(o, k);
        headers.remove("vary");
        (status, headers)
    });
    assert_eq!(
        verdict_of(&plan, &edge, Some(&origin), check_id::EDGE_REWRITES_CORS),
        Verdict::Fail
    );
    let diff = differences(&edge, &origin);
    assert!(diff.iter().any(|d| d.field == "vary"
        && d.change == Change::Stripped
        && d.origin_value.as_deref() == Some("Origin")));
}

#[test]
fn an_edge_that_rewrites_acao_fails_and_one_that_adds_vary_passes() {
    let plan = plan(&[A, B]);
    let origin = observe(&plan, good_api);
    // A fixed ACAO at the edge: B is told A may read.
    let fixed = observe(&plan, |o, k| {
        let (status, mut headers) = good_api(o, k);
        if o.is_some() {
            headers.insert("access-control-allow-origin", HeaderValue::from_static(A));
        }
        (status, headers)
    });
    assert_eq!(
        verdict_of(&plan, &fixed, Some(&origin), check_id::EDGE_REWRITES_CORS),
        Verdict::Fail
    );
    // `*` instead of the origin, without credentials: looser, flagged but not broken.
    let star = observe(&plan, |o, k| {
        let (status, mut headers) = good_api(o, k);
        if o.is_some() {
            headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        }
        (status, headers)
    });
    assert_eq!(
        verdict_of(&plan, &star, Some(&origin), check_id::EDGE_REWRITES_CORS),
        Verdict::Warn
    );
    // An origin that forgets Vary: Origin behind an edge that adds it (cors-edge).
    let forgetful = observe(&plan, |o, k| {
        let (status, mut headers) = good_api(o, k);
        headers.remove("vary");
        (status, headers)
    });
    let fixing = observe(&plan, good_api);
    assert_eq!(
        verdict_of(
            &plan,
            &fixing,
            Some(&forgetful),
            check_id::EDGE_REWRITES_CORS
        ),
        Verdict::Pass
    );
}

#[test]
fn differences_served_from_the_edge_cache_are_not_rewrites() {
    let plan = plan(&[A, B]);
    let origin = observe(&plan, good_api);
    // A cache that replays A's answer to B marks it HIT: that is cross-origin-acao's
    // finding, not a rewrite.
    let edge = observe(&plan, |o, k| {
        let (status, mut headers) = good_api(o, k);
        if o == Some(B) {
            headers.insert("access-control-allow-origin", HeaderValue::from_static(A));
            headers.insert("x-cache", HeaderValue::from_static("HIT"));
        }
        (status, headers)
    });
    assert_eq!(
        verdict_of(&plan, &edge, Some(&origin), check_id::EDGE_REWRITES_CORS),
        Verdict::Pass
    );
    assert_eq!(
        verdict_of(&plan, &edge, Some(&origin), check_id::CROSS_ORIGIN_ACAO),
        Verdict::Fail
    );
}

#[test]
fn an_edge_that_drops_origin_gets_the_answer_without_origin() {
    let plan = plan(&[A, B]);
    let origin = observe(&plan, good_api);
    // The edge strips Origin before forwarding: the origin answers as for no Origin.
    let edge = observe(&plan, |_, k| good_api(None, k));
    assert_eq!(
        verdict_of(&plan, &edge, Some(&origin), check_id::ORIGIN_FORWARDED),
        Verdict::Fail
    );
    // An origin that ignores Origin altogether gives no evidence either way.
    let static_api = |_: Option<&str>, k| good_api(None, k);
    let origin = observe(&plan, static_api);
    let edge = observe(&plan, static_api);
    assert_eq!(
        verdict_of(&plan, &edge, Some(&origin), check_id::ORIGIN_FORWARDED),
        Verdict::Info
    );
    // An edge that makes its own CORS answer (`*` for all) is neither.
    let edge = observe(&plan, |o, k| {
        let (status, mut headers) = good_api(None, k);
        if o.is_some() {
            headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        }
        (status, headers)
    });
    let origin = observe(&plan, good_api);
    assert_eq!(
        verdict_of(&plan, &edge, Some(&origin), check_id::ORIGIN_FORWARDED),
        Verdict::Info
    );
}

#[test]
fn the_core_checks_judge_synthetic_answers() {
    let plan = plan(&[A, B]);
    let good = observe(&plan, good_api);
    for id in [
        check_id::ACAO_MATCHES_ORIGIN,
        check_id::CROSS_ORIGIN_ACAO,
        check_id::VARY_ORIGIN,
        check_id::ACAO_WITHOUT_ORIGIN,
    ] {
        assert_eq!(verdict_of(&plan, &good, None, id), Verdict::Pass, "{id}");
    }
    let no_vary = observe(&plan, |o, k| {
        let (status, mut headers) = good_api(o, k);
        headers.remove("vary");
        (status, headers)
    });
    assert_eq!(
        verdict_of(&plan, &no_vary, None, check_id::VARY_ORIGIN),
        Verdict::Fail
    );
    let leaked = observe(&plan, |o, k| good_api(o.map(|_| A), k));
    assert_eq!(
        verdict_of(&plan, &leaked, None, check_id::ACAO_MATCHES_ORIGIN),
        Verdict::Fail
    );
    let wildcard_credentials = observe(&plan, |o, k| {
        let (status, mut headers) = good_api(o, k);
        if o.is_some() {
            headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
            headers.insert(
                "access-control-allow-credentials",
                HeaderValue::from_static("true"),
            );
        }
        (status, headers)
    });
    assert_eq!(
        verdict_of(
            &plan,
            &wildcard_credentials,
            None,
            check_id::WILDCARD_WITH_CREDENTIALS
        ),
        Verdict::Fail
    );
}
