//! `GET /cache?<selector>` and `cors-edge inspect`: what the cache holds for a URL, for an
//! origin, with a limit, behind the admin token.

use std::net::SocketAddr;
use std::process::Command;

use cors_edge_tests::{
    binary_path, request, GatewayConfig, GatewayProcess, Reply, Response, Route, Upstream,
    UpstreamRequest,
};
use serde_json::Value;

const TOKEN: &str = "inspect-secret";
const APP: &str = "https://app.example.com";
const OTHER: &str = "https://other.example.com";

/// Echoes the origin with `Vary: Origin`, tags every answer, answers preflights.
fn cors_api(req: &UpstreamRequest) -> Reply {
    let origin = req.header("origin");
    let mut reply = if req.method == "OPTIONS" {
        Reply::status(204)
            .header("access-control-allow-methods", "GET, PUT")
            .header("access-control-max-age", "600")
    } else {
        Reply::ok(format!("{} body", req.path_and_query))
            .header("cache-control", "max-age=300")
            .header("vary", "Origin")
            .header("surrogate-key", "t1 t2")
    };
    if let Some(origin) = &origin {
        reply = reply.header("access-control-allow-origin", origin);
    }
    reply
}

async fn get(addr: SocketAddr, path: &str, origin: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
    let response = request(addr, "GET", path, &headers).await;
    assert_eq!(response.status, 200, "{path}");
    response
}

async fn inspect(gateway: &GatewayProcess, query: &str) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let response = request(
        gateway.admin,
        "GET",
        &format!("/cache?{query}"),
        &[("authorization", &auth)],
    )
    .await;
    let json = serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("{query}: not JSON ({e}): {}", response.text()));
    (response.status, json)
}

fn entries(answer: &Value) -> Vec<Value> {
    answer["variants"].as_array().cloned().unwrap_or_default()
}

fn start(upstream: &Upstream) -> GatewayProcess {
    let config = GatewayConfig::new(upstream.addr)
        .route(
            Route::prefix("shaped", "/shaped/").cache("key_query: { sort: true, ignore: [utm_*] }"),
        )
        .route_cors("mode: upstream")
        .yaml();
    GatewayProcess::start_with_env(&config, &[("CORS_EDGE_ADMIN_TOKEN", TOKEN)])
}

#[tokio::test]
async fn a_url_lists_one_variant_per_origin_with_its_acao() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = start(&upstream);
    for origin in [APP, OTHER] {
        get(gateway.addr, "/x", Some(origin)).await;
    }
    get(gateway.addr, "/y", Some(APP)).await;
    let (status, answer) = inspect(&gateway, "url=/x").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["truncated"], false);
    let listed = entries(&answer);
    assert_eq!(listed.len(), 2, "{answer}");
    assert_eq!(
        answer["entries"], 2,
        "the count, as the SPEC names it: {answer}"
    );
    let mut origins: Vec<&str> = listed.iter().filter_map(|e| e["origin"].as_str()).collect();
    origins.sort_unstable();
    assert_eq!(origins, [APP, OTHER]);
    for entry in &listed {
        let origin = entry["origin"].as_str().unwrap_or_default();
        assert_eq!(entry["method"], "GET");
        assert_eq!(entry["url"], "/x");
        assert_eq!(
            entry["access_control"]["access-control-allow-origin"], origin,
            "{entry}"
        );
        assert_eq!(entry["variance"][":origin"], origin, "{entry}");
        assert_eq!(entry["state"], "fresh");
        assert_eq!(entry["status"], 200);
        assert_eq!(entry["size_bytes"], "/x body".len());
        assert_eq!(entry["tags"], serde_json::json!(["t1", "t2"]));
        assert!(
            entry["vary"]
                .as_str()
                .unwrap_or_default()
                .contains("Origin"),
            "{entry}"
        );
        let fresh = entry["fresh_secs"].as_u64().unwrap_or(0);
        assert!(fresh > 0 && fresh <= 300, "{entry}");
    }
}

#[tokio::test]
async fn an_origin_lists_its_entries_across_urls_and_preflights() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = start(&upstream);
    for path in ["/a", "/b", "/c"] {
        get(gateway.addr, path, Some(APP)).await;
    }
    get(gateway.addr, "/a", Some(OTHER)).await;
    get(gateway.addr, "/a", None).await;
    let preflight = request(
        gateway.addr,
        "OPTIONS",
        "/a",
        &[
            ("origin", APP),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "X-B, x-a"),
        ],
    )
    .await;
    assert_eq!(preflight.status, 204);
    let (_, answer) = inspect(&gateway, &format!("origin={APP}")).await;
    let listed = entries(&answer);
    let mut urls: Vec<(String, String)> = listed
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap_or("").into(),
                e["url"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    urls.sort();
    let wanted: Vec<(String, String)> = [
        ("GET", "/a"),
        ("GET", "/b"),
        ("GET", "/c"),
        ("OPTIONS", "/a"),
    ]
    .iter()
    .map(|(m, u)| (m.to_string(), u.to_string()))
    .collect();
    assert_eq!(urls, wanted, "{answer}");
    assert!(listed.iter().all(|e| e["origin"] == APP), "{answer}");
    let options = listed
        .iter()
        .find(|e| e["method"] == "OPTIONS")
        .cloned()
        .unwrap_or_default();
    assert_eq!(options["preflight"]["request_method"], "PUT", "{options}");
    assert_eq!(
        options["preflight"]["request_headers"], "x-a,x-b",
        "{options}"
    );
    // Several fields narrow.
    let (_, narrowed) = inspect(&gateway, &format!("origin={APP}&prefix=/b")).await;
    assert_eq!(entries(&narrowed).len(), 1, "{narrowed}");
}

#[tokio::test]
async fn limit_truncates_and_says_so() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = start(&upstream);
    for i in 0..5 {
        get(gateway.addr, &format!("/many/{i}"), Some(APP)).await;
    }
    let (_, answer) = inspect(&gateway, "prefix=/many/&limit=3").await;
    assert_eq!(entries(&answer).len(), 3, "{answer}");
    assert_eq!(answer["truncated"], true, "{answer}");
    assert_eq!(answer["limit"], 3);
    let (_, answer) = inspect(&gateway, "prefix=/many/&limit=5").await;
    assert_eq!(entries(&answer).len(), 5);
    assert_eq!(answer["truncated"], false, "{answer}");
    let (_, answer) = inspect(&gateway, "prefix=/many/").await;
    assert_eq!(answer["limit"], 100, "the default limit");
}

#[tokio::test]
async fn bad_queries_are_400_with_the_reason_and_the_token_is_required() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = start(&upstream);
    for (query, reason) in [
        ("path=/x", "unknown parameter \"path\""),
        ("url=x", "url must be a path starting with '/'"),
        ("limit=0", "limit must be a whole number from 1 to 10000"),
        ("prefix=/a%3Fb", "prefix must not contain a query"),
    ] {
        let (status, answer) = inspect(&gateway, query).await;
        assert_eq!(status, 400, "{query}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{query}: {message}");
    }
    let missing = request(gateway.admin, "GET", "/cache?url=/x", &[]).await;
    assert_eq!(missing.status, 401);
    let wrong = request(
        gateway.admin,
        "GET",
        "/cache?url=/x",
        &[("authorization", "Bearer no")],
    )
    .await;
    assert_eq!(wrong.status, 403);
    let post = request(
        gateway.admin,
        "POST",
        "/cache",
        &[("authorization", "Bearer no")],
    )
    .await;
    assert_eq!(post.status, 405);
}

#[tokio::test]
async fn a_url_is_read_with_the_routes_key_query() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = start(&upstream);
    get(gateway.addr, "/shaped/q?b=1&a=2&utm_source=x", None).await;
    let (_, answer) = inspect(&gateway, "url=/shaped/q%3Fa%3D2%26b%3D1%26utm_medium%3Dz").await;
    let listed = entries(&answer);
    assert_eq!(listed.len(), 1, "{answer}");
    assert_eq!(listed[0]["url"], "/shaped/q?a=2&b=1");
    assert_eq!(listed[0]["origin"], Value::Null);
}

fn run_inspect(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(binary_path())
        .arg("inspect")
        .args(args)
        .env_remove("CORS_EDGE_ADMIN_TOKEN")
        .env("INSPECT_TOKEN", TOKEN)
        .output()
        .expect("run cors-edge inspect");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_inspect_command_prints_a_table_or_the_json() {
    let upstream = Upstream::start(cors_api).await;
    let gateway = start(&upstream);
    for origin in [APP, OTHER] {
        get(gateway.addr, "/t?x=1", Some(origin)).await;
    }
    let base = format!("http://{}", gateway.admin);
    let (code, table, stderr) = tokio::task::spawn_blocking({
        let base = base.clone();
        move || {
            run_inspect(&[
                "--admin",
                &base,
                "--url",
                "/t?x=1",
                "--token-env",
                "INSPECT_TOKEN",
            ])
        }
    })
    .await
    .expect("join");
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("METHOD"), "{table}");
    assert_eq!(lines.len(), 4, "heading, two rows, count: {table}");
    for origin in [APP, OTHER] {
        let row = lines
            .iter()
            .find(|l| l.contains(origin))
            .copied()
            .unwrap_or_default();
        assert_eq!(row.matches(origin).count(), 2, "origin and its ACAO: {row}");
        assert!(row.contains("/t?x=1") && row.contains("fresh"), "{row}");
    }
    assert_eq!(lines[3], "2 entries");
    let (code, json, stderr) = tokio::task::spawn_blocking({
        let base = base.clone();
        move || {
            run_inspect(&[
                "--admin",
                &base,
                "--origin",
                APP,
                "--json",
                "--token-env",
                "INSPECT_TOKEN",
            ])
        }
    })
    .await
    .expect("join");
    assert_eq!(code, 0, "{stderr}");
    let answer: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(entries(&answer).len(), 1, "{answer}");
    let (code, _, stderr) =
        tokio::task::spawn_blocking(move || run_inspect(&["--admin", &base, "--all"]))
            .await
            .expect("join");
    assert_eq!(code, 1);
    assert!(stderr.contains("401"), "{stderr}");
}
