//! `routes[].cache.key_query` end to end: the query as it enters the key (sorted, parameters
//! ignored or kept), what the upstream receives (the client's query, unchanged), purges by the
//! client's URL, and the debug header.

use std::net::SocketAddr;

use bytes::Bytes;
use cors_edge_tests::client::request_with_body;
use cors_edge_tests::{
    request, GatewayConfig, GatewayProcess, Reply, Response, Route, Upstream, UpstreamRequest,
};

/// `/shaped/` sorts the query and ignores `utm_*` and `_`, `/only/` keys on `id` and `page*`,
/// `plain` takes the rest as sent.
fn config(upstream: SocketAddr) -> String {
    GatewayConfig::new(upstream)
        .routes([
            Route::prefix("shaped", "/shaped/")
                .debug()
                .cache("key_query: { sort: true, ignore: [utm_*, _] }"),
            Route::prefix("only", "/only/").cache("key_query: { only: [id, page*] }"),
            Route::new("plain").debug(),
        ])
        .yaml()
}

fn api(req: &UpstreamRequest) -> Reply {
    if req.method == "OPTIONS" {
        let mut reply = Reply::status(204)
            .header("access-control-allow-methods", "GET, PUT")
            .header("access-control-max-age", "600");
        if let Some(origin) = req.header("origin") {
            reply = reply.header("access-control-allow-origin", &origin);
        }
        return reply;
    }
    Reply::ok(format!("answer to {}", req.path_and_query)).header("cache-control", "max-age=300")
}

async fn get(addr: SocketAddr, target: &str) -> Response {
    let response = request(addr, "GET", target, &[]).await;
    assert_eq!(response.status, 200, "{target}: {}", response.text());
    response
}

/// What the upstream was asked for on `path`, query included, in order.
fn received(upstream: &Upstream, path: &str) -> Vec<String> {
    upstream
        .requests()
        .into_iter()
        .filter(|r| r.path() == path)
        .map(|r| r.path_and_query)
        .collect()
}

const SPELLINGS: [&str; 3] = ["?b=1&a=2", "?a=2&b=1", "?a=2&b=1&utm_source=x&_=1"];

#[tokio::test]
async fn sorted_and_ignored_spellings_are_one_entry_and_three_without_a_rule() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    let statuses =
        |responses: &[Response]| -> Vec<String> { responses.iter().map(Response::cache).collect() };

    let mut shaped = Vec::new();
    for query in SPELLINGS {
        shaped.push(get(gateway.addr, &format!("/shaped/items{query}")).await);
    }
    assert_eq!(statuses(&shaped), ["MISS", "HIT", "HIT"]);
    assert_eq!(
        received(&upstream, "/shaped/items"),
        ["/shaped/items?b=1&a=2"]
    );
    // The stored answer is the first spelling's; every spelling gets it.
    for response in &shaped {
        assert_eq!(response.text(), "answer to /shaped/items?b=1&a=2");
    }

    let mut plain = Vec::new();
    for query in SPELLINGS {
        plain.push(get(gateway.addr, &format!("/plain/items{query}")).await);
    }
    assert_eq!(statuses(&plain), ["MISS", "MISS", "MISS"]);
    for query in SPELLINGS {
        assert_eq!(
            get(gateway.addr, &format!("/plain/items{query}"))
                .await
                .cache(),
            "HIT"
        );
    }
    assert_eq!(received(&upstream, "/plain/items").len(), 3);
}

#[tokio::test]
async fn the_upstream_receives_the_clients_query_unchanged() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    let sent = "/shaped/u?z=%7e&utm_campaign=q&_=17&a=%2f&a=1";
    let response = get(gateway.addr, sent).await;
    assert_eq!(response.cache(), "MISS");
    assert_eq!(received(&upstream, "/shaped/u"), [sent]);
    // The debug header shows the key as normalized.
    let debug = response.header("x-cors-edge-debug");
    assert!(debug.contains("|/shaped/u?a=%2F&a=1&z=~\""), "{debug}");
    let only = get(gateway.addr, "/only/u?x=1&page=2&id=3").await;
    assert_eq!(only.cache(), "MISS");
    assert_eq!(received(&upstream, "/only/u"), ["/only/u?x=1&page=2&id=3"]);
}

#[tokio::test]
async fn a_repeated_parameters_order_still_separates_entries() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    assert_eq!(
        get(gateway.addr, "/shaped/r?a=1&b=0&a=2").await.cache(),
        "MISS"
    );
    assert_eq!(
        get(gateway.addr, "/shaped/r?a=2&b=0&a=1").await.cache(),
        "MISS"
    );
    assert_eq!(
        get(gateway.addr, "/shaped/r?b=0&a=1&a=2").await.cache(),
        "HIT"
    );
    assert_eq!(
        get(gateway.addr, "/shaped/r?a=2&_=9&b=0&a=1").await.cache(),
        "HIT"
    );
    assert_eq!(received(&upstream, "/shaped/r").len(), 2);
}

#[tokio::test]
async fn only_keeps_just_the_listed_parameters() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    assert_eq!(
        get(gateway.addr, "/only/x?id=1&page=2&sort=asc")
            .await
            .cache(),
        "MISS"
    );
    assert_eq!(
        get(gateway.addr, "/only/x?id=1&page=2&sort=desc&fbclid=z")
            .await
            .cache(),
        "HIT"
    );
    // Not sorted on this route: order is part of the key.
    assert_eq!(
        get(gateway.addr, "/only/x?page=2&id=1").await.cache(),
        "MISS"
    );
    assert_eq!(
        get(gateway.addr, "/only/x?id=2&page=2").await.cache(),
        "MISS"
    );
    assert_eq!(
        get(gateway.addr, "/only/x?id=1&page_size=5&page=2")
            .await
            .cache(),
        "MISS"
    );
    assert_eq!(received(&upstream, "/only/x").len(), 4);
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
    let json: serde_json::Value = serde_json::from_slice(&response.body).expect("purge JSON");
    json["purged"].as_u64().expect("purged count")
}

#[tokio::test]
async fn a_purge_by_the_clients_url_removes_the_normalized_entry() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    assert_eq!(get(gateway.addr, "/shaped/p?b=1&a=2").await.cache(), "MISS");
    assert_eq!(get(gateway.addr, "/shaped/p?b=1&a=3").await.cache(), "MISS");
    assert_eq!(get(gateway.addr, "/shaped/p?a=2&b=1").await.cache(), "HIT");
    // Another spelling of the same key, as a client would send it.
    let purged = purge(&gateway, r#"{"url": "/shaped/p?utm_medium=mail&a=2&b=1"}"#).await;
    assert_eq!(purged, 1);
    assert_eq!(get(gateway.addr, "/shaped/p?b=1&a=2").await.cache(), "MISS");
    assert_eq!(
        get(gateway.addr, "/shaped/p?b=1&a=3").await.cache(),
        "HIT",
        "not named"
    );
    // With a host, the rule of the route that host and path take.
    let host = format!("{}", gateway.addr);
    let body = format!(r#"{{"url": "/shaped/p?_=1&a=3&b=1", "host": "{host}"}}"#);
    assert_eq!(purge(&gateway, &body).await, 1);
    assert_eq!(get(gateway.addr, "/shaped/p?b=1&a=3").await.cache(), "MISS");
}

#[tokio::test]
async fn head_and_preflights_use_the_shaped_key_too() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    assert_eq!(get(gateway.addr, "/shaped/h?b=1&a=2").await.cache(), "MISS");
    let head = request(gateway.addr, "HEAD", "/shaped/h?a=2&utm_id=7&b=1", &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.cache(), "HIT", "HEAD is answered from the GET's entry");
    let preflight = |target: &'static str| {
        let addr = gateway.addr;
        async move {
            request(
                addr,
                "OPTIONS",
                target,
                &[
                    ("origin", "https://app.example"),
                    ("access-control-request-method", "PUT"),
                ],
            )
            .await
        }
    };
    let first = preflight("/shaped/pf?b=1&a=2").await;
    assert_eq!(first.status, 204);
    assert_eq!(first.cache(), "MISS");
    let second = preflight("/shaped/pf?_=5&a=2&b=1").await;
    assert_eq!(
        second.cache(),
        "HIT",
        "the preflight's key is shaped as well"
    );
    let options: Vec<String> = upstream
        .requests()
        .into_iter()
        .filter(|r| r.method == "OPTIONS")
        .map(|r| r.path_and_query)
        .collect();
    assert_eq!(options, ["/shaped/pf?b=1&a=2"]);
}
