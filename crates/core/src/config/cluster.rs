//! `cluster:` — the purge stream every node shares and, with `peers`, one cache across the
//! nodes: each primary key has an owner node (consistent hashing over `peers`) that fetches
//! and stores it; the other nodes forward their misses to it and keep short local copies.

use serde::Deserialize;

use super::error::KeyPath;
use crate::units::DurationValue;

/// `cluster:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with redis_url, channel, peers, self, peer_token_env, local_ttl, peer_connect_timeout, peer_read_timeout and health_check_interval"
)]
pub struct ClusterConfig {
    /// `redis://` or `rediss://` URL. Required (with `peers` too: purges and the invalidations
    /// of unsafe methods reach owners and local copies on this stream).
    pub redis_url: String,
    /// Name of the Redis stream purges travel on (a stream rather than pub/sub, so a node that
    /// was disconnected catches up). Default `cors-edge-purge`.
    #[serde(default = "default_channel")]
    pub channel: String,
    /// The proxy address (`host:port`) of every node, this one included, or DNS names that
    /// resolve to them (a Kubernetes headless Service). Empty: every node is its own cache.
    #[serde(default)]
    pub peers: Vec<String>,
    /// This node's entry among the resolved `peers` (`host:port`). `${NAME}` is replaced by
    /// the environment variable NAME, e.g. `${POD_IP}:8080` with the downward API.
    #[serde(default, rename = "self")]
    pub self_address: Option<String>,
    /// The environment variable holding the secret peers prove themselves with. Required to be
    /// set (non-empty) when `peers` is. Default `CORS_EDGE_PEER_TOKEN`.
    #[serde(default = "default_peer_token_env")]
    pub peer_token_env: String,
    /// How long a node that is not a key's owner keeps the owner's answer (capped below the
    /// answer's own freshness). Short: a hot key is served locally, and a stale copy outlives a
    /// missed purge by at most this long. `0s`: no local copies. Default 2s.
    #[serde(default = "default_local_ttl")]
    pub local_ttl: DurationValue,
    /// Connecting to a peer; on failure the node fetches from the upstream itself. Default 250ms.
    #[serde(default = "default_peer_connect_timeout")]
    pub peer_connect_timeout: DurationValue,
    /// Waiting for a peer's next bytes: covers the owner's own upstream fetch, so at least the
    /// upstreams' `read_timeout`. Default 15s.
    #[serde(default = "default_peer_read_timeout")]
    pub peer_read_timeout: DurationValue,
    /// How often each peer is probed (TCP connect) and DNS names are resolved again; a failing
    /// peer leaves the ring within one interval. Default 1s.
    #[serde(default = "default_health_check_interval")]
    pub health_check_interval: DurationValue,
}

fn default_channel() -> String {
    "cors-edge-purge".to_string()
}

fn default_peer_token_env() -> String {
    "CORS_EDGE_PEER_TOKEN".to_string()
}

fn default_local_ttl() -> DurationValue {
    DurationValue::from_secs(2)
}

fn default_peer_connect_timeout() -> DurationValue {
    DurationValue::from_millis(250)
}

fn default_peer_read_timeout() -> DurationValue {
    DurationValue::from_secs(15)
}

fn default_health_check_interval() -> DurationValue {
    DurationValue::from_secs(1)
}

impl ClusterConfig {
    /// A purge-only cluster section (no peers) with defaults.
    pub fn new(redis_url: impl Into<String>) -> Self {
        ClusterConfig {
            redis_url: redis_url.into(),
            channel: default_channel(),
            peers: Vec::new(),
            self_address: None,
            peer_token_env: default_peer_token_env(),
            local_ttl: default_local_ttl(),
            peer_connect_timeout: default_peer_connect_timeout(),
            peer_read_timeout: default_peer_read_timeout(),
            health_check_interval: default_health_check_interval(),
        }
    }

    /// Nodes share one cache (`peers` is set).
    pub fn sharded(&self) -> bool {
        !self.peers.is_empty()
    }

    /// `self` with `${NAME}` replaced from the process environment.
    pub fn self_expanded(&self) -> Option<Result<String, String>> {
        self.self_address
            .as_deref()
            .map(|text| expand_env(text, |name| std::env::var(name).ok()))
    }

    /// Problems with the section, by key.
    pub(crate) fn check(&self) -> Vec<(KeyPath, String)> {
        let key = KeyPath::top("cluster");
        let mut errors = Vec::new();
        let url = self.redis_url.trim();
        // A unix socket (`redis+unix:///path`, `unix:///path`) for a Redis on the same machine.
        let rest = url
            .strip_prefix("redis://")
            .or_else(|| url.strip_prefix("rediss://"))
            .or_else(|| url.strip_prefix("redis+unix://"))
            .or_else(|| url.strip_prefix("unix://"));
        match rest {
            None => errors.push((
                key.key("redis_url"),
                format!(
                    "{:?} is not a Redis URL (expected redis://host:port, rediss://host:port or redis+unix:///path)",
                    self.redis_url
                ),
            )),
            Some("") => errors.push((
                key.key("redis_url"),
                format!("{:?} has no host", self.redis_url),
            )),
            Some(_) => {}
        }
        if self.channel.trim().is_empty() {
            errors.push((
                key.key("channel"),
                "the purge channel name is empty (default cors-edge-purge)".to_string(),
            ));
        }
        for (i, peer) in self.peers.iter().enumerate() {
            if let Err(why) = check_host_port(peer) {
                errors.push((key.key("peers").index(i), format!("{peer:?} {why}")));
            }
        }
        // The environment is read at start (`self_expanded`); here only the shape: a variable
        // stands for a host, so `cors-edge check` passes outside the pod.
        let shape = self
            .self_address
            .as_deref()
            .map(|text| expand_env(text, |_| Some("host".to_string())));
        match (self.sharded(), shape) {
            (true, None) => errors.push((
                key.key("self"),
                "required with peers: this node's own entry among them (host:port, e.g. ${POD_IP}:8080)"
                    .to_string(),
            )),
            (_, Some(Err(why))) => errors.push((key.key("self"), why)),
            (_, Some(Ok(address))) => {
                if let Err(why) = check_host_port(&address) {
                    errors.push((key.key("self"), format!("{address:?} {why}")));
                }
            }
            (false, None) => {}
        }
        let env = self.peer_token_env.trim();
        if env.is_empty() || !env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            errors.push((
                key.key("peer_token_env"),
                format!(
                    "{:?} is not an environment variable name (letters, digits, _)",
                    self.peer_token_env
                ),
            ));
        }
        for (name, value) in [
            ("peer_connect_timeout", self.peer_connect_timeout),
            ("peer_read_timeout", self.peer_read_timeout),
            ("health_check_interval", self.health_check_interval),
        ] {
            if value.0.is_zero() {
                errors.push((key.key(name), "must be longer than 0s".to_string()));
            }
        }
        errors
    }
}

/// `host:port` with a non-empty host (a name, an IPv4 address or a bracketed IPv6 address)
/// and a port from 1 to 65535.
fn check_host_port(text: &str) -> Result<(), &'static str> {
    let Some((host, port)) = text.trim().rsplit_once(':') else {
        return Err("is not host:port (the proxy port is required)");
    };
    if host.is_empty() || host.contains('/') || (host.contains(':') && !host.starts_with('[')) {
        return Err("is not host:port (IPv6 addresses are written [addr]:port)");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err("has no valid port (1 to 65535)"),
        Ok(_) => Ok(()),
    }
}

/// Replaces every `${NAME}` in `text` with `lookup(NAME)`; an unset or empty variable, or an
/// unclosed `${`, is an error naming it.
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("{text:?}: unclosed ${{ (write ${{NAME}})"));
        };
        let name = &after[..end];
        match lookup(name).filter(|v| !v.trim().is_empty()) {
            Some(value) => out.push_str(value.trim()),
            None => {
                return Err(format!(
                    "{text:?}: the environment variable {name} is not set (in Kubernetes, from the downward API: env POD_IP valueFrom fieldRef status.podIP)"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{key, load, one, BASE};
    use super::*;

    fn cluster(extra: &str) -> String {
        format!("{BASE}cluster:\n  redis_url: redis://127.0.0.1:6379\n{extra}")
    }

    #[test]
    fn defaults_without_peers() {
        let config = load(&cluster("")).unwrap();
        let c = config.cluster.unwrap();
        assert!(!c.sharded());
        assert_eq!(c.peer_token_env, "CORS_EDGE_PEER_TOKEN");
        assert_eq!(c.local_ttl, DurationValue::from_secs(2));
        assert_eq!(c.peer_connect_timeout, DurationValue::from_millis(250));
        assert_eq!(c.health_check_interval, DurationValue::from_secs(1));
    }

    #[test]
    fn peers_with_self() {
        let config = load(&cluster(
            "  peers: [\"10.0.0.1:8080\", \"edge.ns.svc:8080\", \"[::1]:8080\"]\n  self: 10.0.0.1:8080\n  local_ttl: 500ms\n",
        ))
        .unwrap();
        let c = config.cluster.unwrap();
        assert!(c.sharded());
        assert_eq!(c.self_expanded(), Some(Ok("10.0.0.1:8080".to_string())));
        assert_eq!(c.local_ttl, DurationValue::from_millis(500));
    }

    #[test]
    fn peers_need_self() {
        let error = one(&cluster("  peers: [\"10.0.0.1:8080\"]\n"));
        assert_eq!(key(&error), "cluster.self");
    }

    #[test]
    fn peers_need_redis_url() {
        let text = format!("{BASE}cluster:\n  peers: [\"10.0.0.1:8080\"]\n  self: 10.0.0.1:8080\n");
        let errors = super::super::tests::errors(&text);
        assert!(
            errors.iter().any(|e| e.to_string().contains("redis_url")),
            "{errors:?}"
        );
    }

    #[test]
    fn malformed_entries() {
        for (extra, wanted) in [
            (
                "  peers: [\"10.0.0.1\"]\n  self: 10.0.0.1:1\n",
                "cluster.peers[0]",
            ),
            ("  peers: [\"a:0\"]\n  self: a:1\n", "cluster.peers[0]"),
            ("  peers: [\"::1:80\"]\n  self: a:1\n", "cluster.peers[0]"),
            ("  peers: [\"a:1\"]\n  self: a\n", "cluster.self"),
            ("  peer_token_env: \"my token\"\n", "cluster.peer_token_env"),
            (
                "  peer_connect_timeout: 0s\n",
                "cluster.peer_connect_timeout",
            ),
            (
                "  health_check_interval: 0s\n",
                "cluster.health_check_interval",
            ),
            (
                "  peers: [\"a:1\"]\n  self: \"${POD_IP:1\"\n",
                "cluster.self",
            ),
            (
                "  peers: [\"a:1\"]\n  self: \"${POD_IP}\"\n",
                "cluster.self",
            ),
        ] {
            let error = one(&cluster(extra));
            assert_eq!(key(&error), wanted, "{extra}");
        }
    }

    #[test]
    fn self_from_the_environment_is_checked_for_shape_only() {
        // Unset here (as on a developer's machine running `cors-edge check`): valid; the
        // gateway reads it at start.
        let config = load(&cluster(
            "  peers: [\"a:1\"]\n  self: \"${CORS_EDGE_TEST_SURELY_UNSET}:1\"\n",
        ))
        .unwrap();
        let expanded = config.cluster.unwrap().self_expanded().unwrap();
        assert!(expanded
            .unwrap_err()
            .contains("CORS_EDGE_TEST_SURELY_UNSET"));
    }

    #[test]
    fn env_expansion() {
        let env = |name: &str| match name {
            "POD_IP" => Some("10.1.2.3".to_string()),
            "EMPTY" => Some(" ".to_string()),
            _ => None,
        };
        for (text, wanted) in [
            ("${POD_IP}:8080", "10.1.2.3:8080"),
            ("plain:80", "plain:80"),
            ("${POD_IP}${POD_IP}", "10.1.2.310.1.2.3"),
        ] {
            assert_eq!(expand_env(text, env).as_deref(), Ok(wanted));
        }
        for text in ["${UNSET}:80", "${EMPTY}:80", "${POD_IP:80"] {
            assert!(expand_env(text, env).is_err(), "{text}");
        }
    }
}
