//! Request directives against stored responses (RFC 9111 §5.2.1 against §5.2.2), through the
//! gateway: whether an answer comes from the cache or needs the upstream. Plain requests take
//! the direct-hit path; `Pragma: x-probe` (a Pragma without `no-cache`, so the same meaning)
//! sends the same request down Pingora's cache path, and both must agree.

use std::time::{Duration, SystemTime};

use cors_edge_tests::upstream::http_date;
use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Upstream, UpstreamRequest};

/// No default stale windows: an expired answer is only served after validation.
fn config(upstream: std::net::SocketAddr) -> String {
    GatewayConfig::new(upstream)
        .cache("stale_while_revalidate: 0s, stale_if_error: 0s")
        .yaml()
}

/// Stored responses, by the first path segment: (segment, Cache-Control, dated 120 s ago).
/// The dated ones arrive 60 s stale and are stored because they carry a validator.
const STORED: [(&str, &str, bool); 7] = [
    ("fresh", "max-age=600", false),
    ("stale", "max-age=60", true),
    ("no-cache", "no-cache", false),
    ("must-revalidate", "max-age=60, must-revalidate", true),
    ("proxy-revalidate", "max-age=60, proxy-revalidate", true),
    ("s-maxage", "s-maxage=60", true),
    ("no-cache-field", "max-age=60, no-cache=\"x-secret\"", true),
];

fn api(req: &UpstreamRequest) -> Reply {
    let segment = req
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    let Some((_, cache_control, dated)) = STORED.iter().find(|(name, _, _)| *name == segment)
    else {
        return Reply::status(404);
    };
    let date = if *dated {
        SystemTime::now() - Duration::from_secs(120)
    } else {
        SystemTime::now()
    };
    if req.header("if-none-match").as_deref() == Some("\"v1\"") {
        return Reply::status(304)
            .header("date", &http_date(date))
            .header("cache-control", cache_control)
            .header("etag", "\"v1\"");
    }
    Reply::ok("body")
        .header("date", &http_date(date))
        .header("cache-control", cache_control)
        .header("etag", "\"v1\"")
}

/// What the second request must get: served from storage (with this `X-Cache`), or the
/// upstream asked (revalidated), or 504 for `only-if-cached`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Hit,
    Stale,
    Upstream,
    GatewayTimeout,
}
use Expect::*;

/// Request fields of one row of the table.
type Fields = &'static [(&'static str, &'static str)];

/// Rows: request fields; columns in the order of STORED.
fn table() -> Vec<(Fields, [Expect; 7])> {
    let revalidate_unless_fresh = [
        Hit, Upstream, Upstream, Upstream, Upstream, Upstream, Upstream,
    ];
    let max_stale = [Hit, Stale, Upstream, Upstream, Upstream, Upstream, Stale];
    vec![
        (&[], revalidate_unless_fresh),
        (&[("pragma", "x-probe")], revalidate_unless_fresh),
        (&[("cache-control", "max-stale")], max_stale),
        (&[("cache-control", "max-stale=1000")], max_stale),
        // 60 s stale is more than 10 s.
        (
            &[("cache-control", "max-stale=10")],
            revalidate_unless_fresh,
        ),
        (&[("cache-control", "min-fresh=1000")], [Upstream; 7]),
        (&[("cache-control", "max-age=0")], [Upstream; 7]),
        (&[("cache-control", "no-cache")], [Upstream; 7]),
        (&[("pragma", "no-cache")], [Upstream; 7]),
        (
            &[("cache-control", "only-if-cached")],
            [
                Hit,
                GatewayTimeout,
                GatewayTimeout,
                GatewayTimeout,
                GatewayTimeout,
                GatewayTimeout,
                GatewayTimeout,
            ],
        ),
        (
            &[("cache-control", "only-if-cached, max-stale")],
            [
                Hit,
                Stale,
                GatewayTimeout,
                GatewayTimeout,
                GatewayTimeout,
                GatewayTimeout,
                Stale,
            ],
        ),
    ]
}

#[tokio::test]
async fn request_directives_against_stored_responses() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    let mut failures = Vec::new();
    for (row, (fields, expected)) in table().into_iter().enumerate() {
        for ((segment, stored_cc, _), want) in STORED.iter().zip(expected) {
            let path = format!("/{segment}/{row}");
            let first = request(gateway.addr, "GET", &path, &[]).await;
            assert_eq!(first.status, 200, "{path}: first request");
            assert_eq!(first.cache(), "MISS", "{path}: first request");
            let before = upstream.hits(&path);
            let second = request(gateway.addr, "GET", &path, fields).await;
            let asked = upstream.hits(&path) - before;
            let got = match (second.status, second.cache().as_str(), asked) {
                (504, _, 0) => GatewayTimeout,
                (200, "HIT", 0) => Hit,
                (200, "STALE", 0) => Stale,
                (200, "REVALIDATED" | "EXPIRED" | "MISS", 1) => Upstream,
                other => panic!("{path} with {fields:?}: unexpected answer {other:?}"),
            };
            if got != want {
                failures.push(format!(
                    "request {fields:?} on stored `{stored_cc}`: expected {want:?}, got {got:?} (X-Cache {})",
                    second.cache()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The sequence from the issue that found the bug: a stored `no-cache` response must not be
/// served without validation, `max-stale` or not (RFC 9111 §5.2.2.4).
#[tokio::test]
async fn max_stale_does_not_lift_no_cache() {
    let upstream = Upstream::start(api).await;
    let gateway = GatewayProcess::start(&config(upstream.addr));
    let path = "/no-cache/sequence";
    assert_eq!(
        request(gateway.addr, "GET", path, &[]).await.cache(),
        "MISS"
    );
    assert_eq!(
        request(gateway.addr, "GET", path, &[]).await.cache(),
        "REVALIDATED"
    );
    let before = upstream.hits(path);
    let answer = request(
        gateway.addr,
        "GET",
        path,
        &[("cache-control", "max-stale=100")],
    )
    .await;
    assert_eq!(answer.cache(), "REVALIDATED");
    assert_eq!(
        upstream.hits(path),
        before + 1,
        "validated with the upstream"
    );
    let conditional = upstream.requests().last().cloned().expect("a request");
    assert_eq!(
        conditional.header("if-none-match").as_deref(),
        Some("\"v1\"")
    );
}
