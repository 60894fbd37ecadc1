//! A small API to put the gateway in front of, for `cors-edge demo`. Each endpoint shows one
//! caching or CORS behaviour; `X-Upstream-Hits` counts how often the upstream was reached.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

pub const DEMO_ALLOWED_ORIGINS: [&str; 2] = ["http://localhost:5173", "https://app.example.com"];

#[derive(Default)]
pub struct DemoApi {
    hits: AtomicU64,
}

fn header(session: &ServerSession, name: &str) -> Option<String> {
    session
        .req_header()
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[async_trait]
impl ServeHttp for DemoApi {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let hits = self.hits.fetch_add(1, Ordering::Relaxed) + 1;
        // The demo gateway mounts an edge-mode route at /edge/: the same API, CORS by the edge.
        let full_path = session.req_header().uri.path().to_string();
        let path = full_path
            .strip_prefix("/edge")
            .unwrap_or(&full_path)
            .to_string();
        let method = session.req_header().method.clone();
        let origin = header(session, "origin");
        let allowed = origin
            .as_deref()
            .filter(|o| DEMO_ALLOWED_ORIGINS.contains(o));
        let mut builder = http::Response::builder().header("x-upstream-hits", hits.to_string());
        let body: String;
        if method == http::Method::OPTIONS {
            builder = builder.status(204).header("vary", "Origin");
            if let Some(origin) = allowed {
                let requested =
                    header(session, "access-control-request-headers").unwrap_or_default();
                builder = builder
                    .header("access-control-allow-origin", origin)
                    .header("access-control-allow-methods", "GET, POST, PUT, DELETE")
                    .header("access-control-allow-headers", requested)
                    .header("access-control-max-age", "600");
            }
            body = String::new();
        } else {
            match path.as_str() {
                "/public" => {
                    builder = builder
                        .header("cache-control", "public, max-age=30")
                        .header("access-control-allow-origin", "*");
                    body = format!(
                        "{{\"data\":\"the same for everyone\",\"upstream_hits\":{hits}}}\n"
                    );
                }
                "/per-origin" | "/forgot-vary" => {
                    builder = builder.header("cache-control", "public, max-age=30");
                    if path == "/per-origin" {
                        builder = builder.header("vary", "Origin");
                    }
                    if let Some(origin) = allowed {
                        builder = builder.header("access-control-allow-origin", origin);
                    }
                    body = format!(
                        "{{\"made_for\":{},\"upstream_hits\":{hits}}}\n",
                        serde_json::Value::from(origin.unwrap_or_default())
                    );
                }
                "/slow" => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    builder = builder.header("cache-control", "public, max-age=10");
                    body = format!("{{\"slow\":true,\"upstream_hits\":{hits}}}\n");
                }
                "/private" => {
                    builder = builder.header("cache-control", "private, max-age=60");
                    body = "{\"private\":true}\n".to_string();
                }
                _ => {
                    builder = builder
                        .status(404)
                        .header("cache-control", "public, max-age=5");
                    body =
                        "{\"error\":\"try /public, /per-origin, /forgot-vary, /slow, /private\"}\n"
                            .to_string();
                }
            }
        }
        let body = body.into_bytes();
        builder
            .header("content-type", "application/json")
            .header("content-length", body.len().to_string())
            .body(body)
            .unwrap_or_else(|_| http::Response::new(Vec::new()))
    }
}
