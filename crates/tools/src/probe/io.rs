//! The one place the probe does I/O: sends the planned requests, in order, each on a
//! fresh connection so a connection's state can never influence the next answer, and
//! records what came back. Failures are recorded, not fatal.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, AGE, VARY,
};
use http::{HeaderMap, HeaderValue, Uri};

use super::checks::Observed;
use super::model::{Exchange, SeenHeaders};
use super::plan::{Planned, ProbePlan};
use crate::cors;
use crate::net::{self, Endpoint, Negotiated, RequestError};
use crate::request::{self, CorsShape};
use crate::target::TargetUrl;

/// Sends every planned request to `target` through `endpoint`; returns what was observed
/// and the first connection's negotiated protocol.
pub(crate) async fn send_all(
    plan: &ProbePlan,
    planned: &[Planned],
    target: &TargetUrl,
    base_headers: &HeaderMap,
    endpoint: &Endpoint,
) -> (Vec<Observed>, Option<Negotiated>) {
    let mut observed = Vec::with_capacity(planned.len());
    let mut connection = None;
    for (index, planned) in planned.iter().enumerate() {
        let path = plan.path_on(target, planned.fresh);
        let (seen, negotiated) =
            send_one(plan, endpoint, base_headers, index + 1, planned, path).await;
        if connection.is_none() {
            connection = negotiated;
        }
        observed.push(seen);
    }
    (observed, connection)
}

async fn send_one(
    plan: &ProbePlan,
    endpoint: &Endpoint,
    base_headers: &HeaderMap,
    step: usize,
    planned: &Planned,
    path: String,
) -> (Observed, Option<Negotiated>) {
    let mut exchange = Exchange {
        step,
        kind: planned.kind,
        try_number: planned.try_number,
        method: if planned.preflight.is_some() {
            "OPTIONS"
        } else {
            "GET"
        }
        .to_string(),
        path,
        origin: planned.origin.clone(),
        request_method: planned.preflight.as_ref().map(|(method, _)| method.clone()),
        request_headers: planned
            .preflight
            .as_ref()
            .filter(|(_, headers)| !headers.is_empty())
            .map(|(_, headers)| headers.join(",")),
        status: None,
        error: None,
        headers: SeenHeaders::default(),
    };
    let failed = |mut exchange: Exchange, error: String| {
        exchange.error = Some(error);
        Observed {
            exchange,
            headers: HeaderMap::new(),
        }
    };

    let request = match build_request(base_headers, &exchange) {
        Ok(request) => request,
        Err(message) => return (failed(exchange, message), None),
    };
    let mut negotiated = None;
    let outcome = tokio::time::timeout(plan.timeout, async {
        let (mut sender, connection) = net::http::open(endpoint).await?;
        negotiated = Some(connection);
        sender.exchange(endpoint, request).await
    })
    .await
    .unwrap_or(Err(RequestError::Timeout));

    match outcome {
        Ok(head) => {
            exchange.status = Some(head.status.as_u16());
            exchange.headers = seen_headers(&head.headers);
            let seen = Observed {
                exchange,
                headers: head.headers,
            };
            (seen, negotiated)
        }
        Err(err) => (failed(exchange, err.to_string()), negotiated),
    }
}

fn build_request(
    base_headers: &HeaderMap,
    exchange: &Exchange,
) -> Result<http::Request<net::http::Body>, String> {
    let path: Uri = exchange
        .path
        .parse()
        .map_err(|err| format!("path `{}`: {err}", exchange.path))?;
    let value = |text: &str| {
        HeaderValue::from_str(text).map_err(|_| format!("`{text}` is not a valid header value"))
    };
    let origin = exchange.origin.as_deref().map(value).transpose()?;
    let method = exchange.request_method.as_deref().map(value).transpose()?;
    let requested = exchange.request_headers.as_deref().map(value).transpose()?;
    let shape = CorsShape {
        origin: origin.as_ref(),
        preflight: method.as_ref().map(|method| (method, requested.as_ref())),
    };
    Ok(request::build(base_headers, path, shape))
}

pub(crate) fn seen_headers(headers: &HeaderMap) -> SeenHeaders {
    SeenHeaders {
        access_control_allow_origin: cors::joined(headers, ACCESS_CONTROL_ALLOW_ORIGIN.as_str()),
        access_control_allow_credentials: cors::joined(
            headers,
            ACCESS_CONTROL_ALLOW_CREDENTIALS.as_str(),
        ),
        access_control_allow_methods: cors::joined(headers, ACCESS_CONTROL_ALLOW_METHODS.as_str()),
        access_control_allow_headers: cors::joined(headers, ACCESS_CONTROL_ALLOW_HEADERS.as_str()),
        access_control_expose_headers: cors::joined(
            headers,
            ACCESS_CONTROL_EXPOSE_HEADERS.as_str(),
        ),
        access_control_max_age: cors::joined(headers, ACCESS_CONTROL_MAX_AGE.as_str()),
        vary: cors::joined(headers, VARY.as_str()),
        cache_status: cors::cache_status(headers)
            .map(|(name, value)| format!("{}: {value}", display_name(name))),
        age: cors::joined(headers, AGE.as_str()),
    }
}

fn display_name(name: &str) -> &str {
    match name {
        "x-cache" => "X-Cache",
        "cf-cache-status" => "CF-Cache-Status",
        "x-cache-status" => "X-Cache-Status",
        other => other,
    }
}
