//! Cluster purge through Redis: three gateways share one Redis; a purge accepted by one node's
//! admin API reaches the others, also across a Redis restart and when Redis was down at the
//! moment of the purge.
//!
//! Needs Debian's `redis-server` (`apt-get install -y redis-server`; scripts/test-all.sh
//! installs it) or its path in `$REDIS_SERVER`. The tests fail, not skip, without it.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cors_edge_tests::client::request_with_body;
use cors_edge_tests::gateway::TempDir;
use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Upstream};
use parking_lot::Mutex;

/// A `redis-server` child process without persistence, killed on drop. It listens on a unix
/// socket in its own temp dir: a restart binds the same path, which no other process can take
/// in between (a TCP port released by the killed server could be).
struct RedisServer {
    child: Option<Child>,
    endpoint: Endpoint,
    dir: TempDir,
}

enum Endpoint {
    Unix(PathBuf),
}

fn redis_binary() -> PathBuf {
    if let Ok(path) = std::env::var("REDIS_SERVER") {
        return PathBuf::from(path);
    }
    for candidate in [
        "/usr/bin/redis-server",
        "/usr/local/bin/redis-server",
        "/usr/sbin/redis-server",
    ] {
        if std::path::Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("redis-server is not installed: apt-get install -y redis-server (or set REDIS_SERVER)");
}

impl RedisServer {
    fn start() -> RedisServer {
        let dir = TempDir::new("redis");
        let endpoint = Endpoint::Unix(dir.0.join("redis.sock"));
        let mut server = RedisServer {
            child: None,
            endpoint,
            dir,
        };
        server.spawn();
        server
    }

    /// Starts redis-server on `self.endpoint` and waits until this process answers PING.
    fn spawn(&mut self) {
        let mut command = Command::new(redis_binary());
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let _ = std::fs::remove_file(path);
                command
                    .args(["--port", "0", "--unixsocket"])
                    .arg(path)
                    .args(["--unixsocketperm", "700"]);
            }
        }
        let mut child = command
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                let _ = child.wait();
                panic!("redis-server exited with {status} before answering");
            }
            // The server that answers is this child: INFO's process_id says so.
            if self.process_id() == Some(child.id()) {
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not answer on {} within 10s", self.url());
    }

    /// `process_id` from `INFO server`, None when nothing answers.
    fn process_id(&self) -> Option<u32> {
        use std::io::{Read, Write};
        let mut stream: Box<dyn ReadWrite> = match &self.endpoint {
            Endpoint::Unix(path) => Box::new(std::os::unix::net::UnixStream::connect(path).ok()?),
        };
        stream.set_timeout(Duration::from_millis(500));
        stream.write_all(b"INFO server\r\n").ok()?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&reply).contains("process_id:") || !reply.ends_with(b"\r\n")
        {
            let n = stream.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&reply)
            .lines()
            .find_map(|l| l.strip_prefix("process_id:")?.trim().parse().ok())
    }

    /// SIGKILL, as in a crash: no chance to say goodbye to the clients.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        match &self.endpoint {
            Endpoint::Unix(path) => format!("redis+unix://{}", path.display()),
        }
    }
}

trait ReadWrite: std::io::Read + std::io::Write {
    fn set_timeout(&self, limit: Duration);
}

impl ReadWrite for TcpStream {
    fn set_timeout(&self, limit: Duration) {
        let _ = self.set_read_timeout(Some(limit));
    }
}

impl ReadWrite for std::os::unix::net::UnixStream {
    fn set_timeout(&self, limit: Duration) {
        let _ = self.set_read_timeout(Some(limit));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config(upstream: SocketAddr, redis: &RedisServer, channel: &str) -> String {
    GatewayConfig::new(upstream)
        .cluster(&redis.url(), channel)
        .yaml()
}

async fn purge(gateway: &GatewayProcess, body: &str) -> u16 {
    let response = request_with_body(
        gateway.admin,
        "POST",
        "/purge",
        &[("content-type", "application/json")],
        Bytes::from(body.to_string()),
    )
    .await;
    assert_eq!(response.status, 200, "purge {body}: {}", response.text());
    response.status
}

/// Waits until every node reads the purge stream (metric `cors_edge_cluster_connected 1`).
async fn wait_connected(nodes: &[&GatewayProcess]) {
    for node in nodes {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = request(node.admin, "GET", "/metrics", &[]).await.text();
            if metrics
                .lines()
                .any(|line| line == "cors_edge_cluster_connected 1")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} never connected to Redis",
                node.admin
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Caches `path` on every node and checks the next request is a HIT.
async fn warm(nodes: &[&GatewayProcess], path: &str) {
    for node in nodes {
        request(node.addr, "GET", path, &[]).await;
        let second = request(node.addr, "GET", path, &[]).await;
        assert_eq!(
            second.cache(),
            "HIT",
            "{path} is not cached on {}",
            node.addr
        );
    }
}

/// Polls `path` on `node` until it is a MISS; returns how long that took, or panics after `limit`.
async fn until_miss(node: &GatewayProcess, path: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let response = request(node.addr, "GET", path, &[]).await;
        if response.cache() == "MISS" {
            return start.elapsed();
        }
        assert_eq!(
            response.cache(),
            "HIT",
            "unexpected cache status for {path} on {}",
            node.addr
        );
        assert!(
            start.elapsed() < limit,
            "{path} still a HIT on {} after {limit:?}: the purge never arrived",
            node.addr
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn unique_channel(label: &str) -> String {
    format!("cors-edge-test-{label}-{}", std::process::id())
}

#[tokio::test]
async fn purge_on_one_node_reaches_the_others_across_a_redis_restart() {
    let mut redis = RedisServer::start();
    let upstream =
        Upstream::start(|_| Reply::ok("shared").header("cache-control", "max-age=300")).await;
    let yaml = config(upstream.addr, &redis, &unique_channel("restart"));
    let (one, two, three) = (
        GatewayProcess::start(&yaml),
        GatewayProcess::start(&yaml),
        GatewayProcess::start(&yaml),
    );
    let nodes = [&one, &two, &three];
    wait_connected(&nodes).await;

    // A purge on node 1 reaches nodes 2 and 3; an unrelated URL stays cached everywhere.
    warm(&nodes, "/item").await;
    warm(&nodes, "/other").await;
    purge(&one, r#"{"url": "/item"}"#).await;
    assert_eq!(request(one.addr, "GET", "/item", &[]).await.cache(), "MISS");
    until_miss(&two, "/item", Duration::from_secs(5)).await;
    until_miss(&three, "/item", Duration::from_secs(5)).await;
    for node in nodes {
        assert_eq!(
            request(node.addr, "GET", "/other", &[]).await.cache(),
            "HIT"
        );
    }

    // A purge on node 2 reaches node 1 and 3 (every node publishes, not only the first).
    warm(&nodes, "/from-two").await;
    purge(&two, r#"{"prefix": "/from-"}"#).await;
    until_miss(&one, "/from-two", Duration::from_secs(5)).await;
    until_miss(&three, "/from-two", Duration::from_secs(5)).await;

    // Redis crashes; a purge accepted meanwhile is answered at once, queued, and delivered
    // once Redis is back (a new, empty Redis: the nodes must notice and read its stream
    // from the beginning).
    warm(&nodes, "/during-outage").await;
    redis.kill();
    let asked = Instant::now();
    purge(&one, r#"{"url": "/during-outage"}"#).await;
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "the admin answer waited for Redis"
    );
    assert_eq!(
        request(one.addr, "GET", "/during-outage", &[])
            .await
            .cache(),
        "MISS"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for node in [&two, &three] {
        assert_eq!(
            request(node.addr, "GET", "/during-outage", &[])
                .await
                .cache(),
            "HIT",
            "no Redis, no purge yet"
        );
    }
    redis.spawn();
    until_miss(&two, "/during-outage", Duration::from_secs(10)).await;
    until_miss(&three, "/during-outage", Duration::from_secs(10)).await;

    // Each reader noticed the new Redis (new run_id, stream without this node's last entry)
    // and read the new stream from its beginning.
    for node in [&two, &three] {
        let resyncs = metric(node, "cors_edge_cluster_resyncs_total").await;
        assert!(
            resyncs >= 1.0,
            "node {} never re-read the stream after a Redis restart",
            node.admin
        );
    }

    // And purges after the restart keep arriving.
    wait_connected(&nodes).await;
    warm(&nodes, "/after-restart").await;
    purge(&one, r#"{"url": "/after-restart"}"#).await;
    until_miss(&two, "/after-restart", Duration::from_secs(5)).await;
    until_miss(&three, "/after-restart", Duration::from_secs(5)).await;

    // A second restart while idle, then a purge: still delivered, and every node re-read the
    // new stream once more (the count moves past what the first restart left).
    let mut resyncs_before = Vec::new();
    for node in nodes {
        resyncs_before.push(metric(node, "cors_edge_cluster_resyncs_total").await);
    }
    redis.kill();
    redis.spawn();
    warm(&nodes, "/after-second-restart").await;
    purge(&three, r#"{"tag": "never-sent"}"#).await;
    purge(&three, r#"{"url": "/after-second-restart"}"#).await;
    until_miss(&one, "/after-second-restart", Duration::from_secs(10)).await;
    until_miss(&two, "/after-second-restart", Duration::from_secs(10)).await;
    for node in nodes {
        assert_eq!(
            request(node.addr, "GET", "/other", &[]).await.cache(),
            "HIT",
            "only named entries are purged"
        );
    }
    for (node, before) in nodes.into_iter().zip(resyncs_before) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let resyncs = metric(node, "cors_edge_cluster_resyncs_total").await;
            if resyncs > before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not re-read the stream after the second Redis restart ({resyncs} resyncs, {before} before it)",
                node.admin
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Issue 14's hostile case: Redis stopped and started while the nodes are under load. Serving
/// never stops (every request of the load answers 200), a purge accepted while Redis is down is
/// queued and delivered once it is back.
#[tokio::test]
async fn serving_never_stops_while_redis_is_down_and_queued_purges_arrive() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    let mut redis = RedisServer::start();
    let upstream =
        Upstream::start(|_| Reply::ok("shared").header("cache-control", "max-age=300")).await;
    let yaml = config(upstream.addr, &redis, &unique_channel("load"));
    let (one, two) = (GatewayProcess::start(&yaml), GatewayProcess::start(&yaml));
    wait_connected(&[&one, &two]).await;
    warm(&[&one, &two], "/queued").await;

    // Load on both nodes until told to stop: 4 clients per node, 20 paths each.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for (node, addr) in [("one", one.addr), ("two", two.addr)] {
        for client in 0..4 {
            let (stop, answered, failed) = (stop.clone(), answered.clone(), failed.clone());
            clients.push(tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("/load/{client}/{}", n % 20);
                    let response = request(addr, "GET", &path, &[]).await;
                    if response.status == 200 && response.text() == "shared" {
                        answered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.lock().push(format!(
                            "{node} {path}: {} {}",
                            response.status,
                            response.text()
                        ));
                    }
                    n += 1;
                }
            }));
        }
    }
    // Waits until 200 more requests were answered (a liveness bound, not a speed criterion).
    let serve_200_more = || {
        let answered = answered.clone();
        async move {
            let start = answered.load(Ordering::Relaxed);
            let deadline = Instant::now() + Duration::from_secs(30);
            while answered.load(Ordering::Relaxed) < start + 200 {
                assert!(
                    Instant::now() < deadline,
                    "the load stalled at {start} answers"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answered.load(Ordering::Relaxed)
        }
    };
    let answered_before_outage = serve_200_more().await;

    redis.kill();
    purge(&one, r#"{"url": "/queued"}"#).await;
    // Served all along while Redis is down.
    serve_200_more().await;
    assert_eq!(
        request(two.addr, "GET", "/queued", &[]).await.cache(),
        "HIT",
        "no Redis, no purge yet on node two"
    );
    redis.spawn();
    until_miss(&two, "/queued", Duration::from_secs(10)).await;

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("load client");
    }
    let failed = failed.lock().clone();
    let total = answered.load(Ordering::Relaxed);
    eprintln!(
        "redis restart under load: {total} requests answered ({answered_before_outage} before the outage), {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "requests failed: {failed:?}");
}

async fn metric(node: &GatewayProcess, name: &str) -> f64 {
    let metrics = request(node.admin, "GET", "/metrics", &[]).await.text();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing on {}", node.admin))
}

#[tokio::test]
async fn propagation_time_from_admin_answer_to_miss_on_another_node() {
    let redis = RedisServer::start();
    let upstream =
        Upstream::start(|_| Reply::ok("shared").header("cache-control", "max-age=300")).await;
    let yaml = config(upstream.addr, &redis, &unique_channel("latency"));
    let (one, three) = (GatewayProcess::start(&yaml), GatewayProcess::start(&yaml));
    wait_connected(&[&one, &three]).await;

    let mut samples = Vec::new();
    for i in 0..50 {
        let path = format!("/measure/{i}");
        warm(&[&three], &path).await;
        purge(&one, &format!(r#"{{"url": "{path}"}}"#)).await;
        samples.push(until_miss(&three, &path, Duration::from_secs(5)).await);
    }
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q).ceil() as usize)
            .saturating_sub(1)
            .min(samples.len() - 1)]
    };
    println!(
        "cluster purge propagation over {} purges (admin answer on node 1 -> first MISS on node 3): p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    );
}
