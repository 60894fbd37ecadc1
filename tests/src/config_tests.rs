//! The builder writes the blocks it is given, and `cors-edge check` accepts what it writes.

use std::net::SocketAddr;
use std::process::Command;

use super::{GatewayConfig, Route};
use crate::gateway::{fill_placeholders, TempDir};
use crate::tls::TestCert;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn the_plain_config_is_one_upstream_and_one_catch_all_route() {
    assert_eq!(
        GatewayConfig::new(addr(8001)).yaml(),
        "listen: [\"{listen}\"]\n\
         admin: { listen: \"{admin}\" }\n\
         upstreams:\n  api: { servers: [\"127.0.0.1:8001\"] }\n\
         routes:\n  - name: api\n    upstream: api\n"
    );
    assert_eq!(
        GatewayConfig::new(addr(8001)).to_string(),
        GatewayConfig::new(addr(8001)).yaml()
    );
}

#[test]
fn each_method_writes_its_block() {
    let yaml = GatewayConfig::new(addr(8001))
        .listen("127.0.0.1:9000")
        .admin_token_env("CE_TOKEN")
        .server("threads: 2")
        .server("idle_timeout: 1s")
        .cache("max_bytes: 64MiB")
        .upstream_settings("read_timeout: 5s")
        .upstream("b", addr(8002))
        .route(Route::prefix("pass", "/pass/").upstream("b").debug())
        .route_cache("max_ttl: 60s")
        .route_cors("mode: upstream")
        .route_compression("enabled: false")
        .route_debug()
        .route_line("strip_request_headers: [Cookie]")
        .tls("/x/tls.crt", "/x/tls.key")
        .access_log("/x/access.log", Some("json"))
        .cluster("redis+unix:///x/redis.sock", "chan")
        .cluster_settings("local_ttl: 5s")
        .yaml();
    for block in [
        "listen: [\"127.0.0.1:9000\"]\n",
        "admin: { listen: \"{admin}\", token_env: CE_TOKEN }\n",
        "server: { threads: 2, idle_timeout: 1s }\n",
        "cache: { max_bytes: 64MiB }\n",
        "  api: { servers: [\"127.0.0.1:8001\"], read_timeout: 5s }\n",
        "  b: { servers: [\"127.0.0.1:8002\"] }\n",
        "  - name: pass\n    match: { path_prefix: \"/pass/\" }\n    upstream: b\n    debug: true\n",
        "  - name: api\n    upstream: api\n    debug: true\n    cache: { max_ttl: 60s }\n    \
         cors: { mode: upstream }\n    compression: { enabled: false }\n    \
         strip_request_headers: [Cookie]\n",
        "tls:\n  listen: [\"{tls}\"]\n  cert: \"/x/tls.crt\"\n  key: \"/x/tls.key\"\n",
        "log:\n  access: { path: \"/x/access.log\", format: json }\n",
        "cluster: { redis_url: \"redis+unix:///x/redis.sock\", channel: \"chan\", local_ttl: 5s }\n",
    ] {
        assert!(yaml.contains(block), "no {block:?} in:\n{yaml}");
    }
    // The added route comes before the catch-all one.
    assert!(yaml.find("name: pass") < yaml.find("name: api"), "{yaml}");
}

#[test]
fn routes_replace_the_catch_all_route() {
    let yaml = GatewayConfig::empty()
        .upstream("a", addr(8001))
        .routes([
            Route::prefix("edge", "/").cors_edge(&["null", "https://app.example.com"]),
            Route::new("plain").upstream("a"),
        ])
        .yaml();
    assert!(!yaml.contains("name: api"), "{yaml}");
    assert!(!yaml.contains("  api:"), "{yaml}");
    assert!(
        yaml.contains(
            "  - name: edge\n    match: { path_prefix: \"/\" }\n    upstream: api\n    \
             cors: { mode: edge, allow_origins: [\"null\", \"https://app.example.com\"] }\n  \
             - name: plain\n    upstream: a\n"
        ),
        "{yaml}"
    );
    let catch_all = GatewayConfig::new(addr(8001))
        .catch_all(Route::new("edge-api").debug())
        .yaml();
    assert!(
        catch_all.ends_with("routes:\n  - name: edge-api\n    upstream: api\n    debug: true\n"),
        "{catch_all}"
    );
}

#[test]
fn access_log_without_a_format_writes_the_path_only() {
    let yaml = GatewayConfig::new(addr(8001))
        .access_log("/x/a.log", None)
        .yaml();
    assert!(
        yaml.ends_with("log:\n  access: { path: \"/x/a.log\" }\n"),
        "{yaml}"
    );
}

/// `cors-edge check -c` on `config` (placeholders filled as `GatewayProcess::start` does).
fn check(config: &GatewayConfig) {
    let dir = TempDir::new("builder-check");
    let path = dir.0.join("gateway.yaml");
    std::fs::write(&path, fill_placeholders(&config.yaml())).expect("write config");
    let output = Command::new(crate::binary_path())
        .arg("check")
        .arg("-c")
        .arg(&path)
        .env_remove("CORS_EDGE_ADMIN_TOKEN")
        .output()
        .expect("run cors-edge check");
    assert!(
        output.status.success(),
        "cors-edge check refused\n{}\nstderr: {}",
        config.yaml(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn cors_edge_check_accepts_what_every_method_writes() {
    let cert = TestCert::localhost();
    let log = TempDir::new("builder-log");
    check(&GatewayConfig::new(addr(8001)));
    check(
        &GatewayConfig::new(addr(8001))
            .admin_token_env("CE_TOKEN")
            .server("threads: 2, header_timeout: 3s, idle_timeout: 30s, max_connections: 2")
            .server("grace_period: 1s, shutdown_timeout: 1s")
            .server("trusted_proxies: [\"127.0.0.0/8\"]")
            .cache("stale_while_revalidate: 0s, stale_if_error: 0s")
            .cache("targeted_fields: [Acme-CDN-Cache-Control, CDN-Cache-Control]")
            .upstream_settings("read_timeout: 5s")
            .upstream_settings("health_check: { interval: 1s, path: /healthz }")
            .upstream("internal", addr(8002))
            .route(Route::prefix("internal", "/admin").upstream("internal"))
            .route(
                Route::prefix("shaped", "/shaped/")
                    .debug()
                    .cache("key_query: { sort: true, ignore: [utm_*, _] }"),
            )
            .route(
                Route::prefix("edge", "/edge/")
                    .cors_edge(&["null", "https://app.example.com", "https://*.example.com"])
                    .cors("allow_credentials: true, allow_methods: [GET, POST]")
                    .cors("allow_headers: [Authorization], expose_headers: [ETag], max_age: 600s"),
            )
            .route_cache("enabled: true, max_ttl: 1h, key_headers: [X-Tenant]")
            .route_cors("mode: upstream")
            .route_compression("types: [text/csv], min_bytes: 1KiB, level: 9")
            .route_debug()
            .route_line("strip_request_headers: [X-Debug, Cookie]")
            .tls(cert.cert(), cert.key())
            .access_log(log.0.join("access.log"), Some("json")),
    );
    check(
        &GatewayConfig::new(addr(8001))
            .listen("127.0.0.1:0")
            .cluster("redis+unix:///nonexistent/redis.sock", "cors-edge-test")
            .cluster_settings("local_ttl: 5s, health_check_interval: 200ms"),
    );
    check(
        &GatewayConfig::empty()
            .upstream("a", addr(8001))
            .upstream("b", addr(8002))
            .routes([
                Route::prefix("keep", "/keep").upstream("a"),
                Route::prefix("switch", "/switch").upstream("b"),
            ]),
    );
}
