//! Targeted cache control (RFC 9213: `CDN-Cache-Control` and the operator's own fields),
//! `Surrogate-Control`, and `Age` (RFC 9111 §5.1), through the gateway. How long a response is
//! stored is read from the debug header's storage verdict (`fresh_for=Ns`), so nothing waits.

use cors_edge_tests::{
    request, GatewayConfig, GatewayProcess, Reply, Route, Upstream, UpstreamRequest,
};

/// Upstream answers by path: the response's cache fields.
const ANSWERS: &[(&str, &[(&str, &str)])] = &[
    // The two cases.
    (
        "/cdn-overrides-no-store",
        &[
            ("cache-control", "no-store"),
            ("cdn-cache-control", "max-age=600"),
        ],
    ),
    (
        "/cdn-private",
        &[
            ("cache-control", "max-age=600"),
            ("cdn-cache-control", "private"),
        ],
    ),
    // Invalid as a Structured Field Dictionary (upper-case key): ignored as a whole.
    (
        "/cdn-invalid",
        &[
            ("cache-control", "no-store"),
            ("cdn-cache-control", "Max-Age=600"),
        ],
    ),
    (
        "/cdn-spaces",
        &[
            ("cache-control", "max-age=30"),
            ("cdn-cache-control", "max-age = 600"),
        ],
    ),
    // Past RFC 8941's 15 digits: clamps to 2^31 instead of voiding the field.
    (
        "/cdn-huge",
        &[
            ("cache-control", "no-store"),
            ("cdn-cache-control", "max-age=99999999999999999999"),
        ],
    ),
    // Expires is ignored when a targeted field governs.
    (
        "/cdn-ignores-expires",
        &[
            ("cdn-cache-control", "public"),
            ("expires", "Fri, 01 Jan 2100 00:00:00 GMT"),
        ],
    ),
    // The operator's own field comes first in the configured list.
    (
        "/own-field-first",
        &[
            ("acme-cdn-cache-control", "max-age=300"),
            ("cdn-cache-control", "no-store"),
            ("cache-control", "no-store"),
        ],
    ),
    (
        "/own-field-invalid",
        &[
            ("acme-cdn-cache-control", "max-age=300;"),
            ("cdn-cache-control", "max-age=200"),
        ],
    ),
    // Surrogate-Control: honoured without a targeted field, below one.
    (
        "/surrogate",
        &[
            ("cache-control", "no-store"),
            ("surrogate-control", "max-age=300, content=\"ESI/1.0\""),
        ],
    ),
    (
        "/surrogate-no-store",
        &[
            ("cache-control", "max-age=600"),
            ("surrogate-control", "no-store"),
        ],
    ),
    (
        "/surrogate-below-cdn",
        &[
            ("surrogate-control", "no-store"),
            ("cdn-cache-control", "max-age=200"),
        ],
    ),
    // Age (RFC 9111 §5.1): invalid values are ignored, a list's first member counts, 2^31 is stale.
    (
        "/age-text",
        &[("cache-control", "max-age=600"), ("age", "abc")],
    ),
    (
        "/age-negative",
        &[("cache-control", "max-age=600"), ("age", "-5")],
    ),
    (
        "/age-decimal",
        &[("cache-control", "max-age=600"), ("age", "5.5")],
    ),
    (
        "/age-list",
        &[("cache-control", "max-age=600"), ("age", "100, 500")],
    ),
    (
        "/age-two-lines",
        &[
            ("cache-control", "max-age=600"),
            ("age", "100"),
            ("age", "500"),
        ],
    ),
    (
        "/age-huge",
        &[("cache-control", "max-age=600"), ("age", "2147483648")],
    ),
];

fn api(req: &UpstreamRequest) -> Reply {
    let Some((_, fields)) = ANSWERS.iter().find(|(path, _)| *path == req.path()) else {
        return Reply::status(404);
    };
    fields
        .iter()
        .fold(Reply::ok("body"), |reply, (name, value)| {
            reply.header(name, value)
        })
}

/// Acme-CDN-Cache-Control before CDN-Cache-Control; `/pass/` uncached; debug on the rest.
fn config(upstream: std::net::SocketAddr) -> String {
    GatewayConfig::new(upstream)
        .cache("targeted_fields: [Acme-CDN-Cache-Control, CDN-Cache-Control]")
        .route(Route::prefix("pass", "/pass/").cache("enabled: false"))
        .route_debug()
        .yaml()
}

/// The storage verdict of the debug header: `stored fresh_for=600s` or `not_stored:private`.
fn storage(debug: &str) -> String {
    debug
        .split("; ")
        .find_map(|part| part.strip_prefix("storage="))
        .unwrap_or("-")
        .to_string()
}

/// Expected storage: stored with about this many seconds of freshness (the upstream's `Date`
/// has one-second precision), or not stored for this reason.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Fresh(u64),
    Not(&'static str),
}

fn matches(verdict: &str, want: Expect) -> bool {
    match want {
        Expect::Not(reason) => verdict == format!("not_stored:{reason}"),
        Expect::Fresh(secs) => verdict
            .strip_prefix("stored fresh_for=")
            .and_then(|s| s.strip_suffix('s'))
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|got| got <= secs && got + 2 >= secs),
    }
}

#[tokio::test]
async fn the_governing_field_decides_storage_and_reuse() {
    use Expect::*;
    let table: [(&str, Expect); 17] = [
        ("/cdn-overrides-no-store", Fresh(600)),
        ("/cdn-private", Not("private")),
        ("/cdn-invalid", Not("no_store")),
        ("/cdn-spaces", Fresh(30)),
        ("/cdn-huge", Fresh(1 << 31)),
        ("/cdn-ignores-expires", Not("no_freshness")),
        ("/own-field-first", Fresh(300)),
        ("/own-field-invalid", Fresh(200)),
        ("/surrogate", Fresh(300)),
        ("/surrogate-no-store", Not("no_store")),
        ("/surrogate-below-cdn", Fresh(200)),
        ("/age-text", Fresh(600)),
        ("/age-negative", Fresh(600)),
        ("/age-decimal", Fresh(600)),
        ("/age-list", Fresh(500)),
        ("/age-two-lines", Fresh(500)),
        ("/age-huge", Not("stale")),
    ];
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    let mut failures = Vec::new();
    for (path, want) in table {
        let first = request(gateway.addr, "GET", path, &[]).await;
        let verdict = storage(&first.header("x-cors-edge-debug"));
        if first.status != 200 || !matches(&verdict, want) {
            failures.push(format!(
                "{path}: expected {want:?}, got {} {verdict}",
                first.status
            ));
            continue;
        }
        // A stored response is reused on the direct-hit path and on Pingora's cache path
        // (`Pragma: x-probe` takes the latter); one that is not stored never is.
        for fields in [&[][..], &[("pragma", "x-probe")][..]] {
            let before = upstream.hits(path);
            let again = request(gateway.addr, "GET", path, fields).await;
            let from_cache = upstream.hits(path) == before;
            let stored = matches!(want, Fresh(_));
            if from_cache != stored || (stored && again.cache() != "HIT") {
                failures.push(format!(
                    "{path} {fields:?}: stored={stored}, but X-Cache {} and from cache {from_cache}",
                    again.cache()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `Cache-Control` reaches the browser unchanged; the targeted field stays too (RFC 9213
/// leaves forwarding it to the cache, and a CDN behind this one may be its target).
#[tokio::test]
async fn cache_control_goes_downstream_unchanged() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    let path = "/cdn-overrides-no-store";
    for _ in 0..2 {
        let answer = request(gateway.addr, "GET", path, &[]).await;
        assert_eq!(answer.header("cache-control"), "no-store");
        assert_eq!(answer.header("cdn-cache-control"), "max-age=600");
    }
    assert_eq!(upstream.hits(path), 1);
}

/// Surrogate-Control is for this cache only: removed from every answer, stored or not,
/// cached route or not, as Fastly and Akamai do.
#[tokio::test]
async fn surrogate_control_never_reaches_the_client() {
    let upstream = Upstream::start(|req: &UpstreamRequest| {
        Reply::ok("body")
            .header("surrogate-control", "max-age=300")
            .header(
                "cache-control",
                if req.path().ends_with("no-store") {
                    "no-store"
                } else {
                    "max-age=60"
                },
            )
    })
    .await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    let cases: [(&str, &str); 5] = [
        ("GET", "/stored"),
        ("GET", "/stored"),
        ("GET", "/sc-no-store"),
        ("GET", "/pass/uncached"),
        ("POST", "/stored"),
    ];
    for (method, path) in cases {
        let answer = request(gateway.addr, method, path, &[]).await;
        assert_eq!(answer.status, 200, "{method} {path}");
        assert!(
            !answer.has("surrogate-control"),
            "{method} {path} ({}) carries Surrogate-Control",
            answer.cache()
        );
    }
    assert_eq!(upstream.hits("/stored"), 2, "the second GET was a hit");
}

/// On a hit, the stored response's targeted directives decide whether it may be served stale:
/// `Cache-Control: must-revalidate` does not forbid it when `CDN-Cache-Control` governs, and a
/// targeted `must-revalidate` forbids it whatever `Cache-Control` says.
#[tokio::test]
async fn hits_follow_the_stored_targeted_directives() {
    let upstream = Upstream::start(|req: &UpstreamRequest| {
        // 120 s old on arrival, fresh for 60 s: stored stale, kept for its validator.
        let date = cors_edge_tests::upstream::http_date(
            std::time::SystemTime::now() - std::time::Duration::from_secs(120),
        );
        let (cc, cdn) = if req.path() == "/lenient" {
            ("max-age=60, must-revalidate", "max-age=60")
        } else {
            ("max-age=60", "max-age=60, must-revalidate")
        };
        let reply = if req.header("if-none-match").as_deref() == Some("\"v1\"") {
            Reply::status(304)
        } else {
            Reply::ok("body")
        };
        reply
            .header("date", &date)
            .header("etag", "\"v1\"")
            .header("cache-control", cc)
            .header("cdn-cache-control", cdn)
    })
    .await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    for (path, want) in [("/lenient", "STALE"), ("/strict", "REVALIDATED")] {
        assert_eq!(
            request(gateway.addr, "GET", path, &[]).await.cache(),
            "MISS"
        );
        let answer = request(gateway.addr, "GET", path, &[("cache-control", "max-stale")]).await;
        assert_eq!(answer.cache(), want, "{path} with max-stale");
    }
}
