//! Black-box caching behaviour (RFC 9111 for a shared cache, RFC 5861 stale extensions):
//! cache keys, freshness, validation, stale serving, `Vary`, coalescing and size bounds, each
//! against the built `cors-edge` binary in front of a real upstream on loopback.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cors_edge_tests::client::request_with_body;
use cors_edge_tests::upstream::{http_date, Gate};
use cors_edge_tests::{
    request, GatewayConfig, GatewayProcess, Reply, Response, Upstream, UpstreamRequest,
};

/// No default stale windows: after expiry the stored response is only used through validation.
const NO_STALE: &str = "stale_while_revalidate: 0s, stale_if_error: 0s";

/// A gateway with one catch-all route to `upstream`; `cache` goes inside the global `cache:`.
fn start(upstream: &Upstream, cache: &str) -> GatewayProcess {
    GatewayProcess::start(&GatewayConfig::new(upstream.addr).cache(cache).yaml())
}

async fn get(gateway: &GatewayProcess, path: &str) -> Response {
    request(gateway.addr, "GET", path, &[]).await
}

fn summary(r: &Response) -> (u16, String, String) {
    (r.status, r.cache(), r.text())
}

fn expect(r: &Response, status: u16, cache: &str, body: &str) {
    assert_eq!(
        summary(r),
        (status, cache.to_string(), body.to_string()),
        "headers: {:?}",
        r.headers
    );
}

#[test]
fn http_date_formats_known_instants() {
    assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(
        http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert_eq!(
        http_date(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
        "Thu, 29 Feb 2024 12:34:56 GMT"
    );
}

/// A counter that the upstream handler bumps, to make each upstream answer distinguishable.
fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// Sends requests until one is not STALE (a background refresh may still be running), at most
/// 50 times 100 ms apart; returns the last response.
async fn until_not_stale(gateway: &GatewayProcess, path: &str) -> Response {
    let mut last = get(gateway, path).await;
    for _ in 0..50 {
        if last.cache() != "STALE" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = get(gateway, path).await;
    }
    last
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn head_is_answered_from_the_cached_get() {
    let upstream =
        Upstream::start(|_| Reply::ok("full body").header("cache-control", "max-age=60")).await;
    let gateway = start(&upstream, "");
    expect(&get(&gateway, "/h").await, 200, "MISS", "full body");
    let head = request(gateway.addr, "HEAD", "/h", &[]).await;
    assert_eq!((head.status, head.cache().as_str()), (200, "HIT"));
    assert_eq!(
        head.header("content-length"),
        "9",
        "HEAD carries the GET's length"
    );
    assert!(head.has("age"));
    // A raw HEAD, so a body sent by mistake would be seen.
    let raw = cors_edge_tests::send_raw(
        gateway.addr,
        format!(
            "HEAD /h HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            gateway.addr
        )
        .as_bytes(),
    )
    .await;
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(
        !raw.contains("full body"),
        "HEAD answered with a body: {raw}"
    );
    assert_eq!(
        upstream.total(),
        1,
        "HEAD must not reach the upstream: {:?}",
        upstream.requests()
    );
}

#[tokio::test]
async fn head_miss_then_get_never_serves_an_empty_body() {
    let upstream =
        Upstream::start(|_| Reply::ok("full body").header("cache-control", "max-age=60")).await;
    let gateway = start(&upstream, "");
    let head = request(gateway.addr, "HEAD", "/cold", &[]).await;
    assert_eq!(head.status, 200);
    let body = get(&gateway, "/cold").await;
    assert_eq!(
        (body.status, body.text().as_str()),
        (200, "full body"),
        "{:?}",
        body.headers
    );
    let again = get(&gateway, "/cold").await;
    assert_eq!(again.text(), "full body");
}

fn by_method(req: &UpstreamRequest) -> Reply {
    let mut reply =
        Reply::ok(format!("method={}", req.method)).header("cache-control", "max-age=60");
    if req.method == "OPTIONS" {
        reply = reply
            .header("access-control-allow-origin", "https://app.example")
            .header("access-control-allow-methods", "GET, PUT")
            .header("access-control-max-age", "600");
    }
    reply
}

#[tokio::test]
async fn options_never_shares_the_get_object() {
    let upstream = Upstream::start(by_method).await;
    let gateway = start(&upstream, "");
    expect(&get(&gateway, "/o").await, 200, "MISS", "method=GET");
    // A plain OPTIONS and a preflight both go upstream and get their own answer.
    let plain = request(gateway.addr, "OPTIONS", "/o", &[]).await;
    assert_eq!(plain.text(), "method=OPTIONS");
    let preflight_headers = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "PUT"),
    ];
    let preflight = request(gateway.addr, "OPTIONS", "/o", &preflight_headers).await;
    assert_eq!(
        (preflight.text().as_str(), preflight.cache().as_str()),
        ("method=OPTIONS", "MISS")
    );
    let preflight = request(gateway.addr, "OPTIONS", "/o", &preflight_headers).await;
    assert_eq!(
        (preflight.text().as_str(), preflight.cache().as_str()),
        ("method=OPTIONS", "HIT")
    );
    // The GET object is untouched by the OPTIONS traffic.
    expect(&get(&gateway, "/o").await, 200, "HIT", "method=GET");
    assert_eq!(
        upstream
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .count(),
        1
    );
}

#[tokio::test]
async fn get_never_receives_a_cached_options_answer() {
    let upstream = Upstream::start(by_method).await;
    let gateway = start(&upstream, "");
    let preflight_headers = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "PUT"),
    ];
    for _ in 0..2 {
        let preflight = request(gateway.addr, "OPTIONS", "/p", &preflight_headers).await;
        assert_eq!(preflight.text(), "method=OPTIONS");
    }
    // Same path, same origin: a GET still needs its own object.
    let get_from_origin = request(
        gateway.addr,
        "GET",
        "/p",
        &[("origin", "https://app.example")],
    )
    .await;
    expect(&get_from_origin, 200, "MISS", "method=GET");
    expect(&get(&gateway, "/p").await, 200, "MISS", "method=GET");
    let plain = request(gateway.addr, "OPTIONS", "/p", &[]).await;
    assert_eq!(plain.text(), "method=OPTIONS");
    assert_eq!(
        upstream
            .requests()
            .iter()
            .filter(|r| r.method == "OPTIONS")
            .count(),
        2
    );
}

#[tokio::test]
async fn query_string_is_part_of_the_key() {
    let upstream = Upstream::start(|req| {
        Reply::ok(req.path_and_query.clone()).header("cache-control", "max-age=60")
    })
    .await;
    let gateway = start(&upstream, "");
    expect(&get(&gateway, "/a?x=1").await, 200, "MISS", "/a?x=1");
    expect(&get(&gateway, "/a?x=2").await, 200, "MISS", "/a?x=2");
    expect(&get(&gateway, "/a").await, 200, "MISS", "/a");
    expect(&get(&gateway, "/a?x=1").await, 200, "HIT", "/a?x=1");
    expect(&get(&gateway, "/a?x=2").await, 200, "HIT", "/a?x=2");
    expect(&get(&gateway, "/a").await, 200, "HIT", "/a");
    assert_eq!(upstream.hits("/a"), 3);
}

#[tokio::test]
async fn host_is_part_of_the_key() {
    let upstream = Upstream::start(|req| {
        Reply::ok(format!("host={}", req.header("host").unwrap_or_default()))
            .header("cache-control", "max-age=60")
    })
    .await;
    let gateway = start(&upstream, "");
    let a = [("host", "a.example")];
    let b = [("host", "b.example")];
    expect(
        &request(gateway.addr, "GET", "/same", &a).await,
        200,
        "MISS",
        "host=a.example",
    );
    expect(
        &request(gateway.addr, "GET", "/same", &b).await,
        200,
        "MISS",
        "host=b.example",
    );
    expect(
        &request(gateway.addr, "GET", "/same", &a).await,
        200,
        "HIT",
        "host=a.example",
    );
    expect(
        &request(gateway.addr, "GET", "/same", &b).await,
        200,
        "HIT",
        "host=b.example",
    );
    // Host names are case-insensitive: the same site, the same entry.
    expect(
        &request(gateway.addr, "GET", "/same", &[("host", "A.Example")]).await,
        200,
        "HIT",
        "host=a.example",
    );
    assert_eq!(upstream.hits("/same"), 2);
}

// ---------------------------------------------------------------------------------------------
// Freshness (RFC 9111 §4.2, §5.2.2)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn max_age_is_fresh_then_expires() {
    // `Date` rounded up: the apparent age is 0, so the entry is fresh for the whole 2 s after
    // the fetch (with hyper's rounded-down `Date` it could be fresh for a few ms only).
    let upstream = Upstream::start(|_| {
        Reply::ok("v")
            .header("cache-control", "max-age=2")
            .dated_now()
    })
    .await;
    let gateway = start(&upstream, NO_STALE);
    expect(&get(&gateway, "/m").await, 200, "MISS", "v");
    expect(&get(&gateway, "/m").await, 200, "HIT", "v");
    assert_eq!(upstream.hits("/m"), 1);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let after = get(&gateway, "/m").await;
    assert_eq!((after.status, after.text().as_str()), (200, "v"));
    assert_ne!(after.cache(), "HIT", "served after max-age ran out");
    assert_eq!(upstream.hits("/m"), 2);
}

#[tokio::test]
async fn s_maxage_beats_max_age() {
    let upstream = Upstream::start(|req| {
        let cc = if req.path() == "/long" {
            "max-age=0, s-maxage=60"
        } else {
            "max-age=60, s-maxage=2"
        };
        Reply::ok("v").header("cache-control", cc).dated_now()
    })
    .await;
    let gateway = start(&upstream, NO_STALE);
    // max-age=0 alone would not be stored; s-maxage=60 makes it fresh for a shared cache.
    expect(&get(&gateway, "/long").await, 200, "MISS", "v");
    expect(&get(&gateway, "/long").await, 200, "HIT", "v");
    assert_eq!(upstream.hits("/long"), 1);
    // And a short s-maxage wins over a long max-age.
    expect(&get(&gateway, "/short").await, 200, "MISS", "v");
    expect(&get(&gateway, "/short").await, 200, "HIT", "v");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let after = get(&gateway, "/short").await;
    assert_ne!(after.cache(), "HIT", "served past s-maxage");
    assert_eq!(upstream.hits("/short"), 2);
}

#[tokio::test]
async fn expires_with_date_gives_freshness() {
    let upstream = Upstream::start(|req| {
        let now = SystemTime::now();
        let expires = match req.path() {
            "/future" => http_date(now + Duration::from_secs(120)),
            "/past" => http_date(now - Duration::from_secs(120)),
            _ => "0".to_string(),
        };
        Reply::ok("v")
            .header("date", &http_date(now))
            .header("expires", &expires)
    })
    .await;
    let gateway = start(&upstream, NO_STALE);
    expect(&get(&gateway, "/future").await, 200, "MISS", "v");
    expect(&get(&gateway, "/future").await, 200, "HIT", "v");
    assert_eq!(upstream.hits("/future"), 1);
    // Already expired, or invalid (`Expires: 0`): never served from cache.
    for path in ["/past", "/zero"] {
        expect(&get(&gateway, path).await, 200, "MISS", "v");
        let second = get(&gateway, path).await;
        assert_ne!(second.cache(), "HIT", "{path}");
        assert_eq!(upstream.hits(path), 2, "{path}");
    }
}

#[tokio::test]
async fn max_age_overrides_expires() {
    let upstream = Upstream::start(|_| {
        Reply::ok("v")
            .header("cache-control", "max-age=60")
            .header("expires", "Thu, 01 Jan 1970 00:00:00 GMT")
    })
    .await;
    let gateway = start(&upstream, NO_STALE);
    get(&gateway, "/e").await;
    expect(&get(&gateway, "/e").await, 200, "HIT", "v");
    assert_eq!(upstream.hits("/e"), 1);
}

/// Two requests per path; returns how many reached the upstream.
async fn fetch_twice(
    gateway: &GatewayProcess,
    upstream: &Upstream,
    path: &str,
    headers: &[(&str, &str)],
) -> usize {
    for round in 0..2 {
        let r = request(gateway.addr, "GET", path, headers).await;
        assert_eq!(r.status, 200, "{path} round {round}");
        assert_eq!(r.text(), "body", "{path} round {round}");
        assert_ne!(
            r.cache(),
            "HIT",
            "{path} round {round} must not be served from cache"
        );
    }
    upstream.hits(path)
}

#[tokio::test]
async fn responses_a_shared_cache_must_not_store() {
    let upstream = Upstream::start(|req| {
        let reply = Reply::ok("body");
        match req.path() {
            "/no-store" => reply.header("cache-control", "max-age=60, no-store"),
            "/private" => reply.header("cache-control", "private, max-age=60"),
            "/heuristic" => reply.header("last-modified", "Thu, 01 Jan 2015 00:00:00 GMT"),
            "/cookie" => reply
                .header("cache-control", "public, max-age=60")
                .header("set-cookie", "session=secret"),
            "/no-cache-no-validator" => reply.header("cache-control", "no-cache, max-age=60"),
            "/max-age-zero" => reply.header("cache-control", "max-age=0"),
            _ => reply.header("cache-control", "max-age=60"),
        }
    })
    .await;
    let gateway = start(&upstream, "");
    for path in [
        "/no-store",
        "/private",
        "/heuristic",
        "/cookie",
        "/no-cache-no-validator",
        "/max-age-zero",
    ] {
        assert_eq!(
            fetch_twice(&gateway, &upstream, path, &[]).await,
            2,
            "{path} was stored"
        );
    }
    // The control: the same upstream with plain max-age is stored.
    get(&gateway, "/control").await;
    expect(&get(&gateway, "/control").await, 200, "HIT", "body");
}

/// Each answer carries the session of the request that caused it: `session=N` for the N-th.
fn cookie_api(cache_control: &'static str) -> impl Fn(&UpstreamRequest) -> Reply {
    let sessions = counter();
    move |_| {
        let n = sessions.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::ok(format!("page {n}"))
            .header("cache-control", cache_control)
            .header("set-cookie", &format!("session={n}; HttpOnly"))
    }
}

#[tokio::test]
async fn set_cookie_never_reaches_a_second_client_from_the_cache() {
    let upstream = Upstream::start(cookie_api("public, max-age=60")).await;
    let gateway = start(&upstream, "");
    let alice = get(&gateway, "/account").await;
    assert_eq!(
        (alice.text().as_str(), alice.header("set-cookie").as_str()),
        ("page 1", "session=1; HttpOnly"),
        "the client that caused the fetch gets its cookie"
    );
    let bob = get(&gateway, "/account").await;
    assert_ne!(bob.cache(), "HIT", "a response with Set-Cookie was stored");
    assert_eq!(
        (bob.text().as_str(), bob.header("set-cookie").as_str()),
        ("page 2", "session=2; HttpOnly"),
        "the second client gets its own answer and cookie, never the first one's"
    );
    assert_eq!(upstream.hits("/account"), 2);
}

#[tokio::test]
async fn private_set_cookie_is_stored_with_the_cookie_stripped() {
    // `private="set-cookie"`: the response may be shared, its Set-Cookie may not.
    let upstream = Upstream::start(cookie_api("public, max-age=60, private=\"set-cookie\"")).await;
    let gateway = start(&upstream, "");
    let alice = get(&gateway, "/home").await;
    assert_eq!(
        (alice.cache().as_str(), alice.text().as_str()),
        ("MISS", "page 1")
    );
    for client in ["bob", "carol"] {
        let hit = get(&gateway, "/home").await;
        assert_eq!(
            (hit.cache().as_str(), hit.text().as_str()),
            ("HIT", "page 1"),
            "{client}: the page is shared"
        );
        assert!(
            !hit.has("set-cookie"),
            "{client} got a stored cookie: {:?}",
            hit.header("set-cookie")
        );
    }
    assert_eq!(upstream.hits("/home"), 1);
}

#[tokio::test]
async fn authorization_requests_are_stored_only_with_explicit_permission() {
    let upstream = Upstream::start(|req| {
        let cc = match req.path() {
            "/public" => "public, max-age=60",
            "/s-maxage" => "s-maxage=60",
            "/must-revalidate" => "max-age=60, must-revalidate",
            _ => "max-age=60",
        };
        Reply::ok("body").header("cache-control", cc)
    })
    .await;
    let gateway = start(&upstream, "");
    let auth = [("authorization", "Bearer alice")];
    assert_eq!(
        fetch_twice(&gateway, &upstream, "/plain", &auth).await,
        2,
        "max-age alone must not store"
    );
    for path in ["/public", "/s-maxage", "/must-revalidate"] {
        let first = request(gateway.addr, "GET", path, &auth).await;
        assert_eq!(first.cache(), "MISS", "{path}");
        let second = request(gateway.addr, "GET", path, &auth).await;
        assert_eq!(
            (second.cache().as_str(), second.text().as_str()),
            ("HIT", "body"),
            "{path}"
        );
        assert_eq!(upstream.hits(path), 1, "{path}");
    }
}

#[tokio::test]
async fn no_cache_with_etag_is_revalidated_every_time() {
    let upstream = Upstream::start(|req| {
        if req.header("if-none-match").as_deref() == Some("\"v1\"") {
            return Reply::status(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "no-cache");
        }
        Reply::ok("stored body")
            .header("cache-control", "no-cache")
            .header("etag", "\"v1\"")
    })
    .await;
    let gateway = start(&upstream, "");
    expect(&get(&gateway, "/nc").await, 200, "MISS", "stored body");
    for round in 1..=2 {
        let r = get(&gateway, "/nc").await;
        expect(&r, 200, "REVALIDATED", "stored body");
        let seen = upstream.requests();
        assert_eq!(seen.len(), round + 1, "every use goes to the upstream");
        assert_eq!(
            seen[round].header("if-none-match").as_deref(),
            Some("\"v1\"")
        );
    }
}

#[tokio::test]
async fn etag_revalidation_updates_stored_headers() {
    let upstream = Upstream::start(|req| {
        if req.header("if-none-match").as_deref() == Some("\"v1\"") {
            return Reply::status(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=60")
                .header("x-version", "2");
        }
        Reply::ok("original")
            .header("cache-control", "max-age=1")
            .header("etag", "\"v1\"")
            .header("x-version", "1")
    })
    .await;
    let gateway = start(&upstream, NO_STALE);
    let first = get(&gateway, "/etag").await;
    expect(&first, 200, "MISS", "original");
    assert_eq!(first.header("x-version"), "1");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let revalidated = get(&gateway, "/etag").await;
    expect(&revalidated, 200, "REVALIDATED", "original");
    assert_eq!(revalidated.header("x-version"), "2");
    assert_eq!(
        upstream.requests()[1].header("if-none-match").as_deref(),
        Some("\"v1\"")
    );
    // The 304's headers and freshness now belong to the stored response.
    let hit = get(&gateway, "/etag").await;
    expect(&hit, 200, "HIT", "original");
    assert_eq!(hit.header("x-version"), "2");
    assert_eq!(upstream.total(), 2);
}

#[tokio::test]
async fn last_modified_revalidation_updates_stored_headers() {
    const LM: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
    let upstream = Upstream::start(|req| {
        if req.header("if-modified-since").as_deref() == Some(LM) {
            return Reply::status(304)
                .header("cache-control", "max-age=60")
                .header("x-version", "2");
        }
        Reply::ok("original")
            .header("cache-control", "max-age=1")
            .header("last-modified", LM)
            .header("x-version", "1")
    })
    .await;
    let gateway = start(&upstream, NO_STALE);
    expect(&get(&gateway, "/lm").await, 200, "MISS", "original");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let revalidated = get(&gateway, "/lm").await;
    expect(&revalidated, 200, "REVALIDATED", "original");
    assert_eq!(revalidated.header("x-version"), "2");
    assert_eq!(
        upstream.requests()[1]
            .header("if-modified-since")
            .as_deref(),
        Some(LM)
    );
    let hit = get(&gateway, "/lm").await;
    expect(&hit, 200, "HIT", "original");
    assert_eq!(hit.header("x-version"), "2");
    assert_eq!(upstream.total(), 2);
}

#[tokio::test]
async fn changed_resource_on_revalidation_replaces_the_stored_body() {
    let version = counter();
    let seen = version.clone();
    let upstream = Upstream::start(move |_| {
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::ok(format!("v{n}"))
            .header("cache-control", "max-age=1")
            .header("etag", &format!("\"{n}\""))
    })
    .await;
    let gateway = start(&upstream, NO_STALE);
    expect(&get(&gateway, "/changed").await, 200, "MISS", "v1");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let refetched = get(&gateway, "/changed").await;
    assert_eq!((refetched.status, refetched.text().as_str()), (200, "v2"));
    assert_eq!(refetched.cache(), "EXPIRED");
    expect(&get(&gateway, "/changed").await, 200, "HIT", "v2");
}

#[tokio::test]
async fn request_no_cache_forces_revalidation() {
    let upstream = Upstream::start(|req| {
        if req.header("if-none-match").as_deref() == Some("\"v1\"") {
            return Reply::status(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=60");
        }
        Reply::ok("body")
            .header("cache-control", "max-age=60")
            .header("etag", "\"v1\"")
    })
    .await;
    let gateway = start(&upstream, "");
    expect(&get(&gateway, "/rnc").await, 200, "MISS", "body");
    expect(&get(&gateway, "/rnc").await, 200, "HIT", "body");
    let forced = request(
        gateway.addr,
        "GET",
        "/rnc",
        &[("cache-control", "no-cache")],
    )
    .await;
    expect(&forced, 200, "REVALIDATED", "body");
    assert_eq!(upstream.total(), 2);
    assert_eq!(
        upstream.requests()[1].header("if-none-match").as_deref(),
        Some("\"v1\"")
    );
    let pragma = request(gateway.addr, "GET", "/rnc", &[("pragma", "no-cache")]).await;
    expect(&pragma, 200, "REVALIDATED", "body");
    assert_eq!(upstream.total(), 3);
    expect(&get(&gateway, "/rnc").await, 200, "HIT", "body");
    assert_eq!(upstream.total(), 3);
}

// ---------------------------------------------------------------------------------------------
// Stale serving (RFC 5861, RFC 9111 §4.2.4)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stale_while_revalidate_serves_stale_and_refreshes_in_the_background() {
    let version = counter();
    let seen = version.clone();
    let upstream = Upstream::start(move |_| {
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        // Only the first copy expires at once: the refreshed one stays fresh however long the
        // polling below takes on a loaded machine (a second expiry would mean a third fetch).
        let max_age = if n == 1 { 1 } else { 600 };
        Reply::ok(format!("v{n}")).header(
            "cache-control",
            &format!("max-age={max_age}, stale-while-revalidate=30"),
        )
    })
    .await;
    let gateway = start(&upstream, NO_STALE);
    expect(&get(&gateway, "/swr").await, 200, "MISS", "v1");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The client is not kept waiting for the upstream: it gets the old body at once.
    expect(&get(&gateway, "/swr").await, 200, "STALE", "v1");
    // Meanwhile the upstream is asked again, without any client waiting on it.
    let refreshed = until_not_stale(&gateway, "/swr").await;
    expect(&refreshed, 200, "HIT", "v2");
    assert_eq!(upstream.hits("/swr"), 2);
}

#[tokio::test]
async fn stale_if_error_serves_stale_when_upstream_fails() {
    let failing = Arc::new(AtomicBool::new(false));
    let flag = failing.clone();
    let upstream = Upstream::start(move |_| {
        if flag.load(Ordering::SeqCst) {
            return Reply::status(500);
        }
        Reply::ok("good").header("cache-control", "max-age=1, stale-if-error=60")
    })
    .await;
    let gateway = start(&upstream, NO_STALE);
    expect(&get(&gateway, "/sie").await, 200, "MISS", "good");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    failing.store(true, Ordering::SeqCst);
    expect(&get(&gateway, "/sie").await, 200, "STALE", "good");
    assert_eq!(
        upstream.hits("/sie"),
        2,
        "the upstream was asked before the stale copy was used"
    );
}

#[tokio::test]
async fn stale_if_error_serves_stale_when_upstream_is_down() {
    // No keep-alive: once stopped, the upstream is unreachable, not just not accepting.
    let upstream = Upstream::start(|_| {
        Reply::ok("good")
            .header("cache-control", "max-age=1, stale-if-error=60")
            .header("connection", "close")
    })
    .await;
    let gateway = start(&upstream, NO_STALE);
    expect(&get(&gateway, "/down").await, 200, "MISS", "good");
    upstream.stop();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    expect(&get(&gateway, "/down").await, 200, "STALE", "good");
    // Something that was never cached has nothing to fall back on.
    let cold = get(&gateway, "/never-cached").await;
    assert!(cold.status >= 500, "{}", cold.status);
}

#[tokio::test]
async fn must_revalidate_forbids_stale_on_error() {
    let failing = Arc::new(AtomicBool::new(false));
    let flag = failing.clone();
    let upstream = Upstream::start(move |_| {
        if flag.load(Ordering::SeqCst) {
            return Reply {
                body: Bytes::from_static(b"upstream error"),
                ..Reply::status(500)
            };
        }
        Reply::ok("good").header(
            "cache-control",
            "max-age=1, must-revalidate, stale-if-error=60",
        )
    })
    .await;
    // Generous operator defaults: must-revalidate must still win.
    let gateway = start(
        &upstream,
        "stale_while_revalidate: 30s, stale_if_error: 60s",
    );
    expect(&get(&gateway, "/mr").await, 200, "MISS", "good");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    failing.store(true, Ordering::SeqCst);
    let after = get(&gateway, "/mr").await;
    assert_ne!(after.cache(), "STALE");
    assert_eq!(
        (after.status, after.text().as_str()),
        (500, "upstream error"),
        "stale served despite must-revalidate"
    );
}

#[tokio::test]
async fn must_revalidate_answers_an_error_when_upstream_is_down() {
    // No keep-alive: once stopped, the upstream is unreachable, not just not accepting.
    let upstream = Upstream::start(|_| {
        Reply::ok("good")
            .header("cache-control", "max-age=1, must-revalidate")
            .header("connection", "close")
    })
    .await;
    let gateway = start(
        &upstream,
        "stale_while_revalidate: 30s, stale_if_error: 60s",
    );
    expect(&get(&gateway, "/mrd").await, 200, "MISS", "good");
    upstream.stop();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let after = get(&gateway, "/mrd").await;
    assert!(
        after.status >= 500,
        "must-revalidate and an unreachable upstream: {}",
        after.status
    );
    assert_ne!(after.text(), "good");
    assert_ne!(after.cache(), "STALE");
}

#[tokio::test]
async fn config_stale_if_error_applies_when_upstream_says_nothing() {
    let failing = Arc::new(AtomicBool::new(false));
    let flag = failing.clone();
    let upstream = Upstream::start(move |_| {
        if flag.load(Ordering::SeqCst) {
            return Reply::status(503);
        }
        Reply::ok("good").header("cache-control", "max-age=1")
    })
    .await;
    let with_default = start(&upstream, "stale_while_revalidate: 0s, stale_if_error: 30s");
    let without = start(&upstream, "stale_while_revalidate: 0s, stale_if_error: 0s");
    expect(&get(&with_default, "/d").await, 200, "MISS", "good");
    expect(&get(&without, "/d").await, 200, "MISS", "good");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    failing.store(true, Ordering::SeqCst);
    expect(&get(&with_default, "/d").await, 200, "STALE", "good");
    let plain = get(&without, "/d").await;
    assert_eq!(
        plain.status, 503,
        "without a stale-if-error window the error goes through"
    );
}

#[tokio::test]
async fn config_stale_while_revalidate_applies_when_upstream_says_nothing() {
    let version = counter();
    let seen = version.clone();
    let upstream = Upstream::start(move |_| {
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::ok(format!("v{n}")).header("cache-control", "max-age=1")
    })
    .await;
    let gateway = start(&upstream, "stale_while_revalidate: 30s, stale_if_error: 0s");
    expect(&get(&gateway, "/dswr").await, 200, "MISS", "v1");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    expect(&get(&gateway, "/dswr").await, 200, "STALE", "v1");
    expect(&until_not_stale(&gateway, "/dswr").await, 200, "HIT", "v2");
}

// ---------------------------------------------------------------------------------------------
// Age and X-Cache
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hits_carry_a_growing_age() {
    let upstream = Upstream::start(|_| Reply::ok("v").header("cache-control", "max-age=60")).await;
    let gateway = start(&upstream, "");
    let miss = get(&gateway, "/age").await;
    assert_eq!(miss.cache(), "MISS");
    let hit = get(&gateway, "/age").await;
    let age: u64 = hit.header("age").parse().expect("numeric Age on a hit");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = get(&gateway, "/age").await;
    let later_age: u64 = later.header("age").parse().expect("numeric Age");
    assert!(
        later_age >= age + 2,
        "Age did not grow: {age} then {later_age}"
    );
}

#[tokio::test]
async fn upstream_age_counts_against_freshness() {
    let upstream = Upstream::start(|_| {
        Reply::ok("v")
            .header("cache-control", "max-age=100")
            .header("age", "50")
    })
    .await;
    let gateway = start(&upstream, "");
    get(&gateway, "/a").await;
    let hit = get(&gateway, "/a").await;
    assert_eq!(hit.cache(), "HIT");
    let age: u64 = hit.header("age").parse().expect("numeric Age");
    assert!(age >= 50, "the upstream's Age was forgotten: {age}");
}

#[tokio::test]
async fn post_is_bypass_and_carries_its_body() {
    let upstream = Upstream::start(|req| {
        Reply::ok(format!(
            "{} {}",
            req.method,
            String::from_utf8_lossy(&req.body)
        ))
        .header("cache-control", "max-age=60")
    })
    .await;
    let gateway = start(&upstream, "");
    for _ in 0..2 {
        let r = request_with_body(
            gateway.addr,
            "POST",
            "/post",
            &[],
            Bytes::from_static(b"payload"),
        )
        .await;
        expect(&r, 200, "BYPASS", "POST payload");
    }
    assert_eq!(upstream.hits("/post"), 2);
    // A POST does not poison the GET object.
    expect(&get(&gateway, "/post").await, 200, "MISS", "GET ");
}

/// RFC 9111 §4.4: a successful unsafe request invalidates the stored responses of its URL and
/// of the same-host URLs in its `Location` and `Content-Location`; a failed one does not.
#[tokio::test]
async fn a_successful_unsafe_request_invalidates_its_url_location_and_content_location() {
    let fetches = counter();
    let upstream = Upstream::start(move |req| {
        if req.method == "GET" {
            let n = fetches.fetch_add(1, Ordering::SeqCst);
            return Reply::ok(format!("{} #{n}", req.path())).header("cache-control", "max-age=60");
        }
        match req.path() {
            "/items" => Reply::status(201)
                .header("location", "/items/7")
                .header("content-location", "/items/latest"),
            "/fail" => Reply::status(500).header("location", "/items/keep"),
            "/moved" => {
                Reply::status(303).header("location", "http://elsewhere.example/items/other-host")
            }
            _ => Reply::status(204),
        }
    })
    .await;
    let gateway = start(&upstream, "");
    let paths = [
        "/items",
        "/items/7",
        "/items/latest",
        "/items/keep",
        "/items/other-host",
        "/fail",
        "/moved",
    ];
    for path in paths {
        get(&gateway, path).await;
        assert_eq!(get(&gateway, path).await.cache(), "HIT", "{path} is cached");
    }
    let cache_of = |path: &'static str| {
        let addr = gateway.addr;
        async move { request(addr, "GET", path, &[]).await.cache() }
    };

    // A failed unsafe request invalidates nothing: not its URL, not its Location.
    let failed =
        request_with_body(gateway.addr, "PUT", "/fail", &[], Bytes::from_static(b"x")).await;
    assert_eq!(failed.status, 500);
    assert_eq!(cache_of("/fail").await, "HIT", "a 500 invalidated its URL");
    assert_eq!(
        cache_of("/items/keep").await,
        "HIT",
        "a 500 invalidated its Location"
    );

    let created = request_with_body(
        gateway.addr,
        "POST",
        "/items",
        &[],
        Bytes::from_static(b"new"),
    )
    .await;
    assert_eq!(created.status, 201);
    for path in ["/items", "/items/7", "/items/latest"] {
        assert_eq!(
            cache_of(path).await,
            "MISS",
            "{path} still served from the cache after a successful POST"
        );
    }
    assert_eq!(
        cache_of("/items/keep").await,
        "HIT",
        "an unrelated URL was dropped"
    );

    // A Location on another host is not this cache's to invalidate; the request URL is.
    let moved = request(gateway.addr, "DELETE", "/moved", &[]).await;
    assert_eq!(moved.status, 303);
    assert_eq!(cache_of("/moved").await, "MISS");
    assert_eq!(cache_of("/items/other-host").await, "HIT");
}

#[tokio::test]
async fn route_with_cache_disabled_is_bypass() {
    let upstream = Upstream::start(|_| Reply::ok("v").header("cache-control", "max-age=60")).await;
    let gateway = GatewayProcess::start(
        &GatewayConfig::new(upstream.addr)
            .route_cache("enabled: false")
            .yaml(),
    );
    for _ in 0..2 {
        expect(&get(&gateway, "/off").await, 200, "BYPASS", "v");
    }
    assert_eq!(upstream.hits("/off"), 2);
}

// ---------------------------------------------------------------------------------------------
// Vary
// ---------------------------------------------------------------------------------------------

fn echo_headers(
    names: &'static [&'static str],
    vary: &'static [&'static str],
) -> impl Fn(&UpstreamRequest) -> Reply {
    move |req| {
        let body = names
            .iter()
            .map(|n| format!("{n}={}", req.header(n).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(";");
        let mut reply = Reply::ok(body).header("cache-control", "max-age=60");
        for line in vary {
            reply = reply.header("vary", line);
        }
        reply
    }
}

#[tokio::test]
async fn vary_accept_encoding_keeps_one_entry_per_value() {
    let upstream = Upstream::start(echo_headers(&["accept-encoding"], &["Accept-Encoding"])).await;
    let gateway = start(&upstream, "");
    for round in ["MISS", "HIT"] {
        for enc in ["gzip", "br", "identity"] {
            let r = request(gateway.addr, "GET", "/enc", &[("accept-encoding", enc)]).await;
            expect(&r, 200, round, &format!("accept-encoding={enc}"));
            assert!(r.varies_on("accept-encoding"));
        }
        // No Accept-Encoding chooses identity: the identity variant, already stored.
        let none = get(&gateway, "/enc").await;
        expect(&none, 200, "HIT", "accept-encoding=identity");
    }
    assert_eq!(upstream.hits("/enc"), 3);
}

#[tokio::test]
async fn vary_on_several_field_lines() {
    let upstream = Upstream::start(echo_headers(
        &["accept-encoding", "accept-language"],
        &["Accept-Encoding", "Accept-Language"],
    ))
    .await;
    let gateway = start(&upstream, "");
    let combos = [("gzip", "en"), ("gzip", "fr"), ("br", "en"), ("br", "fr")];
    for round in ["MISS", "HIT"] {
        for (enc, lang) in combos {
            let r = request(
                gateway.addr,
                "GET",
                "/two",
                &[("accept-encoding", enc), ("accept-language", lang)],
            )
            .await;
            expect(
                &r,
                200,
                round,
                &format!("accept-encoding={enc};accept-language={lang}"),
            );
        }
    }
    assert_eq!(upstream.hits("/two"), 4);
}

#[tokio::test]
async fn vary_names_and_values_are_normalized() {
    let upstream = Upstream::start(echo_headers(
        &["accept-language"],
        &[" ACCEPT-language ,  X-Unused "],
    ))
    .await;
    let gateway = start(&upstream, "");
    let r = request(gateway.addr, "GET", "/norm", &[("accept-language", "de")]).await;
    expect(&r, 200, "MISS", "accept-language=de");
    // Header name case and surrounding whitespace do not make a new variant.
    let raw = cors_edge_tests::send_raw(
        gateway.addr,
        format!(
            "GET /norm HTTP/1.1\r\nHost: {}\r\nACCEPT-LANGUAGE:   de  \r\nConnection: close\r\n\r\n",
            gateway.addr
        )
        .as_bytes(),
    )
    .await;
    let raw = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert!(raw.contains("x-cache: hit"), "{raw}");
    assert!(raw.ends_with("accept-language=de"), "{raw}");
    // A different value is a different variant.
    let other = request(gateway.addr, "GET", "/norm", &[("accept-language", "fr")]).await;
    expect(&other, 200, "MISS", "accept-language=fr");
    assert_eq!(upstream.hits("/norm"), 2);
}

#[tokio::test]
async fn vary_star_is_never_served_from_cache() {
    let upstream = Upstream::start(|_| {
        Reply::ok("v")
            .header("cache-control", "max-age=60")
            .header("vary", "*")
    })
    .await;
    let gateway = start(&upstream, "");
    for _ in 0..3 {
        let r = get(&gateway, "/star").await;
        assert_eq!((r.status, r.text().as_str()), (200, "v"));
        assert_ne!(r.cache(), "HIT");
    }
    assert_eq!(upstream.hits("/star"), 3);
}

#[tokio::test]
async fn vary_star_on_a_second_line_is_never_served_from_cache() {
    let upstream = Upstream::start(|_| {
        Reply::ok("v")
            .header("cache-control", "max-age=60")
            .header("vary", "Accept-Encoding")
            .header("vary", "*")
    })
    .await;
    let gateway = start(&upstream, "");
    for _ in 0..3 {
        assert_ne!(get(&gateway, "/star2").await.cache(), "HIT");
    }
    assert_eq!(upstream.hits("/star2"), 3);
}

#[tokio::test]
async fn max_variants_serves_but_does_not_store_past_the_limit() {
    let upstream = Upstream::start(echo_headers(&["accept-language"], &["Accept-Language"])).await;
    let gateway = start(&upstream, "max_variants: 2");
    let lang = |l: &'static str| [("accept-language", l)];
    expect(
        &request(gateway.addr, "GET", "/mv", &lang("en")).await,
        200,
        "MISS",
        "accept-language=en",
    );
    expect(
        &request(gateway.addr, "GET", "/mv", &lang("fr")).await,
        200,
        "MISS",
        "accept-language=fr",
    );
    // Third variant: answered correctly, not stored.
    expect(
        &request(gateway.addr, "GET", "/mv", &lang("de")).await,
        200,
        "MISS",
        "accept-language=de",
    );
    expect(
        &request(gateway.addr, "GET", "/mv", &lang("de")).await,
        200,
        "MISS",
        "accept-language=de",
    );
    assert_eq!(upstream.hits("/mv"), 4);
    // The first two are still stored.
    expect(
        &request(gateway.addr, "GET", "/mv", &lang("en")).await,
        200,
        "HIT",
        "accept-language=en",
    );
    expect(
        &request(gateway.addr, "GET", "/mv", &lang("fr")).await,
        200,
        "HIT",
        "accept-language=fr",
    );
    assert_eq!(upstream.hits("/mv"), 4);
}

// ---------------------------------------------------------------------------------------------
// Coalescing and size bounds
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_are_coalesced_into_one_upstream_request() {
    const WAITERS: usize = 20;
    // The fill of /slow waits at a gate the test opens: while it is closed, every client is
    // provably in flight at once, so one upstream request then means coalescing, not requests
    // that merely happened one after the other.
    let gate = Gate::new();
    let fills = counter();
    let upstream = {
        let gate = gate.clone();
        Upstream::start(move |req| {
            if req.path() != "/slow" {
                return Reply::ok("other").header("cache-control", "max-age=60");
            }
            let n = fills.fetch_add(1, Ordering::SeqCst) + 1;
            Reply::ok(format!("slow body #{n}"))
                .header("cache-control", "max-age=60")
                .gated(&gate)
        })
        .await
    };
    let gateway = start(&upstream, "");
    let addr = gateway.addr;
    // Raw clients, so the test knows when each request is written on an open connection.
    let sent = counter();
    let tasks: Vec<_> = (0..WAITERS)
        .map(|_| {
            let sent = sent.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let head =
                    format!("GET /slow HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
                stream.write_all(head.as_bytes()).await.expect("write");
                sent.fetch_add(1, Ordering::SeqCst);
                let mut answer = Vec::new();
                tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
                    .await
                    .expect("an answer within 30s")
                    .expect("read");
                String::from_utf8_lossy(&answer).into_owned()
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while upstream.hits("/slow") == 0 || sent.load(Ordering::SeqCst) < WAITERS {
        assert!(
            std::time::Instant::now() < deadline,
            "the fill never started or the clients never sent"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Give the gateway time to read every request; it answers another URL meanwhile (it does
    // not serialise clients).
    for _ in 0..5 {
        let other = get(&gateway, "/other").await;
        assert_eq!(
            other.text(),
            "other",
            "the gateway serves other keys meanwhile"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        upstream.hits("/slow"),
        1,
        "the waiting clients' misses went upstream while the first fill was in flight"
    );
    assert!(
        tasks.iter().all(|t| !t.is_finished()),
        "a client was answered before the fill finished"
    );
    gate.open();
    for task in tasks {
        let answer = task.await.expect("request task");
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\nslow body #1"),
            "every waiter gets the one fill: {answer:?}"
        );
    }
    assert_eq!(
        upstream.hits("/slow"),
        1,
        "the cold key was fetched more than once"
    );
}

#[tokio::test]
async fn objects_over_max_object_bytes_are_served_but_not_stored() {
    let big = "x".repeat(4096);
    let small = "y".repeat(512);
    let upstream = Upstream::start(move |req| {
        let body = if req.path() == "/big" {
            big.clone()
        } else {
            small.clone()
        };
        Reply::ok(body).header("cache-control", "max-age=60")
    })
    .await;
    let gateway = start(&upstream, "max_object_bytes: 1KiB");
    for _ in 0..2 {
        let r = get(&gateway, "/big").await;
        assert_eq!((r.status, r.body.len()), (200, 4096));
        assert!(r.body.iter().all(|&b| b == b'x'));
        assert_ne!(r.cache(), "HIT");
    }
    assert_eq!(upstream.hits("/big"), 2);
    get(&gateway, "/small").await;
    let small_hit = get(&gateway, "/small").await;
    assert_eq!(
        (small_hit.cache().as_str(), small_hit.body.len()),
        ("HIT", 512)
    );
}

async fn stats(gateway: &GatewayProcess) -> serde_json::Value {
    let r = request(gateway.admin, "GET", "/stats", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).expect("stats JSON")
}

#[tokio::test]
async fn max_bytes_bounds_the_cache() {
    let body = "z".repeat(1024);
    let upstream =
        Upstream::start(move |_| Reply::ok(body.clone()).header("cache-control", "max-age=60"))
            .await;
    let gateway = start(&upstream, "max_bytes: 64KiB, max_object_bytes: 4KiB");
    let mut max_seen = 0;
    for i in 0..200 {
        let r = get(&gateway, &format!("/obj/{i}")).await;
        assert_eq!((r.status, r.body.len()), (200, 1024));
        if i % 10 == 9 {
            let s = stats(&gateway).await;
            max_seen = max_seen.max(s["bytes"].as_u64().expect("bytes"));
        }
    }
    let s = stats(&gateway).await;
    for field in [
        "entries",
        "bytes",
        "evictions",
        "hits",
        "misses",
        "preflight_hits",
    ] {
        assert!(s[field].is_u64(), "stats lacks {field}: {s}");
    }
    max_seen = max_seen.max(s["bytes"].as_u64().expect("bytes"));
    assert!(
        max_seen <= 64 * 1024,
        "cache held {max_seen} bytes, bound is 65536: {s}"
    );
    assert!(s["evictions"].as_u64().expect("evictions") > 0, "{s}");
    assert!(s["entries"].as_u64().expect("entries") < 64, "{s}");
    assert_eq!(s["misses"].as_u64(), Some(200), "{s}");
    // The most recent object is still there.
    assert_eq!(get(&gateway, "/obj/199").await.cache(), "HIT");
}

// ---------------------------------------------------------------------------------------------
// More request directives and error shapes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stale_if_error_covers_an_upstream_timeout() {
    let slow = Arc::new(AtomicBool::new(false));
    let flag = slow.clone();
    let upstream = Upstream::start(move |_| {
        let delay = if flag.load(Ordering::SeqCst) {
            Duration::from_secs(3)
        } else {
            Duration::ZERO
        };
        Reply::ok("good")
            .header("cache-control", "max-age=1, stale-if-error=60")
            .delay(delay)
    })
    .await;
    let yaml = GatewayConfig::new(upstream.addr)
        .cache(NO_STALE)
        .upstream_settings("read_timeout: 300ms")
        .yaml();
    let gateway = GatewayProcess::start(&yaml);
    expect(&get(&gateway, "/t").await, 200, "MISS", "good");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    slow.store(true, Ordering::SeqCst);
    expect(&get(&gateway, "/t").await, 200, "STALE", "good");
}

#[tokio::test]
async fn only_if_cached_never_goes_upstream() {
    let upstream = Upstream::start(|_| Reply::ok("v").header("cache-control", "max-age=60")).await;
    let gateway = start(&upstream, "");
    let oic = [("cache-control", "only-if-cached")];
    let cold = request(gateway.addr, "GET", "/oic", &oic).await;
    assert_eq!(cold.status, 504, "RFC 9111 §5.2.1.7");
    assert_eq!(upstream.total(), 0);
    get(&gateway, "/oic").await;
    expect(
        &request(gateway.addr, "GET", "/oic", &oic).await,
        200,
        "HIT",
        "v",
    );
    assert_eq!(upstream.total(), 1);
}

#[tokio::test]
async fn request_max_age_zero_revalidates_a_fresh_entry() {
    let upstream = Upstream::start(|req| {
        if req.header("if-none-match").as_deref() == Some("\"v1\"") {
            return Reply::status(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=60");
        }
        Reply::ok("body")
            .header("cache-control", "max-age=60")
            .header("etag", "\"v1\"")
    })
    .await;
    let gateway = start(&upstream, "");
    get(&gateway, "/ma0").await;
    let r = request(
        gateway.addr,
        "GET",
        "/ma0",
        &[("cache-control", "max-age=0")],
    )
    .await;
    expect(&r, 200, "REVALIDATED", "body");
    assert_eq!(upstream.total(), 2);
}

#[tokio::test]
async fn a_range_request_is_answered_from_the_cached_object() {
    let upstream =
        Upstream::start(|_| Reply::ok("0123456789").header("cache-control", "max-age=60")).await;
    let gateway = start(&upstream, "");
    get(&gateway, "/range").await;
    let part = request(gateway.addr, "GET", "/range", &[("range", "bytes=2-5")]).await;
    assert_eq!(
        (part.status, part.text().as_str(), part.cache().as_str()),
        (206, "2345", "HIT")
    );
    assert_eq!(part.header("content-range"), "bytes 2-5/10");
    assert_eq!(upstream.total(), 1);
}

/// Every header field but `Date` and `Age`, sorted: what two answers from cache must share.
fn comparable(r: &Response) -> Vec<String> {
    let mut fields: Vec<String> = r
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "age"))
        .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
        .collect();
    fields.sort();
    fields
}

/// A plain hit is answered straight from the store; a hit whose request carries
/// `Cache-Control` goes through Pingora's cache path. Both must send the same answer.
#[tokio::test]
async fn direct_hit_and_cache_path_hit_send_the_same_answer() {
    let upstream = Upstream::start(|_| {
        Reply::ok("per origin")
            .header("cache-control", "max-age=60")
            .header("access-control-allow-origin", "https://a.example")
            .header("vary", "Accept-Language")
            .header("surrogate-key", "k1")
            .header("etag", "\"v1\"")
    })
    .await;
    let gateway = start(&upstream, "");
    let origin = [("origin", "https://a.example"), ("accept-language", "fr")];
    let first = request(gateway.addr, "GET", "/same", &origin).await;
    expect(&first, 200, "MISS", "per origin");
    let direct = request(gateway.addr, "GET", "/same", &origin).await;
    let with_directive = [
        ("origin", "https://a.example"),
        ("accept-language", "fr"),
        ("cache-control", "max-stale=0"),
    ];
    let full_path = request(gateway.addr, "GET", "/same", &with_directive).await;
    expect(&direct, 200, "HIT", "per origin");
    expect(&full_path, 200, "HIT", "per origin");
    assert_eq!(comparable(&direct), comparable(&full_path));
    assert!(direct.has("age") && full_path.has("age"));
    let head_direct = request(gateway.addr, "HEAD", "/same", &origin).await;
    let head_full_path = request(gateway.addr, "HEAD", "/same", &with_directive).await;
    assert_eq!(head_direct.cache(), "HIT");
    assert!(head_direct.body.is_empty());
    assert_eq!(comparable(&head_direct), comparable(&head_full_path));
    assert_eq!(comparable(&head_direct), comparable(&direct));
    assert!(
        !direct.has("surrogate-key"),
        "surrogate keys stay in the cache"
    );
    assert!(direct.varies_on("origin") && direct.varies_on("accept-language"));
    // Another Accept-Language is another variant, another origin another entry: both miss.
    let other_language = [("origin", "https://a.example"), ("accept-language", "de")];
    let other = request(gateway.addr, "GET", "/same", &other_language).await;
    assert_eq!(other.cache(), "MISS");
    let other_origin = [("origin", "https://b.example"), ("accept-language", "fr")];
    let other = request(gateway.addr, "GET", "/same", &other_origin).await;
    assert_eq!(other.cache(), "MISS");
    assert_eq!(upstream.hits("/same"), 3);
}

/// The same for a cached preflight (upstream mode stores the API's own answers).
#[tokio::test]
async fn direct_and_cache_path_preflight_hits_send_the_same_answer() {
    let upstream = Upstream::start(|_| {
        Reply::status(204)
            .header("access-control-allow-origin", "https://a.example")
            .header("access-control-allow-methods", "PUT")
            .header("access-control-max-age", "600")
    })
    .await;
    let gateway = start(&upstream, "");
    let preflight = [
        ("origin", "https://a.example"),
        ("access-control-request-method", "PUT"),
    ];
    let first = request(gateway.addr, "OPTIONS", "/pf", &preflight).await;
    assert_eq!((first.status, first.cache().as_str()), (204, "MISS"));
    let direct = request(gateway.addr, "OPTIONS", "/pf", &preflight).await;
    let mut with_directive = preflight.to_vec();
    with_directive.push(("cache-control", "max-stale=0"));
    let full_path = request(gateway.addr, "OPTIONS", "/pf", &with_directive).await;
    assert_eq!((direct.status, direct.cache().as_str()), (204, "HIT"));
    assert_eq!((full_path.status, full_path.cache().as_str()), (204, "HIT"));
    assert_eq!(comparable(&direct), comparable(&full_path));
    assert_eq!(upstream.hits("/pf"), 1);
}
