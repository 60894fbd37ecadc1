//! The request-target rule (RFC 9112 §3.2), black-box: what the route match, the cache key and
//! the upstream see come from one parse. A request-target that is not a path is refused with
//! `400` before anything is keyed or forwarded; an absolute-form target is keyed and forwarded
//! as its origin-form with its authority as the host, so no request can fill the entry of
//! another URL.

use std::time::Duration;

use cors_edge_tests::client::send_raw_answer;
use cors_edge_tests::{
    request, GatewayConfig, GatewayProcess, Reply, Route, Upstream, UpstreamRequest,
};

/// Two routes: `/admin` on its own upstream, everything else on the reflecting one.
fn config(api: &Upstream, admin: &Upstream) -> String {
    GatewayConfig::new(api.addr)
        .upstream("internal", admin.addr)
        .route(Route::prefix("internal", "/admin").upstream("internal"))
        .yaml()
}

/// The body says which target and host the upstream was sent; cacheable for 5 minutes.
fn reflect(req: &UpstreamRequest) -> Reply {
    Reply::ok(format!(
        "target={} host={}",
        req.path_and_query,
        req.header("host").unwrap_or_default()
    ))
    .header("cache-control", "public, max-age=300")
}

async fn raw(gateway: &GatewayProcess, head: &str) -> (Vec<u16>, String) {
    let answer = send_raw_answer(gateway.addr, head.as_bytes(), Duration::from_secs(5)).await;
    (answer.statuses(), answer.text())
}

#[tokio::test]
async fn targets_that_are_not_a_path_are_refused_before_keying_or_forwarding() {
    let api = Upstream::start(reflect).await;
    let internal = Upstream::start(|_| Reply::ok("internal")).await;
    let gateway = GatewayProcess::start(&config(&api, &internal));

    for target in [
        "evil-page?x=1",
        "admin/x",
        "foo://shop.example/admin",
        "shop.example:80",
        "*",
    ] {
        let (statuses, text) = raw(
            &gateway,
            &format!("GET {target} HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(statuses, vec![400], "GET {target}: {text}");
    }
    assert_eq!(api.total(), 0, "nothing reached the upstream");
    assert_eq!(internal.total(), 0, "nothing reached the other route");

    // The clean request is keyed and answered for its own URL: nothing was stored for `/`.
    let clean = request(gateway.addr, "GET", "/", &[("host", "shop.example")]).await;
    assert_eq!(clean.status, 200);
    assert_eq!(clean.cache(), "MISS");
    assert_eq!(clean.text(), "target=/ host=shop.example");
}

#[tokio::test]
async fn hosts_that_are_not_an_authority_are_refused() {
    let api = Upstream::start(reflect).await;
    let internal = Upstream::start(|_| Reply::ok("internal")).await;
    let gateway = GatewayProcess::start(&config(&api, &internal));

    for host_lines in [
        "Host: shop.example/admin\r\n",
        "Host: user@shop.example\r\n",
        "Host: shop.example:80x\r\n",
        "Host: a.example\r\nHost: b.example\r\n",
        "",
    ] {
        let (statuses, text) = raw(
            &gateway,
            &format!("GET /p HTTP/1.1\r\n{host_lines}Connection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(statuses, vec![400], "{host_lines:?}: {text}");
    }
    assert_eq!(api.total(), 0);
    // HTTP/1.0 may leave the host out.
    let (statuses, _) = raw(&gateway, "GET /p HTTP/1.0\r\n\r\n").await;
    assert_eq!(statuses, vec![200]);
}

#[tokio::test]
async fn absolute_form_is_keyed_and_forwarded_as_its_origin_form_and_authority() {
    let api = Upstream::start(reflect).await;
    let internal = Upstream::start(|_| Reply::ok("internal")).await;
    let gateway = GatewayProcess::start(&config(&api, &internal));

    // An authority that disagrees with `Host` is refused (Pingora refuses it before the gateway
    // sees it; the gateway's rule would take the authority, RFC 9112 §3.2.2).
    let (statuses, text) = raw(
        &gateway,
        "GET https://shop.example/p?x=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses, vec![400], "{text}");
    assert_eq!(api.total(), 0);

    // The scheme does not make another URL: keyed and forwarded as the origin-form.
    let (statuses, text) = raw(
        &gateway,
        "GET https://shop.example/p?x=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses, vec![200], "{text}");
    assert!(text.contains("target=/p?x=1 host=shop.example"), "{text}");
    let seen = api.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path_and_query, "/p?x=1");
    assert_eq!(seen[0].header("host").as_deref(), Some("shop.example"));

    // The entry it filled is the one a clean request for the same URL uses, with the same body.
    let clean = request(gateway.addr, "GET", "/p?x=1", &[("host", "shop.example")]).await;
    assert_eq!(clean.cache(), "HIT");
    assert_eq!(clean.text(), "target=/p?x=1 host=shop.example");
    // And the other host's entry is its own.
    let other = request(gateway.addr, "GET", "/p?x=1", &[("host", "other.example")]).await;
    assert_eq!(other.cache(), "MISS");
    assert_eq!(other.text(), "target=/p?x=1 host=other.example");

    // A path-less absolute form is anchored at `/`, on the route `/` matches.
    let (statuses, text) = raw(
        &gateway,
        "GET http://shop.example?q=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses, vec![200], "{text}");
    assert!(text.contains("target=/?q=1 host=shop.example"), "{text}");
    // An absolute form reaches another route only through its own path.
    let (statuses, text) = raw(
        &gateway,
        "GET http://shop.example/admin/x HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses, vec![200], "{text}");
    assert!(text.ends_with("internal"), "{text}");
    assert_eq!(internal.requests()[0].path_and_query, "/admin/x");
}

#[tokio::test]
async fn options_asterisk_is_answered_by_the_gateway() {
    let api = Upstream::start(reflect).await;
    let internal = Upstream::start(|_| Reply::ok("internal")).await;
    let gateway = GatewayProcess::start(&config(&api, &internal));

    let (statuses, text) = raw(
        &gateway,
        "OPTIONS * HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses, vec![200], "{text}");
    assert!(
        text.to_ascii_lowercase().contains("\r\nallow: get"),
        "{text}"
    );
    assert_eq!(api.total(), 0);
}
