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

use cors_edge_tests::client::read_until_close;
use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Load multiplier: 1 in CI, 10 with `HOSTILE_LONG=1`.
fn scale() -> usize {
    match std::env::var("HOSTILE_LONG").as_deref() {
        Ok("1") => 10,
        _ => 1,
    }
}

/// Two server threads and a 2 s upstream read timeout; `server` adds to `server:`.
fn config(upstream: SocketAddr, server: &str) -> GatewayConfig {
    GatewayConfig::new(upstream)
        .server("threads: 2")
        .server(server)
        .upstream_settings("read_timeout: 2s")
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
    let gateway = GatewayProcess::start(
        &config(upstream.addr, "header_timeout: 1s, idle_timeout: 30s").yaml(),
    );
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
    let gateway = GatewayProcess::start(
        &config(upstream.addr, "header_timeout: 5s, idle_timeout: 1s").yaml(),
    );
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
    let gateway = GatewayProcess::start(
        &config(
            upstream.addr,
            "header_timeout: 20s, idle_timeout: 20s, max_connections: 20",
        )
        .yaml(),
    );
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

/// Sends `total` requests from `workers` concurrent tasks; `make` gives (path, headers) for
/// request i; `check` judges each answer. Returns the latencies of the answers.
async fn load<M, C>(
    addr: SocketAddr,
    total: usize,
    workers: usize,
    make: M,
    check: C,
) -> Vec<Duration>
where
    M: Fn(usize) -> (String, Vec<(String, String)>) + Send + Sync + 'static,
    C: Fn(usize, &cors_edge_tests::Response) + Send + Sync + 'static,
{
    let make = std::sync::Arc::new(make);
    let check = std::sync::Arc::new(check);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (make, check, next) = (make.clone(), check.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return latencies;
                }
                let (path, headers) = make(i);
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let started = Instant::now();
                let response = request(addr, "GET", &path, &headers).await;
                latencies.push(started.elapsed());
                check(i, &response);
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(
            task.await
                .expect("a load task failed (see its assertion above)"),
        );
    }
    all
}

fn percentile(latencies: &mut [Duration], p: f64) -> Duration {
    latencies.sort();
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len());
    latencies[rank - 1]
}

#[tokio::test]
async fn origin_and_variant_flood_stays_bounded_and_allowed_origins_keep_hitting() {
    // Every answer is per origin (ACAO names it) and varies on X-R, as a hostile client
    // would make them: each distinct origin or X-R value is a new variant.
    let upstream = Upstream::start(|req| {
        let origin = req.header("origin").unwrap_or_default();
        let reply = Reply::ok(format!("{}:{}", req.path(), "x".repeat(1000)))
            .header("cache-control", "max-age=300")
            .header("vary", "X-R");
        if origin.is_empty() {
            reply
        } else {
            reply.header("access-control-allow-origin", &origin)
        }
    })
    .await;
    let max_bytes_mib = 4;
    let gateway = GatewayProcess::start(
        &config(upstream.addr, "")
            .cache(&format!("max_bytes: {max_bytes_mib}MiB, max_variants: 64"))
            .yaml(),
    );
    let app = "https://app.example.com";
    let paths = 10;
    for p in 0..paths {
        let path = format!("/p{p}");
        assert_eq!(
            request(gateway.addr, "GET", &path, &[("origin", app)])
                .await
                .cache(),
            "MISS"
        );
        assert_eq!(
            request(gateway.addr, "GET", &path, &[("origin", app)])
                .await
                .cache(),
            "HIT"
        );
    }
    let rss_before = rss_kib(gateway.pid());
    let total = 3000 * scale();
    let started = Instant::now();
    load(
        gateway.addr,
        total,
        8,
        move |i| {
            (
                format!("/p{}", i % paths),
                vec![
                    (
                        "origin".to_string(),
                        format!("https://flood-{i}.evil.example"),
                    ),
                    ("x-r".to_string(), format!("{}", i * 7919 % 100_003)),
                ],
            )
        },
        |i, r| {
            assert_eq!(r.status, 200, "flood request {i}");
            assert!(r.text().starts_with("/p"), "flood request {i}: wrong body");
            let acao = r.header("access-control-allow-origin");
            assert!(
                acao == format!("https://flood-{i}.evil.example"),
                "request {i} got {acao:?}"
            );
        },
    )
    .await;
    let flood_time = started.elapsed();
    let rss_after = rss_kib(gateway.pid());
    let stats: serde_json::Value =
        serde_json::from_slice(&request(gateway.admin, "GET", "/stats", &[]).await.body)
            .expect("stats");
    let entries = stats["entries"].as_u64().expect("entries");
    let bytes = stats["bytes"].as_u64().expect("bytes");
    // Bounded: at most max_variants per URL, at most max_bytes in all.
    assert!(
        entries <= (paths * 64) as u64 + paths as u64,
        "{entries} entries"
    );
    assert!(bytes <= max_bytes_mib * 1024 * 1024, "{bytes} bytes");
    // The process: the cache bound twice over (moka's bookkeeping, allocator slack) plus
    // 32 MiB for connections and buffers.
    let bound_kib = rss_before + 2 * max_bytes_mib * 1024 + 32 * 1024;
    assert!(
        rss_after <= bound_kib,
        "RSS {rss_after} KiB over {bound_kib} KiB"
    );
    // The allowed origin's variants were stored first and are still served.
    for p in 0..paths {
        let r = request(gateway.addr, "GET", &format!("/p{p}"), &[("origin", app)]).await;
        assert_eq!(
            (r.cache().as_str(), r.header("access-control-allow-origin")),
            ("HIT", app.to_string())
        );
    }
    println!(
        "flood: {total} requests, {total} origins x distinct X-R values over {paths} paths in {flood_time:?}: \
         {entries} entries, {bytes} bytes (max_bytes {max_bytes_mib} MiB), RSS {rss_before} -> {rss_after} KiB \
         (bound {bound_kib}); allowed origin still HIT on every path"
    );
}

/// An upstream in its own runtime, so killing it drops every connection too (the gateway's
/// pooled keep-alive connections included), as a crashed process would.
struct KillableUpstream {
    runtime: Option<tokio::runtime::Runtime>,
    upstream: Option<Upstream>,
    addr: SocketAddr,
}

impl KillableUpstream {
    fn start<F>(addr: Option<SocketAddr>, handler: F) -> KillableUpstream
    where
        F: Fn(&cors_edge_tests::UpstreamRequest) -> Reply + Send + Sync + 'static,
    {
        let (runtime, upstream) = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let upstream = runtime.block_on(async move {
                match addr {
                    Some(addr) => Upstream::start_on(addr, handler).await,
                    None => Upstream::start(handler).await,
                }
            });
            (runtime, upstream)
        })
        .join()
        .expect("upstream thread");
        KillableUpstream {
            addr: upstream.addr,
            runtime: Some(runtime),
            upstream: Some(upstream),
        }
    }

    fn kill(&mut self) {
        drop(self.upstream.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    fn total(&self) -> usize {
        self.upstream.as_ref().map_or(0, Upstream::total)
    }
}

impl Drop for KillableUpstream {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An upstream that promises 10,000 bytes, sends 100 and closes: a reset mid-body.
async fn truncating_upstream() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\nCache-Control: max-age=300\r\n\r\n",
                    )
                    .await;
                let _ = stream.write_all(&[b'a'; 100]).await;
                drop(stream);
            });
        }
    });
    (addr, served)
}

#[tokio::test]
async fn upstream_faults_under_load_give_stale_or_clean_errors_and_store_nothing_truncated() {
    let handler = |req: &cors_edge_tests::UpstreamRequest| match req.path() {
        "/stale" => Reply::ok("v1").header("cache-control", "max-age=1, stale-if-error=60"),
        "/slow" => Reply::ok("slow")
            .header("cache-control", "max-age=60")
            .delay(Duration::from_secs(4)),
        path => Reply::ok(path.to_string()).header("cache-control", "max-age=60"),
    };
    let mut upstream = KillableUpstream::start(None, handler);
    let (truncating, truncated_served) = truncating_upstream().await;
    let gateway = GatewayProcess::start(&format!(
        "listen: [\"{{listen}}\"]\nadmin: {{ listen: \"{{admin}}\" }}\nupstreams:\n  api:\n    servers: [\"{}\"]\n    read_timeout: 2s\n  broken:\n    servers: [\"{truncating}\"]\nroutes:\n  - name: api\n    upstream: api\n  - name: broken\n    match: {{ path_prefix: /broken }}\n    upstream: broken\nserver:\n  threads: 2\n",
        upstream.addr
    ));
    let r = request(gateway.addr, "GET", "/stale", &[]).await;
    assert_eq!((r.cache().as_str(), r.text().as_str()), ("MISS", "v1"));
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // 1. Upstream killed: the stale copy within stale-if-error, clean 502s for the rest.
    let address = upstream.addr;
    upstream.kill();
    let n = 200 * scale();
    let started = Instant::now();
    load(
        gateway.addr,
        n,
        8,
        |i| {
            let path = if i % 4 == 0 {
                format!("/never-cached-{i}")
            } else {
                "/stale".to_string()
            };
            (path, Vec::new())
        },
        |i, r| {
            if i % 4 == 0 {
                assert_eq!(r.status, 502, "request {i}");
                assert!(
                    r.text().contains("upstream unavailable"),
                    "request {i}: {}",
                    r.text()
                );
                assert_eq!(r.header("content-length"), r.body.len().to_string());
            } else {
                assert_eq!((r.status, r.text().as_str()), (200, "v1"), "request {i}");
                assert_eq!(r.cache(), "STALE", "request {i}");
            }
        },
    )
    .await;
    let down_time = started.elapsed();

    // 2. Restarted on the same address, answering 503 for /stale: still the stale copy
    //    (stale-if-error covers 5xx answers too); other paths are fresh again.
    let upstream = KillableUpstream::start(Some(address), move |req| {
        if req.path() == "/stale" {
            Reply::status(503).header("retry-after", "1")
        } else {
            handler(req)
        }
    });
    let mut back = None;
    for _ in 0..50 {
        let r = request(gateway.addr, "GET", "/after-restart", &[]).await;
        if r.status == 200 {
            back = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = back.expect("the gateway uses the restarted upstream within 5 s");
    assert_eq!(back.text(), "/after-restart");
    let answered_5xx = 40 * scale();
    load(
        gateway.addr,
        answered_5xx,
        8,
        |_| ("/stale".to_string(), Vec::new()),
        |i, r| {
            assert_eq!((r.status, r.text().as_str()), (200, "v1"), "request {i}");
            assert_eq!(r.cache(), "STALE", "request {i}");
        },
    )
    .await;
    // The stale answers came from the restarted upstream's 503s. Inside the default
    // stale-while-revalidate window they are served at once and the revalidation that meets
    // the 503 runs in the background, so it may reach the upstream after the last answer: wait
    // for it rather than guess when it happens.
    let deadline = Instant::now() + Duration::from_secs(20);
    while upstream.total() <= 1 {
        assert!(
            Instant::now() < deadline,
            "the restarted upstream was never asked for /stale"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 3. Slow upstream: 504 past read_timeout, and nothing stored.
    let started = Instant::now();
    let slow = request(gateway.addr, "GET", "/slow", &[]).await;
    let slow_time = started.elapsed();
    assert_eq!(slow.status, 504);
    assert!(slow.text().contains("timed out"));

    // 4. Reset mid-body: the client does not get a complete 200, and nothing is stored.
    for _ in 0..3 {
        let raw = cors_edge_tests::send_raw(
            gateway.addr,
            b"GET /broken/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        let text = String::from_utf8_lossy(&raw);
        let complete = text.starts_with("HTTP/1.1 200") && raw.len() >= 10_000;
        assert!(!complete, "a truncated body was passed on as complete");
        assert!(
            !text.contains("X-Cache: HIT") && !text.contains("x-cache: HIT"),
            "{text}"
        );
    }
    assert_eq!(
        truncated_served.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "every request reached the upstream: nothing truncated was stored"
    );
    println!(
        "faults: upstream killed: {n} requests in {down_time:?} ({} stale 200s, {} clean 502s); \
         restarted upstream answering 503: {answered_5xx} stale 200s ({} upstream requests); slow upstream: 504 after {slow_time:?}; \
         3 resets mid-body: nothing stored",
        n - n / 4,
        n / 4,
        upstream.total()
    );
}

#[tokio::test]
async fn purge_and_reload_storms_under_load_lose_no_request() {
    let upstream = Upstream::start(|req| {
        Reply::ok(req.path().to_string()).header("cache-control", "max-age=300")
    })
    .await;
    let gateway = GatewayProcess::start(&config(upstream.addr, "").yaml());
    let admin = gateway.admin;
    let total = 3000 * scale();
    let purges = 300 * scale();
    let reloads = 20 * scale();
    let purge_task = tokio::spawn(async move {
        let started = Instant::now();
        for k in 0..purges {
            let body = match k % 4 {
                0 => format!("{{\"prefix\": \"/p{}\"}}", k % 20),
                1 => format!("{{\"url\": \"/p{}\"}}", k % 20),
                2 => "{\"host\": \"nope.example\"}".to_string(),
                _ => format!("{{\"prefix\": \"/p{}\", \"soft\": true}}", k % 20),
            };
            let r = cors_edge_tests::client::request_with_body(
                admin,
                "POST",
                "/purge",
                &[("content-type", "application/json")],
                bytes::Bytes::from(body),
            )
            .await;
            assert_eq!(r.status, 200, "purge {k}: {}", r.text());
            // At most 1000 purges per second.
            let due = Duration::from_millis(k as u64 + 1);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        started.elapsed()
    });
    let reload_task = tokio::spawn(async move {
        let started = Instant::now();
        for k in 0..reloads {
            let r = cors_edge_tests::client::request_with_body(
                admin,
                "POST",
                "/reload",
                &[],
                bytes::Bytes::new(),
            )
            .await;
            assert_eq!(r.status, 200, "reload {k}: {}", r.text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        started.elapsed()
    });
    let hits = std::sync::Arc::new(parking_lot::Mutex::new(0usize));
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut sent = 0;
    // Rounds of load until both storms are over (and at least `total` requests).
    while sent < total || !purge_task.is_finished() || !reload_task.is_finished() {
        let hit_log = hits.clone();
        let round = 500;
        latencies.extend(
            load(
                gateway.addr,
                round,
                8,
                |i| {
                    (
                        format!("/p{}", i % 20),
                        vec![("origin".to_string(), "https://app.example.com".to_string())],
                    )
                },
                move |i, r| {
                    assert_eq!(r.status, 200, "request {i} failed: {}", r.text());
                    assert_eq!(r.text(), format!("/p{}", i % 20), "request {i}: wrong body");
                    if r.cache() == "HIT" {
                        *hit_log.lock() += 1;
                    }
                },
            )
            .await,
        );
        sent += round;
    }
    let total = sent;
    let load_time = started.elapsed();
    let purge_time = purge_task.await.expect("purges");
    let reload_time = reload_task.await.expect("reloads");
    let hit_count = *hits.lock();
    let p50 = percentile(&mut latencies, 0.5);
    let p99 = percentile(&mut latencies, 0.99);
    println!(
        "storms: {total} requests in {load_time:?} (all 200 with the right body, {hit_count} hits), \
         p50 {p50:?} p99 {p99:?} (all requests, one connection each); {purges} purges in \
         {purge_time:?}; {reloads} reloads in {reload_time:?}"
    );
}
