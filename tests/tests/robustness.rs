//! Black-box robustness: malformed requests get a 4xx (or a closed connection), never reach the
//! upstream, and never stop the gateway from serving the next normal request.

use cors_edge_tests::{request, send_raw, GatewayProcess, Reply, Upstream};

async fn setup() -> (Upstream, GatewayProcess) {
    let upstream =
        Upstream::start(|_| Reply::ok("fine").header("cache-control", "max-age=60")).await;
    let config = format!(
        "listen: [\"{{listen}}\"]\nadmin: {{ listen: \"{{admin}}\" }}\nupstreams:\n  api:\n    servers: [\"{}\"]\nroutes:\n  - name: api\n    upstream: api\n",
        upstream.addr
    );
    let gateway = GatewayProcess::start(&config);
    (upstream, gateway)
}

/// The status code of a raw answer, or None when the gateway just closed the connection.
fn status_of(raw: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(raw);
    let line = text.lines().next()?;
    let mut parts = line.split_whitespace();
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "not an HTTP answer: {text:?}"
    );
    parts.next()?.parse().ok()
}

/// Sends `bytes`, asserts a 4xx answer or a closed connection, then checks the gateway still
/// serves a normal request; returns the status when there was one.
async fn rejected(gateway: &GatewayProcess, upstream: &Upstream, bytes: &[u8]) -> Option<u16> {
    let before = upstream.total();
    let raw = send_raw(gateway.addr, bytes).await;
    let status = status_of(&raw);
    if let Some(code) = status {
        assert!(
            (400..500).contains(&code),
            "expected a 4xx, got {}",
            String::from_utf8_lossy(&raw)
        );
    }
    assert_eq!(
        upstream.total(),
        before,
        "a malformed request reached the upstream"
    );
    let next = request(gateway.addr, "GET", "/after", &[]).await;
    assert_eq!(
        (next.status, next.text().as_str()),
        (200, "fine"),
        "the gateway stopped serving"
    );
    status
}

#[tokio::test]
async fn garbage_request_line() {
    let (upstream, gateway) = setup().await;
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n",
    ] {
        rejected(&gateway, &upstream, garbage).await;
    }
}

#[tokio::test]
async fn oversized_header_is_431_or_400() {
    let (upstream, gateway) = setup().await;
    let big = "a".repeat(100 * 1024);
    let raw = format!("GET /big HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n");
    let status = rejected(&gateway, &upstream, raw.as_bytes()).await;
    assert!(matches!(status, Some(400 | 431)), "status {status:?}");
}

#[tokio::test]
async fn a_large_but_reasonable_header_still_passes() {
    let (upstream, gateway) = setup().await;
    let cookie = "c".repeat(16 * 1024);
    let r = request(
        gateway.addr,
        "GET",
        "/cookie",
        &[("cookie", cookie.as_str())],
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, "fine"));
    assert_eq!(
        upstream.requests()[0].header("cookie").map(|c| c.len()),
        Some(16 * 1024)
    );
}

#[tokio::test]
async fn many_headers_adding_up_past_the_limit_are_rejected() {
    let (upstream, gateway) = setup().await;
    let mut raw = String::from("GET /many HTTP/1.1\r\nHost: x\r\n");
    for i in 0..400 {
        raw.push_str(&format!("X-H{i}: {}\r\n", "b".repeat(250)));
    }
    raw.push_str("Connection: close\r\n\r\n");
    let status = rejected(&gateway, &upstream, raw.as_bytes()).await;
    assert!(matches!(status, Some(400 | 431)), "status {status:?}");
}

#[tokio::test]
async fn invalid_header_bytes() {
    let (upstream, gateway) = setup().await;
    for raw in [
        &b"GET /x HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n"[..],
        b"GET /x HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\nX-Ctl: a\x01b\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\n: no name\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\nX-Bare-CR: a\rb\r\n\r\n",
    ] {
        let status = rejected(&gateway, &upstream, raw).await;
        assert!(
            status.is_some(),
            "no answer to {:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[tokio::test]
async fn conflicting_framing_is_rejected() {
    let (upstream, gateway) = setup().await;
    // Request smuggling shapes: two Content-Lengths, or a broken chunked body.
    for raw in [
        &b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"[..],
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    ] {
        let before = upstream.total();
        let answer = send_raw(gateway.addr, raw).await;
        if let Some(code) = status_of(&answer) {
            assert!(code >= 400, "{}", String::from_utf8_lossy(&answer));
        }
        // The upstream may have seen the request line before the body went wrong, but never a
        // second, smuggled request.
        assert!(upstream.total() <= before + 1);
        let next = request(gateway.addr, "GET", "/after", &[]).await;
        assert_eq!(next.status, 200);
    }
}

#[tokio::test]
async fn a_client_that_disconnects_mid_request_does_not_hurt() {
    let (upstream, gateway) = setup().await;
    for partial in [
        &b"GET /partial HTTP/1.1\r\nHost: x\r\nX-Half"[..],
        b"GET /par",
        b"",
    ] {
        let stream = tokio::net::TcpStream::connect(gateway.addr)
            .await
            .expect("connect");
        let (_, mut write) = stream.into_split();
        tokio::io::AsyncWriteExt::write_all(&mut write, partial)
            .await
            .expect("write");
        drop(write);
    }
    let next = request(gateway.addr, "GET", "/after", &[]).await;
    assert_eq!((next.status, next.text().as_str()), (200, "fine"));
    assert_eq!(upstream.hits("/partial"), 0);
}
