//! Answers the gateway writes itself: refusals, the edge preflight, `only-if-cached` misses,
//! and the JSON error answers for upstream failures.

use bytes::Bytes;
use pingora::cache::CachePhase;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::protocols::http::ServerSession;
use pingora::proxy::{FailToProxy, Session};

use super::record::RequestRecord;
use super::status::{self, Answerer};

/// Writes a whole answer: `status`, `headers`, a JSON `body` (or none), `X-Cache`. `phase`:
/// Pingora's cache phase at the time ([`status::NOT_CONSULTED`] before the cache is
/// consulted).
pub async fn answer(
    session: &mut ServerSession,
    phase: CachePhase,
    record: &mut RequestRecord,
    status: u16,
    headers: &[(&'static str, String)],
    body: &'static str,
) -> Result<bool> {
    let mut resp = ResponseHeader::build(status, Some(headers.len() + 3))?;
    for (name, value) in headers {
        resp.insert_header(*name, value.as_str())?;
    }
    resp.insert_header("content-length", body.len().to_string())?;
    if !body.is_empty() {
        resp.insert_header("content-type", "application/json")?;
    }
    status::write(&mut resp, status::of(phase, record));
    let head_only = body.is_empty() || session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(resp)).await?;
    if !head_only {
        session
            .write_response_body(Bytes::from_static(body.as_bytes()), true)
            .await?;
    }
    Ok(true)
}

/// The status and JSON body for a failed proxy attempt; status 0 means the client is gone
/// and nothing is sent.
pub fn failure(e: &Error) -> (u16, &'static str) {
    match e.etype() {
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
            ErrorSource::Internal | ErrorSource::Unset => (500, "{\"error\":\"internal error\"}\n"),
        },
    }
}

/// Sends the error answer for `e` (built here rather than with `respond_error_with_body`,
/// which sends the JSON body without `Content-Type` and the answer without `X-Cache`).
pub async fn fail_to_proxy(
    session: &mut Session,
    e: &Error,
    record: &mut RequestRecord,
) -> FailToProxy {
    let phase = session.cache.phase();
    FailToProxy {
        error_code: send_failure(session, phase, e, record).await,
        can_reuse_downstream: false,
    }
}

/// The error answer for `e`, sent unless the client is gone; returns its status (0: none).
pub async fn send_failure(
    session: &mut ServerSession,
    phase: CachePhase,
    e: &Error,
    record: &mut RequestRecord,
) -> u16 {
    let (code, body) = failure(e);
    if code > 0 {
        record.answerer = Answerer::Failure;
        let cache_status = status::of(phase, record);
        let mut resp = ServerSession::generate_error(code);
        if !body.is_empty() {
            if let Err(header_error) = resp
                .set_content_length(body.len())
                .and_then(|()| resp.insert_header("content-type", "application/json"))
            {
                tracing::warn!("cannot describe the error body: {header_error}");
            }
        }
        status::write(&mut resp, cache_status);
        let body_bytes = Bytes::from_static(body.as_bytes());
        if let Err(write_error) = session.write_error_response(resp, body_bytes).await {
            tracing::debug!("cannot send the error response: {write_error}");
        }
    }
    code
}
