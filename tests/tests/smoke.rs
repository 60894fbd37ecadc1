//! The harness itself works: a gateway in front of a real upstream caches a response.

use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Upstream};

#[tokio::test]
async fn second_get_is_a_hit_and_never_reaches_the_upstream() {
    let upstream =
        Upstream::start(|_| Reply::ok("hello").header("cache-control", "max-age=60")).await;
    let config = GatewayConfig::new(upstream.addr).yaml();
    let gateway = GatewayProcess::start(&config);
    let first = request(gateway.addr, "GET", "/hello", &[]).await;
    assert_eq!(
        (first.status, first.cache().as_str(), first.text().as_str()),
        (200, "MISS", "hello")
    );
    let second = request(gateway.addr, "GET", "/hello", &[]).await;
    assert_eq!(
        (
            second.status,
            second.cache().as_str(),
            second.text().as_str()
        ),
        (200, "HIT", "hello")
    );
    assert!(second.has("age"));
    assert_eq!(upstream.hits("/hello"), 1);
}
