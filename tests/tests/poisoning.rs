//! Web cache poisoning through unkeyed headers ("Practical Web Cache Poisoning", 2018): the
//! upstream here reflects every header a framework might build URLs or routing from into its
//! (cacheable) body; a poisoned request followed by a clean one must never show the clean
//! client the attacker's values, and the upstream must never see them.

use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Upstream, UpstreamRequest};

/// Headers the upstream reflects, as `name=value` lines.
const REFLECTED: [&str; 17] = [
    "host",
    "x-forwarded-host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-port",
    "forwarded",
    "x-real-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-host",
    "x-forwarded-server",
    "x-forwarded-scheme",
    "x-original-host",
    "x-http-method-override",
    "x-tenant",
    "x-debug",
    "cookie",
];

fn reflect(req: &UpstreamRequest) -> Reply {
    let mut body = format!("path={}\n", req.path_and_query);
    for name in REFLECTED {
        for value in req.headers.get_all(name) {
            body.push_str(&format!(
                "{name}={}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
    }
    Reply::ok(body).header("cache-control", "public, max-age=300")
}

/// The attack of the issue and its relatives; "evil", "6.6.6.6" and "/admin" mark the
/// attacker's values.
const POISON: [(&str, &str); 13] = [
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-For", "6.6.6.6"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Port", "6666"),
    ("Forwarded", "for=6.6.6.6;host=evil;proto=https"),
    ("X-Real-IP", "6.6.6.6"),
    ("X-Original-URL", "/admin"),
    ("X-Rewrite-URL", "/admin"),
    ("X-Host", "evil.example"),
    ("X-Forwarded-Server", "evil.example"),
    ("X-Forwarded-Scheme", "evil"),
    ("X-Original-Host", "evil.example"),
    ("X-HTTP-Method-Override", "DELETE"),
];

fn attacker_values(text: &str) -> Vec<&str> {
    ["evil", "6.6.6.6", "6666", "/admin", "DELETE"]
        .into_iter()
        .filter(|marker| text.contains(marker))
        .collect()
}

#[tokio::test]
async fn a_poisoned_request_never_reaches_a_clean_client() {
    let upstream = Upstream::start(reflect).await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());

    let mut poisoned_headers = vec![("Host", "api.example.com")];
    poisoned_headers.extend(POISON);
    let poisoned = request(gateway.addr, "GET", "/page", &poisoned_headers).await;
    assert_eq!(poisoned.status, 200);
    assert_eq!(poisoned.cache(), "MISS");
    // The attacker's own answer does not carry their values either: the upstream never saw them.
    assert_eq!(
        attacker_values(&poisoned.text()),
        Vec::<&str>::new(),
        "{}",
        poisoned.text()
    );
    let seen = &upstream.requests()[0];
    for (name, _) in POISON {
        if let Some(value) = seen.header(name) {
            assert!(
                attacker_values(&value).is_empty(),
                "the upstream saw {name}: {value}"
            );
        }
    }
    // The gateway's own values instead.
    assert_eq!(seen.header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        seen.header("x-forwarded-host").as_deref(),
        Some("api.example.com")
    );
    let port = gateway.addr.port().to_string();
    assert_eq!(
        seen.header("x-forwarded-port").as_deref(),
        Some(port.as_str())
    );
    assert_eq!(
        seen.header("forwarded").as_deref(),
        Some("for=127.0.0.1;host=api.example.com;proto=http")
    );
    assert_eq!(seen.header("x-real-ip").as_deref(), Some("127.0.0.1"));

    let clean = request(gateway.addr, "GET", "/page", &[("Host", "api.example.com")]).await;
    assert_eq!(clean.cache(), "HIT");
    assert_eq!(clean.text(), poisoned.text());
    assert_eq!(attacker_values(&clean.text()), Vec::<&str>::new());
    assert_eq!(upstream.total(), 1);
}

#[tokio::test]
async fn method_overrides_reach_the_upstream_only_on_requests_that_are_not_cached() {
    let upstream = Upstream::start(reflect).await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let header = [("X-HTTP-Method-Override", "DELETE")];
    request(gateway.addr, "GET", "/m", &header).await;
    request(gateway.addr, "POST", "/m", &header).await;
    let seen = upstream.requests();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].header("x-http-method-override"), None);
    assert_eq!(seen[1].method, "POST");
    assert_eq!(
        seen[1].header("x-http-method-override").as_deref(),
        Some("DELETE")
    );
}

#[tokio::test]
async fn host_case_and_default_port_share_one_entry_and_one_answer() {
    let upstream = Upstream::start(reflect).await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let first = request(gateway.addr, "GET", "/h", &[("Host", "EXAMPLE.com:80")]).await;
    assert_eq!(first.cache(), "MISS");
    // The upstream saw the host of the key, so the stored answer is right for every spelling.
    assert!(
        first.text().contains("host=example.com\n"),
        "{}",
        first.text()
    );
    for spelling in [
        "example.com",
        "Example.Com",
        "example.com:80",
        "example.com.",
    ] {
        let again = request(gateway.addr, "GET", "/h", &[("Host", spelling)]).await;
        assert_eq!(again.cache(), "HIT", "Host: {spelling}");
        assert_eq!(again.text(), first.text());
    }
    let other_port = request(gateway.addr, "GET", "/h", &[("Host", "example.com:8080")]).await;
    assert_eq!(other_port.cache(), "MISS");
    assert!(other_port.text().contains("host=example.com:8080\n"));
    assert_eq!(upstream.total(), 2);
}

#[tokio::test]
async fn a_trusted_proxy_keeps_and_extends_the_forwarding_headers() {
    let upstream = Upstream::start(reflect).await;
    let gateway = GatewayProcess::start(
        &GatewayConfig::new(upstream.addr)
            .server("trusted_proxies: [\"127.0.0.0/8\"]")
            .yaml(),
    );
    request(
        gateway.addr,
        "GET",
        "/t",
        &[
            ("Host", "api.example.com"),
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "www.example.com"),
            ("Forwarded", "for=203.0.113.7;proto=https"),
            ("X-Real-IP", "203.0.113.7"),
            ("X-Original-URL", "/admin"),
        ],
    )
    .await;
    let seen = &upstream.requests()[0];
    assert_eq!(
        seen.header("x-forwarded-for").as_deref(),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(
        seen.header("x-forwarded-host").as_deref(),
        Some("www.example.com")
    );
    assert_eq!(
        seen.header("forwarded").as_deref(),
        Some("for=203.0.113.7;proto=https, for=127.0.0.1;host=api.example.com;proto=http")
    );
    assert_eq!(seen.header("x-real-ip").as_deref(), Some("203.0.113.7"));
    // Override headers are dropped whoever sends them.
    assert_eq!(seen.header("x-original-url"), None);
}

#[tokio::test]
async fn a_route_strips_headers_and_keys_on_others() {
    let upstream = Upstream::start(reflect).await;
    let gateway = GatewayProcess::start(
        &GatewayConfig::new(upstream.addr)
            .route_line("strip_request_headers: [X-Debug, Cookie]")
            .route_cache("key_headers: [X-Tenant]")
            .yaml(),
    );
    let a = request(
        gateway.addr,
        "GET",
        "/k",
        &[
            ("X-Tenant", "alpha"),
            ("X-Debug", "evil"),
            ("Cookie", "session=evil"),
        ],
    )
    .await;
    assert_eq!(a.cache(), "MISS");
    assert!(a.text().contains("x-tenant=alpha"), "{}", a.text());
    assert_eq!(
        attacker_values(&a.text()),
        Vec::<&str>::new(),
        "{}",
        a.text()
    );
    let seen = &upstream.requests()[0];
    assert_eq!(seen.header("x-debug"), None);
    assert_eq!(seen.header("cookie"), None);

    let b = request(gateway.addr, "GET", "/k", &[("X-Tenant", "beta")]).await;
    assert_eq!(
        b.cache(),
        "MISS",
        "another tenant must not get alpha's answer"
    );
    assert!(b.text().contains("x-tenant=beta"));
    let none = request(gateway.addr, "GET", "/k", &[]).await;
    assert_eq!(none.cache(), "MISS");
    assert!(!none.text().contains("x-tenant="));
    let a_again = request(gateway.addr, "GET", "/k", &[("x-tenant", "alpha")]).await;
    assert_eq!(a_again.cache(), "HIT");
    assert_eq!(a_again.text(), a.text());
    assert_eq!(upstream.total(), 3);
}
