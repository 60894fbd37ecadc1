//! README claims that had no black-box test: several `Origin` lines get nothing; a reload
//! swaps CORS policies and says what needs a restart; how unsafe upstream CORS answers
//! (`acao_other_origin`, `multiple_acao`, `acao_without_request_origin`) are stored, answered and
//! counted; an origin purge spares the `ACAO: *` entries shared by every origin; `cors-edge demo`
//! starts, answers the README's curl lines and stops.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cors_edge_tests::client::request_with_body;
use cors_edge_tests::gateway::TempDir;
use cors_edge_tests::{
    binary_path, request, GatewayConfig, GatewayProcess, Reply, Response, Route, Upstream,
};

const A: &str = "https://a.example";
const B: &str = "https://b.example";

/// An upstream-mode route `/up/` and an edge-mode route `/edge/` allowing `edge_origins`.
fn config(upstream: SocketAddr, edge_origins: &[&str]) -> GatewayConfig {
    GatewayConfig::new(upstream).routes([
        Route::prefix("up", "/up/"),
        Route::prefix("edge", "/edge/").cors_edge(edge_origins),
    ])
}

/// What the tests' API answers, by path: `/up/echo` echoes the origin with `Vary: Origin`,
/// `/up/star` is `ACAO: *` for everyone, `/up/other` names another origin, `/up/multi` has two
/// ACAO lines, `/up/noorigin` names an origin whatever the request said.
fn api(req: &cors_edge_tests::UpstreamRequest) -> Reply {
    let origin = req.header("origin");
    let reply = Reply::ok(format!(
        "{} for {}",
        req.path(),
        origin.as_deref().unwrap_or("none")
    ))
    .header("cache-control", "max-age=60");
    match req.path() {
        "/up/echo" => match origin {
            Some(o) => reply
                .header("access-control-allow-origin", &o)
                .header("vary", "Origin"),
            None => reply.header("vary", "Origin"),
        },
        "/up/star" => reply.header("access-control-allow-origin", "*"),
        "/up/other" => reply
            .header("access-control-allow-origin", "https://other.example")
            .header("vary", "Origin"),
        "/up/multi" => reply
            .header("access-control-allow-origin", A)
            .header("access-control-allow-origin", B)
            .header("vary", "Origin"),
        "/up/noorigin" => reply
            .header("access-control-allow-origin", A)
            .header("vary", "Origin"),
        _ => reply,
    }
}

async fn get(gateway: &GatewayProcess, path: &str, origins: &[&str]) -> Response {
    let headers: Vec<(&str, &str)> = origins.iter().map(|o| ("origin", *o)).collect();
    request(gateway.addr, "GET", path, &headers).await
}

async fn admin_post(gateway: &GatewayProcess, path: &str, body: &str) -> serde_json::Value {
    let answer = request_with_body(
        gateway.admin,
        "POST",
        path,
        &[],
        Bytes::from(body.to_string()),
    )
    .await;
    assert_eq!(answer.status, 200, "{path} {body}: {}", answer.text());
    serde_json::from_slice(&answer.body).expect("JSON answer")
}

/// The value of `name{reason="..."}` in /metrics, 0 when the series is absent.
async fn unsafe_count(gateway: &GatewayProcess, reason: &str) -> f64 {
    let text = request(gateway.admin, "GET", "/metrics", &[]).await.text();
    let wanted = format!("cors_edge_unsafe_upstream_responses_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&wanted)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Polls until the counter reaches `want` (counted when the request is logged, just after its
/// answer went out), at most 5 s.
async fn unsafe_count_reaches(gateway: &GatewayProcess, reason: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = unsafe_count(gateway, reason).await;
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline && now < want,
            "unsafe_upstream_responses_total{{reason={reason}}} is {now}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `path` with each origin alone (allowed: ACAO) and then with several `Origin` lines
/// (an invalid request: no CORS headers at all).
async fn several_origin_lines_get_nothing_on(path: &str) {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr, &[A, B]).yaml());
    // Each line alone is allowed; together they are an invalid request.
    for origin in [A, B] {
        let one = get(&gateway, path, &[origin]).await;
        assert_eq!(one.header("access-control-allow-origin"), origin, "{path}");
    }
    for lines in [[A, B], [B, A], [A, A]] {
        let both = get(&gateway, path, &lines).await;
        assert!(
            !both.has("access-control-allow-origin")
                && !both.has("access-control-allow-credentials"),
            "{path} with Origin lines {lines:?} got CORS headers: {:?}",
            both.headers
        );
    }
}

#[tokio::test]
async fn several_origin_lines_get_nothing_in_edge_mode() {
    several_origin_lines_get_nothing_on("/edge/x").await;
}

#[tokio::test]
async fn several_origin_lines_get_nothing_in_upstream_mode() {
    several_origin_lines_get_nothing_on("/up/echo").await;
}

#[tokio::test]
async fn reload_swaps_cors_policies_and_says_what_needs_a_restart() {
    let upstream = Upstream::start(api).await;
    let before = config(upstream.addr, &[A]).cache("max_bytes: 64MiB").yaml();
    let gateway = GatewayProcess::start(&before);
    assert_eq!(
        get(&gateway, "/edge/x", &[A])
            .await
            .header("access-control-allow-origin"),
        A
    );
    assert!(!get(&gateway, "/edge/x", &[B])
        .await
        .has("access-control-allow-origin"));

    // Only the policy changes: nothing needs a restart.
    gateway.rewrite_config(&config(upstream.addr, &[B]).cache("max_bytes: 64MiB").yaml());
    let answer = admin_post(&gateway, "/reload", "").await;
    assert_eq!(answer["reloaded"], true, "{answer}");
    assert_eq!(answer["restart_needed"], serde_json::json!([]), "{answer}");
    let b = get(&gateway, "/edge/x", &[B]).await;
    assert_eq!(
        (b.header("access-control-allow-origin"), b.cache()),
        (B.to_string(), "HIT".to_string()),
        "the new policy applies to the cached body at once"
    );
    assert!(!get(&gateway, "/edge/x", &[A])
        .await
        .has("access-control-allow-origin"));

    // Settings that need new sockets or a new store are named, and the rest still applies.
    gateway.rewrite_config(
        &config(upstream.addr, &[A, B])
            .cache("max_bytes: 128MiB")
            .yaml(),
    );
    let answer = admin_post(&gateway, "/reload", "").await;
    assert_eq!(
        answer["restart_needed"],
        serde_json::json!(["cache.max_bytes"]),
        "{answer}"
    );
    for origin in [A, B] {
        assert_eq!(
            get(&gateway, "/edge/x", &[origin])
                .await
                .header("access-control-allow-origin"),
            origin
        );
    }
}

#[tokio::test]
async fn unsafe_upstream_answers_are_stored_per_origin_answered_as_sent_and_counted() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr, &[A]).yaml());
    // (path, what the upstream's ACAO is, reason)
    for (path, acao, reason) in [
        ("/up/other", "https://other.example", "acao_other_origin"),
        (
            "/up/multi",
            "https://a.example, https://b.example",
            "multiple_acao",
        ),
    ] {
        let first = get(&gateway, path, &[A]).await;
        assert_eq!(
            (
                first.cache().as_str(),
                first.header("access-control-allow-origin").as_str()
            ),
            ("MISS", acao),
            "{path}: the upstream's answer goes out as it was (the browser judges it)"
        );
        unsafe_count_reaches(&gateway, reason, 1.0).await;
        let again = get(&gateway, path, &[A]).await;
        assert_eq!(
            (again.cache().as_str(), again.text()),
            ("HIT", format!("{path} for {A}")),
            "{path}: stored as A's variant"
        );
        let other = get(&gateway, path, &[B]).await;
        assert_eq!(
            (other.cache().as_str(), other.text()),
            ("MISS", format!("{path} for {B}")),
            "{path}: B never gets the copy made for A"
        );
        assert_eq!(upstream.hits(path), 2, "{path}");
        assert!(other.varies_on("origin"), "{path}: Vary: Origin downstream");
    }

    // An ACAO naming an origin in answer to a request without Origin: stored as the
    // no-Origin variant, never handed to a request from that origin.
    let none = get(&gateway, "/up/noorigin", &[]).await;
    assert_eq!(
        (
            none.cache().as_str(),
            none.header("access-control-allow-origin").as_str()
        ),
        ("MISS", A)
    );
    unsafe_count_reaches(&gateway, "acao_without_request_origin", 1.0).await;
    assert_eq!(get(&gateway, "/up/noorigin", &[]).await.cache(), "HIT");
    let from_a = get(&gateway, "/up/noorigin", &[A]).await;
    assert_eq!(
        (from_a.cache().as_str(), from_a.text()),
        ("MISS", format!("/up/noorigin for {A}")),
        "the no-Origin copy is not A's"
    );
    assert_eq!(upstream.hits("/up/noorigin"), 2);
}

#[tokio::test]
async fn an_origin_purge_spares_the_entries_shared_by_every_origin() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr, &[A]).yaml());
    for origin in [A, B] {
        get(&gateway, "/up/star", &[origin]).await;
        get(&gateway, "/up/echo", &[origin]).await;
    }
    assert_eq!(
        upstream.hits("/up/star"),
        1,
        "one `*` entry for every origin"
    );
    for origin in [A, B] {
        assert_eq!(get(&gateway, "/up/star", &[origin]).await.cache(), "HIT");
        assert_eq!(get(&gateway, "/up/echo", &[origin]).await.cache(), "HIT");
    }
    let purged = admin_post(&gateway, "/purge", &format!("{{\"origin\": \"{A}\"}}")).await;
    assert_eq!(purged["purged"], 1, "only A's own variant: {purged}");
    assert_eq!(get(&gateway, "/up/echo", &[A]).await.cache(), "MISS");
    assert_eq!(get(&gateway, "/up/echo", &[B]).await.cache(), "HIT");
    for origin in [A, B] {
        let star = get(&gateway, "/up/star", &[origin]).await;
        assert_eq!(
            (
                star.cache().as_str(),
                star.header("access-control-allow-origin").as_str()
            ),
            ("HIT", "*"),
            "the shared `*` entry survived the purge of {A} ({origin})"
        );
    }
    assert_eq!(upstream.hits("/up/star"), 1);
}

/// `cors-edge demo` on port 0 for all three of its listeners, killed on drop.
struct Demo {
    child: std::process::Child,
    gateway: SocketAddr,
    admin: SocketAddr,
    _dir: TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_demo() -> Demo {
    let dir = TempDir::new("demo");
    let ready = dir.0.join("ready.json");
    let mut child = Command::new(binary_path())
        .args([
            "demo",
            "--port",
            "0",
            "--upstream-port",
            "0",
            "--admin-port",
            "0",
        ])
        .arg("--ready-file")
        .arg(&ready)
        .env_remove("CORS_EDGE_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start cors-edge demo");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("cors-edge demo exited with {status}");
        }
        if let Ok(text) = std::fs::read_to_string(&ready) {
            let json: serde_json::Value = serde_json::from_str(&text).expect("ready file JSON");
            assert_eq!(json["pid"], child.id(), "the ready file is this demo's");
            let addr = |v: &serde_json::Value| -> SocketAddr {
                v.as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("not an address: {v} in {text}"))
            };
            let gateway = addr(&json["listen"][0]);
            let admin = addr(&json["admin"]);
            assert!(
                json["demo"].as_array().is_some_and(|d| !d.is_empty()),
                "the demo API's address is reported: {text}"
            );
            return Demo {
                child,
                gateway,
                admin,
                _dir: dir,
            };
        }
        assert!(Instant::now() < deadline, "no ready file within 20 s");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[tokio::test]
async fn demo_starts_answers_the_readme_curl_lines_and_stops() {
    let mut demo = start_demo();
    let get = |origin: &'static str, path: &'static str| {
        let addr = demo.gateway;
        async move { request(addr, "GET", path, &[("origin", origin)]).await }
    };
    const EVIL: &str = "https://evil.example";
    const APP: &str = "https://app.example.com";
    // The README's lines, in order.
    let evil = get(EVIL, "/forgot-vary").await;
    assert_eq!(evil.status, 200);
    assert_eq!(evil.cache(), "MISS");
    assert!(
        !evil.has("access-control-allow-origin"),
        "{:?}",
        evil.headers
    );
    let app = get(APP, "/forgot-vary").await;
    assert_eq!(
        (
            app.cache().as_str(),
            app.header("access-control-allow-origin").as_str()
        ),
        ("MISS", APP),
        "its own variant, ACAO for it"
    );
    let evil_again = get(EVIL, "/forgot-vary").await;
    assert_eq!(evil_again.cache(), "HIT");
    assert!(
        !evil_again.has("access-control-allow-origin"),
        "still no ACAO, never app's"
    );
    let edge = get("http://localhost:5173", "/edge/public").await;
    assert_eq!(edge.status, 200);
    assert_eq!(
        edge.header("access-control-allow-origin"),
        "http://localhost:5173",
        "edge mode: CORS stamped by the gateway"
    );
    let purge = request_with_body(
        demo.admin,
        "POST",
        "/purge",
        &[],
        Bytes::from_static(b"{\"origin\":\"https://app.example.com\"}"),
    )
    .await;
    assert_eq!(purge.status, 200, "{}", purge.text());
    let purged: serde_json::Value = serde_json::from_slice(&purge.body).expect("JSON");
    assert!(
        purged["purged"].as_u64().is_some_and(|n| n >= 1),
        "{purged}"
    );
    assert_eq!(get(APP, "/forgot-vary").await.cache(), "MISS");

    // And it stops on SIGINT.
    let status = Command::new("kill")
        .args(["-INT", &demo.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while demo.child.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "the demo still runs 10 s after SIGINT"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
