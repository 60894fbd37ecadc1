//! Fresh hits answered before Pingora's cache state machine (which costs about as much per
//! hit as the rest of the request), in front of the proxy ([`super::front`]) or from
//! `request_filter`: the same key, the same variant choice as Pingora's lookup, the same `Age`
//! and framing, the same answer filter as every other answer.

use std::time::SystemTime;

use cors_edge_store::{FreshHit, MokaStore};
use http::header::{self, HeaderName};
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::protocols::http::ServerSession;

use super::keys;
use super::record::{RequestRecord, Routed};
use super::status::{self, Answerer};

/// Request fields that change how a stored response is sent (conditionals, ranges), may forbid
/// serving it (RFC 9111 §3.5 `Authorization`) or ask for a protocol change: those requests take
/// Pingora's full cache path. Freshness directives are the other reason
/// ([`RequestFacts::constrains_freshness`](super::record::RequestFacts::constrains_freshness)).
const FULL_PATH_REQUEST_FIELDS: [HeaderName; 8] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
    header::AUTHORIZATION,
    header::UPGRADE,
];

/// Whether a cacheable request may be answered by the direct path: it constrains no freshness
/// and sends none of the fields only Pingora's full path handles.
fn takes_direct_path(constrains_freshness: bool, headers: &http::HeaderMap) -> bool {
    !constrains_freshness
        && !headers
            .keys()
            .any(|name| FULL_PATH_REQUEST_FIELDS.contains(name))
}

/// A fresh stored answer for a request that needs nothing else; most hits of a busy cache.
pub fn lookup(
    store: &MokaStore,
    req: &RequestHeader,
    record: &mut RequestRecord,
) -> Option<FreshHit> {
    let RequestRecord {
        routed: Some(Routed {
            route, facts, key, ..
        }),
        variance: memo,
        ..
    } = record
    else {
        return None;
    };
    if !facts.cacheable || !takes_direct_path(facts.constrains_freshness(), &req.headers) {
        return None;
    }
    // The recorded key itself, not a copy: the variance the lookup sets on it is removed
    // again, so the full path and invalidation see the primary key only.
    let key = &mut key.key;
    let hit = store.fresh_hit(
        key,
        |stored, stored_vary| keys::variance(memo, &stored.headers, stored_vary, route, facts, req),
        SystemTime::now(),
    );
    key.remove_variance_key();
    hit
}

/// Sends a hit as Pingora's cache path would (`Age`, HTTP/1.1 framing), through the same
/// answer filter as `response_filter`.
pub async fn serve(
    gateway: &super::Gateway,
    session: &mut ServerSession,
    record: &mut RequestRecord,
    hit: FreshHit,
) -> Result<bool> {
    record.answerer = Answerer::DirectHit;
    let mut header = hit.header;
    header.insert_header(header::AGE, hit.age.as_secs())?;
    header.set_version(http::Version::HTTP_11);
    let status = header.status.as_u16();
    if !matches!(status, 204 | 304)
        && !header.status.is_informational()
        && !header.headers.contains_key(header::CONTENT_LENGTH)
    {
        header.insert_header(header::TRANSFER_ENCODING, "chunked")?;
    }
    // The request has no `Range`: Pingora's filter only announces `Accept-Ranges`.
    pingora::proxy::range_header_filter(session.req_header(), &mut header, None);
    gateway.filter_answer(status::NOT_CONSULTED, &mut header, record);
    let head_only = session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(header)).await?;
    if !head_only {
        session.write_response_body(hit.body, true).await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderName, HeaderValue};

    use super::takes_direct_path;
    use crate::proxy::record::RequestFacts;
    use crate::proxy::request_checks::freshness_asks;

    /// The gate as a request meets it: its freshness asks read by the same function as its
    /// facts, then the direct path's rule.
    fn direct(fields: &[(&str, &str)]) -> bool {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        let (cache_control, pragma_no_cache) = freshness_asks(&headers);
        let constrains = RequestFacts::constrains(cache_control.as_ref(), pragma_no_cache);
        takes_direct_path(constrains, &headers)
    }

    #[test]
    fn only_requests_that_ask_nothing_special_take_the_direct_path() {
        let table: &[(&[(&str, &str)], bool)] = &[
            (&[], true),
            (&[("origin", "https://a.example"), ("accept", "*/*")], true),
            (&[("accept-encoding", "gzip")], true),
            (&[("pragma", "x-other")], true),
            (&[("cache-control", "max-age=0")], false),
            (&[("cache-control", "no-cache")], false),
            (&[("cache-control", "only-if-cached")], false),
            (&[("cache-control", "")], false),
            (&[("pragma", "no-cache")], false),
            (&[("if-none-match", "\"v1\"")], false),
            (
                &[("if-modified-since", "Mon, 07 Dec 2026 00:00:00 GMT")],
                false,
            ),
            (&[("if-match", "*")], false),
            (
                &[("if-unmodified-since", "Mon, 07 Dec 2026 00:00:00 GMT")],
                false,
            ),
            (&[("range", "bytes=0-1")], false),
            (&[("if-range", "\"v1\"")], false),
            (&[("authorization", "Bearer x")], false),
            (&[("upgrade", "websocket")], false),
        ];
        for (fields, expected) in table {
            assert_eq!(direct(fields), *expected, "{fields:?}");
        }
    }
}
