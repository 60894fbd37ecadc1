//! An encoded answer is valid only for the coding it carries, black-box: a HEAD miss never stores
//! a plain body labelled compressed, an answer the upstream compressed itself (without
//! `Vary: Accept-Encoding`, nginx's default) is stored as the variant of its coding only, an
//! answer in a coding the request did not get is never stored, a coding listed with `q=0` is
//! never chosen, and an interim `100 Continue` carries nothing of the final answer's.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Response, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn document() -> String {
    let items: Vec<String> = (0..400)
        .map(|i| format!("{{\"id\":{i},\"name\":\"item {i}\"}}"))
        .collect();
    format!("[{}]", items.join(","))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn decoded(response: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    match response.header("content-encoding").as_str() {
        "" => out.extend_from_slice(&response.body),
        "gzip" => {
            flate2::read::GzDecoder::new(&response.body[..])
                .read_to_end(&mut out)
                .unwrap_or_else(|e| panic!("labelled gzip, not gzip ({e})"));
        }
        other => panic!("unexpected Content-Encoding {other:?}"),
    }
    out
}

/// An upstream that writes each answer's head and body in one write, as many servers do for
/// small bodies: a JSON document, cacheable, with a body for GET only. Counts requests.
async fn one_write_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end + 4);
                    seen.fetch_add(1, Ordering::SeqCst);
                    let body = document();
                    let mut answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         cache-control: max-age=300\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    if !head.starts_with("HEAD ") {
                        answer.extend_from_slice(body.as_bytes());
                    }
                    if stream.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, count)
}

#[tokio::test]
async fn a_head_miss_stores_the_body_compressed_as_labelled() {
    let (upstream, fetches) = one_write_upstream().await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream).yaml());
    let gzip_client = [("accept-encoding", "gzip")];

    let head = request(gateway.addr, "HEAD", "/doc", &gzip_client).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-encoding"), "gzip");

    // The HEAD's fetch filled the gzip variant; the GET is served from it, really gzipped.
    let get = request(gateway.addr, "GET", "/doc", &gzip_client).await;
    assert_eq!(get.cache(), "HIT", "the HEAD miss stored the answer");
    assert_eq!(get.header("content-encoding"), "gzip");
    assert_eq!(decoded(&get), document().as_bytes());
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    let plain = request(gateway.addr, "GET", "/doc", &[]).await;
    assert_eq!(plain.header("content-encoding"), "");
    assert_eq!(plain.body, document().as_bytes());
}

/// An upstream that gzips for clients that accept it and forgets `Vary: Accept-Encoding`.
fn gzipping_upstream(always: bool) -> impl Fn(&cors_edge_tests::UpstreamRequest) -> Reply {
    move |req| {
        let accepts = req
            .header("accept-encoding")
            .is_some_and(|v| v.contains("gzip"));
        let reply = |body: Vec<u8>| {
            Reply::ok(body)
                .header("content-type", "application/json")
                .header("cache-control", "max-age=300")
        };
        if always || accepts {
            reply(gzip(document().as_bytes())).header("content-encoding", "gzip")
        } else {
            reply(document().into_bytes())
        }
    }
}

#[tokio::test]
async fn an_upstream_encoded_answer_is_served_only_to_clients_of_its_coding() {
    for compression in ["", "enabled: false"] {
        let upstream = Upstream::start(gzipping_upstream(false)).await;
        let gateway = GatewayProcess::start(
            &GatewayConfig::new(upstream.addr)
                .route_compression(compression)
                .yaml(),
        );
        let first = request(gateway.addr, "GET", "/doc", &[("accept-encoding", "gzip")]).await;
        assert_eq!(first.header("content-encoding"), "gzip", "{compression}");
        assert!(first.varies_on("accept-encoding"), "{compression}");
        assert_eq!(decoded(&first), document().as_bytes());

        // A client that accepts no coding gets its own, plain variant.
        let plain = request(gateway.addr, "GET", "/doc", &[]).await;
        assert_eq!(plain.header("content-encoding"), "", "{compression}");
        assert_eq!(plain.cache(), "MISS", "{compression}");
        assert_eq!(plain.body, document().as_bytes());
        if compression.is_empty() {
            // Compression on: the plain copy is the identity variant of a compressible answer.
            assert!(plain.varies_on("accept-encoding"), "{compression}");
        }

        // Both are kept, each for its own clients.
        let again = request(gateway.addr, "GET", "/doc", &[]).await;
        assert_eq!(
            (
                again.cache().as_str(),
                again.header("content-encoding").as_str()
            ),
            ("HIT", ""),
            "{compression}"
        );
        let zipped = request(gateway.addr, "GET", "/doc", &[("accept-encoding", "gzip")]).await;
        assert_eq!(zipped.cache(), "HIT", "{compression}");
        assert_eq!(decoded(&zipped), document().as_bytes());
        assert_eq!(upstream.total(), 2, "{compression}");
    }
}

#[tokio::test]
async fn an_answer_in_a_coding_the_request_did_not_get_is_never_stored() {
    let upstream = Upstream::start(gzipping_upstream(true)).await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    for _ in 0..2 {
        // Asked for identity, answered gzip: passed on (the upstream's choice), never stored.
        let plain = request(gateway.addr, "GET", "/doc", &[]).await;
        assert_eq!(plain.cache(), "MISS");
        assert_eq!(plain.header("content-encoding"), "gzip");
    }
    assert_eq!(upstream.total(), 2);
}

#[tokio::test]
async fn a_coding_refused_with_q0_is_never_chosen() {
    let upstream = Upstream::start(|_| {
        Reply::ok(document())
            .header("content-type", "application/json")
            .header("cache-control", "max-age=300")
    })
    .await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let refused = request(
        gateway.addr,
        "GET",
        "/doc",
        &[("accept-encoding", "gzip, gzip;q=0")],
    )
    .await;
    assert_eq!(refused.header("content-encoding"), "");
    assert_eq!(refused.body, document().as_bytes());
    assert_eq!(
        upstream.requests()[0].header("accept-encoding").as_deref(),
        Some("identity")
    );
}

#[tokio::test]
async fn an_interim_100_continue_carries_nothing_of_the_final_answer() {
    let upstream = Upstream::start(|_| Reply::ok("posted").header("vary", "Accept")).await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let mut stream = tokio::net::TcpStream::connect(gateway.addr)
        .await
        .expect("connect");
    stream
        .write_all(
            b"POST /items HTTP/1.1\r\nHost: shop.example\r\nOrigin: https://a.example\r\n\
              Expect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("write head");
    let mut interim = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !interim.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => interim.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("an interim answer before the body is sent");
    let interim_text = String::from_utf8_lossy(&interim).to_ascii_lowercase();
    assert!(
        interim_text.starts_with("http/1.1 100"),
        "expected 100 Continue first: {interim_text}"
    );
    let interim_head = interim_text.split("\r\n\r\n").next().unwrap_or_default();
    for field in ["x-cache", "vary", "access-control-"] {
        assert!(
            !interim_head.contains(field),
            "100 Continue carries {field}: {interim_head}"
        );
    }
    stream.write_all(b"hello").await.expect("write body");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    let whole = format!(
        "{interim_text}{}",
        String::from_utf8_lossy(&rest).to_ascii_lowercase()
    );
    assert!(whole.contains("http/1.1 200"), "{whole}");
    assert!(
        whole.contains("x-cache:"),
        "the final answer has its cache status: {whole}"
    );
}
