//! What the upstream learns about the client when a miss is fetched through the key's owner:
//! the receiving node sets the forwarding headers for its client (dropping the client's own,
//! as on one node), and the owner keeps them because the request comes from an authenticated
//! peer. So the upstream sees the client's hop, not the owner's, and never a client's forgery.
//!
//! Needs `redis-server` (or its path in `$REDIS_SERVER`).

use cors_edge_tests::cluster::{owner_in, Cluster, NodeConfig, Redis};
use cors_edge_tests::{request, Reply, Upstream};

#[tokio::test]
async fn a_forwarded_miss_carries_the_clients_hop_and_no_forgery() {
    let redis = Redis::start();
    let upstream =
        Upstream::start(|_| Reply::ok("ok").header("cache-control", "max-age=300")).await;
    let cluster = Cluster::start(
        3,
        NodeConfig {
            upstream: upstream.addr,
            redis_url: redis.url(),
            channel: format!("forwarding-{}", std::process::id()),
            cors_mode: "upstream",
            local_ttl: "2s",
        },
    )
    .await;
    let receiving = &cluster.nodes[0];
    let forged = [
        ("host", "api.test"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-port", "6666"),
        ("x-forwarded-proto", "evil"),
    ];
    // The first path node 0 does not own: its miss went through the owner.
    let mut forwarded = None;
    for i in 0..64 {
        let path = format!("/hop/{i}");
        let answer = request(receiving.addr, "GET", &path, &forged).await;
        assert_eq!(answer.status, 200);
        let debug = answer.header("x-cors-edge-debug");
        match owner_in(&debug).as_deref() {
            Some("self") => continue,
            Some(owner) if cluster.index_of(owner).is_some() => {
                forwarded = Some(path);
                break;
            }
            other => panic!("no owner in the debug header ({other:?}): {debug}"),
        }
    }
    let path = forwarded.expect("node 0 owns none of 64 paths");
    let seen = upstream
        .requests()
        .into_iter()
        .find(|r| r.path_and_query == path)
        .expect("the owner fetched the path");
    let header = |name: &str| seen.header(name).unwrap_or_default();
    // The client's hop as node 0 saw it: its listener's port, plain http, the client's address
    // first (then node 0's, appended by the owner).
    assert_eq!(
        header("x-forwarded-port"),
        receiving.addr.port().to_string()
    );
    assert_eq!(header("x-forwarded-proto"), "http");
    assert_eq!(header("x-forwarded-for"), "127.0.0.1, 127.0.0.1");
    let all: String = seen
        .headers
        .iter()
        .map(|(_, v)| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    assert!(
        !all.contains("6.6.6.6") && !all.contains("6666") && !all.contains("evil"),
        "a forged forwarding header reached the upstream: {:?}",
        seen.headers
    );
    assert!(
        seen.header("x-cors-edge-peer").is_none(),
        "the peer marker never reaches the upstream"
    );
}
