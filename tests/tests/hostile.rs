//! Hostile traffic against the real gateway, bounded so each test takes a few seconds: slow
//! clients, connection floods, origin and variant floods, upstream faults under load, purge and
//! reload storms. Every test asserts correctness (answers, closes, counts, nothing lost);
//! timings are measured and printed, never pass criteria.
//!
//! `HOSTILE_LONG=1` multiplies the load (run by hand:
//! `HOSTILE_LONG=1 cargo test --release -p cors-edge-tests --test hostile -- --nocapture --test-threads 1`);
//! its figures are in the README.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cors_edge_tests::{request, GatewayProcess, Reply, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Load multiplier: 1 in CI, 10 with `HOSTILE_LONG=1`.
fn scale() -> usize {
    match std::env::var("HOSTILE_LONG").as_deref() {
        Ok("1") => 10,
        _ => 1,
    }
}

fn config(upstream: SocketAddr, server: &str, extra: &str) -> String {
    format!(
        "listen: [\"{{listen}}\"]\nadmin: {{ listen: \"{{admin}}\" }}\n{extra}upstreams:\n  api:\n    servers: [\"{upstream}\"]\n    read_timeout: 2s\nroutes:\n  - name: api\n    upstream: api\nserver:\n  threads: 2\n{server}"
    )
}

/// Reads until the server closes the connection or `limit` passes; returns what came and
/// whether the connection was closed by then.
async fn read_until_close(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (out, closed)
}

fn status_line(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// One metric's value from the admin API's `/metrics` (0 when absent).
async fn metric(gateway: &GatewayProcess, line_start: &str) -> f64 {
    let metrics = request(gateway.admin, "GET", "/metrics", &[]).await.text();
    metrics
        .lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn half_sent_heads_are_closed_at_the_header_timeout_and_others_are_served() {
    let upstream =
        Upstream::start(|_| Reply::ok("fine").header("cache-control", "max-age=60")).await;
    let gateway = GatewayProcess::start(&config(
        upstream.addr,
        "  header_timeout: 1s\n  idle_timeout: 30s\n",
        "",
    ));
    let count = 200 * scale();
    let rss_before = rss_kib(gateway.pid());
    let opened = Instant::now();
    let mut slow = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
        // Half a head; one in two keeps trickling a byte now and then (slow loris).
        stream
            .write_all(format!("GET /slow/{i} HTTP/1.1\r\nHost: x\r\n").as_bytes())
            .await
            .expect("write");
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_held = rss_kib(gateway.pid());
    // Other clients are served meanwhile.
    let started = Instant::now();
    for _ in 0..20 {
        let r = request(gateway.addr, "GET", "/fine", &[]).await;
        assert_eq!((r.status, r.text().as_str()), (200, "fine"));
    }
    let served_in = started.elapsed();
    for (i, stream) in slow.iter_mut().enumerate() {
        if i % 2 == 0 {
            let _ = stream.write_all(b"X").await;
        }
    }
    let mut closed_after = Vec::with_capacity(count);
    for stream in &mut slow {
        let (answer, closed) = read_until_close(stream, Duration::from_secs(10)).await;
        assert!(closed, "a half-sent head was still open after 10 s");
        assert_eq!(status_line(&answer), "HTTP/1.1 408 Request Timeout");
        closed_after.push(opened.elapsed());
    }
    assert_eq!(upstream.hits("/fine"), 1);
    assert!(upstream
        .requests()
        .iter()
        .all(|r| !r.path().starts_with("/slow")));
    let timeouts = metric(
        &gateway,
        "cors_edge_connection_timeouts_total{phase=\"header\"}",
    )
    .await;
    assert_eq!(timeouts, count as f64);
    println!(
        "half-open: {count} connections, RSS {rss_before} -> {rss_held} KiB ({:.1} KiB each); \
         20 normal requests meanwhile in {served_in:?}; all closed with 408 by {:?} \
         (header_timeout 1s)",
        (rss_held.saturating_sub(rss_before)) as f64 / count as f64,
        closed_after.iter().max().copied().unwrap_or_default(),
    );
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_silently_at_the_idle_timeout() {
    let upstream = Upstream::start(|_| Reply::ok("fine")).await;
    let gateway = GatewayProcess::start(&config(
        upstream.addr,
        "  header_timeout: 5s\n  idle_timeout: 1s\n",
        "",
    ));
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let started = Instant::now();
    for _ in 0..3 {
        stream
            .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.expect("read");
        assert!(status_line(&buf[..n]).starts_with("HTTP/1.1 200"));
        // Within the idle timeout: the connection is reused.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let idle_from = Instant::now();
    let (rest, closed) = read_until_close(&mut stream, Duration::from_secs(10)).await;
    assert!(closed, "an idle keep-alive connection was not closed");
    assert!(
        rest.is_empty(),
        "an idle connection must be closed without an answer"
    );
    assert_eq!(
        metric(
            &gateway,
            "cors_edge_connection_timeouts_total{phase=\"idle\"}"
        )
        .await,
        1.0
    );
    println!(
        "keep-alive: 3 requests on one connection in {:?}, closed {:?} after going idle (idle_timeout 1s)",
        idle_from - started,
        idle_from.elapsed()
    );
}

#[tokio::test]
async fn past_max_connections_new_ones_are_closed_and_open_ones_keep_working() {
    let upstream = Upstream::start(|_| Reply::ok("fine")).await;
    let gateway = GatewayProcess::start(&config(
        upstream.addr,
        "  header_timeout: 20s\n  idle_timeout: 20s\n  max_connections: 20\n",
        "",
    ));
    // 20 connections, each after one complete request (so they are surely counted).
    let mut open = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
        stream
            .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.expect("read");
        assert!(status_line(&buf[..n]).starts_with("HTTP/1.1 200"));
        open.push(stream);
    }
    let refused_before = metric(&gateway, "cors_edge_connections_refused_total").await;
    assert_eq!(metric(&gateway, "cors_edge_connections_open").await, 20.0);
    for _ in 0..10 {
        // The TCP handshake completes (the kernel's backlog), then the gateway closes it.
        let mut extra = TcpStream::connect(gateway.addr).await.expect("connect");
        let _ = extra.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let (answer, closed) = read_until_close(&mut extra, Duration::from_secs(5)).await;
        assert!(closed, "a connection over the cap was kept open");
        assert!(answer.is_empty(), "a refused connection got an answer");
    }
    assert_eq!(
        metric(&gateway, "cors_edge_connections_refused_total").await - refused_before,
        10.0
    );
    // The 20 open connections are unaffected.
    for stream in &mut open {
        stream
            .write_all(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.expect("read");
        assert!(status_line(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
    // Closing some makes room again.
    open.truncate(10);
    let mut after = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if metric(&gateway, "cors_edge_connections_open").await <= 10.0 {
            after = Some(request(gateway.addr, "GET", "/c", &[]).await);
            break;
        }
    }
    assert_eq!(after.expect("connections were released").status, 200);
}
