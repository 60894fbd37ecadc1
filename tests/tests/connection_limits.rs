//! The connection limits (`server.max_connections`, `header_timeout`, `idle_timeout`) on every
//! kind of connection: TLS handshakes, HTTP/2, the admin listener; and where the head reader
//! and Pingora must agree (bare-CR heads, a request pipelined behind a POST). Issue 23.
//!
//! Timing is never a pass criterion: a timeout test asserts that a connection is closed within
//! its timeout plus a generous margin, and that it was counted (or still worked) before.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cors_edge_tests::client::{read_until_close, send_raw_answer};
use cors_edge_tests::tls::TestCert;
use cors_edge_tests::upstream::Gate;
use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Upstream};
use http_body_util::{BodyExt, Empty};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long past a timeout a connection may take to be closed before the test fails: far more
/// than the gateway needs, far less than the 60 s of Pingora's own timeouts.
const MARGIN: Duration = Duration::from_secs(10);

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Two server threads and a 5 s upstream read timeout; `server` adds to `server:`.
fn config(upstream: SocketAddr, server: &str) -> GatewayConfig {
    GatewayConfig::new(upstream)
        .server("threads: 2")
        .server(server)
        .upstream_settings("read_timeout: 5s")
}

/// One metric's value from the admin API (0 when absent).
async fn metric(gateway: &GatewayProcess, series: &str) -> f64 {
    metric_in(
        &request(gateway.admin, "GET", "/metrics", &[]).await.text(),
        series,
    )
}

fn metric_in(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|line| {
            line.strip_prefix(series)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Polls `series` until it reads `value` (5 s at most); returns the last reading.
async fn wait_for_metric(gateway: &GatewayProcess, series: &str, value: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = metric(gateway, series).await;
        if now == value || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the connections the harness opened to learn that the gateway is ready are
/// closed, so the test's own fill the slots.
async fn wait_until_idle(gateway: &GatewayProcess) {
    let open = wait_for_metric(gateway, "cors_edge_connections_open", 0.0).await;
    assert_eq!(open, 0.0, "connections open before the test");
}

/// A plain connection past the cap: closed on arrival, without an answer.
async fn assert_refused(addr: SocketAddr) {
    let answer = send_raw_answer(addr, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", MARGIN).await;
    assert!(answer.closed, "a connection over the cap was kept open");
    assert!(
        answer.bytes.is_empty(),
        "a refused connection got an answer: {}",
        answer.text()
    );
}

#[tokio::test]
async fn tls_connections_that_never_send_a_client_hello_hold_a_slot_until_the_header_timeout() {
    let upstream = Upstream::start(|_| Reply::ok("fine")).await;
    let cert = TestCert::localhost();
    let gateway = GatewayProcess::start(
        &config(
            upstream.addr,
            "header_timeout: 3s, idle_timeout: 30s, max_connections: 2",
        )
        .tls(cert.cert(), cert.key())
        .yaml(),
    );
    let tls = gateway.tls[0];
    wait_until_idle(&gateway).await;
    // Two TCP connections to the TLS port that send nothing.
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(tls).await.expect("connect"));
    }
    assert_eq!(
        wait_for_metric(&gateway, "cors_edge_connections_open", 2.0).await,
        2.0,
        "connections in the TLS handshake are counted"
    );
    assert_refused(gateway.addr).await;
    let opened = Instant::now();
    for stream in &mut silent {
        let (answer, closed) = read_until_close(stream, Duration::from_secs(3) + MARGIN).await;
        assert!(
            closed,
            "a connection without a ClientHello outlived the header timeout"
        );
        assert!(answer.is_empty());
    }
    println!(
        "silent TLS connections closed {:?} after opening (header_timeout 3s)",
        opened.elapsed()
    );
    assert_eq!(
        metric(
            &gateway,
            "cors_edge_connection_timeouts_total{phase=\"header\"}"
        )
        .await,
        2.0
    );
    // The slots are free again, and TLS still works.
    assert_eq!(request(gateway.addr, "GET", "/a", &[]).await.status, 200);
    let mut h1 = cert.connect(tls, b"http/1.1").await;
    h1.write_all(b"GET /a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let (answer, _) = read_until_close(&mut h1, MARGIN).await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn http2_connections_without_a_request_hold_a_slot_only_until_the_header_timeout() {
    let upstream = Upstream::start(|_| Reply::ok("fine")).await;
    let cert = TestCert::localhost();
    let gateway = GatewayProcess::start(
        &config(
            upstream.addr,
            "header_timeout: 3s, idle_timeout: 30s, max_connections: 2",
        )
        .tls(cert.cert(), cert.key())
        .yaml(),
    );
    let tls = gateway.tls[0];
    wait_until_idle(&gateway).await;
    // The issue's client: the HTTP/2 preface and nothing else, on every slot.
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut stream = cert.connect(tls, b"h2").await;
        stream.write_all(H2_PREFACE).await.expect("preface");
        stream.flush().await.expect("flush");
        idle.push(stream);
    }
    assert_eq!(
        wait_for_metric(&gateway, "cors_edge_connections_open", 2.0).await,
        2.0
    );
    assert_refused(gateway.addr).await;
    for stream in &mut idle {
        // The server's SETTINGS come first; then the close.
        let (_, closed) = read_until_close(stream, Duration::from_secs(3) + MARGIN).await;
        assert!(
            closed,
            "an HTTP/2 connection without a request outlived the header timeout"
        );
    }
    assert_eq!(
        metric(
            &gateway,
            "cors_edge_connection_timeouts_total{phase=\"header\"}"
        )
        .await,
        2.0
    );
    assert_eq!(request(gateway.addr, "GET", "/a", &[]).await.status, 200);
}

#[tokio::test]
async fn idle_http2_connections_are_closed_at_the_idle_timeout() {
    let upstream = Upstream::start(|_| Reply::ok("fine")).await;
    let cert = TestCert::localhost();
    let gateway = GatewayProcess::start(
        &config(upstream.addr, "header_timeout: 30s, idle_timeout: 1s")
            .tls(cert.cert(), cert.key())
            .yaml(),
    );
    let (mut sender, connection) = cert.http2(gateway.tls[0]).await;
    // Two requests on the connection, the second after a pause shorter than the idle timeout:
    // an open stream, then a short pause, do not close it.
    for pause in [Duration::ZERO, Duration::from_millis(300)] {
        tokio::time::sleep(pause).await;
        let request = http::Request::get("https://localhost/a")
            .body(Empty::<Bytes>::new())
            .expect("request");
        let response = sender.send_request(request).await.expect("HTTP/2 response");
        assert_eq!(response.status(), 200);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&body[..], b"fine");
    }
    let idle_from = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(1) + MARGIN, connection).await;
    assert!(
        closed.is_ok(),
        "an idle HTTP/2 connection outlived the idle timeout"
    );
    println!(
        "idle HTTP/2 connection closed {:?} after its last answer (idle_timeout 1s)",
        idle_from.elapsed()
    );
    drop(sender);
    assert_eq!(
        wait_for_metric(&gateway, "cors_edge_connections_open", 0.0).await,
        0.0
    );
}

/// Reads one answer with a `Content-Length` from a kept-alive raw connection.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("Content-Length");
            if raw.len() >= head_end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(MARGIN, stream.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        assert!(n > 0, "closed before the answer was complete");
        raw.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn the_admin_listener_has_a_connection_cap_and_a_head_timeout() {
    const ADMIN_CAP: usize = 64; // README, "Connection limits"
    let upstream = Upstream::start(|_| Reply::ok("fine")).await;
    let gateway = GatewayProcess::start(
        &config(upstream.addr, "header_timeout: 5s, idle_timeout: 30s").yaml(),
    );
    // Nothing but this scrape open on the admin listener (the harness's probes are closed).
    assert_eq!(
        wait_for_metric(&gateway, "cors_edge_admin_connections_open", 1.0).await,
        1.0
    );
    // Half-sent heads on all slots but one...
    let mut half = Vec::new();
    for _ in 0..ADMIN_CAP - 1 {
        let mut stream = TcpStream::connect(gateway.admin).await.expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        half.push(stream);
    }
    // ...and a kept-alive scrape on the last one, which sees them all counted.
    let mut scrape = TcpStream::connect(gateway.admin).await.expect("connect");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        scrape
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let open = metric_in(
            &read_answer(&mut scrape).await,
            "cors_edge_admin_connections_open",
        );
        if open == ADMIN_CAP as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} admin connections counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One more is closed on arrival.
    assert_refused(gateway.admin).await;
    drop(scrape);
    // The half-sent heads get 408 at the header timeout.
    for stream in &mut half {
        let (answer, closed) = read_until_close(stream, Duration::from_secs(5) + MARGIN).await;
        assert!(closed, "a half-sent admin head outlived the header timeout");
        assert!(
            String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert_eq!(
        request(gateway.admin, "GET", "/healthz", &[]).await.status,
        200
    );
    assert_eq!(
        metric(&gateway, "cors_edge_admin_connections_refused_total").await,
        1.0
    );
    assert_eq!(
        metric(
            &gateway,
            "cors_edge_admin_connection_timeouts_total{phase=\"header\"}"
        )
        .await,
        (ADMIN_CAP - 1) as f64
    );
    // The proxy's own count is apart.
    assert_eq!(
        metric(&gateway, "cors_edge_connections_refused_total").await,
        0.0
    );
}

#[tokio::test]
async fn heads_pingora_refuses_are_answered_400_at_once_not_408_at_the_header_timeout() {
    let upstream = Upstream::start(|_| Reply::ok("fine")).await;
    // A header timeout far longer than the wait below: a 400 can only come from the parser.
    let gateway = GatewayProcess::start(
        &config(upstream.addr, "header_timeout: 60s, idle_timeout: 60s").yaml(),
    );
    let heads: [&[u8]; 3] = [
        // Bare CR line endings: never an empty line of the kind the old reader looked for.
        b"GET /a HTTP/1.1\rHost: x\r\r",
        b"GET /a HTTP/1.1\r\nHost: x\rX-Y: z\r\n",
        // A field line without a colon, the head not yet ended.
        b"GET /a HTTP/1.1\r\nHost: x\r\nno colon here\r\n",
    ];
    for head in heads {
        let answer = send_raw_answer(gateway.addr, head, MARGIN).await;
        assert!(answer.closed, "{head:?}: still open after {MARGIN:?}");
        assert_eq!(answer.statuses(), vec![400], "{head:?}: {}", answer.text());
    }
    assert_eq!(upstream.total(), 0);
    // A head that is only unfinished is still waited for, and served once whole.
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHo")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream
        .write_all(b"st: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let (answer, _) = read_until_close(&mut stream, MARGIN).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}

fn status_lines(raw: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(raw)
        .split("\r\n")
        .filter(|line| line.starts_with("HTTP/1.1 "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_request_pipelined_behind_a_post_never_turns_the_post_into_an_error() {
    let gate = Gate::new();
    let held = gate.clone();
    let upstream = Upstream::start(move |r| match r.method.as_str() {
        "POST" => Reply::ok("posted").gated(&held),
        _ => Reply::ok("got"),
    })
    .await;
    let gateway = GatewayProcess::start(&config(upstream.addr, "").yaml());
    let post = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    let get = b"GET /g HTTP/1.1\r\nHost: x\r\n\r\n";

    // The next request arrives while the upstream is running the POST.
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    stream.write_all(post).await.expect("write");
    let deadline = Instant::now() + MARGIN;
    while upstream.hits("/p") == 0 {
        assert!(
            Instant::now() < deadline,
            "the POST never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stream.write_all(get).await.expect("write");
    // Nothing may be answered before the upstream answers the POST (Pingora 0.9.1 answered
    // 400 here, after the upstream had the POST).
    let mut early = [0u8; 512];
    let before = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut early)).await;
    assert!(
        before.is_err(),
        "answered before the upstream did: {:?}",
        before.map(|r| r.map(|n| String::from_utf8_lossy(&early[..n]).into_owned()))
    );
    gate.open();
    let (answer, closed) = read_until_close(&mut stream, MARGIN).await;
    let statuses = status_lines(&answer);
    assert!(closed, "the connection stayed open");
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("HTTP/1.1 200 OK"),
        "the POST's answer comes first: {}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        statuses.iter().all(|s| s == "HTTP/1.1 200 OK"),
        "{statuses:?}"
    );
    assert_eq!(upstream.hits("/p"), 1);

    // Both in one segment: the same.
    let mut both = post.to_vec();
    both.extend_from_slice(get);
    let answer = send_raw_answer(gateway.addr, &both, MARGIN).await;
    let statuses = status_lines(&answer.bytes);
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("HTTP/1.1 200 OK"),
        "{}",
        answer.text()
    );
    assert!(
        statuses.iter().all(|s| s == "HTTP/1.1 200 OK"),
        "{statuses:?}"
    );
    assert_eq!(upstream.hits("/p"), 2);
}
