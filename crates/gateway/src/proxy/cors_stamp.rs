//! CORS on the way out: the edge policy's preflight answers, what an upstream's CORS headers
//! mean for the cache (upstream mode) or their removal (edge mode), and the headers stamped on
//! every answer (`Vary`, the edge policy's grant), with the CORS decision recorded.

use cors_edge_core::cors::{self, AllowOrigin, Decision, RequestKind};
use cors_edge_core::outcome::{CorsOutcome, PreflightResult};
use cors_edge_core::vary;
use http::header::{self, HeaderName, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::protocols::http::ServerSession;

use super::answers::answer;
use super::record::RequestRecord;
use super::request_checks::header_lines;
use super::status::{Answerer, NOT_CONSULTED};
use crate::metrics::METRICS;
use crate::runtime::{CorsMode, Route};

fn set_header(resp: &mut ResponseHeader, name: HeaderName, value: &str) {
    if let Err(e) = resp.insert_header(name.clone(), value) {
        tracing::warn!("cannot set {name}: {e}");
    }
}

/// Removes every `Access-Control-*` field (a grant the gateway does not stand behind).
fn remove_cors_fields(resp: &mut ResponseHeader) {
    let names: Vec<HeaderName> = resp
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in names {
        resp.remove_header(&name);
    }
}

/// Edge mode: the policy answers the preflight from memory (a hit: it never reaches the
/// upstream), 204 with the grant or 403 without.
pub async fn answer_edge_preflight(
    session: &mut ServerSession,
    record: &mut RequestRecord,
    route: &Route,
) -> Result<bool> {
    let origin = record.origin().unwrap_or_default();
    let (method, requested) = record
        .facts()
        .and_then(|facts| facts.preflight.as_ref())
        .map_or((&b""[..], ""), |ask| {
            (&ask.method[..], ask.headers.as_str())
        });
    let decision = route.policy.preflight(origin, method, requested);
    let outcome = decision.outcome;
    let mut headers = decision.headers;
    headers.push(("vary", vary::PREFLIGHT_VARY.to_string()));
    record.cors_outcome = Some(CorsOutcome::Policy(outcome));
    let (status, result) = if outcome.is_allowed() {
        (204, PreflightResult::Answered)
    } else {
        (403, PreflightResult::Denied)
    };
    route.metrics.preflight(result);
    record.answerer = Answerer::EdgePolicy;
    answer(session, NOT_CONSULTED, record, status, &headers, "").await
}

/// The upstream's response header on its way in: in upstream mode its CORS facts are recorded
/// (and its mistakes counted); in edge mode its CORS headers, and `Origin` in its `Vary`, are
/// removed, since the gateway stamps its own after the cache.
pub fn on_upstream_response(
    record: &mut RequestRecord,
    route: &Route,
    upstream_response: &mut ResponseHeader,
) -> Result<()> {
    match route.cors_mode {
        CorsMode::Upstream => {
            let headers = &upstream_response.headers;
            let facts = cors::upstream_response_facts(
                record.origin(),
                &header_lines(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN),
                headers
                    .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
                    .map(HeaderValue::as_bytes),
                header_lines(headers, header::VARY),
            );
            for reason in &facts.unsafe_reasons {
                METRICS
                    .unsafe_upstream
                    .with_label_values(&[reason.as_str()])
                    .inc();
            }
            // A 304 carries no CORS headers of its own: the stored response's facts stand.
            if upstream_response.status != http::StatusCode::NOT_MODIFIED {
                record.response_cors = Some(facts);
            }
        }
        CorsMode::Edge => {
            remove_cors_fields(upstream_response);
            // Origin is not forwarded in edge mode, so the upstream cannot vary on it.
            let fields = vary::parse_vary(header_lines(&upstream_response.headers, header::VARY));
            if let vary::VaryFields::Fields(names) = fields {
                if names.iter().any(|n| n == "origin") {
                    let kept: Vec<&str> = names
                        .iter()
                        .map(String::as_str)
                        .filter(|n| *n != "origin")
                        .collect();
                    upstream_response.remove_header(&header::VARY);
                    if !kept.is_empty() {
                        upstream_response.insert_header(header::VARY, kept.join(", "))?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Stamps the CORS side of an answer about to be sent, and records the CORS decision.
pub fn stamp(resp: &mut ResponseHeader, record: &mut RequestRecord, route: &Route) {
    let has_origin = record.origin().is_some();
    match (route.cors_mode, record.kind()) {
        (CorsMode::Upstream, _) if record.facts().is_some_and(|r| r.several_origins) => {
            // Several `Origin` lines make no origin: whatever the upstream granted to the first
            // one, the browser gets no grant (the answer is still stored for this request only).
            remove_cors_fields(resp);
            record.cors_outcome = Some(CorsOutcome::Policy(Decision::InvalidOrigin));
            let value = vary::vary_with_origin(header_lines(&resp.headers, header::VARY));
            set_header(resp, header::VARY, &value);
        }
        (CorsMode::Upstream, kind) => {
            let acao = header_lines(&resp.headers, header::ACCESS_CONTROL_ALLOW_ORIGIN);
            let allow_origin = AllowOrigin::of(&acao);
            record.cors_outcome = Some(CorsOutcome::of_upstream(has_origin, allow_origin));
            if kind == RequestKind::Preflight {
                let lines = header_lines(&resp.headers, header::VARY);
                // A cached preflight usually carries all three already.
                if !vary::names_all(lines.iter().copied(), &vary::PREFLIGHT_VARY_NAMES) {
                    let value = vary::vary_naming(lines, &vary::PREFLIGHT_VARY_NAMES);
                    set_header(resp, header::VARY, &value);
                }
                return;
            }
            // The answer depends on Origin when the request sent one or the upstream named an
            // origin anyway; a response to a request without Origin gets it too (by default)
            // so a browser cache never reuses it for a CORS fetch.
            let names_origin = matches!(allow_origin, AllowOrigin::Named | AllowOrigin::Multiple);
            if (has_origin || names_origin || route.vary_origin_always)
                && !record.shared_across_origins(route, &resp.headers)
            {
                let lines = header_lines(&resp.headers, header::VARY);
                // A stored `Vary: Origin` is usually already what is sent.
                if !vary::names_all(lines.iter().copied(), &["Origin"]) {
                    let value = vary::vary_with_origin(lines);
                    set_header(resp, header::VARY, &value);
                }
            }
        }
        (CorsMode::Edge, _) => {
            let decision = route.policy.actual_response(record.origin());
            for (name, value) in &decision.headers {
                if let Err(e) = resp.insert_header(*name, value.as_str()) {
                    tracing::warn!("cannot set {name}: {e}");
                }
            }
            if route.policy.varies_by_origin() {
                let value = vary::vary_with_origin(header_lines(&resp.headers, header::VARY));
                set_header(resp, header::VARY, &value);
            }
            record.cors_outcome = Some(CorsOutcome::Policy(decision.outcome));
        }
    }
}
