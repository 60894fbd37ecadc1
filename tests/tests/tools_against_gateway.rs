//! `cors-edge probe` and `cors-edge loadtest` against the gateway itself, in front of an API
//! that forgets `Vary: Origin`: probing the API directly flags it, probing through the gateway
//! passes, and load through the gateway shows no cross-origin leak.

use std::process::Command;

use cors_edge_tests::{
    binary_path, GatewayConfig, GatewayProcess, Reply, Upstream, UpstreamRequest,
};

const ALLOWED: [&str; 2] = ["https://a.example", "https://b.example"];

/// Echoes allowed origins in ACAO but forgets `Vary: Origin`; answers preflights properly.
fn forgetful_api(req: &UpstreamRequest) -> Reply {
    let origin = req
        .header("origin")
        .filter(|o| ALLOWED.contains(&o.as_str()));
    let mut reply = if req.method == "OPTIONS" {
        Reply::status(204)
            .header("access-control-allow-methods", "GET, PUT")
            .header(
                "access-control-allow-headers",
                "content-type, authorization",
            )
            .header("access-control-max-age", "600")
            .header(
                "vary",
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            )
    } else {
        Reply::ok(format!("made for {}", origin.clone().unwrap_or_default()))
            .header("cache-control", "public, max-age=300")
    };
    if let Some(origin) = origin {
        reply = reply.header("access-control-allow-origin", &origin);
    }
    reply
}

fn gateway_config(upstream: &Upstream) -> String {
    GatewayConfig::new(upstream.addr).yaml()
}

fn probe(url: &str) -> (i32, serde_json::Value) {
    let mut command = Command::new(binary_path());
    command.args([
        "probe",
        url,
        "--json",
        "--method",
        "PUT",
        "--header",
        "content-type",
    ]);
    for origin in ALLOWED {
        command.args(["--origin", origin]);
    }
    let output = command.output().expect("run cors-edge probe");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "probe --json printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    (output.status.code().unwrap_or(-1), report)
}

fn verdict(report: &serde_json::Value, check: &str) -> String {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["id"] == check))
        .map(|c| {
            c["verdict"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_uppercase()
        })
        .unwrap_or_else(|| panic!("no check {check} in {report}"))
}

#[tokio::test]
async fn probe_flags_the_api_and_passes_the_gateway_in_front_of_it() {
    let upstream = Upstream::start(forgetful_api).await;
    let gateway = GatewayProcess::start(&gateway_config(&upstream));

    let direct = format!("http://{}/data", upstream.addr);
    let (code, report) = tokio::task::spawn_blocking(move || probe(&direct))
        .await
        .expect("probe");
    assert_eq!(
        code, 1,
        "probing the API that forgets Vary must fail: {report}"
    );
    assert_eq!(verdict(&report, "vary-origin"), "FAIL");

    let through = format!("http://{}/data", gateway.addr);
    let (code, report) = tokio::task::spawn_blocking(move || probe(&through))
        .await
        .expect("probe");
    assert_eq!(
        code, 0,
        "the gateway must repair the missing Vary: {report}"
    );
    assert_eq!(verdict(&report, "vary-origin"), "PASS");
    assert_eq!(verdict(&report, "cross-origin-acao"), "PASS");
    assert_eq!(verdict(&report, "acao-matches-origin"), "PASS");
}

#[tokio::test]
async fn loadtest_through_the_gateway_sees_hits_and_no_leaks() {
    let upstream = Upstream::start(forgetful_api).await;
    let gateway = GatewayProcess::start(&gateway_config(&upstream));
    let url = format!("http://{}/load", gateway.addr);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(binary_path())
            .args([
                "loadtest",
                &url,
                "--origins",
                "2",
                "--paths",
                "4",
                "--requests",
                "2000",
            ])
            .args([
                "--concurrency",
                "8",
                "--preflight-share",
                "0.2",
                "--no-origin-share",
                "0.1",
                "--json",
            ])
            .output()
            .expect("run cors-edge loadtest")
    })
    .await
    .expect("loadtest");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("loadtest --json");
    assert_eq!(output.status.code(), Some(0), "loadtest failed: {report}");
    assert_eq!(report["requests"].as_u64(), Some(2000), "{report}");
    let leaks = &report["leaks"];
    assert_eq!(
        leaks["total"].as_u64(),
        Some(0),
        "leaks through the gateway: {leaks}"
    );
    assert!(
        report["cache"]["hit_ratio"].as_f64().unwrap_or(0.0) > 0.5,
        "the cache was not used: {report}"
    );
}
