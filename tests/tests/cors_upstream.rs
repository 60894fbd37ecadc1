//! CORS in `upstream` mode (the default): the upstream decides, the gateway forwards the CORS
//! request headers and caches every answer so that one origin's response is never served to
//! another, and caches preflights per origin, method and normalized request headers.
//!
//! The upstream here writes the origin it answered for into the body (`made-for: <origin>`), so
//! a response served to the wrong origin is visible in the body as well as in the ACAO.

use std::sync::Arc;
use std::time::Duration;

use cors_edge_tests::{
    request, GatewayConfig, GatewayProcess, Reply, Response, Route, Upstream, UpstreamRequest,
};

const APP: &str = "https://app.example.com";
const ADMIN: &str = "https://admin.example.com";
const EVIL: &str = "https://evil.example";

fn upstream_allows(origin: &str) -> bool {
    origin == APP || origin == ADMIN
}

fn made_for(origin: Option<&str>) -> String {
    format!("made-for: {}", origin.unwrap_or("none"))
}

/// The upstream API. GET paths:
/// - `/a`: echoes allowed origins in ACAO, with `Vary: Origin` (correct);
/// - `/b`: echoes allowed origins, forgets `Vary` (classic bug);
/// - `/c`: `ACAO: *`, one body for everyone;
/// - `/d`: `ACAO: *` but with `Vary: Origin` and a per-origin body;
/// - `/cred`: `ACAO: *` with `Access-Control-Allow-Credentials: true`.
///
/// Preflights (`OPTIONS`): allowed origins get a grant with `Access-Control-Max-Age: 600`
/// (`1` under `/short`); other origins get `403`, or under `/silent` a `204` without ACAO.
fn api(req: &UpstreamRequest) -> Reply {
    let origin = req.header("origin");
    if req.method == "OPTIONS" {
        return preflight(req, origin.as_deref());
    }
    let echo = |reply: Reply| match origin.as_deref().filter(|o| upstream_allows(o)) {
        Some(o) => reply.header("access-control-allow-origin", o),
        None => reply,
    };
    let per_origin = Reply::ok(made_for(origin.as_deref())).header("cache-control", "max-age=60");
    match req.path().rsplit('/').next().unwrap_or("") {
        "a" => echo(per_origin).header("vary", "Origin"),
        "b" => echo(per_origin),
        "c" => Reply::ok("made-for: everyone")
            .header("cache-control", "max-age=60")
            .header("access-control-allow-origin", "*"),
        "d" => per_origin
            .header("access-control-allow-origin", "*")
            .header("vary", "Origin"),
        "cred" => Reply::ok("made-for: everyone")
            .header("cache-control", "max-age=60")
            .header("access-control-allow-origin", "*")
            .header("access-control-allow-credentials", "true"),
        // Everything else (e.g. the preflight paths) answers GET with a per-origin body.
        _ => echo(per_origin).header("vary", "Origin"),
    }
}

fn preflight(req: &UpstreamRequest, origin: Option<&str>) -> Reply {
    let path = req.path();
    match origin.filter(|o| upstream_allows(o)) {
        Some(o) => {
            let max_age = if path.starts_with("/short") {
                "1"
            } else {
                "600"
            };
            let mut reply = Reply::status(204)
                .header("access-control-allow-origin", o)
                .header("access-control-allow-methods", "GET, PUT, DELETE")
                .header("access-control-max-age", max_age)
                .header("vary", "Origin");
            if let Some(acrh) = req.header("access-control-request-headers") {
                reply = reply.header("access-control-allow-headers", &acrh);
            }
            reply
        }
        None if path.starts_with("/silent") => Reply::status(204),
        None => Reply::status(403),
    }
}

/// Freshness capped at 1 s under `/capped`, at 1 h elsewhere; refused preflights cached 1 s.
fn gateway_config(upstream: &Upstream) -> GatewayConfig {
    GatewayConfig::new(upstream.addr)
        .cache("negative_preflight_ttl: 1s")
        .route(Route::prefix("capped", "/capped").cache("enabled: true, max_ttl: 1s"))
        .route_cache("enabled: true, max_ttl: 1h")
}

fn config(upstream: &Upstream) -> String {
    gateway_config(upstream).yaml()
}

async fn get(gateway: &GatewayProcess, path: &str, origin: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
    request(gateway.addr, "GET", path, &headers).await
}

async fn options(gateway: &GatewayProcess, path: &str, headers: &[(&str, &str)]) -> Response {
    request(gateway.addr, "OPTIONS", path, headers).await
}

fn preflights_seen(upstream: &Upstream, path: &str) -> usize {
    upstream
        .requests()
        .iter()
        .filter(|r| r.method == "OPTIONS" && r.path() == path)
        .count()
}

fn gets_seen(upstream: &Upstream, path: &str) -> usize {
    upstream
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path() == path)
        .count()
}

/// `cors_edge_unsafe_upstream_responses_total{reason="<reason>"}` from the admin listener
/// (0 when the series does not exist yet).
async fn unsafe_count(gateway: &GatewayProcess, reason: &str) -> u64 {
    let metrics = request(gateway.admin, "GET", "/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    let series = format!("cors_edge_unsafe_upstream_responses_total{{reason=\"{reason}\"}}");
    metrics
        .text()
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .map_or(0, |value| {
            value.trim().parse::<f64>().expect("a number") as u64
        })
}

/// What a correct answer for `origin` looks like on the echoing endpoints.
fn assert_answer_for(resp: &Response, origin: Option<&str>, context: &str) {
    assert_eq!(resp.status, 200, "{context}");
    assert_eq!(
        resp.text(),
        made_for(origin),
        "{context}: body made for another origin"
    );
    let expected_acao = origin.filter(|o| upstream_allows(o)).unwrap_or("");
    assert_eq!(
        resp.header("access-control-allow-origin"),
        expected_acao,
        "{context}: ACAO"
    );
    assert!(
        resp.varies_on("origin"),
        "{context}: Vary {:?} lacks Origin",
        resp.header("vary")
    );
}

const ORIGINS: [Option<&str>; 4] = [Some(EVIL), Some(APP), None, Some(ADMIN)];

#[tokio::test]
async fn cors_request_headers_reach_the_upstream() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    let resp = get(&gateway, "/a", Some(APP)).await;
    assert_answer_for(&resp, Some(APP), "GET /a");
    let resp = options(
        &gateway,
        "/pf",
        &[
            ("origin", APP),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-a, content-type"),
        ],
    )
    .await;
    assert_eq!(resp.status, 204);
    let seen = upstream.requests();
    let get_seen = seen
        .iter()
        .find(|r| r.method == "GET")
        .expect("the GET reached the upstream");
    assert_eq!(get_seen.header("origin").as_deref(), Some(APP));
    let options_seen = seen
        .iter()
        .find(|r| r.method == "OPTIONS")
        .expect("the preflight reached the upstream");
    assert_eq!(options_seen.header("origin").as_deref(), Some(APP));
    assert_eq!(
        options_seen
            .header("access-control-request-method")
            .as_deref(),
        Some("PUT")
    );
    let acrh = options_seen
        .header("access-control-request-headers")
        .expect("ACRH forwarded");
    let mut names: Vec<String> = acrh
        .split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    names.sort();
    assert_eq!(names, ["content-type", "x-a"]);
}

/// Runs every origin twice against `path` and checks each answer; returns the X-Cache values of
/// the second round.
async fn two_rounds(gateway: &GatewayProcess, path: &str) -> Vec<String> {
    for origin in ORIGINS {
        let resp = get(gateway, path, origin).await;
        assert_answer_for(&resp, origin, &format!("first GET {path} from {origin:?}"));
        assert_eq!(resp.cache(), "MISS", "first GET {path} from {origin:?}");
    }
    let mut second = Vec::new();
    for origin in ORIGINS {
        let resp = get(gateway, path, origin).await;
        assert_answer_for(&resp, origin, &format!("second GET {path} from {origin:?}"));
        second.push(resp.cache());
    }
    second
}

#[tokio::test]
async fn echoing_upstream_with_vary_origin_is_stored_per_origin() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    let second = two_rounds(&gateway, "/a").await;
    assert_eq!(second, ["HIT"; 4]);
    assert_eq!(
        gets_seen(&upstream, "/a"),
        ORIGINS.len(),
        "one fetch per origin (and one without)"
    );
    assert_eq!(unsafe_count(&gateway, "acao_without_vary").await, 0);
}

#[tokio::test]
async fn echoing_upstream_without_vary_is_still_stored_per_origin() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    // The disallowed origin goes first: its ACAO-less answer without Vary must not become the
    // copy every other origin gets, nor be overwritten by / overwrite the allowed ones.
    let second = two_rounds(&gateway, "/b").await;
    assert_eq!(second, ["HIT"; 4]);
    assert_eq!(gets_seen(&upstream, "/b"), ORIGINS.len());
    // Two responses (APP, ADMIN) named an origin without Vary: Origin.
    assert_eq!(unsafe_count(&gateway, "acao_without_vary").await, 2);
    assert_eq!(unsafe_count(&gateway, "wildcard_with_credentials").await, 0);
}

#[tokio::test]
async fn allowed_origin_first_then_disallowed_without_vary() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    // The other order: the allowed origin's ACAO must not leak to the disallowed one or to a
    // request without Origin.
    for origin in [Some(APP), Some(EVIL), None, Some(APP), Some(EVIL), None] {
        let resp = get(&gateway, "/b2/b", origin).await;
        assert_answer_for(&resp, origin, &format!("GET /b2/b from {origin:?}"));
    }
    assert_eq!(gets_seen(&upstream, "/b2/b"), 3);
}

#[tokio::test]
async fn wildcard_without_vary_is_shared_by_every_origin() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    let origins = [
        Some(APP),
        Some(EVIL),
        None,
        Some(ADMIN),
        Some("null"),
        Some("https://x.example"),
    ];
    for (i, origin) in origins.iter().enumerate() {
        let resp = get(&gateway, "/c", *origin).await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.text(), "made-for: everyone");
        assert_eq!(resp.header("access-control-allow-origin"), "*");
        assert_eq!(
            resp.cache(),
            if i == 0 { "MISS" } else { "HIT" },
            "GET /c from {origin:?}"
        );
        assert!(
            !resp.varies_on("origin"),
            "a shared `*` answer needs no Vary: Origin"
        );
    }
    assert_eq!(
        gets_seen(&upstream, "/c"),
        1,
        "one upstream fetch for all origins"
    );
    assert_eq!(unsafe_count(&gateway, "acao_without_vary").await, 0);
}

#[tokio::test]
async fn wildcard_with_vary_origin_is_stored_per_origin() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    for round in 0..2 {
        for origin in ORIGINS {
            let resp = get(&gateway, "/d", origin).await;
            assert_eq!(resp.status, 200);
            assert_eq!(
                resp.text(),
                made_for(origin),
                "round {round}, origin {origin:?}"
            );
            assert_eq!(resp.header("access-control-allow-origin"), "*");
            assert!(resp.varies_on("origin"));
            assert_eq!(
                resp.cache(),
                if round == 0 { "MISS" } else { "HIT" },
                "round {round}, {origin:?}"
            );
        }
    }
    assert_eq!(gets_seen(&upstream, "/d"), ORIGINS.len());
}

#[tokio::test]
async fn wildcard_with_credentials_is_counted_as_unsafe() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    assert_eq!(unsafe_count(&gateway, "wildcard_with_credentials").await, 0);
    let resp = get(&gateway, "/cred", Some(APP)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(unsafe_count(&gateway, "wildcard_with_credentials").await, 1);
    assert_eq!(unsafe_count(&gateway, "acao_without_vary").await, 0);
    // And the ACAO-without-Vary reason, counted once per upstream response.
    get(&gateway, "/b", Some(APP)).await;
    get(&gateway, "/b", Some(APP)).await;
    assert_eq!(unsafe_count(&gateway, "acao_without_vary").await, 1);
}

fn preflight_headers<'a>(
    origin: &'a str,
    method: &'a str,
    acrh: &[&'a str],
) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("origin", origin),
        ("access-control-request-method", method),
    ];
    for line in acrh {
        headers.push(("access-control-request-headers", line));
    }
    headers
}

#[tokio::test]
async fn preflights_with_equivalent_request_headers_share_one_entry() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    let variants: [&[&str]; 4] = [
        &["Content-Type, X-A"],
        &["x-a,content-type"],
        &["x-a", "content-type"],
        &[" X-A , content-type, x-a "],
    ];
    for (i, acrh) in variants.iter().enumerate() {
        let resp = options(&gateway, "/pf", &preflight_headers(APP, "PUT", acrh)).await;
        assert_eq!(resp.status, 204, "{acrh:?}");
        assert_eq!(resp.header("access-control-allow-origin"), APP);
        assert_eq!(
            resp.cache(),
            if i == 0 { "MISS" } else { "HIT" },
            "{acrh:?}"
        );
        for field in [
            "origin",
            "access-control-request-method",
            "access-control-request-headers",
        ] {
            assert!(
                resp.varies_on(field),
                "preflight Vary {:?} lacks {field}",
                resp.header("vary")
            );
        }
    }
    assert_eq!(
        preflights_seen(&upstream, "/pf"),
        1,
        "one upstream preflight"
    );
}

#[tokio::test]
async fn preflights_differing_in_method_headers_or_origin_are_different_entries() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    let cases: [(&str, &str, &[&str]); 5] = [
        (APP, "PUT", &["x-a"]),
        (APP, "DELETE", &["x-a"]),
        (APP, "PUT", &["x-a, x-b"]),
        (APP, "PUT", &[]),
        (ADMIN, "PUT", &["x-a"]),
    ];
    for (origin, method, acrh) in cases {
        let resp = options(&gateway, "/pf2", &preflight_headers(origin, method, acrh)).await;
        assert_eq!(
            (resp.status, resp.cache().as_str()),
            (204, "MISS"),
            "{origin} {method} {acrh:?}"
        );
        assert_eq!(resp.header("access-control-allow-origin"), origin);
    }
    for (origin, method, acrh) in cases {
        let resp = options(&gateway, "/pf2", &preflight_headers(origin, method, acrh)).await;
        assert_eq!(
            (resp.status, resp.cache().as_str()),
            (204, "HIT"),
            "{origin} {method} {acrh:?}"
        );
        assert_eq!(
            resp.header("access-control-allow-origin"),
            origin,
            "served another origin's grant"
        );
        let acah = resp.header("access-control-allow-headers");
        assert_eq!(
            acah.is_empty(),
            acrh.is_empty(),
            "served the grant for other request headers"
        );
    }
    assert_eq!(preflights_seen(&upstream, "/pf2"), cases.len());
    // A disallowed origin asking the same thing gets its own (denied) answer, not a grant.
    let denied = options(&gateway, "/pf2", &preflight_headers(EVIL, "PUT", &["x-a"])).await;
    assert_eq!(denied.status, 403);
    assert!(!denied.has("access-control-allow-origin"));
}

#[tokio::test]
async fn preflight_ttl_follows_max_age() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    let headers = preflight_headers(APP, "PUT", &["x-a"]);
    assert_eq!(options(&gateway, "/short", &headers).await.cache(), "MISS");
    assert_eq!(options(&gateway, "/short", &headers).await.cache(), "HIT");
    assert_eq!(preflights_seen(&upstream, "/short"), 1);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let after = options(&gateway, "/short", &headers).await;
    assert_eq!(after.status, 204);
    assert_ne!(after.cache(), "HIT", "Access-Control-Max-Age: 1 expired");
    assert_eq!(preflights_seen(&upstream, "/short"), 2);
}

#[tokio::test]
async fn preflight_ttl_is_capped_by_the_route_max_ttl() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    // The upstream says Max-Age 600, the route `capped` says max_ttl 1s.
    let headers = preflight_headers(APP, "PUT", &["x-a"]);
    let first = options(&gateway, "/capped/p", &headers).await;
    assert_eq!((first.status, first.cache().as_str()), (204, "MISS"));
    assert_eq!(first.header("access-control-max-age"), "600");
    assert_eq!(
        options(&gateway, "/capped/p", &headers).await.cache(),
        "HIT"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_ne!(
        options(&gateway, "/capped/p", &headers).await.cache(),
        "HIT"
    );
    assert_eq!(preflights_seen(&upstream, "/capped/p"), 2);
    // On the uncapped route the same answer is still cached after the same wait.
    assert_eq!(options(&gateway, "/long", &headers).await.cache(), "MISS");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(options(&gateway, "/long", &headers).await.cache(), "HIT");
    assert_eq!(preflights_seen(&upstream, "/long"), 1);
}

#[tokio::test]
async fn denied_preflights_are_cached_only_briefly() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    // 403 from the upstream, and a 204 without ACAO: both are denials.
    for path in ["/denied", "/silent"] {
        let headers = preflight_headers(EVIL, "PUT", &["x-a"]);
        let first = options(&gateway, path, &headers).await;
        assert_eq!(first.cache(), "MISS", "{path}");
        assert!(!first.has("access-control-allow-origin"));
        let second = options(&gateway, path, &headers).await;
        assert_eq!(
            second.cache(),
            "HIT",
            "{path}: a denied preflight is cached for negative_preflight_ttl"
        );
        assert_eq!(second.status, first.status);
        for resp in [&first, &second] {
            for field in [
                "origin",
                "access-control-request-method",
                "access-control-request-headers",
            ] {
                assert!(
                    resp.varies_on(field),
                    "{path}: denied preflight Vary {:?} lacks {field}",
                    resp.header("vary")
                );
            }
        }
        assert_eq!(preflights_seen(&upstream, path), 1);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let third = options(&gateway, path, &headers).await;
        assert_ne!(third.cache(), "HIT", "{path}: negative_preflight_ttl is 1s");
        assert_eq!(preflights_seen(&upstream, path), 2);
        // Meanwhile an allowed origin was never given the denial.
        let allowed = options(&gateway, path, &preflight_headers(APP, "PUT", &["x-a"])).await;
        assert_eq!(
            (
                allowed.status,
                allowed.header("access-control-allow-origin").as_str()
            ),
            (204, APP)
        );
    }
}

#[tokio::test]
async fn get_after_options_on_the_same_path_is_never_the_preflight_answer() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    let pf = options(&gateway, "/same", &preflight_headers(APP, "GET", &[])).await;
    assert_eq!(pf.status, 204);
    for origin in [Some(APP), None, Some(EVIL)] {
        let resp = get(&gateway, "/same", origin).await;
        assert_answer_for(
            &resp,
            origin,
            &format!("GET /same from {origin:?} after OPTIONS"),
        );
        assert_eq!(resp.cache(), "MISS");
    }
    // And the other way round: a preflight after a cached GET is a preflight answer.
    let again = get(&gateway, "/same", Some(APP)).await;
    assert_eq!(again.cache(), "HIT");
    let pf = options(&gateway, "/same", &preflight_headers(APP, "DELETE", &[])).await;
    assert_eq!((pf.status, pf.cache().as_str()), (204, "MISS"));
    assert!(pf.body.is_empty());
    // A plain OPTIONS (no Access-Control-Request-Method) is not a preflight and not a GET.
    let plain = options(&gateway, "/same", &[("origin", APP)]).await;
    assert_ne!(plain.text(), made_for(Some(APP)));
    assert_eq!(gets_seen(&upstream, "/same"), 3);
}

/// A gateway without stale-while-revalidate, so an expired entry is refetched or revalidated
/// before it is served (deterministic cache statuses).
fn config_no_swr(upstream: &Upstream) -> String {
    gateway_config(upstream)
        .cache("stale_while_revalidate: 0s")
        .yaml()
}

#[tokio::test]
async fn head_is_answered_from_the_requests_own_origin_variant() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(&upstream));
    assert_answer_for(
        &get(&gateway, "/h/b", Some(APP)).await,
        Some(APP),
        "GET from APP",
    );
    // HEAD from another origin must not see APP's ACAO.
    let head = request(gateway.addr, "HEAD", "/h/b", &[("origin", EVIL)]).await;
    assert_eq!(head.status, 200);
    assert!(
        !head.has("access-control-allow-origin"),
        "HEAD from EVIL got {:?}",
        head.header("access-control-allow-origin")
    );
    let head = request(gateway.addr, "HEAD", "/h/b", &[("origin", APP)]).await;
    assert_eq!(
        (
            head.cache().as_str(),
            head.header("access-control-allow-origin").as_str()
        ),
        ("HIT", APP)
    );
    // Whatever the HEAD from EVIL stored, a GET from EVIL gets its own full body.
    assert_answer_for(
        &get(&gateway, "/h/b", Some(EVIL)).await,
        Some(EVIL),
        "GET from EVIL after its HEAD",
    );
    assert_answer_for(
        &get(&gateway, "/h/b", Some(APP)).await,
        Some(APP),
        "GET from APP at the end",
    );
}

#[tokio::test]
async fn switching_between_shared_star_and_per_origin_answers() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let per_origin = Arc::new(AtomicBool::new(false));
    let flag = per_origin.clone();
    let upstream = Upstream::start(move |req| {
        let origin = req.header("origin");
        if flag.load(Ordering::SeqCst) {
            // Echoes allowed origins and forgets Vary.
            let reply = Reply::ok(made_for(origin.as_deref()))
                .header("cache-control", "max-age=2")
                .dated_now();
            match origin.as_deref().filter(|o| upstream_allows(o)) {
                Some(o) => reply.header("access-control-allow-origin", o),
                None => reply,
            }
        } else {
            Reply::ok("made-for: everyone")
                .header("cache-control", "max-age=2")
                .dated_now()
                .header("access-control-allow-origin", "*")
        }
    })
    .await;
    let gateway = GatewayProcess::start(&config_no_swr(&upstream));
    let shared = |resp: &Response| (resp.text(), resp.header("access-control-allow-origin"));
    let star = ("made-for: everyone".to_string(), "*".to_string());
    // Lifetimes of 2 s from each fetch (`Date` rounded up: no apparent age), so no phase's
    // answers expire during the phase; 2.3 s between phases expires them all.
    // Phase 1: `*` shared by everyone.
    for origin in ORIGINS {
        assert_eq!(
            shared(&get(&gateway, "/flip", origin).await),
            star,
            "{origin:?}"
        );
    }
    assert_eq!(upstream.total(), 1);
    // Phase 2: the upstream now answers per origin; after expiry nobody may get another's answer.
    per_origin.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    for round in 0..2 {
        for origin in ORIGINS {
            assert_answer_for(
                &get(&gateway, "/flip", origin).await,
                origin,
                &format!("per-origin round {round}, {origin:?}"),
            );
        }
    }
    // Phase 3: back to `*`: after expiry everyone gets the shared answer again, once fetched.
    per_origin.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let before = upstream.total();
    for round in 0..2 {
        for origin in ORIGINS {
            let resp = get(&gateway, "/flip", origin).await;
            // An origin whose own variant is still stored may refetch it once; either way the
            // answer is the upstream's current one, never another origin's.
            assert_eq!(
                shared(&resp),
                star,
                "star round {round}, {origin:?} ({})",
                resp.cache()
            );
        }
    }
    assert!(upstream.total() - before <= ORIGINS.len());
}

#[tokio::test]
async fn revalidation_keeps_each_origin_on_its_own_variant() {
    let upstream = Upstream::start(|req| {
        let origin = req.header("origin");
        let etag = format!(
            "\"{}\"",
            origin.as_deref().unwrap_or("none").replace(['/', ':'], "")
        );
        let allowed = origin.as_deref().filter(|o| upstream_allows(o));
        // Fresh for 1s at first; each 304 makes the variant fresh for a minute.
        let reply = if req.header("if-none-match").as_deref() == Some(etag.as_str()) {
            Reply::status(304).header("cache-control", "max-age=60")
        } else {
            Reply::ok(made_for(origin.as_deref())).header("cache-control", "max-age=1")
        };
        let reply = reply.header("etag", &etag);
        match allowed {
            Some(o) => reply.header("access-control-allow-origin", o),
            None => reply,
        }
    })
    .await;
    let gateway = GatewayProcess::start(&config_no_swr(&upstream));
    for origin in ORIGINS {
        assert_answer_for(
            &get(&gateway, "/rv", origin).await,
            origin,
            &format!("first, {origin:?}"),
        );
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for origin in ORIGINS {
        let resp = get(&gateway, "/rv", origin).await;
        assert_answer_for(&resp, origin, &format!("after revalidation, {origin:?}"));
        assert_eq!(resp.cache(), "REVALIDATED", "{origin:?}");
    }
    for origin in ORIGINS {
        let resp = get(&gateway, "/rv", origin).await;
        assert_answer_for(
            &resp,
            origin,
            &format!("hit after revalidation, {origin:?}"),
        );
        assert_eq!(resp.cache(), "HIT", "{origin:?}");
    }
    // Each conditional request carried the ETag of the requester's own variant.
    for seen in upstream
        .requests()
        .iter()
        .filter(|r| r.header("if-none-match").is_some())
    {
        let origin = seen
            .header("origin")
            .unwrap_or_else(|| "none".into())
            .replace(['/', ':'], "");
        assert_eq!(seen.header("if-none-match"), Some(format!("\"{origin}\"")));
    }
    assert_eq!(upstream.total(), 2 * ORIGINS.len());
}

/// A 304 revalidates the variant it was asked about; its CORS headers must not widen that
/// variant's audience. Here the upstream computes its ETag from the data only (the same for every
/// origin) and, after a config change, answers revalidations with `ACAO: *`: the copy made for
/// one origin must still not be served to the others.
#[tokio::test]
async fn a_304_cannot_turn_one_origins_variant_into_a_shared_one() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let star = Arc::new(AtomicBool::new(false));
    let flag = star.clone();
    let upstream = Upstream::start(move |req| {
        let origin = req.header("origin");
        let reply = if req.header("if-none-match").as_deref() == Some("\"same\"") {
            Reply::status(304)
        } else {
            Reply::ok(made_for(origin.as_deref()))
        };
        let reply = reply
            .header("cache-control", "max-age=1")
            .header("etag", "\"same\"");
        if flag.load(Ordering::SeqCst) {
            return reply.header("access-control-allow-origin", "*");
        }
        match origin.as_deref().filter(|o| upstream_allows(o)) {
            // ... and forgets Vary, as on `/b`.
            Some(o) => reply.header("access-control-allow-origin", o),
            None => reply,
        }
    })
    .await;
    let gateway = GatewayProcess::start(&config_no_swr(&upstream));
    for origin in ORIGINS {
        assert_answer_for(
            &get(&gateway, "/scope", origin).await,
            origin,
            &format!("first, {origin:?}"),
        );
    }
    star.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for round in 0..2 {
        for origin in [Some(APP), Some(EVIL), None, Some(ADMIN)] {
            let resp = get(&gateway, "/scope", origin).await;
            assert_eq!(resp.status, 200);
            assert_eq!(
                resp.text(),
                made_for(origin),
                "round {round}, {origin:?} ({}): body made for another origin",
                resp.cache()
            );
        }
    }
}

#[tokio::test]
async fn past_max_variants_answers_are_served_unstored_and_still_per_origin() {
    let upstream = Upstream::start(api).await;
    let config = gateway_config(&upstream).cache("max_variants: 2").yaml();
    let gateway = GatewayProcess::start(&config);
    // APP and ADMIN fill the two variants of /mv/b; EVIL and no-Origin are served, not stored.
    let order = [Some(APP), Some(ADMIN), Some(EVIL), None];
    for origin in order {
        let resp = get(&gateway, "/mv/b", origin).await;
        assert_answer_for(&resp, origin, &format!("first, {origin:?}"));
        assert_eq!(resp.cache(), "MISS");
    }
    let second: Vec<String> = {
        let mut statuses = Vec::new();
        for origin in order {
            let resp = get(&gateway, "/mv/b", origin).await;
            assert_answer_for(&resp, origin, &format!("second, {origin:?}"));
            statuses.push(resp.cache());
        }
        statuses
    };
    assert_eq!(second, ["HIT", "HIT", "MISS", "MISS"]);
    assert_eq!(gets_seen(&upstream, "/mv/b"), 6);
}
