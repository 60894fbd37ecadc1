//! The Pingora `ProxyHttp` implementation: routing, CORS, cache keys and `Vary`, freshness,
//! downstream headers and metrics. Decisions are delegated to `cors_edge_core`; this module
//! moves headers between Pingora and those pure functions.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use cors_edge_core::cors::{self, RequestKind};
use cors_edge_core::freshness::{self, HitAction, StorageDecision};
use cors_edge_core::key::{self, KeyParts, PreflightParts};
use cors_edge_core::vary;
use cors_edge_store::{EntryScope, FreshHit, KeyInfo};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use pingora::cache::key::{CacheHashKey, HashBinary};
use pingora::cache::{
    CacheKey, CacheMeta, CachePhase, ForcedFreshness, HitHandler, NoCacheReason, RespCacheable,
    VarianceBuilder,
};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use crate::metrics::{Kind, METRICS};
use crate::runtime::{CorsMode, Route, Runtime};
use crate::state::SharedState;

pub struct Gateway {
    pub state: Arc<SharedState>,
}

/// Per-request state.
pub struct Ctx {
    runtime: Option<Arc<Runtime>>,
    route: Option<Arc<Route>>,
    cors_kind: RequestKind,
    metric_kind: Kind,
    origin: Option<Vec<u8>>,
    started: Instant,
    started_at: SystemTime,
    upstream_sent: Option<Instant>,
    /// The cache was consulted (so an unstored response is a MISS, not a BYPASS).
    looked_up: bool,
    /// Set when the gateway wrote the whole answer itself (edge preflight, errors).
    answered: Option<&'static str>,
    /// The request forbids serving a stale copy (request `no-cache`, `max-age`, `min-fresh`).
    no_stale: bool,
    only_if_cached: bool,
    connect_failures: usize,
    /// Headers of an upstream 304, merged into the stored response (RFC 9111 §4.3.4).
    not_modified_headers: Option<HeaderMap>,
}

/// Request line and header fields together, like the 32 KiB of nginx's default
/// `large_client_header_buffers` and of the big CDNs; Pingora's own limit is far higher, so a
/// 100 KB header would otherwise be forwarded to (and stored in cache keys for) the upstream.
const MAX_REQUEST_HEADER_BYTES: usize = 32 * 1024;

fn request_header_bytes(req: &RequestHeader) -> usize {
    let line =
        req.method.as_str().len() + req.uri.path_and_query().map_or(1, |pq| pq.as_str().len()) + 12;
    req.headers.iter().fold(line, |total, (name, value)| {
        total + name.as_str().len() + value.len() + 4
    })
}

const HOP_BY_HOP_CORS: [&str; 3] = [
    "origin",
    "access-control-request-method",
    "access-control-request-headers",
];

/// Takes a `HeaderName` constant on hot paths: a `&str` name is parsed on every call.
fn header_lines(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Vec<&[u8]> {
    headers
        .get_all(name)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect()
}

fn request_host(req: &RequestHeader) -> &str {
    req.headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.host())
        .unwrap_or("")
}

/// `ACAO: *` without `Vary: Origin`: one copy serves every origin.
fn shared_across_origins(headers: &HeaderMap) -> bool {
    // Only one `ACAO: *` line can be shared; checking that first spares parsing `Vary` for the
    // per-origin responses that most hits are.
    let mut lines = headers.get_all(header::ACCESS_CONTROL_ALLOW_ORIGIN).iter();
    match (lines.next(), lines.next()) {
        (Some(only), None) if only.as_bytes().trim_ascii() == b"*" => {}
        _ => return false,
    }
    let acao = header_lines(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN);
    let varies = vary::names_origin(&vary::parse_vary(header_lines(headers, header::VARY)));
    cors::inspect_upstream_response(None, &acao, None, varies).shared_across_origins
}

/// The request's `Origin`. Several field lines are joined, which makes an invalid origin: such
/// a request gets no CORS grant and a variant of its own.
fn request_origin(headers: &HeaderMap) -> Option<Vec<u8>> {
    let lines = header_lines(headers, header::ORIGIN);
    match lines.as_slice() {
        [] => None,
        [one] => Some(one.to_vec()),
        several => Some(several.join(&b", "[..])),
    }
}

/// Fields a 304 must not change in the stored response: they describe the stored body
/// (RFC 9111 §4.3.4 via §3.2) or the connection.
const KEEP_ON_304: [&str; 8] = [
    "content-length",
    "content-encoding",
    "content-range",
    "content-md5",
    "etag",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

/// Header names listed in `Connection` are hop-by-hop (RFC 9110 §7.6.1) and never stored.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    header_lines(headers, header::CONNECTION)
        .into_iter()
        .flat_map(|line| {
            String::from_utf8_lossy(line)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|name| !name.is_empty() && name != "close" && name != "keep-alive")
        .collect()
}

/// Whether the request arrived over TLS: http and https answers are cached apart, since an
/// upstream may answer them differently (a redirect to https, say).
fn is_tls(session: &Session) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

/// Applies [`cors_edge_core::forwarding`]'s decision to the upstream request: the gateway's
/// own `X-Forwarded-*`/`Forwarded`/`X-Real-IP` unless the peer is a trusted proxy, override
/// headers and the route's `strip_request_headers` removed.
fn forwarding_edits(
    session: &Session,
    route: &Route,
    upstream_request: &mut RequestHeader,
) -> Result<()> {
    use cors_edge_core::forwarding::{HeaderEdit, RequestFacts};
    let facts = RequestFacts {
        peer: session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip()),
        tls: is_tls(session),
        host: request_host(session.req_header()),
        local_port: session
            .server_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.port()),
        method: upstream_request.method.as_str(),
    };
    let edits = route.forwarding.upstream_edits(
        &facts,
        upstream_request
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    );
    for edit in edits {
        match edit {
            HeaderEdit::Remove(name) => {
                upstream_request.remove_header(name);
            }
            HeaderEdit::RemoveNamed(name) => {
                upstream_request.remove_header(name.as_str());
            }
            HeaderEdit::Set(name, value) => upstream_request.insert_header(name, value)?,
        }
    }
    Ok(())
}

fn is_unsafe_method(method: &http::Method) -> bool {
    !matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::TRACE
    )
}

/// Pingora merges only a few fields of a 304; RFC 9111 §4.3.4 wants every field of the 304
/// to replace the stored one, except those describing the stored body.
fn merge_not_modified(
    stored: &mut ResponseHeader,
    not_modified: &HeaderMap,
    old: Option<&CacheMeta>,
) {
    // The stored `Age` described the first response; the 304's own `Age` (absent: 0) is the
    // age of the refreshed one (§4.2.3).
    stored.remove_header(&http::header::AGE);
    let mut names: Vec<&HeaderName> = not_modified.keys().collect();
    names.dedup();
    for name in names {
        if KEEP_ON_304.contains(&name.as_str()) {
            continue;
        }
        stored.remove_header(name);
        for value in not_modified.get_all(name) {
            if let Err(e) = stored.append_header(name.clone(), value.clone()) {
                tracing::warn!("cannot merge {name} from a 304: {e}");
            }
        }
    }
    if let Some(etag) = old.and_then(|meta| meta.headers().get(http::header::ETAG)) {
        let etag = etag.clone();
        if let Err(e) = stored.insert_header(http::header::ETAG, etag) {
            tracing::warn!("cannot keep the stored ETag: {e}");
        }
    }
}

/// What an upstream-mode response says about CORS, for `cors_decisions_total` (edge mode records
/// the policy's own decisions): `upstream_wildcard` counts `Access-Control-Allow-Origin: *`
/// answers, `upstream_origin` answers naming an origin, `upstream_none` CORS requests the
/// upstream did not grant.
fn upstream_decision(has_origin: bool, headers: &HeaderMap) -> &'static str {
    if !has_origin {
        return "no_origin";
    }
    match header_lines(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN).as_slice() {
        [] => "upstream_none",
        [value] if value.trim_ascii() == b"*" => "upstream_wildcard",
        _ => "upstream_origin",
    }
}

fn set_header(resp: &mut ResponseHeader, name: &'static str, value: &str) {
    if let Err(e) = resp.insert_header(name, value) {
        tracing::warn!("cannot set {name}: {e}");
    }
}

fn cache_status(session: &Session, ctx: &Ctx) -> &'static str {
    if let Some(status) = ctx.answered {
        return status;
    }
    match session.cache.phase() {
        CachePhase::Hit => "HIT",
        CachePhase::Stale | CachePhase::StaleUpdating => "STALE",
        CachePhase::Expired => "EXPIRED",
        CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) => "REVALIDATED",
        CachePhase::Miss => "MISS",
        _ if ctx.looked_up => "MISS",
        _ => "BYPASS",
    }
}

/// The key Pingora looks the request up by (the same for a hit served by
/// [`Gateway::serve_fresh_hit`] and for the full cache path).
fn cache_key(session: &Session, ctx: &Ctx, route: &Route) -> CacheKey {
    let req = session.req_header();
    let host = request_host(req);
    let path_and_query = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let origin = ctx.origin.as_deref().unwrap_or_default();
    let request_headers;
    let preflight = if ctx.cors_kind == RequestKind::Preflight {
        request_headers = cors::normalize_request_headers(header_lines(
            &req.headers,
            header::ACCESS_CONTROL_REQUEST_HEADERS,
        ));
        Some(PreflightParts {
            origin,
            request_method: req
                .headers
                .get(header::ACCESS_CONTROL_REQUEST_METHOD)
                .map_or(&b""[..], HeaderValue::as_bytes),
            request_headers: &request_headers,
        })
    } else {
        None
    };
    let primary = key::primary_key(&KeyParts {
        route: &route.name,
        tls: is_tls(session),
        host,
        path_and_query,
        preflight,
    });
    CacheKey::new(primary, String::new())
}

/// Requests whose answers the cache stores and serves.
fn cacheable(req: &RequestHeader, kind: RequestKind, route: &Route) -> bool {
    route.cache_enabled
        && (req.method == http::Method::GET
            || req.method == http::Method::HEAD
            || (kind == RequestKind::Preflight && route.cors_mode == CorsMode::Upstream))
}

/// Request fields that can make a stored response unusable as is or change how it is sent:
/// those requests take Pingora's full cache path (freshness directives, conditionals, ranges,
/// RFC 9111 §3.5 `Authorization`, protocol upgrades).
const FULL_PATH_REQUEST_FIELDS: [HeaderName; 10] = [
    header::CACHE_CONTROL,
    header::PRAGMA,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
    header::AUTHORIZATION,
    header::UPGRADE,
];

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
const SURROGATE_KEY: HeaderName = HeaderName::from_static("surrogate-key");
const CACHE_TAG: HeaderName = HeaderName::from_static("cache-tag");

/// The variance of the stored response with `stored` headers that `req` selects: the
/// values of the fields its `Vary` names and, unless the response is shared across origins in
/// upstream mode, the request's `Origin`.
fn variance(stored: &HeaderMap, ctx: &Ctx, req: &RequestHeader) -> Option<HashBinary> {
    let route = ctx.route.as_ref()?;
    if ctx.cors_kind == RequestKind::Preflight {
        // Everything a preflight answer depends on is already in its primary key.
        return None;
    }
    let fields = vary::parse_vary(header_lines(stored, header::VARY));
    let mut builder = VarianceBuilder::new();
    if let vary::VaryFields::Fields(names) = &fields {
        for name in names.iter().filter(|n| n.as_str() != "origin") {
            let value = key::vary_header_value(name, header_lines(&req.headers, name));
            builder.add_owned_name_value(name.clone(), value);
        }
    }
    // `cache.key_headers`: as if the response named them in `Vary` (issue 14).
    for name in &route.key_headers {
        let value = key::vary_header_value(name, header_lines(&req.headers, name.as_str()));
        builder.add_owned_name_value(format!(":key:{name}"), value);
    }
    if route.cors_mode == CorsMode::Upstream && !shared_across_origins(stored) {
        builder.add_owned_name_value(
            key::ORIGIN_VARIANCE_NAME.to_string(),
            key::origin_variance_value(ctx.origin.as_deref()),
        );
    }
    builder.finalize()
}

impl Gateway {
    /// A fresh stored answer for a request that needs nothing else (see
    /// [`FULL_PATH_REQUEST_FIELDS`]); most hits of a busy cache. Served without Pingora's cache
    /// state machine, which costs about as much per hit as the rest of the request.
    fn fresh_hit(&self, session: &Session, ctx: &Ctx, route: &Route) -> Option<FreshHit> {
        let req = session.req_header();
        if !cacheable(req, ctx.cors_kind, route)
            || req
                .headers
                .keys()
                .any(|name| FULL_PATH_REQUEST_FIELDS.contains(name))
        {
            return None;
        }
        let mut key = cache_key(session, ctx, route);
        self.state.store.fresh_hit(
            &mut key,
            |stored| variance(&stored.headers, ctx, req),
            SystemTime::now(),
        )
    }

    /// Sends a hit as Pingora's cache path would (`Age`, HTTP/1.1 framing), through the same
    /// `response_filter`.
    async fn serve_fresh_hit(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        hit: FreshHit,
    ) -> Result<bool> {
        ctx.looked_up = true;
        ctx.answered = Some("HIT");
        let mut header = hit.header;
        header.insert_header(http::header::AGE, hit.age.as_secs())?;
        header.set_version(http::Version::HTTP_11);
        let status = header.status.as_u16();
        if !matches!(status, 204 | 304)
            && !header.status.is_informational()
            && !header.headers.contains_key(http::header::CONTENT_LENGTH)
        {
            header.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
        }
        // The request has no `Range`: Pingora's filter only announces `Accept-Ranges`.
        pingora::proxy::range_header_filter(session.req_header(), &mut header, None);
        self.response_filter(session, &mut header, ctx).await?;
        let head_only = session.req_header().method == http::Method::HEAD;
        session
            .write_response_header(Box::new(header), head_only)
            .await?;
        if !head_only {
            session.write_response_body(Some(hit.body), true).await?;
        }
        Ok(true)
    }

    async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        status: u16,
        headers: &[(&'static str, String)],
        body: &'static str,
        cache_status: &'static str,
    ) -> Result<bool> {
        let mut resp = ResponseHeader::build(status, Some(headers.len() + 3))?;
        for (name, value) in headers {
            resp.insert_header(*name, value.as_str())?;
        }
        resp.insert_header("content-length", body.len().to_string())?;
        if !body.is_empty() {
            resp.insert_header("content-type", "application/json")?;
        }
        resp.insert_header("x-cache", cache_status)?;
        ctx.answered = Some(cache_status);
        let head_only = body.is_empty() || session.req_header().method == http::Method::HEAD;
        session
            .write_response_header(Box::new(resp), head_only)
            .await?;
        if !head_only {
            session
                .write_response_body(Some(Bytes::from_static(body.as_bytes())), true)
                .await?;
        }
        Ok(true)
    }

    /// RFC 9111 §4.4: a successful unsafe request invalidates the stored responses for its
    /// URL and for the URLs in `Location` and `Content-Location` on the same host.
    fn invalidate_after_unsafe_request(
        &self,
        tls: bool,
        route: &Route,
        req: &RequestHeader,
        resp: &ResponseHeader,
    ) {
        let host = request_host(req);
        let mut targets = vec![req
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string()];
        for name in ["location", "content-location"] {
            let Some(value) = resp.headers.get(name).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            let Ok(uri) = value.parse::<http::Uri>() else {
                continue;
            };
            let same_host = uri
                .authority()
                .is_none_or(|a| a.as_str().eq_ignore_ascii_case(host));
            if let (true, Some(pq)) = (same_host, uri.path_and_query()) {
                if pq.as_str().starts_with('/') {
                    targets.push(pq.as_str().to_string());
                }
            }
        }
        for path_and_query in targets {
            let primary = key::primary_key(&KeyParts {
                route: &route.name,
                tls,
                host,
                path_and_query: &path_and_query,
                preflight: None,
            });
            self.state
                .store
                .invalidate_primary(CacheKey::new(primary, String::new()).primary_bin());
        }
    }

    async fn answer_edge_preflight(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        route: &Route,
    ) -> Result<bool> {
        let req = session.req_header();
        let origin = ctx.origin.as_deref().unwrap_or_default();
        let method = req
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .map_or(&b""[..], HeaderValue::as_bytes);
        let requested = cors::normalize_request_headers(header_lines(
            &req.headers,
            header::ACCESS_CONTROL_REQUEST_HEADERS,
        ));
        let decision = route.policy.preflight(origin, method, &requested);
        let mut headers = decision.headers.clone();
        headers.push(("vary", vary::PREFLIGHT_VARY.to_string()));
        route.metrics.cors_decision(decision.outcome.as_str());
        let result = if decision.outcome.is_allowed() {
            "answered"
        } else {
            "denied"
        };
        route.metrics.preflight(result);
        // A preflight answered from the policy in memory never reaches the upstream: a hit.
        let status = if decision.outcome.is_allowed() {
            204
        } else {
            403
        };
        self.answer(session, ctx, status, &headers, "", "HIT").await
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            runtime: None,
            route: None,
            cors_kind: RequestKind::NoOrigin,
            metric_kind: Kind::Other,
            origin: None,
            started: Instant::now(),
            started_at: SystemTime::now(),
            upstream_sent: None,
            looked_up: false,
            answered: None,
            no_stale: false,
            only_if_cached: false,
            connect_failures: 0,
            not_modified_headers: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let runtime = self.state.runtime();
        let req = session.req_header();
        if request_header_bytes(req) > MAX_REQUEST_HEADER_BYTES {
            ctx.runtime = Some(runtime);
            // Whatever follows on this connection cannot be trusted to be framed right.
            session.set_keepalive(None);
            return self
                .answer(
                    session,
                    ctx,
                    431,
                    &[],
                    "{\"error\":\"request header fields too large\"}\n",
                    "BYPASS",
                )
                .await;
        }
        let Some(route) = runtime
            .route_for(request_host(req), req.uri.path())
            .cloned()
        else {
            ctx.runtime = Some(runtime);
            return self
                .answer(
                    session,
                    ctx,
                    404,
                    &[],
                    "{\"error\":\"no route matches this host and path\"}\n",
                    "BYPASS",
                )
                .await;
        };
        ctx.origin = request_origin(&req.headers);
        let acrm = req
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .map(HeaderValue::as_bytes);
        ctx.cors_kind = cors::classify(req.method.as_str(), ctx.origin.as_deref(), acrm);
        ctx.metric_kind = match (ctx.cors_kind, &req.method) {
            (RequestKind::Preflight, _) => Kind::Preflight,
            (_, &http::Method::GET | &http::Method::HEAD) => Kind::Simple,
            _ => Kind::Other,
        };
        ctx.runtime = Some(runtime);
        ctx.route = Some(route.clone());
        if route.cors_mode == CorsMode::Edge && ctx.cors_kind == RequestKind::Preflight {
            return self.answer_edge_preflight(session, ctx, &route).await;
        }
        if let Some(hit) = self.fresh_hit(session, ctx, &route) {
            return self.serve_fresh_hit(session, ctx, hit).await;
        }
        Ok(false)
    }

    fn request_cache_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        let (Some(route), Some(runtime)) = (&ctx.route, &ctx.runtime) else {
            return Ok(());
        };
        if !cacheable(session.req_header(), ctx.cors_kind, route) {
            return Ok(());
        }
        session.cache.enable(
            self.state.store,
            None,
            None,
            Some(self.state.cache_lock),
            None,
        );
        session
            .cache
            .set_max_file_size_bytes(runtime.cache.max_object_bytes);
        Ok(())
    }

    fn cache_key_callback(&self, session: &Session, ctx: &mut Ctx) -> Result<CacheKey> {
        let Some(route) = &ctx.route else {
            return Error::e_explain(InternalError, "cache key requested without a route");
        };
        ctx.looked_up = true;
        let req = session.req_header();
        let host = request_host(req);
        let path_and_query = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut cache_key = cache_key(session, ctx, route);
        cache_key.extensions.insert(KeyInfo {
            // As in the key: case, trailing dot and the scheme's default port (issue 14).
            host: key::key_host(host, is_tls(session)),
            path: req.uri.path().to_string(),
            path_and_query: path_and_query.to_string(),
            request_origin: ctx
                .origin
                .as_deref()
                .map(|o| String::from_utf8_lossy(o).into_owned()),
            scope: match route.cors_mode {
                CorsMode::Edge => EntryScope::Shared,
                CorsMode::Upstream => EntryScope::FromResponse,
            },
            fetch_started: ctx.started_at,
        });
        Ok(cache_key)
    }

    async fn cache_hit_filter(
        &self,
        session: &mut Session,
        meta: &CacheMeta,
        _hit_handler: &mut HitHandler,
        _is_fresh: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<ForcedFreshness>> {
        let headers = &session.req_header().headers;
        if !headers.contains_key(http::header::CACHE_CONTROL)
            && !headers.contains_key(http::header::PRAGMA)
        {
            // The request asks for nothing: whatever the stored directives, the verdict below
            // would be Serve (fresh) or Stale (left to pingora), so skip the parsing.
            ctx.only_if_cached = false;
            return Ok(None);
        }
        let request_cc =
            freshness::CacheControl::parse(header_lines(headers, header::CACHE_CONTROL));
        let pragma = freshness::pragma_has_no_cache(header_lines(headers, header::PRAGMA));
        let response_cc =
            freshness::CacheControl::parse(header_lines(meta.headers(), "cache-control"));
        let must_revalidate = response_cc.must_revalidate
            || response_cc.proxy_revalidate
            || response_cc.s_maxage.is_some();
        // `updated`, not `created`: Pingora keeps the first `created` across revalidations,
        // while `updated` is when this copy's current age started (see response_cache_filter).
        let stored = freshness::Stored::at(
            meta.updated(),
            meta.fresh_until(),
            SystemTime::now(),
            must_revalidate,
        );
        let verdict = freshness::request_requires_revalidation(&request_cc, pragma, &stored);
        ctx.only_if_cached = verdict.only_if_cached;
        Ok(match verdict.action {
            HitAction::Serve | HitAction::Stale => None,
            HitAction::ServeStale => Some(ForcedFreshness::ForceFresh),
            HitAction::Revalidate => {
                ctx.no_stale = true;
                Some(ForcedFreshness::ForceExpired)
            }
        })
    }

    async fn proxy_upstream_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let request_cc = freshness::CacheControl::parse(header_lines(
            &session.req_header().headers,
            "cache-control",
        ));
        if request_cc.only_if_cached || ctx.only_if_cached {
            // RFC 9111 §5.2.1.7: nothing usable is stored, so answer 504 instead of fetching.
            self.answer(
                session,
                ctx,
                504,
                &[],
                "{\"error\":\"only-if-cached and not in cache\"}\n",
                "MISS",
            )
            .await?;
            return Ok(false);
        }
        Ok(true)
    }

    fn cache_vary_filter(
        &self,
        meta: &CacheMeta,
        ctx: &mut Ctx,
        req: &RequestHeader,
    ) -> Option<HashBinary> {
        variance(meta.headers(), ctx, req)
    }

    fn response_cache_filter(
        &self,
        session: &Session,
        resp: &ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<RespCacheable> {
        // After an upstream 304, `resp` is Pingora's merge (stored header plus the 304's
        // Cache-Control, Expires and ETag). Decide on the full RFC 9111 §4.3.4 merge instead:
        // freshness must count from the 304's Date and Age, not the stored response's.
        let merged_304;
        let resp = match ctx.not_modified_headers.take() {
            Some(not_modified) => {
                let mut merged = resp.clone();
                merge_not_modified(&mut merged, &not_modified, session.cache.maybe_cache_meta());
                merged_304 = merged;
                &merged_304
            }
            None => resp,
        };
        let (Some(route), Some(runtime)) = (&ctx.route, &ctx.runtime) else {
            return Ok(RespCacheable::Uncacheable(NoCacheReason::Custom(
                "no_route",
            )));
        };
        let cache_key = session.cache.cache_key();
        if cache_key.get_variance_key().is_some()
            && self.state.store.variants_of(cache_key) >= runtime.cache.max_variants
        {
            return Ok(RespCacheable::Uncacheable(NoCacheReason::Custom(
                "max_variants",
            )));
        }
        let now = SystemTime::now();
        let req = session.req_header();
        let response_cc = header_lines(&resp.headers, header::CACHE_CONTROL);
        if ctx.cors_kind == RequestKind::Preflight {
            let cc = freshness::CacheControl::parse(response_cc.iter().copied());
            if cc.no_store || cc.private.is_some() {
                return Ok(RespCacheable::Uncacheable(NoCacheReason::OriginNotCache));
            }
            let granted = resp
                .headers
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN);
            let ttl = freshness::preflight_ttl(
                resp.headers
                    .get(header::ACCESS_CONTROL_MAX_AGE)
                    .map(HeaderValue::as_bytes),
                resp.status.as_u16(),
                granted,
                route.max_ttl,
                runtime.cache.negative_preflight_ttl,
            );
            return Ok(match ttl {
                Some(ttl) => {
                    RespCacheable::Cacheable(CacheMeta::new(now + ttl, now, 0, 0, resp.clone()))
                }
                None => RespCacheable::Uncacheable(NoCacheReason::OriginNotCache),
            });
        }
        let request_cc = header_lines(&req.headers, header::CACHE_CONTROL);
        let request = freshness::RequestFacts {
            method: req.method.as_str(),
            cache_control: &request_cc,
            authorization: req.headers.contains_key(http::header::AUTHORIZATION),
            sent_at: ctx.started_at,
        };
        let expires = header_lines(&resp.headers, header::EXPIRES);
        let date = header_lines(&resp.headers, header::DATE);
        let age = header_lines(&resp.headers, header::AGE);
        let vary_lines = header_lines(&resp.headers, header::VARY);
        let response = freshness::ResponseFacts {
            status: resp.status.as_u16(),
            cache_control: &response_cc,
            expires: &expires,
            date: &date,
            age: &age,
            vary: &vary_lines,
            set_cookie: resp.headers.contains_key(http::header::SET_COOKIE),
            has_validator: resp.headers.contains_key(http::header::ETAG)
                || resp.headers.contains_key(http::header::LAST_MODIFIED),
            received_at: now,
        };
        let policy = freshness::Policy {
            max_ttl: route.max_ttl,
            default_stale_while_revalidate: runtime.cache.default_stale_while_revalidate,
            default_stale_if_error: runtime.cache.default_stale_if_error,
        };
        Ok(
            match freshness::storage_decision(&request, &response, &policy) {
                StorageDecision::DontStore(reason) => {
                    RespCacheable::Uncacheable(NoCacheReason::Custom(reason.as_str()))
                }
                StorageDecision::Store(fresh) => {
                    let mut stored = resp.clone();
                    for name in fresh
                        .strip_headers
                        .iter()
                        .cloned()
                        .chain(connection_listed(&resp.headers))
                    {
                        stored.remove_header(name.as_str());
                    }
                    let created = now.checked_sub(fresh.initial_age).unwrap_or(now);
                    let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
                    RespCacheable::Cacheable(CacheMeta::new(
                        now + fresh.fresh_for,
                        created,
                        secs(fresh.stale_while_revalidate),
                        secs(fresh.stale_if_error),
                        stored,
                    ))
                }
            },
        )
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let Some(route) = &ctx.route else {
            return Error::e_explain(InternalError, "upstream requested without a route");
        };
        let upstream = &route.upstream;
        let Some(backend) = upstream.pool.select(b"", 256) else {
            return Error::e_explain(
                HTTPStatus(502),
                format!("upstream {}: no healthy server", upstream.name),
            );
        };
        let mut peer = HttpPeer::new(backend.addr.to_string(), false, String::new());
        peer.options.connection_timeout = Some(upstream.connect_timeout);
        peer.options.read_timeout = Some(upstream.read_timeout);
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.connect_failures += 1;
        let servers = ctx
            .route
            .as_ref()
            .map_or(1, |r| r.upstream.pool.backends().get_backend().len());
        // Round robin gives the next attempt another server; stop after trying each once.
        if ctx.connect_failures < servers {
            e.set_retry(true);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        // Forwarding headers and override headers (issue 14, no poisoning through unkeyed
        // headers): the rule is `cors_edge_core::forwarding`; this only applies its edits.
        if let Some(route) = &ctx.route {
            forwarding_edits(session, route, upstream_request)?;
        }
        if ctx
            .route
            .as_ref()
            .is_some_and(|r| r.cors_mode == CorsMode::Edge)
        {
            // The gateway owns CORS: the upstream must produce one body for every origin.
            for name in HOP_BY_HOP_CORS {
                upstream_request.remove_header(name);
            }
        }
        ctx.upstream_sent = Some(Instant::now());
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(route) = ctx.route.clone() else {
            return Ok(());
        };
        if let Some(sent) = ctx.upstream_sent {
            route
                .metrics
                .upstream_duration
                .observe(sent.elapsed().as_secs_f64());
        }
        let req = session.req_header();
        if is_unsafe_method(&req.method) && upstream_response.status.as_u16() < 400 {
            self.invalidate_after_unsafe_request(is_tls(session), &route, req, upstream_response);
        }
        match route.cors_mode {
            CorsMode::Upstream => {
                let headers = &upstream_response.headers;
                let acao = header_lines(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN);
                let acac = headers
                    .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
                    .map(HeaderValue::as_bytes);
                let varies =
                    vary::names_origin(&vary::parse_vary(header_lines(headers, header::VARY)));
                let verdict =
                    cors::inspect_upstream_response(ctx.origin.as_deref(), &acao, acac, varies);
                for reason in &verdict.unsafe_reasons {
                    METRICS
                        .unsafe_upstream
                        .with_label_values(&[reason.as_str()])
                        .inc();
                }
            }
            CorsMode::Edge => {
                let cors_headers: Vec<HeaderName> = upstream_response
                    .headers
                    .keys()
                    .filter(|name| name.as_str().starts_with("access-control-"))
                    .cloned()
                    .collect();
                for name in cors_headers {
                    upstream_response.remove_header(&name);
                }
                // Origin is not forwarded in edge mode, so the upstream cannot vary on it.
                let fields =
                    vary::parse_vary(header_lines(&upstream_response.headers, header::VARY));
                if let vary::VaryFields::Fields(names) = fields {
                    if names.iter().any(|n| n == "origin") {
                        let kept: Vec<&str> = names
                            .iter()
                            .map(String::as_str)
                            .filter(|n| *n != "origin")
                            .collect();
                        upstream_response.remove_header("vary");
                        if !kept.is_empty() {
                            upstream_response.insert_header("vary", kept.join(", "))?;
                        }
                    }
                }
            }
        }
        if upstream_response.status == http::StatusCode::NOT_MODIFIED {
            // Taken after the edge-mode stripping above, so a 304 cannot bring the upstream's
            // CORS headers into the entry shared by every origin.
            let mut not_modified = upstream_response.headers.clone();
            // `Vary` and ACAO decide which requests a stored variant answers (cache_vary_filter
            // reads them from the stored header), and Pingora does not re-key a variant over a
            // 304: taking them would let a 304 for one origin's copy make it everyone's.
            not_modified.remove(http::header::VARY);
            not_modified.remove("access-control-allow-origin");
            ctx.not_modified_headers = Some(not_modified);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let status = HeaderValue::from_static(cache_status(session, ctx));
        if let Err(e) = resp.insert_header(X_CACHE, status) {
            tracing::warn!("cannot set x-cache: {e}");
        }
        // Surrogate keys are for the cache, not for browsers.
        resp.remove_header(&SURROGATE_KEY);
        resp.remove_header(&CACHE_TAG);
        let Some(route) = ctx.route.clone() else {
            return Ok(());
        };
        if route.cors_mode == CorsMode::Upstream {
            let decision = upstream_decision(ctx.origin.is_some(), &resp.headers);
            route.metrics.cors_decision(decision);
        }
        match (route.cors_mode, ctx.cors_kind) {
            (CorsMode::Upstream, RequestKind::Preflight) => {
                let mut lines: Vec<Vec<u8>> = header_lines(&resp.headers, header::VARY)
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect();
                if lines.is_empty() {
                    set_header(resp, "vary", vary::PREFLIGHT_VARY);
                } else {
                    lines.push(vary::PREFLIGHT_VARY.as_bytes().to_vec());
                    let merged = vary::parse_vary(lines.iter().map(Vec::as_slice));
                    set_header(resp, "vary", &merged.to_string());
                }
            }
            (CorsMode::Upstream, _) => {
                // The answer depends on Origin when the request sent one or the upstream
                // named an origin anyway; a response to a request without Origin gets it too
                // (by default) so a browser cache never reuses it for a CORS fetch.
                let names_origin = resp
                    .headers
                    .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                    .is_some_and(|v| v.as_bytes().trim_ascii() != b"*");
                if (ctx.origin.is_some() || names_origin || route.vary_origin_always)
                    && !shared_across_origins(&resp.headers)
                {
                    let lines = header_lines(&resp.headers, header::VARY);
                    let value = vary::vary_with_origin(lines.iter().copied());
                    // A stored `Vary: Origin` is usually already what is sent.
                    if !matches!(lines.as_slice(), [only] if *only == value.as_bytes()) {
                        set_header(resp, "vary", &value);
                    }
                }
            }
            (CorsMode::Edge, _) => {
                let decision = route.policy.actual_response(ctx.origin.as_deref());
                for (name, value) in &decision.headers {
                    set_header(resp, name, value);
                }
                if route.policy.varies_by_origin() {
                    let value = vary::vary_with_origin(header_lines(&resp.headers, header::VARY));
                    set_header(resp, "vary", &value);
                }
                route.metrics.cors_decision(decision.outcome.as_str());
            }
        }
        Ok(())
    }

    fn should_serve_stale(
        &self,
        _session: &mut Session,
        ctx: &mut Ctx,
        error: Option<&Error>,
    ) -> bool {
        if ctx.no_stale {
            return false;
        }
        match error {
            // Called only inside the response's stale-while-revalidate window.
            None => true,
            // stale-if-error: upstream unreachable or answering 5xx.
            Some(e) => {
                matches!(e.etype(), HTTPStatus(code) if *code >= 500)
                    || e.esource() == &ErrorSource::Upstream
            }
        }
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let (code, body): (u16, &'static str) = match e.etype() {
            HTTPStatus(code) => (*code, ""),
            ConnectTimedout | ReadTimedout | WriteTimedout => {
                (504, "{\"error\":\"upstream timed out\"}\n")
            }
            _ => match e.esource() {
                ErrorSource::Upstream => (502, "{\"error\":\"upstream unavailable\"}\n"),
                ErrorSource::Downstream => match e.etype() {
                    WriteError | ReadError | ConnectionClosed => (0, ""),
                    _ => (400, "{\"error\":\"bad request\"}\n"),
                },
                ErrorSource::Internal | ErrorSource::Unset => {
                    (500, "{\"error\":\"internal error\"}\n")
                }
            },
        };
        if code > 0 {
            let status = if ctx.looked_up { "MISS" } else { "BYPASS" };
            ctx.answered = Some(status);
            // Built here rather than with `respond_error_with_body`, which sends the JSON body
            // without `Content-Type` and the answer without `X-Cache`.
            let mut resp = pingora::protocols::http::ServerSession::generate_error(code);
            if !body.is_empty() {
                if let Err(header_error) = resp
                    .set_content_length(body.len())
                    .and_then(|()| resp.insert_header("content-type", "application/json"))
                {
                    tracing::warn!("cannot describe the error body: {header_error}");
                }
            }
            set_header(&mut resp, "x-cache", status);
            let body_bytes = Bytes::from_static(body.as_bytes());
            if let Err(write_error) = session.write_error_response(resp, body_bytes).await {
                tracing::debug!("cannot send the error response: {write_error}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        let Some(route) = ctx.route.clone() else {
            return;
        };
        let status = cache_status(session, ctx);
        self.state
            .count_cache_status(status, ctx.metric_kind == Kind::Preflight);
        route
            .metrics
            .request(ctx.metric_kind, status, ctx.started.elapsed().as_secs_f64());
        if ctx.cors_kind == RequestKind::Preflight && route.cors_mode == CorsMode::Upstream {
            let result = match status {
                "HIT" | "STALE" => "hit",
                _ => "miss",
            };
            route.metrics.preflight(result);
        }
    }
}
