//! Black-box robustness: malformed requests get a 4xx (or a closed connection), never reach the
//! upstream, and never stop the gateway from serving the next normal request.

use std::net::SocketAddr;
use std::time::Duration;

use cors_edge_tests::client::{send_raw_answer, RawAnswer};
use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Upstream};

/// How long a malformed request may go unanswered: far above any real answer time, so a
/// gateway that hangs on the input (neither answers nor closes) fails instead of passing.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

async fn setup() -> (Upstream, GatewayProcess) {
    let upstream =
        Upstream::start(|_| Reply::ok("fine").header("cache-control", "max-age=60")).await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    (upstream, gateway)
}

/// The status code of a raw answer, or None when the gateway closed the connection without one.
fn status_of(answer: &RawAnswer) -> Option<u16> {
    let text = answer.text();
    let line = text.lines().next()?;
    let mut parts = line.split_whitespace();
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "not an HTTP answer: {text:?}"
    );
    parts.next()?.parse().ok()
}

/// Sends `bytes`, asserts a 4xx answer or a connection the gateway closed (never one left
/// hanging), then checks the gateway still serves a normal request; returns the status when
/// there was one.
async fn rejected(gateway: &GatewayProcess, upstream: &Upstream, bytes: &[u8]) -> Option<u16> {
    let before = upstream.total();
    let answer = send_raw_answer(gateway.addr, bytes, ANSWER_LIMIT).await;
    let status = status_of(&answer);
    match status {
        Some(code) => assert!(
            (400..500).contains(&code),
            "expected a 4xx to {:?}, got {}",
            String::from_utf8_lossy(bytes),
            answer.text()
        ),
        None => assert!(
            answer.closed,
            "no answer and the connection still open after {ANSWER_LIMIT:?}: the gateway hangs on {:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
    assert_eq!(
        upstream.total(),
        before,
        "a malformed request reached the upstream"
    );
    let next = request(gateway.addr, "GET", "/after", &[]).await;
    assert_eq!(
        (next.status, next.text().as_str()),
        (200, "fine"),
        "the gateway stopped serving"
    );
    status
}

#[tokio::test]
async fn garbage_request_line() {
    let (upstream, gateway) = setup().await;
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    ] {
        rejected(&gateway, &upstream, garbage).await;
    }
}

#[tokio::test]
async fn empty_lines_before_a_request_line_are_skipped_or_refused_never_hung_on() {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
    // Empty lines then a request: the request is answered (200) or the input refused (400),
    // the connection is not left waiting.
    let (upstream, gateway) = setup().await;
    let raw = b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET /after-blank-lines HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = send_raw_answer(gateway.addr, raw, ANSWER_LIMIT).await;
    let status = status_of(&answer);
    assert!(
        matches!(status, Some(200 | 400)),
        "status {status:?} after empty lines: {:?} (closed: {})",
        answer.text(),
        answer.closed
    );
    assert_eq!(
        upstream.hits("/after-blank-lines"),
        usize::from(status == Some(200))
    );
}

#[tokio::test]
async fn oversized_header_is_431_or_400() {
    let (upstream, gateway) = setup().await;
    let big = "a".repeat(100 * 1024);
    let raw = format!("GET /big HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n");
    let status = rejected(&gateway, &upstream, raw.as_bytes()).await;
    assert!(matches!(status, Some(400 | 431)), "status {status:?}");
}

#[tokio::test]
async fn a_large_but_reasonable_header_still_passes() {
    let (upstream, gateway) = setup().await;
    let cookie = "c".repeat(16 * 1024);
    let r = request(
        gateway.addr,
        "GET",
        "/cookie",
        &[("cookie", cookie.as_str())],
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, "fine"));
    assert_eq!(
        upstream.requests()[0].header("cookie").map(|c| c.len()),
        Some(16 * 1024)
    );
}

#[tokio::test]
async fn many_headers_adding_up_past_the_limit_are_rejected() {
    let (upstream, gateway) = setup().await;
    let mut raw = String::from("GET /many HTTP/1.1\r\nHost: x\r\n");
    for i in 0..400 {
        raw.push_str(&format!("X-H{i}: {}\r\n", "b".repeat(250)));
    }
    raw.push_str("Connection: close\r\n\r\n");
    let status = rejected(&gateway, &upstream, raw.as_bytes()).await;
    assert!(matches!(status, Some(400 | 431)), "status {status:?}");
}

#[tokio::test]
async fn invalid_header_bytes() {
    let (upstream, gateway) = setup().await;
    for raw in [
        &b"GET /x HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n"[..],
        b"GET /x HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\nX-Ctl: a\x01b\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\n: no name\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\nX-Bare-CR: a\rb\r\n\r\n",
    ] {
        let status = rejected(&gateway, &upstream, raw).await;
        assert!(
            status.is_some(),
            "no answer to {:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[tokio::test]
async fn conflicting_framing_is_rejected() {
    let (upstream, gateway) = setup().await;
    // Two Content-Lengths, or one that is not a number: refused before anything is forwarded.
    for raw in [
        &b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"[..],
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    ] {
        let status = rejected(&gateway, &upstream, raw).await;
        assert!(
            status.is_some(),
            "no answer to {:?}",
            String::from_utf8_lossy(raw)
        );
    }
    // A broken chunked body: the upstream may have seen the request head before the body went
    // wrong, but the gateway answers an error or closes, and never hangs.
    let raw = b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    let before = upstream.total();
    let answer = send_raw_answer(gateway.addr, raw, ANSWER_LIMIT).await;
    match status_of(&answer) {
        Some(code) => assert!(code >= 400, "{}", answer.text()),
        None => assert!(answer.closed, "the gateway hangs on a broken chunked body"),
    }
    assert!(upstream.total() <= before + 1);
    assert!(upstream
        .requests()
        .iter()
        .all(|r| r.body.is_empty() || r.body.as_ref() != b"hello"));
    let next = request(gateway.addr, "GET", "/after", &[]).await;
    assert_eq!(next.status, 200);
}

/// The request hidden in each smuggling payload.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

/// How a smuggling-prone front frames a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Content-Length alone, Transfer-Encoding ignored.
    ContentLength,
    /// Transfer-Encoding: chunked whenever present, Content-Length ignored then.
    Chunked,
}

/// Request-smuggling payloads (RFC 9112 §6.3, §11.2), each a POST that carries [`SMUGGLED`]
/// where one reading of its framing sees a body and another sees a second request, with the
/// reading that lets it through a front that keeps the connection for the next request:
/// - CL.TE: Content-Length covers the smuggled request, chunked ends the body before it;
/// - TE.CL: chunked carries it inside a chunk, Content-Length: 4 ends the body at the chunk size;
/// - TE.TE: as TE.CL, with a Transfer-Encoding obfuscated so that one parser ignores it.
fn smuggling_payloads() -> Vec<(&'static str, Framing, String)> {
    let cl_te_body = format!("0\r\n\r\n{SMUGGLED}");
    let cl_te = format!(
        "POST /front HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{cl_te_body}",
        cl_te_body.len()
    );
    // The chunk-size line ("XX\r\n", 4 bytes) is all that Content-Length: 4 covers.
    assert!((16..256).contains(&SMUGGLED.len()));
    let te_cl_body = format!("{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n", SMUGGLED.len());
    let te_cl = |transfer_encoding: &str| {
        format!(
            "POST /front HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n{transfer_encoding}\r\n\r\n{te_cl_body}"
        )
    };
    use Framing::{Chunked, ContentLength};
    vec![
        ("CL.TE", Chunked, cl_te),
        ("TE.CL", ContentLength, te_cl("Transfer-Encoding: chunked")),
        (
            "TE.TE (a second, unknown coding line)",
            ContentLength,
            te_cl("Transfer-Encoding: chunked\r\nTransfer-Encoding: cow"),
        ),
        (
            "TE.TE (xchunked)",
            ContentLength,
            te_cl("Transfer-Encoding: xchunked"),
        ),
        (
            "TE.TE (space before the colon)",
            ContentLength,
            te_cl("Transfer-Encoding : chunked"),
        ),
        (
            "TE.TE (identity, chunked)",
            ContentLength,
            te_cl("Transfer-Encoding: identity, chunked"),
        ),
        (
            "TE.TE (tab)",
            ContentLength,
            te_cl("Transfer-Encoding:\tchunked"),
        ),
    ]
}

/// Sends `payload` to `front` and reports what got through: the paths of the requests that
/// reached `upstream`, and how many answers came back on the connection.
async fn smuggle(
    front: SocketAddr,
    upstream: &Upstream,
    payload: &str,
    limit: Duration,
) -> (Vec<String>, RawAnswer) {
    let before = upstream.total();
    let answer = send_raw_answer(front, payload.as_bytes(), limit).await;
    // Anything the payload made the front send has been sent by the time it answered or closed;
    // a follow-up request on a new connection orders the check after it.
    let _ = send_raw_answer(
        front,
        b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        limit,
    )
    .await;
    let paths = upstream.requests()[before..]
        .iter()
        .map(|r| r.path().to_string())
        .filter(|p| p != "/after")
        .collect();
    (paths, answer)
}

#[tokio::test]
async fn smuggled_requests_never_reach_the_upstream() {
    let (upstream, gateway) = setup().await;
    for (name, _, payload) in smuggling_payloads() {
        let (paths, answer) = smuggle(gateway.addr, &upstream, &payload, ANSWER_LIMIT).await;
        assert!(
            !paths.iter().any(|p| p == "/smuggled"),
            "{name}: the smuggled request reached the upstream (it saw {paths:?}); answer {:?}",
            answer.text()
        );
        assert!(
            paths.iter().all(|p| p == "/front"),
            "{name}: the upstream saw {paths:?}"
        );
        let statuses = answer.statuses();
        assert!(
            statuses.len() <= 1,
            "{name}: {} answers on one connection, the smuggled request was served: {:?}",
            statuses.len(),
            answer.text()
        );
        assert!(
            answer.closed || !statuses.is_empty(),
            "{name}: no answer and the connection left open"
        );
        let next = request(gateway.addr, "GET", "/after", &[]).await;
        assert_eq!((next.status, next.text().as_str()), (200, "fine"), "{name}");
    }
    assert_eq!(upstream.hits("/smuggled"), 0);
}

/// The control for the test above: the same payloads and the same check against a front that
/// frames requests one way (Content-Length alone, or chunked alone) and keeps reading requests
/// from the connection after a body whose framing was ambiguous, each forwarded on a new
/// upstream connection — a classic smuggling-prone proxy. Every payload must smuggle through
/// its front, or the payloads prove nothing about the gateway.
#[tokio::test]
async fn the_smuggling_payloads_get_through_a_naive_front() {
    let upstream =
        Upstream::start(|_| Reply::ok("fine").header("cache-control", "max-age=60")).await;
    for (name, framing, payload) in smuggling_payloads() {
        let front = naive_front(upstream.addr, framing).await;
        let (paths, _) = smuggle(front, &upstream, &payload, Duration::from_millis(500)).await;
        assert!(
            paths.iter().any(|p| p == "/smuggled"),
            "{name} did not smuggle through a {framing:?} front: the upstream saw {paths:?}"
        );
    }
}

/// Where the body that starts at `start` ends under `framing`, or None when more bytes are
/// needed (or the chunked body is malformed).
fn body_end(buffer: &[u8], head: &str, start: usize, framing: Framing) -> Option<usize> {
    let field = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    if framing == Framing::Chunked && field("transfer-encoding").as_deref() == Some("chunked") {
        let mut at = start;
        loop {
            let line_end = at + buffer.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&buffer[at..line_end]).ok()?, 16).ok()?;
            at = line_end + 2 + size + 2;
            if at > buffer.len() {
                return None;
            }
            if size == 0 {
                return Some(at);
            }
        }
    }
    let length = field("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    (buffer.len() >= start + length).then_some(start + length)
}

/// A front that reads each request's head and body as `framing` says, forwards both verbatim
/// on a new upstream connection and reads the next request from what is left on the client
/// connection. It answers nothing downstream.
async fn naive_front(upstream: SocketAddr, framing: Framing) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the naive front");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let request_end =
                        buffer
                            .windows(4)
                            .position(|w| w == b"\r\n\r\n")
                            .and_then(|end| {
                                let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                                body_end(&buffer, &head, end + 4, framing)
                            });
                    let Some(request_end) = request_end else {
                        match tokio::time::timeout(
                            Duration::from_millis(300),
                            client.read(&mut chunk),
                        )
                        .await
                        {
                            Ok(Ok(n)) if n > 0 => {
                                buffer.extend_from_slice(&chunk[..n]);
                                continue;
                            }
                            _ => return,
                        }
                    };
                    let request: Vec<u8> = buffer.drain(..request_end).collect();
                    if let Ok(mut out) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = out.write_all(&request).await;
                        // Keep the upstream connection open a moment so it reads everything.
                        tokio::spawn(async move {
                            let mut sink = [0u8; 4096];
                            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                                while matches!(out.read(&mut sink).await, Ok(n) if n > 0) {}
                            })
                            .await;
                        });
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_client_that_disconnects_mid_request_does_not_hurt() {
    let (upstream, gateway) = setup().await;
    for partial in [
        &b"GET /partial HTTP/1.1\r\nHost: x\r\nX-Half"[..],
        b"GET /par",
        b"",
    ] {
        let stream = tokio::net::TcpStream::connect(gateway.addr)
            .await
            .expect("connect");
        let (_, mut write) = stream.into_split();
        tokio::io::AsyncWriteExt::write_all(&mut write, partial)
            .await
            .expect("write");
        drop(write);
    }
    let next = request(gateway.addr, "GET", "/after", &[]).await;
    assert_eq!((next.status, next.text().as_str()), (200, "fine"));
    assert_eq!(upstream.hits("/partial"), 0);
}
