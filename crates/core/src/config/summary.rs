//! The one-screen summary `cors-edge check` prints for a valid config.

use std::fmt::Write as _;

use super::cors::CorsMode;
use super::model::{Config, RouteConfig, UpstreamConfig};

impl Config {
    /// What the gateway will do with this config, one line per listener, upstream and route.
    /// Secrets never appear: the admin token is named by its variable, and a Redis password
    /// in `redis_url` is masked.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(out, "listen     {}", self.listen.join(", "));
        match &self.tls {
            Some(tls) => {
                let _ = writeln!(
                    out,
                    "tls        {} (cert {}, key {})",
                    tls.listen.join(", "),
                    tls.cert.display(),
                    tls.key.display()
                );
            }
            None => {
                let _ = writeln!(out, "tls        off");
            }
        }
        let exposure = if self.admin_is_loopback() {
            "loopback only"
        } else {
            "OFF LOOPBACK, token required"
        };
        let token = if self.admin.token_env.is_empty() {
            "no token".to_string()
        } else {
            format!("token from ${}", self.admin.token_env)
        };
        let _ = writeln!(
            out,
            "admin      {} ({exposure}; {token})",
            self.admin.listen
        );
        let cache = &self.cache;
        let _ = writeln!(
            out,
            "cache      {} total, objects up to {}, {} variants per key, lock wait {}",
            cache.max_bytes,
            cache.object_limit(),
            cache.max_variants,
            cache.lock_timeout
        );
        let _ = writeln!(
            out,
            "           stale-while-revalidate {}, stale-if-error {}, denied preflights kept {}",
            cache.stale_while_revalidate, cache.stale_if_error, cache.negative_preflight_ttl
        );
        let targeted = if cache.targeted_fields.is_empty() {
            "none".to_owned()
        } else {
            cache.targeted_fields.join(", ")
        };
        let _ = writeln!(
            out,
            "           targeted fields {targeted}, then Surrogate-Control, then Cache-Control"
        );
        match &self.cluster {
            Some(cluster) => {
                let _ = writeln!(
                    out,
                    "cluster    {} channel {}",
                    mask_password(&cluster.redis_url),
                    cluster.channel
                );
                if cluster.sharded() {
                    let _ = writeln!(
                        out,
                        "           peers {} (self {}), local copies {}",
                        cluster.peers.join(", "),
                        cluster.self_address.as_deref().unwrap_or("?"),
                        cluster.local_ttl
                    );
                }
            }
            None => {
                let _ = writeln!(out, "cluster    off");
            }
        }
        match &self.log.access {
            Some(access) => {
                let _ = writeln!(
                    out,
                    "access log {} ({})",
                    access.destination(),
                    access.format.as_str()
                );
            }
            None => {
                let _ = writeln!(out, "access log off");
            }
        }
        let threads = match self.server.threads {
            Some(n) => n.to_string(),
            None => format!("{} (one per CPU)", self.server.threads_or_default()),
        };
        let _ = writeln!(
            out,
            "server     threads {threads}, grace period {}, shutdown timeout {}",
            self.server.grace_period, self.server.shutdown_timeout
        );
        let _ = writeln!(out, "upstreams  {}", self.upstreams.len());
        for (name, upstream) in &self.upstreams {
            let _ = writeln!(out, "  {name}: {}", upstream_line(upstream));
        }
        let _ = writeln!(out, "routes     {}", self.routes.len());
        for route in &self.routes {
            let _ = writeln!(out, "  {}: {}", route.name, route_line(route));
        }
        out
    }
}

fn upstream_line(upstream: &UpstreamConfig) -> String {
    let count = upstream.servers.len();
    let plural = if count == 1 { "" } else { "s" };
    let health = match &upstream.health_check {
        None => "no health check".to_string(),
        Some(check) => match &check.path {
            Some(path) => format!("HTTP health check GET {path} every {}", check.interval),
            None => format!("TCP health check every {}", check.interval),
        },
    };
    format!(
        "{count} server{plural} ({}), connect {}, read {}, {health}",
        upstream.servers.join(", "),
        upstream.connect_timeout,
        upstream.read_timeout
    )
}

fn route_line(route: &RouteConfig) -> String {
    let host = route.matcher.host.as_deref().unwrap_or("any host");
    let cache = match (route.cache.enabled, route.cache.max_ttl) {
        (false, _) => "cache off".to_string(),
        (true, None) => "cache on".to_string(),
        (true, Some(ttl)) => format!("cache on (max ttl {ttl})"),
    };
    let cache = match (&route.cache.key_query, route.cache.enabled) {
        (Some(key_query), true) => format!("{cache}, key query: {}", key_query.describe()),
        _ => cache,
    };
    let cors = &route.cors;
    let origins = if cors.allow_any_origin {
        "any origin".to_string()
    } else {
        let n = cors.allow_origins.len();
        format!("{n} origin{}", if n == 1 { "" } else { "s" })
    };
    let credentials = if cors.allow_credentials {
        ", credentials"
    } else {
        ""
    };
    let decides = match cors.mode {
        CorsMode::Upstream => "the upstream decides",
        CorsMode::Edge => "the edge decides",
    };
    format!(
        "{host} {} -> {}, {cache}, cors {} ({decides}; {origins}{credentials})",
        route.matcher.path_prefix, route.upstream, cors.mode
    )
}

/// `redis://user:secret@host` → `redis://user:***@host`: summaries end up in logs and tickets.
fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("redis://:s3cret@10.0.0.1:6379"),
            "redis://:***@10.0.0.1:6379"
        );
        assert_eq!(mask_password("redis://u:p@h"), "redis://u:***@h");
        assert_eq!(mask_password("redis://h:6379"), "redis://h:6379");
    }
}
