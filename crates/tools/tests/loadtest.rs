//! Black-box tests of `loadtest` against real servers on loopback. They assert what
//! was sent and seen, never how fast.

mod common;

use std::io::Write as _;

use common::{
    closed_port, loadtest_args, parse, start_api, start_cache, start_silent_server, warm,
    ApiBehaviour, CacheBehaviour,
};
use cors_edge_tools::exit_code;
use cors_edge_tools::loadtest::{self, LeakKind, LoadtestReport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_setup_has_no_leaks_and_sends_exactly_the_requested_count() {
    let api = start_api(ApiBehaviour::default()).await;
    let cache = start_cache(api.addr, CacheBehaviour::HonoursVary).await;
    let args = loadtest_args(&[
        &cache.url("/api"),
        "--requests",
        "3000",
        "--concurrency",
        "8",
        "--origins",
        "4",
        "--paths",
        "5",
        "--preflight-share",
        "0.2",
        "--no-origin-share",
        "0.1",
    ]);
    let report = loadtest::execute(&args).await.expect("runs");

    assert_eq!(report.requests, 3000, "{}", report.render_text());
    assert_eq!(report.responses, 3000);
    assert_eq!(report.errors, 0);
    assert_eq!(report.leaks.total, 0, "{}", report.render_text());
    assert!(report.leaks.examples.is_empty());
    assert!(report.passed);
    assert_eq!(report.exit_code(), exit_code::OK);
    // The server agrees on the count.
    assert_eq!(cache.counts.total(), 3000);

    let sent = &report.sent;
    assert_eq!(
        sent.simple_with_origin + sent.simple_without_origin + sent.preflight,
        3000
    );
    assert!(sent.preflight > 0 && sent.simple_without_origin > 0 && sent.simple_with_origin > 0);
    assert_eq!(cache.counts.options(), sent.preflight);

    // There are 5 paths × (4 origins + no Origin) GET variants and 5 × 4 preflight
    // variants; each misses once per connection at worst (concurrent first requests
    // race), and everything else is a hit.
    let misses = report.cache.statuses.get("MISS").copied().unwrap_or(0);
    assert!(
        (1..=(5 * 5 + 5 * 4) * 8).contains(&misses),
        "{:?}",
        report.cache
    );
    assert_eq!(report.cache.hits, 3000 - misses);
    assert!(report.cache.hit_ratio.is_some_and(|ratio| ratio > 0.8));
    assert_eq!(report.cache.without_status, 0);

    // Generated paths went under the URL's path.
    let seen_paths = api.counts.paths.lock().expect("lock").clone();
    assert!(
        seen_paths.iter().all(|path| path.starts_with("/api/p/")),
        "{seen_paths:?}"
    );
    // Requests went to all 5 generated paths, from all 4 generated origins, as seen by
    // the API itself (not as echoed back from the arguments).
    assert_eq!(seen_paths.len(), 5, "{seen_paths:?}");
    let origins: Vec<String> = (1..=4)
        .map(|i| format!("https://o{i}.loadtest.example"))
        .collect();
    assert_eq!(
        cache.counts.origins().into_iter().collect::<Vec<_>>(),
        origins
    );
    // The time series accounts for every request, and so does the histogram.
    assert_eq!(
        report
            .timeline
            .iter()
            .map(|point| point.requests)
            .sum::<u64>(),
        3000
    );
    assert_eq!(
        report
            .latency_histogram
            .iter()
            .map(|bucket| bucket.count)
            .sum::<u64>(),
        3000
    );
    assert_eq!(
        report.timeline.iter().map(|point| point.hits).sum::<u64>(),
        report.cache.hits
    );
    // Plain http: HTTP/1.1 without TLS, one connection per worker.
    assert_eq!(report.connections.len(), 1, "{:?}", report.connections);
    assert_eq!(report.connections[0].tls_version, None);
    assert_eq!(report.connects, 8);

    let latency = report.latency_us.as_ref().expect("latency");
    assert!(latency.p50 <= latency.p90 && latency.p90 <= latency.p99);
    assert!(latency.p99 <= latency.p999 && latency.p999 <= latency.max);
    assert_eq!(report.status.values().sum::<u64>(), 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_that_ignores_vary_leaks_and_fails() {
    let api = start_api(ApiBehaviour::default()).await;
    let cache = start_cache(api.addr, CacheBehaviour::IgnoresVary).await;
    let args = loadtest_args(&[
        &cache.url("/"),
        "--requests",
        "1000",
        "--concurrency",
        "4",
        "--origins",
        "4",
        "--paths",
        "3",
    ]);
    let report = loadtest::execute(&args).await.expect("runs");

    assert_eq!(report.requests, 1000);
    assert!(report.leaks.total > 0, "{}", report.render_text());
    assert!(report.leaks.wrong_origin > 0);
    assert!(!report.passed);
    assert_eq!(report.exit_code(), exit_code::FAILED);
    // Examples are evidence, capped to a few per kind.
    let wrong: Vec<_> = report
        .leaks
        .examples
        .iter()
        .filter(|example| example.kind == LeakKind::WrongOrigin)
        .collect();
    assert!(
        !wrong.is_empty() && wrong.len() <= 3,
        "{:?}",
        report.leaks.examples
    );
    for example in wrong {
        let sent = example.origin_sent.as_deref().expect("origin sent");
        assert_ne!(sent, example.acao_received);
        assert!(example.path.starts_with("/p/"));
        assert_eq!(example.cache_status.as_deref(), Some("HIT"));
    }
    let text = report.render_text();
    assert!(text.contains("LEAKS"), "{text}");
    assert!(text.contains("FAIL"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_leak_kind_is_counted_exactly() {
    let api = start_api(ApiBehaviour::default()).await;
    let cache = start_cache(api.addr, CacheBehaviour::IgnoresVary).await;
    // An origin outside the load test's set warms the only path, so every later
    // response carries its ACAO.
    warm(cache.addr, "/only", "https://warm.example").await;

    let with_origin = loadtest_args(&[
        &cache.url("/only"),
        "--requests",
        "200",
        "--concurrency",
        "4",
    ]);
    let report = loadtest::execute(&with_origin).await.expect("runs");
    assert_eq!(report.leaks.wrong_origin, 200);
    assert_eq!(report.leaks.total, 200);

    let without_origin = loadtest_args(&[
        &cache.url("/only"),
        "--requests",
        "150",
        "--no-origin-share",
        "1.0",
    ]);
    let report = loadtest::execute(&without_origin).await.expect("runs");
    assert_eq!(report.sent.simple_without_origin, 150);
    assert_eq!(report.leaks.acao_without_origin, 150);
    assert_eq!(report.leaks.total, 150);
    let example = report.leaks.examples.first().expect("an example");
    assert_eq!(example.origin_sent, None);
    assert_eq!(example.acao_received, "https://warm.example");

    // An API that reflects the origin but forgets Vary: Origin, with no cache.
    let no_vary = start_api(ApiBehaviour {
        vary: false,
        ..ApiBehaviour::default()
    })
    .await;
    let args = loadtest_args(&[&no_vary.url("/"), "--requests", "100", "--concurrency", "2"]);
    let report = loadtest::execute(&args).await.expect("runs");
    assert_eq!(report.leaks.missing_vary_origin, 100);
    assert_eq!(report.leaks.wrong_origin, 0);
    assert_eq!(report.exit_code(), exit_code::FAILED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_share_one_sends_only_preflights() {
    let api = start_api(ApiBehaviour::default()).await;
    let args = loadtest_args(&[
        &api.url("/"),
        "--requests",
        "400",
        "--preflight-share",
        "1.0",
        "--concurrency",
        "4",
    ]);
    let report = loadtest::execute(&args).await.expect("runs");
    assert_eq!(report.sent.preflight, 400);
    assert_eq!(
        report.sent.simple_with_origin + report.sent.simple_without_origin,
        0
    );
    assert_eq!(api.counts.options(), 400);
    assert_eq!(api.counts.get(), 0);
    // The API grants PUT with content-type and authorization to every generated origin.
    assert_eq!(report.status.get("204"), Some(&400), "{:?}", report.status);
    assert_eq!(report.leaks.total, 0);
    // No cache in front: nothing reports a cache status.
    assert_eq!(report.cache.without_status, 400);
    assert_eq!(report.cache.hit_ratio, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_parses_and_round_trips() {
    let api = start_api(ApiBehaviour::default()).await;
    let args = loadtest_args(&[&api.url("/"), "--requests", "50", "--json"]);
    // What --json prints is the report as JSON and nothing else.
    let mut printed = Vec::new();
    let code = loadtest::run_to(args.clone(), &mut printed)
        .await
        .expect("runs");
    assert_eq!(code, exit_code::OK);
    let printed: serde_json::Value = serde_json::from_slice(&printed).expect("stdout is JSON");
    assert_eq!(printed["requests"], 50);
    let mut text = Vec::new();
    let mut plain = args.clone();
    plain.json = false;
    loadtest::run_to(plain, &mut text).await.expect("runs");
    assert!(serde_json::from_slice::<serde_json::Value>(&text).is_err());
    assert!(String::from_utf8_lossy(&text).starts_with("cors-edge loadtest"));

    let report = loadtest::execute(&args).await.expect("runs");
    let json = report.to_json();
    let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(value["requests"], 50);
    assert_eq!(value["leaks"]["total"], 0);
    assert_eq!(value["passed"], true);
    assert!(value["latency_us"]["p99"].is_u64());
    assert!(value["requests_per_second"].is_f64());
    let parsed: LoadtestReport = serde_json::from_str(&json).expect("typed");
    // Floats need not survive text exactly; what the JSON says must.
    assert_eq!(serde_json::to_value(&parsed).expect("serializes"), value);
    assert_eq!(parsed.requests, report.requests);
    assert_eq!(parsed.leaks, report.leaks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sends_exactly_the_requested_count() {
    let api = start_api(ApiBehaviour::default()).await;
    let args = loadtest_args(&[
        &api.url("/"),
        "--rate",
        "4000",
        "--requests",
        "200",
        "--concurrency",
        "4",
    ]);
    let report = loadtest::execute(&args).await.expect("runs");
    assert_eq!(report.requests, 200);
    assert_eq!(api.counts.total(), 200);
    assert_eq!(report.settings.rate, Some(4000.0));
    assert!(report.latency_us.is_some());
    assert!(report.render_text().contains("open loop"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_bound_stops_the_run() {
    let api = start_api(ApiBehaviour::default()).await;
    let args = loadtest_args(&[&api.url("/"), "--duration", "300ms", "--concurrency", "2"]);
    let report = loadtest::execute(&args).await.expect("runs");
    // The run ended by itself, not before its deadline, and every request it counted
    // reached the server.
    assert!(report.elapsed_seconds >= 0.3, "{}", report.elapsed_seconds);
    assert!(report.requests > 0);
    assert_eq!(report.requests, api.counts.total());
    // 300ms in 50ms points: the series covers the whole run and every request in it.
    let last = report.timeline.last().expect("points");
    assert!((last.end_seconds - report.elapsed_seconds).abs() < 1e-9);
    assert!(report.timeline.len() >= (report.elapsed_seconds / 0.05).floor() as usize);
    assert_eq!(
        report
            .timeline
            .iter()
            .map(|point| point.requests)
            .sum::<u64>(),
        report.requests
    );

    // Open loop with a duration: the schedule ends at the deadline.
    let args = loadtest_args(&[&api.url("/"), "--duration", "200ms", "--rate", "500"]);
    let report = loadtest::execute(&args).await.expect("runs");
    assert!(
        report.requests > 0 && report.requests <= 100,
        "{}",
        report.requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_close_connections_cost_reconnects_not_errors() {
    let api = start_api(ApiBehaviour {
        close_connections: true,
        ..ApiBehaviour::default()
    })
    .await;
    let args = loadtest_args(&[&api.url("/"), "--requests", "300", "--concurrency", "3"]);
    let report = loadtest::execute(&args).await.expect("runs");
    assert_eq!(report.errors, 0, "{:?}", report.error_examples);
    assert_eq!(report.responses, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_counts_errors_and_fails() {
    let closed = closed_port();
    let addr = closed.addr;
    let args = loadtest_args(&[
        &format!("http://{addr}/"),
        "--requests",
        "20",
        "--concurrency",
        "2",
    ]);
    let report = loadtest::execute(&args)
        .await
        .expect("a report, not an error");
    assert_eq!(report.requests, 20);
    assert_eq!(report.errors, 20);
    assert_eq!(report.error_kinds.get("connect"), Some(&20));
    assert!(!report.error_examples.is_empty());
    assert_eq!(report.latency_us, None);
    assert_eq!(report.exit_code(), exit_code::FAILED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_costs_timeouts_and_the_run_still_ends() {
    let silent = start_silent_server().await;
    let args = loadtest_args(&[
        &format!("http://{}/", silent.addr),
        "--requests",
        "4",
        "--concurrency",
        "2",
        "--timeout",
        "200ms",
    ]);
    let report = loadtest::execute(&args).await.expect("a report");
    assert_eq!(report.requests, 4);
    assert_eq!(report.error_kinds.get("timeout"), Some(&4));
    assert_eq!(report.exit_code(), exit_code::FAILED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_and_paths_come_from_files_and_headers_are_sent() {
    let api = start_api(ApiBehaviour::default()).await;
    let dir = std::env::temp_dir().join(format!("cors-edge-tools-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let origins = dir.join("origins.txt");
    let mut file = std::fs::File::create(&origins).expect("create");
    writeln!(
        file,
        "# allowed by the test API\nhttps://x.example\n\nhttps://y.example"
    )
    .expect("write");
    let paths = dir.join("paths.txt");
    std::fs::write(&paths, "/users\nitems/1\n").expect("write");

    let args = loadtest_args(&[
        &api.url("/v1"),
        "--origins-file",
        origins.to_str().expect("utf-8"),
        "--path-list",
        paths.to_str().expect("utf-8"),
        "--requests",
        "100",
        "--header",
        "Host: api.example.com",
        "--header",
        "X-Test: 1",
    ]);
    let report = loadtest::execute(&args).await.expect("runs");
    assert_eq!(report.settings.origins, 2);
    assert_eq!(report.settings.paths, 2);
    assert_eq!(report.leaks.total, 0);
    let seen_paths = api.counts.paths.lock().expect("lock").clone();
    assert_eq!(
        seen_paths.into_iter().collect::<Vec<_>>(),
        ["/v1/items/1", "/v1/users"]
    );
    let hosts = api.counts.hosts.lock().expect("lock").clone();
    assert_eq!(hosts.into_iter().collect::<Vec<_>>(), ["api.example.com"]);

    // A bad line is bad input (exit 1) naming the file and the line.
    std::fs::write(&origins, "https://x.example\nnot-an-origin\n").expect("write");
    let err = loadtest::execute(&args).await.expect_err("bad origin line");
    assert_eq!(err.exit_code(), exit_code::FAILED);
    let message = err.to_string();
    assert!(
        message.contains("origins.txt") && message.contains("line 2"),
        "{message}"
    );

    let missing = loadtest_args(&[&api.url("/"), "--path-list", "/nonexistent/paths.txt"]);
    let err = loadtest::execute(&missing).await.expect_err("missing file");
    assert_eq!(err.exit_code(), exit_code::FAILED);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn bad_arguments_are_usage_errors() {
    // Caught by clap while parsing: exit 2 as the binary will report it.
    for argv in [
        vec![
            "loadtest",
            "http://127.0.0.1:1/",
            "--preflight-share",
            "1.5",
        ],
        vec![
            "loadtest",
            "http://127.0.0.1:1/",
            "--no-origin-share",
            "-0.1",
        ],
        vec![
            "loadtest",
            "http://127.0.0.1:1/",
            "--duration",
            "10 parsecs",
        ],
        // Durations take the config's units; a bare number is refused there too.
        vec!["loadtest", "http://127.0.0.1:1/", "--duration", "10"],
        vec!["loadtest", "http://127.0.0.1:1/", "--resolve", "h:80"],
        vec!["loadtest", "http://127.0.0.1:1/", "--http1.1", "--http2"],
        vec!["loadtest", "http://127.0.0.1:1/", "--connect-to", "a:b:c"],
        vec!["loadtest", "http://127.0.0.1:1/", "--rate", "0"],
        vec!["loadtest", "http://127.0.0.1:1/", "--header", "no colon"],
        vec![
            "loadtest",
            "http://127.0.0.1:1/",
            "--paths",
            "3",
            "--path-list",
            "f",
        ],
        vec![
            "loadtest",
            "http://127.0.0.1:1/",
            "--origins",
            "3",
            "--origins-file",
            "f",
        ],
        vec!["loadtest"],
    ] {
        let err = parse(&argv).expect_err("clap rejects");
        assert_eq!(err.exit_code(), exit_code::USAGE, "{argv:?}");
    }

    // Caught before anything is sent: a usage error (exit 2) with a clear sentence.
    for (argv, expected) in [
        (vec!["http://127.0.0.1:1/", "--duration", "0s"], "unbounded"),
        (vec!["http://127.0.0.1:1/", "--requests", "0"], "--requests"),
        (
            vec!["http://127.0.0.1:1/", "--concurrency", "0"],
            "--concurrency",
        ),
        (vec!["http://127.0.0.1:1/", "--origins", "0"], "--origins"),
        (vec!["http://127.0.0.1:1/", "--paths", "0"], "--paths"),
        (
            vec![
                "http://127.0.0.1:1/",
                "--preflight-share",
                "0.6",
                "--no-origin-share",
                "0.6",
            ],
            "more than 1.0",
        ),
        (vec!["ftp://127.0.0.1:1/"], "http:// or https://"),
        (
            vec![
                "http://127.0.0.1:1/",
                "--header",
                "Origin: https://x.example",
            ],
            "sets this header itself",
        ),
        (vec!["127.0.0.1:1"], "http://"),
    ] {
        let args = loadtest_args(&argv);
        let err = loadtest::run(args).await.expect_err("usage error");
        assert_eq!(err.exit_code(), exit_code::USAGE, "{argv:?}: {err}");
        assert!(err.to_string().contains(expected), "{argv:?}: {err}");
    }

    // A share given directly (not through clap) is validated too.
    let mut args = loadtest_args(&["http://127.0.0.1:1/", "--requests", "1"]);
    args.preflight_share = 1.5;
    let err = loadtest::execute(&args).await.expect_err("share > 1");
    assert_eq!(err.exit_code(), exit_code::USAGE);
}
