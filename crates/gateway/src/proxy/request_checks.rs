//! What is decided about a request before anything else: whether it is admitted (header size,
//! route) and, once routed, its facts (CORS class, origin, cacheability, debug).

use std::sync::Arc;

use cors_edge_core::compression;
use cors_edge_core::cors::{self, RequestKind};
use cors_edge_core::freshness::{self, CacheControl};
use cors_edge_core::outcome::TrafficKind;
use cors_edge_core::request_target::{self, RequestTarget, TargetError, TargetForm, TargetInput};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::protocols::http::ServerSession;

use super::record::{PreflightAsk, RequestFacts};
use crate::runtime::{CorsMode, Route, Runtime};

/// Request line and header fields together, like the 32 KiB of nginx's default
/// `large_client_header_buffers` and of the big CDNs; Pingora's own limit is far higher, so a
/// 100 KB header would otherwise be forwarded to (and stored in cache keys for) the upstream.
const MAX_REQUEST_HEADER_BYTES: usize = 32 * 1024;

/// The request header that asks for the debug answer header; its value must be the admin token.
pub const DEBUG_HEADER: HeaderName = HeaderName::from_static("x-cors-edge-debug");

/// Why a request is answered by the gateway before routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    HeaderTooLarge,
    /// The request-target or the host breaks the request-target rule (`request_target`).
    BadTarget(TargetError),
    /// `OPTIONS *`: a question about the server, answered by the gateway with what it allows.
    AboutServer,
    NoRoute,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::HeaderTooLarge => 431,
            Refusal::BadTarget(_) => 400,
            Refusal::AboutServer => 200,
            Refusal::NoRoute => 404,
        }
    }

    pub fn body(self) -> &'static str {
        match self {
            Refusal::HeaderTooLarge => "{\"error\":\"request header fields too large\"}\n",
            Refusal::BadTarget(TargetError::Form) => {
                "{\"error\":\"the request-target is not origin-form or absolute-form\"}\n"
            }
            Refusal::BadTarget(TargetError::AsteriskNotOptions) => {
                "{\"error\":\"the request-target * is only valid with OPTIONS\"}\n"
            }
            Refusal::BadTarget(TargetError::Byte) => {
                "{\"error\":\"the request-target holds a byte it may not\"}\n"
            }
            Refusal::BadTarget(TargetError::MissingHost) => {
                "{\"error\":\"the request has no host\"}\n"
            }
            Refusal::BadTarget(TargetError::SeveralHosts) => {
                "{\"error\":\"the request has several Host fields\"}\n"
            }
            Refusal::BadTarget(TargetError::BadHost) => {
                "{\"error\":\"the host is not a valid authority\"}\n"
            }
            Refusal::AboutServer => "",
            Refusal::NoRoute => "{\"error\":\"no route matches this host and path\"}\n",
        }
    }

    /// Header fields the answer carries besides the framing.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Refusal::AboutServer => &[("allow", "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE")],
            _ => &[],
        }
    }
}

fn request_header_bytes(req: &RequestHeader) -> usize {
    let line =
        req.method.as_str().len() + req.uri.path_and_query().map_or(1, |pq| pq.as_str().len()) + 12;
    req.headers.iter().fold(line, |total, (name, value)| {
        total + name.as_str().len() + value.len() + 4
    })
}

/// The request's target and host, from one parse of the request line and `Host`
/// ([`request_target::parse`]): the route match, the key, the upstream request and the access
/// log all read this.
pub fn target(req: &RequestHeader) -> Result<RequestTarget, TargetError> {
    let host_lines = header_lines(&req.headers, header::HOST);
    request_target::parse(&TargetInput {
        method: req.method.as_str(),
        target: req.raw_path(),
        host_lines: &host_lines,
        authority: req.uri.authority().map(|a| a.as_str()),
        host_optional: req.version < http::Version::HTTP_11,
    })
}

/// Every field line of `name`, as bytes. Takes a `HeaderName` constant on hot paths: a `&str`
/// name is parsed on every call.
pub fn header_lines(headers: &HeaderMap, name: impl header::AsHeaderName) -> Vec<&[u8]> {
    headers
        .get_all(name)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect()
}

/// The route and target of the request, or why it gets none (with its target when that
/// parsed, for the access log).
#[allow(clippy::result_large_err)]
pub fn admit(
    runtime: &Runtime,
    req: &RequestHeader,
) -> Result<(Arc<Route>, RequestTarget), (Refusal, Option<RequestTarget>)> {
    if request_header_bytes(req) > MAX_REQUEST_HEADER_BYTES {
        return Err((Refusal::HeaderTooLarge, None));
    }
    let target = target(req).map_err(|e| (Refusal::BadTarget(e), None))?;
    if target.form == TargetForm::Asterisk {
        return Err((Refusal::AboutServer, Some(target)));
    }
    match runtime.route_for(&target.host, target.path()) {
        Some(route) => Ok((route.clone(), target)),
        None => Err((Refusal::NoRoute, Some(target))),
    }
}

/// Whether the request arrived over TLS.
pub fn is_tls(session: &ServerSession) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

/// The request's `Origin`; several field lines are joined.
fn request_origin(headers: &HeaderMap) -> Option<Vec<u8>> {
    let lines = header_lines(headers, header::ORIGIN);
    match lines.as_slice() {
        [] => None,
        [one] => Some(one.to_vec()),
        several => Some(several.join(&b", "[..])),
    }
}

/// Requests whose answers the cache stores and serves.
fn cacheable(req: &RequestHeader, kind: RequestKind, route: &Route) -> bool {
    route.cache_enabled
        && (req.method == http::Method::GET
            || req.method == http::Method::HEAD
            || (kind == RequestKind::Preflight && route.cors_mode == CorsMode::Upstream))
}

/// Whether the request may see the debug header: the route says so, or it sent the admin
/// token (compared in constant time; without a configured token only the route flag counts).
fn wants_debug(req: &RequestHeader, route: &Route, admin_token: Option<&str>) -> bool {
    if route.debug {
        return true;
    }
    let (Some(sent), Some(token)) = (req.headers.get(DEBUG_HEADER), admin_token) else {
        return false;
    };
    crate::admin::constant_time_eq(sent.as_bytes().trim_ascii(), token.as_bytes())
}

/// What the request says about the freshness it accepts: its `Cache-Control`, parsed, and
/// `Pragma: no-cache`. Most requests send neither, and skip the parsing.
pub fn freshness_asks(headers: &HeaderMap) -> (Option<CacheControl>, bool) {
    let cache_control = headers
        .contains_key(header::CACHE_CONTROL)
        .then(|| CacheControl::parse(header_lines(headers, header::CACHE_CONTROL)));
    let pragma_no_cache = headers.contains_key(header::PRAGMA)
        && freshness::pragma_has_no_cache(header_lines(headers, header::PRAGMA));
    (cache_control, pragma_no_cache)
}

/// The facts of a routed request.
pub fn facts(
    session: &ServerSession,
    route: &Route,
    target: RequestTarget,
    admin_token: Option<&str>,
) -> RequestFacts {
    let req = session.req_header();
    let origin = request_origin(&req.headers);
    // Joined lines read like one line holding a list: both are several origins.
    let several_origins = origin.as_deref().is_some_and(|o| o.contains(&b','));
    let acrm = req
        .headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .map(HeaderValue::as_bytes);
    let kind = cors::classify(req.method.as_str(), origin.as_deref(), acrm);
    let (cache_control, pragma_no_cache) = freshness_asks(&req.headers);
    RequestFacts {
        kind,
        traffic: TrafficKind::of(kind, req.method.as_str()),
        target,
        tls: is_tls(session),
        cache_control,
        pragma_no_cache,
        cacheable: cacheable(req, kind, route),
        debug: wants_debug(req, route, admin_token),
        origin,
        several_origins,
        coding: compression::choose_coding(header_lines(&req.headers, header::ACCEPT_ENCODING)),
        preflight: (kind == RequestKind::Preflight).then(|| PreflightAsk {
            method: acrm.unwrap_or_default().to_vec(),
            headers: cors::normalize_request_headers(header_lines(
                &req.headers,
                header::ACCESS_CONTROL_REQUEST_HEADERS,
            )),
        }),
    }
}
