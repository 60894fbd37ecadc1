//! The cache key and the variance, each built in one place: the primary key once per request
//! (lookup, store, the direct-hit path, invalidation after an unsafe method), the variance once
//! per stored response a request is matched against, the purge tags once per stored response.

use std::borrow::Cow;

use cors_edge_core::cors::{self, RequestKind};
use cors_edge_core::key::{self, KeyParts, PreflightParts};
use cors_edge_core::key_query;
use cors_edge_core::purge::{self, EntryTags};
use cors_edge_core::vary::{self, StoredVary};
use cors_edge_store::key_hash;
use http::header::{self, HeaderMap, HeaderValue};
use pingora::cache::key::HashBinary;
use pingora::cache::CacheKey;
use pingora::http::RequestHeader;

#[cfg(doc)]
use super::record::RequestRecord;
use super::record::{KeyFacts, RequestFacts, VarianceMemo};
use super::request_checks::header_lines;
use crate::runtime::{CorsMode, Route};

/// The response fields that tag an entry for purges (and are removed before the client).
pub const SURROGATE_KEY: http::HeaderName = http::HeaderName::from_static("surrogate-key");
pub const CACHE_TAG: http::HeaderName = http::HeaderName::from_static("cache-tag");

/// The primary key of a request to `path_and_query` on the request's route, host and scheme.
fn primary_of(
    route: &Route,
    facts: &RequestFacts,
    path_and_query: &str,
    preflight: Option<PreflightParts<'_>>,
) -> CacheKey {
    let primary = key::primary_key(&KeyParts {
        route: &route.name,
        tls: facts.tls,
        host: facts.host(),
        path_and_query,
        preflight,
    });
    // Hashed once here, with the store's keyed hash: every lookup, store and invalidation
    // reuses it.
    let hash = key_hash::primary(&primary);
    let mut key = CacheKey::new(primary, String::new());
    key.set_primary_bin_override(hash);
    key
}

/// The request's primary key and its parts.
pub fn request_key(route: &Route, facts: &RequestFacts) -> KeyFacts {
    let sent = facts.target.path_and_query.as_str();
    // `cache.key_query` shapes the key's query only; the upstream gets `sent`.
    let path_and_query = &*key_query::key_target(route.key_query.as_ref(), sent);
    let preflight = facts.preflight.as_ref().map(|ask| PreflightParts {
        origin: facts.origin.as_deref().unwrap_or_default(),
        request_method: &ask.method,
        request_headers: &ask.headers,
    });
    KeyFacts {
        key: primary_of(route, facts, path_and_query, preflight),
        path: facts.target.path().to_string(),
        path_and_query: path_and_query.to_string(),
    }
}

/// The primary keys a successful unsafe request invalidates (RFC 9111 §4.4): its own URL's
/// (the request's key, since the method is not part of it) and those of `Location` and
/// `Content-Location` on the same host.
pub fn invalidated_keys<'a>(
    route: &Route,
    facts: &RequestFacts,
    own: &'a CacheKey,
    response: &HeaderMap,
) -> Vec<std::borrow::Cow<'a, CacheKey>> {
    let mut keys = vec![std::borrow::Cow::Borrowed(own)];
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        let Some(value) = response.get(&name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        let Ok(uri) = value.parse::<http::Uri>() else {
            continue;
        };
        let same_host = uri
            .authority()
            .is_none_or(|a| a.as_str().eq_ignore_ascii_case(facts.host()));
        if let (true, Some(pq)) = (same_host, uri.path_and_query()) {
            if pq.as_str().starts_with('/') {
                let target = key_query::key_target(route.key_query.as_ref(), pq.as_str());
                keys.push(std::borrow::Cow::Owned(primary_of(
                    route, facts, &target, None,
                )));
            }
        }
    }
    keys
}

/// Whether one stored copy serves every origin: edge mode (CORS is stamped after the cache),
/// or in upstream mode core's rule (`ACAO: *` without `Vary: Origin`) on the stored fields.
/// Worked out once per stored header set a request meets: the variance remembers it
/// ([`VarianceMemo::shared`]) and [`RequestRecord::shared_across_origins`] reads it back.
pub fn shared_across_origins(route: &Route, stored: &HeaderMap) -> bool {
    match route.cors_mode {
        CorsMode::Edge => true,
        CorsMode::Upstream => cors::shared_across_origins(
            &header_lines(stored, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            header_lines(stored, header::VARY),
        ),
    }
}

/// Whether `headers` are the header set the memo was made from (its `Vary` and ACAO lines).
pub fn memo_matches(memo: &VarianceMemo, headers: &HeaderMap) -> bool {
    same_lines(headers, header::VARY, &memo.vary)
        && same_lines(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, &memo.acao)
}

fn same_lines(headers: &HeaderMap, name: header::HeaderName, memo: &[HeaderValue]) -> bool {
    let mut lines = headers.get_all(name).iter();
    memo.iter().all(|m| lines.next() == Some(m)) && lines.next().is_none()
}

/// The variance the stored response with `stored` headers selects for this request: the
/// values of the request fields its `Vary` names and, unless one copy serves every origin,
/// the request's `Origin`. `stored_vary` is what those headers' `Vary` and grant say, worked
/// out when they were stored (or by the caller, from the same headers, with
/// [`cors_edge_store::stored_vary`]). Remembered in `memo` for the same stored `Vary` and ACAO.
pub fn variance(
    memo: &mut Option<VarianceMemo>,
    stored: &HeaderMap,
    stored_vary: &StoredVary,
    route: &Route,
    facts: &RequestFacts,
    req: &RequestHeader,
) -> Option<HashBinary> {
    if facts.kind == RequestKind::Preflight {
        // Everything a preflight answer depends on is already in its primary key.
        return None;
    }
    if let Some(known) = memo.as_ref() {
        if memo_matches(known, stored) {
            return known.variance;
        }
    }
    let mut parts: Vec<(Cow<'static, str>, Vec<u8>)> = Vec::new();
    if let vary::VaryFields::Fields(names) = &stored_vary.fields {
        for name in names.iter().filter(|n| *n != "origin") {
            let value = key::vary_header_value(
                name,
                header_lines(&req.headers, name.as_str()),
                facts.coding,
            );
            parts.push((Cow::Owned(name.clone()), value));
        }
    }
    // `routes[].key_headers`: as if the response named them in `Vary`.
    for name in &route.key_headers {
        let value = key::vary_header_value(
            name,
            header_lines(&req.headers, name.as_str()),
            facts.coding,
        );
        parts.push((Cow::Owned(format!(":key:{name}")), value));
    }
    let shared = match route.cors_mode {
        CorsMode::Edge => true,
        CorsMode::Upstream => stored_vary.shared_across_origins,
    };
    if !shared {
        parts.push((
            Cow::Borrowed(key::ORIGIN_VARIANCE_NAME),
            key::origin_variance_value(facts.origin.as_deref()),
        ));
    }
    // Borrowed: the parts are kept in the memo (for the debug header), not copied for the hash.
    let mut hasher = key_hash::VarianceHasher::default();
    for (name, value) in &parts {
        hasher.add(name, value);
    }
    let result = hasher.finish();
    // Field values are reference-counted: remembering them copies no bytes.
    let lines = |name| stored.get_all(name).iter().cloned().collect();
    *memo = Some(VarianceMemo {
        vary: lines(header::VARY),
        acao: lines(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        variance: result,
        shared,
        parts,
    });
    result
}

/// What an entry about to be stored is cached under, for purges: the request's host and path,
/// the origin it is a variant of (none when one copy serves every origin), its surrogate keys.
pub fn purge_tags(
    facts: &RequestFacts,
    key: &KeyFacts,
    response: &HeaderMap,
    shared: bool,
) -> EntryTags {
    let origin = if shared {
        None
    } else {
        facts
            .origin
            .as_deref()
            .map(|o| purge::normalize_origin(&String::from_utf8_lossy(o)))
    };
    EntryTags {
        // As in the key: case, trailing dot and the scheme's default port.
        host: key::key_host(facts.host(), facts.tls),
        path: key.path.clone(),
        path_and_query: key.path_and_query.clone(),
        origin,
        tags: purge::surrogate_tags(
            header_lines(response, SURROGATE_KEY),
            header_lines(response, CACHE_TAG),
        ),
    }
}
