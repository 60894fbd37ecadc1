//! The front door (connections/front_door.rs, proxy/front.rs): HTTP/1 requests the gateway
//! answers without Pingora's cache lookup (fresh hits, edge preflights, refusals) are answered
//! in front of Pingora's proxy framework; every other request is handed to the proxy as the
//! bytes the client sent. These tests hold both kinds on one connection, and the cases where
//! the hand-over could lose or reuse bytes: a body sent with its head, pipelined requests.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cors_edge_tests::client::{request, send_raw_answer, Response};
use cors_edge_tests::{GatewayConfig, GatewayProcess, Reply, Route, Upstream};
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

const LIMIT: Duration = Duration::from_secs(30);

/// An upstream with a cacheable `GET /a` and a `POST /p` that answers with the body it got.
async fn upstream() -> Upstream {
    Upstream::start(|r| match r.method.as_str() {
        "POST" => Reply::ok(format!("posted {}", String::from_utf8_lossy(&r.body))),
        _ => Reply::ok(format!("body of {}", r.path())).header("cache-control", "max-age=300"),
    })
    .await
}

/// A gateway with default routes whose `GET /cached` (`Host: x`) is stored.
async fn gateway_with_cached_path() -> (Upstream, GatewayProcess) {
    let upstream = upstream().await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let first = request(gateway.addr, "GET", "/cached", &[("host", "x")]).await;
    assert_eq!(first.cache(), "MISS");
    (upstream, gateway)
}

/// One request on an open HTTP/1 connection; fails the test if the connection was closed.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> Response {
    sender.ready().await.expect("the connection is still open");
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let req = builder
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("valid request");
    let response = tokio::time::timeout(LIMIT, sender.send_request(req))
        .await
        .expect("answered in time")
        .expect("answered on the same connection");
    Response::read(response).await
}

#[tokio::test]
async fn one_keep_alive_connection_mixes_front_answers_and_proxied_requests() {
    let upstream = upstream().await;
    let config = GatewayConfig::new(upstream.addr)
        .route(Route::prefix("api", "/a").cors_edge(&["https://app.example"]))
        .catch_all(Route::new("rest"));
    let gateway = GatewayProcess::start(&config.yaml());
    let stream = tokio::net::TcpStream::connect(gateway.addr)
        .await
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let connection = tokio::spawn(connection);
    let addr = gateway.addr;

    // The proxy fetches and stores; the door answers the hit; the proxy takes the POST (its
    // body sent with the head must reach the upstream whole); the door answers a HEAD hit
    // (no body on the wire, or the next answer would be misread) and an edge preflight; a
    // conditional request goes to the proxy's full cache path.
    let miss = send(&mut sender, addr, "GET", "/a", &[], "").await;
    let hit = send(&mut sender, addr, "GET", "/a", &[], "").await;
    let posted = send(&mut sender, addr, "POST", "/p", &[], "hello front door").await;
    let head = send(&mut sender, addr, "HEAD", "/a", &[], "").await;
    let preflight = send(
        &mut sender,
        addr,
        "OPTIONS",
        "/a",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
        ],
        "",
    )
    .await;
    let conditional = send(
        &mut sender,
        addr,
        "GET",
        "/a",
        &[("if-none-match", "\"nothing-matches\"")],
        "",
    )
    .await;
    let last = send(&mut sender, addr, "GET", "/a", &[], "").await;

    assert_eq!((miss.status, miss.cache().as_str()), (200, "MISS"));
    assert_eq!((hit.status, hit.cache().as_str()), (200, "HIT"));
    assert_eq!(hit.text(), "body of /a");
    assert!(hit.has("age"), "a hit carries Age: {:?}", hit.headers);
    assert_eq!(posted.status, 200);
    assert_eq!(posted.text(), "posted hello front door");
    assert_eq!((head.status, head.cache().as_str()), (200, "HIT"));
    assert!(head.body.is_empty());
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        "https://app.example"
    );
    assert_eq!(
        (conditional.status, conditional.cache().as_str()),
        (200, "HIT")
    );
    assert_eq!((last.status, last.text().as_str()), (200, "body of /a"));
    assert_eq!(upstream.hits("/a"), 1, "one fetch for /a");
    let posts: Vec<Bytes> = upstream
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.body)
        .collect();
    assert_eq!(posts, vec![Bytes::from_static(b"hello front door")]);
    assert!(!connection.is_finished(), "the connection was closed");
}

/// A client that sends its next request before the answer (pipelining) gets the first request
/// answered and the connection closed, whether the door or the proxy answered it: the bytes
/// after the first request are never parsed as a request by either.
#[tokio::test]
async fn pipelined_requests_get_one_answer_then_a_close_from_door_and_proxy_alike() {
    let (upstream, gateway) = gateway_with_cached_path().await;
    for (path, answerer) in [("/cached", "HIT"), ("/uncached", "MISS")] {
        let two = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        let answer = send_raw_answer(gateway.addr, two.as_bytes(), LIMIT).await;
        assert!(answer.closed, "{path}: the connection stayed open");
        assert_eq!(answer.statuses(), vec![200], "{path}: {}", answer.text());
        let expected = format!("x-cache: {answerer}\r\n").to_ascii_lowercase();
        assert!(
            answer.text().to_ascii_lowercase().contains(&expected),
            "{path}: {}",
            answer.text()
        );
    }
    assert_eq!(upstream.hits("/second"), 0, "the pipelined request was run");
}

/// A hit the door answers may come with a body (a GET with `Content-Length` or chunked) that
/// reads like a request: the door answers without reading it, and the body must still be
/// drained as a body, never parsed as the next request (request smuggling through the door).
#[tokio::test]
async fn a_body_on_a_request_the_door_answers_is_never_read_as_a_request() {
    let (upstream, gateway) = gateway_with_cached_path().await;
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let framings = [
        format!("Content-Length: {}\r\n\r\n{smuggled}", smuggled.len()),
        format!(
            "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{smuggled}\r\n0\r\n\r\n",
            smuggled.len()
        ),
    ];
    for framing in framings {
        let bytes = format!(
            "GET /cached HTTP/1.1\r\nHost: x\r\n{framing}\
             GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let answer = send_raw_answer(gateway.addr, bytes.as_bytes(), LIMIT).await;
        let text = answer.text();
        assert!(answer.closed, "the connection stayed open: {text}");
        // The hit, then either the next request's answer or a close: never a third answer.
        let statuses = answer.statuses();
        assert!(
            statuses == vec![200] || statuses == vec![200, 200],
            "{statuses:?}: {text}"
        );
        assert!(
            text.to_ascii_lowercase().contains("x-cache: hit\r\n"),
            "{text}"
        );
    }
    assert_eq!(
        upstream.hits("/smuggled"),
        0,
        "the body was run as a request"
    );
}
