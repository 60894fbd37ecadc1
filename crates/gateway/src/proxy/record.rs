//! The request's record: every decision the gateway makes about a request, made once by the
//! hook that can make it and read by every hook after (and by the access log, the debug
//! header and the metrics). Pingora's per-request context.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cors_edge_core::compression::{Coding, Transform};
use cors_edge_core::cors::{RequestKind, UnsafeReason, UpstreamCors};
use cors_edge_core::freshness::{CacheControl, HitAction, NotStorable, RequestFreshness};
use cors_edge_core::outcome::{CacheStatus, CorsOutcome, TrafficKind};
use cors_edge_core::request_target::RequestTarget;
use cors_edge_store::PurgeTagSlot;
use http::{HeaderMap, HeaderValue};
use pingora::cache::key::HashBinary;
use pingora::cache::CacheKey;

use super::cluster_route::PeerFacts;
use super::encoder::Encoder;
use super::status::Answerer;
use crate::runtime::{CorsMode, Route, Runtime};

/// What the gateway knows about a routed request, computed once in `request_filter`.
pub struct RequestFacts {
    /// The CORS class (no origin, CORS, preflight, plain OPTIONS).
    pub kind: RequestKind,
    pub traffic: TrafficKind,
    /// `Origin`; several field lines are joined, which makes an invalid origin: such a request
    /// gets no CORS grant and a variant of its own.
    pub origin: Option<Vec<u8>>,
    /// `Origin` came in several field lines (or as a list): not an origin at all, so the
    /// answer carries no CORS grant whatever the upstream said.
    pub several_origins: bool,
    /// The host and origin-form path, from one parse of the request-target and `Host`.
    pub target: RequestTarget,
    /// Arrived over TLS: http and https answers are cached apart.
    pub tls: bool,
    /// The request's `Cache-Control`, parsed, when it sent one.
    pub cache_control: Option<CacheControl>,
    pub pragma_no_cache: bool,
    /// The cache stores and serves answers to it (route cache on, GET/HEAD, or a preflight
    /// in upstream mode).
    pub cacheable: bool,
    /// The answer carries the debug header (admin token sent, or the route's `debug`).
    pub debug: bool,
    /// The content coding chosen from `Accept-Encoding`: what the variance keys on, what goes
    /// upstream, what a compressible answer is encoded with.
    pub coding: Coding,
    /// Preflights: what they ask for. Read by the key, the edge policy and the debug header.
    pub preflight: Option<PreflightAsk>,
}

/// A preflight's `Access-Control-Request-Method` (as sent) and `Access-Control-Request-Headers`
/// (normalized: lower-case, sorted, deduplicated).
pub struct PreflightAsk {
    pub method: Vec<u8>,
    pub headers: String,
}

impl RequestFacts {
    /// The host the request is for, as sent.
    pub fn host(&self) -> &str {
        &self.target.host
    }

    /// The request says something about the freshness it accepts (`Cache-Control`, or
    /// `Pragma: no-cache`): the stored response's age must be judged against it, which the
    /// direct hit does not do.
    pub fn constrains_freshness(&self) -> bool {
        Self::constrains(self.cache_control.as_ref(), self.pragma_no_cache)
    }

    /// The rule of [`Self::constrains_freshness`], on the parts
    /// [`super::request_checks::freshness_asks`] reads.
    pub fn constrains(cache_control: Option<&CacheControl>, pragma_no_cache: bool) -> bool {
        cache_control.is_some() || pragma_no_cache
    }

    /// `only-if-cached` (RFC 9111 §5.2.1.7).
    pub fn only_if_cached(&self) -> bool {
        self.cache_control
            .as_ref()
            .is_some_and(|cc| cc.only_if_cached)
    }
}

/// The primary cache key and the parts it was made of, built once per request: lookups,
/// stores, the direct-hit path and invalidation after an unsafe method all use it.
pub struct KeyFacts {
    pub key: CacheKey,
    pub path: String,
    pub path_and_query: String,
}

/// The variance last computed, with the stored fields it came from: Pingora asks for the
/// variance of the same stored response more than once per request.
pub struct VarianceMemo {
    pub vary: Vec<HeaderValue>,
    pub acao: Vec<HeaderValue>,
    pub variance: Option<HashBinary>,
    /// One copy of that stored response serves every origin (`keys::shared_across_origins`).
    pub shared: bool,
    /// The request fields and values it was made of, for the debug header.
    pub parts: Vec<(Cow<'static, str>, Vec<u8>)>,
}

/// A routed request: the runtime it started with, its route, what it is and its key. Made
/// together in `request_filter`, once, so a hook either has all of them or none.
pub struct Routed {
    pub runtime: Arc<Runtime>,
    pub route: Arc<Route>,
    pub facts: RequestFacts,
    pub key: KeyFacts,
}

/// What the storage rules said about the response, for the debug header and the log.
#[derive(Debug, Clone, Copy)]
pub enum StorageVerdict {
    Stored { fresh_for: Duration },
    NotStored(NotStoredReason),
}

/// Why an answer was not stored: one of core's storage rules, or a limit of this cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStoredReason {
    /// RFC 9111's rules and the preflight rule ([`NotStorable`]).
    Rule(NotStorable),
    /// `cluster.local_ttl: 0s`: a non-owner keeps no local copy of the owner's answer.
    LocalTtlZero,
    /// The key already has `cache.max_variants` variants.
    MaxVariants,
    /// Encoded in a coding the request's variant was not keyed on (`Transform::storable`).
    ForeignCoding,
}

impl NotStoredReason {
    /// The label in the debug header and in Pingora's `NoCacheReason::Custom`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotStoredReason::Rule(reason) => reason.as_str(),
            NotStoredReason::LocalTtlZero => "local_ttl_0",
            NotStoredReason::MaxVariants => "max_variants",
            NotStoredReason::ForeignCoding => "foreign_coding",
        }
    }
}

pub struct RequestRecord {
    pub started: Instant,
    pub started_at: SystemTime,
    /// Set once the request has a route; none for a request refused before routing.
    pub routed: Option<Routed>,
    /// The parsed target of a request refused before routing (a routed request's is in its
    /// facts), for the access log.
    pub unrouted_target: Option<RequestTarget>,
    /// Upstream mode: the CORS facts of the upstream's response (set on the way back).
    pub response_cors: Option<UpstreamCors>,
    /// The request's verdict on the stored response it found.
    pub hit: Option<RequestFreshness>,
    pub storage: Option<StorageVerdict>,
    pub variance: Option<VarianceMemo>,
    /// Who produced the answer; with Pingora's cache phase, what the cache status is.
    pub answerer: Answerer,
    /// Decided once by [`super::status::of`], when the answer header goes out.
    pub cache_status: Option<CacheStatus>,
    pub cors_outcome: Option<CorsOutcome>,
    /// The cache was consulted (so an unstored response is a MISS, not a BYPASS).
    pub looked_up: bool,
    pub upstream_sent: Option<Instant>,
    /// The request sent upstream expects a body back (not a HEAD; Pingora turns a cacheable
    /// HEAD into a GET): compression encodes, and the cache stores, exactly this body.
    pub upstream_body_follows: bool,
    pub upstream_duration: Option<Duration>,
    pub connect_failures: usize,
    /// Headers of an upstream 304, merged into the stored response (RFC 9111 §4.3.4).
    pub not_modified: Option<HeaderMap>,
    pub purge_tags: Option<PurgeTagSlot>,
    /// What compression did to the upstream's answer (none when no upstream answer).
    pub compression: Option<Transform>,
    /// The body's encoder while a compressed answer streams from the upstream.
    pub encoder: Option<Encoder>,
    /// The sharded cache: the request's hop (decided once), failover.
    pub peer: PeerFacts,
    /// The front door ran this request's direct lookup and found nothing to serve: the proxy
    /// does not run it again.
    pub declined_at_front: bool,
}

impl RequestRecord {
    pub fn new() -> Self {
        RequestRecord {
            started: Instant::now(),
            started_at: SystemTime::now(),
            routed: None,
            unrouted_target: None,
            response_cors: None,
            hit: None,
            storage: None,
            variance: None,
            answerer: Answerer::Proxy,
            cache_status: None,
            cors_outcome: None,
            looked_up: false,
            upstream_sent: None,
            upstream_body_follows: false,
            upstream_duration: None,
            connect_failures: 0,
            not_modified: None,
            purge_tags: None,
            compression: None,
            encoder: None,
            peer: PeerFacts::default(),
            declined_at_front: false,
        }
    }

    /// The request's facts, when it was routed.
    pub fn facts(&self) -> Option<&RequestFacts> {
        self.routed.as_ref().map(|routed| &routed.facts)
    }

    /// The request's route, when it has one.
    pub fn route(&self) -> Option<&Arc<Route>> {
        self.routed.as_ref().map(|routed| &routed.route)
    }

    pub fn origin(&self) -> Option<&[u8]> {
        self.facts().and_then(|r| r.origin.as_deref())
    }

    /// The request's target and host, when its request-target parsed.
    pub fn target(&self) -> Option<&RequestTarget> {
        self.facts()
            .map(|facts| &facts.target)
            .or(self.unrouted_target.as_ref())
    }

    pub fn kind(&self) -> RequestKind {
        self.facts().map_or(RequestKind::NoOrigin, |r| r.kind)
    }

    pub fn traffic(&self) -> TrafficKind {
        self.facts().map_or(TrafficKind::Other, |r| r.traffic)
    }

    pub fn cors_mode(&self) -> Option<CorsMode> {
        self.route().map(|r| r.cors_mode)
    }

    /// The request's verdict on the stored answer: the one it recorded on Pingora's path, or
    /// `Serve` for a direct hit (taken only for fresh entries and requests that constrain
    /// nothing).
    pub fn hit_action(&self) -> Option<HitAction> {
        self.hit
            .map(|verdict| verdict.action)
            .or_else(|| (self.answerer == Answerer::DirectHit).then_some(HitAction::Serve))
    }

    /// The request forbids serving a stale copy: it asked for validation or for a fresher
    /// answer than the stored one (request `no-cache`, `max-age`, `min-fresh`).
    pub fn no_stale(&self) -> bool {
        self.hit.is_some_and(|v| v.action == HitAction::Revalidate)
    }

    /// `only-if-cached`, read from the request's `Cache-Control` (the hit verdict reports the
    /// same directive, parsed from the same field).
    pub fn only_if_cached(&self) -> bool {
        self.facts().is_some_and(RequestFacts::only_if_cached)
    }

    /// Whether one stored copy of the response with `headers` serves every origin, read from
    /// where it was worked out for this header set: the upstream answer's CORS facts on a miss,
    /// the variance of the stored answer on a hit; worked out here only when neither saw it.
    pub fn shared_across_origins(&self, route: &Route, headers: &HeaderMap) -> bool {
        if route.cors_mode == CorsMode::Edge {
            return true;
        }
        if let Some(facts) = &self.response_cors {
            return facts.shared_across_origins;
        }
        match &self.variance {
            Some(memo) if super::keys::memo_matches(memo, headers) => memo.shared,
            _ => super::keys::shared_across_origins(route, headers),
        }
    }

    pub fn unsafe_reasons(&self) -> &[UnsafeReason] {
        self.response_cors
            .as_ref()
            .map_or(&[], |facts| facts.unsafe_reasons.as_slice())
    }
}

impl Default for RequestRecord {
    fn default() -> Self {
        Self::new()
    }
}
