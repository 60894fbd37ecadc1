//! Compression at the edge, wired: the request's coding goes upstream as its `Accept-Encoding`,
//! and an upstream answer the route's policy compresses is encoded in
//! `upstream_response_filter`/`upstream_response_body_filter`, which run before Pingora's
//! cache stores the body. So the cache holds one compressed copy per coding (the variance keys
//! on the coding, see `cors_edge_core::compression`) and a hit costs no compression.

use bytes::Bytes;
use cors_edge_core::compression::{self, Coding, ResponseFacts, Transform};
use http::header::{self, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;

use super::encoder::Encoder;
use super::record::RequestRecord;
use super::request_checks::header_lines;
use crate::runtime::Route;

/// The upstream sees the coding the client's variant is keyed on, and nothing else: an
/// upstream that compresses itself then answers in that coding (passed untouched) or in
/// identity (compressed here), never in one the variant's other clients cannot decode.
pub fn prepare_request(upstream_request: &mut RequestHeader, coding: Coding) -> Result<()> {
    upstream_request.insert_header(header::ACCEPT_ENCODING, coding.as_str())?;
    Ok(())
}

/// The route's decision for an upstream answer, with the header changes compression makes:
/// `Vary: Accept-Encoding` when the answer depends on the coding, and for a compressed one
/// `Content-Encoding`, no `Content-Length` nor `Accept-Ranges` (the length is known only at
/// the end, and ranges apply to the identity copy), a weakened `ETag`. HEAD answers get the
/// same headers as GET's; the encoder is set up whenever the upstream sends a body, which it
/// does for a HEAD that Pingora fetches as a GET to store.
pub fn on_response_header(
    record: &mut RequestRecord,
    route: &Route,
    resp: &mut ResponseHeader,
) -> Result<()> {
    let Some(facts) = record.facts() else {
        return Ok(());
    };
    let coding = facts.coding;
    let transform = {
        let headers = &resp.headers;
        let content_encoding = header_lines(headers, header::CONTENT_ENCODING);
        let cache_control = header_lines(headers, header::CACHE_CONTROL);
        route.compression.decide(
            &ResponseFacts {
                status: resp.status.as_u16(),
                content_type: headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes),
                content_encoding: &content_encoding,
                content_range: headers.contains_key(header::CONTENT_RANGE),
                content_length: headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok()),
                cache_control: &cache_control,
            },
            coding,
        )
    };
    record.compression = Some(transform);
    if transform.varies()
        && !compression_vary_named(header_lines(&resp.headers, header::VARY).iter().copied())
    {
        resp.append_header(header::VARY, "Accept-Encoding")?;
    }
    let Transform::Compress(coding) = transform else {
        return Ok(());
    };
    resp.insert_header(header::CONTENT_ENCODING, coding.as_str())?;
    resp.remove_header(&header::CONTENT_LENGTH);
    resp.remove_header(&header::ACCEPT_RANGES);
    if let Some(etag) = resp
        .headers
        .get(header::ETAG)
        .map(|v| v.as_bytes().to_vec())
    {
        match compression::compressed_etag(&etag) {
            Some(weak) => resp.insert_header(header::ETAG, weak)?,
            None => {
                resp.remove_header(&header::ETAG);
            }
        }
    }
    if record.upstream_body_follows {
        record.encoder = Encoder::new(coding, route.compression.level)
            .or_err(InternalError, "cannot start the response encoder")?;
    }
    Ok(())
}

/// Whether `Vary` already covers `Accept-Encoding` (by name or `*`).
fn compression_vary_named<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> bool {
    cors_edge_core::vary::parse_vary(lines).names("accept-encoding")
}

/// Encodes one chunk of the upstream body in place; the last chunk finishes the stream.
pub fn on_body(record: &mut RequestRecord, body: &mut Option<Bytes>, end: bool) -> Result<()> {
    let Some(encoder) = &record.encoder else {
        return Ok(());
    };
    let input = body.as_deref().unwrap_or_default();
    let encoded = encoder
        .encode(input, end)
        .or_err(InternalError, "while compressing the response")?;
    *body = Some(encoded);
    if end {
        record.encoder = None;
    }
    Ok(())
}
