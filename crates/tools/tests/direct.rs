//! `probe --direct`: the edge's answers beside the origin's, against deliberately broken
//! proxies and an honest cache, all on loopback.

mod common;

use common::{
    probe_args, start_api, start_broken_proxy, start_cache, ApiBehaviour, CacheBehaviour, Edit,
};
use cors_edge_tools::exit_code;
use cors_edge_tools::probe::{self, check_id, Change, ProbeReport, Verdict};

const A: &str = "https://a.example";
const B: &str = "https://b.example";

async fn probe_through(edge: &str, origin: &str) -> ProbeReport {
    let args = probe_args(&[edge, "--origin", A, "--origin", B, "--direct", origin]);
    probe::execute(&args).await.expect("probe runs")
}

fn verdict(report: &ProbeReport, id: &str) -> Verdict {
    report
        .check(id)
        .unwrap_or_else(|| panic!("no {id}:\n{}", report.render_text()))
        .verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_cache_passes_and_the_origin_saw_every_request_once_more() {
    let api = start_api(ApiBehaviour::default()).await;
    let cache = start_cache(api.addr, CacheBehaviour::HonoursVary).await;
    let report = probe_through(&cache.url("/items"), &api.url("/items")).await;
    assert_eq!(verdict(&report, check_id::ORIGIN_FORWARDED), Verdict::Pass);
    assert_eq!(
        verdict(&report, check_id::EDGE_REWRITES_CORS),
        Verdict::Pass
    );
    assert_eq!(
        report.exit_code(),
        exit_code::OK,
        "{}",
        report.render_text()
    );
    let direct = report.direct.as_ref().expect("direct comparison");
    assert_eq!(direct.exchanges.len(), report.exchanges.len());
    // Only what a cache adds differs: X-Cache everywhere, Age on hits.
    let fields: Vec<&str> = direct
        .differences
        .iter()
        .map(|d| d.field.as_str())
        .collect();
    assert!(
        fields
            .iter()
            .all(|field| ["x-cache", "age"].contains(field)),
        "{fields:?}"
    );
    let text = report.render_text();
    assert!(text.contains("edge vs origin (--direct"), "{text}");
    assert!(text.contains("x-cache"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_that_strips_vary_origin_is_flagged() {
    let api = start_api(ApiBehaviour::default()).await;
    let proxy = start_broken_proxy(api.addr, Edit::StripVaryOrigin).await;
    let report = probe_through(&proxy.url("/items"), &api.url("/items")).await;
    let rewrites = report.check(check_id::EDGE_REWRITES_CORS).expect("check");
    assert_eq!(rewrites.verdict, Verdict::Fail, "{}", report.render_text());
    assert!(
        rewrites.message.contains("stripped"),
        "{}",
        rewrites.message
    );
    let direct = report.direct.as_ref().expect("direct");
    let vary = direct
        .differences
        .iter()
        .find(|d| d.field == "vary")
        .expect("a Vary difference");
    assert_eq!(vary.origin_value.as_deref(), Some("Origin"));
    assert_eq!(vary.change, Change::Stripped);
    // The origin does get Origin through this proxy.
    assert_eq!(verdict(&report, check_id::ORIGIN_FORWARDED), Verdict::Pass);
    assert_eq!(report.exit_code(), exit_code::FAILED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_that_rewrites_acao_is_flagged() {
    let api = start_api(ApiBehaviour::default()).await;
    let proxy = start_broken_proxy(api.addr, Edit::FixedAcao(A)).await;
    let report = probe_through(&proxy.url("/"), &api.url("/")).await;
    let rewrites = report.check(check_id::EDGE_REWRITES_CORS).expect("check");
    assert_eq!(rewrites.verdict, Verdict::Fail, "{}", report.render_text());
    assert!(
        rewrites
            .message
            .contains(&format!("ACAO {B} at the origin, {A} at the edge")),
        "{}",
        rewrites.message
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
    let differences = json["direct"]["differences"].as_array().expect("array");
    assert!(differences
        .iter()
        .any(|d| d["field"] == "access-control-allow-origin"
            && d["change"] == "changed"
            && d["origin_value"] == B
            && d["edge_value"] == A));
    assert!(json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .any(|c| c["id"] == "edge-rewrites-cors" && c["verdict"] == "FAIL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_that_drops_origin_is_caught_by_origin_forwarded() {
    let api = start_api(ApiBehaviour::default()).await;
    let proxy = start_broken_proxy(api.addr, Edit::DropOrigin).await;
    let report = probe_through(&proxy.url("/"), &api.url("/")).await;
    let forwarded = report.check(check_id::ORIGIN_FORWARDED).expect("check");
    assert_eq!(forwarded.verdict, Verdict::Fail, "{}", report.render_text());
    assert!(
        forwarded.message.contains("does not forward Origin"),
        "{}",
        forwarded.message
    );
    // The API never saw an Origin through the proxy: only the direct requests carried one.
    assert!(api.counts.origins().contains(A));
    // The ACAO the origin gives A is missing at the edge: reported as a change (an edge
    // policy may refuse what the origin allows); the failure is origin-forwarded's.
    let rewrites = report.check(check_id::EDGE_REWRITES_CORS).expect("check");
    assert_eq!(rewrites.verdict, Verdict::Warn, "{}", rewrites.message);
    assert!(
        rewrites.message.contains("none at the edge"),
        "{}",
        rewrites.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_direct_there_is_no_comparison_and_an_unreachable_origin_is_reported() {
    let api = start_api(ApiBehaviour::default()).await;
    let args = probe_args(&[&api.url("/"), "--origin", A]);
    let report = probe::execute(&args).await.expect("runs");
    assert!(report.direct.is_none());
    assert!(report.check(check_id::ORIGIN_FORWARDED).is_none());
    assert!(!report.to_json().contains("\"direct\""));

    let closed = common::closed_port();
    let origin = format!("http://{}/", closed.addr);
    let report = probe_through(&api.url("/"), &origin).await;
    assert_eq!(verdict(&report, check_id::ORIGIN_FORWARDED), Verdict::Warn);
    assert_eq!(
        verdict(&report, check_id::EDGE_REWRITES_CORS),
        Verdict::Warn
    );
    let direct = report.direct.as_ref().expect("direct");
    assert!(direct.exchanges.iter().all(|e| e.error.is_some()));
    assert!(report
        .render_text()
        .contains("requests to the origin failed"));
}
