//! Reload (SIGHUP and POST /reload) and graceful stop (SIGTERM).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cors_edge_tests::client::request_with_body;
use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Response, Route, Upstream};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

/// Upstreams `a` and `b`, a 1 s grace period and shutdown timeout, and these routes.
fn config(a: SocketAddr, b: SocketAddr, routes: Vec<Route>) -> String {
    GatewayConfig::empty()
        .server("grace_period: 1s, shutdown_timeout: 1s")
        .upstream("a", a)
        .upstream("b", b)
        .routes(routes)
        .yaml()
}

/// `/keep` and `/switch` on `a`.
fn routes_before() -> Vec<Route> {
    vec![
        Route::prefix("keep", "/keep").upstream("a"),
        Route::prefix("switch", "/switch").upstream("a"),
    ]
}

/// `/switch` moved to `b`, and `/added` on `b`.
fn routes_after() -> Vec<Route> {
    vec![
        Route::prefix("keep", "/keep").upstream("a"),
        Route::prefix("switch", "/switch").upstream("b"),
        Route::prefix("added", "/added").upstream("b"),
    ]
}

async fn two_upstreams() -> (Upstream, Upstream) {
    let a = Upstream::start(|_| Reply::ok("from-a").header("cache-control", "max-age=300")).await;
    let b = Upstream::start(|_| Reply::ok("from-b").header("cache-control", "max-age=300")).await;
    (a, b)
}

async fn admin_post(gateway: &GatewayProcess, path: &str) -> Response {
    request_with_body(gateway.admin, "POST", path, &[], Bytes::new()).await
}

/// A kept-alive HTTP/1.1 connection to the gateway.
struct KeepAlive {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    addr: SocketAddr,
}

impl KeepAlive {
    async fn open(addr: SocketAddr) -> KeepAlive {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        KeepAlive { sender, addr }
    }

    /// GET on this same connection; fails the test if the connection was closed.
    async fn get(&mut self, path: &str) -> (String, String) {
        self.sender
            .ready()
            .await
            .expect("the kept-alive connection is still open");
        let request = http::Request::get(path)
            .header("host", self.addr.to_string())
            .body(Empty::new())
            .unwrap();
        let response = self
            .sender
            .send_request(request)
            .await
            .expect("response on the kept-alive connection");
        let cache = response
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (cache, String::from_utf8_lossy(&body).into_owned())
    }
}

async fn body_and_cache(gateway: &GatewayProcess, path: &str) -> (String, String) {
    let response = request(gateway.addr, "GET", path, &[]).await;
    (response.text(), response.cache())
}

#[tokio::test]
async fn sighup_applies_new_routes_and_keeps_cache_and_connections() {
    let (a, b) = two_upstreams().await;
    let gateway = GatewayProcess::start(&config(a.addr, b.addr, routes_before()));
    assert_eq!(
        body_and_cache(&gateway, "/keep/1").await,
        ("from-a".into(), "MISS".into())
    );
    assert_eq!(
        body_and_cache(&gateway, "/keep/1").await,
        ("from-a".into(), "HIT".into())
    );
    assert_eq!(
        request(gateway.addr, "GET", "/added/1", &[]).await.status,
        404,
        "no route yet"
    );
    let mut open = KeepAlive::open(gateway.addr).await;
    assert_eq!(open.get("/keep/1").await, ("HIT".into(), "from-a".into()));

    gateway.rewrite_config(&config(a.addr, b.addr, routes_after()));
    gateway.signal("HUP");
    // The reload runs in the background: wait for the new route to answer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while request(gateway.addr, "GET", "/added/1", &[]).await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not apply the new route within 5s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(body_and_cache(&gateway, "/added/1").await.0, "from-b");
    assert_eq!(
        body_and_cache(&gateway, "/switch/new").await,
        ("from-b".into(), "MISS".into()),
        "switched upstream"
    );
    // The cache survived: still a HIT, the upstream asked once.
    assert_eq!(
        body_and_cache(&gateway, "/keep/1").await,
        ("from-a".into(), "HIT".into())
    );
    assert_eq!(a.hits("/keep/1"), 1);
    // The connection opened before the reload still works, under the new routes.
    assert_eq!(open.get("/keep/1").await, ("HIT".into(), "from-a".into()));
    assert_eq!(open.get("/added/2").await.1, "from-b");
    assert!(b.hits("/added/2") == 1 && a.hits("/added/2") == 0);
}

#[tokio::test]
async fn post_reload_applies_at_once_and_refuses_a_bad_file() {
    let (a, b) = two_upstreams().await;
    let gateway = GatewayProcess::start(&config(a.addr, b.addr, routes_before()));
    request(gateway.addr, "GET", "/keep/1", &[]).await;
    assert_eq!(body_and_cache(&gateway, "/switch/1").await.0, "from-a");

    gateway.rewrite_config(&config(a.addr, b.addr, routes_after()));
    let answer = admin_post(&gateway, "/reload").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // POST /reload answers after the swap: no waiting needed.
    assert_eq!(body_and_cache(&gateway, "/switch/2").await.0, "from-b");
    assert_eq!(body_and_cache(&gateway, "/added/1").await.0, "from-b");
    assert_eq!(body_and_cache(&gateway, "/keep/1").await.1, "HIT");

    // A broken file: 400 naming the file, and the running config (`routes_after`) stays.
    let config_file = gateway.config_path.display().to_string();
    std::fs::write(
        &gateway.config_path,
        config(a.addr, b.addr, routes_before()) + "unknown_key: 1\n",
    )
    .unwrap();
    let refused = admin_post(&gateway, "/reload").await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains(&config_file),
        "the error does not name {config_file}: {}",
        refused.text()
    );
    assert!(refused.text().contains("unknown_key"), "{}", refused.text());
    assert_eq!(
        body_and_cache(&gateway, "/switch/3").await.0,
        "from-b",
        "running config replaced by a bad file"
    );
    assert_eq!(body_and_cache(&gateway, "/keep/1").await.1, "HIT");

    // Bad files through SIGHUP: the process keeps serving as before. The config path is a FIFO
    // for each reload, so the test knows that the reload ran and read the bad file (it opened
    // the FIFO), not just that nothing changed: (1) not YAML at all; (2) the old routes with
    // an unknown key, which would switch /switch back to `a` if applied; (3) not YAML again,
    // whose read shows that (2) has finished.
    let bad_yaml = "routes: [unclosed\n".to_string();
    let bad_config = config(a.addr, b.addr, routes_before()) + "unknown_key: 1\n";
    for (i, content) in [&bad_yaml, &bad_config, &bad_yaml].into_iter().enumerate() {
        let fed = feed_next_read(&gateway.config_path, content);
        gateway.signal("HUP");
        assert!(fed.await, "SIGHUP {} never re-read the config file", i + 1);
    }
    std::fs::write(&gateway.config_path, &bad_yaml).unwrap();
    assert_eq!(body_and_cache(&gateway, "/switch/4").await.0, "from-b");
    assert_eq!(body_and_cache(&gateway, "/added/2").await.0, "from-b");
    let refused = admin_post(&gateway, "/reload").await;
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains(&config_file), "{}", refused.text());
}

/// Replaces `path` with a FIFO that hands out `content` to the next reader, and resolves to
/// whether someone opened it for reading within 10 s. The FIFO is removed afterwards (the
/// path is then absent: write the file again before any later read).
fn feed_next_read(
    path: &std::path::Path,
    content: &str,
) -> impl std::future::Future<Output = bool> {
    let _ = std::fs::remove_file(path);
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
    let (path, content) = (path.to_path_buf(), content.to_string());
    let (done, read) = std::sync::mpsc::channel();
    {
        let path = path.clone();
        // Opening a FIFO for writing blocks until a reader opens it.
        std::thread::spawn(move || {
            if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&path) {
                let _ = std::io::Write::write_all(&mut fifo, content.as_bytes());
            }
            let _ = done.send(());
        });
    }
    async move {
        tokio::task::spawn_blocking(move || {
            let opened = read.recv_timeout(Duration::from_secs(10)).is_ok();
            if !opened {
                // Nobody read it: be the reader, so the writer thread ends.
                if let Ok(mut fifo) = std::fs::File::open(&path) {
                    let _ = std::io::Read::read_to_end(&mut fifo, &mut Vec::new());
                }
                let _ = read.recv();
            }
            let _ = std::fs::remove_file(&path);
            opened
        })
        .await
        .expect("FIFO task")
    }
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits() {
    let slow =
        Upstream::start(|_| Reply::ok("slow but complete").delay(Duration::from_millis(500))).await;
    let config = format!(
        "listen: [\"{{listen}}\"]\nadmin: {{ listen: \"{{admin}}\" }}\n\
         server: {{ grace_period: 1s, shutdown_timeout: 1s }}\n\
         upstreams:\n  slow:\n    servers: [\"{}\"]\nroutes:\n  - name: slow\n    upstream: slow\n",
        slow.addr
    );
    let mut gateway = GatewayProcess::start(&config);
    let addr = gateway.addr;
    let in_flight = tokio::spawn(async move { request(addr, "GET", "/slow", &[]).await });
    // SIGTERM once the upstream has the request, i.e. while the gateway waits for its answer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while slow.total() == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stop = Instant::now();
    gateway.signal("TERM");
    let response = in_flight.await.expect("request task");
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "slow but complete")
    );
    // grace_period + shutdown_timeout = 2s; generous margin for a loaded machine.
    assert!(
        gateway.wait_exit(Duration::from_secs(15)),
        "still running 15s after SIGTERM"
    );
    println!("SIGTERM to exit: {:?}", stop.elapsed());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after exit"
    );
}

/// A kept-alive connection waiting for its next request is closed as soon as the server starts
/// stopping, not at the end of the grace period (the gateway is still running when the client
/// sees the close).
#[tokio::test]
async fn sigterm_closes_idle_keep_alive_connections_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let upstream = Upstream::start(|_| Reply::ok("ok")).await;
    let config = format!(
        "listen: [\"{{listen}}\"]\nadmin: {{ listen: \"{{admin}}\" }}\n\
         server: {{ grace_period: 60s, shutdown_timeout: 1s, idle_timeout: 120s }}\n\
         upstreams:\n  api:\n    servers: [\"{}\"]\nroutes:\n  - name: api\n    upstream: api\n",
        upstream.addr
    );
    let mut gateway = GatewayProcess::start(&config);
    let mut idle = tokio::net::TcpStream::connect(gateway.addr)
        .await
        .expect("connect");
    idle.write_all(b"GET /a HTTP/1.1\r\nHost: a.example\r\n\r\n")
        .await
        .expect("send");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).ends_with("\r\n\r\nok") {
        let n = idle.read(&mut chunk).await.expect("read the answer");
        assert!(
            n > 0,
            "closed before the answer: {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"));

    gateway.signal("TERM");
    // Bounded so a regression fails instead of hanging; far below the 60 s grace period.
    let closed = tokio::time::timeout(Duration::from_secs(30), idle.read(&mut chunk)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the idle connection was not closed: {closed:?}"
    );
    assert!(
        gateway.is_running(),
        "closed by the process's exit, not by the shutdown signal"
    );
    gateway.signal("KILL");
    assert!(gateway.wait_exit(Duration::from_secs(15)));
}
