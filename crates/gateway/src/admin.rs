//! The admin API on its own listener: purge, cache listing, reload, metrics, health, stats.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use cors_edge_core::purge::Purge;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;

use crate::cluster::ClusterHandle;
use crate::metrics::{self, METRICS};
use crate::state::SharedState;

/// Purge bodies are a few fields; anything bigger is a mistake or an attack.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct AdminApp {
    pub state: Arc<SharedState>,
    /// Sends purges to the other nodes (`cluster:` in the config).
    pub cluster: Option<ClusterHandle>,
}

type Response = http::Response<Vec<u8>>;

fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    let mut response = http::Response::new(body);
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        headers.insert(http::header::CONTENT_TYPE, value);
    }
    let length = response.body().len().to_string();
    if let Ok(value) = http::HeaderValue::from_str(&length) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, value);
    }
    response
}

fn json_response(status: u16, value: serde_json::Value) -> Response {
    let mut body = value.to_string().into_bytes();
    body.push(b'\n');
    respond(status, "application/json", body)
}

fn error(status: u16, message: impl Into<String>) -> Response {
    json_response(status, json!({ "error": message.into() }))
}

/// Whether a secret sent equals the one held, in a time that tells neither where they differ
/// nor whether their lengths do: both are hashed (BLAKE2s) to 32-byte digests, which are
/// compared byte by byte without stopping at the first difference. The time of hashing depends
/// only on each side's own length.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use blake2::{Blake2s256, Digest};
    let (a, b) = (Blake2s256::digest(a), Blake2s256::digest(b));
    let difference = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    difference == 0
}

enum Body {
    Complete(Vec<u8>),
    TooLarge,
    Broken(String),
}

async fn read_body(session: &mut ServerSession) -> Body {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Body::TooLarge;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Body::Complete(body),
            Err(e) => return Body::Broken(e.to_string()),
        }
    }
}

impl AdminApp {
    /// `None` when the request may proceed; the refusal otherwise.
    fn authorize(&self, session: &ServerSession) -> Option<Response> {
        let token = self.state.admin_token.as_deref()?;
        let given = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        match given {
            None => {
                let mut refusal =
                    error(401, "missing bearer token (Authorization: Bearer <token>)");
                refusal.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer"),
                );
                Some(refusal)
            }
            Some(given) if constant_time_eq(given.trim().as_bytes(), token.as_bytes()) => None,
            Some(_) => Some(error(403, "invalid bearer token")),
        }
    }

    async fn purge(&self, session: &mut ServerSession) -> Response {
        let body = match read_body(session).await {
            Body::Complete(body) => body,
            Body::TooLarge => {
                return error(413, format!("body larger than {MAX_BODY_BYTES} bytes"))
            }
            Body::Broken(e) => return error(400, format!("cannot read the body: {e}")),
        };
        let purge = match Purge::from_admin_body(&body) {
            Ok(purge) => purge,
            Err(e) => return error(400, e.to_string()),
        };
        let label = purge.selector.label();
        // Only queued for the other nodes (sent in the background): Redis never delays this answer.
        if let Some(cluster) = &self.cluster {
            cluster.publish(&purge);
        }
        let soft = purge.soft;
        let matched = crate::purge_scope::purge(&self.state, purge.selector, soft);
        METRICS.purges.with_label_values(&[label]).inc();
        METRICS.purged_entries.inc_by(matched);
        json_response(200, json!({ "purged": matched, "soft": soft }))
    }

    /// `GET /cache`: the walk runs on a blocking thread, so the admin API's own thread keeps
    /// answering `/healthz` and `/metrics` while it lasts.
    async fn cache(&self, session: &ServerSession) -> Response {
        let query = session.req_header().uri.query().map(str::to_string);
        let state = Arc::clone(&self.state);
        match tokio::task::spawn_blocking(move || {
            crate::admin_cache::inspect(&state, query.as_deref())
        })
        .await
        {
            Ok((status, mut body)) => {
                body.push(b'\n');
                respond(status, "application/json", body)
            }
            Err(e) => error(500, format!("the cache listing failed: {e}")),
        }
    }

    fn stats(&self) -> Response {
        let stats = self.state.store.stats();
        let counters = &self.state.counters;
        json_response(
            200,
            json!({
                "entries": stats.entries,
                "bytes": stats.bytes,
                "evictions": stats.evictions,
                "active_purges": self.state.store.active_bans(),
                "hits": counters.hits.load(Ordering::Relaxed),
                "misses": counters.misses.load(Ordering::Relaxed),
                "preflight_hits": counters.preflight_hits.load(Ordering::Relaxed),
                "ring": self.ring(),
            }),
        )
    }

    /// The sharded cache's ring: this node and every member with its health (`null` without
    /// `cluster:`).
    fn ring(&self) -> serde_json::Value {
        let Some(membership) = &self.state.membership else {
            return serde_json::Value::Null;
        };
        let settings = membership.settings();
        let members: Vec<serde_json::Value> = membership
            .members()
            .iter()
            .map(
                |m| json!({ "address": m.address.to_string(), "healthy": m.healthy, "self": m.me }),
            )
            .collect();
        json!({
            "sharded": settings.sharded,
            "self": settings.me.map(|a| a.to_string()),
            "healthy": membership.members().iter().filter(|m| m.healthy).count(),
            "members": members,
            "local_ttl_ms": u64::try_from(settings.local_ttl.as_millis()).unwrap_or(u64::MAX),
        })
    }

    fn ready(&self) -> Response {
        let runtime = self.state.runtime();
        let down: Vec<&str> = runtime
            .upstreams
            .iter()
            .filter(|upstream| upstream.pool.select(b"", 256).is_none())
            .map(|upstream| upstream.name.as_str())
            .collect();
        if down.is_empty() {
            json_response(200, json!({ "status": "ready" }))
        } else {
            json_response(
                503,
                json!({ "status": "not ready", "upstreams_down": down }),
            )
        }
    }

    fn reload(&self) -> Response {
        match self.state.reload() {
            Ok(report) => json_response(
                200,
                json!({ "reloaded": true, "routes": report.routes, "restart_needed": report.restart_needed }),
            ),
            Err(e) => error(400, e),
        }
    }
}

pub fn refresh_gauges(state: &SharedState) {
    let stats = state.store.stats();
    METRICS
        .cache_entries
        .set(i64::try_from(stats.entries).unwrap_or(i64::MAX));
    METRICS
        .cache_bytes
        .set(i64::try_from(stats.bytes).unwrap_or(i64::MAX));
    let counted = METRICS.cache_evictions.get();
    if stats.evictions > counted {
        METRICS.cache_evictions.inc_by(stats.evictions - counted);
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        let allowed: &[http::Method] = match path.as_str() {
            "/healthz" | "/readyz" | "/metrics" | "/stats" | "/cache" => {
                &[http::Method::GET, http::Method::HEAD]
            }
            "/purge" | "/reload" => &[http::Method::POST],
            _ => return error(404, format!("no admin endpoint {path}")),
        };
        if !allowed.contains(&method) {
            let mut refusal = error(405, format!("{method} is not allowed on {path}"));
            let allow = allowed
                .iter()
                .map(http::Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(value) = http::HeaderValue::from_str(&allow) {
                refusal.headers_mut().insert(http::header::ALLOW, value);
            }
            return refusal;
        }
        match path.as_str() {
            "/healthz" => json_response(200, json!({ "status": "ok" })),
            "/readyz" => self.ready(),
            "/metrics" => {
                refresh_gauges(&self.state);
                respond(200, "text/plain; version=0.0.4", metrics::render())
            }
            _ => {
                if let Some(refusal) = self.authorize(session) {
                    return refusal;
                }
                match path.as_str() {
                    "/stats" => self.stats(),
                    "/cache" => self.cache(session).await,
                    "/purge" => self.purge(session).await,
                    _ => self.reload(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn equal_secrets_match_and_any_difference_does_not() {
        assert!(constant_time_eq(b"s3cret-token", b"s3cret-token"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret-tokem"));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret-token-and-more"));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
