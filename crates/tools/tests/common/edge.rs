//! Caches and proxies in front of the test API: one that honours `Vary` or ignores it, and
//! deliberately broken edges that rewrite what the API sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, AGE, CONNECTION, ORIGIN, VARY};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{serve, Reply, TestServer};

/// How the test cache keys its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheBehaviour {
    /// Keys on method, path and query, and keeps one variant per value of the request
    /// headers the response's `Vary` names: what a shared cache must do.
    HonoursVary,
    /// Keys on method and path only and replays the first response to everyone,
    /// ACAO included: the broken setup the tools must catch.
    IgnoresVary,
}

struct Stored {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The request's values of the headers named in `Vary`, lower-cased names.
    vary_key: Vec<(String, Option<String>)>,
    stored_at: Instant,
}

/// Starts a caching proxy in front of `upstream`.
pub async fn start_cache(upstream: SocketAddr, behaviour: CacheBehaviour) -> TestServer {
    let store: Arc<Mutex<HashMap<String, Vec<Stored>>>> = Arc::default();
    serve(move |request| {
        let store = Arc::clone(&store);
        async move { cache_response(request, upstream, behaviour, &store).await }
    })
    .await
}

fn vary_names(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn cache_response(
    request: Request<Incoming>,
    upstream: SocketAddr,
    behaviour: CacheBehaviour,
    store: &Mutex<HashMap<String, Vec<Stored>>>,
) -> Reply {
    let key = match behaviour {
        CacheBehaviour::HonoursVary => format!("{} {}", request.method(), request.uri()),
        CacheBehaviour::IgnoresVary => format!("{} {}", request.method(), request.uri().path()),
    };
    let request_headers = request.headers().clone();

    {
        let store = store.lock().expect("lock");
        let hit = store.get(&key).and_then(|variants| {
            variants.iter().find(|stored| match behaviour {
                CacheBehaviour::IgnoresVary => true,
                CacheBehaviour::HonoursVary => stored
                    .vary_key
                    .iter()
                    .all(|(name, value)| header_text(&request_headers, name) == *value),
            })
        });
        if let Some(stored) = hit {
            let mut response = Response::new(Full::new(stored.body.clone()));
            *response.status_mut() = stored.status;
            *response.headers_mut() = stored.headers.clone();
            let out = response.headers_mut();
            out.insert("x-cache", HeaderValue::from_static("HIT"));
            out.insert(AGE, HeaderValue::from(stored.stored_at.elapsed().as_secs()));
            return response;
        }
    }

    let (status, mut headers, body) = forward(&request, upstream).await;
    headers.remove(CONNECTION);
    let names = vary_names(&headers);
    let cacheable = matches!(status, StatusCode::OK | StatusCode::NO_CONTENT)
        && (behaviour == CacheBehaviour::IgnoresVary || !names.iter().any(|name| name == "*"));
    if cacheable {
        let stored = Stored {
            status,
            headers: headers.clone(),
            body: body.clone(),
            vary_key: names
                .iter()
                .map(|name| (name.clone(), header_text(&request_headers, name)))
                .collect(),
            stored_at: Instant::now(),
        };
        store
            .lock()
            .expect("lock")
            .entry(key)
            .or_default()
            .push(stored);
    }
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
        .headers_mut()
        .insert("x-cache", HeaderValue::from_static("MISS"));
    response
}

/// Sends the request upstream on a fresh connection and reads the whole answer.
async fn forward(
    request: &Request<Incoming>,
    upstream: SocketAddr,
) -> (StatusCode, HeaderMap, Bytes) {
    forward_with(
        request.method(),
        request.uri(),
        request.headers().clone(),
        upstream,
    )
    .await
}

async fn forward_with(
    method: &Method,
    uri: &http::Uri,
    headers: HeaderMap,
    upstream: SocketAddr,
) -> (StatusCode, HeaderMap, Bytes) {
    let stream = TcpStream::connect(upstream)
        .await
        .expect("upstream connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("upstream handshake");
    tokio::spawn(connection);
    let mut upstream_request = Request::new(Empty::<Bytes>::new());
    *upstream_request.method_mut() = method.clone();
    *upstream_request.uri_mut() = uri.clone();
    *upstream_request.headers_mut() = headers;
    let response = sender
        .send_request(upstream_request)
        .await
        .expect("upstream response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("upstream body").to_bytes();
    (parts.status, parts.headers, body)
}

/// What a deliberately broken edge does to each exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// Removes `Origin` from `Vary` in every answer (an edge function "tidying" Vary).
    StripVaryOrigin,
    /// Sets every ACAO to this fixed origin (an edge rule that "adds CORS").
    FixedAcao(&'static str),
    /// Drops `Origin` from the request before forwarding it.
    DropOrigin,
}

/// Starts a proxy (no cache) in front of `upstream` that applies `edit`.
pub async fn start_broken_proxy(upstream: SocketAddr, edit: Edit) -> TestServer {
    serve(move |request: Request<Incoming>| async move {
        let mut headers = request.headers().clone();
        if edit == Edit::DropOrigin {
            headers.remove(ORIGIN);
        }
        let (status, mut out, body) =
            forward_with(request.method(), request.uri(), headers, upstream).await;
        out.remove(CONNECTION);
        match edit {
            Edit::StripVaryOrigin => {
                let kept: Vec<String> = vary_names(&out)
                    .into_iter()
                    .filter(|name| name != "origin")
                    .collect();
                out.remove(VARY);
                if !kept.is_empty() {
                    out.insert(VARY, HeaderValue::from_str(&kept.join(", ")).expect("vary"));
                }
            }
            Edit::FixedAcao(origin) => {
                if out.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
                    out.insert(
                        ACCESS_CONTROL_ALLOW_ORIGIN,
                        HeaderValue::from_static(origin),
                    );
                }
            }
            Edit::DropOrigin => {}
        }
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        *response.headers_mut() = out;
        response
    })
    .await
}
