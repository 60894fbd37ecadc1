//! The debug answer header (`X-Cors-Edge-Debug`: only with the admin token or a route's
//! `debug: true`, never forwarded upstream) and every known metric series at 0 before the
//! first request.

use cors_edge_tests::{
    request, GatewayConfig, GatewayProcess, Reply, Route, Upstream, UpstreamRequest,
};

const TOKEN: &str = "debug-s3cret";

fn api(req: &UpstreamRequest) -> Reply {
    let origin = req.header("origin").unwrap_or_default();
    Reply::ok("{}")
        .header("cache-control", "max-age=600")
        .header("vary", "Accept-Language")
        .header("access-control-allow-origin", &origin)
}

fn start(upstream: &Upstream) -> GatewayProcess {
    let config = GatewayConfig::new(upstream.addr)
        .admin_token_env("CE_DEBUG_TOKEN")
        .route(Route::prefix("staging", "/staging/").debug())
        .yaml();
    GatewayProcess::start_with_env(&config, &[("CE_DEBUG_TOKEN", TOKEN)])
}

#[tokio::test]
async fn the_debug_header_needs_the_admin_token_and_never_reaches_the_upstream() {
    let upstream = Upstream::start(api).await;
    let gateway = start(&upstream);
    let origin = ("origin", "https://app.example");
    let language = ("accept-language", "de");

    let plain = request(gateway.addr, "GET", "/a", &[origin, language]).await;
    assert_eq!(plain.cache(), "MISS");
    assert!(!plain.has("x-cors-edge-debug"), "no token, no debug header");

    let wrong = request(
        gateway.addr,
        "GET",
        "/a",
        &[origin, language, ("x-cors-edge-debug", "guess")],
    )
    .await;
    assert!(
        !wrong.has("x-cors-edge-debug"),
        "a wrong token shows nothing"
    );

    // A hit, answered on the direct path, explains itself.
    let hit = request(
        gateway.addr,
        "GET",
        "/a",
        &[origin, language, ("x-cors-edge-debug", TOKEN)],
    )
    .await;
    assert_eq!(hit.cache(), "HIT");
    let debug = hit.header("x-cors-edge-debug");
    for fact in [
        "status=HIT",
        "route=api",
        "cors_mode=upstream",
        "origin=\"https://app.example\"",
        "key=\"http|",
        "/a\"",
        "accept-language=\"de\"",
        // The origin part of the variance (`=` marks a present Origin, apart from absent).
        ":origin=\"=https://app.example\"",
        "hit_verdict=Serve",
        "cors_decision=upstream_origin",
    ] {
        assert!(debug.contains(fact), "{fact:?} missing from {debug:?}");
    }

    // A miss says why it was stored and what the response's CORS means for sharing.
    let miss = request(
        gateway.addr,
        "GET",
        "/b",
        &[origin, ("x-cors-edge-debug", TOKEN)],
    )
    .await;
    let debug = miss.header("x-cors-edge-debug");
    assert!(debug.contains("status=MISS"), "{debug}");
    // 599 or 600 s: the upstream's Date has whole seconds.
    assert!(
        debug.contains("storage=stored fresh_for=59")
            || debug.contains("storage=stored fresh_for=600s"),
        "{debug}"
    );
    assert!(debug.contains("response_cors=per_origin"), "{debug}");

    for seen in upstream.requests() {
        assert!(
            seen.header("x-cors-edge-debug").is_none(),
            "the token reached the upstream on {}",
            seen.path()
        );
    }
}

#[tokio::test]
async fn a_debug_route_explains_every_answer() {
    let upstream = Upstream::start(api).await;
    let gateway = start(&upstream);
    let answer = request(gateway.addr, "GET", "/staging/x", &[]).await;
    let debug = answer.header("x-cors-edge-debug");
    assert!(debug.contains("route=staging"), "{debug:?}");
    assert!(debug.contains("status=MISS"), "{debug:?}");
    let other = request(gateway.addr, "GET", "/x", &[]).await;
    assert!(!other.has("x-cors-edge-debug"));
}

/// One series line of the exposition, with its value.
fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.split_once(' ').is_some_and(|(name, _)| name == series))
        .and_then(|line| line.rsplit_once(' '))
        .and_then(|(_, value)| value.parse().ok())
}

#[tokio::test]
async fn every_known_series_exists_at_zero_before_any_traffic() {
    let upstream = Upstream::start(api).await;
    let gateway = start(&upstream);
    let metrics = request(gateway.admin, "GET", "/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    let mut expected = Vec::new();
    for route in ["staging", "api"] {
        for kind in ["simple", "preflight", "other"] {
            for cache in ["HIT", "MISS", "STALE", "EXPIRED", "REVALIDATED", "BYPASS"] {
                expected.push(format!(
                    "cors_edge_requests_total{{cache=\"{cache}\",kind=\"{kind}\",route=\"{route}\"}}"
                ));
            }
        }
        for decision in [
            "allowed",
            "allowed_any",
            "no_origin",
            "invalid_origin",
            "denied_origin",
            "denied_method",
            "denied_headers",
            "upstream_none",
            "upstream_wildcard",
            "upstream_origin",
        ] {
            expected.push(format!(
                "cors_edge_cors_decisions_total{{decision=\"{decision}\",route=\"{route}\"}}"
            ));
        }
        for result in ["hit", "miss", "answered", "denied"] {
            expected.push(format!(
                "cors_edge_preflight_total{{result=\"{result}\",route=\"{route}\"}}"
            ));
        }
    }
    for selector in ["origin", "host", "prefix", "url", "tag", "all", "combined"] {
        expected.push(format!("cors_edge_purges_total{{selector=\"{selector}\"}}"));
    }
    for reason in [
        "acao_without_vary",
        "wildcard_with_credentials",
        "acao_other_origin",
        "multiple_acao",
        "acao_without_request_origin",
    ] {
        expected.push(format!(
            "cors_edge_unsafe_upstream_responses_total{{reason=\"{reason}\"}}"
        ));
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|series| value_of(&text, series) != Some(0.0))
        .collect();
    assert!(
        missing.is_empty(),
        "not exported at 0 before traffic: {missing:?}\n{text}"
    );
    assert_eq!(upstream.total(), 0);
}
