//! The admin API: bearer auth, refusal of bad purge requests, the `cors-edge purge` client,
//! Prometheus metrics that move with traffic and never carry raw origins or paths, health,
//! readiness driven by upstream health checks, and `/stats`.

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cors_edge_tests::client::request_with_body;
use cors_edge_tests::upstream::RefusingAddr;
use cors_edge_tests::{
    binary_path, request, GatewayConfig, GatewayProcess, Reply, Response, Route, Upstream,
    UpstreamRequest,
};

const APP: &str = "https://app.example.com";
const TOKEN: &str = "secret";

/// Echoes the origin with `Vary: Origin`, answers preflights; cacheable for a minute.
fn cors_api(req: &UpstreamRequest) -> Reply {
    let origin = req.header("origin");
    let mut reply = if req.method == "OPTIONS" {
        Reply::status(204)
            .header("access-control-allow-methods", "GET, PUT")
            .header("access-control-max-age", "600")
    } else {
        Reply::ok("data")
            .header("cache-control", "max-age=60")
            .header("vary", "Origin")
    };
    if let Some(origin) = &origin {
        reply = reply.header("access-control-allow-origin", origin);
    }
    reply
}

async fn admin(
    gateway: &GatewayProcess,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    request_with_body(
        gateway.admin,
        method,
        path,
        headers,
        Bytes::from(body.to_string()),
    )
    .await
}

fn json(response: &Response) -> serde_json::Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {:?} (status {})",
            response.text(),
            response.status
        )
    })
}

/// A JSON error answer: the status, `Content-Type: application/json` and an `error` sentence.
fn assert_json_error(response: &Response, status: u16, what: &str) {
    assert_eq!(response.status, status, "{what}: {}", response.text());
    assert!(
        response
            .header("content-type")
            .starts_with("application/json"),
        "{what}: JSON error"
    );
    let message = json(response)["error"].as_str().map(str::to_string);
    assert!(
        message.is_some_and(|m| !m.is_empty()),
        "{what}: an error sentence in {}",
        response.text()
    );
}

async fn metrics_text(gateway: &GatewayProcess) -> String {
    let response = request(gateway.admin, "GET", "/metrics", &[]).await;
    assert_eq!(response.status, 200);
    response.text()
}

/// The value of the sample `name` whose labels include every pair of `labels`; 0 when absent
/// (a counter not yet incremented has no series). Use [`series`] to require the series.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    series(text, name, labels).unwrap_or(0.0)
}

/// The value of the sample `name` whose labels include every pair of `labels`, None when no
/// such series is exposed.
fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let pairs: Vec<(&str, &str)> = series_labels
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        if labels.iter().all(|wanted| pairs.contains(wanted)) {
            return Some(
                value
                    .parse()
                    .unwrap_or_else(|e| panic!("bad sample {line:?}: {e}")),
            );
        }
    }
    None
}

async fn stats(gateway: &GatewayProcess, headers: &[(&str, &str)]) -> serde_json::Value {
    let response = request(gateway.admin, "GET", "/stats", headers).await;
    assert_eq!(response.status, 200, "{}", response.text());
    json(&response)
}

/// Metrics and stats are counted when a request is logged, just after its response went out:
/// poll until `ready` holds on the /metrics text instead of reading it once.
async fn metrics_when(
    gateway: &GatewayProcess,
    what: &str,
    ready: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = metrics_text(gateway).await;
        if ready(&text) || Instant::now() > deadline {
            assert!(ready(&text), "{what}: not within 5s in\n{text}");
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stats_when(
    gateway: &GatewayProcess,
    what: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let value = stats(gateway, &[]).await;
        if ready(&value) || Instant::now() > deadline {
            assert!(ready(&value), "{what}: not within 5s in {value}");
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within {limit:?}");
}

#[tokio::test]
async fn bearer_token_guards_purge_stats_and_reload_but_not_health_or_metrics() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start_with_env(
        &GatewayConfig::new(upstream.addr).yaml(),
        &[("CORS_EDGE_ADMIN_TOKEN", TOKEN)],
    );
    let purge_body = "{\"all\": true}";

    let missing = admin(&gateway, "POST", "/purge", &[], purge_body).await;
    assert_json_error(&missing, 401, "no Authorization");
    assert!(
        missing.header("www-authenticate").starts_with("Bearer"),
        "401 names the scheme"
    );
    let wrong = admin(
        &gateway,
        "POST",
        "/purge",
        &[("authorization", "Bearer secreT")],
        purge_body,
    )
    .await;
    assert_json_error(&wrong, 403, "wrong token");
    let longer = admin(
        &gateway,
        "POST",
        "/purge",
        &[("authorization", "Bearer secret2")],
        purge_body,
    )
    .await;
    assert_json_error(&longer, 403, "token with a suffix");
    let basic = admin(
        &gateway,
        "POST",
        "/purge",
        &[("authorization", "Basic c2VjcmV0")],
        purge_body,
    )
    .await;
    assert!(
        matches!(basic.status, 401 | 403),
        "another scheme is not a bearer token: {}",
        basic.status
    );
    let right = admin(
        &gateway,
        "POST",
        "/purge",
        &[("authorization", "Bearer secret")],
        purge_body,
    )
    .await;
    assert_eq!(right.status, 200, "{}", right.text());
    assert_eq!(json(&right)["purged"], 0);

    assert_json_error(
        &admin(&gateway, "GET", "/stats", &[], "").await,
        401,
        "stats without token",
    );
    assert_eq!(
        stats(&gateway, &[("authorization", "Bearer secret")]).await["entries"],
        0
    );
    assert_json_error(
        &admin(&gateway, "POST", "/reload", &[], "").await,
        401,
        "reload without token",
    );
    assert_json_error(
        &admin(
            &gateway,
            "POST",
            "/reload",
            &[("authorization", "Bearer nope")],
            "",
        )
        .await,
        403,
        "reload with a wrong token",
    );

    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            request(gateway.admin, "GET", path, &[]).await.status,
            200,
            "{path} stays open"
        );
    }
}

#[tokio::test]
async fn bad_purge_requests_are_refused_with_json_errors() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let cases: &[(&str, &str)] = &[
        ("{\"origin\": ", "invalid JSON"),
        ("[]", "not an object"),
        ("{\"origin\": 7}", "origin is not a string"),
        ("{\"path\": \"/a\"}", "unknown field"),
        (
            "{\"origin\": \"https://a.com\", \"extra\": 1}",
            "unknown field next to a valid one",
        ),
        ("{}", "empty selector"),
        ("{\"soft\": true}", "soft alone selects nothing"),
        ("{\"all\": false}", "all: false selects nothing"),
        (
            "{\"all\": true, \"tag\": \"x\"}",
            "all with another selector",
        ),
        ("{\"origin\": \"  \"}", "blank origin"),
        ("{\"url\": \"a/b\"}", "url not a path"),
        ("{\"prefix\": \"/a?x=1\"}", "prefix with a query"),
        ("", "empty body"),
    ];
    for (body, what) in cases {
        assert_json_error(
            &admin(
                &gateway,
                "POST",
                "/purge",
                &[("content-type", "application/json")],
                body,
            )
            .await,
            400,
            what,
        );
    }
    let huge = format!("{{\"tag\": \"{}\"}}", "x".repeat(65 * 1024));
    assert_json_error(
        &admin(&gateway, "POST", "/purge", &[], &huge).await,
        413,
        "body over 64 KiB",
    );

    let get_purge = admin(&gateway, "GET", "/purge", &[], "").await;
    assert_json_error(&get_purge, 405, "GET /purge");
    assert_eq!(get_purge.header("allow"), "POST");
    let post_metrics = admin(&gateway, "POST", "/metrics", &[], "").await;
    assert_json_error(&post_metrics, 405, "POST /metrics");
    assert!(post_metrics.header("allow").contains("GET"));
    assert_json_error(
        &admin(&gateway, "GET", "/nope", &[], "").await,
        404,
        "unknown path",
    );
    assert_json_error(
        &admin(&gateway, "POST", "/purge/all", &[], "{\"all\": true}").await,
        404,
        "sub-path",
    );

    // The refusals did not purge anything: the gateway still answers a valid purge.
    let ok = admin(&gateway, "POST", "/purge", &[], "{\"all\": true}").await;
    assert_eq!(ok.status, 200);
}

fn run_cli(args: &[&str], token_env: Option<&str>) -> (i32, String, String) {
    let mut command = Command::new(binary_path());
    command
        .arg("purge")
        .args(args)
        .env_remove("CORS_EDGE_ADMIN_TOKEN");
    if let Some(token) = token_env {
        command.env("CORS_EDGE_ADMIN_TOKEN", token);
    }
    let output = command.output().expect("run cors-edge purge");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn purge_command_is_a_client_of_the_admin_api() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start_with_env(
        &GatewayConfig::new(upstream.addr).yaml(),
        &[("CORS_EDGE_ADMIN_TOKEN", TOKEN)],
    );
    for _ in 0..2 {
        request(gateway.addr, "GET", "/a", &[("origin", APP)]).await;
    }
    let base = format!("http://{}", gateway.admin);

    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let base = base.clone();
        move || run_cli(&["--admin", &base, "--origin", APP, "--token", TOKEN], None)
    })
    .await
    .expect("cli task");
    assert_eq!(code, 0, "stderr: {stderr}");
    let answer: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("the admin API's JSON answer");
    assert_eq!(answer["purged"], 1, "{stdout}");
    assert_eq!(
        request(gateway.addr, "GET", "/a", &[("origin", APP)])
            .await
            .cache(),
        "MISS",
        "purged"
    );

    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let base = base.clone();
        move || run_cli(&["--admin", &base, "--all", "--token", "wrong"], None)
    })
    .await
    .expect("cli task");
    assert_eq!(code, 1, "wrong token: stdout {stdout}");
    assert!(
        stderr.contains("403"),
        "says what the admin API answered: {stderr}"
    );

    // The token can come from the environment, like the gateway's own.
    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let base = base.clone();
        move || run_cli(&["--admin", &base, "--url", "/a", "--soft"], Some(TOKEN))
    })
    .await
    .expect("cli task");
    assert_eq!(code, 0, "token from $CORS_EDGE_ADMIN_TOKEN: {stderr}");
    assert!(stdout.contains("\"purged\""), "{stdout}");

    let (code, _, stderr) =
        tokio::task::spawn_blocking(move || run_cli(&["--admin", &base, "--origin", APP], None))
            .await
            .expect("cli task");
    assert_eq!(code, 1, "no token: {stderr}");

    let (code, _, _) =
        tokio::task::spawn_blocking(|| run_cli(&["--admin", "http://127.0.0.1:1"], None))
            .await
            .expect("cli task");
    assert_eq!(code, 2, "no selector is a usage error");
}

#[tokio::test]
async fn request_metrics_move_with_traffic() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let hit = [("route", "api"), ("kind", "simple"), ("cache", "HIT")];
    let miss = [("route", "api"), ("kind", "simple"), ("cache", "MISS")];
    let before = metrics_text(&gateway).await;
    assert_eq!(
        request(gateway.addr, "GET", "/m", &[("origin", APP)])
            .await
            .cache(),
        "MISS"
    );
    assert_eq!(
        request(gateway.addr, "GET", "/m", &[("origin", APP)])
            .await
            .cache(),
        "HIT"
    );
    let duration_count = "cors_edge_request_duration_seconds_count";
    let counted = |text: &str| {
        sample(
            text,
            duration_count,
            &[("route", "api"), ("kind", "simple")],
        ) - sample(
            &before,
            duration_count,
            &[("route", "api"), ("kind", "simple")],
        ) >= 2.0
    };
    let after = metrics_when(&gateway, "both requests counted", counted).await;
    let requests = "cors_edge_requests_total";
    assert_eq!(
        sample(&after, requests, &hit) - sample(&before, requests, &hit),
        1.0,
        "one HIT"
    );
    assert_eq!(
        sample(&after, requests, &miss) - sample(&before, requests, &miss),
        1.0,
        "one MISS"
    );

    // Sub-millisecond buckets: cache hits do not all land in the first bucket.
    let duration = [("route", "api"), ("kind", "simple")];
    let bucket = "cors_edge_request_duration_seconds_bucket";
    for le in ["0.0001", "0.00025", "0.0005", "0.001"] {
        assert!(
            after
                .lines()
                .any(|l| l.starts_with(bucket) && l.contains(&format!("le=\"{le}\""))),
            "a bucket le={le} in\n{after}"
        );
    }
    let count = sample(
        &after,
        "cors_edge_request_duration_seconds_count",
        &duration,
    );
    assert_eq!(
        count
            - sample(
                &before,
                "cors_edge_request_duration_seconds_count",
                &duration
            ),
        2.0
    );
    assert!(
        sample(
            &after,
            "cors_edge_upstream_duration_seconds_count",
            &[("route", "api")]
        ) >= 1.0,
        "the miss"
    );

    // Upstream mode: what the upstream answered, CORS-wise, is counted per route.
    let decision = |d: &'static str| [("route", "api"), ("decision", d)];
    assert_eq!(
        sample(
            &after,
            "cors_edge_cors_decisions_total",
            &decision("upstream_origin")
        ),
        2.0
    );

    let stats = stats_when(&gateway, "hit and miss counted", |s| {
        s["hits"].as_u64().unwrap_or(0) + s["misses"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    assert_eq!(
        (stats["hits"].as_u64(), stats["misses"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn upstream_mode_decisions_count_wildcard_and_ungranted_answers() {
    let upstream = Upstream::start(|req| {
        let reply = Reply::ok("x").header("cache-control", "max-age=60");
        match req.path() {
            "/public" => reply.header("access-control-allow-origin", "*"),
            _ => reply,
        }
    })
    .await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    for _ in 0..2 {
        request(gateway.addr, "GET", "/public", &[("origin", APP)]).await;
    }
    request(gateway.addr, "GET", "/private", &[("origin", APP)]).await;
    request(gateway.addr, "GET", "/private", &[]).await;
    // Decisions are counted in the logging phase, which may end after the client has read its
    // answer: wait for all four, then check how they were counted.
    let count = |text: &str, d: &str| {
        sample(
            text,
            "cors_edge_cors_decisions_total",
            &[("route", "api"), ("decision", d)],
        )
    };
    let text = metrics_when(&gateway, "four decisions counted", |text| {
        ["upstream_wildcard", "upstream_none", "no_origin"]
            .iter()
            .map(|d| count(text, d))
            .sum::<f64>()
            >= 4.0
    })
    .await;
    let decisions = |d: &str| count(&text, d);
    assert_eq!(
        decisions("upstream_wildcard"),
        2.0,
        "the miss and the hit both answered *"
    );
    assert_eq!(decisions("upstream_none"), 1.0);
    assert_eq!(decisions("no_origin"), 1.0);
}

#[tokio::test]
async fn purge_metrics_and_cache_gauges_agree_with_stats() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    for path in ["/a", "/b", "/c"] {
        request(gateway.addr, "GET", path, &[("origin", APP)]).await;
        request(gateway.addr, "GET", path, &[]).await;
    }
    let text = metrics_text(&gateway).await;
    let entries = stats(&gateway, &[]).await["entries"]
        .as_u64()
        .expect("entries");
    assert_eq!(entries, 6);
    assert_eq!(
        sample(&text, "cors_edge_cache_entries", &[]),
        6.0,
        "gauge == /stats entries"
    );
    assert!(sample(&text, "cors_edge_cache_bytes", &[]) > 0.0);

    let purge = |body: &'static str| async {
        json(&admin(&gateway, "POST", "/purge", &[], body).await)["purged"].clone()
    };
    assert_eq!(purge("{\"origin\": \"https://app.example.com\"}").await, 3);
    assert_eq!(
        purge("{\"origin\": \"https://nobody.example.com\"}").await,
        0
    );
    assert_eq!(purge("{\"url\": \"/a\"}").await, 2);
    let text = metrics_text(&gateway).await;
    assert_eq!(
        sample(&text, "cors_edge_purges_total", &[("selector", "origin")]),
        2.0
    );
    assert_eq!(
        sample(&text, "cors_edge_purges_total", &[("selector", "url")]),
        1.0
    );
    assert_eq!(sample(&text, "cors_edge_purged_entries_total", &[]), 5.0);

    // Hard-purged entries are reclaimed in the background; gauge and /stats follow.
    wait_for(
        "purged entries reclaimed",
        Duration::from_secs(5),
        || async {
            let text = metrics_text(&gateway).await;
            let entries = stats(&gateway, &[]).await["entries"].as_u64();
            entries == Some(2) && sample(&text, "cors_edge_cache_entries", &[]) == 2.0
        },
    )
    .await;
}

#[tokio::test]
async fn edge_mode_preflights_and_decisions_are_counted() {
    let upstream = Upstream::start(|_| Reply::ok("x").header("cache-control", "max-age=60")).await;
    let yaml = GatewayConfig::new(upstream.addr)
        .catch_all(
            Route::new("edge-api")
                .cors_edge(&["https://app.example.com"])
                .cors("allow_methods: [GET, PUT]"),
        )
        .yaml();
    let gateway = GatewayProcess::start(&yaml);
    let preflight = |origin: &'static str| {
        let addr = gateway.addr;
        async move {
            request(
                addr,
                "OPTIONS",
                "/x",
                &[("origin", origin), ("access-control-request-method", "PUT")],
            )
            .await
        }
    };
    assert_eq!(preflight(APP).await.status, 204);
    assert_eq!(preflight(APP).await.status, 204);
    assert_eq!(preflight("https://evil.example.net").await.status, 403);
    request(gateway.addr, "GET", "/x", &[("origin", APP)]).await;
    request(
        gateway.addr,
        "GET",
        "/x",
        &[("origin", "https://evil.example.net")],
    )
    .await;

    let route = ("route", "edge-api");
    // Counted when each request is logged, after its answer went out: poll until all five are.
    let text = metrics_when(&gateway, "five requests counted", |text| {
        series(
            text,
            "cors_edge_request_duration_seconds_count",
            &[route, ("kind", "preflight")],
        ) == Some(3.0)
            && series(
                text,
                "cors_edge_request_duration_seconds_count",
                &[route, ("kind", "simple")],
            ) == Some(2.0)
    })
    .await;
    assert_eq!(
        sample(
            &text,
            "cors_edge_preflight_total",
            &[route, ("result", "answered")]
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            "cors_edge_preflight_total",
            &[route, ("result", "denied")]
        ),
        1.0
    );
    let requests = |kind: &str, cache: &str| {
        sample(
            &text,
            "cors_edge_requests_total",
            &[route, ("kind", kind), ("cache", cache)],
        )
    };
    assert_eq!(
        requests("preflight", "HIT"),
        3.0,
        "edge preflights never reach the upstream"
    );
    assert_eq!(
        sample(
            &text,
            "cors_edge_request_duration_seconds_count",
            &[route, ("kind", "preflight")]
        ),
        3.0,
        "preflight latency is recorded"
    );
    let decisions = |d: &str| {
        sample(
            &text,
            "cors_edge_cors_decisions_total",
            &[route, ("decision", d)],
        )
    };
    assert_eq!(decisions("allowed"), 3.0, "two preflights and a GET");
    assert_eq!(decisions("denied_origin"), 2.0, "a preflight and a GET");
    assert_eq!(
        upstream.total(),
        1,
        "only the GET's miss reached the upstream"
    );
}

#[tokio::test]
async fn upstream_mode_preflight_cache_hits_are_counted() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    for _ in 0..3 {
        let answer = request(
            gateway.addr,
            "OPTIONS",
            "/p",
            &[("origin", APP), ("access-control-request-method", "PUT")],
        )
        .await;
        assert_eq!(answer.status, 204);
    }
    let route = ("route", "api");
    let text = metrics_when(&gateway, "three preflights counted", |text| {
        sample(
            text,
            "cors_edge_preflight_total",
            &[route, ("result", "miss")],
        ) + sample(
            text,
            "cors_edge_preflight_total",
            &[route, ("result", "hit")],
        ) >= 3.0
    })
    .await;
    assert_eq!(
        sample(
            &text,
            "cors_edge_preflight_total",
            &[route, ("result", "miss")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "cors_edge_preflight_total",
            &[route, ("result", "hit")]
        ),
        2.0
    );
    let stats = stats_when(&gateway, "preflight hits counted", |s| {
        s["preflight_hits"] == 2
    })
    .await;
    assert_eq!(stats["preflight_hits"], 2);
}

#[tokio::test]
async fn metric_labels_never_carry_origins_paths_or_hosts() {
    let upstream = Upstream::start(|req| {
        let mut reply = cors_api(req);
        if req.path().ends_with("bad") {
            // An ACAO naming an origin without Vary: Origin: an unsafe upstream response.
            reply = Reply::ok("x").header(
                "access-control-allow-origin",
                "https://leakcheck-origin.example",
            );
        }
        reply
    })
    .await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let origin = "https://leakcheck-origin.example";
    for path in ["/leakcheck-path-1", "/leakcheck-path-bad"] {
        request(
            gateway.addr,
            "GET",
            path,
            &[("origin", origin), ("host", "leakcheck-host.example")],
        )
        .await;
        request(
            gateway.addr,
            "OPTIONS",
            path,
            &[("origin", origin), ("access-control-request-method", "PUT")],
        )
        .await;
    }
    admin(
        &gateway,
        "POST",
        "/purge",
        &[],
        &format!("{{\"origin\": \"{origin}\", \"prefix\": \"/leakcheck-path\"}}"),
    )
    .await;
    admin(
        &gateway,
        "POST",
        "/purge",
        &[],
        "{\"tag\": \"leakcheck-tag\"}",
    )
    .await;
    let text = metrics_text(&gateway).await;
    // Every reason's series exists from the start: the bad response moved one of them.
    let unsafe_total: f64 = text
        .lines()
        .filter(|l| l.starts_with("cors_edge_unsafe_upstream_responses_total{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum();
    assert!(unsafe_total >= 1.0, "the bad response was seen");
    for needle in ["leakcheck", "/leakcheck-path", "https://", "127.0.0.1"] {
        assert!(
            !text.contains(needle),
            "{needle:?} appears in /metrics:\n{text}"
        );
    }
    assert_eq!(
        sample(&text, "cors_edge_purges_total", &[("selector", "combined")]),
        1.0
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let healthz = request(gateway.admin, "GET", "/healthz", &[]).await;
    assert_eq!(
        (healthz.status, json(&healthz)["status"].as_str()),
        (200, Some("ok"))
    );
    assert_eq!(
        request(gateway.admin, "HEAD", "/healthz", &[]).await.status,
        200
    );
    let readyz = request(gateway.admin, "GET", "/readyz", &[]).await;
    assert_eq!(readyz.status, 200, "{}", readyz.text());

    // Without a health check, servers are never taken out of rotation: a dead upstream does not
    // make the gateway unready (it answers 502 per request instead).
    upstream.stop();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        request(gateway.admin, "GET", "/readyz", &[]).await.status,
        200
    );
    assert_eq!(request(gateway.addr, "GET", "/x", &[]).await.status, 502);
}

#[tokio::test]
async fn readiness_follows_upstream_health_checks() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    // An HTTP health check: the server stays on its port the whole time (no port is released
    // and bound again) and fails its check by answering 503 on /healthz while `down`.
    let down = Arc::new(AtomicBool::new(false));
    let upstream = {
        let down = down.clone();
        Upstream::start(move |req| {
            if req.path() == "/healthz" {
                let status = if down.load(Ordering::SeqCst) {
                    503
                } else {
                    200
                };
                return Reply::status(status);
            }
            cors_api(req)
        })
        .await
    };
    let gateway = GatewayProcess::start(
        &GatewayConfig::new(upstream.addr)
            .upstream_settings("health_check: { interval: 1s, path: /healthz }")
            .yaml(),
    );
    let ready = |want: u16| {
        let admin = gateway.admin;
        move || async move { request(admin, "GET", "/readyz", &[]).await.status == want }
    };
    assert_eq!(
        request(gateway.admin, "GET", "/readyz", &[]).await.status,
        200
    );

    down.store(true, Ordering::SeqCst);
    wait_for(
        "readyz 503 once every server fails its check",
        Duration::from_secs(10),
        ready(503),
    )
    .await;
    let unready = request(gateway.admin, "GET", "/readyz", &[]).await;
    assert_eq!(json(&unready)["upstreams_down"], serde_json::json!(["api"]));
    // An unready gateway still answers scrapes with its series (an alert on readiness needs
    // the rest of the metrics to diagnose it): the gauges and the traffic counters are there.
    let text = metrics_text(&gateway).await;
    for name in ["cors_edge_cache_entries", "cors_edge_cache_bytes"] {
        assert_eq!(
            series(&text, name, &[]),
            Some(0.0),
            "{name} while unready (nothing was cached):\n{text}"
        );
    }
    assert!(
        series(&text, "cors_edge_requests_total", &[("route", "api")]).is_some(),
        "requests_total for the route while unready:\n{text}"
    );

    down.store(false, Ordering::SeqCst);
    wait_for(
        "readyz 200 once the server passes its check again",
        Duration::from_secs(10),
        ready(200),
    )
    .await;
    assert_eq!(
        request(gateway.addr, "GET", "/x", &[]).await.status,
        200,
        "traffic flows again"
    );
}

#[tokio::test]
async fn a_tcp_health_check_marks_a_refusing_server_down() {
    // The TCP check: one server refuses connections (a port held bound, never listening),
    // the other accepts; only the refusing pool makes the gateway unready.
    let dead = RefusingAddr::new();
    let live = Upstream::start(cors_api).await;
    let yaml = format!(
        "listen: [\"{{listen}}\"]\n\
         admin: {{ listen: \"{{admin}}\" }}\n\
         upstreams:\n  api:\n    servers: [\"{}\"]\n    health_check: {{ interval: 1s }}\n\
         \x20 down:\n    servers: [\"{}\"]\n    health_check: {{ interval: 1s }}\n\
         routes:\n  - name: api\n    upstream: api\n  - name: down\n    match: {{ path_prefix: /down }}\n    upstream: down\n",
        live.addr, dead.addr
    );
    let gateway = GatewayProcess::start(&yaml);
    let admin_addr = gateway.admin;
    wait_for(
        "readyz 503 with the refusing pool",
        Duration::from_secs(10),
        || async move { request(admin_addr, "GET", "/readyz", &[]).await.status == 503 },
    )
    .await;
    let unready = request(gateway.admin, "GET", "/readyz", &[]).await;
    assert_eq!(
        json(&unready)["upstreams_down"],
        serde_json::json!(["down"])
    );
    assert_eq!(request(gateway.addr, "GET", "/x", &[]).await.status, 200);
}

#[tokio::test]
async fn stats_reports_entries_bytes_hits_misses_and_preflight_hits() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let empty = stats(&gateway, &[]).await;
    for field in [
        "entries",
        "bytes",
        "hits",
        "misses",
        "preflight_hits",
        "evictions",
        "active_purges",
    ] {
        assert_eq!(empty[field], 0, "{field} starts at 0 in {empty}");
    }
    for _ in 0..2 {
        request(gateway.addr, "GET", "/s", &[("origin", APP)]).await;
        request(
            gateway.addr,
            "OPTIONS",
            "/s",
            &[("origin", APP), ("access-control-request-method", "PUT")],
        )
        .await;
    }
    let stats = stats_when(&gateway, "four requests counted", |s| {
        s["hits"].as_u64().unwrap_or(0) + s["misses"].as_u64().unwrap_or(0) >= 4
    })
    .await;
    assert_eq!(stats["entries"], 2, "the GET and the preflight: {stats}");
    assert!(stats["bytes"].as_u64().is_some_and(|b| b > 0), "{stats}");
    assert_eq!(stats["hits"], 2, "{stats}");
    assert_eq!(stats["misses"], 2, "{stats}");
    assert_eq!(stats["preflight_hits"], 1, "{stats}");
    admin(&gateway, "POST", "/purge", &[], "{\"all\": true}").await;
    assert_eq!(self::stats(&gateway, &[]).await["active_purges"], 1);
}
