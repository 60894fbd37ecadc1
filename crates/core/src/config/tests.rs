//! Loader and validation tests: each kind of error, with its key path and position.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::units::{ByteSize, DurationValue};

const GATEWAY: &str = include_str!("../../../../config/gateway.yaml");
const EXAMPLE: &str = include_str!("../../../../config/example.yaml");

/// The smallest valid config, to which each test adds its mistake.
pub(super) const BASE: &str = "\
upstreams:
  api:
    servers: [\"127.0.0.1:3000\"]
routes:
  - name: api
    upstream: api
";

pub(super) fn load(text: &str) -> Result<Config, ConfigErrors> {
    load_str(text, "t.yaml")
}

pub(super) fn errors(text: &str) -> Vec<ConfigError> {
    match load(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(errors) => errors.errors,
    }
}

/// The single error `text` must produce.
pub(super) fn one(text: &str) -> ConfigError {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got: {all:#?}");
    all.remove(0)
}

pub(super) fn key(error: &ConfigError) -> String {
    error
        .key
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

pub(super) fn position(error: &ConfigError) -> (Option<usize>, Option<usize>) {
    (error.line, error.column)
}

#[test]
fn shipped_configs_load() {
    let gateway = load_str(GATEWAY, "config/gateway.yaml").unwrap();
    assert_eq!(gateway.listen, ["127.0.0.1:8080"]);
    assert!(gateway.admin_is_loopback());
    assert_eq!(gateway.routes[0].cors.mode, CorsMode::Upstream);
    assert_eq!(gateway.routes[0].upstream, "api");

    let example = load_str(EXAMPLE, "config/example.yaml").unwrap();
    assert_eq!(example.cache.max_object_bytes, Some(ByteSize::mib(8)));
    assert_eq!(
        example.routes[0].cache.max_ttl,
        Some(DurationValue::from_secs(3600))
    );
    assert_eq!(
        example.routes[0].matcher.host.as_deref(),
        Some("api.example.com")
    );
    let health = example.upstreams["api"].health_check.as_ref().unwrap();
    assert_eq!(health.path.as_deref(), Some("/healthz"));
    assert_eq!(example.tls.as_ref().unwrap().listen, ["0.0.0.0:8443"]);
    assert_eq!(example.cluster.as_ref().unwrap().channel, "cors-edge-purge");
}

#[test]
fn omitted_keys_take_their_defaults() {
    let config = load(BASE).unwrap();
    assert_eq!(config.listen, ["0.0.0.0:8080"]);
    assert_eq!(config.admin, AdminConfig::default());
    assert_eq!(config.admin.listen, "127.0.0.1:9901");
    assert_eq!(config.admin.token_env, "CORS_EDGE_ADMIN_TOKEN");
    let cache = &config.cache;
    assert_eq!(cache.max_bytes, ByteSize::mib(256));
    assert_eq!(cache.max_variants, 64);
    assert_eq!(cache.stale_while_revalidate.0, Duration::from_secs(10));
    assert_eq!(cache.stale_if_error.0, Duration::from_secs(60));
    assert_eq!(cache.max_object_bytes, None);
    assert_eq!(cache.object_limit(), ByteSize::mib(8));
    assert_eq!(cache.lock_timeout.0, Duration::from_secs(5));
    assert_eq!(cache.negative_preflight_ttl.0, Duration::from_secs(5));
    assert_eq!(cache.targeted_fields, ["CDN-Cache-Control"]);
    let api = &config.upstreams["api"];
    assert_eq!(api.connect_timeout.0, Duration::from_secs(1));
    assert_eq!(api.read_timeout.0, Duration::from_secs(10));
    assert!(api.health_check.is_none());
    let route = &config.routes[0];
    assert_eq!(route.matcher, RouteMatch::default());
    assert_eq!(route.matcher.path_prefix, "/");
    assert!(route.cache.enabled && route.cache.max_ttl.is_none());
    assert_eq!(route.cors, CorsConfig::default());
    assert!(config.tls.is_none() && config.cluster.is_none());
    assert_eq!(config.server.grace_period.0, Duration::from_secs(5));
    assert_eq!(config.server.shutdown_timeout.0, Duration::from_secs(5));
    assert!(config.server.threads_or_default() >= 1);
}

#[test]
fn a_single_listen_address_may_be_a_plain_string() {
    let config = load(&format!("listen: 127.0.0.1:8081\n{BASE}")).unwrap();
    assert_eq!(config.listen, ["127.0.0.1:8081"]);
}

#[test]
fn unknown_top_level_key_is_named_with_its_position() {
    let error = one(&format!("{BASE}cachex:\n  max_bytes: 1MiB\n"));
    assert_eq!(error.kind, ConfigErrorKind::UnknownKey);
    assert_eq!(key(&error), "cachex");
    assert_eq!(position(&error), (Some(7), Some(1)));
    let shown = error.to_string();
    assert!(
        shown.starts_with("t.yaml:7:1: unknown key \"cachex\" at the top level; did you mean \"cache\"? (expected one of: listen, admin, cache,"),
        "{shown}"
    );
}

#[test]
fn unknown_key_in_cache_suggests_the_near_one() {
    let error = one(&format!("cache:\n  max_byte: 1MiB\n{BASE}"));
    assert_eq!(key(&error), "cache.max_byte");
    assert_eq!(
        error.to_string(),
        "t.yaml:2:3: unknown key \"max_byte\" in cache; did you mean \"max_bytes\"? (expected one of: \
         max_bytes, max_variants, stale_while_revalidate, stale_if_error, max_object_bytes, \
         lock_timeout, negative_preflight_ttl, targeted_fields)"
    );
}

#[test]
fn unknown_keys_are_refused_at_every_level() {
    let cases: &[(&str, &str, usize)] = &[
        ("admin:\n  port: 1\n", "admin.port", 1),
        ("tls:\n  cert: a\n  key: b\n  ca: c\n", "tls.ca", 3),
        (
            "cluster:\n  redis_url: redis://h\n  db: 1\n",
            "cluster.db",
            2,
        ),
        ("server:\n  workers: 2\n", "server.workers", 1),
    ];
    for (extra, path, line_in_extra) in cases {
        let error = one(&format!("{BASE}{extra}"));
        assert_eq!(error.kind, ConfigErrorKind::UnknownKey, "{extra}");
        assert_eq!(&key(&error), path);
        assert_eq!(error.line, Some(6 + line_in_extra + 1), "{error}");
    }

    let nested = "\
upstreams:
  api:
    servers: [\"127.0.0.1:3000\"]
    health_check: { interval: 5s, url: /x }
routes:
  - name: api
    upstream: api
    match: { host: a.com, prefix: /x }
";
    let error = one(nested);
    assert_eq!(key(&error), "upstreams.api.health_check.url");
    assert_eq!(position(&error), (Some(4), Some(35)));
    assert!(error
        .to_string()
        .contains("unknown key \"url\" in upstreams.api.health_check"));

    let error = one(&nested.replace(", url: /x", ""));
    assert_eq!(key(&error), "routes[0].match.prefix");
    assert_eq!(position(&error), (Some(8), Some(27)));
    assert!(
        error.to_string().contains("did you mean \"path_prefix\"?"),
        "{error}"
    );

    let error = one(&format!("{BASE}    cors: {{ allow_origin: [] }}\n"));
    assert_eq!(key(&error), "routes[0].cors.allow_origin");
    assert!(
        error
            .to_string()
            .contains("did you mean \"allow_origins\"?"),
        "{error}"
    );

    let error = one(&format!("{BASE}    colour: blue\n"));
    assert_eq!(key(&error), "routes[0].colour");
    assert!(error.to_string().contains("in routes[0]"), "{error}");

    let error = one(&BASE.replace("    servers:", "    timeout: 1s\n    servers:"));
    assert_eq!(key(&error), "upstreams.api.timeout");
}

#[test]
fn bad_size_names_key_and_position() {
    let error = one(&format!("cache:\n  max_bytes: 12XB\n{BASE}"));
    assert_eq!(error.kind, ConfigErrorKind::Value);
    assert_eq!(
        error.to_string(),
        "t.yaml:2:14: cache.max_bytes: \"12XB\" is not a size (expected a number of bytes or a number \
         with B, KiB, MiB or GiB, e.g. 256MiB)"
    );
    let error = one(&format!("cache:\n  max_object_bytes: -5\n{BASE}"));
    assert!(error.to_string().contains("cannot be negative"), "{error}");
}

#[test]
fn bare_number_duration_asks_for_a_unit() {
    let error = one(&format!("cache:\n  stale_if_error: 60\n{BASE}"));
    assert_eq!(key(&error), "cache.stale_if_error");
    assert_eq!(position(&error), (Some(2), Some(19)));
    assert!(error.to_string().contains("use a unit: 10s"), "{error}");

    let error = one(&format!("{BASE}    cors: {{ max_age: 10 days }}\n"));
    assert_eq!(key(&error), "routes[0].cors.max_age");
    assert!(error.to_string().contains("is not a duration"), "{error}");
}

#[test]
fn wrong_types_and_choices_are_explained() {
    let error = one(&format!("{BASE}    cors: {{ mode: proxy }}\n"));
    assert_eq!(key(&error), "routes[0].cors.mode");
    assert!(
        error
            .to_string()
            .ends_with("\"proxy\" is not one of the choices (expected one of: upstream, edge)"),
        "{error}"
    );
    let error = one(&format!("{BASE}    cache: {{ enabled: maybe }}\n"));
    assert_eq!(key(&error), "routes[0].cache.enabled");
    assert!(
        error
            .to_string()
            .contains("wrong type: found string \"maybe\", expected a boolean"),
        "{error}"
    );
    let error = one(&format!("listen: 8080\n{BASE}"));
    assert_eq!(key(&error), "listen");
    assert!(
        error
            .to_string()
            .contains("expected a string or a list of strings"),
        "{error}"
    );
    let error = one("- a\n- b\n");
    assert!(
        error.to_string().contains("expected a mapping of settings"),
        "{error}"
    );
}

#[test]
fn missing_required_keys_are_named() {
    let error = one(&BASE.replace("    upstream: api\n", ""));
    assert_eq!(key(&error), "routes[0]");
    assert_eq!(
        error.to_string(),
        "t.yaml:5:5: routes[0]: required key \"upstream\" is missing"
    );
    let error = one(&format!("{BASE}tls:\n  cert: /a.crt\n"));
    assert_eq!(
        error.to_string(),
        "t.yaml:8:3: tls: required key \"key\" is missing"
    );
}

#[test]
fn a_key_given_twice_is_refused() {
    let error = one(&BASE.replace(
        "    upstream: api\n",
        "    upstream: api\n    upstream: api\n",
    ));
    assert!(
        error
            .to_string()
            .contains("key \"upstream\" is given twice"),
        "{error}"
    );
    let twice = "\
upstreams:
  api:
    servers: [\"127.0.0.1:3000\"]
  api:
    servers: [\"127.0.0.1:4000\"]
routes: []
";
    let error = one(twice);
    assert_eq!(position(&error), (Some(4), Some(3)));
    assert!(
        error.to_string().contains("\"api\" is defined twice"),
        "{error}"
    );
}

#[test]
fn all_problems_are_reported_at_once_in_document_order() {
    let text = "\
listen: [\"nowhere\"]
upstreams:
  api:
    servers: []
routes:
  - name: api
    upstream: missing
    match: { path_prefix: x }
";
    let all = load(text).unwrap_err();
    let keys: Vec<String> = all.iter().map(key).collect();
    assert_eq!(
        keys,
        [
            "listen[0]",
            "upstreams.api.servers",
            "routes[0].upstream",
            "routes[0].match.path_prefix"
        ]
    );
    let shown = all.to_string();
    assert_eq!(shown.lines().count(), 4);
    assert!(
        shown.lines().all(|line| line.starts_with("t.yaml:")),
        "{shown}"
    );
}

#[test]
fn empty_config_and_missing_sections() {
    let error = one("# nothing yet\n");
    assert!(
        error.to_string().contains("the config file is empty"),
        "{error}"
    );
    let all = errors("listen: [\"127.0.0.1:8080\"]\n");
    let keys: Vec<String> = all.iter().map(key).collect();
    assert_eq!(keys, ["upstreams", "routes"]);
    assert!(all[0].line.is_none());
    assert!(all[0]
        .to_string()
        .starts_with("t.yaml: upstreams: no upstreams"));
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let error = one("routes:\n  - name: api\n   upstream: api\n");
    assert_eq!(error.kind, ConfigErrorKind::Syntax);
    assert!(error.line.is_some());
    assert!(error.to_string().starts_with("t.yaml:3:"), "{error}");
    assert!(error.to_string().contains("invalid YAML"), "{error}");

    // A syntax error further down wins over a type error higher up.
    let error = one("listen: 8080\nroutes: [\n");
    assert_eq!(error.kind, ConfigErrorKind::Syntax);

    let error = one("cache:\n\tmax_bytes: 1MiB\n");
    assert!(error.to_string().contains("tabs"), "{error}");
}

#[test]
fn missing_file_is_named() {
    let error = load_file(Path::new("/nonexistent/cors-edge.yaml")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/nonexistent/cors-edge.yaml: config file not found"
    );
    assert_eq!(error.errors[0].kind, ConfigErrorKind::Io);
}

#[test]
fn shipped_config_files_load_from_disk() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    for name in ["gateway.yaml", "example.yaml"] {
        load_file(&dir.join(name)).unwrap();
    }
}

#[test]
fn cors_block_converts_to_a_policy_spec() {
    let config = load_str(EXAMPLE, "example.yaml").unwrap();
    let spec = config.routes[0].cors.policy_spec();
    assert_eq!(
        spec.allow_origins,
        ["https://app.example.com", "https://*.example.com"]
    );
    assert!(spec.allow_credentials && !spec.allow_any_origin);
    assert_eq!(spec.max_age, Some(Duration::from_secs(600)));
    assert_eq!(spec.expose_headers, ["ETag", "Link", "Retry-After"]);
    crate::cors::CorsPolicy::compile(&spec).unwrap();
}

#[test]
fn configs_built_in_code_validate_without_positions() {
    let mut config = Config::default();
    config
        .upstreams
        .insert("api".into(), UpstreamConfig::new(["127.0.0.1:3000"]));
    config.routes.push(RouteConfig {
        name: "api".into(),
        matcher: RouteMatch::default(),
        upstream: "api".into(),
        cache: RouteCacheConfig::default(),
        cors: CorsConfig::default(),
        compression: CompressionConfig::default(),
        debug: false,
        strip_request_headers: Vec::new(),
    });
    config.validate().unwrap();
    config.routes[0].upstream = "nope".into();
    let errors = config.validate().unwrap_err();
    assert_eq!(
        errors.to_string(),
        "routes[0].upstream: upstream \"nope\" is not defined under upstreams (defined: api)"
    );
}

#[test]
fn summary_covers_listeners_upstreams_and_routes() {
    let config = load_str(EXAMPLE, "example.yaml").unwrap();
    let summary = config.summary();
    for needle in [
        "listen     0.0.0.0:8080",
        "tls        0.0.0.0:8443",
        "admin      127.0.0.1:9901 (loopback only; token from $CORS_EDGE_ADMIN_TOKEN)",
        "cache      256MiB total, objects up to 8MiB, 64 variants per key",
        "targeted fields CDN-Cache-Control, then Surrogate-Control, then Cache-Control",
        "cluster    redis://127.0.0.1:6379 channel cors-edge-purge",
        "upstreams  1",
        "  api: 1 server (127.0.0.1:3000), connect 1s, read 10s, HTTP health check GET /healthz every 5s",
        "routes     1",
        "  api: api.example.com / -> api, cache on (max ttl 1h), cors upstream",
        "2 origins, credentials",
    ] {
        assert!(summary.contains(needle), "missing {needle:?} in:\n{summary}");
    }
    assert!(summary.lines().count() < 25);
    let gateway = load_str(GATEWAY, "gateway.yaml").unwrap().summary();
    assert!(gateway.contains("tls        off") && gateway.contains("cluster    off"));
}
