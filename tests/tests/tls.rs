//! The TLS listener: rustls with HTTP/2 by ALPN, sharing the cache with plain HTTP; and clear
//! startup errors for certificate files that cannot be used.

use std::net::SocketAddr;

use bytes::Bytes;
use cors_edge_tests::tls::TestCert;
use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Upstream};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The TLS listener is `{tls}`: port 0, its address read back from the ready file.
fn config(upstream: SocketAddr, cert: &str, key: &str) -> String {
    GatewayConfig::new(upstream).tls(cert, key).yaml()
}

/// The gateway's one TLS listener, as its ready file reported it (it accepts already).
fn tls_addr(gateway: &GatewayProcess) -> SocketAddr {
    assert_eq!(gateway.tls.len(), 1, "one TLS listener: {:?}", gateway.tls);
    gateway.tls[0]
}

struct HttpsResponse {
    version: http::Version,
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl HttpsResponse {
    fn cache(&self) -> &str {
        self.headers
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// One HTTPS GET on a new connection, offering `alpn`; trusts only `cert`.
/// Returns the protocol the server chose by ALPN and the response.
async fn https_get(
    addr: SocketAddr,
    cert: &TestCert,
    alpn: &[&[u8]],
    path: &str,
) -> (Option<Vec<u8>>, HttpsResponse) {
    let tls = cert.handshake(addr, alpn).await;
    let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let io = TokioIo::new(tls);
    let response = if negotiated.as_deref() == Some(b"h2") {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        let request = http::Request::get(format!("https://localhost{path}"))
            .body(Empty::<Bytes>::new())
            .expect("request");
        sender.send_request(request).await.expect("HTTP/2 response")
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        let request = http::Request::get(path)
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .expect("request");
        sender
            .send_request(request)
            .await
            .expect("HTTP/1.1 response")
    };
    let version = response.version();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        negotiated,
        HttpsResponse {
            version,
            status,
            headers,
            body,
        },
    )
}

#[tokio::test]
async fn https_over_http2_and_http1_is_cached_and_marked_https_upstream() {
    let upstream =
        Upstream::start(|_| Reply::ok("secure").header("cache-control", "max-age=300")).await;
    let cert = TestCert::localhost();
    let gateway = GatewayProcess::start(&config(upstream.addr, &cert.cert(), &cert.key()));
    let tls_addr = tls_addr(&gateway);

    // HTTP/2, chosen by ALPN when the client offers it first.
    let (alpn, first) = https_get(tls_addr, &cert, &[b"h2", b"http/1.1"], "/over-h2").await;
    assert_eq!(
        alpn.as_deref(),
        Some(&b"h2"[..]),
        "the server did not choose h2 by ALPN"
    );
    assert_eq!(first.version, http::Version::HTTP_2);
    assert_eq!(
        (first.status, first.cache(), &first.body[..]),
        (200, "MISS", &b"secure"[..])
    );
    let (_, second) = https_get(tls_addr, &cert, &[b"h2", b"http/1.1"], "/over-h2").await;
    assert_eq!(second.version, http::Version::HTTP_2);
    assert_eq!(
        (second.status, second.cache(), &second.body[..]),
        (200, "HIT", &b"secure"[..])
    );
    assert!(second.headers.contains_key("age"));

    // HTTP/1.1 over TLS, when the client offers only that.
    let (alpn, first) = https_get(tls_addr, &cert, &[b"http/1.1"], "/over-h1").await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(first.version, http::Version::HTTP_11);
    assert_eq!((first.status, first.cache()), (200, "MISS"));
    let (_, second) = https_get(tls_addr, &cert, &[b"http/1.1"], "/over-h1").await;
    assert_eq!(
        (second.status, second.cache(), &second.body[..]),
        (200, "HIT", &b"secure"[..])
    );

    // Without ALPN at all the listener speaks HTTP/1.1.
    let (alpn, plain) = https_get(tls_addr, &cert, &[], "/over-h1").await;
    assert_eq!(alpn, None);
    assert_eq!(
        (plain.version, plain.cache()),
        (http::Version::HTTP_11, "HIT")
    );

    // One cache behind both protocols.
    let (_, cross) = https_get(tls_addr, &cert, &[b"http/1.1"], "/over-h2").await;
    assert_eq!(cross.cache(), "HIT");
    assert_eq!(upstream.hits("/over-h2"), 1);
    assert_eq!(upstream.hits("/over-h1"), 1);

    // The upstream is told the client came over TLS; plain HTTP is marked http.
    request(gateway.addr, "GET", "/plain", &[]).await;
    let proto = |path: &str| {
        upstream
            .requests()
            .iter()
            .find(|r| r.path() == path)
            .and_then(|r| r.header("x-forwarded-proto"))
    };
    assert_eq!(
        proto("/over-h2").as_deref(),
        Some("https"),
        "HTTP/2 over TLS"
    );
    assert_eq!(
        proto("/over-h1").as_deref(),
        Some("https"),
        "HTTP/1.1 over TLS"
    );
    assert_eq!(proto("/plain").as_deref(), Some("http"));
}

/// Starts the gateway expecting failure; returns its stderr and checks the exit code is 1.
fn startup_error(upstream: SocketAddr, cert: &str, key: &str) -> String {
    let error = match GatewayProcess::try_start(&config(upstream, cert, key), &[]) {
        Ok(_) => panic!("the gateway started with tls.cert {cert} and tls.key {key}"),
        Err(error) => error,
    };
    assert!(
        error.contains("exit status: 1"),
        "expected exit code 1: {error}"
    );
    assert!(
        !error.contains("panicked"),
        "a panic instead of an error: {error}"
    );
    let stderr = error
        .split("stderr:\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string();
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    stderr
}

#[tokio::test]
async fn unusable_certificate_files_are_a_clear_startup_error() {
    let upstream = Upstream::start(|_| Reply::ok("x")).await;
    let cert = TestCert::localhost();
    let missing = cert.dir().join("missing.crt").display().to_string();

    let stderr = startup_error(upstream.addr, &missing, &cert.key());
    assert!(
        stderr.contains(&missing) && stderr.contains("tls.cert"),
        "{stderr}"
    );

    let missing_key = cert.dir().join("missing.key").display().to_string();
    let stderr = startup_error(upstream.addr, &cert.cert(), &missing_key);
    assert!(
        stderr.contains(&missing_key) && stderr.contains("tls.key"),
        "{stderr}"
    );

    let garbage = cert.dir().join("garbage.crt");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.display().to_string();
    let stderr = startup_error(upstream.addr, &garbage, &cert.key());
    assert!(stderr.contains(&garbage), "{stderr}");

    // The certificate given as the key, and a key that belongs to another certificate.
    let stderr = startup_error(upstream.addr, &cert.cert(), &cert.cert());
    assert!(stderr.contains("tls.key"), "{stderr}");
    let other = TestCert::localhost();
    let stderr = startup_error(upstream.addr, &cert.cert(), &other.key());
    assert!(stderr.contains(&other.key()), "{stderr}");
}

/// An upstream that redirects plain HTTP to HTTPS (deciding on X-Forwarded-Proto, as the gateway
/// tells it) must not have its cached redirect served to HTTPS clients: that is a redirect loop.
/// nginx (`$scheme` in the default proxy_cache_key) and CDNs key the cache by scheme.
#[tokio::test]
async fn http_and_https_answers_are_cached_apart() {
    let upstream = Upstream::start(|request| {
        if request.header("x-forwarded-proto").as_deref() == Some("https") {
            Reply::ok("secure page").header("cache-control", "max-age=300")
        } else {
            Reply::status(301)
                .header("location", "https://localhost/page")
                .header("cache-control", "max-age=300")
        }
    })
    .await;
    let cert = TestCert::localhost();
    let gateway = GatewayProcess::start(&config(upstream.addr, &cert.cert(), &cert.key()));
    let tls_addr = tls_addr(&gateway);

    let plain = request(gateway.addr, "GET", "/page", &[("host", "localhost")]).await;
    assert_eq!(plain.status, 301);
    let (_, secure) = https_get(tls_addr, &cert, &[b"h2"], "/page").await;
    assert_eq!(
        (secure.status, &secure.body[..]),
        (200, &b"secure page"[..]),
        "served the http redirect over https"
    );
}
