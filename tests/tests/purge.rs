//! `POST /purge` end to end: every selector drops what it names and nothing else, soft purges
//! revalidate with the stored validator, and a purge made while a fill is in flight is not
//! undone when that fill lands.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cors_edge_tests::client::request_with_body;
use cors_edge_tests::upstream::Gate;
use cors_edge_tests::{
    request, GatewayConfig, GatewayProcess, Reply, Response, Upstream, UpstreamRequest,
};

const APP: &str = "https://app.example.com";
const OTHER: &str = "https://other.example.com";

/// One catch-all route in upstream CORS mode.
fn config(upstream: SocketAddr) -> GatewayConfig {
    GatewayConfig::new(upstream).route_cors("mode: upstream")
}

/// An API that does CORS right: echoes the origin, says `Vary: Origin`, answers preflights.
fn cors_api(req: &UpstreamRequest) -> Reply {
    let origin = req.header("origin");
    if req.method == "OPTIONS" {
        let mut reply = Reply::status(204).header("access-control-allow-methods", "GET, POST");
        reply = reply.header("access-control-max-age", "600");
        if let Some(origin) = &origin {
            reply = reply.header("access-control-allow-origin", origin);
        }
        return reply;
    }
    let mut reply = Reply::ok(format!(
        "{} for {}",
        req.path_and_query,
        origin.as_deref().unwrap_or("-")
    ))
    .header("cache-control", "max-age=60")
    .header("vary", "Origin");
    if let Some(origin) = &origin {
        reply = reply.header("access-control-allow-origin", origin);
    }
    reply
}

async fn purge(gateway: &GatewayProcess, body: &str) -> u64 {
    let response = request_with_body(
        gateway.admin,
        "POST",
        "/purge",
        &[("content-type", "application/json")],
        Bytes::from(body.to_string()),
    )
    .await;
    assert_eq!(response.status, 200, "purge {body}: {}", response.text());
    let json: serde_json::Value =
        serde_json::from_slice(&response.body).expect("purge answers JSON");
    json["purged"]
        .as_u64()
        .unwrap_or_else(|| panic!("no purged count in {json}"))
}

async fn get(addr: SocketAddr, path: &str, origin: Option<&str>) -> Response {
    match origin {
        Some(origin) => request(addr, "GET", path, &[("origin", origin)]).await,
        None => request(addr, "GET", path, &[]).await,
    }
}

/// Requests once to fill, then checks the second is a hit.
async fn warm(addr: SocketAddr, path: &str, origin: Option<&str>) {
    let first = get(addr, path, origin).await;
    assert_eq!(first.status, 200);
    let second = get(addr, path, origin).await;
    assert_eq!(
        second.cache(),
        "HIT",
        "{path} from {origin:?} should be cached"
    );
}

async fn stats_entries(gateway: &GatewayProcess) -> u64 {
    let response = request(gateway.admin, "GET", "/stats", &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&response.body).expect("stats JSON");
    json["entries"].as_u64().expect("entries")
}

fn upstream_count(upstream: &Upstream, method: &str, path: &str, origin: Option<&str>) -> usize {
    upstream
        .requests()
        .iter()
        .filter(|r| {
            r.method == method
                && r.path_and_query == path
                && r.header("origin").as_deref() == origin
        })
        .count()
}

#[tokio::test]
async fn purge_by_origin_drops_that_origins_variants_only() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr).yaml());
    let addr = gateway.addr;
    for path in ["/a", "/b"] {
        for origin in [Some(APP), Some(OTHER), None] {
            warm(addr, path, origin).await;
        }
    }
    assert_eq!(
        purge(&gateway, &format!("{{\"origin\": \"{APP}\"}}")).await,
        2
    );
    for path in ["/a", "/b"] {
        let purged = get(addr, path, Some(APP)).await;
        assert_eq!(purged.cache(), "MISS", "{path} for {APP} was purged");
        assert_eq!(purged.header("access-control-allow-origin"), APP);
        assert_eq!(
            get(addr, path, Some(OTHER)).await.cache(),
            "HIT",
            "{path} for {OTHER} was not"
        );
        assert_eq!(
            get(addr, path, None).await.cache(),
            "HIT",
            "{path} without Origin was not"
        );
        assert_eq!(upstream_count(&upstream, "GET", path, Some(APP)), 2);
        assert_eq!(upstream_count(&upstream, "GET", path, Some(OTHER)), 1);
    }
}

/// Pingora keeps the first variant of a URL in the "primary slot" and treats its timestamp as the
/// tombstone of every other variant. Purging the origin whose variant sits there, then refilling
/// it a second later, must not take the other origins' variants down with it.
#[tokio::test]
async fn purge_by_origin_keeps_other_origins_when_the_purged_one_was_cached_first() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr).yaml());
    let addr = gateway.addr;
    warm(addr, "/first", Some(APP)).await;
    warm(addr, "/first", Some(OTHER)).await;
    warm(addr, "/first", None).await;
    // Responses carry a whole-second `Date`: let the refill land in a later second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        purge(&gateway, &format!("{{\"origin\": \"{APP}\"}}")).await,
        1
    );
    assert_eq!(get(addr, "/first", Some(APP)).await.cache(), "MISS");
    assert_eq!(
        get(addr, "/first", Some(APP)).await.cache(),
        "HIT",
        "refilled"
    );
    assert_eq!(
        get(addr, "/first", Some(OTHER)).await.cache(),
        "HIT",
        "{OTHER} was not purged"
    );
    assert_eq!(
        get(addr, "/first", None).await.cache(),
        "HIT",
        "no-Origin variant was not purged"
    );
    assert_eq!(upstream_count(&upstream, "GET", "/first", Some(OTHER)), 1);
}

#[tokio::test]
async fn purge_by_origin_is_case_and_trailing_slash_insensitive() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr).yaml());
    warm(gateway.addr, "/a", Some(APP)).await;
    assert_eq!(
        purge(&gateway, "{\"origin\": \"HTTPS://App.Example.com/\"}").await,
        1
    );
    assert_eq!(get(gateway.addr, "/a", Some(APP)).await.cache(), "MISS");
}

#[tokio::test]
async fn purge_by_host_drops_that_hosts_entries_only() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr).yaml());
    let addr = gateway.addr;
    for host in ["a.example.com", "b.example.com"] {
        for path in ["/x", "/y"] {
            assert_eq!(
                request(addr, "GET", path, &[("host", host)]).await.status,
                200
            );
            assert_eq!(
                request(addr, "GET", path, &[("host", host)]).await.cache(),
                "HIT"
            );
        }
    }
    assert_eq!(purge(&gateway, "{\"host\": \"A.example.com\"}").await, 2);
    for path in ["/x", "/y"] {
        assert_eq!(
            request(addr, "GET", path, &[("host", "a.example.com")])
                .await
                .cache(),
            "MISS"
        );
        assert_eq!(
            request(addr, "GET", path, &[("host", "b.example.com")])
                .await
                .cache(),
            "HIT"
        );
    }
}

#[tokio::test]
async fn purge_by_prefix_drops_paths_under_it_only() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr).yaml());
    let addr = gateway.addr;
    for path in [
        "/v1/users",
        "/v1/users?page=2",
        "/v1/orders",
        "/v2/users",
        "/v10/users",
    ] {
        warm(addr, path, Some(APP)).await;
    }
    assert_eq!(purge(&gateway, "{\"prefix\": \"/v1/\"}").await, 3);
    for path in ["/v1/users", "/v1/users?page=2", "/v1/orders"] {
        assert_eq!(
            get(addr, path, Some(APP)).await.cache(),
            "MISS",
            "{path} is under /v1/"
        );
    }
    for path in ["/v2/users", "/v10/users"] {
        assert_eq!(
            get(addr, path, Some(APP)).await.cache(),
            "HIT",
            "{path} is not under /v1/"
        );
    }
}

/// The classic failure: a purge of one URL that misses the per-origin (`Vary: Origin`) and
/// per-encoding variants, the HEAD, or the cached preflights of that path.
#[tokio::test]
async fn purge_by_url_drops_every_variant_of_the_path() {
    let upstream = Upstream::start(|req| {
        let mut reply = cors_api(req);
        if req.method != "OPTIONS" {
            reply = reply.header("vary", "Accept-Encoding");
        }
        reply
    })
    .await;
    let gateway = GatewayProcess::start(&config(upstream.addr).yaml());
    let addr = gateway.addr;
    let variants: [(Option<&str>, &str); 4] = [
        (Some(APP), "gzip"),
        (Some(APP), "br"),
        (Some(OTHER), "gzip"),
        (None, "gzip"),
    ];
    let send = |method: &'static str,
                path: &'static str,
                origin: Option<&'static str>,
                encoding: &'static str| async move {
        let mut headers = vec![("accept-encoding", encoding)];
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        request(addr, method, path, &headers).await
    };
    let preflight = || async {
        request(
            addr,
            "OPTIONS",
            "/res",
            &[("origin", APP), ("access-control-request-method", "GET")],
        )
        .await
    };
    for (origin, encoding) in variants {
        assert_eq!(send("GET", "/res", origin, encoding).await.cache(), "MISS");
        assert_eq!(
            send("GET", "/res", origin, encoding).await.cache(),
            "HIT",
            "{origin:?} {encoding}"
        );
    }
    assert_eq!(
        send("HEAD", "/res", Some(APP), "gzip").await.cache(),
        "HIT",
        "HEAD from the cached GET"
    );
    assert_eq!(preflight().await.status, 204);
    assert_eq!(preflight().await.cache(), "HIT", "the preflight is cached");
    for path in ["/res?x=1", "/other"] {
        assert_eq!(send("GET", path, Some(APP), "gzip").await.cache(), "MISS");
        assert_eq!(send("GET", path, Some(APP), "gzip").await.cache(), "HIT");
    }
    assert_eq!(
        stats_entries(&gateway).await,
        7,
        "4 GET variants and a preflight of /res, 2 others"
    );
    assert_eq!(
        purge(&gateway, "{\"url\": \"/res\"}").await,
        5,
        "the 4 GET variants and the preflight"
    );
    let upstream_before = upstream.total();

    // HEAD first, before its GET refills the entry it would be answered from.
    let head = send("HEAD", "/res", Some(APP), "gzip").await;
    assert_ne!(head.cache(), "HIT", "HEAD after the purge");
    for (origin, encoding) in variants.into_iter().skip(1) {
        assert_eq!(
            send("GET", "/res", origin, encoding).await.cache(),
            "MISS",
            "{origin:?} {encoding} purged"
        );
    }
    let after = preflight().await;
    assert_eq!(
        (after.status, after.cache().as_str()),
        (204, "MISS"),
        "the preflight of /res is purged too"
    );
    assert_eq!(
        upstream.total(),
        upstream_before + 5,
        "every purged variant went back to the upstream"
    );
    for path in ["/res?x=1", "/other"] {
        assert_eq!(
            send("GET", path, Some(APP), "gzip").await.cache(),
            "HIT",
            "{path} is not /res"
        );
    }
}

#[tokio::test]
async fn purge_by_url_with_query_is_exact() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr).yaml());
    let addr = gateway.addr;
    for path in ["/list?page=1", "/list?page=2", "/list"] {
        warm(addr, path, None).await;
    }
    assert_eq!(purge(&gateway, "{\"url\": \"/list?page=2\"}").await, 1);
    assert_eq!(get(addr, "/list?page=2", None).await.cache(), "MISS");
    assert_eq!(get(addr, "/list?page=1", None).await.cache(), "HIT");
    assert_eq!(get(addr, "/list", None).await.cache(), "HIT");
}

#[tokio::test]
async fn purge_by_tag_from_surrogate_key_and_cache_tag() {
    let upstream = Upstream::start(|req| {
        let reply = Reply::ok(req.path_and_query.clone()).header("cache-control", "max-age=60");
        match req.path() {
            "/users/7" => reply.header("surrogate-key", "user-7  users"),
            "/teams/3" => reply.header("cache-tag", "team-3, user-7"),
            "/users/8" => reply.header("surrogate-key", "user-8 users"),
            _ => reply.header("cache-tag", "user-70,unrelated"),
        }
    })
    .await;
    let gateway = GatewayProcess::start(&config(upstream.addr).yaml());
    let addr = gateway.addr;
    for path in ["/users/7", "/teams/3", "/users/8", "/misc"] {
        let first = get(addr, path, None).await;
        assert!(
            !first.has("surrogate-key"),
            "Surrogate-Key is for the cache, not for clients"
        );
        assert!(
            !first.has("cache-tag"),
            "Cache-Tag is for the cache, not for clients"
        );
        let hit = get(addr, path, None).await;
        assert_eq!(hit.cache(), "HIT");
        assert!(
            !hit.has("surrogate-key") && !hit.has("cache-tag"),
            "not on hits either"
        );
    }
    assert_eq!(purge(&gateway, "{\"tag\": \"user-7\"}").await, 2);
    assert_eq!(
        get(addr, "/users/7", None).await.cache(),
        "MISS",
        "tagged by Surrogate-Key"
    );
    assert_eq!(
        get(addr, "/teams/3", None).await.cache(),
        "MISS",
        "tagged by Cache-Tag"
    );
    assert_eq!(get(addr, "/users/8", None).await.cache(), "HIT");
    assert_eq!(
        get(addr, "/misc", None).await.cache(),
        "HIT",
        "user-70 is not user-7"
    );
    assert_eq!(purge(&gateway, "{\"tag\": \"users\"}").await, 2);
    assert_eq!(get(addr, "/users/8", None).await.cache(), "MISS");
    assert_eq!(get(addr, "/teams/3", None).await.cache(), "HIT");
}

#[tokio::test]
async fn several_fields_narrow_the_match() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr).yaml());
    let addr = gateway.addr;
    for (path, origin) in [("/v1/x", APP), ("/v2/x", APP), ("/v1/x", OTHER)] {
        warm(addr, path, Some(origin)).await;
    }
    let purged = purge(
        &gateway,
        &format!("{{\"origin\": \"{APP}\", \"prefix\": \"/v1/\"}}"),
    )
    .await;
    // Several fields: the count is an upper bound (the smallest single-field count).
    assert!((1..=2).contains(&purged), "purged {purged}");
    assert_eq!(get(addr, "/v1/x", Some(APP)).await.cache(), "MISS");
    assert_eq!(
        get(addr, "/v2/x", Some(APP)).await.cache(),
        "HIT",
        "other prefix"
    );
    assert_eq!(
        get(addr, "/v1/x", Some(OTHER)).await.cache(),
        "HIT",
        "other origin"
    );
}

#[tokio::test]
async fn purge_all_drops_everything() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr).yaml());
    let addr = gateway.addr;
    for (path, origin) in [("/a", Some(APP)), ("/b", Some(OTHER)), ("/c", None)] {
        warm(addr, path, origin).await;
    }
    let cached = stats_entries(&gateway).await;
    assert_eq!(purge(&gateway, "{\"all\": true}").await, cached);
    for (path, origin) in [("/a", Some(APP)), ("/b", Some(OTHER)), ("/c", None)] {
        assert_eq!(get(addr, path, origin).await.cache(), "MISS", "{path}");
        assert_eq!(
            get(addr, path, origin).await.cache(),
            "HIT",
            "{path} is cached again after the refill"
        );
    }
}

/// Soft purge: the entry is kept but stale, so the next request revalidates with its ETag and a
/// 304 refreshes it without a body transfer.
#[tokio::test]
async fn soft_purge_revalidates_with_the_stored_validator() {
    let upstream = Upstream::start(|req| {
        if req.header("if-none-match").as_deref() == Some("\"v1\"") {
            return Reply::status(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=60");
        }
        Reply::ok("document v1")
            .header("etag", "\"v1\"")
            .header("cache-control", "max-age=60")
    })
    .await;
    let gateway = GatewayProcess::start(
        &config(upstream.addr)
            .cache("stale_while_revalidate: 0s, stale_if_error: 0s")
            .yaml(),
    );
    let addr = gateway.addr;
    warm(addr, "/doc", None).await;
    warm(addr, "/keep", None).await;
    assert_eq!(
        purge(&gateway, "{\"url\": \"/doc\", \"soft\": true}").await,
        1
    );
    let revalidated = get(addr, "/doc", None).await;
    assert_eq!(revalidated.cache(), "REVALIDATED");
    assert_eq!(
        revalidated.text(),
        "document v1",
        "the 304 keeps the stored body"
    );
    let conditional = upstream
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/doc")
        .nth(1)
        .expect("a revalidation");
    assert_eq!(
        conditional.header("if-none-match").as_deref(),
        Some("\"v1\"")
    );
    assert_eq!(
        get(addr, "/doc", None).await.cache(),
        "HIT",
        "fresh again after the 304"
    );
    assert_eq!(
        get(addr, "/keep", None).await.cache(),
        "HIT",
        "not matched by the soft purge"
    );
    assert_eq!(upstream.hits("/doc"), 2);
}

/// With `stale-while-revalidate` the soft-purged entry is served stale while it revalidates.
#[tokio::test]
async fn soft_purge_serves_stale_while_revalidating_when_allowed() {
    let upstream = Upstream::start(|req| {
        if req.header("if-none-match").as_deref() == Some("\"v1\"") {
            return Reply::status(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=60");
        }
        Reply::ok("document v1")
            .header("etag", "\"v1\"")
            .header("cache-control", "max-age=60, stale-while-revalidate=30")
    })
    .await;
    let gateway = GatewayProcess::start(&config(upstream.addr).yaml());
    let addr = gateway.addr;
    warm(addr, "/doc", None).await;
    assert_eq!(purge(&gateway, "{\"all\": true, \"soft\": true}").await, 1);
    let stale = get(addr, "/doc", None).await;
    assert_eq!(
        (stale.cache().as_str(), stale.text().as_str()),
        ("STALE", "document v1")
    );
    // The background revalidation reaches the upstream with the validator.
    for _ in 0..100 {
        if upstream.hits("/doc") == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let conditional = upstream
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/doc")
        .nth(1)
        .expect("a revalidation");
    assert_eq!(
        conditional.header("if-none-match").as_deref(),
        Some("\"v1\"")
    );
}

/// A purge that answers while a miss is being fetched must also cover that fill: the response
/// in flight was made before the purge. The fill waits at a gate the test opens only after the
/// purge has answered, so the fill is provably in flight at that moment.
async fn purge_during_fill(body: &str) {
    let gate = Gate::new();
    let upstream = {
        let gate = gate.clone();
        Upstream::start(move |req| {
            let reply =
                Reply::ok(format!("{} #", req.path())).header("cache-control", "max-age=60");
            // Only the first fill waits: the refill after the purge goes straight through.
            if req.path() == "/slow" && !gate.is_open() {
                reply.gated(&gate)
            } else {
                reply
            }
        })
        .await
    };
    let gateway = GatewayProcess::start(&config(upstream.addr).yaml());
    let addr = gateway.addr;
    let in_flight = tokio::spawn(async move { request(addr, "GET", "/slow", &[]).await });
    for _ in 0..400 {
        if upstream.hits("/slow") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(upstream.hits("/slow"), 1, "the fill is in flight");
    purge(&gateway, body).await;
    assert!(
        !in_flight.is_finished(),
        "the fill finished before the purge answered"
    );
    gate.open();
    let filled = in_flight.await.expect("request task");
    assert_eq!((filled.status, filled.cache().as_str()), (200, "MISS"));
    let next = request(addr, "GET", "/slow", &[]).await;
    assert_ne!(
        next.cache(),
        "HIT",
        "the fill that was in flight during the purge must not be served"
    );
    assert_eq!(
        upstream.hits("/slow"),
        2,
        "the next request went to the upstream again"
    );
    // And the refill made after the purge is cached normally.
    assert_eq!(request(addr, "GET", "/slow", &[]).await.cache(), "HIT");
}

#[tokio::test]
async fn purge_all_during_an_in_flight_fill_covers_it() {
    purge_during_fill("{\"all\": true}").await;
}

#[tokio::test]
async fn purge_url_during_an_in_flight_fill_covers_it() {
    purge_during_fill("{\"url\": \"/slow\"}").await;
}
