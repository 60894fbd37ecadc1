//! One builder for the gateway configs of the black-box tests.
//!
//! [`GatewayConfig::new`] is the config most tests run: the plain and admin listeners on port 0
//! (`{listen}`, `{admin}`, see [`crate::GatewayProcess::start`]), one upstream `api` and one
//! catch-all route `api` to it. Each method adds the part a test varies, so the call reads as the
//! config it makes:
//!
//! ```
//! # use cors_edge_tests::config::{GatewayConfig, Route};
//! # let upstream: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
//! let yaml = GatewayConfig::new(upstream)
//!     .cache("stale_while_revalidate: 0s")
//!     .route(Route::prefix("pass", "/pass/").cache("enabled: false"))
//!     .route_cache("max_ttl: 60s")
//!     .yaml();
//! assert!(yaml.contains("  - name: pass\n    match: { path_prefix: \"/pass/\" }\n"));
//! ```
//!
//! Settings given as text are the entries of a YAML flow mapping, as the config reference
//! (README, `config/example.yaml`) spells them: `"max_ttl: 60s"`, or several separated by
//! commas, `"enabled: true, max_ttl: 1h"`. Calling a method again adds entries to the same
//! block.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

/// A gateway config; [`GatewayConfig::yaml`] (or `to_string`) writes it.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    listen: String,
    admin: Vec<String>,
    server: Vec<String>,
    cache: Vec<String>,
    upstreams: Vec<UpstreamBlock>,
    routes: Vec<Route>,
    catch_all: Option<Route>,
    tls: Option<(String, String)>,
    access_log: Option<String>,
    cluster: Vec<String>,
}

#[derive(Clone, Debug)]
struct UpstreamBlock {
    name: String,
    server: String,
    settings: Vec<String>,
}

impl GatewayConfig {
    /// Upstream `api` at `upstream`, and the catch-all route `api` to it.
    pub fn new(upstream: SocketAddr) -> GatewayConfig {
        GatewayConfig::empty()
            .upstream("api", upstream)
            .catch_all(Route::new("api"))
    }

    /// The listeners only: no upstream and no route yet (add them with [`Self::upstream`] and
    /// [`Self::routes`]).
    pub fn empty() -> GatewayConfig {
        GatewayConfig {
            listen: "{listen}".to_string(),
            admin: vec!["listen: \"{admin}\"".to_string()],
            server: Vec::new(),
            cache: Vec::new(),
            upstreams: Vec::new(),
            routes: Vec::new(),
            catch_all: None,
            tls: None,
            access_log: None,
            cluster: Vec::new(),
        }
    }

    /// The plain listener's address instead of `{listen}` (port 0), e.g. to restart a node on
    /// the port it had.
    pub fn listen(mut self, addr: impl fmt::Display) -> Self {
        self.listen = addr.to_string();
        self
    }

    /// `admin.token_env`: the variable holding the admin token.
    pub fn admin_token_env(mut self, name: &str) -> Self {
        self.admin.push(format!("token_env: {name}"));
        self
    }

    /// Entries of `server:` (`"threads: 2, idle_timeout: 1s"`).
    pub fn server(mut self, entries: &str) -> Self {
        self.server.push(entries.to_string());
        self
    }

    /// Entries of the top-level `cache:` (`"stale_while_revalidate: 0s"`).
    pub fn cache(mut self, entries: &str) -> Self {
        self.cache.push(entries.to_string());
        self
    }

    /// Another upstream, `name` with the one server `addr`.
    pub fn upstream(mut self, name: &str, addr: SocketAddr) -> Self {
        self.upstreams.push(UpstreamBlock {
            name: name.to_string(),
            server: addr.to_string(),
            settings: Vec::new(),
        });
        self
    }

    /// Entries of the upstream added last (`api` for [`Self::new`]): `"read_timeout: 5s"`,
    /// `"health_check: { interval: 1s, path: /healthz }"`.
    pub fn upstream_settings(mut self, entries: &str) -> Self {
        self.upstreams
            .last_mut()
            .expect("upstream_settings: no upstream yet")
            .settings
            .push(entries.to_string());
        self
    }

    /// A route before the catch-all one. (The gateway picks the longest matching prefix, so
    /// the order only keeps the YAML readable.)
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Exactly these routes, in this order: no catch-all `api` route.
    pub fn routes(mut self, routes: impl IntoIterator<Item = Route>) -> Self {
        self.routes = routes.into_iter().collect();
        self.catch_all = None;
        self
    }

    /// The last route, replacing the catch-all `api` one (another name, a route of its own).
    pub fn catch_all(mut self, route: Route) -> Self {
        self.catch_all = Some(route);
        self
    }

    fn edit_catch_all(mut self, edit: impl FnOnce(Route) -> Route) -> Self {
        let route = self
            .catch_all
            .take()
            .expect("no catch-all route: it was replaced by routes(...)");
        self.catch_all = Some(edit(route));
        self
    }

    /// Entries of the catch-all route's `cache:` (`"max_ttl: 60s"`).
    pub fn route_cache(self, entries: &str) -> Self {
        self.edit_catch_all(|route| route.cache(entries))
    }

    /// Entries of the catch-all route's `cors:` (`"mode: upstream"`).
    pub fn route_cors(self, entries: &str) -> Self {
        self.edit_catch_all(|route| route.cors(entries))
    }

    /// Entries of the catch-all route's `compression:` (`"enabled: false"`).
    pub fn route_compression(self, entries: &str) -> Self {
        self.edit_catch_all(|route| route.compression(entries))
    }

    /// `debug: true` on the catch-all route.
    pub fn route_debug(self) -> Self {
        self.edit_catch_all(Route::debug)
    }

    /// One more `key: value` line of the catch-all route (`"strip_request_headers: [Cookie]"`).
    pub fn route_line(self, line: &str) -> Self {
        self.edit_catch_all(|route| route.line(line))
    }

    /// A TLS listener on `{tls}` (port 0) with these PEM files.
    pub fn tls(mut self, cert: impl fmt::Display, key: impl fmt::Display) -> Self {
        self.tls = Some((cert.to_string(), key.to_string()));
        self
    }

    /// `log.access` to `path`, in `format` (`json`, `text`) or the default one.
    pub fn access_log(mut self, path: impl AsRef<Path>, format: Option<&str>) -> Self {
        let path = path.as_ref().display();
        self.access_log = Some(match format {
            Some(format) => format!("{{ path: \"{path}\", format: {format} }}"),
            None => format!("{{ path: \"{path}\" }}"),
        });
        self
    }

    /// `cluster:` with this Redis and pub/sub channel.
    pub fn cluster(mut self, redis_url: &str, channel: &str) -> Self {
        self.cluster = vec![
            format!("redis_url: \"{redis_url}\""),
            format!("channel: \"{channel}\""),
        ];
        self
    }

    /// More entries of `cluster:` (`"local_ttl: 5s"`); after [`Self::cluster`].
    pub fn cluster_settings(mut self, entries: &str) -> Self {
        assert!(!self.cluster.is_empty(), "cluster_settings before cluster");
        self.cluster.push(entries.to_string());
        self
    }

    /// The config file's text.
    pub fn yaml(&self) -> String {
        self.to_string()
    }
}

/// `key: { entries }`, or nothing when there are none (the defaults). An empty string adds
/// no entry, so a test's table of settings may have `""` for "the defaults".
fn flow(f: &mut fmt::Formatter<'_>, indent: &str, key: &str, entries: &[String]) -> fmt::Result {
    let entries: Vec<&str> = entries
        .iter()
        .map(|entry| entry.trim())
        .filter(|entry| !entry.is_empty())
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    writeln!(f, "{indent}{key}: {{ {} }}", entries.join(", "))
}

impl fmt::Display for GatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "listen: [\"{}\"]", self.listen)?;
        flow(f, "", "admin", &self.admin)?;
        flow(f, "", "server", &self.server)?;
        flow(f, "", "cache", &self.cache)?;
        if self.upstreams.is_empty() {
            writeln!(f, "upstreams: {{}}")?;
        } else {
            writeln!(f, "upstreams:")?;
        }
        for upstream in &self.upstreams {
            let servers = format!("servers: [\"{}\"]", upstream.server);
            let entries: Vec<String> = std::iter::once(servers)
                .chain(upstream.settings.iter().cloned())
                .collect();
            flow(f, "  ", &upstream.name, &entries)?;
        }
        let routes: Vec<&Route> = self.routes.iter().chain(&self.catch_all).collect();
        if routes.is_empty() {
            writeln!(f, "routes: []")?;
        } else {
            writeln!(f, "routes:")?;
        }
        for route in routes {
            write!(f, "{route}")?;
        }
        if let Some((cert, key)) = &self.tls {
            writeln!(
                f,
                "tls:\n  listen: [\"{{tls}}\"]\n  cert: \"{cert}\"\n  key: \"{key}\""
            )?;
        }
        if let Some(access) = &self.access_log {
            writeln!(f, "log:\n  access: {access}")?;
        }
        flow(f, "", "cluster", &self.cluster)
    }
}

/// One entry of `routes:`.
#[derive(Clone, Debug)]
pub struct Route {
    name: String,
    path_prefix: Option<String>,
    upstream: String,
    debug: bool,
    cache: Vec<String>,
    cors: Vec<String>,
    compression: Vec<String>,
    lines: Vec<String>,
}

impl Route {
    /// A route `name` for every path, to upstream `api`.
    pub fn new(name: &str) -> Route {
        Route {
            name: name.to_string(),
            path_prefix: None,
            upstream: "api".to_string(),
            debug: false,
            cache: Vec::new(),
            cors: Vec::new(),
            compression: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// A route `name` for the paths under `prefix` (`match: { path_prefix: ... }`), to `api`.
    pub fn prefix(name: &str, prefix: &str) -> Route {
        Route {
            path_prefix: Some(prefix.to_string()),
            ..Route::new(name)
        }
    }

    /// To this upstream instead of `api`.
    pub fn upstream(mut self, name: &str) -> Self {
        self.upstream = name.to_string();
        self
    }

    /// `debug: true`.
    pub fn debug(mut self) -> Self {
        self.debug = true;
        self
    }

    /// Entries of the route's `cache:` (`"enabled: false"`).
    pub fn cache(mut self, entries: &str) -> Self {
        self.cache.push(entries.to_string());
        self
    }

    /// Entries of the route's `cors:` (`"allow_credentials: true"`).
    pub fn cors(mut self, entries: &str) -> Self {
        self.cors.push(entries.to_string());
        self
    }

    /// `cors: { mode: edge, allow_origins: [...] }`; more settings with [`Self::cors`].
    pub fn cors_edge(self, origins: &[&str]) -> Self {
        let origins: Vec<String> = origins.iter().map(|o| format!("\"{o}\"")).collect();
        self.cors(&format!(
            "mode: edge, allow_origins: [{}]",
            origins.join(", ")
        ))
    }

    /// Entries of the route's `compression:` (`"enabled: false"`).
    pub fn compression(mut self, entries: &str) -> Self {
        self.compression.push(entries.to_string());
        self
    }

    /// One more `key: value` line (`"strip_request_headers: [X-Debug, Cookie]"`).
    pub fn line(mut self, line: &str) -> Self {
        self.lines.push(line.to_string());
        self
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  - name: {}", self.name)?;
        if let Some(prefix) = &self.path_prefix {
            writeln!(f, "    match: {{ path_prefix: \"{prefix}\" }}")?;
        }
        writeln!(f, "    upstream: {}", self.upstream)?;
        if self.debug {
            writeln!(f, "    debug: true")?;
        }
        flow(f, "    ", "cache", &self.cache)?;
        flow(f, "    ", "cors", &self.cors)?;
        flow(f, "    ", "compression", &self.compression)?;
        for line in &self.lines {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
