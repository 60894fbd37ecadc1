//! What a finished request leaves behind, read from its record: the route's counters and
//! histograms, the `/stats` counters.

use cors_edge_core::cors::RequestKind;
use cors_edge_core::outcome::{CacheStatus, PreflightResult};

use super::record::RequestRecord;
use crate::runtime::CorsMode;
use crate::state::SharedState;

pub fn request_done(state: &SharedState, record: &RequestRecord, status: CacheStatus) {
    let Some(route) = &record.route else {
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
