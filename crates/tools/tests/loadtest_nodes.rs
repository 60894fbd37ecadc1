//! `loadtest` against a cluster: connections spread over several `--connect-to` rules.

mod common;

use common::{loadtest_args, start_api, start_cache, ApiBehaviour, CacheBehaviour};
use cors_edge_tools::loadtest;

/// Several `--connect-to` rules for the URL's host: the connections are spread over them (the
/// nodes of a cluster) and the report has each node's share and hit ratio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_rules_spread_connections_over_nodes() {
    let api = start_api(ApiBehaviour::default()).await;
    let first = start_cache(api.addr, CacheBehaviour::HonoursVary).await;
    let second = start_cache(api.addr, CacheBehaviour::HonoursVary).await;
    let rule = |addr: std::net::SocketAddr| format!("edge.test:80:{}:{}", addr.ip(), addr.port());
    let (rule_one, rule_two) = (rule(first.addr), rule(second.addr));
    let args = loadtest_args(&[
        "http://edge.test/api",
        "--requests",
        "400",
        "--concurrency",
        "4",
        "--connect-to",
        &rule_one,
        "--connect-to",
        &rule_two,
    ]);
    let report = loadtest::execute(&args).await.expect("runs");
    assert_eq!(report.responses, 400, "{}", report.render_text());
    assert_eq!(report.nodes.len(), 2);
    assert_eq!(report.nodes[0].address, first.addr.to_string());
    assert_eq!(report.nodes[1].address, second.addr.to_string());
    let served: u64 = report.nodes.iter().map(|n| n.responses).sum();
    assert_eq!(served, 400);
    assert!(first.counts.total() > 0 && second.counts.total() > 0);
    assert_eq!(first.counts.total(), report.nodes[0].responses);
    for node in &report.nodes {
        assert!(node.cache.hit_ratio.is_some(), "{}", report.render_text());
    }
    assert!(report
        .render_text()
        .contains(&format!("node       {}", first.addr)));
    // One rule: no per-node section.
    let single = loadtest_args(&[
        "http://edge.test/api",
        "--requests",
        "10",
        "--connect-to",
        &rule_one,
    ]);
    assert!(loadtest::execute(&single)
        .await
        .expect("runs")
        .nodes
        .is_empty());
}
