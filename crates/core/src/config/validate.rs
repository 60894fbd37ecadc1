//! Cross-checks that the types alone cannot express. Every problem is collected, not just the
//! first, so `cors-edge check` lists everything to fix at once. Errors carry their key path;
//! the loader adds file positions.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::error::{ConfigError, ConfigErrors, KeyPath};
use super::model::{Config, RouteConfig, UpstreamConfig};
use crate::forwarding;
use crate::units::DurationValue;

impl Config {
    /// Checks a config that did not come through the loader (built in code, for instance).
    /// Errors name key paths but no file positions.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let errors = validate(self);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors { errors })
        }
    }
}

struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, key: KeyPath, message: impl Into<String>) {
        self.0.push(ConfigError::invalid(key, message));
    }
}

pub(crate) fn validate(config: &Config) -> Vec<ConfigError> {
    let mut errors = Errors(Vec::new());
    check_listeners(config, &mut errors);
    check_cache(config, &mut errors);
    check_upstreams(config, &mut errors);
    check_routes(config, &mut errors);
    if let Some(cluster) = &config.cluster {
        for (key, message) in cluster.check() {
            errors.push(key, message);
        }
    }
    check_server(config, &mut errors);
    for (key, message) in super::log::check(&config.log) {
        errors.push(key, message);
    }
    errors.0
}

fn check_socket_addr(errors: &mut Errors, key: KeyPath, value: &str) -> Option<SocketAddr> {
    match value.trim().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            let hint = if value.contains("://") {
                " (leave out the scheme)"
            } else if !value.contains(':') {
                " (the port is missing)"
            } else {
                ""
            };
            errors.push(
                key,
                format!(
                    "{value:?} is not an IP address and port{hint}; expected for example 0.0.0.0:8080, 127.0.0.1:8080 or [::]:8080"
                ),
            );
            None
        }
    }
}

fn check_listeners(config: &Config, errors: &mut Errors) {
    // Every address any listener binds, to catch two listeners on one port, which would only
    // fail at startup with a bare "address in use".
    let mut bound: Vec<(KeyPath, SocketAddr)> = Vec::new();

    let listen = KeyPath::top("listen");
    if config.listen.is_empty() {
        errors.push(
            listen.clone(),
            "no listen address; give at least one, e.g. listen: [\"0.0.0.0:8080\"]",
        );
    }
    for (i, value) in config.listen.iter().enumerate() {
        if let Some(addr) = check_socket_addr(errors, listen.index(i), value) {
            bound.push((listen.index(i), addr));
        }
    }

    if let Some(tls) = &config.tls {
        let tls_key = KeyPath::top("tls");
        if tls.listen.is_empty() {
            errors.push(
                tls_key.key("listen"),
                "no TLS listen address; give at least one, e.g. [\"0.0.0.0:8443\"], or remove the tls block",
            );
        }
        for (i, value) in tls.listen.iter().enumerate() {
            let key = tls_key.key("listen").index(i);
            if let Some(addr) = check_socket_addr(errors, key.clone(), value) {
                bound.push((key, addr));
            }
        }
        if tls.cert.as_os_str().is_empty() {
            errors.push(
                tls_key.key("cert"),
                "the certificate path is empty; give the PEM certificate chain's path",
            );
        }
        if tls.key.as_os_str().is_empty() {
            errors.push(
                tls_key.key("key"),
                "the private key path is empty; give the PEM private key's path",
            );
        }
    }

    let admin = KeyPath::top("admin");
    if let Some(addr) = check_socket_addr(errors, admin.key("listen"), &config.admin.listen) {
        bound.push((admin.key("listen"), addr));
    }
    let token_env = config.admin.token_env.trim();
    if token_env.is_empty() {
        if !config.admin_is_loopback() {
            errors.push(
                admin.key("token_env"),
                format!(
                    "the admin API listens off loopback ({}) so it needs a bearer token: name the environment variable that holds it, e.g. CORS_EDGE_ADMIN_TOKEN",
                    config.admin.listen
                ),
            );
        }
    } else if !token_env
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        errors.push(
            admin.key("token_env"),
            format!(
                "{:?} is not an environment variable name (use letters, digits and _); it names the variable holding the token, not the token itself",
                config.admin.token_env
            ),
        );
    }

    for (i, (key, addr)) in bound.iter().enumerate() {
        // Port 0 asks the OS for a port of its own: two such listeners never clash.
        let clash = bound[..i].iter().find(|(_, earlier)| {
            addr.port() != 0
                && earlier.port() == addr.port()
                && (earlier.ip() == addr.ip()
                    || earlier.ip().is_unspecified()
                    || addr.ip().is_unspecified())
        });
        if let Some((earlier_key, earlier)) = clash {
            errors.push(
                key.clone(),
                format!("{addr} overlaps {earlier} of {earlier_key}: two listeners cannot bind the same port"),
            );
        }
    }
}

fn require_positive(errors: &mut Errors, key: KeyPath, value: DurationValue, what: &str) {
    if value.is_zero() {
        errors.push(key, format!("{what} must be longer than 0s"));
    }
}

fn check_cache(config: &Config, errors: &mut Errors) {
    let cache = &config.cache;
    let key = KeyPath::top("cache");
    if cache.max_bytes.as_u64() == 0 {
        errors.push(
            key.key("max_bytes"),
            "the cache bound must be larger than 0B; to turn caching off, set cache.enabled: false on the routes",
        );
    }
    if cache.max_variants == 0 {
        errors.push(
            key.key("max_variants"),
            "must be at least 1 (one variant per URL)",
        );
    }
    match cache.max_object_bytes {
        Some(limit) if limit.as_u64() == 0 => errors.push(
            key.key("max_object_bytes"),
            "must be larger than 0B; responses larger than it are not cached",
        ),
        Some(limit) if limit > cache.max_bytes && cache.max_bytes.as_u64() > 0 => errors.push(
            key.key("max_object_bytes"),
            format!(
                "{limit} is larger than the whole cache (max_bytes: {})",
                cache.max_bytes
            ),
        ),
        _ => {}
    }
    require_positive(
        errors,
        key.key("lock_timeout"),
        cache.lock_timeout,
        "the cache lock timeout",
    );
    let mut seen: Vec<String> = Vec::new();
    for (i, name) in cache.targeted_fields.iter().enumerate() {
        let lower = name.to_ascii_lowercase();
        let problem = if let Some(problem) = forwarding::header_name_problem(name) {
            Some(problem)
        } else if seen.contains(&lower) {
            Some("is listed twice")
        } else if lower == "cache-control" || lower == "surrogate-control" {
            Some("is not a targeted field: Cache-Control and Surrogate-Control are always read, after the targeted fields")
        } else {
            None
        };
        if let Some(problem) = problem {
            errors.push(
                key.key("targeted_fields").index(i),
                format!("{name:?} {problem}"),
            );
        }
        seen.push(lower);
    }
}

/// Names end up in metric labels and cache keys, so they are kept to a plain alphabet.
fn check_name(errors: &mut Errors, key: KeyPath, name: &str, what: &str) {
    if name.is_empty() {
        errors.push(key, format!("the {what} name is empty"));
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        errors.push(
            key,
            format!("{name:?} is not a valid {what} name (use letters, digits, -, _ and .)"),
        );
    }
}

/// `host:port` where host is a name or an IP address (IPv6 in brackets).
fn check_server_address(errors: &mut Errors, key: KeyPath, value: &str) {
    if value.parse::<SocketAddr>().is_ok() {
        return;
    }
    let problem = if value.contains("://") {
        Some("leave out the scheme".to_string())
    } else if value.contains('/') {
        Some("leave out the path".to_string())
    } else {
        match value.rsplit_once(':') {
            None => Some("the port is missing".to_string()),
            Some((host, port)) => {
                let host_ok =
                    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                        inner.parse::<std::net::Ipv6Addr>().is_ok()
                    } else {
                        !host.is_empty()
                            && host
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    };
                match port.parse::<u16>() {
                    _ if !host_ok => Some(format!("{host:?} is not a host name or IP address")),
                    Ok(0) | Err(_) => Some(format!("{port:?} is not a port (1-65535)")),
                    Ok(_) => None,
                }
            }
        }
    };
    if let Some(problem) = problem {
        errors.push(
            key,
            format!("{value:?} is not host:port: {problem}; expected for example 127.0.0.1:3000 or api.internal:8080"),
        );
    }
}

fn check_upstreams(config: &Config, errors: &mut Errors) {
    let key = KeyPath::top("upstreams");
    if config.upstreams.is_empty() {
        errors.push(
            key.clone(),
            "no upstreams; define at least one, e.g. upstreams: { api: { servers: [\"127.0.0.1:3000\"] } }",
        );
    }
    for (name, upstream) in &config.upstreams {
        let key = key.key(name);
        check_name(errors, key.clone(), name, "upstream");
        check_upstream(errors, &key, upstream);
    }
}

fn check_upstream(errors: &mut Errors, key: &KeyPath, upstream: &UpstreamConfig) {
    if upstream.servers.is_empty() {
        errors.push(
            key.key("servers"),
            "no servers; give at least one host:port",
        );
    }
    for (i, server) in upstream.servers.iter().enumerate() {
        check_server_address(errors, key.key("servers").index(i), server);
    }
    require_positive(
        errors,
        key.key("connect_timeout"),
        upstream.connect_timeout,
        "the connect timeout",
    );
    require_positive(
        errors,
        key.key("read_timeout"),
        upstream.read_timeout,
        "the read timeout",
    );
    if let Some(health) = &upstream.health_check {
        let key = key.key("health_check");
        require_positive(
            errors,
            key.key("interval"),
            health.interval,
            "the health check interval",
        );
        if let Some(path) = &health.path {
            if !crate::request_target::is_origin_form(path) {
                errors.push(
                    key.key("path"),
                    format!(
                        "{path:?} is not a request path: it must start with / and hold only \
                         visible ASCII without # \" < > ` (it is the request path of the check)"
                    ),
                );
            }
        }
    }
}

fn check_routes(config: &Config, errors: &mut Errors) {
    let routes_key = KeyPath::top("routes");
    if config.routes.is_empty() {
        errors.push(
            routes_key.clone(),
            "no routes; define at least one, or every request would be answered 404",
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut matches: HashMap<(Option<String>, &str), usize> = HashMap::new();
    for (i, route) in config.routes.iter().enumerate() {
        let key = routes_key.index(i);
        check_name(errors, key.key("name"), &route.name, "route");
        if let Some(first) = names.insert(&route.name, i) {
            // Keep pointing later duplicates at the first definition.
            names.insert(&route.name, first);
            errors.push(
                key.key("name"),
                format!(
                    "route name {:?} is already used by routes[{first}]; names must be unique",
                    route.name
                ),
            );
        }
        check_route(config, errors, &key, route);
        let host = route
            .matcher
            .host
            .as_ref()
            .map(|host| host.to_ascii_lowercase());
        match matches.get(&(host.clone(), route.matcher.path_prefix.as_str())) {
            Some(first) => errors.push(
                key.key("match"),
                format!(
                    "same host and path_prefix as routes[{first}] ({:?}), so this route can never be chosen",
                    config.routes[*first].name
                ),
            ),
            None => {
                matches.insert((host, route.matcher.path_prefix.as_str()), i);
            }
        }
    }
}

fn check_route(config: &Config, errors: &mut Errors, key: &KeyPath, route: &RouteConfig) {
    if !config.upstreams.contains_key(&route.upstream) {
        let known: Vec<&str> = config.upstreams.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "none is defined".to_string()
        } else {
            format!("defined: {}", known.join(", "))
        };
        errors.push(
            key.key("upstream"),
            format!(
                "upstream {:?} is not defined under upstreams ({known})",
                route.upstream
            ),
        );
    }

    let match_key = key.key("match");
    if let Some(host) = &route.matcher.host {
        let problem = if host.is_empty() {
            Some("is empty (leave host out to match every host)")
        } else if host.contains("://") {
            Some("must not have a scheme")
        } else if host.contains('/') {
            Some("must not have a path (use path_prefix)")
        } else if host.contains(':') {
            Some("must not have a port: it is matched against the request's host without its port")
        } else if host.contains('*') {
            Some("must be one exact host name; wildcards are not supported, leave host out or add a route per host")
        } else if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            Some("is not a host name (letters, digits, -, _ and .)")
        } else {
            None
        };
        if let Some(problem) = problem {
            errors.push(match_key.key("host"), format!("{host:?} {problem}"));
        }
    }
    if !route.matcher.path_prefix.starts_with('/') {
        errors.push(
            match_key.key("path_prefix"),
            format!(
                "{:?} must start with /, e.g. /{}",
                route.matcher.path_prefix, route.matcher.path_prefix
            ),
        );
    }

    if let Some(max_ttl) = route.cache.max_ttl {
        require_positive(
            errors,
            key.key("cache").key("max_ttl"),
            max_ttl,
            "max_ttl (use enabled: false to not cache)",
        );
    }

    if let Some(key_query) = &route.cache.key_query {
        let at = key.key("cache").key("key_query");
        for (key, message) in super::key_query::check(&at, key_query) {
            errors.push(key, message);
        }
    }
    for (key, message) in super::cors::check(&key.key("cors"), &route.cors) {
        errors.push(key, message);
    }
    for (key, message) in super::compression::check(&key.key("compression"), &route.compression) {
        errors.push(key, message);
    }
    check_route_headers(errors, key, route);
}

fn check_server(config: &Config, errors: &mut Errors) {
    let server = &config.server;
    let key = KeyPath::top("server");
    if server.threads == Some(0) {
        errors.push(
            key.key("threads"),
            "must be at least 1 (leave it out for one per CPU)",
        );
    }
    require_positive(
        errors,
        key.key("header_timeout"),
        server.header_timeout,
        "the request head timeout",
    );
    require_positive(
        errors,
        key.key("idle_timeout"),
        server.idle_timeout,
        "the keep-alive idle timeout",
    );
    if server.max_connections == 0 {
        errors.push(
            key.key("max_connections"),
            "must be at least 1 (every connection would be refused)",
        );
    }
    for (i, entry) in server.trusted_proxies.iter().enumerate() {
        if let Err(error) = forwarding::parse_cidr(entry) {
            errors.push(
                key.key("trusted_proxies").index(i),
                format!("{entry:?} {error}"),
            );
        }
    }
}

/// `strip_request_headers` and `cache.key_headers`: header names, each once, and a header
/// cannot be both dropped and keyed on.
fn check_route_headers(errors: &mut Errors, key: &KeyPath, route: &RouteConfig) {
    let mut seen: Vec<String> = Vec::new();
    let strip_key = key.key("strip_request_headers");
    for (i, name) in route.strip_request_headers.iter().enumerate() {
        let lower = name.trim().to_ascii_lowercase();
        if let Some(problem) = forwarding::header_name_problem(name.trim()) {
            errors.push(strip_key.index(i), format!("{name:?} {problem}"));
        } else if seen.contains(&lower) {
            errors.push(strip_key.index(i), format!("{name:?} is listed twice"));
        } else if forwarding::FORWARDING_HEADERS.contains(&lower.as_str()) {
            errors.push(
                strip_key.index(i),
                format!("{name:?} is always set by the gateway (see server.trusted_proxies); it cannot be stripped"),
            );
        }
        seen.push(lower);
    }
    let stripped = seen;
    let mut seen: Vec<String> = Vec::new();
    let key_key = key.key("cache").key("key_headers");
    for (i, name) in route.cache.key_headers.iter().enumerate() {
        let lower = name.trim().to_ascii_lowercase();
        let problem = if let Some(problem) = forwarding::header_name_problem(name.trim()) {
            Some(problem.to_string())
        } else if seen.contains(&lower) {
            Some("is listed twice".to_string())
        } else if lower == "origin" {
            Some("is already part of the key in upstream mode, and never reaches the upstream in edge mode".to_string())
        } else if stripped.contains(&lower)
            || forwarding::OVERRIDE_HEADERS.contains(&lower.as_str())
        {
            Some(
                "never reaches the upstream (it is stripped), so the answer cannot depend on it"
                    .to_string(),
            )
        } else {
            None
        };
        if let Some(problem) = problem {
            errors.push(key_key.index(i), format!("{name:?} {problem}"));
        }
        seen.push(lower);
    }
}
