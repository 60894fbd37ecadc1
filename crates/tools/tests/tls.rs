//! Both tools over https against an in-process TLS server (a self-signed certificate per
//! test, HTTP/2 and HTTP/1.1 by ALPN): --cacert, --insecure, --http1.1 / --http2,
//! --resolve and --connect-to, and what fails when trust or names do not match.

mod common;

use common::tls::TestCert;
use common::{loadtest_args, probe_args, start_h2c_api, start_tls_api, ApiBehaviour};
use cors_edge_tools::exit_code;
use cors_edge_tools::loadtest;
use cors_edge_tools::net::Protocol;
use cors_edge_tools::probe::{self, check_id, Verdict};

const A: &str = "https://a.example";
const B: &str = "https://b.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_speaks_http2_by_alpn_and_http1_when_forced() {
    let cert = TestCert::new("probe-alpn");
    let api = start_tls_api(ApiBehaviour::default(), &cert).await;
    let url = format!("https://localhost:{}/items", api.addr.port());

    let args = probe_args(&[&url, "--origin", A, "--origin", B, "--cacert", cert.pem()]);
    let report = probe::execute(&args).await.expect("probe runs");
    assert_eq!(report.overall, Verdict::Pass, "{}", report.render_text());
    let connection = report.connection.as_ref().expect("a connection");
    assert_eq!(connection.protocol, Protocol::Http2);
    assert_eq!(connection.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(report.render_text().contains("HTTP/2 over TLSv1.3"));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
    assert_eq!(json["connection"]["protocol"], "HTTP/2");
    assert_eq!(json["connection"]["tls_version"], "TLSv1.3");
    // The server agrees: every request arrived over HTTP/2.
    let versions = api.counts.versions.lock().expect("lock").clone();
    assert_eq!(versions.into_iter().collect::<Vec<_>>(), ["HTTP/2.0"]);
    assert_eq!(api.counts.total(), report.exchanges.len() as u64);

    let cert1 = TestCert::new("probe-h1");
    let api1 = start_tls_api(ApiBehaviour::default(), &cert1).await;
    let url1 = format!("https://localhost:{}/items", api1.addr.port());
    let args = probe_args(&[&url1, "--origin", A, "--cacert", cert1.pem(), "--http1.1"]);
    let report = probe::execute(&args).await.expect("probe runs");
    assert_eq!(report.overall, Verdict::Pass, "{}", report.render_text());
    assert_eq!(
        report.connection.as_ref().expect("connection").protocol,
        Protocol::Http1
    );
    let versions = api1.counts.versions.lock().expect("lock").clone();
    assert_eq!(versions.into_iter().collect::<Vec<_>>(), ["HTTP/1.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_over_https_http1_and_http2_counts_exactly() {
    let cert = TestCert::new("loadtest");
    for (flag, protocol, seen) in [
        ("--http1.1", Protocol::Http1, "HTTP/1.1"),
        ("--http2", Protocol::Http2, "HTTP/2.0"),
    ] {
        let api = start_tls_api(ApiBehaviour::default(), &cert).await;
        let url = format!("https://localhost:{}/", api.addr.port());
        let args = loadtest_args(&[
            &url,
            "--requests",
            "300",
            "--concurrency",
            "3",
            "--paths",
            "3",
            "--preflight-share",
            "0.3",
            "--cacert",
            cert.pem(),
            flag,
        ]);
        let report = loadtest::execute(&args).await.expect("runs");
        assert_eq!(report.requests, 300, "{flag}: {}", report.render_text());
        assert_eq!(report.errors, 0, "{flag}: {:?}", report.error_examples);
        assert_eq!(report.leaks.total, 0);
        assert_eq!(api.counts.total(), 300);
        assert_eq!(api.counts.options(), report.sent.preflight);
        assert_eq!(report.connections.len(), 1, "{:?}", report.connections);
        assert_eq!(report.connections[0].protocol, protocol);
        assert_eq!(
            report.connections[0].tls_version.as_deref(),
            Some("TLSv1.3")
        );
        let versions = api.counts.versions.lock().expect("lock").clone();
        assert_eq!(versions.into_iter().collect::<Vec<_>>(), [seen], "{flag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_and_connect_to_keep_the_host_name() {
    let cert = TestCert::new("resolve");
    let api = start_tls_api(ApiBehaviour::default(), &cert).await;
    let port = api.addr.port();

    // api.test resolves nowhere; --resolve aims it at the loopback server, and the
    // certificate (issued for api.test) is checked against the URL's host.
    let url = format!("https://api.test:{port}/");
    let resolve = format!("api.test:{port}:127.0.0.1");
    let args = probe_args(&[
        &url,
        "--origin",
        A,
        "--cacert",
        cert.pem(),
        "--resolve",
        &resolve,
    ]);
    let report = probe::execute(&args).await.expect("probe runs");
    assert_eq!(
        verdict(&report, check_id::REQUESTS_COMPLETED),
        Verdict::Pass
    );
    let hosts = api.counts.hosts.lock().expect("lock").clone();
    assert_eq!(
        hosts.into_iter().collect::<Vec<_>>(),
        [format!("api.test:{port}")]
    );

    // --connect-to: the URL says port 443, the connection goes to the test port.
    let connect_to = format!("api.test:443:127.0.0.1:{port}");
    let args = loadtest_args(&[
        "https://api.test/",
        "--requests",
        "20",
        "--concurrency",
        "1",
        "--cacert",
        cert.pem(),
        "--connect-to",
        &connect_to,
        "--http1.1",
    ]);
    let report = loadtest::execute(&args).await.expect("runs");
    assert_eq!(report.responses, 20, "{:?}", report.error_examples);
    assert_eq!(report.connections[0].address, format!("127.0.0.1:{port}"));
    assert!(api.counts.hosts.lock().expect("lock").contains("api.test"));
}

fn verdict(report: &probe::ProbeReport, id: &str) -> Verdict {
    report.check(id).expect("check").verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_or_misnamed_certificates_fail_and_insecure_skips_the_check() {
    let cert = TestCert::new("trust");
    let api = start_tls_api(ApiBehaviour::default(), &cert).await;
    let port = api.addr.port();
    let url = format!("https://localhost:{port}/");

    // The system's roots do not know a self-signed certificate.
    let args = loadtest_args(&[&url, "--requests", "4", "--concurrency", "1"]);
    let report = loadtest::execute(&args).await.expect("a report");
    assert_eq!(
        report.error_kinds.get("tls"),
        Some(&4),
        "{:?}",
        report.error_kinds
    );
    assert_eq!(report.exit_code(), exit_code::FAILED);
    assert_eq!(api.counts.total(), 0);

    // A certificate for localhost/api.test does not cover other.test.
    let resolve = format!("other.test:{port}:127.0.0.1");
    let other = format!("https://other.test:{port}/");
    let args = probe_args(&[
        &other,
        "--origin",
        A,
        "--cacert",
        cert.pem(),
        "--resolve",
        &resolve,
    ]);
    let report = probe::execute(&args).await.expect("a report");
    assert_eq!(
        verdict(&report, check_id::REQUESTS_COMPLETED),
        Verdict::Fail
    );
    assert!(
        report.exchanges.iter().all(|e| e
            .error
            .as_deref()
            .is_some_and(|error| error.contains("TLS"))),
        "{}",
        report.render_text()
    );

    // --insecure: the same misnamed, untrusted server is reached.
    let args = probe_args(&[&other, "--origin", A, "--insecure", "--resolve", &resolve]);
    let report = probe::execute(&args).await.expect("a report");
    assert_eq!(
        verdict(&report, check_id::REQUESTS_COMPLETED),
        Verdict::Pass
    );
    assert!(api.counts.total() > 0);
}

#[tokio::test]
async fn a_cacert_without_certificates_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("cors-edge-tools-cacert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").expect("write");
    let path = not_pem.to_str().expect("utf-8");
    let args = probe_args(&["https://localhost:1/", "--origin", A, "--cacert", path]);
    let err = probe::execute(&args).await.expect_err("no certificate");
    assert_eq!(err.exit_code(), exit_code::FAILED);
    assert!(
        err.to_string().contains("--cacert") && err.to_string().contains("not.pem"),
        "{err}"
    );
    let missing = dir.join("missing.pem");
    let args = loadtest_args(&[
        "https://localhost:1/",
        "--requests",
        "1",
        "--cacert",
        missing.to_str().expect("utf-8"),
    ]);
    let err = loadtest::execute(&args).await.expect_err("missing file");
    assert!(err.to_string().contains("missing.pem"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_without_tls_is_prior_knowledge() {
    let api = start_h2c_api(ApiBehaviour::default()).await;
    let url = api.url("/");
    let args = probe_args(&[&url, "--origin", A, "--http2"]);
    let report = probe::execute(&args).await.expect("probe runs");
    assert_eq!(
        verdict(&report, check_id::REQUESTS_COMPLETED),
        Verdict::Pass
    );
    let connection = report.connection.as_ref().expect("connection");
    assert_eq!(connection.protocol, Protocol::Http2);
    assert_eq!(connection.tls_version, None);
    let args = loadtest_args(&[&url, "--requests", "50", "--concurrency", "2", "--http2"]);
    let report = loadtest::execute(&args).await.expect("runs");
    assert_eq!(report.responses, 50, "{:?}", report.error_examples);
    let versions = api.counts.versions.lock().expect("lock").clone();
    assert_eq!(versions.into_iter().collect::<Vec<_>>(), ["HTTP/2.0"]);

    // Without --http2 a plain URL is HTTP/1.1, which an h2c-only server refuses.
    let args = loadtest_args(&[&url, "--requests", "2", "--concurrency", "1"]);
    let report = loadtest::execute(&args).await.expect("a report");
    assert_eq!(report.errors, 2);
}
