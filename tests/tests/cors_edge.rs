//! CORS in `edge` mode: the gateway decides from the route's `cors:` block, answers preflights
//! itself, strips whatever CORS headers the upstream sends, caches one body for every origin and
//! stamps the CORS headers per request after the cache.

use std::sync::Arc;

use cors_edge_tests::{
    request, GatewayConfig, GatewayProcess, Reply, Response, Route, Upstream, UpstreamRequest,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const APP: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example";

/// An upstream that gets CORS wrong on purpose: it grants a bogus origin on everything, so any
/// of its CORS headers reaching a client is a failure.
fn sloppy_api(req: &UpstreamRequest) -> Reply {
    let body = if req.method == "OPTIONS" {
        "upstream-options".to_string()
    } else {
        format!("body of {}", req.path())
    };
    Reply::ok(body)
        .header("cache-control", "max-age=60")
        .header("access-control-allow-origin", EVIL)
        .header("access-control-allow-credentials", "true")
        .header("access-control-expose-headers", "X-Evil")
        .header("access-control-allow-methods", "GET, PUT, PATCH, DELETE")
        .header("access-control-max-age", "86400")
        .header("vary", "Origin")
}

/// `/` for app.example.com and its subdomains with credentials, `/any` for any origin,
/// `/nullok` for `null` and app.example.com.
fn gateway_config(upstream: &Upstream) -> GatewayConfig {
    GatewayConfig::new(upstream.addr).routes([
        edge_route(),
        any_route(),
        nullok_route(&["null", "https://app.example.com"]),
    ])
}

fn config(upstream: &Upstream) -> String {
    gateway_config(upstream).yaml()
}

fn edge_route() -> Route {
    Route::prefix("edge", "/")
        .cors_edge(&["https://app.example.com", "https://*.example.com"])
        .cors("allow_credentials: true, allow_methods: [GET, POST, PUT, DELETE]")
        .cors("allow_headers: [Authorization, Content-Type, X-Requested-With]")
        .cors("expose_headers: [ETag, X-Request-Id], max_age: 600s")
}

fn any_route() -> Route {
    Route::prefix("any", "/any")
        .cors("mode: edge, allow_any_origin: true")
        .cors("allow_methods: [GET, PUT], allow_headers: [Content-Type]")
}

fn nullok_route(origins: &[&str]) -> Route {
    Route::prefix("nullok", "/nullok")
        .cors_edge(origins)
        .cors("allow_credentials: true")
}

async fn get(gateway: &GatewayProcess, path: &str, origin: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
    request(gateway.addr, "GET", path, &headers).await
}

async fn preflight(
    gateway: &GatewayProcess,
    path: &str,
    origin: &str,
    method: &str,
    acrh: Option<&str>,
) -> Response {
    let mut headers = vec![
        ("origin", origin),
        ("access-control-request-method", method),
    ];
    if let Some(acrh) = acrh {
        headers.push(("access-control-request-headers", acrh));
    }
    request(gateway.addr, "OPTIONS", path, &headers).await
}

/// Every `Access-Control-*` header of a response, lower-cased names.
fn cors_headers(resp: &Response) -> Vec<String> {
    let mut names: Vec<String> = resp
        .headers
        .keys()
        .map(|n| n.as_str().to_ascii_lowercase())
        .filter(|n| n.starts_with("access-control-"))
        .collect();
    names.dedup();
    names
}

fn list_contains(value: &str, item: &str) -> bool {
    value
        .split(',')
        .any(|v| v.trim().eq_ignore_ascii_case(item))
}

/// The CORS headers an allowed origin must get on an actual response, and nothing else.
fn assert_granted(resp: &Response, origin: &str, context: &str) {
    assert_eq!(
        resp.header("access-control-allow-origin"),
        origin,
        "{context}: ACAO"
    );
    assert_eq!(
        resp.header("access-control-allow-credentials"),
        "true",
        "{context}: ACAC"
    );
    let exposed = resp.header("access-control-expose-headers");
    assert!(
        list_contains(&exposed, "etag") && list_contains(&exposed, "x-request-id"),
        "{context}: ACEH {exposed:?}"
    );
    assert!(
        !list_contains(&exposed, "x-evil"),
        "{context}: the upstream's ACEH leaked: {exposed:?}"
    );
    let mut names = cors_headers(resp);
    names.sort();
    assert_eq!(
        names,
        [
            "access-control-allow-credentials",
            "access-control-allow-origin",
            "access-control-expose-headers"
        ],
        "{context}: unexpected CORS headers (leaked from the upstream?)"
    );
    assert!(
        resp.varies_on("origin"),
        "{context}: Vary {:?} lacks Origin",
        resp.header("vary")
    );
}

fn assert_no_cors(resp: &Response, context: &str) {
    assert!(
        cors_headers(resp).is_empty(),
        "{context}: got CORS headers {:?}",
        cors_headers(resp)
    );
}

#[tokio::test]
async fn edge_answers_preflights_itself() {
    let upstream = Upstream::start(sloppy_api).await;
    let gateway = GatewayProcess::start(&config(&upstream));

    let granted = preflight(
        &gateway,
        "/items",
        APP,
        "PUT",
        Some("Content-Type, X-Requested-With"),
    )
    .await;
    assert!(
        (200..300).contains(&granted.status),
        "status {}",
        granted.status
    );
    assert_eq!(granted.header("access-control-allow-origin"), APP);
    assert_eq!(granted.header("access-control-allow-credentials"), "true");
    let methods = granted.header("access-control-allow-methods");
    assert!(
        list_contains(&methods, "PUT") && !list_contains(&methods, "PATCH"),
        "ACAM {methods:?}"
    );
    let allowed_headers = granted.header("access-control-allow-headers");
    assert!(
        list_contains(&allowed_headers, "content-type")
            && list_contains(&allowed_headers, "x-requested-with"),
        "ACAH {allowed_headers:?}"
    );
    assert_eq!(granted.header("access-control-max-age"), "600");
    assert!(granted.body.is_empty() && granted.text() != "upstream-options");
    for field in [
        "origin",
        "access-control-request-method",
        "access-control-request-headers",
    ] {
        assert!(
            granted.varies_on(field),
            "preflight Vary {:?} lacks {field}",
            granted.header("vary")
        );
    }

    // Denials: disallowed origin, method, header. None of them gets a grant.
    let denials = [
        (EVIL, "PUT", Some("content-type")),
        ("https://example.com.evil.com", "GET", None),
        (APP, "PATCH", None),
        (APP, "PUT", Some("x-evil")),
        ("null", "GET", None),
    ];
    for (origin, method, acrh) in denials {
        let denied = preflight(&gateway, "/items", origin, method, acrh).await;
        assert!(
            !denied.has("access-control-allow-origin"),
            "{origin} {method} {acrh:?} got a grant"
        );
        assert!(
            !denied.has("access-control-allow-credentials"),
            "{origin} {method} {acrh:?}"
        );
        assert_ne!(denied.text(), "upstream-options");
        assert!(denied.varies_on("origin"));
    }
    assert_eq!(
        upstream.total(),
        0,
        "the upstream never sees a preflight in edge mode"
    );
}

#[tokio::test]
async fn edge_caches_one_body_and_stamps_cors_per_request() {
    let upstream = Upstream::start(sloppy_api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    let requests: [(Option<&str>, bool); 7] = [
        (Some(APP), true),
        (Some(EVIL), false),
        (Some("https://a.example.com"), true),
        (None, false),
        (Some("https://b.example.com"), true),
        (Some("null"), false),
        (Some(APP), true),
    ];
    for (i, (origin, allowed)) in requests.iter().enumerate() {
        let context = format!("GET /items from {origin:?}");
        let resp = get(&gateway, "/items", *origin).await;
        assert_eq!(resp.status, 200, "{context}");
        assert_eq!(resp.text(), "body of /items", "{context}");
        assert_eq!(
            resp.cache(),
            if i == 0 { "MISS" } else { "HIT" },
            "{context}"
        );
        assert_ne!(
            resp.header("access-control-allow-origin"),
            EVIL,
            "{context}: the upstream's ACAO leaked"
        );
        match origin {
            Some(o) if *allowed => assert_granted(&resp, o, &context),
            _ => assert_no_cors(&resp, &context),
        }
        // The allow-list depends on Origin, so every answer of the route varies on it.
        assert!(
            resp.varies_on("origin"),
            "{context}: Vary {:?}",
            resp.header("vary")
        );
    }
    assert_eq!(upstream.hits("/items"), 1, "one body for every origin");
    for seen in upstream.requests() {
        assert_eq!(
            seen.header("origin"),
            None,
            "Origin is not forwarded in edge mode"
        );
        assert_eq!(seen.header("access-control-request-method"), None);
        assert_eq!(seen.header("access-control-request-headers"), None);
    }
}

#[tokio::test]
async fn subdomain_patterns_match_only_real_subdomains() {
    let upstream = Upstream::start(sloppy_api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    for origin in ["https://a.example.com", "https://deep.a.example.com"] {
        let resp = get(&gateway, "/sub", Some(origin)).await;
        assert_granted(&resp, origin, &format!("GET from {origin}"));
        let pf = preflight(&gateway, "/sub", origin, "DELETE", None).await;
        assert_eq!(
            pf.header("access-control-allow-origin"),
            origin,
            "preflight from {origin}"
        );
    }
    for origin in [
        "https://example.com.evil.com",
        "https://evilexample.com",
        "http://a.example.com",
        "https://a.example.com:8443",
        "https://a.example.com.",
        "https://a.example.com@evil.com",
        "https://example.com", // the pattern names strict subdomains only
    ] {
        let resp = get(&gateway, "/sub", Some(origin)).await;
        assert_eq!(resp.text(), "body of /sub");
        assert_no_cors(&resp, &format!("GET from {origin}"));
        let pf = preflight(&gateway, "/sub", origin, "GET", None).await;
        assert!(
            !pf.has("access-control-allow-origin"),
            "preflight from {origin} got a grant"
        );
    }
    assert_eq!(upstream.hits("/sub"), 1);
}

#[tokio::test]
async fn any_origin_without_credentials_answers_star() {
    let upstream = Upstream::start(sloppy_api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    for origin in [Some(APP), Some(EVIL), Some("null"), None] {
        let resp = get(&gateway, "/any/x", origin).await;
        assert_eq!(resp.text(), "body of /any/x");
        assert_eq!(
            resp.header("access-control-allow-origin"),
            "*",
            "GET from {origin:?}"
        );
        assert!(
            !resp.has("access-control-allow-credentials"),
            "`*` never goes with credentials"
        );
    }
    let pf = preflight(&gateway, "/any/x", EVIL, "PUT", Some("content-type")).await;
    assert_eq!(pf.header("access-control-allow-origin"), "*");
    assert!(!pf.has("access-control-allow-credentials"));
    assert_eq!(upstream.hits("/any/x"), 1);
}

/// Starts the gateway with `yaml` and asserts it refuses the config: exit status 1 before
/// listening, with an error naming `key` (not any startup failure, such as a port clash).
fn assert_config_refused(yaml: &str, key: &str) {
    let message = match GatewayProcess::try_start(yaml, &[]) {
        Ok(_) => panic!("the gateway started with a config that must be refused ({key})"),
        Err(message) => message,
    };
    assert!(
        message.contains("exit status: 1"),
        "not a config refusal (exit status 1): {message}"
    );
    assert!(
        message
            .lines()
            .any(|line| line.contains("gateway.yaml:") && line.contains(key)),
        "no `FILE:LINE:COL: {key}: ...` error line: {message}"
    );
}

#[tokio::test]
async fn any_origin_with_credentials_is_refused_at_startup() {
    let upstream = Upstream::start(sloppy_api).await;
    let with_routes = |any: Route, nullok: Route| {
        GatewayConfig::new(upstream.addr)
            .routes([edge_route(), any, nullok])
            .yaml()
    };
    let base = config(&upstream);
    let any_with_credentials = with_routes(
        any_route().cors("allow_credentials: true"),
        nullok_route(&["null", "https://app.example.com"]),
    );
    assert_ne!(any_with_credentials, base);
    assert_config_refused(&any_with_credentials, "routes[1].cors.allow_any_origin");

    let star_with_credentials = with_routes(any_route(), nullok_route(&["*"]));
    assert_ne!(star_with_credentials, base);
    assert_config_refused(&star_with_credentials, ".cors.allow_origins[0]");

    // The unmodified config starts, so the failures above are about the combination.
    assert!(GatewayProcess::try_start(&base, &[]).is_ok());
}

#[tokio::test]
async fn null_origin_is_allowed_only_when_listed() {
    let upstream = Upstream::start(sloppy_api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    let not_listed = get(&gateway, "/items", Some("null")).await;
    assert_no_cors(&not_listed, "null on a route that does not list it");
    let listed = get(&gateway, "/nullok/x", Some("null")).await;
    assert_eq!(listed.header("access-control-allow-origin"), "null");
    assert_eq!(listed.header("access-control-allow-credentials"), "true");
    let pf = preflight(&gateway, "/nullok/x", "null", "GET", None).await;
    assert_eq!(pf.header("access-control-allow-origin"), "null");
    let pf = preflight(&gateway, "/items", "null", "GET", None).await;
    assert!(!pf.has("access-control-allow-origin"));
    // And the same cached body still carries the right answer for a listed real origin and
    // nothing for an unlisted one.
    assert_eq!(
        get(&gateway, "/nullok/x", Some(APP))
            .await
            .header("access-control-allow-origin"),
        APP
    );
    assert_no_cors(
        &get(&gateway, "/nullok/x", Some("https://a.example.com")).await,
        "unlisted on /nullok",
    );
    assert_eq!(upstream.hits("/nullok/x"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_origins_cause_one_upstream_fetch() {
    const ORIGINS: usize = 1000;
    const IN_FLIGHT: usize = 16;
    let upstream = Upstream::start(sloppy_api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    let addr = gateway.addr;
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for i in 0..ORIGINS {
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore");
            let origin = format!("https://o{i}.example.com");
            let resp = request(addr, "GET", "/popular", &[("origin", origin.as_str())]).await;
            (origin, resp)
        });
    }
    let mut hits = 0;
    let mut answered = 0;
    while let Some(joined) = tasks.join_next().await {
        let (origin, resp) = joined.expect("request task");
        assert_eq!(resp.status, 200, "{origin}");
        assert_eq!(resp.text(), "body of /popular", "{origin}");
        assert_granted(&resp, &origin, &origin);
        if resp.cache() == "HIT" {
            hits += 1;
        }
        answered += 1;
    }
    let fetches = upstream.hits("/popular");
    println!("edge mode: {answered} origins -> {fetches} upstream fetch(es), {hits} cache hits");
    assert_eq!(answered, ORIGINS);
    assert_eq!(
        fetches, 1,
        "{ORIGINS} distinct allowed origins on one URL must cause one upstream fetch"
    );
}

#[tokio::test]
async fn revalidation_304_cannot_smuggle_upstream_cors_headers() {
    let upstream = Upstream::start(|req| {
        // The first answer is fresh for 1s; the 304 makes it fresh for a minute.
        let reply = if req.header("if-none-match").as_deref() == Some("\"v1\"") {
            Reply::status(304).header("cache-control", "max-age=60")
        } else {
            Reply::ok(format!("body of {}", req.path())).header("cache-control", "max-age=1")
        };
        reply
            .header("etag", "\"v1\"")
            .header("access-control-allow-origin", EVIL)
            .header("access-control-allow-credentials", "true")
            .header("access-control-expose-headers", "X-Evil")
            .header("vary", "Origin")
    })
    .await;
    let config = gateway_config(&upstream)
        .cache("stale_while_revalidate: 0s")
        .yaml();
    let gateway = GatewayProcess::start(&config);
    assert_granted(&get(&gateway, "/rv", Some(APP)).await, APP, "first GET");
    assert_no_cors(
        &get(&gateway, "/rv", Some(EVIL)).await,
        "hit from a disallowed origin before the 304",
    );
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let revalidated = get(&gateway, "/rv", Some("https://a.example.com")).await;
    assert_eq!(revalidated.cache(), "REVALIDATED");
    assert_eq!(revalidated.text(), "body of /rv");
    assert_granted(&revalidated, "https://a.example.com", "revalidated GET");
    let denied = get(&gateway, "/rv", Some(EVIL)).await;
    assert_eq!(
        (denied.cache().as_str(), denied.text().as_str()),
        ("HIT", "body of /rv")
    );
    assert_no_cors(&denied, "hit from a disallowed origin after the 304");
    assert_granted(
        &get(&gateway, "/rv", Some(APP)).await,
        APP,
        "hit after the 304",
    );
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("if-none-match").as_deref(), Some("\"v1\""));
    assert!(seen.iter().all(|r| r.header("origin").is_none()));
}
