//! Pingora's cache hooks mapped onto core's rules: whether to use the cache, the request's
//! verdict on a stored response, and whether (and how long) a response is stored.

use std::time::{Duration, SystemTime};

use cors_edge_core::cors::RequestKind;
use cors_edge_core::freshness::{self, CacheControl, HitAction, NotStorable, StorageDecision};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use pingora::cache::{CacheMeta, ForcedFreshness, NoCacheReason, RespCacheable};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::keys;
use super::record::{NotStoredReason, RequestRecord, Routed, StorageVerdict};
use super::request_checks::header_lines;
use crate::runtime::Runtime;
use crate::state::SharedState;

/// Addressed to this cache (and removed before the client).
pub const SURROGATE_CONTROL: HeaderName = HeaderName::from_static("surrogate-control");

/// The field lines a response's governing directives are chosen from (see
/// `freshness::governing_directives`): the configured targeted fields, `Surrogate-Control`
/// and `Cache-Control`.
struct DirectiveLines<'h> {
    targeted: Vec<Vec<&'h [u8]>>,
    surrogate_control: Vec<&'h [u8]>,
    cache_control: Vec<&'h [u8]>,
}

impl<'h> DirectiveLines<'h> {
    fn of(headers: &'h HeaderMap, targeted_fields: &[HeaderName]) -> Self {
        DirectiveLines {
            targeted: targeted_fields
                .iter()
                .map(|name| header_lines(headers, name))
                .collect(),
            surrogate_control: header_lines(headers, SURROGATE_CONTROL),
            cache_control: header_lines(headers, header::CACHE_CONTROL),
        }
    }

    fn view(&self) -> freshness::ResponseDirectives<'_> {
        freshness::ResponseDirectives {
            targeted: &self.targeted,
            surrogate_control: &self.surrogate_control,
            cache_control: &self.cache_control,
        }
    }
}

/// Turns Pingora's cache on for a cacheable request.
pub fn enable(state: &SharedState, session: &mut Session, record: &RequestRecord) {
    let Some(routed) = &record.routed else {
        return;
    };
    if !routed.facts.cacheable {
        return;
    }
    session
        .cache
        .enable(state.store, None, None, Some(state.cache_lock), None);
    session
        .cache
        .set_max_file_size_bytes(routed.runtime.cache.max_object_bytes);
}

/// The request's verdict on the stored response Pingora found, recorded, and what Pingora must
/// do about it.
pub fn on_hit(record: &mut RequestRecord, meta: &CacheMeta) -> Option<ForcedFreshness> {
    let Routed { facts, runtime, .. } = record.routed.as_ref()?;
    if !facts.constrains_freshness() {
        // The verdict would be Serve (fresh) or Stale (left to Pingora): skip the parsing.
        return None;
    }
    let default_cc = CacheControl::default();
    let stored = DirectiveLines::of(meta.headers(), &runtime.cache.targeted_fields);
    // `updated`, not `created`: Pingora keeps the first `created` across revalidations,
    // while `updated` is when this copy's current age started (see `store_decision`).
    let verdict = freshness::hit_verdict(
        facts.cache_control.as_ref().unwrap_or(&default_cc),
        facts.pragma_no_cache,
        &stored.view(),
        meta.updated(),
        meta.fresh_until(),
        SystemTime::now(),
    );
    record.hit = Some(verdict);
    match verdict.action {
        HitAction::Serve | HitAction::Stale => None,
        HitAction::ServeStale => Some(ForcedFreshness::ForceFresh),
        HitAction::Revalidate => Some(ForcedFreshness::ForceExpired),
    }
}

/// Whether Pingora may serve the stored copy stale: called inside the response's
/// `stale-while-revalidate` window (`error` none), or on an upstream failure for
/// `stale-if-error` (unreachable, or a `5xx` answer) — unless the request forbade a stale copy.
pub fn serve_stale(record: &RequestRecord, error: Option<&pingora::Error>) -> bool {
    if record.no_stale() {
        return false;
    }
    match error {
        None => true,
        Some(e) => {
            matches!(e.etype(), pingora::ErrorType::HTTPStatus(code) if *code >= 500)
                || e.esource() == &pingora::ErrorSource::Upstream
        }
    }
}

/// The stored response with a 304's fields merged in (RFC 9111 §4.3.4): Pingora merges only a
/// few of them, and freshness must count from the 304's `Date` and `Age`.
fn merge_not_modified(
    stored: &mut ResponseHeader,
    not_modified: &HeaderMap,
    old: Option<&CacheMeta>,
) {
    let mut names: Vec<&HeaderName> = not_modified
        .keys()
        .filter(|name| freshness::updated_by_304(name.as_str()))
        .collect();
    names.dedup();
    // The stored `Age` described the first response.
    stored.remove_header(&header::AGE);
    for name in names {
        stored.remove_header(name);
        for value in not_modified.get_all(name) {
            if let Err(e) = stored.append_header(name.clone(), value.clone()) {
                tracing::warn!("cannot merge {name} from a 304: {e}");
            }
        }
    }
    if let Some(etag) = old.and_then(|meta| meta.headers().get(header::ETAG)) {
        let etag = etag.clone();
        if let Err(e) = stored.insert_header(header::ETAG, etag) {
            tracing::warn!("cannot keep the stored ETag: {e}");
        }
    }
}

fn uncacheable(record: &mut RequestRecord, reason: NotStoredReason) -> RespCacheable {
    record.storage = Some(StorageVerdict::NotStored(reason));
    RespCacheable::Uncacheable(NoCacheReason::Custom(reason.as_str()))
}

/// Whether and how long the response is stored; the verdict and the entry's purge tags are
/// recorded. The 304 merge, then this cache's own limits, then core's storage rules (the
/// preflight rule or RFC 9111's), then the tags.
pub fn store_decision(
    state: &SharedState,
    session: &Session,
    resp: &ResponseHeader,
    record: &mut RequestRecord,
) -> RespCacheable {
    let merged_304;
    let resp = match record.not_modified.take() {
        Some(not_modified) => {
            let mut merged = resp.clone();
            merge_not_modified(&mut merged, &not_modified, session.cache.maybe_cache_meta());
            merged_304 = merged;
            &merged_304
        }
        None => resp,
    };
    let Some(routed) = &record.routed else {
        return RespCacheable::Uncacheable(NoCacheReason::Custom("no_route"));
    };
    // A local copy of the owner's answer (sharded cache) stays fresh `cluster.local_ttl` at most.
    let local_cap = super::cluster_route::local_cap(state, record);
    let decided = match over_limits(state, session, record, &routed.runtime, local_cap) {
        Some(reason) => Err(reason),
        None => {
            let directives =
                DirectiveLines::of(&resp.headers, &routed.runtime.cache.targeted_fields);
            let now = SystemTime::now();
            if record.kind() == RequestKind::Preflight {
                preflight_meta(routed, resp, &directives, now)
            } else {
                let sent_at = record.started_at;
                response_meta(routed, session, resp, &directives, now, sent_at, local_cap)
            }
            .map_err(NotStoredReason::Rule)
        }
    };
    let (stored, fresh_for) = match decided {
        Ok(stored) => stored,
        Err(reason) => return uncacheable(record, reason),
    };
    record.storage = Some(StorageVerdict::Stored { fresh_for });
    let shared = record
        .routed
        .as_ref()
        .map(|routed| record.shared_across_origins(&routed.route, stored.headers()));
    if let (Some(slot), Some(routed), Some(shared)) = (&record.purge_tags, &record.routed, shared) {
        slot.fill(keys::purge_tags(
            &routed.facts,
            &routed.key,
            stored.headers(),
            shared,
        ));
        slot.describe(super::listing::describe(
            &mut record.variance,
            &routed.route,
            &routed.facts,
            session.req_header(),
            stored.headers(),
        ));
    }
    RespCacheable::Cacheable(stored)
}

/// This cache's own reasons not to store, before any rule about the response: no local copy
/// in a ring (`local_ttl: 0s`), the key's variants at `max_variants`, an encoding no client of
/// the variant could be sure to decode.
fn over_limits(
    state: &SharedState,
    session: &Session,
    record: &RequestRecord,
    runtime: &Runtime,
    local_cap: Option<Duration>,
) -> Option<NotStoredReason> {
    if local_cap.is_some_and(|cap| cap.is_zero()) {
        return Some(NotStoredReason::LocalTtlZero);
    }
    let cache_key = session.cache.cache_key();
    if cache_key.get_variance_key().is_some()
        && state.store.variants_of(cache_key) >= runtime.cache.max_variants
    {
        return Some(NotStoredReason::MaxVariants);
    }
    if record
        .compression
        .is_some_and(|transform| !transform.storable())
    {
        return Some(NotStoredReason::ForeignCoding);
    }
    None
}

/// A preflight answer as core's preflight rule stores it, and for how long.
fn preflight_meta(
    routed: &Routed,
    resp: &ResponseHeader,
    directives: &DirectiveLines<'_>,
    now: SystemTime,
) -> Result<(CacheMeta, Duration), NotStorable> {
    let ttl = freshness::preflight_storage(
        &directives.view(),
        resp.headers
            .get(header::ACCESS_CONTROL_MAX_AGE)
            .map(HeaderValue::as_bytes),
        resp.status.as_u16(),
        resp.headers
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        routed.route.max_ttl,
        routed.runtime.cache.negative_preflight_ttl,
    )?;
    Ok((CacheMeta::new(now + ttl, now, 0, 0, resp.clone()), ttl))
}

/// A response as RFC 9111's storage rules (core's `storage_decision`) store it: the fields it
/// must not keep removed, fresh until its lifetime ends (capped at `cluster.local_ttl` for a
/// local copy in a ring), with its stale windows; and how long it is fresh from now.
fn response_meta(
    routed: &Routed,
    session: &Session,
    resp: &ResponseHeader,
    directives: &DirectiveLines<'_>,
    now: SystemTime,
    sent_at: SystemTime,
    local_cap: Option<Duration>,
) -> Result<(CacheMeta, Duration), NotStorable> {
    let (route, runtime) = (&routed.route, &routed.runtime);
    let req = session.req_header();
    let request = freshness::StorageRequest {
        method: req.method.as_str(),
        cache_control: routed.facts.cache_control.as_ref(),
        authorization: req.headers.contains_key(header::AUTHORIZATION),
        sent_at,
    };
    let expires = header_lines(&resp.headers, header::EXPIRES);
    let date = header_lines(&resp.headers, header::DATE);
    let age = header_lines(&resp.headers, header::AGE);
    let vary_lines = header_lines(&resp.headers, header::VARY);
    let response = freshness::ResponseFacts {
        status: resp.status.as_u16(),
        cache_control: &directives.cache_control,
        targeted: &directives.targeted,
        surrogate_control: &directives.surrogate_control,
        expires: &expires,
        date: &date,
        age: &age,
        vary: &vary_lines,
        set_cookie: resp.headers.contains_key(header::SET_COOKIE),
        has_validator: resp.headers.contains_key(header::ETAG)
            || resp.headers.contains_key(header::LAST_MODIFIED),
        received_at: now,
    };
    let policy = freshness::Policy {
        max_ttl: route.max_ttl,
        default_stale_while_revalidate: runtime.cache.default_stale_while_revalidate,
        default_stale_if_error: runtime.cache.default_stale_if_error,
    };
    let fresh = match freshness::storage_decision(&request, &response, &policy) {
        StorageDecision::DontStore(reason) => return Err(reason),
        StorageDecision::Store(fresh) => fresh,
    };
    let mut stored = resp.clone();
    let hop_by_hop = cors_edge_core::header_list::connection_listed(header_lines(
        &resp.headers,
        header::CONNECTION,
    ));
    for name in fresh.strip_headers.iter().chain(&hop_by_hop) {
        stored.remove_header(name.as_str());
    }
    let created = now.checked_sub(fresh.initial_age).unwrap_or(now);
    let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
    let (fresh_until, fresh_for) = match local_cap {
        Some(local) => (
            (created + fresh.lifetime).min(now + local),
            fresh.fresh_for.min(local),
        ),
        None => (created + fresh.lifetime, fresh.fresh_for),
    };
    // Fresh until `created + lifetime`, which is in the past for a response that arrived
    // stale: how stale it is (for `max-stale`, RFC 9111 §5.2.1.2, and the stale windows)
    // counts from when it really expired, not from its arrival.
    let meta = CacheMeta::new(
        fresh_until,
        created,
        secs(fresh.stale_while_revalidate),
        secs(fresh.stale_if_error),
        stored,
    );
    Ok((meta, fresh_for))
}
