//! Revalidation with a 304 (RFC 9111 §4.3.3, §4.3.4): the stored response takes the 304's
//! header fields, and its freshness restarts from the 304, not from the first response.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cors_edge_tests::upstream::http_date;
use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Upstream, UpstreamRequest};

/// No default stale windows: an expired answer is only served after validation.
fn config(upstream: std::net::SocketAddr) -> String {
    GatewayConfig::new(upstream)
        .cache("stale_while_revalidate: 0s, stale_if_error: 0s")
        .yaml()
}

/// First answer: a response already two minutes old (Date in the past) with `max-age=60`, so
/// it is stored stale and revalidated on the next request. Conditional requests get a 304
/// dated now that changes `X-Version`.
fn old_then_304(req: &UpstreamRequest) -> Reply {
    if req.header("if-none-match").as_deref() == Some("\"v1\"") {
        return Reply::status(304)
            .header("date", &http_date(SystemTime::now()))
            .header("cache-control", "max-age=60")
            .header("etag", "\"v1\"")
            .header("x-version", "B");
    }
    Reply::ok("body")
        .header(
            "date",
            &http_date(SystemTime::now() - Duration::from_secs(120)),
        )
        .header("cache-control", "max-age=60")
        .header("etag", "\"v1\"")
        .header("x-version", "A")
}

#[test]
fn http_date_formats_known_instants() {
    assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(
        http_date(UNIX_EPOCH + Duration::from_secs(1_704_067_199)),
        "Sun, 31 Dec 2023 23:59:59 GMT"
    );
    assert_eq!(
        http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "Tue, 29 Feb 2000 00:00:00 GMT"
    );
}

#[tokio::test]
async fn a_304_makes_the_stored_response_fresh_from_the_304s_date() {
    let upstream = Upstream::start(old_then_304).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));

    let first = request(gateway.addr, "GET", "/r", &[]).await;
    assert_eq!((first.status, first.cache().as_str()), (200, "MISS"));
    assert_eq!(first.header("x-version"), "A");

    let second = request(gateway.addr, "GET", "/r", &[]).await;
    assert_eq!(
        (
            second.status,
            second.cache().as_str(),
            second.text().as_str()
        ),
        (200, "REVALIDATED", "body")
    );
    assert_eq!(second.header("x-version"), "B");
    let conditional = upstream.requests();
    assert_eq!(conditional.len(), 2);
    assert_eq!(
        conditional[1].header("if-none-match").as_deref(),
        Some("\"v1\"")
    );

    // Fresh for 60 s from the 304, whatever the first response's Date said.
    let third = request(gateway.addr, "GET", "/r", &[]).await;
    assert_eq!(
        (third.status, third.cache().as_str(), third.text().as_str()),
        (200, "HIT", "body")
    );
    assert_eq!(third.header("x-version"), "B");
    assert_eq!(third.header("etag"), "\"v1\"");
    let age: u64 = third.header("age").parse().expect("numeric Age");
    assert!(
        age < 60,
        "Age {age} counts from the first response, not the 304"
    );
    assert_eq!(upstream.total(), 2);
}

/// First answer: `Age: 100` with `max-age=60` (stored stale); conditional requests get a 304
/// without `Age`, so the refreshed response is new.
fn aged_then_304(req: &UpstreamRequest) -> Reply {
    if req.header("if-none-match").is_some() {
        return Reply::status(304)
            .header("cache-control", "max-age=60")
            .header("etag", "\"v1\"");
    }
    Reply::ok("body")
        .header("age", "100")
        .header("cache-control", "max-age=60")
        .header("etag", "\"v1\"")
}

#[tokio::test]
async fn the_first_responses_age_does_not_outlive_a_304() {
    let upstream = Upstream::start(aged_then_304).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    let first = request(gateway.addr, "GET", "/r", &[]).await;
    assert_eq!(
        (first.cache().as_str(), first.header("age").as_str()),
        ("MISS", "100")
    );
    let revalidated = request(gateway.addr, "GET", "/r", &[]).await;
    assert_eq!(revalidated.cache(), "REVALIDATED");

    let hit = request(gateway.addr, "GET", "/r", &[]).await;
    assert_eq!((hit.status, hit.cache().as_str()), (200, "HIT"));
    let age: u64 = hit.header("age").parse().expect("numeric Age");
    assert!(age < 60, "Age {age} still counts the first response's Age");
    assert_eq!(upstream.total(), 2);
}

#[tokio::test]
async fn request_max_age_after_a_304_sees_the_age_since_the_304() {
    let upstream = Upstream::start(aged_then_304).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    request(gateway.addr, "GET", "/r", &[]).await;
    let revalidated = request(gateway.addr, "GET", "/r", &[]).await;
    assert_eq!(revalidated.cache(), "REVALIDATED");

    // The copy is a few milliseconds old since the 304; the first response was 100 s old.
    let hit = request(
        gateway.addr,
        "GET",
        "/r",
        &[("cache-control", "max-age=30")],
    )
    .await;
    assert_eq!((hit.status, hit.cache().as_str()), (200, "HIT"));
    assert_eq!(upstream.total(), 2);
}
