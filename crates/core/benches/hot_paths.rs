//! Criterion benchmarks of the pure functions the gateway calls on every request.
//!
//! `cargo bench -p cors-edge-core` runs them all (about a minute); a filter narrows it:
//! `cargo bench -p cors-edge-core -- origin/`.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use cors_edge_core::cors::{self, CorsPolicy, PolicySpec};
use cors_edge_core::freshness::{self, CacheControl, Policy, ResponseFacts, StorageRequest};
use cors_edge_core::key::{self, KeyParts, PreflightParts};
use cors_edge_core::vary;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn policy_with(origins: Vec<String>) -> CorsPolicy {
    let spec = PolicySpec {
        allow_origins: origins,
        allow_any_origin: false,
        allow_credentials: true,
        allow_methods: ["GET", "POST", "PUT", "PATCH", "DELETE"]
            .map(String::from)
            .to_vec(),
        allow_headers: ["Authorization", "Content-Type", "X-Requested-With"]
            .map(String::from)
            .to_vec(),
        expose_headers: ["ETag", "Link", "Retry-After"].map(String::from).to_vec(),
        max_age: Some(Duration::from_secs(600)),
    };
    match CorsPolicy::compile(&spec) {
        Ok(policy) => policy,
        Err(e) => panic!("benchmark policy does not compile: {e}"),
    }
}

/// `n` exact origins `https://app{i}.example.com`.
fn exact_origins(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("https://app{i}.example.com"))
        .collect()
}

/// `n` wildcard patterns `https://*.tenant{i}.example.net`.
fn wildcard_origins(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("https://*.tenant{i}.example.net"))
        .collect()
}

fn bench_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("key");
    group.bench_function("primary_key/object", |b| {
        b.iter(|| {
            key::primary_key(black_box(&KeyParts {
                route: "api",
                tls: true,
                host: "api.example.com",
                path_and_query: "/v1/items/42?fields=name,price&lang=en",
                preflight: None,
            }))
        })
    });
    group.bench_function("primary_key/preflight", |b| {
        b.iter(|| {
            key::primary_key(black_box(&KeyParts {
                route: "api",
                tls: true,
                host: "API.Example.com.:8080",
                path_and_query: "/v1/items/42",
                preflight: Some(PreflightParts {
                    origin: b"https://app.example.com",
                    request_method: b"PUT",
                    request_headers: "authorization,content-type",
                }),
            }))
        })
    });
    group.bench_function("origin_variance_value", |b| {
        b.iter(|| key::origin_variance_value(black_box(Some(b"https://app.example.com"))))
    });
    group.finish();
}

fn bench_request_headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("acrh");
    let cases: [(&str, &[&[u8]]); 3] = [
        ("one", &[b"content-type"]),
        (
            "typical",
            &[b"Content-Type, Authorization, X-Requested-With"],
        ),
        (
            "messy",
            &[
                b" X-B ,x-a,, Content-Type ",
                b"AUTHORIZATION, x-a, x-custom-trace-id, X-B",
            ],
        ),
    ];
    for (name, lines) in cases {
        group.bench_with_input(
            BenchmarkId::new("normalize_request_headers", name),
            &lines,
            |b, lines| b.iter(|| cors::normalize_request_headers(black_box(lines.iter().copied()))),
        );
    }
    group.finish();
}

fn bench_origins(c: &mut Criterion) {
    let mut group = c.benchmark_group("origin");
    for n in [10, 100] {
        let exact = policy_with(exact_origins(n));
        // The last entry: the worst case of a linear scan.
        let last = format!("https://app{}.example.com", n - 1);
        group.bench_with_input(BenchmarkId::new("exact/hit_last", n), &last, |b, o| {
            b.iter(|| exact.allows_origin(black_box(o.as_bytes())))
        });
        group.bench_function(BenchmarkId::new("exact/miss", n), |b| {
            b.iter(|| exact.allows_origin(black_box(b"https://evil.example.org")))
        });
        let wildcard = policy_with(wildcard_origins(n));
        let deep = format!("https://eu.app.tenant{}.example.net", n - 1);
        group.bench_with_input(BenchmarkId::new("wildcard/hit_last", n), &deep, |b, o| {
            b.iter(|| wildcard.allows_origin(black_box(o.as_bytes())))
        });
        group.bench_function(BenchmarkId::new("wildcard/miss", n), |b| {
            b.iter(|| wildcard.allows_origin(black_box(b"https://tenant1.example.net.evil.io")))
        });
    }
    group.finish();
}

fn bench_policy(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy");
    let mut origins = exact_origins(9);
    origins.push("https://*.example.net".to_string());
    let policy = policy_with(origins);
    group.bench_function("actual_response/allowed", |b| {
        b.iter(|| policy.actual_response(black_box(Some(b"https://app8.example.com"))))
    });
    group.bench_function("actual_response/denied", |b| {
        b.iter(|| policy.actual_response(black_box(Some(b"https://evil.example.org"))))
    });
    group.bench_function("actual_response/no_origin", |b| {
        b.iter(|| policy.actual_response(black_box(None)))
    });
    group.bench_function("preflight/granted", |b| {
        b.iter(|| {
            policy.preflight(
                black_box(b"https://a.b.example.net"),
                black_box(b"PUT"),
                black_box("authorization,content-type"),
            )
        })
    });
    group.bench_function("preflight/denied_header", |b| {
        b.iter(|| {
            policy.preflight(
                black_box(b"https://app3.example.com"),
                black_box(b"PUT"),
                black_box("content-type,x-not-allowed"),
            )
        })
    });
    group.bench_function("classify/preflight", |b| {
        b.iter(|| {
            cors::classify(
                black_box("OPTIONS"),
                black_box(Some(b"https://app.example.com")),
                black_box(Some(b"PUT")),
            )
        })
    });
    group.finish();
}

fn bench_vary(c: &mut Criterion) {
    let mut group = c.benchmark_group("vary");
    let cases: [(&str, &[&[u8]]); 3] = [
        ("origin", &[b"Origin"]),
        ("three", &[b"Accept-Encoding, Origin", b"accept-language"]),
        ("star", &[b"Origin, *"]),
    ];
    for (name, lines) in cases {
        group.bench_with_input(BenchmarkId::new("parse_vary", name), &lines, |b, lines| {
            b.iter(|| vary::parse_vary(black_box(lines.iter().copied())))
        });
    }
    group.bench_function("vary_with_origin/accept-encoding", |b| {
        b.iter(|| vary::vary_with_origin(black_box([&b"Accept-Encoding"[..]])))
    });
    group.bench_function("names_origin", |b| {
        let parsed = vary::parse_vary([&b"Accept-Encoding, Origin"[..]]);
        b.iter(|| vary::names_origin(black_box(&parsed)))
    });
    group.finish();
}

fn bench_cache_control(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache_control");
    let cases: [(&str, &[u8]); 4] = [
        ("public_max_age", b"public, max-age=600"),
        (
            "full",
            b"public, max-age=600, s-maxage=300, stale-while-revalidate=30, stale-if-error=600",
        ),
        (
            "private_fields",
            b"max-age=60, private=\"set-cookie, x-user\", no-cache=\"x-debug\"",
        ),
        ("request_no_cache", b"no-cache"),
    ];
    for (name, line) in cases {
        group.bench_with_input(BenchmarkId::new("parse", name), &line, |b, line| {
            b.iter(|| CacheControl::parse(black_box([*line])))
        });
    }
    group.bench_function("pragma_has_no_cache", |b| {
        b.iter(|| freshness::pragma_has_no_cache(black_box([&b"no-cache"[..]])))
    });

    let now = SystemTime::now();
    let policy = Policy {
        max_ttl: Some(Duration::from_secs(3600)),
        default_stale_while_revalidate: Duration::from_secs(10),
        default_stale_if_error: Duration::from_secs(60),
    };
    let no_lines: [&[u8]; 0] = [];
    let request = StorageRequest {
        method: "GET",
        cache_control: None,
        authorization: false,
        sent_at: now,
    };
    let date = httpdate::fmt_http_date(now);
    let dates = [date.as_bytes()];
    let response_cc: [&[u8]; 1] = [b"public, max-age=600"];
    let vary_lines: [&[u8]; 1] = [b"Origin"];
    let age: [&[u8]; 1] = [b"3"];
    let response = ResponseFacts {
        status: 200,
        cache_control: &response_cc,
        targeted: &[],
        surrogate_control: &[],
        expires: &no_lines,
        date: &dates,
        age: &age,
        vary: &vary_lines,
        set_cookie: false,
        has_validator: true,
        received_at: now,
    };
    group.bench_function("storage_decision/max_age", |b| {
        b.iter(|| freshness::storage_decision(black_box(&request), black_box(&response), &policy))
    });
    let expires = [&b"Thu, 01 Jan 2099 00:00:00 GMT"[..]];
    let heuristic_cc: [&[u8]; 1] = [b"public"];
    let expires_response = ResponseFacts {
        cache_control: &heuristic_cc,
        expires: &expires,
        ..response
    };
    group.bench_function("storage_decision/expires", |b| {
        b.iter(|| {
            freshness::storage_decision(black_box(&request), black_box(&expires_response), &policy)
        })
    });
    let stored = freshness::Stored::at(
        now - Duration::from_secs(5),
        now + Duration::from_secs(595),
        now,
        false,
    );
    let plain = CacheControl::default();
    group.bench_function("request_requires_revalidation/plain", |b| {
        b.iter(|| {
            freshness::request_requires_revalidation(black_box(&plain), false, black_box(&stored))
        })
    });
    group.finish();
}

fn config() -> Criterion {
    // Short runs and no plots (drawing them takes longer than measuring): the whole file
    // stays well under two minutes on a small machine.
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .sample_size(30)
        .without_plots()
}

criterion_group! {
    name = hot_paths;
    config = config();
    targets = bench_key, bench_request_headers, bench_origins, bench_policy, bench_vary,
        bench_cache_control
}
criterion_main!(hot_paths);
