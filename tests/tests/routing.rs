//! Black-box routing and upstream behaviour: route selection by host and longest path prefix,
//! round robin over a pool, connect-failure retries, timeouts, and the forwarding headers.

use std::net::SocketAddr;
use std::time::Duration;

use cors_edge_tests::upstream::RefusingAddr;
use cors_edge_tests::{request, GatewayProcess, Reply, Upstream};

/// An upstream that answers `name` uncached, so every request reaches a server.
async fn named(name: &'static str) -> Upstream {
    Upstream::start(move |_| Reply::ok(name).header("cache-control", "no-store")).await
}

const HEAD: &str = "listen: [\"{listen}\"]\nadmin: { listen: \"{admin}\" }\n";

fn upstream_block(name: &str, servers: &[SocketAddr], extra: &str) -> String {
    let servers = servers
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!("  {name}:\n    servers: [{servers}]\n{extra}")
}

#[tokio::test]
async fn host_specific_route_beats_the_catch_all() {
    let api = named("api").await;
    let other = named("other").await;
    let config = format!(
        "{HEAD}upstreams:\n{}{}routes:\n  - name: catch-all\n    upstream: other\n  - name: api\n    match: {{ host: \"api.example.test\" }}\n    upstream: api\n",
        upstream_block("api", &[api.addr], ""),
        upstream_block("other", &[other.addr], ""),
    );
    let gateway = GatewayProcess::start(&config);
    let on = |host: &'static str| [("host", host)];
    assert_eq!(
        request(gateway.addr, "GET", "/x", &on("api.example.test"))
            .await
            .text(),
        "api"
    );
    assert_eq!(
        request(gateway.addr, "GET", "/x", &on("API.Example.Test:8080"))
            .await
            .text(),
        "api"
    );
    assert_eq!(
        request(gateway.addr, "GET", "/x", &on("www.example.test"))
            .await
            .text(),
        "other"
    );
    assert_eq!(
        request(gateway.addr, "GET", "/x", &[]).await.text(),
        "other"
    );
    assert_eq!((api.total(), other.total()), (2, 2));
}

#[tokio::test]
async fn longest_path_prefix_wins_whatever_the_order() {
    let short = named("short").await;
    let long = named("long").await;
    let root = named("root").await;
    let config = format!(
        "{HEAD}upstreams:\n{}{}{}routes:\n\
         \x20 - name: api\n    match: {{ path_prefix: \"/api\" }}\n    upstream: short\n\
         \x20 - name: api-v2\n    match: {{ path_prefix: \"/api/v2\" }}\n    upstream: long\n\
         \x20 - name: root\n    match: {{ path_prefix: \"/\" }}\n    upstream: root\n",
        upstream_block("short", &[short.addr], ""),
        upstream_block("long", &[long.addr], ""),
        upstream_block("root", &[root.addr], ""),
    );
    let gateway = GatewayProcess::start(&config);
    for (path, expected) in [
        ("/api/v2/users", "long"),
        ("/api/v2", "long"),
        ("/api/users", "short"),
        ("/api", "short"),
        ("/other", "root"),
        ("/", "root"),
    ] {
        let r = request(gateway.addr, "GET", path, &[]).await;
        assert_eq!((r.status, r.text().as_str()), (200, expected), "{path}");
    }
}

#[tokio::test]
async fn no_matching_route_is_404_and_never_reaches_an_upstream() {
    let only = named("only").await;
    let config = format!(
        "{HEAD}upstreams:\n{}routes:\n  - name: only\n    match: {{ host: \"only.example.test\", path_prefix: \"/only\" }}\n    upstream: only\n",
        upstream_block("only", &[only.addr], ""),
    );
    let gateway = GatewayProcess::start(&config);
    let wrong_path = request(
        gateway.addr,
        "GET",
        "/elsewhere",
        &[("host", "only.example.test")],
    )
    .await;
    assert_eq!(wrong_path.status, 404);
    let wrong_host = request(
        gateway.addr,
        "GET",
        "/only",
        &[("host", "else.example.test")],
    )
    .await;
    assert_eq!(wrong_host.status, 404);
    assert_eq!(only.total(), 0);
    let right = request(
        gateway.addr,
        "GET",
        "/only/x",
        &[("host", "only.example.test")],
    )
    .await;
    assert_eq!((right.status, right.text().as_str()), (200, "only"));
}

#[tokio::test]
async fn a_pool_of_two_is_used_round_robin() {
    let a = named("a").await;
    let b = named("b").await;
    let config = format!(
        "{HEAD}upstreams:\n{}routes:\n  - name: r\n    upstream: pool\n",
        upstream_block("pool", &[a.addr, b.addr], ""),
    );
    let gateway = GatewayProcess::start(&config);
    let mut servers = Vec::new();
    for i in 0..10 {
        let r = request(gateway.addr, "GET", &format!("/rr/{i}"), &[]).await;
        assert_eq!(r.status, 200);
        servers.push(r.text());
    }
    assert_eq!(a.total() + b.total(), 10);
    // Round robin: strict alternation, whichever server comes first (random balancing
    // alternates ten times in a row with probability 1/512).
    assert!(
        servers.windows(2).all(|pair| pair[0] != pair[1]),
        "not round robin: {servers:?}"
    );
    assert_eq!((a.total(), b.total()), (5, 5));
}

#[tokio::test]
async fn a_dead_server_in_the_pool_is_skipped() {
    let live = named("live").await;
    let dead = RefusingAddr::new();
    let config = format!(
        "{HEAD}upstreams:\n{}routes:\n  - name: r\n    upstream: pool\n",
        upstream_block(
            "pool",
            &[dead.addr, live.addr],
            "    connect_timeout: 500ms\n"
        ),
    );
    let gateway = GatewayProcess::start(&config);
    for i in 0..10 {
        let r = request(gateway.addr, "GET", &format!("/one-down/{i}"), &[]).await;
        assert_eq!((r.status, r.text().as_str()), (200, "live"), "request {i}");
    }
    assert_eq!(live.total(), 10);
}

#[tokio::test]
async fn all_servers_down_is_a_502_with_a_json_error() {
    let (dead1, dead2) = (RefusingAddr::new(), RefusingAddr::new());
    let config = format!(
        "{HEAD}upstreams:\n{}routes:\n  - name: r\n    upstream: pool\n",
        upstream_block(
            "pool",
            &[dead1.addr, dead2.addr],
            "    connect_timeout: 500ms\n"
        ),
    );
    let gateway = GatewayProcess::start(&config);
    for _ in 0..2 {
        let r = request(gateway.addr, "GET", "/down", &[]).await;
        assert_eq!(r.status, 502, "{:?}", r.headers);
        assert!(
            r.header("content-type").starts_with("application/json"),
            "{:?}",
            r.headers
        );
        assert!(
            !r.cache().is_empty(),
            "every proxied answer carries X-Cache: {:?}",
            r.headers
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON error body");
        assert!(body["error"].is_string(), "{body}");
    }
    // The gateway itself is fine and says so.
    assert_eq!(
        request(gateway.admin, "GET", "/healthz", &[]).await.status,
        200
    );
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_not_a_hang() {
    let slow = Upstream::start(|_| Reply::ok("too late").delay(Duration::from_secs(3))).await;
    let config = format!(
        "{HEAD}upstreams:\n{}routes:\n  - name: r\n    upstream: slow\n",
        upstream_block("slow", &[slow.addr], "    read_timeout: 300ms\n"),
    );
    let gateway = GatewayProcess::start(&config);
    let r = request(gateway.addr, "GET", "/slow", &[]).await;
    assert_eq!(r.status, 504, "{:?}", r.headers);
    assert_ne!(r.text(), "too late");
    assert!(
        r.header("content-type").starts_with("application/json"),
        "{:?}",
        r.headers
    );
    assert!(
        !r.cache().is_empty(),
        "every proxied answer carries X-Cache: {:?}",
        r.headers
    );
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON error body");
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn forwarding_headers_reach_the_upstream() {
    let upstream = named("x").await;
    let config = format!(
        "{HEAD}upstreams:\n{}routes:\n  - name: r\n    upstream: api\n",
        upstream_block("api", &[upstream.addr], ""),
    );
    let gateway = GatewayProcess::start(&config);
    request(
        gateway.addr,
        "GET",
        "/fwd",
        &[("host", "Api.Example.Test:8443")],
    )
    .await;
    request(
        gateway.addr,
        "GET",
        "/fwd",
        &[("x-forwarded-for", "203.0.113.7")],
    )
    .await;
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].header("x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(seen[0].header("x-forwarded-proto").as_deref(), Some("http"));
    // Host reaches the upstream as the cache key holds it (RFC 9110 §4.2.3 normalization:
    // lower case, the scheme's default port dropped, any other port kept), so one stored
    // answer fits every spelling.
    assert_eq!(
        seen[0].header("host").as_deref(),
        Some("api.example.test:8443"),
    );
    // A client's X-Forwarded-For is replaced, not extended, unless the peer is in
    // server.trusted_proxies (tests/tests/poisoning.rs).
    assert_eq!(
        seen[1].header("x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(seen[1].header("host"), Some(gateway.addr.to_string()));
}

#[tokio::test]
async fn client_cannot_spoof_x_forwarded_proto() {
    let upstream = named("x").await;
    let config = format!(
        "{HEAD}upstreams:\n{}routes:\n  - name: r\n    upstream: api\n",
        upstream_block("api", &[upstream.addr], ""),
    );
    let gateway = GatewayProcess::start(&config);
    request(
        gateway.addr,
        "GET",
        "/proto",
        &[("x-forwarded-proto", "https")],
    )
    .await;
    let seen = upstream.requests();
    let protos: Vec<String> = seen[0]
        .headers
        .get_all("x-forwarded-proto")
        .iter()
        .map(|v| v.to_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(protos, vec!["http".to_string()]);
}
