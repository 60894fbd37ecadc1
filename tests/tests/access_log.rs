//! The access log (`log.access`): one line per request with every field, in JSON and text;
//! the file is reopened after a rotation (`POST /reload`, SIGHUP); a writer that cannot keep up
//! drops and counts lines instead of holding up requests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cors_edge_tests::gateway::TempDir;
use cors_edge_tests::tls::TestCert;
use cors_edge_tests::{
    request, GatewayConfig, GatewayProcess, Reply, Route, Upstream, UpstreamRequest,
};
use http_body_util::{BodyExt, Empty};

const APP: &str = "https://app.example.com";
/// `QUEUED_LINES` in crates/gateway/src/access_log: lines that may wait for the writer.
const QUEUED_LINES: usize = 4096;

/// Echoes the origin with `Vary: Origin`; cacheable for a minute. `/unsafe` forgets the
/// `Vary: Origin`; preflights are answered 204.
fn cors_api(req: &UpstreamRequest) -> Reply {
    let mut reply = if req.method == "OPTIONS" {
        Reply::status(204).header("access-control-allow-methods", "GET, PUT")
    } else if req.path() == "/unsafe" {
        Reply::ok("data")
    } else {
        Reply::ok("data")
            .header("cache-control", "max-age=60")
            .header("vary", "Origin")
    };
    if let Some(origin) = req.header("origin") {
        reply = reply.header("access-control-allow-origin", &origin);
    }
    reply
}

/// The file's lines once it has at least `count` of them (the writer is asynchronous).
fn wait_for_lines(path: &Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} lines, expected {count}: {text:?}",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn metric(gateway: &GatewayProcess, name: &str) -> f64 {
    let metrics = request(gateway.admin, "GET", "/metrics", &[]).await.text();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing:\n{metrics}"))
}

fn log_path(dir: &TempDir, name: &str) -> PathBuf {
    dir.0.join(name)
}

#[tokio::test]
async fn a_miss_and_a_hit_are_logged_with_every_field() {
    let upstream = Upstream::start(cors_api).await;
    let dir = TempDir::new("access-json");
    let path = log_path(&dir, "access.log");
    let gateway = GatewayProcess::start(
        &GatewayConfig::new(upstream.addr)
            .access_log(&path, Some("json"))
            .yaml(),
    );
    assert_eq!(
        metric(&gateway, "cors_edge_access_log_dropped_total").await,
        0.0,
        "the drop counter is exported before any traffic"
    );
    for expected in ["MISS", "HIT"] {
        let response = request(gateway.addr, "GET", "/a?x=1", &[("origin", APP)]).await;
        assert_eq!(response.cache(), expected);
    }
    // A hostile Origin stays one JSON string.
    let hostile = r#"https://evil.example","status":500,"x":"\"#;
    request(gateway.addr, "GET", "/a?x=1", &[("origin", hostile)]).await;

    // What the upstream had to be protected from, and a preflight.
    request(gateway.addr, "GET", "/unsafe", &[("origin", APP)]).await;
    let preflight = [("origin", APP), ("access-control-request-method", "PUT")];
    request(gateway.addr, "OPTIONS", "/a?x=1", &preflight).await;

    let lines = wait_for_lines(&path, 5);
    assert_eq!(lines.len(), 5, "one line per request: {lines:?}");
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let fields = [
        "time",
        "client",
        "method",
        "host",
        "path",
        "status",
        "bytes",
        "duration_ms",
        "upstream_ms",
        "route",
        "cache",
        "kind",
        "origin",
        "cors",
        "unsafe",
    ];
    // Lines are written when each request ends, which need not be the order they were sent in.
    let find = |what: &str, wanted: &dyn Fn(&serde_json::Value) -> bool| {
        let found = records
            .iter()
            .filter(|record| wanted(record))
            .collect::<Vec<_>>();
        assert_eq!(found.len(), 1, "one {what} line in {lines:?}");
        found[0]
    };
    let simple = |r: &serde_json::Value| r["method"] == "GET" && r["path"] == "/a?x=1";
    let miss = find("MISS", &|r| {
        simple(r) && r["origin"] == APP && r["cache"] == "MISS"
    });
    let hit = find("HIT", &|r| {
        simple(r) && r["origin"] == APP && r["cache"] == "HIT"
    });
    let hostile_line = find("hostile Origin", &|r| r["origin"] == hostile);
    let unsafe_line = find("/unsafe", &|r| r["path"] == "/unsafe");
    let preflight_line = find("preflight", &|r| r["method"] == "OPTIONS");
    for record in &records {
        let object = record.as_object().expect("an object per line");
        for field in fields {
            assert!(object.contains_key(field), "{field} missing: {record}");
        }
        assert_eq!(object.len(), fields.len(), "{record}");
        let time = record["time"].as_str().unwrap_or_default();
        assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "RFC 3339 UTC: {time}"
        );
        assert_eq!(record["client"], "127.0.0.1");
        let host = record["host"].as_str().unwrap_or_default();
        assert!(host.starts_with("127.0.0.1"), "{record}");
        assert!(record["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
        assert_eq!(record["route"], "api");
    }
    for record in [miss, hit, hostile_line] {
        assert_eq!(record["method"], "GET");
        assert_eq!(record["path"], "/a?x=1");
        assert_eq!(record["status"], 200);
        assert_eq!(record["bytes"], 4, "the body \"data\"");
        assert_eq!(record["kind"], "simple");
    }
    assert_eq!(miss["cors"], "upstream_origin");
    assert_eq!(hit["cors"], "upstream_origin");
    assert_eq!(hostile_line["cors"], "invalid_origin");
    assert!(miss["upstream_ms"].as_f64().is_some(), "{miss}");
    assert!(hit["upstream_ms"].is_null(), "no upstream request: {hit}");
    assert_eq!(miss["unsafe"], serde_json::json!([]));
    assert_eq!(hit["unsafe"], serde_json::json!([]));
    assert_eq!(hostile_line["cache"], "MISS", "another origin's variant");
    assert_eq!(
        hostile_line["unsafe"],
        serde_json::json!(["multiple_acao"]),
        "the upstream echoed an origin with commas in it"
    );
    assert_eq!(
        unsafe_line["unsafe"],
        serde_json::json!(["acao_without_vary"])
    );
    assert_eq!(preflight_line["kind"], "preflight");
    assert_eq!(preflight_line["status"], 204);
    assert_eq!(
        metric(&gateway, "cors_edge_access_log_dropped_total").await,
        0.0
    );
}

#[tokio::test]
async fn the_text_format_is_one_short_line_per_request() {
    let upstream = Upstream::start(cors_api).await;
    let dir = TempDir::new("access-text");
    let path = log_path(&dir, "access.log");
    let gateway = GatewayProcess::start(
        &GatewayConfig::new(upstream.addr)
            .access_log(&path, Some("text"))
            .yaml(),
    );
    request(gateway.addr, "GET", "/t", &[("origin", APP)]).await;
    request(gateway.addr, "GET", "/t", &[]).await;
    let lines = wait_for_lines(&path, 2);
    // Lines are written when each request ends, which need not be the order they were sent in.
    let (with_origin, without): (Vec<&String>, Vec<&String>) =
        lines.iter().partition(|line| line.contains(" origin=\""));
    assert_eq!((with_origin.len(), without.len()), (1, 1), "{lines:?}");
    let host = gateway.addr.to_string();
    let wanted = [
        format!("127.0.0.1 \"GET {host} /t\" 200 4 "),
        " cache=MISS kind=simple route=api upstream_ms=".to_string(),
        format!(" origin=\"{APP}\" cors=upstream_origin unsafe=-"),
    ];
    for part in &wanted {
        assert!(
            with_origin[0].contains(part.as_str()),
            "{part:?} in {with_origin:?}"
        );
    }
    assert!(
        without[0].ends_with(" origin=- cors=no_origin unsafe=-"),
        "{without:?}"
    );
}

/// HTTP/2 has no `Host` field: the host is the `:authority` pseudo-header, and a request that
/// no route takes is logged with it all the same.
#[tokio::test]
async fn an_http2_request_with_no_route_is_logged_with_its_host() {
    let upstream = Upstream::start(cors_api).await;
    let dir = TempDir::new("access-h2");
    let path = log_path(&dir, "access.log");
    let cert = TestCert::localhost();
    let gateway = GatewayProcess::start(
        &GatewayConfig::new(upstream.addr)
            .routes([Route::prefix("api", "/api/")])
            .tls(cert.cert(), cert.key())
            .access_log(&path, Some("json"))
            .yaml(),
    );
    let (mut sender, _connection) = cert.http2(gateway.tls[0]).await;
    let authority = format!("example.test:{}", gateway.tls[0].port());
    let request = http::Request::get(format!("https://{authority}/elsewhere"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("HTTP/2 response");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 404, "no route takes /elsewhere");
    response.into_body().collect().await.expect("body");

    let lines = wait_for_lines(&path, 1);
    assert_eq!(lines.len(), 1, "one line for the one request: {lines:?}");
    let record: serde_json::Value =
        serde_json::from_str(&lines[0]).unwrap_or_else(|e| panic!("{e}: {}", lines[0]));
    assert_eq!(record["path"], "/elsewhere", "{record}");
    assert_eq!(record["status"], 404, "{record}");
    assert_eq!(record["route"], serde_json::Value::Null, "{record}");
    assert_eq!(
        record["host"], authority,
        "the host of an HTTP/2 request is its :authority: {record}"
    );
}

#[tokio::test]
async fn the_file_is_reopened_after_rotation() {
    let upstream = Upstream::start(cors_api).await;
    let dir = TempDir::new("access-rotate");
    let path = log_path(&dir, "access.log");
    let gateway = GatewayProcess::start(
        &GatewayConfig::new(upstream.addr)
            .access_log(&path, None)
            .yaml(),
    );
    request(gateway.addr, "GET", "/first", &[]).await;
    wait_for_lines(&path, 1);

    // logrotate's default: rename, then tell the program to reopen.
    let rotated = log_path(&dir, "access.log.1");
    std::fs::rename(&path, &rotated).expect("rename the log");
    let reload = request(gateway.admin, "POST", "/reload", &[]).await;
    assert_eq!(reload.status, 200, "{}", reload.text());
    request(gateway.addr, "GET", "/second", &[]).await;
    let lines = wait_for_lines(&path, 1);
    assert!(lines[0].contains("\"/second\""), "{lines:?}");
    let old = wait_for_lines(&rotated, 1);
    assert_eq!(
        old.len(),
        1,
        "the rotated file keeps only the earlier line: {old:?}"
    );
    assert!(old[0].contains("\"/first\""));

    // SIGHUP does the same.
    let rotated_again = log_path(&dir, "access.log.2");
    std::fs::rename(&path, &rotated_again).expect("rename the log");
    gateway.signal("HUP");
    // The reopen is asynchronous: wait until the writer has created the new file.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < deadline, "SIGHUP did not reopen the log");
        std::thread::sleep(Duration::from_millis(20));
    }
    request(gateway.addr, "GET", "/third", &[]).await;
    let lines = wait_for_lines(&path, 1);
    assert!(lines[0].contains("\"/third\""), "{lines:?}");
    assert_eq!(wait_for_lines(&rotated_again, 1).len(), 1);
}

#[tokio::test]
async fn a_writer_that_cannot_keep_up_drops_and_counts_instead_of_blocking() {
    let upstream = Upstream::start(cors_api).await;
    let dir = TempDir::new("access-fifo");
    // A FIFO nobody reads: the writer blocks forever opening it.
    let fifo = log_path(&dir, "access.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
    let gateway = GatewayProcess::start(
        &GatewayConfig::new(upstream.addr)
            .access_log(&fifo, None)
            .yaml(),
    );
    let sent = QUEUED_LINES + 200;
    for i in 0..sent {
        let response = request(gateway.addr, "GET", "/busy", &[]).await;
        assert_eq!(response.status, 200, "request {i}");
    }
    // At most the queue and the one line the writer holds are kept; the rest is counted. The
    // last lines are logged after their responses were sent: wait for the count to settle.
    let least = sent - QUEUED_LINES - 1;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut dropped = 0;
    while Instant::now() < deadline {
        dropped = metric(&gateway, "cors_edge_access_log_dropped_total").await as usize;
        if dropped >= least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        dropped >= least && dropped <= sent,
        "dropped {dropped} of {sent}"
    );
}
