//! What a finished request leaves behind, read from its record: the route's counters and
//! histograms, the `/stats` counters, the access log line.

use cors_edge_core::cors::RequestKind;
use cors_edge_core::outcome::{CacheStatus, PreflightResult};

use pingora::protocols::http::ServerSession;

use super::record::RequestRecord;
use crate::access_log::AccessRecord;
use crate::runtime::CorsMode;
use crate::state::SharedState;

pub fn request_done(state: &SharedState, record: &RequestRecord, status: CacheStatus) {
    let Some(route) = record.route() else {
        return;
    };
    let preflight = record.kind() == RequestKind::Preflight;
    state.count_cache_status(status, preflight);
    route.metrics.request(
        record.traffic(),
        status,
        record.started.elapsed().as_secs_f64(),
    );
    if let Some(outcome) = record.cors_outcome {
        route.metrics.cors_decision(outcome);
    }
    if preflight && route.cors_mode == CorsMode::Upstream {
        route.metrics.preflight(if status.is_hit() {
            PreflightResult::Hit
        } else {
            PreflightResult::Miss
        });
    }
}

/// The request's access log line, from its record (`log.access`; nothing when it is off).
pub fn log_access(
    state: &SharedState,
    session: &ServerSession,
    record: &RequestRecord,
    status: CacheStatus,
) {
    let Some(access_log) = &state.access_log else {
        return;
    };
    let req = session.req_header();
    let response = session.response_written();
    let target = record.target();
    let host = target.map_or("", |t| t.host.as_str());
    let origin = record.origin().map(String::from_utf8_lossy);
    let owner =
        (record.peer.hop != cors_edge_core::cluster::Hop::Alone).then(|| record.peer.owner_label());
    access_log.log(&AccessRecord {
        time: record.started_at,
        client: session
            .client_addr()
            .and_then(|addr| addr.as_inet())
            .map(|addr| addr.ip()),
        method: req.method.as_str(),
        host,
        // A target refused by the request-target rule is logged as received.
        path_and_query: &target.map_or_else(
            || String::from_utf8_lossy(req.raw_path()),
            |t| std::borrow::Cow::Borrowed(t.path_and_query.as_str()),
        ),
        status: response.map_or(0, |response| response.status.as_u16()),
        bytes_sent: session.body_bytes_sent() as u64,
        duration: record.started.elapsed(),
        upstream_duration: record.upstream_duration,
        route: record.route().map(|route| route.name.as_str()),
        cache_status: status,
        kind: record.traffic(),
        origin: origin.as_deref(),
        cors_decision: record.cors_outcome,
        unsafe_reasons: record.unsafe_reasons(),
        owner: owner.as_deref(),
    });
}
