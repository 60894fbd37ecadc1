//! What the upstream learns about the client when a miss is fetched through the key's owner:
//! the receiving node sets the forwarding headers for its client (dropping the client's own,
//! as on one node), and the owner keeps them because the request comes from an authenticated
//! peer. So the upstream sees the client's hop, not the owner's, and never a client's forgery.
//!
//! Needs `redis-server` (or its path in `$REDIS_SERVER`).

use bytes::Bytes;
use cors_edge_tests::cluster::{owner_in, Cluster, NodeConfig, Redis};
use cors_edge_tests::tls::TestCert;
use cors_edge_tests::{request, Reply, Upstream};
use http_body_util::{BodyExt, Empty};

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
            tls: None,
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

/// An HTTP/2 request over TLS whose key another node owns: it is forwarded (over the peers'
/// plain HTTP/1 hop) and cached on the owner as an https answer, which a plain-http request for
/// the same host and path never gets; the upstream sees the client's https hop.
#[tokio::test]
async fn an_https_http2_miss_through_the_owner_stays_an_https_entry() {
    let redis = Redis::start();
    let upstream =
        Upstream::start(|_| Reply::ok("ok").header("cache-control", "max-age=300")).await;
    let cert = TestCert::localhost();
    let cluster = Cluster::start(
        3,
        NodeConfig {
            upstream: upstream.addr,
            redis_url: redis.url(),
            channel: format!("forwarding-tls-{}", std::process::id()),
            cors_mode: "upstream",
            local_ttl: "0s",
            tls: Some((cert.cert(), cert.key())),
        },
    )
    .await;
    let receiving = &cluster.nodes[0];
    let (mut sender, _connection) = cert.http2(receiving.tls[0]).await;
    let authority = format!("localhost:{}", receiving.tls[0].port());
    let mut h2_get = move |path: String| {
        let request = http::Request::get(format!("https://{authority}{path}"))
            .body(Empty::<Bytes>::new())
            .expect("request");
        let sent = sender.send_request(request);
        async move {
            let response = sent.await.expect("HTTP/2 response");
            assert_eq!(response.version(), http::Version::HTTP_2);
            assert_eq!(response.status(), 200);
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .unwrap_or_default()
            };
            let debug = header("x-cors-edge-debug");
            response.into_body().collect().await.expect("body");
            debug
        }
    };
    // The first path node 0 does not own.
    let mut forwarded = None;
    for i in 0..64 {
        let path = format!("/tls-hop/{i}");
        let debug = h2_get(path.clone()).await;
        assert!(
            debug.contains("key=\"https|"),
            "keyed as https on the receiving node: {debug}"
        );
        match owner_in(&debug).as_deref() {
            Some("self") => continue,
            Some(owner) => {
                let owner = cluster.index_of(owner).expect("the owner is a node");
                forwarded = Some((path, owner));
                break;
            }
            None => panic!("no owner in the debug header: {debug}"),
        }
    }
    let (path, owner) = forwarded.expect("node 0 owns none of 64 paths");
    let fetched = || {
        upstream
            .requests()
            .into_iter()
            .filter(|r| r.path_and_query == path)
            .collect::<Vec<_>>()
    };
    let seen = fetched();
    assert_eq!(seen.len(), 1, "one fetch, by the owner");
    assert_eq!(
        seen[0].header("x-forwarded-proto").unwrap_or_default(),
        "https",
        "the upstream sees the client's https hop, not the peers' plain one"
    );

    // Again over HTTP/2 through node 0 (no local copy: local_ttl 0s): the owner answers from
    // its https entry, without a second fetch.
    h2_get(path.clone()).await;
    assert_eq!(fetched().len(), 1, "the owner served its https entry");

    // Plain http to the owner for the same host and path: another key, never the https entry.
    let host = format!("localhost:{}", receiving.tls[0].port());
    let plain = request(
        cluster.nodes[owner].addr,
        "GET",
        &path,
        &[("host", host.as_str())],
    )
    .await;
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("x-cache"),
        "MISS",
        "a plain-http request never gets the https entry"
    );
    assert_eq!(fetched().len(), 2);
}
