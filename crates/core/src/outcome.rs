//! What the gateway decided about a request, as closed sets of values: the cache status it
//! reports in `X-Cache`, the kind of traffic, the CORS decision and the preflight result. Each
//! is an enum with its label and the list of every value, so metrics can be registered at 0
//! before the first request and nothing is ever compared as a string.

use crate::cors::{AllowOrigin, Decision, RequestKind};

/// How the cache answered (`X-Cache`, `requests_total{cache}`, the access log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheStatus {
    /// A stored answer served without asking the upstream (also a preflight answered by the
    /// edge policy in memory).
    Hit,
    /// A stored answer served stale (stale-while-revalidate, stale-if-error, `max-stale`).
    Stale,
    /// A stored answer was found expired and was replaced by a new fetch.
    Expired,
    /// A stored answer was validated with the upstream (304) and served.
    Revalidated,
    /// The cache was consulted and had nothing usable.
    Miss,
    /// The cache was not consulted (not cacheable, no route, an error answer).
    Bypass,
}

impl CacheStatus {
    pub const ALL: [CacheStatus; 6] = [
        CacheStatus::Hit,
        CacheStatus::Miss,
        CacheStatus::Stale,
        CacheStatus::Expired,
        CacheStatus::Revalidated,
        CacheStatus::Bypass,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Stale => "STALE",
            CacheStatus::Expired => "EXPIRED",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Miss => "MISS",
            CacheStatus::Bypass => "BYPASS",
        }
    }

    /// Position in [`CacheStatus::ALL`], for tables of pre-resolved counters.
    pub fn index(self) -> usize {
        match self {
            CacheStatus::Hit => 0,
            CacheStatus::Miss => 1,
            CacheStatus::Stale => 2,
            CacheStatus::Expired => 3,
            CacheStatus::Revalidated => 4,
            CacheStatus::Bypass => 5,
        }
    }

    /// Answered from storage without a full upstream fetch: `/stats` hits.
    pub fn is_hit(self) -> bool {
        matches!(self, CacheStatus::Hit | CacheStatus::Stale)
    }

    /// Went to the upstream for a cacheable request: `/stats` misses.
    pub fn is_miss(self) -> bool {
        matches!(
            self,
            CacheStatus::Miss | CacheStatus::Expired | CacheStatus::Revalidated
        )
    }
}

/// The kind of traffic, as labelled in `requests_total{kind}` and the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrafficKind {
    /// GET or HEAD that is not a preflight, with or without `Origin`.
    Simple,
    /// A CORS preflight.
    Preflight,
    /// Any other method.
    Other,
}

impl TrafficKind {
    pub const ALL: [TrafficKind; 3] = [
        TrafficKind::Simple,
        TrafficKind::Preflight,
        TrafficKind::Other,
    ];

    pub fn of(kind: RequestKind, method: &str) -> TrafficKind {
        match (kind, method) {
            (RequestKind::Preflight, _) => TrafficKind::Preflight,
            (_, "GET" | "HEAD") => TrafficKind::Simple,
            _ => TrafficKind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TrafficKind::Simple => "simple",
            TrafficKind::Preflight => "preflight",
            TrafficKind::Other => "other",
        }
    }

    /// Position in [`TrafficKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// `cors_decisions_total{decision}`: the policy's decision in edge mode; in upstream mode what
/// the upstream's answer granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorsOutcome {
    /// Edge mode: the policy's decision.
    Policy(Decision),
    /// Upstream mode, a request with `Origin` answered without ACAO.
    UpstreamNone,
    /// Upstream mode, `Access-Control-Allow-Origin: *`.
    UpstreamWildcard,
    /// Upstream mode, an ACAO naming an origin (or several values).
    UpstreamOrigin,
}

impl CorsOutcome {
    pub const ALL: [CorsOutcome; 10] = [
        CorsOutcome::Policy(Decision::Allowed),
        CorsOutcome::Policy(Decision::AllowedAny),
        CorsOutcome::Policy(Decision::NoOrigin),
        CorsOutcome::Policy(Decision::InvalidOrigin),
        CorsOutcome::Policy(Decision::DeniedOrigin),
        CorsOutcome::Policy(Decision::DeniedMethod),
        CorsOutcome::Policy(Decision::DeniedHeaders),
        CorsOutcome::UpstreamNone,
        CorsOutcome::UpstreamWildcard,
        CorsOutcome::UpstreamOrigin,
    ];

    /// Upstream mode: what the answer's ACAO granted a request with or without `Origin`.
    pub fn of_upstream(request_has_origin: bool, allow_origin: AllowOrigin) -> CorsOutcome {
        if !request_has_origin {
            return CorsOutcome::Policy(Decision::NoOrigin);
        }
        match allow_origin {
            AllowOrigin::Absent => CorsOutcome::UpstreamNone,
            AllowOrigin::Any => CorsOutcome::UpstreamWildcard,
            AllowOrigin::Named | AllowOrigin::Multiple => CorsOutcome::UpstreamOrigin,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CorsOutcome::Policy(decision) => decision.as_str(),
            CorsOutcome::UpstreamNone => "upstream_none",
            CorsOutcome::UpstreamWildcard => "upstream_wildcard",
            CorsOutcome::UpstreamOrigin => "upstream_origin",
        }
    }

    /// Position in [`CorsOutcome::ALL`].
    pub fn index(self) -> usize {
        CorsOutcome::ALL
            .iter()
            .position(|known| *known == self)
            .unwrap_or(0)
    }
}

/// `preflight_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PreflightResult {
    /// Upstream mode: answered from the cache.
    Hit,
    /// Upstream mode: asked the upstream.
    Miss,
    /// Edge mode: granted by the policy.
    Answered,
    /// Edge mode: refused by the policy.
    Denied,
}

impl PreflightResult {
    pub const ALL: [PreflightResult; 4] = [
        PreflightResult::Hit,
        PreflightResult::Miss,
        PreflightResult::Answered,
        PreflightResult::Denied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PreflightResult::Hit => "hit",
            PreflightResult::Miss => "miss",
            PreflightResult::Answered => "answered",
            PreflightResult::Denied => "denied",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_the_all_lists() {
        for (i, status) in CacheStatus::ALL.iter().enumerate() {
            assert_eq!(status.index(), i, "{status:?}");
        }
        for (i, kind) in TrafficKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind:?}");
        }
        for (i, outcome) in CorsOutcome::ALL.iter().enumerate() {
            assert_eq!(outcome.index(), i, "{outcome:?}");
        }
        for (i, result) in PreflightResult::ALL.iter().enumerate() {
            assert_eq!(result.index(), i, "{result:?}");
        }
    }

    #[test]
    fn labels_are_distinct() {
        let labels: std::collections::HashSet<&str> =
            CorsOutcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(labels.len(), CorsOutcome::ALL.len());
        let labels: std::collections::HashSet<&str> =
            CacheStatus::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(labels.len(), CacheStatus::ALL.len());
    }

    #[test]
    fn hits_and_misses_for_stats() {
        let hits: Vec<_> = CacheStatus::ALL.iter().filter(|s| s.is_hit()).collect();
        assert_eq!(hits, [&CacheStatus::Hit, &CacheStatus::Stale]);
        let misses: Vec<_> = CacheStatus::ALL.iter().filter(|s| s.is_miss()).collect();
        assert_eq!(
            misses,
            [
                &CacheStatus::Miss,
                &CacheStatus::Expired,
                &CacheStatus::Revalidated
            ]
        );
        assert!(!CacheStatus::Bypass.is_hit() && !CacheStatus::Bypass.is_miss());
    }

    #[test]
    fn traffic_kinds() {
        assert_eq!(
            TrafficKind::of(RequestKind::Preflight, "OPTIONS"),
            TrafficKind::Preflight
        );
        assert_eq!(TrafficKind::of(RequestKind::Cors, "GET"), TrafficKind::Simple);
        assert_eq!(TrafficKind::of(RequestKind::NoOrigin, "HEAD"), TrafficKind::Simple);
        assert_eq!(TrafficKind::of(RequestKind::Cors, "POST"), TrafficKind::Other);
        assert_eq!(
            TrafficKind::of(RequestKind::PlainOptions, "OPTIONS"),
            TrafficKind::Other
        );
    }

    #[test]
    fn upstream_outcomes() {
        use AllowOrigin::*;
        let cases = [
            (false, Named, "no_origin"),
            (true, Absent, "upstream_none"),
            (true, Any, "upstream_wildcard"),
            (true, Named, "upstream_origin"),
            (true, Multiple, "upstream_origin"),
        ];
        for (has_origin, acao, label) in cases {
            assert_eq!(
                CorsOutcome::of_upstream(has_origin, acao).as_str(),
                label,
                "{has_origin} {acao:?}"
            );
        }
    }
}
