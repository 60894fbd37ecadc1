//! One cache across the cluster (issue 19): three real nodes, one Redis, one counting upstream.
//! Each key has an owner node (Ketama over `cluster.peers`); the others forward their misses
//! to it and keep short local copies.
//!
//! The nodes start alone on port 0 and join after start (configs rewritten with the real
//! addresses, SIGHUP). Every wait polls for a condition with a generous limit.
//!
//! Needs `redis-server` (or its path in `$REDIS_SERVER`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cors_edge_tests::client::request_with_body;
use cors_edge_tests::cluster::{
    metric, owner_in, wait_ring, Cluster, NodeConfig, Redis, Seeded, PEER_TOKEN,
};
use cors_edge_tests::{request, GatewayProcess, Reply, Upstream, UpstreamRequest};

const HOST: &str = "api.test";
const ORIGINS: [&str; 3] = [
    "https://a.example",
    "https://b.example",
    "https://c.example",
];

/// Per-origin answers (upstream mode): the origin's own ACAO, `Vary: Origin`, cacheable.
fn per_origin(req: &UpstreamRequest) -> Reply {
    let origin = req.header("origin").unwrap_or_default();
    let mut reply = Reply::ok(format!("{} for {origin}", req.path()))
        .header("cache-control", "max-age=300")
        .header("vary", "Origin");
    if !origin.is_empty() {
        reply = reply.header("access-control-allow-origin", &origin);
    }
    reply
}

fn node_config(
    upstream: &Upstream,
    redis: &Redis,
    mode: &'static str,
    ttl: &'static str,
) -> NodeConfig {
    NodeConfig {
        upstream: upstream.addr,
        redis_url: redis.url(),
        channel: format!("ring-{}", std::process::id()),
        cors_mode: mode,
        local_ttl: ttl,
        tls: None,
    }
}

async fn get(
    node: &GatewayProcess,
    path: &str,
    headers: &[(&str, &str)],
) -> cors_edge_tests::Response {
    let mut all = vec![("host", HOST)];
    all.extend_from_slice(headers);
    request(node.addr, "GET", path, &all).await
}

/// 100 URLs × 3 origins × 3 requests, each to a random node: the upstream sees what one node
/// would make it see (one fetch per URL and origin), and every answer is its origin's.
async fn spread_over_nodes(mode: &'static str) {
    let redis = Redis::start();
    let upstream = Upstream::start(per_origin).await;
    let cluster = Cluster::start(3, node_config(&upstream, &redis, mode, "2s")).await;
    let mut random = Seeded(0x5eed_0019);
    let mut work = Vec::new();
    for url in 0..100 {
        for origin in ORIGINS {
            for _ in 0..3 {
                work.push((format!("/items/{url}"), origin));
            }
        }
    }
    for i in (1..work.len()).rev() {
        work.swap(i, random.below(i + 1));
    }
    for (path, origin) in &work {
        let node = &cluster.nodes[random.below(3)];
        let response = get(node, path, &[("origin", origin)]).await;
        assert_eq!(response.status, 200, "{path} {origin}: {}", response.text());
        assert_eq!(
            response.header("access-control-allow-origin"),
            *origin,
            "{path} via {}",
            node.addr
        );
        if mode == "upstream" {
            assert_eq!(response.text(), format!("{path} for {origin}"));
        }
        assert!(!response.has("x-cors-edge-peer"));
    }
    // One node: one fetch per URL and origin in upstream mode, one per URL in edge mode.
    let one_node = if mode == "edge" { 100 } else { 300 };
    let fetched = upstream.total();
    eprintln!(
        "{mode}: {fetched} origin fetches for {} requests over 3 nodes",
        work.len()
    );
    assert!(
        fetched * 100 <= one_node * 105,
        "{mode}: {fetched} origin fetches for {} requests; one node makes {one_node}",
        work.len()
    );
    let forwarded: f64 = {
        let mut sum = 0.0;
        for node in &cluster.nodes {
            sum += metric(
                node,
                "cors_edge_cluster_peer_requests_total{result=\"forwarded\"}",
            )
            .await;
        }
        sum
    };
    assert!(forwarded > 0.0, "nothing was forwarded");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_url_is_fetched_once_across_three_nodes_upstream_mode() {
    spread_over_nodes("upstream").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_url_is_fetched_once_across_three_nodes_edge_mode() {
    spread_over_nodes("edge").await;
}

/// 20 concurrent requests for one missing key, spread over the nodes: one origin fetch (each
/// node's cache lock, then the owner's, coalesce them).
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_misses_on_every_node_make_one_origin_fetch() {
    let redis = Redis::start();
    let upstream = Upstream::start(|req| per_origin(req).delay(Duration::from_millis(600))).await;
    let cluster =
        Arc::new(Cluster::start(3, node_config(&upstream, &redis, "upstream", "2s")).await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let cluster = cluster.clone();
        tasks.push(tokio::spawn(async move {
            let node = &cluster.nodes[i % 3];
            get(node, "/hot", &[("origin", ORIGINS[0])]).await
        }));
    }
    for task in tasks {
        let response = task.await.expect("request task");
        assert_eq!(response.status, 200);
        assert_eq!(response.header("access-control-allow-origin"), ORIGINS[0]);
    }
    assert_eq!(
        upstream.hits("/hot"),
        1,
        "origin fetches for 20 concurrent requests"
    );
}

/// Preflights live with their URL's owner: 3 origins × 6 preflights to random nodes make one
/// upstream OPTIONS per origin, and each answer grants its own origin.
#[tokio::test(flavor = "multi_thread")]
async fn preflights_are_cached_once_across_the_nodes() {
    let redis = Redis::start();
    let upstream = Upstream::start(|req| {
        let origin = req.header("origin").unwrap_or_default();
        Reply::status(204)
            .header("access-control-allow-origin", &origin)
            .header("access-control-allow-methods", "GET, PUT")
            .header("access-control-allow-headers", "content-type")
            .header("access-control-max-age", "600")
            .header("vary", "Origin")
    })
    .await;
    let cluster = Cluster::start(3, node_config(&upstream, &redis, "upstream", "2s")).await;
    let mut random = Seeded(0x0f7_1035);
    for round in 0..18 {
        let origin = ORIGINS[round % 3];
        let node = &cluster.nodes[random.below(3)];
        let headers = [
            ("host", HOST),
            ("origin", origin),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "content-type"),
        ];
        let response = request(node.addr, "OPTIONS", "/pre", &headers).await;
        assert_eq!(response.status, 204, "{}", response.text());
        assert_eq!(response.header("access-control-allow-origin"), origin);
    }
    let options = upstream
        .requests()
        .iter()
        .filter(|r| r.method == "OPTIONS")
        .count();
    assert_eq!(options, 3, "one upstream preflight per origin");
}

/// Which node owns `path`, as a node's debug header says.
async fn owner_of(cluster: &Cluster, path: &str) -> usize {
    let response = get(&cluster.nodes[0], path, &[]).await;
    let debug = response.header("x-cors-edge-debug");
    match owner_in(&debug).as_deref() {
        Some("self") => 0,
        Some(address) => cluster
            .index_of(address)
            .unwrap_or_else(|| panic!("owner {address}?")),
        None => panic!("no owner in the debug header: {debug}"),
    }
}

/// The owner of a URL stopped under load (`KILL`: a crash; `TERM`: a rolling restart's
/// graceful stop) and started again on its address: every request is answered meanwhile (the
/// upstream answers what the owner would have), the ring drops it and takes it back.
async fn owner_down_under_load(signal: &'static str) {
    let redis = Redis::start();
    let upstream = Upstream::start(|req| {
        Reply::ok(req.path().to_string()).header("cache-control", "max-age=300")
    })
    .await;
    let mut cluster = Cluster::start(3, node_config(&upstream, &redis, "upstream", "2s")).await;
    let victim = owner_of(&cluster, "/victim").await;
    let victim_addr = cluster.nodes[victim].addr;
    let survivors: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    let addresses: Vec<_> = survivors.iter().map(|i| cluster.nodes[*i].addr).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut answered = 0;
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) || round < 200 {
                let path = format!("/load/{}", round % 500);
                let response = request(addresses[round % 2], "GET", &path, &[("host", HOST)]).await;
                if response.status == 200 && response.text() == path {
                    answered += 1;
                } else {
                    failures.push((path, response.status));
                }
                round += 1;
            }
            (answered, failures)
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    cluster.nodes[victim].signal(signal);
    assert!(
        cluster.nodes[victim].wait_exit(Duration::from_secs(20)),
        "the owner did not stop"
    );
    for i in &survivors {
        wait_ring(&cluster.nodes[*i], 2).await;
        assert_eq!(get(&cluster.nodes[*i], "/victim", &[]).await.status, 200);
    }
    // Back on the same address: the health check takes it into the ring again.
    let config = cluster.config.yaml(
        &victim_addr.to_string(),
        &cluster.addresses(),
        Some(victim_addr),
    );
    let env = [("CORS_EDGE_PEER_TOKEN", PEER_TOKEN)];
    cluster.nodes[victim] = GatewayProcess::start_with_env(&config, &env);
    for node in &cluster.nodes {
        wait_ring(node, 3).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (answered, failures) = load.await.expect("load task");
    assert!(
        failures.is_empty(),
        "{signal}: failed requests: {failures:?}"
    );
    let mut failovers = 0.0;
    for i in &survivors {
        failovers += metric(
            &cluster.nodes[*i],
            "cors_edge_cluster_peer_requests_total{result=\"failover\"}",
        )
        .await;
    }
    eprintln!("{signal}: {answered} requests answered, {failovers} failovers, 0 failed");
    let before = upstream.hits("/victim");
    let response = get(
        &cluster.nodes[survivors[0]],
        "/victim",
        &[("cache-control", "no-cache")],
    )
    .await;
    assert_eq!(response.status, 200);
    let owner = owner_in(&response.header("x-cors-edge-debug"));
    assert_eq!(
        owner,
        Some(victim_addr.to_string()),
        "the restarted owner owns its keys again"
    );
    assert_eq!(upstream.hits("/victim"), before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_owner_fails_over_to_the_upstream_and_rejoins() {
    owner_down_under_load("KILL").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_fails_no_request() {
    owner_down_under_load("TERM").await;
}

/// A node refuses to start in a ring without the peer token, or when `self` is not a peer; a
/// reload saying so is refused and the running ring stays.
#[tokio::test(flavor = "multi_thread")]
async fn misconfigured_rings_are_refused() {
    let redis = Redis::start();
    let upstream = Upstream::start(per_origin).await;
    let config = node_config(&upstream, &redis, "upstream", "2s");
    let me: std::net::SocketAddr = "127.0.0.1:2".parse().unwrap();
    let peers: Vec<std::net::SocketAddr> = vec!["127.0.0.1:1".parse().unwrap(), me];
    let yaml = config.yaml("{listen}", &peers, Some(me));
    let error = GatewayProcess::try_start(&yaml, &[])
        .err()
        .expect("refused without a token");
    assert!(error.contains("CORS_EDGE_PEER_TOKEN"), "{error}");
    let env = [("CORS_EDGE_PEER_TOKEN", PEER_TOKEN)];
    let outsider = config.yaml("{listen}", &peers[..1], Some(me));
    let error = GatewayProcess::try_start(&outsider, &env)
        .err()
        .expect("refused: self is no peer");
    assert!(
        error.contains("is not among the resolved cluster.peers"),
        "{error}"
    );

    let cluster = Cluster::start(3, config.clone()).await;
    let node = &cluster.nodes[0];
    node.rewrite_config(&config.yaml("{listen}", &peers[..1], Some(node.addr)));
    let reload = request(node.admin, "POST", "/reload", &[]).await;
    assert_eq!(reload.status, 400, "{}", reload.text());
    assert!(reload.text().contains("not among"), "{}", reload.text());
    wait_ring(node, 3).await;
}

/// A client sending the peer marker without the right secret is an ordinary client: its
/// request is still forwarded to the owner (not answered as an owner), keyed by its real
/// scheme, and the marker reaches neither the upstream nor an answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_peer_marker_changes_nothing() {
    let redis = Redis::start();
    let upstream = Upstream::start(per_origin).await;
    let cluster = Cluster::start(3, node_config(&upstream, &redis, "upstream", "60s")).await;
    let owner = owner_of(&cluster, "/forged").await;
    let other = (owner + 1) % 3;
    let forgeries = [
        "wrong",
        "",
        "https",
        "wrong https",
        &PEER_TOKEN[1..],
        "test-peer-secret-0123456789x",
    ];
    for (i, forged) in forgeries.iter().enumerate() {
        let path = format!("/forged?{i}");
        let owner_now = owner_of(&cluster, &path).await;
        let other = (owner_now + 1) % 3;
        // On a non-owner: still forwarded to the owner, keyed as http.
        let response = get(
            &cluster.nodes[other],
            &path,
            &[("x-cors-edge-peer", forged)],
        )
        .await;
        assert_eq!(response.status, 200);
        let debug = response.header("x-cors-edge-debug");
        assert_eq!(
            owner_in(&debug),
            Some(cluster.nodes[owner_now].addr.to_string()),
            "{forged:?}: {debug}"
        );
        assert!(debug.contains("key=\"http|"), "{forged:?}: {debug}");
        assert!(!response.has("x-cors-edge-peer"));
    }
    // Sent to the owner: it answers as the owner it is, not "for a peer".
    let response = get(
        &cluster.nodes[owner],
        "/forged",
        &[("x-cors-edge-peer", "wrong https")],
    )
    .await;
    assert_eq!(
        owner_in(&response.header("x-cors-edge-debug")).as_deref(),
        Some("self")
    );
    // A forged marker did not make the non-owner skip its local cache rules: the next plain
    // request there is a local HIT of what the owner answered.
    let first = get(
        &cluster.nodes[other],
        "/forged",
        &[("x-cors-edge-peer", "nope")],
    )
    .await;
    let second = get(&cluster.nodes[other], "/forged", &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(second.cache(), "HIT");
    let fetched = upstream
        .requests()
        .iter()
        .filter(|r| r.path_and_query == "/forged")
        .count();
    assert_eq!(fetched, 1, "one origin fetch for the URL");
    for seen in upstream.requests() {
        assert!(
            seen.header("x-cors-edge-peer").is_none(),
            "the marker reached the upstream"
        );
    }
    let refused = metric(
        &cluster.nodes[other],
        "cors_edge_cluster_peer_requests_total{result=\"refused\"}",
    )
    .await;
    assert!(refused >= 1.0);
}

/// Waits until every node but `except` has applied `count` purges from the stream.
async fn wait_purges_received(cluster: &Cluster, except: usize, count: f64) {
    for (i, node) in cluster.nodes.iter().enumerate() {
        if i == except {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while metric(node, "cors_edge_cluster_purges_received_total").await < count {
            assert!(
                Instant::now() < deadline,
                "node {i} never received purge {count}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Each node has the URL (owner stored, the others a local copy): every node answers HIT.
async fn warm_everywhere(cluster: &Cluster, path: &str) {
    for node in &cluster.nodes {
        let deadline = Instant::now() + Duration::from_secs(20);
        while get(node, path, &[]).await.cache() != "HIT" {
            assert!(
                Instant::now() < deadline,
                "{path} never a HIT on {}",
                node.addr
            );
        }
    }
}

/// The owner first (so the others' MISS is their own local copy gone), then the others.
async fn assert_miss_everywhere(cluster: &Cluster, owner: usize, path: &str, why: &str) {
    let order = [owner, (owner + 1) % 3, (owner + 2) % 3];
    for i in order {
        let response = get(&cluster.nodes[i], path, &[]).await;
        assert_eq!(response.cache(), "MISS", "{why}: {path} on node {i}");
    }
}

/// A purge accepted by one node, and a POST through one node, make the URL a MISS everywhere.
#[tokio::test(flavor = "multi_thread")]
async fn purge_and_unsafe_methods_reach_owner_and_local_copies() {
    let redis = Redis::start();
    let upstream = Upstream::start(|req| {
        Reply::ok(format!("{} {}", req.method, req.path())).header("cache-control", "max-age=300")
    })
    .await;
    let cluster = Cluster::start(3, node_config(&upstream, &redis, "upstream", "60s")).await;
    let owner = owner_of(&cluster, "/p").await;
    let non_owner = (owner + 1) % 3;

    warm_everywhere(&cluster, "/p").await;
    let purge = request_with_body(
        cluster.nodes[non_owner].admin,
        "POST",
        "/purge",
        &[("content-type", "application/json")],
        Bytes::from_static(br#"{"url": "/p"}"#),
    )
    .await;
    assert_eq!(purge.status, 200, "{}", purge.text());
    wait_purges_received(&cluster, non_owner, 1.0).await;
    assert_miss_everywhere(&cluster, owner, "/p", "after a purge").await;

    warm_everywhere(&cluster, "/p").await;
    let before = upstream.hits("/p");
    let post = request_with_body(
        cluster.nodes[non_owner].addr,
        "POST",
        "/p",
        &[("host", HOST)],
        Bytes::from_static(b"x"),
    )
    .await;
    assert_eq!(post.status, 200);
    wait_purges_received(&cluster, non_owner, 2.0).await;
    assert_miss_everywhere(&cluster, owner, "/p", "after a POST").await;
    // The POST and one refetch by the owner; the others fetched from the owner.
    assert_eq!(upstream.hits("/p"), before + 2);
    let seen: HashSet<String> = upstream
        .requests()
        .iter()
        .map(|r| r.method.to_string())
        .collect();
    assert!(seen.contains("POST"));
}
