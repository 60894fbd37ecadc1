//! The running configuration: routes with their compiled CORS policies and upstream pools,
//! built from a validated [`Config`]. A reload builds a new `Runtime` and swaps it in; requests
//! in flight keep the one they started with.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cors_edge_core::config::Config;
use cors_edge_core::cors::CorsPolicy;
use cors_edge_core::forwarding::ForwardingPolicy;
use pingora::lb::health_check::{HttpHealthCheck, TcpHealthCheck};
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use thiserror::Error;

use crate::metrics::RouteMetrics;

/// Who answers CORS for a route: the config's own type, used as loaded.
pub use cors_edge_core::config::CorsMode;

pub struct Upstream {
    pub name: String,
    pub pool: LoadBalancer<RoundRobin>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub health_interval: Duration,
}

pub struct Route {
    pub name: String,
    pub host: Option<String>,
    pub path_prefix: String,
    pub upstream: Arc<Upstream>,
    pub cache_enabled: bool,
    pub max_ttl: Option<Duration>,
    pub cors_mode: CorsMode,
    pub vary_origin_always: bool,
    /// Every answer carries the debug header (`routes[].debug`).
    pub debug: bool,
    pub policy: CorsPolicy,
    pub metrics: Arc<RouteMetrics>,
    /// Which client headers reach the upstream (`server.trusted_proxies`,
    /// `strip_request_headers`); see `cors_edge_core::forwarding`.
    pub forwarding: ForwardingPolicy,
    /// `cache.key_headers`, lower-cased: part of every stored response's variance.
    pub key_headers: Vec<String>,
    /// `cache.key_query`: how the query enters the key (none: as sent).
    pub key_query: Option<cors_edge_core::key_query::KeyQuery>,
    /// `compression`: which answers are compressed, and how hard.
    pub compression: cors_edge_core::compression::CompressionPolicy,
}

pub struct CacheSettings {
    pub max_variants: u32,
    pub max_object_bytes: usize,
    pub default_stale_while_revalidate: Duration,
    pub default_stale_if_error: Duration,
    pub negative_preflight_ttl: Duration,
    /// `cache.targeted_fields`, in order (names validated at load).
    pub targeted_fields: Vec<http::HeaderName>,
}

pub struct Runtime {
    pub config: Arc<Config>,
    pub routes: Vec<Arc<Route>>,
    pub upstreams: Vec<Arc<Upstream>>,
    pub cache: CacheSettings,
}

#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error("upstream {upstream}: server {server:?} cannot be resolved: {reason}")]
    Resolve {
        upstream: String,
        server: String,
        reason: String,
    },
    #[error("route {route}: {reason}")]
    Route { route: String, reason: String },
    /// A value validation accepted that the runtime cannot use: the two rules disagree.
    #[error("{key}: {reason}")]
    Config { key: String, reason: String },
}

impl Runtime {
    pub fn build(
        config: Arc<Config>,
        route_metrics: &mut RouteMetricsCache,
    ) -> Result<Self, RuntimeError> {
        let mut upstreams: HashMap<String, Arc<Upstream>> = HashMap::new();
        for (name, settings) in &config.upstreams {
            let mut pool = LoadBalancer::<RoundRobin>::try_from_iter(
                settings.servers.iter().map(String::as_str),
            )
            .map_err(|e| RuntimeError::Resolve {
                upstream: name.clone(),
                server: settings.servers.join(", "),
                reason: e.to_string(),
            })?;
            let health_interval = match &settings.health_check {
                Some(check) => {
                    match &check.path {
                        Some(path) => {
                            let mut http = HttpHealthCheck::new("localhost", false);
                            http.req =
                                pingora::http::RequestHeader::build("GET", path.as_bytes(), None)
                                    .map_err(|e| RuntimeError::Config {
                                    key: format!("upstreams.{name}.health_check.path"),
                                    reason: e.to_string(),
                                })?;
                            pool.set_health_check(Box::new(http));
                        }
                        None => pool.set_health_check(TcpHealthCheck::new()),
                    }
                    check.interval.0
                }
                None => Duration::ZERO,
            };
            upstreams.insert(
                name.clone(),
                Arc::new(Upstream {
                    name: name.clone(),
                    pool,
                    connect_timeout: settings.connect_timeout.0,
                    read_timeout: settings.read_timeout.0,
                    health_interval,
                }),
            );
        }
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            let upstream =
                upstreams
                    .get(&route.upstream)
                    .cloned()
                    .ok_or_else(|| RuntimeError::Route {
                        route: route.name.clone(),
                        reason: format!("unknown upstream {:?}", route.upstream),
                    })?;
            let policy = route
                .cors
                .policy()
                .map_err(|e| RuntimeError::Route {
                    route: route.name.clone(),
                    reason: e.to_string(),
                })?
                .clone();
            routes.push(Arc::new(Route {
                name: route.name.clone(),
                host: route
                    .matcher
                    .host
                    .as_deref()
                    .map(cors_edge_core::key::normalize_host),
                path_prefix: route.matcher.path_prefix.clone(),
                upstream,
                cache_enabled: route.cache.enabled,
                max_ttl: route.cache.max_ttl.map(|d| d.0),
                cors_mode: route.cors.mode,
                vary_origin_always: route.cors.vary_origin_always,
                debug: route.debug,
                policy,
                metrics: route_metrics.get(&route.name),
                forwarding: route.forwarding_policy(&config.server),
                key_headers: route.cache.key_header_names(),
                key_query: route.cache.key_query.as_ref().map(|q| q.rule()),
                compression: route.compression.policy(),
            }));
        }
        let cache = CacheSettings {
            max_variants: u32::try_from(config.cache.max_variants).unwrap_or(u32::MAX),
            max_object_bytes: config.cache.object_limit().as_usize(),
            default_stale_while_revalidate: config.cache.stale_while_revalidate.0,
            default_stale_if_error: config.cache.stale_if_error.0,
            negative_preflight_ttl: config.cache.negative_preflight_ttl.0,
            targeted_fields: config
                .cache
                .targeted_fields
                .iter()
                .map(|name| {
                    http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                        RuntimeError::Config {
                            key: "cache.targeted_fields".to_string(),
                            reason: format!("{name:?}: {e}"),
                        }
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let upstreams = upstreams.into_values().collect();
        Ok(Runtime {
            config,
            routes,
            upstreams,
            cache,
        })
    }

    /// The route for a request: host must match when the route names one; the longest path
    /// prefix wins, and at equal length a route naming the host beats one that does not.
    pub fn route_for(&self, host: &str, path: &str) -> Option<&Arc<Route>> {
        let host = cors_edge_core::key::normalize_host(host);
        let host_without_port = strip_port(&host);
        self.routes
            .iter()
            .filter(|route| {
                route
                    .host
                    .as_deref()
                    .is_none_or(|h| h == host || h == host_without_port)
                    && path.starts_with(route.path_prefix.as_str())
            })
            .max_by_key(|route| (route.path_prefix.len(), route.host.is_some()))
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once("]:")
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Route metric handles survive reloads: prometheus refuses to register a series twice, and
/// a reload must not reset counters.
#[derive(Default)]
pub struct RouteMetricsCache {
    by_route: HashMap<String, Arc<RouteMetrics>>,
}

impl RouteMetricsCache {
    pub fn get(&mut self, route: &str) -> Arc<RouteMetrics> {
        self.by_route
            .entry(route.to_string())
            .or_insert_with(|| Arc::new(RouteMetrics::new(route)))
            .clone()
    }
}
