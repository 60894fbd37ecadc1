//! Black-box tests of `probe` against real servers on loopback.

mod common;

use clap::CommandFactory;
use common::{
    closed_port, parse, probe_args, start_api, start_cache, ApiBehaviour, CacheBehaviour, Cli,
};
use cors_edge_tools::exit_code;
use cors_edge_tools::probe::{self, check_id, ProbeReport, RequestKind, Verdict};

const A: &str = "https://a.example";
const B: &str = "https://b.example";

fn verdict(report: &ProbeReport, id: &str) -> Verdict {
    report
        .check(id)
        .unwrap_or_else(|| panic!("check {id} missing:\n{}", report.render_text()))
        .verdict
}

fn assert_no_failures(report: &ProbeReport) {
    let failed: Vec<_> = report
        .checks
        .iter()
        .filter(|check| check.verdict == Verdict::Fail)
        .collect();
    assert!(
        failed.is_empty(),
        "unexpected failures:\n{}",
        report.render_text()
    );
    assert_eq!(report.exit_code(), exit_code::OK);
}

#[test]
fn the_args_compose_into_the_cli() {
    Cli::command().debug_assert();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_api_without_a_cache_passes() {
    let api = start_api(ApiBehaviour::default()).await;
    let args = probe_args(&[
        &api.url("/items"),
        "--origin",
        A,
        "--origin",
        B,
        "--header",
        "authorization",
        "--header",
        "content-type",
    ]);
    let report = probe::execute(&args).await.expect("probe runs");
    assert_no_failures(&report);
    assert_eq!(report.failed, 0);
    for id in [
        check_id::REQUESTS_COMPLETED,
        check_id::ACAO_MATCHES_ORIGIN,
        check_id::CROSS_ORIGIN_ACAO,
        check_id::ACAO_WITHOUT_ORIGIN,
        check_id::VARY_ORIGIN,
        check_id::PREFLIGHT_VARY,
        check_id::WILDCARD_WITH_CREDENTIALS,
        check_id::ALLOW_METHODS,
        check_id::ALLOW_HEADERS,
        check_id::CONSISTENT_ACROSS_TRIES,
    ] {
        assert_eq!(
            verdict(&report, id),
            Verdict::Pass,
            "{id}:\n{}",
            report.render_text()
        );
    }
    assert_eq!(verdict(&report, check_id::ACAO_RETURNED), Verdict::Info);
    assert_eq!(verdict(&report, check_id::CACHE_STATUS), Verdict::Info);
    // ETag is exposed, so there is nothing to warn about.
    assert_eq!(verdict(&report, check_id::EXPOSE_HEADERS), Verdict::Info);
    assert_eq!(report.overall, Verdict::Pass);

    // Twice per origin for GET and preflight, twice without Origin, two preflight
    // variants, then A warms and B asks, for GET and for preflight.
    assert_eq!(report.exchanges.len(), 2 * 4 + 2 + 2 + 4);
    assert_eq!(api.counts.total(), 16);
    let preflight = report
        .exchanges
        .iter()
        .find(|exchange| exchange.kind == RequestKind::Preflight)
        .expect("a preflight");
    assert_eq!(preflight.method, "OPTIONS");
    assert_eq!(preflight.request_method.as_deref(), Some("PUT"));
    assert_eq!(
        preflight.request_headers.as_deref(),
        Some("authorization,content-type")
    );
    assert_eq!(preflight.status, Some(204));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_api_behind_a_cache_that_honours_vary_passes() {
    let api = start_api(ApiBehaviour::default()).await;
    let cache = start_cache(api.addr, CacheBehaviour::HonoursVary).await;
    let args = probe_args(&[&cache.url("/items"), "--origin", A, "--origin", B]);
    let report = probe::execute(&args).await.expect("probe runs");
    assert_no_failures(&report);
    assert_eq!(verdict(&report, check_id::CROSS_ORIGIN_ACAO), Verdict::Pass);

    // The second try of each request came from the cache, and the probe says so.
    let second_get = report
        .exchanges
        .iter()
        .find(|e| e.kind == RequestKind::Simple && e.try_number == 2)
        .expect("second GET");
    assert_eq!(
        second_get.headers.cache_status.as_deref(),
        Some("X-Cache: HIT")
    );
    assert!(second_get.headers.age.is_some());
    let cache_check = report.check(check_id::CACHE_STATUS).expect("cache-status");
    assert!(
        cache_check.message.contains("MISS → HIT"),
        "{}",
        cache_check.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_that_ignores_vary_fails_the_cross_origin_check() {
    let api = start_api(ApiBehaviour::default()).await;
    let cache = start_cache(api.addr, CacheBehaviour::IgnoresVary).await;
    let args = probe_args(&[&cache.url("/items"), "--origin", A, "--origin", B]);
    let report = probe::execute(&args).await.expect("probe runs");

    assert_eq!(report.exit_code(), exit_code::FAILED);
    assert_eq!(report.overall, Verdict::Fail);
    let cross = report.check(check_id::CROSS_ORIGIN_ACAO).expect("check");
    assert_eq!(cross.verdict, Verdict::Fail, "{}", report.render_text());
    assert!(
        cross.message.contains(B) && cross.message.contains(A),
        "{}",
        cross.message
    );
    assert_eq!(
        verdict(&report, check_id::ACAO_MATCHES_ORIGIN),
        Verdict::Fail
    );
    // The GET without Origin got A's cached answer too.
    assert_eq!(
        verdict(&report, check_id::ACAO_WITHOUT_ORIGIN),
        Verdict::Fail
    );

    let asked = report
        .exchanges
        .iter()
        .find(|e| e.kind == RequestKind::AskSimple)
        .expect("B asks after A warmed");
    assert_eq!(asked.origin.as_deref(), Some(B));
    assert_eq!(
        asked.headers.access_control_allow_origin.as_deref(),
        Some(A)
    );
    assert_eq!(asked.headers.cache_status.as_deref(), Some("X-Cache: HIT"));

    let text = report.render_text();
    assert!(text.contains("FAIL  cross-origin-acao"), "{text}");
    assert!(text.contains("overall: FAIL"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_vary_origin_fails() {
    let api = start_api(ApiBehaviour {
        vary: false,
        ..ApiBehaviour::default()
    })
    .await;
    let args = probe_args(&[
        &api.url("/"),
        "--origin",
        A,
        "--origin",
        B,
        "--header",
        "content-type",
    ]);
    let report = probe::execute(&args).await.expect("probe runs");
    assert_eq!(verdict(&report, check_id::VARY_ORIGIN), Verdict::Fail);
    // Nothing is cached here, so no origin actually got another's answer.
    assert_eq!(verdict(&report, check_id::CROSS_ORIGIN_ACAO), Verdict::Pass);
    // The preflight answer echoes the method, yet Vary does not list it.
    assert_eq!(verdict(&report, check_id::PREFLIGHT_VARY), Verdict::Warn);
    assert_eq!(report.exit_code(), exit_code::FAILED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_with_credentials_fails_and_credentials_mode_rejects_the_wildcard() {
    let api = start_api(ApiBehaviour {
        wildcard_with_credentials: true,
        ..ApiBehaviour::default()
    })
    .await;
    let args = probe_args(&[&api.url("/"), "--origin", A, "--credentials"]);
    let report = probe::execute(&args).await.expect("probe runs");
    assert_eq!(
        verdict(&report, check_id::WILDCARD_WITH_CREDENTIALS),
        Verdict::Fail
    );
    assert_eq!(verdict(&report, check_id::CREDENTIALS), Verdict::Fail);
    // One origin: the cross-origin test is explained, not silently passed.
    assert_eq!(verdict(&report, check_id::CROSS_ORIGIN_ACAO), Verdict::Info);
    assert_eq!(report.exit_code(), exit_code::FAILED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_origin_is_not_a_failure() {
    let api = start_api(ApiBehaviour::default()).await;
    let args = probe_args(&[
        &api.url("/"),
        "--origin",
        "https://evil.test",
        "--origin",
        A,
        "--header",
        "authorization",
    ]);
    let report = probe::execute(&args).await.expect("probe runs");
    assert_no_failures(&report);
    let returned = report
        .check(check_id::ACAO_RETURNED)
        .expect("acao-returned");
    assert!(
        returned
            .message
            .contains("https://evil.test: GET none, preflight none"),
        "{}",
        returned.message
    );
    let granted = report
        .check(check_id::ALLOW_HEADERS)
        .expect("allow-headers");
    assert_eq!(granted.verdict, Verdict::Pass);
    assert!(
        granted
            .message
            .contains("refused: https://evil.test answered 403"),
        "{}",
        granted.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrequested_header_is_reported_as_not_granted() {
    // The API allows content-type, authorization and x-requested-with only.
    let api = start_api(ApiBehaviour::default()).await;
    let args = probe_args(&[&api.url("/"), "--origin", A, "--header", "x-custom"]);
    let report = probe::execute(&args).await.expect("probe runs");
    // Refused outright (403), which is the API's right: nothing granted to judge.
    assert_eq!(verdict(&report, check_id::ALLOW_HEADERS), Verdict::Info);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_parses_and_round_trips() {
    let api = start_api(ApiBehaviour::default()).await;
    let cache = start_cache(api.addr, CacheBehaviour::IgnoresVary).await;
    let args = probe_args(&[&cache.url("/x"), "--origin", A, "--origin", B, "--json"]);
    // --json prints the report as JSON, and nothing else.
    let mut printed = Vec::new();
    let code = probe::run_to(args.clone(), &mut printed)
        .await
        .expect("runs");
    assert_eq!(code, exit_code::FAILED);
    let printed: serde_json::Value = serde_json::from_slice(&printed).expect("stdout is JSON");
    assert_eq!(printed["overall"], "FAIL");
    let report = probe::execute(&args).await.expect("probe runs");
    let json = report.to_json();
    let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(value["overall"], "FAIL");
    let checks = value["checks"].as_array().expect("checks array");
    assert!(checks
        .iter()
        .any(|check| check["id"] == check_id::CROSS_ORIGIN_ACAO && check["verdict"] == "FAIL"));
    assert!(value["exchanges"].as_array().is_some_and(|e| !e.is_empty()));
    let parsed: ProbeReport = serde_json::from_str(&json).expect("typed");
    assert_eq!(parsed, report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_returns_the_exit_code() {
    let api = start_api(ApiBehaviour::default()).await;
    let good = probe_args(&[&api.url("/"), "--origin", A, "--origin", B]);
    assert_eq!(probe::run(good).await.expect("runs"), exit_code::OK);

    let cache = start_cache(api.addr, CacheBehaviour::IgnoresVary).await;
    let broken = probe_args(&[&cache.url("/"), "--origin", A, "--origin", B, "--json"]);
    assert_eq!(probe::run(broken).await.expect("runs"), exit_code::FAILED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_fails_the_request_check() {
    let closed = closed_port();
    let addr = closed.addr;
    let args = probe_args(&[&format!("http://{addr}/"), "--origin", A]);
    let report = probe::execute(&args).await.expect("a report, not an error");
    assert_eq!(
        verdict(&report, check_id::REQUESTS_COMPLETED),
        Verdict::Fail
    );
    assert_eq!(report.checks.len(), 1, "nothing else can be judged");
    assert_eq!(report.exit_code(), exit_code::FAILED);
    assert!(report.exchanges.iter().all(|e| e.error.is_some()));
    assert!(report.render_text().contains("ERROR"));
}

#[tokio::test]
async fn bad_arguments_are_usage_errors() {
    // clap rejects a missing --origin with its usage exit code.
    let err = parse(&["probe", "http://127.0.0.1:1/"]).expect_err("needs --origin");
    assert_eq!(err.exit_code(), exit_code::USAGE);

    for argv in [
        ["ftp://127.0.0.1:1/", "--origin", A],
        ["http://127.0.0.1:1/", "--origin", "a.example"],
        ["not a url", "--origin", A],
    ] {
        let args = probe_args(&argv);
        let err = probe::run(args).await.expect_err("usage error");
        assert_eq!(err.exit_code(), exit_code::USAGE, "{argv:?}: {err}");
    }
    let args = probe_args(&[
        "http://127.0.0.1:1/",
        "--origin",
        A,
        "--send-header",
        "Origin: https://x.example",
    ]);
    let err = probe::run(args).await.expect_err("usage error");
    assert_eq!(err.exit_code(), exit_code::USAGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_report_has_a_table_checks_and_a_verdict() {
    let api = start_api(ApiBehaviour::default()).await;
    let cache = start_cache(api.addr, CacheBehaviour::HonoursVary).await;
    let args = probe_args(&[&cache.url("/items"), "--origin", A, "--origin", B]);
    let text = probe::execute(&args).await.expect("runs").render_text();
    let header = text
        .lines()
        .find(|line| line.starts_with('#'))
        .expect("table header");
    for column in [
        "request", "origin", "method", "status", "ACAO", "Vary", "cache", "Age",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(text.contains("\nchecks\n"), "{text}");
    assert!(text.contains("PASS  cross-origin-acao"), "{text}");
    assert!(text.contains("overall: PASS"), "{text}");
}
