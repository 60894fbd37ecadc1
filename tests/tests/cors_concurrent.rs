//! Many origins (allowed, disallowed, `null`, absent) hitting endpoints with and without
//! `Vary: Origin`, concurrently, with short and long freshness so variants are stored, served,
//! go stale and are refetched while other origins read them. Every response is checked against
//! the request's own origin: the body names the origin the upstream answered for, and the ACAO
//! must be the one the upstream gives that origin. Zero cross-origin answers are allowed.

use std::sync::Arc;
use std::time::Duration;

use cors_edge_tests::{
    request, GatewayConfig, GatewayProcess, Reply, Response, Route, Upstream, UpstreamRequest,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const ALLOWED: [&str; 3] = [
    "https://app.example.com",
    "https://admin.example.com",
    "https://dev.example.com",
];

const ORIGINS: [Option<&str>; 8] = [
    Some("https://app.example.com"),
    Some("https://admin.example.com"),
    Some("https://dev.example.com"),
    Some("https://evil.example"),
    Some("https://app.example.com.evil.com"),
    Some("null"),
    None,
    Some("https://x.example.com:8443"),
];

/// `vary`: echoes allowed origins with `Vary: Origin`; `novary`: echoes and forgets `Vary`;
/// `star`: `ACAO: *`, one body; `starvary`: `ACAO: *` with `Vary: Origin` and per-origin body.
const ENDPOINTS: [&str; 4] = ["vary", "novary", "star", "starvary"];
const GROUPS: usize = 4;
const ROUNDS: usize = 16;
const IN_FLIGHT: usize = 32;

fn made_for(origin: Option<&str>) -> String {
    format!("made-for: {}", origin.unwrap_or("none"))
}

fn api(req: &UpstreamRequest) -> Reply {
    let origin = req.header("origin");
    let allowed = origin.as_deref().filter(|o| ALLOWED.contains(o));
    // Odd groups go stale after a second, so refetches race with reads of other variants.
    let group_odd = req.path().starts_with("/g1/") || req.path().starts_with("/g3/");
    let cache_control = if group_odd { "max-age=1" } else { "max-age=60" };
    let delay = Duration::from_millis(2);
    if req.method == "OPTIONS" {
        return match allowed {
            Some(o) => Reply::status(204)
                .header("access-control-allow-origin", o)
                .header("access-control-allow-methods", "GET, PUT")
                .header("access-control-max-age", "1")
                .delay(delay),
            None => Reply::status(403).delay(delay),
        };
    }
    let per_origin = Reply::ok(made_for(origin.as_deref()))
        .header("cache-control", cache_control)
        .delay(delay);
    let echo = |reply: Reply| match allowed {
        Some(o) => reply.header("access-control-allow-origin", o),
        None => reply,
    };
    match req.path().rsplit('/').next().unwrap_or("") {
        "vary" => echo(per_origin).header("vary", "Origin"),
        "novary" => echo(per_origin),
        "star" => Reply::ok("made-for: everyone")
            .header("cache-control", cache_control)
            .header("access-control-allow-origin", "*")
            .delay(delay),
        "starvary" => per_origin
            .header("access-control-allow-origin", "*")
            .header("vary", "Origin"),
        _ => Reply::status(404),
    }
}

/// What is wrong with `resp` as the answer to `method path` from `origin`, if anything.
fn check(method: &str, endpoint: &str, origin: Option<&str>, resp: &Response) -> Option<String> {
    let allowed = origin.filter(|o| ALLOWED.contains(o));
    let acao = resp.header("access-control-allow-origin");
    let body = resp.text();
    let (status, expected_body, expected_acao) = if method == "OPTIONS" {
        match allowed {
            Some(o) => (204, String::new(), o.to_string()),
            None => (403, String::new(), String::new()),
        }
    } else {
        match endpoint {
            "vary" | "novary" => (200, made_for(origin), allowed.unwrap_or("").to_string()),
            "star" => (200, "made-for: everyone".to_string(), "*".to_string()),
            _ => (200, made_for(origin), "*".to_string()),
        }
    };
    (resp.status != status || body != expected_body || acao != expected_acao).then(|| {
        format!(
            "{method} /{endpoint} from {origin:?}: got status {} body {body:?} ACAO {acao:?} ({}), \
             expected {status} {expected_body:?} {expected_acao:?}",
            resp.status,
            resp.cache()
        )
    })
}

/// A fixed pseudo-random permutation so origins and endpoints interleave in flight.
fn shuffle<T>(items: &mut [T]) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..items.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = ((state >> 33) as usize) % (i + 1);
        items.swap(i, j);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_origins_never_get_another_origins_answer() {
    let upstream = Upstream::start(api).await;
    let config = GatewayConfig::new(upstream.addr)
        .cache("negative_preflight_ttl: 1s")
        .yaml();
    let gateway = GatewayProcess::start(&config);
    let addr = gateway.addr;

    let mut plan = Vec::new();
    for round in 0..ROUNDS {
        for group in 0..GROUPS {
            for endpoint in ENDPOINTS {
                for origin in ORIGINS {
                    // Every eighth request with an Origin is a preflight for the same path.
                    let method = if origin.is_some() && (round + group) % 8 == 7 {
                        "OPTIONS"
                    } else {
                        "GET"
                    };
                    plan.push((method, group, endpoint, origin));
                }
            }
        }
    }
    shuffle(&mut plan);
    let total = 2 * plan.len();

    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut problems = Vec::new();
    let mut hits = 0;
    let mut answered = 0;
    let mut fetches_after_first_pass = 0;
    // Two passes of the same plan, 1.2 s apart: in the second one the `max-age=1` variants are
    // stale, so they are served stale and refetched while other origins read their neighbours.
    for pass in 0..2 {
        if pass == 1 {
            fetches_after_first_pass = upstream.total();
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
        let mut tasks = JoinSet::new();
        for &(method, group, endpoint, origin) in &plan {
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await.expect("semaphore");
                let path = format!("/g{group}/{endpoint}");
                let mut headers: Vec<(&str, &str)> =
                    origin.map(|o| ("origin", o)).into_iter().collect();
                if method == "OPTIONS" {
                    headers.push(("access-control-request-method", "PUT"));
                }
                let resp = request(addr, method, &path, &headers).await;
                let problem = check(method, endpoint, origin, &resp);
                (resp.cache(), problem)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (cache, problem) = joined.expect("request task");
            answered += 1;
            if cache == "HIT" || cache == "STALE" {
                hits += 1;
            }
            problems.extend(problem);
        }
    }
    let fetches = upstream.total();
    println!(
        "upstream mode, concurrent: {answered} requests, {} cross-origin or wrong answers, {hits} served from cache, \
         {fetches} upstream fetches",
        problems.len()
    );
    assert_eq!(answered, total);
    assert!(
        problems.is_empty(),
        "{} wrong answers, first ones:\n{}",
        problems.len(),
        problems[..problems.len().min(10)].join("\n")
    );
    // The run exercised the cache, not only the upstream.
    assert!(
        hits > total / 2,
        "only {hits} of {total} requests came from the cache"
    );
    assert!(fetches < total);
    // And the second pass refetched the expired variants (so stores raced with reads).
    assert!(
        fetches > fetches_after_first_pass,
        "nothing was refetched after the max-age=1 entries went stale"
    );
}

/// Edge mode under the same load: the upstream grants a bogus origin on everything; every answer
/// must carry the request's own origin (or nothing), and the body is fetched once per path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_origins_in_edge_mode_get_their_own_grant() {
    let upstream = Upstream::start(|req| {
        Reply::ok(format!("body of {}", req.path()))
            .header("cache-control", "max-age=60")
            .header("access-control-allow-origin", "https://evil.example")
            .header("vary", "Origin")
            .delay(Duration::from_millis(2))
    })
    .await;
    let config = GatewayConfig::new(upstream.addr)
        .catch_all(
            Route::new("edge")
                .cors_edge(&[
                    "https://app.example.com",
                    "https://admin.example.com",
                    "https://dev.example.com",
                ])
                .cors("allow_credentials: true, allow_methods: [GET, PUT]"),
        )
        .yaml();
    let gateway = GatewayProcess::start(&config);
    let addr = gateway.addr;
    let mut plan = Vec::new();
    for round in 0..8 {
        for path in 0..4 {
            for origin in ORIGINS {
                let method = if origin.is_some() && round % 4 == 3 {
                    "OPTIONS"
                } else {
                    "GET"
                };
                plan.push((method, path, origin));
            }
        }
    }
    shuffle(&mut plan);
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for (method, path, origin) in plan {
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore");
            let path = format!("/e{path}");
            let mut headers: Vec<(&str, &str)> =
                origin.map(|o| ("origin", o)).into_iter().collect();
            if method == "OPTIONS" {
                headers.push(("access-control-request-method", "PUT"));
            }
            let resp = request(addr, method, &path, &headers).await;
            let allowed = origin.filter(|o| ALLOWED.contains(o)).unwrap_or("");
            let acao = resp.header("access-control-allow-origin");
            let body_ok = method == "OPTIONS" || resp.text() == format!("body of {path}");
            (acao != allowed || !body_ok).then(|| {
                format!(
                    "{method} {path} from {origin:?}: ACAO {acao:?}, body {:?}",
                    resp.text()
                )
            })
        });
    }
    let mut problems = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        problems.extend(joined.expect("request task"));
    }
    assert!(
        problems.is_empty(),
        "{} wrong answers:\n{}",
        problems.len(),
        problems[..problems.len().min(10)].join("\n")
    );
    for path in 0..4 {
        assert_eq!(
            upstream.hits(&format!("/e{path}")),
            1,
            "/e{path}: one body for every origin"
        );
    }
    assert!(
        upstream.requests().iter().all(|r| r.method == "GET"),
        "edge mode never forwards a preflight"
    );
}
