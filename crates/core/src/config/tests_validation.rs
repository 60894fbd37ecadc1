//! Validation rules, section by section: each check's error, key path and position.

use super::tests::{errors, key, load, one, position, BASE};
use super::*;
use crate::units::{ByteSize, DurationValue};

#[test]
fn route_naming_a_missing_upstream() {
    let error = one(&BASE.replace("upstream: api", "upstream: ap"));
    assert_eq!(error.kind, ConfigErrorKind::Invalid);
    assert_eq!(
        error.to_string(),
        "t.yaml:6:15: routes[0].upstream: upstream \"ap\" is not defined under upstreams (defined: api)"
    );
}

#[test]
fn bad_listen_addresses() {
    let error = one(&format!(
        "listen: [\"0.0.0.0:8080\", \"localhost:8080\"]\n{BASE}"
    ));
    assert_eq!(key(&error), "listen[1]");
    assert_eq!(position(&error), (Some(1), Some(26)));
    assert!(error
        .to_string()
        .contains("\"localhost:8080\" is not an IP address and port"));

    let error = one(&format!("listen: []\n{BASE}"));
    assert_eq!(key(&error), "listen");
    assert!(
        error
            .to_string()
            .starts_with("t.yaml:1:1: listen: no listen address"),
        "{error}"
    );

    let error = one(&format!("admin:\n  listen: http://127.0.0.1:9901\n{BASE}"));
    assert_eq!(key(&error), "admin.listen");
    assert!(
        error.to_string().contains("leave out the scheme"),
        "{error}"
    );

    let error = one(&format!("listen: 0.0.0.0:9901\n{BASE}"));
    assert_eq!(key(&error), "admin.listen");
    assert!(
        error
            .to_string()
            .contains("overlaps 0.0.0.0:9901 of listen[0]"),
        "{error}"
    );
}

#[test]
fn admin_off_loopback_needs_a_token_variable() {
    let off = format!("admin:\n  listen: 0.0.0.0:9901\n  token_env: \"\"\n{BASE}");
    let error = one(&off);
    assert_eq!(key(&error), "admin.token_env");
    assert_eq!(error.line, Some(3));
    assert!(
        error.to_string().contains("needs a bearer token"),
        "{error}"
    );

    let config = load(&off.replace("\"\"", "EDGE_TOKEN")).unwrap();
    assert!(!config.admin_is_loopback());
    let config = load(&format!(
        "admin:\n  listen: \"[::1]:9901\"\n  token_env: \"\"\n{BASE}"
    ))
    .unwrap();
    assert!(config.admin_is_loopback());

    let error = one(&format!("admin:\n  token_env: my-secret-value!\n{BASE}"));
    assert!(
        error
            .to_string()
            .contains("is not an environment variable name"),
        "{error}"
    );
}

#[test]
fn wildcard_origin_with_credentials_is_refused() {
    let text = format!(
        "{BASE}    cors:\n      allow_credentials: true\n      allow_origins:\n        - https://a.example.com\n        - \"*\"\n"
    );
    let error = one(&text);
    assert_eq!(key(&error), "routes[0].cors.allow_origins[1]");
    assert_eq!(position(&error), (Some(11), Some(11)));
    assert!(
        error
            .to_string()
            .contains("cannot be combined with allow_credentials"),
        "{error}"
    );

    let error = one(&format!(
        "{BASE}    cors: {{ allow_any_origin: true, allow_credentials: true }}\n"
    ));
    assert_eq!(key(&error), "routes[0].cors.allow_any_origin");
    assert_eq!(position(&error), (Some(7), Some(31)));

    // Without credentials `*` is fine.
    load(&format!("{BASE}    cors: {{ allow_origins: [\"*\"] }}\n")).unwrap();
}

#[test]
fn every_bad_origin_is_reported_with_its_index() {
    let text = format!(
        "{BASE}    cors:\n      allow_origins: [\"https://ok.example.com\", \"https//x\", \"https://a.com/\"]\n      allow_methods: [GET, \"BAD METHOD\"]\n"
    );
    let all = errors(&text);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_eq!(
        all[0].to_string(),
        "t.yaml:8:49: routes[0].cors.allow_origins[1]: \"https//x\" is not an origin (expected \
         scheme://host[:port], e.g. https://app.example.com): it must start with a scheme \
         followed by `://`, as in `https://app.example.com`"
    );
    assert_eq!(key(&all[1]), "routes[0].cors.allow_origins[2]");
    assert!(
        all[1].message.contains("must not have a path"),
        "{}",
        all[1]
    );
    assert_eq!(key(&all[2]), "routes[0].cors.allow_methods[1]");
    assert_eq!(all[2].line, Some(9));
}

#[test]
fn duplicate_route_names() {
    let text =
        format!("{BASE}  - name: api\n    upstream: api\n    match: {{ path_prefix: /v2 }}\n");
    let error = one(&text);
    assert_eq!(
        error.to_string(),
        "t.yaml:7:11: routes[1].name: route name \"api\" is already used by routes[0]; names must be unique"
    );
}

#[test]
fn unreachable_duplicate_match() {
    let text = format!("{BASE}  - name: other\n    upstream: api\n");
    let error = one(&text);
    assert_eq!(key(&error), "routes[1].match");
    assert!(error.to_string().contains("can never be chosen"), "{error}");
}

#[test]
fn route_match_checks() {
    let error = one(&format!("{BASE}    match: {{ path_prefix: api }}\n"));
    assert_eq!(key(&error), "routes[0].match.path_prefix");
    assert_eq!(position(&error), (Some(7), Some(27)));
    assert!(error.to_string().contains("must start with /"), "{error}");

    let error = one(&format!("{BASE}    match: {{ host: \"https://a.com\" }}\n"));
    assert_eq!(key(&error), "routes[0].match.host");
    assert!(
        error.to_string().contains("must not have a scheme"),
        "{error}"
    );
}

#[test]
fn upstream_checks() {
    let error = one(&BASE.replace("[\"127.0.0.1:3000\"]", "[\"127.0.0.1\"]"));
    assert_eq!(key(&error), "upstreams.api.servers[0]");
    assert_eq!(position(&error), (Some(3), Some(15)));
    assert!(error.to_string().contains("the port is missing"), "{error}");

    let error = one(&BASE.replace("[\"127.0.0.1:3000\"]", "[]"));
    assert_eq!(key(&error), "upstreams.api.servers");
    assert!(error.to_string().contains("no servers"), "{error}");

    let ok = BASE.replace(
        "[\"127.0.0.1:3000\"]",
        "[\"api.internal:8080\", \"[::1]:3000\"]",
    );
    load(&ok).unwrap();

    let error = one(&BASE.replace("[\"127.0.0.1:3000\"]", "[\"api:http\"]"));
    assert!(
        error.to_string().contains("\"http\" is not a port"),
        "{error}"
    );

    let error = one(&BASE.replace("    servers:", "    connect_timeout: 0s\n    servers:"));
    assert_eq!(key(&error), "upstreams.api.connect_timeout");
    assert!(
        error.to_string().contains("must be longer than 0s"),
        "{error}"
    );

    let error = one(&BASE.replace(
        "    servers:",
        "    health_check: { path: healthz }\n    servers:",
    ));
    assert_eq!(key(&error), "upstreams.api.health_check.path");
    // A path the upstream request could not carry is refused here, not dropped at runtime.
    for path in ["'/health check'", "'/a<b>'", "'/x#frag'"] {
        let error = one(&BASE.replace(
            "    servers:",
            &format!("    health_check: {{ path: {path} }}\n    servers:"),
        ));
        assert_eq!(key(&error), "upstreams.api.health_check.path", "{path}");
        assert!(error.to_string().contains("not a request path"), "{error}");
    }
}

#[test]
fn cache_bounds() {
    let all = errors(&format!(
        "cache:\n  max_variants: 0\n  max_bytes: 1MiB\n  max_object_bytes: 2MiB\n  lock_timeout: 0ms\n{BASE}"
    ));
    let keys: Vec<String> = all.iter().map(key).collect();
    assert_eq!(
        keys,
        [
            "cache.max_variants",
            "cache.max_object_bytes",
            "cache.lock_timeout"
        ]
    );
    assert!(all[1]
        .message
        .contains("larger than the whole cache (max_bytes: 1MiB)"));
}

#[test]
fn targeted_fields_are_header_names() {
    let config = load(&format!(
        "cache:\n  targeted_fields: [Acme-CDN-Cache-Control, CDN-Cache-Control]\n{BASE}"
    ))
    .unwrap();
    assert_eq!(
        config.cache.targeted_fields,
        ["Acme-CDN-Cache-Control", "CDN-Cache-Control"]
    );
    assert!(load(&format!("cache:\n  targeted_fields: []\n{BASE}")).is_ok());
    let all = errors(&format!(
        "cache:\n  targeted_fields: [\"CDN Cache\", \"\", cdn-cache-control, CDN-Cache-Control, Cache-Control, Surrogate-Control]\n{BASE}"
    ));
    let found: Vec<(String, &str)> = all.iter().map(|e| (key(e), e.message.as_str())).collect();
    let expect = [
        ("cache.targeted_fields[0]", "is not a header name"),
        ("cache.targeted_fields[1]", "is empty"),
        ("cache.targeted_fields[3]", "listed twice"),
        ("cache.targeted_fields[4]", "is not a targeted field"),
        ("cache.targeted_fields[5]", "is not a targeted field"),
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for ((key, message), (want_key, want)) in found.iter().zip(expect) {
        assert_eq!(key, want_key);
        assert!(message.contains(want), "{key}: {message}");
    }
}

#[test]
fn tls_and_cluster_checks() {
    let error = one(&format!(
        "{BASE}tls:\n  listen: []\n  cert: a.crt\n  key: a.key\n"
    ));
    assert_eq!(key(&error), "tls.listen");
    let error = one(&format!("{BASE}tls:\n  cert: \"\"\n  key: a.key\n"));
    assert_eq!(key(&error), "tls.cert");
    assert_eq!(error.line, Some(8));

    let error = one(&format!("{BASE}cluster:\n  redis_url: 127.0.0.1:6379\n"));
    assert_eq!(key(&error), "cluster.redis_url");
    assert!(error.to_string().contains("is not a Redis URL"), "{error}");
}

#[test]
fn a_small_cache_without_an_object_limit_caps_the_default() {
    let config = load_str(&format!("cache:\n  max_bytes: 1MiB\n{BASE}"), "small.yaml").unwrap();
    assert_eq!(config.cache.max_object_bytes, None);
    assert_eq!(config.cache.object_limit(), ByteSize::mib(1));
    let explicit = load_str(
        &format!("cache:\n  max_bytes: 64MiB\n  max_object_bytes: 2MiB\n{BASE}"),
        "explicit.yaml",
    )
    .unwrap();
    assert_eq!(explicit.cache.object_limit(), ByteSize::mib(2));
}

#[test]
fn connection_limits_and_trusted_proxies() {
    let defaults = load(BASE).unwrap().server;
    assert_eq!(defaults.header_timeout, DurationValue::from_secs(10));
    assert_eq!(defaults.idle_timeout, DurationValue::from_secs(60));
    assert_eq!(defaults.max_connections, 10_000);
    assert!(defaults.trusted_proxies.is_empty());

    let config = load(&format!(
        "{BASE}server:\n  header_timeout: 2s\n  idle_timeout: 30s\n  max_connections: 500\n  trusted_proxies: [\"10.0.0.0/8\", \"2001:db8::/32\", 192.168.1.7]\n"
    ))
    .unwrap();
    assert_eq!(config.server.header_timeout, DurationValue::from_secs(2));
    assert_eq!(config.server.max_connections, 500);
    let networks: Vec<String> = config
        .server
        .trusted_networks()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(networks, ["10.0.0.0/8", "2001:db8::/32", "192.168.1.7/32"]);
    // A single network may be a plain string.
    let single = load(&format!("{BASE}server:\n  trusted_proxies: 127.0.0.1\n")).unwrap();
    assert_eq!(single.server.trusted_proxies, ["127.0.0.1"]);

    let all = errors(&format!(
        "{BASE}server:\n  header_timeout: 0s\n  idle_timeout: 0s\n  max_connections: 0\n  trusted_proxies: [\"10.1.2.3/8\", proxy.internal, \"::/200\"]\n"
    ));
    let keys: Vec<String> = all.iter().map(key).collect();
    assert_eq!(
        keys,
        [
            "server.header_timeout",
            "server.idle_timeout",
            "server.max_connections",
            "server.trusted_proxies[0]",
            "server.trusted_proxies[1]",
            "server.trusted_proxies[2]",
        ]
    );
    assert!(
        all[3].message.contains("write the network, 10.0.0.0/8"),
        "{}",
        all[3]
    );
    assert!(
        all[4].message.contains("is not an IP address or network"),
        "{}",
        all[4]
    );
    assert!(all[5].message.contains("from 0 to 128"), "{}", all[5]);
    assert_eq!(all[3].line, Some(11));
}

#[test]
fn route_header_lists() {
    let config = load(&format!(
        "{BASE}    strip_request_headers: [Cookie, X-Debug]\n    cache: {{ key_headers: [X-Tenant] }}\n"
    ))
    .unwrap();
    let route = &config.routes[0];
    let policy = route.forwarding_policy(&config.server);
    assert_eq!(policy.strip_request_headers, ["cookie", "x-debug"]);
    assert_eq!(route.cache.key_header_names(), ["x-tenant"]);

    let all = errors(&format!(
        "{BASE}    strip_request_headers: [Host, \"x y\", cookie, Cookie, X-Forwarded-For]\n    cache: {{ key_headers: [cookie, origin, X-Original-URL, x-a, X-A, Content-Length] }}\n"
    ));
    let found: Vec<(String, &str)> = all.iter().map(|e| (key(e), e.message.as_str())).collect();
    let expect = [
        (
            "routes[0].strip_request_headers[0]",
            "frames or routes the request",
        ),
        ("routes[0].strip_request_headers[1]", "is not a header name"),
        ("routes[0].strip_request_headers[3]", "listed twice"),
        (
            "routes[0].strip_request_headers[4]",
            "always set by the gateway",
        ),
        (
            "routes[0].cache.key_headers[0]",
            "never reaches the upstream",
        ),
        ("routes[0].cache.key_headers[1]", "already part of the key"),
        (
            "routes[0].cache.key_headers[2]",
            "never reaches the upstream",
        ),
        ("routes[0].cache.key_headers[4]", "listed twice"),
        (
            "routes[0].cache.key_headers[5]",
            "frames or routes the request",
        ),
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for ((key, message), (want_key, want)) in found.iter().zip(expect) {
        assert_eq!(key, want_key);
        assert!(message.contains(want), "{key}: {message}");
    }
}

#[test]
fn route_key_query() {
    let config = load(&format!(
        "{BASE}    cache:\n      key_query: {{ sort: true, ignore: [utm_*, _] }}\n"
    ))
    .unwrap();
    let rule = config.routes[0].cache.key_query.as_ref().unwrap().rule();
    assert_eq!(
        rule.key_target("/items?a=2&b=1&utm_source=x&_=1"),
        "/items?a=2&b=1"
    );
    assert!(
        config
            .summary()
            .contains("key query: sorted, ignore [utm_*, _]"),
        "{}",
        config.summary()
    );
    assert_eq!(load(BASE).unwrap().routes[0].cache.key_query, None);

    let error = one(&format!(
        "{BASE}    cache:\n      key_query: {{ ignore: [a], only: [b] }}\n"
    ));
    assert_eq!(key(&error), "routes[0].cache.key_query");
    assert!(
        error.message.contains("ignore and only are exclusive"),
        "{error}"
    );

    let all = errors(&format!(
        "{BASE}    cache:\n      key_query: {{ only: [id, \"u*m\", id, \"a=b\", \"\"] }}\n"
    ));
    let found: Vec<(String, &str)> = all.iter().map(|e| (key(e), e.message.as_str())).collect();
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(found[0].0, "routes[0].cache.key_query.only[1]");
    assert!(found[0].1.contains("'*' only as its last character"));
    assert_eq!(found[1].0, "routes[0].cache.key_query.only[2]");
    assert!(found[1].1.contains("listed twice"));
    assert!(found[2].1.contains("is not a parameter name"));
    assert!(found[3].1.contains("is empty"));

    let error = one(&format!(
        "{BASE}    cache:\n      key_query: {{ only: [] }}\n"
    ));
    assert!(error.message.contains("ignore: [\"*\"]"), "{error}");
    let error = one(&format!(
        "{BASE}    cache:\n      key_query: {{ sorted: true }}\n"
    ));
    assert!(error.to_string().contains("sorted"), "{error}");
}
