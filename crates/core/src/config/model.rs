//! The config file's shape. Every struct refuses unknown keys, so a typo such as `max_byte`
//! is an error instead of a silently ignored setting, and every optional key has the default
//! documented on its field (and in `config/example.yaml`).
//!
//! Nothing here parses YAML: the loader (`load.rs`) is the only code that knows the format, so
//! these types stay usable by code that builds a config directly (the `demo` command, tests).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::cluster::ClusterConfig;
use super::compression::CompressionConfig;
use super::cors::CorsConfig;
use super::log::LogConfig;
use crate::units::{ByteSize, DurationValue};

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping of settings (listen, admin, cache, upstreams, routes, tls, cluster, server, log)"
)]
pub struct Config {
    /// Plain-HTTP listen addresses (`ip:port`). Default `["0.0.0.0:8080"]`. A single string is
    /// accepted for a single address.
    #[serde(deserialize_with = "one_or_many")]
    pub listen: Vec<String>,
    /// The admin API listener. Always on; by default on loopback only.
    pub admin: AdminConfig,
    /// Bounds and defaults of the shared in-memory cache.
    pub cache: CacheConfig,
    /// Backends by name; routes refer to them by that name.
    #[serde(deserialize_with = "unique_map")]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Tried in order by the gateway; see [`RouteConfig`].
    pub routes: Vec<RouteConfig>,
    /// Optional TLS listener (HTTP/2 negotiated by ALPN).
    pub tls: Option<TlsConfig>,
    /// Optional purge fan-out between nodes through Redis pub/sub.
    pub cluster: Option<ClusterConfig>,
    /// Process settings. Not in the SPEC example; needed because Pingora's graceful stop
    /// otherwise waits 300s before exiting.
    pub server: ServerConfig,
    /// The access log; off unless `log.access` is given.
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec!["0.0.0.0:8080".to_string()],
            admin: AdminConfig::default(),
            cache: CacheConfig::default(),
            upstreams: BTreeMap::new(),
            routes: Vec::new(),
            tls: None,
            cluster: None,
            server: ServerConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Config {
    /// Whether the admin API listens on a loopback address only. Off loopback, the gateway must
    /// refuse to start unless the token env var is set (validation only checks its name).
    pub fn admin_is_loopback(&self) -> bool {
        self.admin.is_loopback()
    }

    pub fn upstream(&self, name: &str) -> Option<&UpstreamConfig> {
        self.upstreams.get(name)
    }

    pub fn route(&self, name: &str) -> Option<&RouteConfig> {
        self.routes.iter().find(|route| route.name == name)
    }
}

/// `admin:`: the purge / metrics / health / reload API, on its own listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with listen and token_env"
)]
pub struct AdminConfig {
    /// Default `127.0.0.1:9901`.
    pub listen: String,
    /// Name of the environment variable holding the bearer token (not the token itself, so the
    /// config file can be shared). Default `CORS_EDGE_ADMIN_TOKEN`. On loopback an unset or
    /// empty variable means no token is required; off loopback it must be set.
    pub token_env: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:9901".to_string(),
            token_env: "CORS_EDGE_ADMIN_TOKEN".to_string(),
        }
    }
}

impl AdminConfig {
    /// False when `listen` is not a loopback socket address, including when it does not parse:
    /// the unsafe answer is the conservative one.
    pub fn is_loopback(&self) -> bool {
        self.listen
            .parse::<SocketAddr>()
            .is_ok_and(|addr| addr.ip().is_loopback())
    }
}

/// `cache:`: bounds of the in-memory cache and freshness defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping of cache settings"
)]
pub struct CacheConfig {
    /// Hard bound on cached bytes, bodies and headers together. Default `256MiB`.
    pub max_bytes: ByteSize,
    /// Variants (origins, `Vary` values) stored per primary key; past it a response is served
    /// but not stored, so one URL cannot be used to flood the cache. Default 64.
    pub max_variants: usize,
    /// Used when the upstream's `Cache-Control` gives no `stale-while-revalidate`. Default 10s.
    pub stale_while_revalidate: DurationValue,
    /// Used when the upstream's `Cache-Control` gives no `stale-if-error`. Default 60s.
    pub stale_if_error: DurationValue,
    /// Responses larger than this stream through uncached, so one huge download cannot evict
    /// the whole cache. Unset: `8MiB`, or `max_bytes` when the cache is smaller (see
    /// [`CacheConfig::object_limit`]).
    pub max_object_bytes: Option<ByteSize>,
    /// How long a request waits for another request already fetching the same key (miss
    /// coalescing) before going upstream itself. Default 5s.
    pub lock_timeout: DurationValue,
    /// How long a failed or denied preflight answer is cached; short, so fixing the upstream or
    /// the policy takes effect quickly. `0s` disables it. Default 5s.
    pub negative_preflight_ttl: DurationValue,
    /// Targeted cache-control fields (RFC 9213), in order of preference: the first one present
    /// and valid in a response replaces its `Cache-Control` and `Expires` for this cache's own
    /// storage and freshness decisions. Default `[CDN-Cache-Control]`; an empty list turns
    /// targeted fields off.
    pub targeted_fields: Vec<String>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_bytes: ByteSize::mib(256),
            max_variants: 64,
            stale_while_revalidate: DurationValue::from_secs(10),
            stale_if_error: DurationValue::from_secs(60),
            max_object_bytes: None,
            lock_timeout: DurationValue::from_secs(5),
            negative_preflight_ttl: DurationValue::from_secs(5),
            targeted_fields: vec!["CDN-Cache-Control".to_owned()],
        }
    }
}

impl CacheConfig {
    /// The largest response stored: `max_object_bytes`, else 8 MiB capped at `max_bytes` (a
    /// small cache without the setting must not be refused for the default).
    pub fn object_limit(&self) -> ByteSize {
        self.max_object_bytes.unwrap_or_else(|| {
            let default = ByteSize::mib(8);
            if self.max_bytes.as_u64() > 0 {
                default.min(self.max_bytes)
            } else {
                default
            }
        })
    }
}

/// One entry of `upstreams:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with servers and optional timeouts"
)]
pub struct UpstreamConfig {
    /// `host:port` of each server (round-robin). Required, at least one.
    #[serde(deserialize_with = "one_or_many")]
    pub servers: Vec<String>,
    /// Default 1s.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: DurationValue,
    /// Longest wait for the next bytes of a response. Default 10s.
    #[serde(default = "default_read_timeout")]
    pub read_timeout: DurationValue,
    /// Active health checking; absent means servers are never taken out of rotation.
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
}

fn default_connect_timeout() -> DurationValue {
    DurationValue::from_secs(1)
}

fn default_read_timeout() -> DurationValue {
    DurationValue::from_secs(10)
}

impl UpstreamConfig {
    /// An upstream with the given servers and default timeouts.
    pub fn new<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> Self {
        UpstreamConfig {
            servers: servers.into_iter().map(Into::into).collect(),
            connect_timeout: default_connect_timeout(),
            read_timeout: default_read_timeout(),
            health_check: None,
        }
    }
}

/// `upstreams.NAME.health_check:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with interval and path"
)]
pub struct HealthCheckConfig {
    /// Default 5s.
    pub interval: DurationValue,
    /// With a path, an HTTP `GET` that must answer 2xx; without, a TCP connect.
    pub path: Option<String>,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            interval: DurationValue::from_secs(5),
            path: None,
        }
    }
}

/// One entry of `routes:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a route: a mapping with name, match, upstream, cache, cors and strip_request_headers"
)]
pub struct RouteConfig {
    /// Unique; appears in metrics labels and cache keys.
    pub name: String,
    /// Which requests this route takes. Default: every host, every path.
    #[serde(rename = "match", default)]
    pub matcher: RouteMatch,
    /// Name of an entry in `upstreams`.
    pub upstream: String,
    #[serde(default)]
    pub cache: RouteCacheConfig,
    #[serde(default)]
    pub cors: CorsConfig,
    #[serde(default)]
    pub compression: CompressionConfig,
    /// Every answer on this route carries `X-Cors-Edge-Debug` (the key, variance, CORS and
    /// freshness facts); otherwise only requests that send the admin token in that header get
    /// it. For staging routes; default false.
    #[serde(default)]
    pub debug: bool,
    /// Request headers never sent to the upstream (besides the override headers the gateway
    /// always drops, see `crate::forwarding`). Names are case-insensitive. Default none.
    #[serde(default)]
    pub strip_request_headers: Vec<String>,
}

impl RouteConfig {
    /// The forwarding rule for this route, with the trusted networks of `server`.
    pub fn forwarding_policy(&self, server: &ServerConfig) -> crate::forwarding::ForwardingPolicy {
        crate::forwarding::ForwardingPolicy {
            trusted_proxies: server.trusted_networks(),
            strip_request_headers: self
                .strip_request_headers
                .iter()
                .map(|name| name.trim().to_ascii_lowercase())
                .collect(),
        }
    }
}

/// `routes[].match:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with host and path_prefix"
)]
pub struct RouteMatch {
    /// Request host (without port); absent matches every host.
    pub host: Option<String>,
    /// Must start with `/`. Default `/`.
    pub path_prefix: String,
}

impl Default for RouteMatch {
    fn default() -> Self {
        RouteMatch {
            host: None,
            path_prefix: "/".to_string(),
        }
    }
}

/// `routes[].cache:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with enabled, max_ttl, key_headers and key_query"
)]
pub struct RouteCacheConfig {
    /// Default true. False: every request is `X-Cache: BYPASS`.
    pub enabled: bool,
    /// Upper bound on freshness whatever the upstream says; also caps how long preflight
    /// answers are cached. Absent: no cap.
    pub max_ttl: Option<DurationValue>,
    /// Request headers the stored responses of this route depend on although the upstream does
    /// not say so in `Vary` (a tenant header, a trusted proxy's `X-Forwarded-Host`): each value
    /// is a variant of its own, as if the response had `Vary` on them, within
    /// `cache.max_variants`. Names are case-insensitive. Default none.
    pub key_headers: Vec<String>,
    /// How the query enters the key (sorted, parameters ignored or kept); absent: as sent.
    /// The upstream always receives the query the client sent.
    pub key_query: Option<super::key_query::KeyQueryConfig>,
}

impl Default for RouteCacheConfig {
    fn default() -> Self {
        RouteCacheConfig {
            enabled: true,
            max_ttl: None,
            key_headers: Vec::new(),
            key_query: None,
        }
    }
}

impl RouteCacheConfig {
    /// `key_headers` lower-cased, as the variance names them.
    pub fn key_header_names(&self) -> Vec<String> {
        self.key_headers
            .iter()
            .map(|name| name.trim().to_ascii_lowercase())
            .collect()
    }
}

/// `tls:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with listen, cert and key")]
pub struct TlsConfig {
    /// Default `["0.0.0.0:8443"]`.
    #[serde(default = "default_tls_listen", deserialize_with = "one_or_many")]
    pub listen: Vec<String>,
    /// PEM certificate chain. Required. Read by the gateway at startup, not by validation.
    pub cert: PathBuf,
    /// PEM private key. Required.
    pub key: PathBuf,
}

fn default_tls_listen() -> Vec<String> {
    vec!["0.0.0.0:8443".to_string()]
}

/// `server:`: process settings (not in the SPEC example).
///
/// On a graceful stop (SIGTERM, or SIGQUIT for an upgrade) Pingora sleeps its whole grace
/// period, 300s unless configured, even when no request is in flight; for a cache restarted by
/// every deploy that is far too long, so the period is exposed here with a short default.
///
/// The connection limits are nginx's `client_header_timeout`, `keepalive_timeout` and
/// `worker_connections`; Pingora's own defaults (60s for a request head, no cap on
/// connections) let a few thousand half-sent requests hold memory and file descriptors for a
/// minute each.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with threads, grace_period, shutdown_timeout, header_timeout, idle_timeout, max_connections and trusted_proxies"
)]
pub struct ServerConfig {
    /// Worker threads. Absent: one per CPU (see [`ServerConfig::threads_or_default`]).
    pub threads: Option<usize>,
    /// After a graceful stop signal, how long in-flight requests get to finish before the
    /// runtimes are shut down (Pingora's `grace_period_seconds`, rounded up to whole seconds).
    /// Default 5s; `0s` stops at once.
    pub grace_period: DurationValue,
    /// Then how long the runtimes get to wind down (Pingora's
    /// `graceful_shutdown_timeout_seconds`). Default 5s.
    pub shutdown_timeout: DurationValue,
    /// The whole request head (request line and header fields) must arrive within this time of
    /// its first byte (of the connection, for a new one); otherwise the connection is closed
    /// with `408`. Default 10s: a real client sends its head in one round trip, and Pingora's
    /// 60s (nginx's `client_header_timeout` is 60s too) lets a slow-loris client hold a
    /// connection six times longer; CDNs close at about 10s.
    pub header_timeout: DurationValue,
    /// How long a keep-alive connection may wait for its next request. Default 60s (Pingora's
    /// and nginx's order of magnitude; an idle connection costs a few KiB here).
    pub idle_timeout: DurationValue,
    /// Open client connections (plain and TLS together) beyond which a new connection is closed
    /// at once, without a response, and counted in `cors_edge_connections_refused_total`;
    /// connections already open are not affected. Default 10000; keep it under the process's
    /// file limit (`ulimit -n`), which upstream connections share.
    pub max_connections: usize,
    /// Networks (`10.0.0.0/8`, `2001:db8::/32`, a single address) of proxies in front of the
    /// gateway whose `X-Forwarded-*`, `Forwarded` and `X-Real-IP` are kept (and extended). From
    /// any other peer those headers are replaced by the gateway's own values. Default: none,
    /// an edge node.
    #[serde(deserialize_with = "one_or_many")]
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            threads: None,
            grace_period: DurationValue::from_secs(5),
            shutdown_timeout: DurationValue::from_secs(5),
            header_timeout: DurationValue::from_secs(10),
            idle_timeout: DurationValue::from_secs(60),
            max_connections: 10_000,
            trusted_proxies: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// `threads`, or the number of CPUs available to the process (2 if that is unknown).
    pub fn threads_or_default(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2)
        })
    }

    /// The valid entries of `trusted_proxies` (validation reports the others).
    pub fn trusted_networks(&self) -> Vec<crate::forwarding::Cidr> {
        self.trusted_proxies
            .iter()
            .filter_map(|entry| crate::forwarding::parse_cidr(entry).ok())
            .collect()
    }
}

/// Accepts `"a"` as well as `["a", "b"]`: a single listen address is the common case.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct OneOrMany;

    impl<'de> Visitor<'de> for OneOrMany {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(vec![v.to_string()])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                items.push(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_any(OneOrMany)
}

/// A map that refuses a key given twice: a plain `BTreeMap` would keep the last one and
/// silently drop the first upstream.
fn unique_map<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct UniqueMap<V>(std::marker::PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMap<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping from names to settings")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            // `upstreams:` with nothing under it; validation reports the missing upstreams.
            Ok(BTreeMap::new())
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key_seed(NewKey(&out))? {
                let value = map.next_value::<V>()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    /// Checks for a repeat while the key itself is being read, so the error carries the
    /// repeated key's line rather than the mapping's.
    struct NewKey<'m, V>(&'m BTreeMap<String, V>);

    impl<'de, V> DeserializeSeed<'de> for NewKey<'_, V> {
        type Value = String;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
            deserializer.deserialize_str(self)
        }
    }

    // The check runs in the visitor, inside the key's own deserialization: that is where
    // the YAML deserializer attaches the key's position to an error.
    impl<V> Visitor<'_> for NewKey<'_, V> {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a name")
        }

        fn visit_str<E: de::Error>(self, key: &str) -> Result<String, E> {
            if self.0.contains_key(key) {
                return Err(E::custom(format!(
                    "{key:?} is defined twice; each name must be unique"
                )));
            }
            Ok(key.to_string())
        }
    }

    deserializer.deserialize_map(UniqueMap(std::marker::PhantomData))
}
