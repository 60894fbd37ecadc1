//! The way to the upstream and back: the peer, retries over a pool, the forwarded request's
//! headers, and what the upstream's response header changes (invalidation after an unsafe
//! method, the 304 to merge).

use std::time::Instant;

use pingora::cache::key::CacheHashKey;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::Session;

use super::keys;
use super::record::{RequestRecord, Routed};
use super::request_checks::DEBUG_HEADER;
use crate::runtime::{CorsMode, Route};
use crate::state::SharedState;

/// Request fields that only describe CORS to the gateway: in edge mode the upstream must
/// produce one body for every origin.
const CORS_REQUEST_FIELDS: [http::HeaderName; 3] = [
    http::header::ORIGIN,
    http::header::ACCESS_CONTROL_REQUEST_METHOD,
    http::header::ACCESS_CONTROL_REQUEST_HEADERS,
];

pub fn peer(route: &Route) -> Result<Box<HttpPeer>> {
    let upstream = &route.upstream;
    let Some(backend) = upstream.pool.select(b"", 256) else {
        return Error::e_explain(
            HTTPStatus(502),
            format!("upstream {}: no healthy server", upstream.name),
        );
    };
    // The address as it is: formatted for `HttpPeer::new` to parse back, it cost each miss about
    // 1% of its instructions (and a backend that is not an IP address would make it panic).
    let Some(&addr) = backend.addr.as_inet() else {
        return Error::e_explain(
            HTTPStatus(502),
            format!(
                "upstream {}: {} is not an IP address",
                upstream.name, backend.addr
            ),
        );
    };
    let mut peer = HttpPeer::new(addr, false, String::new());
    peer.options.connection_timeout = Some(upstream.connect_timeout);
    peer.options.read_timeout = Some(upstream.read_timeout);
    Ok(Box::new(peer))
}

/// Round robin gives the next attempt another server; stop after trying each once.
pub fn retry_after_connect_failure(record: &mut RequestRecord, mut e: Box<Error>) -> Box<Error> {
    record.connect_failures += 1;
    let servers = record
        .route()
        .map_or(1, |r| r.upstream.pool.backends().get_backend().len());
    if record.connect_failures < servers {
        e.set_retry(true);
    }
    e
}

/// The request as the upstream gets it: forwarding headers and override headers as
/// [`cors_edge_core::forwarding`] decides (the gateway's own `X-Forwarded-*`/`Forwarded`/
/// `X-Real-IP` unless the peer is a trusted proxy; override headers and the route's
/// `strip_request_headers` removed), no debug token, and in edge mode no CORS request fields.
pub fn prepare_request(
    session: &Session,
    upstream_request: &mut RequestHeader,
    record: &mut RequestRecord,
) -> Result<()> {
    if let Some(Routed { route, facts, .. }) = &record.routed {
        use cors_edge_core::forwarding::{ForwardedRequest, HeaderEdit};
        let forwarding_facts = ForwardedRequest {
            peer: session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip()),
            tls: facts.tls,
            host: facts.host(),
            local_port: session
                .server_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.port()),
            method: upstream_request.method.as_str(),
            from_cluster_peer: record.peer.from_peer.is_some(),
        };
        let edits = route.forwarding.upstream_edits(
            &forwarding_facts,
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
    }
    send_target(upstream_request, record)?;
    if let Some(facts) = record.facts() {
        super::compress::prepare_request(upstream_request, facts.coding)?;
    }
    // The debug token is for the gateway only.
    upstream_request.remove_header(&DEBUG_HEADER);
    if record.cors_mode() == Some(CorsMode::Edge) {
        for name in &CORS_REQUEST_FIELDS {
            upstream_request.remove_header(name);
        }
    }
    record.upstream_sent = Some(Instant::now());
    Ok(())
}

/// What every request sent on (to the upstream or to the key's owner) shares. The target: the
/// origin-form and the host the key was built from, whatever form the client used, so an
/// absolute-form target (`GET http://shop.example/p`) is never passed on verbatim and nothing
/// can answer for another URL than the one cached. Whether a body comes back: Pingora fetches a
/// cacheable HEAD as a GET, to store the body, so it is decided by what is sent, not by what the
/// client asked.
pub(super) fn send_target(
    upstream_request: &mut RequestHeader,
    record: &mut RequestRecord,
) -> Result<()> {
    record.upstream_body_follows = upstream_request.method != http::Method::HEAD;
    let Some(facts) = record.facts() else {
        return Ok(());
    };
    let target = &facts.target;
    if upstream_request.raw_path() != target.path_and_query.as_bytes() {
        let uri = http::Uri::try_from(target.path_and_query.as_str())
            .or_err(InternalError, "the parsed request-target is not a URI")?;
        upstream_request.set_uri(uri);
    }
    if target.rewritten() {
        let host = cors_edge_core::key::key_host(&target.host, facts.tls);
        upstream_request.insert_header(http::header::HOST, host)?;
    }
    Ok(())
}

pub(super) fn is_unsafe_method(method: &http::Method) -> bool {
    !matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::TRACE
    )
}

/// What the upstream's response header changes for the cache: a successful unsafe request
/// invalidates the stored responses for its URL and those of `Location`/`Content-Location`
/// (RFC 9111 §4.4); a 304 is kept to be merged into the stored response.
pub fn on_response_header(
    state: &SharedState,
    session: &Session,
    record: &mut RequestRecord,
    route: &Route,
    upstream_response: &ResponseHeader,
) {
    if let Some(sent) = record.upstream_sent {
        let elapsed = sent.elapsed();
        record.upstream_duration = Some(elapsed);
        route
            .metrics
            .upstream_duration
            .observe(elapsed.as_secs_f64());
    }
    let req = session.req_header();
    if is_unsafe_method(&req.method) && upstream_response.status.as_u16() < 400 {
        if let Some(Routed { facts, key, .. }) = &record.routed {
            for key in keys::invalidated_keys(route, facts, &key.key, &upstream_response.headers) {
                state.store.invalidate_primary(key.primary_bin());
            }
        }
    }
    if upstream_response.status == http::StatusCode::NOT_MODIFIED {
        record.not_modified = Some(upstream_response.headers.clone());
    }
}
