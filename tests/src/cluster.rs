//! A sharded cluster for black-box tests: a `redis-server` on a unix socket, and node
//! processes started on port 0 that join after start (their configs rewritten with every
//! node's real address as `cluster.peers`, then SIGHUP), so no port is guessed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::gateway::TempDir;
use crate::{request, GatewayConfig, GatewayProcess};

/// The peer token every test node shares.
pub const PEER_TOKEN: &str = "test-peer-secret-0123456789";

/// A `redis-server` child without persistence on a unix socket, killed on drop.
pub struct Redis {
    child: Child,
    socket: PathBuf,
    _dir: TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = TempDir::new("ring-redis");
        let socket = dir.0.join("redis.sock");
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(binary)
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed: apt-get install -y redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            child,
            socket,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a node's config is made of.
#[derive(Clone)]
pub struct NodeConfig {
    pub upstream: SocketAddr,
    pub redis_url: String,
    pub channel: String,
    /// `upstream` or `edge`.
    pub cors_mode: &'static str,
    pub local_ttl: &'static str,
    /// A TLS listener too (certificate and key files), beside the plain one.
    pub tls: Option<(String, String)>,
}

impl NodeConfig {
    /// The YAML of one node; `listen` is `{listen}` (port 0) or a fixed address for a restart.
    pub fn yaml(&self, listen: &str, peers: &[SocketAddr], me: Option<SocketAddr>) -> String {
        let mut config = GatewayConfig::new(self.upstream)
            .listen(listen)
            .server("grace_period: 1s, shutdown_timeout: 1s")
            .upstream_settings("read_timeout: 30s")
            .route_debug()
            .cluster(&self.redis_url, &self.channel)
            .cluster_settings(&format!(
                "local_ttl: {}, health_check_interval: 200ms",
                self.local_ttl
            ));
        if let Some((cert, key)) = &self.tls {
            config = config.tls(cert, key);
        }
        if self.cors_mode == "edge" {
            config = config.route_cors(
                "mode: edge, allow_origins: [\"https://a.example\", \"https://b.example\", \"https://c.example\"]",
            );
        }
        if let Some(me) = me {
            let list: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
            config =
                config.cluster_settings(&format!("peers: [{}], self: \"{me}\"", list.join(", ")));
        }
        config.yaml()
    }
}

/// Nodes joined into one ring.
pub struct Cluster {
    pub nodes: Vec<GatewayProcess>,
    pub config: NodeConfig,
}

impl Cluster {
    /// Starts `count` nodes alone, then joins them (rewritten configs + SIGHUP) and waits until
    /// every node sees every node healthy.
    pub async fn start(count: usize, config: NodeConfig) -> Cluster {
        let env = [("CORS_EDGE_PEER_TOKEN", PEER_TOKEN)];
        let nodes = (0..count)
            .map(|_| GatewayProcess::start_with_env(&config.yaml("{listen}", &[], None), &env))
            .collect();
        let cluster = Cluster { nodes, config };
        cluster.join().await;
        cluster
    }

    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }

    /// Rewrites every node's config with the current addresses and reloads it.
    pub async fn join(&self) {
        let peers = self.addresses();
        for node in &self.nodes {
            node.rewrite_config(&self.config.yaml("{listen}", &peers, Some(node.addr)));
            node.signal("HUP");
        }
        for node in &self.nodes {
            wait_ring(node, peers.len()).await;
        }
    }

    /// The node at `address`.
    pub fn index_of(&self, address: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.addr.to_string() == address)
    }
}

/// The `ring` object of a node's `/stats`.
pub async fn ring(node: &GatewayProcess) -> serde_json::Value {
    let text = request(node.admin, "GET", "/stats", &[]).await.text();
    let stats: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    stats["ring"].clone()
}

/// Waits (up to 20 s) until `node` has `healthy` healthy ring members, in `/stats` and in
/// `cors_edge_cluster_peers{state="healthy"}`.
pub async fn wait_ring(node: &GatewayProcess, healthy: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ring = ring(node).await;
        // `/stats` and the metric say the same.
        let exported = metric(node, "cors_edge_cluster_peers{state=\"healthy\"}").await;
        if ring["healthy"].as_u64() == Some(healthy as u64)
            && ring["sharded"] == true
            && exported == healthy as f64
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {} never saw {healthy} healthy members: {ring}",
            node.addr
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of one metric series line (`name{labels} value`), 0 when absent.
pub async fn metric(node: &GatewayProcess, series: &str) -> f64 {
    let text = request(node.admin, "GET", "/metrics", &[]).await.text();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The owner a node reports in its debug header: `self`, or the owner's address.
pub fn owner_in(debug: &str) -> Option<String> {
    let start = debug.find("owner=")? + "owner=".len();
    let rest = &debug[start..];
    let value = rest.split(';').next()?.trim();
    Some(value.split(' ').next()?.to_string())
}

/// A deterministic pseudo-random sequence (xorshift), so a failing run can be replayed.
pub struct Seeded(pub u64);

impl Seeded {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
