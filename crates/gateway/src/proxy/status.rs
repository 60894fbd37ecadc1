//! The request's cache status (`X-Cache`, the metrics' and the log's `cache` label): decided by
//! one function, from who answered and Pingora's cache phase, remembered on the record the
//! first time an answer goes out, and written by one helper.

use cors_edge_core::freshness::HitAction;
use cors_edge_core::outcome::CacheStatus;
use http::header::{HeaderName, HeaderValue};
use pingora::cache::{CachePhase, NoCacheReason};
use pingora::http::ResponseHeader;

use super::record::RequestRecord;

pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// Who produced the answer, as far as the cache status depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Answerer {
    /// Pingora's proxy path (its cache phase tells), or the gateway's own answer on it (a
    /// refusal, `only-if-cached`, an error).
    #[default]
    Proxy,
    /// A fresh stored answer served from `request_filter` (`direct_hit`).
    DirectHit,
    /// A preflight answered by the edge policy from memory: a hit, it never reaches the
    /// upstream.
    EdgePolicy,
    /// The error answer of a failed proxy attempt: whatever the cache phase, the answer did
    /// not come from the cache.
    Failure,
}

/// The cache status of an answer. `looked_up`: the cache was consulted, so an answer that did
/// not come from it is a MISS, not a BYPASS. `verdict`: the request's verdict on the stored
/// answer (a stale one the client accepted with `max-stale` is served as fresh by Pingora,
/// and reported as STALE).
pub fn decide(
    answerer: Answerer,
    phase: &CachePhase,
    looked_up: bool,
    verdict: Option<HitAction>,
) -> CacheStatus {
    match answerer {
        Answerer::DirectHit | Answerer::EdgePolicy => return CacheStatus::Hit,
        Answerer::Failure if looked_up => return CacheStatus::Miss,
        Answerer::Failure => return CacheStatus::Bypass,
        Answerer::Proxy => {}
    }
    match phase {
        CachePhase::Hit if verdict == Some(HitAction::ServeStale) => CacheStatus::Stale,
        CachePhase::Hit => CacheStatus::Hit,
        CachePhase::Stale | CachePhase::StaleUpdating => CacheStatus::Stale,
        CachePhase::Expired => CacheStatus::Expired,
        CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) => CacheStatus::Revalidated,
        CachePhase::Miss => CacheStatus::Miss,
        _ if looked_up => CacheStatus::Miss,
        _ => CacheStatus::Bypass,
    }
}

/// Pingora's cache phase before `request_cache_filter`: the phase of every answer the gateway
/// gives before the cache is consulted (in `request_filter`, or in front of the proxy).
pub const NOT_CONSULTED: CachePhase = CachePhase::Disabled(NoCacheReason::NeverEnabled);

/// The request's cache status: decided once, when the first answer header goes out, and read
/// from the record after (by the log and the metrics). `phase`: Pingora's cache phase then.
pub fn of(phase: CachePhase, record: &mut RequestRecord) -> CacheStatus {
    if let Some(status) = record.cache_status {
        return status;
    }
    let status = decide(
        record.answerer,
        &phase,
        record.looked_up,
        record.hit_action(),
    );
    record.cache_status = Some(status);
    status
}

/// Writes `X-Cache` on an answer.
pub fn write(resp: &mut ResponseHeader, status: CacheStatus) {
    if let Err(e) = resp.insert_header(X_CACHE, HeaderValue::from_static(status.as_str())) {
        tracing::warn!("cannot set x-cache: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        use Answerer::*;
        use CacheStatus as S;
        let serve_stale = Some(HitAction::ServeStale);
        let cases: [(Answerer, CachePhase, bool, Option<HitAction>, CacheStatus); 16] = [
            (Failure, CachePhase::Expired, true, None, S::Miss),
            (
                Failure,
                CachePhase::Disabled(NoCacheReason::NeverEnabled),
                false,
                None,
                S::Bypass,
            ),
            (
                DirectHit,
                CachePhase::Disabled(NoCacheReason::NeverEnabled),
                true,
                None,
                S::Hit,
            ),
            (
                EdgePolicy,
                CachePhase::Disabled(NoCacheReason::NeverEnabled),
                false,
                None,
                S::Hit,
            ),
            (Proxy, CachePhase::Hit, true, None, S::Hit),
            (Proxy, CachePhase::Hit, true, Some(HitAction::Serve), S::Hit),
            (Proxy, CachePhase::Hit, true, serve_stale, S::Stale),
            (Proxy, CachePhase::Stale, true, None, S::Stale),
            (Proxy, CachePhase::StaleUpdating, true, None, S::Stale),
            (Proxy, CachePhase::Expired, true, None, S::Expired),
            (Proxy, CachePhase::Revalidated, true, None, S::Revalidated),
            (
                Proxy,
                CachePhase::RevalidatedNoCache(NoCacheReason::OriginNotCache),
                true,
                None,
                S::Revalidated,
            ),
            (Proxy, CachePhase::Miss, true, None, S::Miss),
            // Looked up, then the answer came from elsewhere (only-if-cached, an error).
            (Proxy, CachePhase::Uninit, true, None, S::Miss),
            (
                Proxy,
                CachePhase::Disabled(NoCacheReason::NeverEnabled),
                true,
                None,
                S::Miss,
            ),
            // Never consulted: a refusal, an uncacheable request.
            (
                Proxy,
                CachePhase::Disabled(NoCacheReason::NeverEnabled),
                false,
                None,
                S::Bypass,
            ),
        ];
        for (i, (answerer, phase, looked_up, verdict, expected)) in cases.iter().enumerate() {
            assert_eq!(
                decide(*answerer, phase, *looked_up, *verdict),
                *expected,
                "case {i}"
            );
        }
    }
}
