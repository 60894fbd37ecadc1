//! Compression at the edge and `Accept-Encoding` in the variance: browsers' spellings of one
//! coding share a stored copy, an uncompressed upstream answer is stored compressed once per
//! coding and served from cache, identity clients get their own variant, and what must not be
//! compressed (already encoded, no-transform, other types, small, non-200) passes untouched.
//! Every compressed body is decoded here and compared with the upstream's bytes.

use std::io::Read;

use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Response, Upstream};

/// A JSON document large enough to span several reads of the upstream body.
fn document() -> String {
    let items: Vec<String> = (0..4000)
        .map(|i| format!("{{\"id\":{i},\"name\":\"item {i}\",\"tags\":[\"a\",\"b\"]}}"))
        .collect();
    format!("[{}]", items.join(","))
}

fn decode(response: &Response) -> Vec<u8> {
    let body = &response.body[..];
    let mut out = Vec::new();
    match response.header("content-encoding").as_str() {
        "" => out.extend_from_slice(body),
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("valid brotli");
        }
        "zstd" => out = zstd::decode_all(body).expect("valid zstd"),
        other => panic!("unexpected Content-Encoding {other:?}"),
    }
    out
}

/// An upstream serving `document()` as cacheable JSON with a strong ETag, and HEAD with GET's
/// length.
async fn json_upstream() -> Upstream {
    Upstream::start(|req| {
        let body = document();
        let reply = Reply::ok(body.clone())
            .header("content-type", "application/json")
            .header("cache-control", "max-age=60")
            .header("etag", "\"v1\"");
        if req.method == "HEAD" {
            reply.header("content-length", &body.len().to_string())
        } else {
            reply
        }
    })
    .await
}

async fn get(gateway: &GatewayProcess, path: &str, accept_encoding: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = accept_encoding
        .map(|value| ("accept-encoding", value))
        .into_iter()
        .collect();
    request(gateway.addr, "GET", path, &headers).await
}

#[tokio::test]
async fn compressed_copies_are_stored_per_coding_and_served_as_hits() {
    let upstream = json_upstream().await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let original = document().into_bytes();

    // What curl --compressed, Chromium and Firefox send, and each coding alone.
    let cases: &[(&str, &str, &str)] = &[
        ("deflate, gzip, br, zstd", "br", "MISS"),
        ("deflate, gzip, br, zstd", "br", "HIT"),
        // Another spelling of the same choice: the same stored copy.
        ("gzip, deflate, br", "br", "HIT"),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", "br", "HIT"),
        ("gzip", "gzip", "MISS"),
        ("gzip, deflate", "gzip", "HIT"),
        ("br;q=0, gzip", "gzip", "HIT"),
        ("zstd", "zstd", "MISS"),
        ("zstd;q=1, br;q=0.5", "zstd", "HIT"),
    ];
    for (accept_encoding, coding, status) in cases {
        let answer = get(&gateway, "/doc", Some(accept_encoding)).await;
        let what = format!("Accept-Encoding {accept_encoding:?}");
        assert_eq!(answer.status, 200, "{what}");
        assert_eq!(answer.cache(), *status, "{what}");
        assert_eq!(answer.header("content-encoding"), *coding, "{what}");
        assert!(answer.varies_on("accept-encoding"), "{what}");
        assert!(!answer.has("content-length"), "{what}");
        assert_eq!(answer.header("etag"), "W/\"v1\"", "{what}");
        assert!(
            answer.body.len() * 5 < original.len(),
            "{what}: not compressed"
        );
        assert_eq!(decode(&answer), original, "{what}");
    }

    // No Accept-Encoding, an empty one, or only codings the gateway does not make: identity,
    // from a variant of its own, with the upstream's length and strong ETag.
    for (accept_encoding, status) in [(None, "MISS"), (Some(""), "HIT"), (Some("deflate"), "HIT")] {
        let answer = get(&gateway, "/doc", accept_encoding).await;
        let what = format!("Accept-Encoding {accept_encoding:?}");
        assert_eq!(answer.cache(), status, "{what}");
        assert!(!answer.has("content-encoding"), "{what}");
        assert!(answer.varies_on("accept-encoding"), "{what}");
        assert_eq!(answer.header("content-length"), original.len().to_string());
        assert_eq!(answer.header("etag"), "\"v1\"", "{what}");
        assert_eq!(answer.body, original, "{what}");
    }

    // One upstream fetch per coding, each asking for that coding only.
    let asked: Vec<String> = upstream
        .requests()
        .iter()
        .map(|r| r.header("accept-encoding").unwrap_or_default())
        .collect();
    assert_eq!(asked, ["br", "gzip", "zstd", "identity"]);
}

#[tokio::test]
async fn upstream_encoded_answers_pass_untouched() {
    let upstream = Upstream::start(|req| {
        let body = document();
        // An upstream that compresses itself when asked.
        if req.header("accept-encoding").as_deref() == Some("gzip") {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            std::io::Write::write_all(&mut encoder, body.as_bytes()).expect("gzip");
            Reply::ok(encoder.finish().expect("gzip"))
                .header("content-encoding", "gzip")
                .header("vary", "Accept-Encoding")
        } else {
            Reply::ok(body).header("vary", "Accept-Encoding")
        }
        .header("content-type", "application/json")
        .header("cache-control", "max-age=60")
        .header("etag", "\"up\"")
    })
    .await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let original = document().into_bytes();

    for status in ["MISS", "HIT"] {
        let answer = get(&gateway, "/pre", Some("gzip, deflate")).await;
        assert_eq!(answer.cache(), status);
        assert_eq!(answer.header("content-encoding"), "gzip");
        // Untouched: the upstream's validator and framing, one Vary member.
        assert_eq!(answer.header("etag"), "\"up\"");
        assert!(answer.has("content-length"));
        assert_eq!(
            answer
                .vary_members()
                .iter()
                .filter(|m| m.eq_ignore_ascii_case("accept-encoding"))
                .count(),
            1
        );
        assert_eq!(decode(&answer), original);
    }
    // A brotli client: the upstream does not make br, so the gateway does.
    let answer = get(&gateway, "/pre", Some("br, gzip")).await;
    assert_eq!(answer.header("content-encoding"), "br");
    assert_eq!(decode(&answer), original);
}

#[tokio::test]
async fn what_must_not_be_compressed_is_sent_as_the_upstream_sent_it() {
    let upstream = Upstream::start(|req| {
        let big = document();
        let reply = match req.path() {
            "/no-transform" => Reply::ok(big).header("cache-control", "max-age=60, no-transform"),
            "/png" => Reply::ok(big).header("content-type", "image/png"),
            "/small" => Reply::ok("{\"ok\":true}"),
            "/missing" => Reply {
                status: 404,
                ..Reply::ok(big)
            },
            _ => Reply::ok(big),
        };
        let reply = if req.path() == "/png" {
            reply
        } else {
            reply.header("content-type", "application/json")
        };
        reply.header("cache-control", "max-age=60")
    })
    .await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).route_debug().yaml());
    for (path, why) in [
        ("/no-transform", "no_transform"),
        ("/png", "type"),
        ("/small", "small"),
        ("/missing", "status"),
    ] {
        let answer = get(&gateway, path, Some("gzip, deflate, br, zstd")).await;
        let debug = answer.header("x-cors-edge-debug");
        assert!(
            debug.contains(&format!("coding=br; compression=untouched:{why}")),
            "{path}: {debug}"
        );
        assert!(!answer.has("content-encoding"), "{path}");
        assert!(!answer.varies_on("accept-encoding"), "{path}");
        assert!(answer.has("content-length"), "{path}");
        let expected = if path == "/small" {
            "{\"ok\":true}".to_string()
        } else {
            document()
        };
        assert_eq!(answer.text(), expected, "{path}");
    }
}

#[tokio::test]
async fn route_settings_choose_types_and_can_turn_compression_off() {
    let upstream = Upstream::start(|req| {
        let kind = if req.path().starts_with("/csv") {
            "text/csv"
        } else {
            "application/json"
        };
        Reply::ok(document())
            .header("content-type", kind)
            .header("cache-control", "max-age=60")
    })
    .await;
    let typed = GatewayProcess::start(
        &GatewayConfig::new(upstream.addr)
            .route_compression("types: [text/csv], min_bytes: 1KiB, level: 9")
            .yaml(),
    );
    let csv = get(&typed, "/csv", Some("gzip")).await;
    assert_eq!(csv.header("content-encoding"), "gzip");
    assert_eq!(decode(&csv), document().into_bytes());
    let json = get(&typed, "/json", Some("gzip")).await;
    assert!(!json.has("content-encoding"));

    let off = GatewayProcess::start(
        &GatewayConfig::new(upstream.addr)
            .route_compression("enabled: false")
            .yaml(),
    );
    let json = get(&off, "/json", Some("gzip, br")).await;
    assert!(!json.has("content-encoding"));
    assert!(!json.varies_on("accept-encoding"));
    assert_eq!(json.text(), document());
}

#[tokio::test]
async fn head_answers_carry_the_headers_of_get() {
    let upstream = json_upstream().await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let br = [("accept-encoding", "gzip, br")];
    let head_cold = request(gateway.addr, "HEAD", "/h", &br).await;
    let get = request(gateway.addr, "GET", "/h", &br).await;
    let head_warm = request(gateway.addr, "HEAD", "/h", &br).await;
    assert_eq!(decode(&get), document().into_bytes());
    for (label, head) in [("cold", &head_cold), ("warm", &head_warm)] {
        assert_eq!(head.status, 200, "{label}");
        for name in ["content-encoding", "etag", "content-length"] {
            assert_eq!(head.header(name), get.header(name), "{label} HEAD {name}");
        }
        assert!(head.varies_on("accept-encoding"), "{label}");
    }
    assert_eq!(head_warm.cache(), "HIT");
}

#[tokio::test]
async fn ranges_apply_to_the_identity_copy_only() {
    let upstream = json_upstream().await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let original = document().into_bytes();
    get(&gateway, "/r", None).await;
    get(&gateway, "/r", Some("br")).await;

    let identity_part = request(gateway.addr, "GET", "/r", &[("range", "bytes=1-8")]).await;
    assert_eq!(identity_part.status, 206);
    assert_eq!(identity_part.body, original[1..=8]);
    assert!(!identity_part.has("content-encoding"));

    // A range of a compressed stream would not decode on its own: the whole copy, as a 200.
    let br_part = request(
        gateway.addr,
        "GET",
        "/r",
        &[("range", "bytes=1-8"), ("accept-encoding", "br")],
    )
    .await;
    assert_eq!(br_part.status, 200);
    assert_eq!(br_part.cache(), "HIT");
    assert_eq!(br_part.header("content-encoding"), "br");
    assert!(!br_part.has("content-range"));
    assert_eq!(decode(&br_part), original);
}

#[tokio::test]
async fn conditional_requests_match_the_weakened_etag() {
    let upstream = json_upstream().await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let first = get(&gateway, "/c", Some("gzip")).await;
    assert_eq!(first.header("etag"), "W/\"v1\"");
    // What the browser sends back, and the identity copy's strong form: both match weakly.
    for validator in ["W/\"v1\"", "\"v1\""] {
        let again = request(
            gateway.addr,
            "GET",
            "/c",
            &[("accept-encoding", "gzip"), ("if-none-match", validator)],
        )
        .await;
        assert_eq!(again.status, 304, "If-None-Match {validator}");
        assert_eq!(again.header("etag"), "W/\"v1\"", "{validator}");
    }
    let other = request(
        gateway.addr,
        "GET",
        "/c",
        &[("accept-encoding", "gzip"), ("if-none-match", "\"v2\"")],
    )
    .await;
    assert_eq!(other.status, 200);
    assert_eq!(decode(&other), document().into_bytes());
    assert_eq!(upstream.total(), 1);
}

#[tokio::test]
async fn a_stored_compressed_copy_is_revalidated_with_its_weak_etag_and_stays_compressed() {
    // `no-cache`: stored, but revalidated before every reuse.
    let upstream = Upstream::start(|req| {
        let matches = req
            .header("if-none-match")
            .is_some_and(|inm| inm.trim_start_matches("W/") == "\"v1\"");
        if matches {
            Reply::status(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "no-cache")
        } else {
            Reply::ok(document())
                .header("content-type", "application/json")
                .header("cache-control", "no-cache")
                .header("etag", "\"v1\"")
        }
    })
    .await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let first = get(&gateway, "/v", Some("br")).await;
    assert_eq!(first.cache(), "MISS");
    let again = get(&gateway, "/v", Some("br")).await;
    assert_eq!(again.cache(), "REVALIDATED");
    assert_eq!(again.header("content-encoding"), "br");
    // The 304's strong ETag does not replace the compressed copy's weak one.
    assert_eq!(again.header("etag"), "W/\"v1\"");
    assert_eq!(decode(&again), document().into_bytes());
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].header("if-none-match").as_deref(),
        Some("W/\"v1\"")
    );
    assert_eq!(requests[1].header("accept-encoding").as_deref(), Some("br"));
}
