//! `cors-edge probe` and `cors-edge loadtest` against the gateway's own TLS listener (a
//! self-signed certificate made per test, trusted with `--cacert`), over HTTP/2 and
//! HTTP/1.1, and `probe --direct` comparing that https edge with its plain-http origin.

use std::process::Command;

use cors_edge_tests::tls::TestCert;
use cors_edge_tests::{
    binary_path, GatewayConfig, GatewayProcess, Reply, Upstream, UpstreamRequest,
};

const ALLOWED: [&str; 2] = ["https://a.example", "https://b.example"];

/// Reflects allowed origins in ACAO but forgets `Vary: Origin` on simple answers; answers
/// preflights with the full Vary. The gateway must key by origin anyway.
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

/// A gateway with a TLS listener on a certificate for `localhost` and `api.test`.
fn start(upstream: &Upstream, cert: &TestCert) -> GatewayProcess {
    let config = GatewayConfig::new(upstream.addr)
        .tls(cert.cert(), cert.key())
        .yaml();
    let gateway = GatewayProcess::start(&config);
    assert!(
        !gateway.tls.is_empty(),
        "the gateway reported no TLS listener"
    );
    gateway
}

/// Runs the binary with `args`; returns the exit code and the JSON it printed.
async fn run(args: Vec<String>) -> (i32, serde_json::Value) {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(binary_path())
            .args(&args)
            .output()
            .expect("run cors-edge")
    })
    .await
    .expect("join");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON on stdout ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), report)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

fn verdict(report: &serde_json::Value, check: &str) -> String {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["id"] == check))
        .and_then(|c| c["verdict"].as_str())
        .unwrap_or_else(|| panic!("no check {check} in {report}"))
        .to_string()
}

#[tokio::test]
async fn probe_over_the_gateways_tls_listener_with_http2_and_http1() {
    let upstream = Upstream::start(forgetful_api).await;
    let cert = TestCert::for_names(&["localhost", "api.test"]);
    let gateway = start(&upstream, &cert);
    let port = gateway.tls[0].port();

    for (flag, protocol) in [("--http2", "HTTP/2"), ("--http1.1", "HTTP/1.1")] {
        // The URL names api.test, which resolves nowhere: --resolve aims it at the
        // gateway, and the certificate is checked against api.test.
        let mut args = strings(&["probe", &format!("https://api.test:{port}/data"), "--json"]);
        args.extend(strings(&[
            "--resolve",
            &format!("api.test:{port}:127.0.0.1"),
            "--cacert",
            &cert.cert(),
            flag,
            "--origin",
            ALLOWED[0],
            "--origin",
            ALLOWED[1],
            "--header",
            "content-type",
        ]));
        let (code, report) = run(args).await;
        assert_eq!(code, 0, "{flag}: {report}");
        assert_eq!(report["connection"]["protocol"], protocol, "{report}");
        let tls = report["connection"]["tls_version"].as_str().unwrap_or("");
        assert!(tls.starts_with("TLSv1."), "{flag}: {tls}");
        assert_eq!(verdict(&report, "requests-completed"), "PASS");
        // The gateway repairs the forgotten Vary: Origin over TLS as well.
        assert_eq!(verdict(&report, "vary-origin"), "PASS");
        assert_eq!(verdict(&report, "cross-origin-acao"), "PASS");
    }
}

#[tokio::test]
async fn loadtest_over_the_gateways_tls_listener_with_http2_and_http1() {
    let upstream = Upstream::start(forgetful_api).await;
    let cert = TestCert::for_names(&["localhost", "api.test"]);
    let gateway = start(&upstream, &cert);
    let url = format!("https://localhost:{}/load", gateway.tls[0].port());
    for (flag, protocol) in [("--http2", "HTTP/2"), ("--http1.1", "HTTP/1.1")] {
        let mut args = strings(&["loadtest", &url, "--json", "--cacert", &cert.cert(), flag]);
        args.extend(strings(&[
            "--origins",
            "2",
            "--paths",
            "4",
            "--requests",
            "600",
            "--concurrency",
            "4",
            "--preflight-share",
            "0.2",
            "--no-origin-share",
            "0.1",
        ]));
        let (code, report) = run(args).await;
        assert_eq!(code, 0, "{flag}: {report}");
        assert_eq!(report["requests"], 600, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        assert_eq!(report["leaks"]["total"], 0, "{report}");
        let connections = report["connections"].as_array().expect("connections");
        assert_eq!(connections.len(), 1, "{report}");
        assert_eq!(connections[0]["protocol"], protocol);
        assert!(
            report["cache"]["hit_ratio"].as_f64().unwrap_or(0.0) > 0.5,
            "{flag}: the cache was not used: {}",
            report["cache"]
        );
    }
}

#[tokio::test]
async fn probe_direct_compares_the_https_edge_with_its_plain_http_origin() {
    let upstream = Upstream::start(forgetful_api).await;
    let cert = TestCert::for_names(&["localhost", "api.test"]);
    let gateway = start(&upstream, &cert);
    let edge = format!("https://localhost:{}/direct", gateway.tls[0].port());
    let origin = format!("http://{}/direct", upstream.addr);
    let mut args = strings(&["probe", &edge, "--json", "--cacert", &cert.cert()]);
    args.extend(strings(&[
        "--direct", &origin, "--origin", ALLOWED[0], "--origin", ALLOWED[1],
    ]));
    let (code, report) = run(args).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(verdict(&report, "origin-forwarded"), "PASS", "{report}");
    assert_eq!(verdict(&report, "edge-rewrites-cors"), "PASS", "{report}");
    let direct = &report["direct"];
    assert!(direct["connection"]["tls_version"].is_null());
    let differences = direct["differences"].as_array().expect("differences");
    // The gateway adds Vary: Origin where the API forgot it, and its cache status.
    assert!(
        differences
            .iter()
            .any(|d| d["field"] == "vary" && d["change"] == "added"),
        "{differences:?}"
    );
    assert!(differences.iter().any(|d| d["field"] == "x-cache"));
    // ...and never touches the API's ACAO.
    assert!(
        !differences
            .iter()
            .any(|d| d["field"] == "access-control-allow-origin"),
        "{differences:?}"
    );
}
