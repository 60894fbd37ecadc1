//! A minimal HTTP/1.1 client: one request per connection, every header as given.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// The header's value, all lines joined with ", "; empty when absent.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn has(&self, name: &str) -> bool {
        self.headers.contains_key(name)
    }

    /// `X-Cache` as sent by the gateway.
    pub fn cache(&self) -> String {
        self.header("x-cache")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether `Vary` names `field` (case-insensitive). `Vary: *` names no field: a test that
    /// wants `Origin` in `Vary` must not be satisfied by `*` (which also disables caching).
    pub fn varies_on(&self, field: &str) -> bool {
        self.vary_members()
            .iter()
            .any(|f| f.eq_ignore_ascii_case(field))
    }

    /// The members of every `Vary` line, trimmed, empty members dropped.
    pub fn vary_members(&self) -> Vec<String> {
        self.header("vary")
            .split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect()
    }
}

/// Sends one request and reads the whole response. Panics (failing the test) on I/O errors.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    request_with_body(addr, method, path, headers, Bytes::new()).await
}

pub async fn request_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Response {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the gateway");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(connection);
    let mut builder = http::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        builder = builder.header("host", addr.to_string());
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let req = builder.body(Full::new(body)).expect("valid request");
    let response = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
        .await
        .expect("response within 30s")
        .expect("response");
    Response::read(response).await
}

impl Response {
    /// Reads a whole response (a HEAD's has no body on the wire: hyper gives an empty one).
    pub async fn read(response: http::Response<hyper::body::Incoming>) -> Response {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Response {
            status,
            headers,
            body,
        }
    }
}

/// Writes raw bytes on a new connection and returns whatever comes back until the server
/// closes it or 5 s pass: for malformed requests a real client cannot send.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    send_raw_answer(addr, bytes, Duration::from_secs(5))
        .await
        .bytes
}

/// What came back on a raw connection.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub bytes: Vec<u8>,
    /// The server closed (or reset) the connection within the limit; false when the limit ran
    /// out with the connection still open (a server that hangs on the input).
    pub closed: bool,
}

impl RawAnswer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The status codes of every status line that starts a response in the answer (pipelined
    /// answers included): `HTTP/1.x NNN` at the start or after a blank line.
    pub fn statuses(&self) -> Vec<u16> {
        let text = self.text();
        text.match_indices("HTTP/1.")
            .filter(|(at, _)| *at == 0 || text[..*at].ends_with("\r\n"))
            .filter_map(|(at, _)| text[at..].split_whitespace().nth(1)?.parse().ok())
            .collect()
    }
}

/// Writes raw bytes on a new connection and reads until the server closes it or `limit`
/// passes; says which of the two happened. A reset after the server's answer counts as a close.
pub async fn send_raw_answer(addr: SocketAddr, bytes: &[u8], limit: Duration) -> RawAnswer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may close before reading everything (and a write then fails): what it
    // answered is still there to read.
    let _ = stream.write_all(bytes).await;
    let (bytes, closed) = read_until_close(&mut stream, limit).await;
    RawAnswer { bytes, closed }
}

/// Reads until the peer closes (or resets) the connection or `limit` passes; returns what came
/// and whether it was closed by then.
pub async fn read_until_close<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (out, closed)
}

#[cfg(test)]
mod tests {
    use super::Response;

    fn with_vary(lines: &[&str]) -> Response {
        let mut headers = http::HeaderMap::new();
        for line in lines {
            headers.append("vary", line.parse().expect("header value"));
        }
        Response {
            status: 200,
            headers,
            body: bytes::Bytes::new(),
        }
    }

    #[test]
    fn varies_on_names_only_listed_fields() {
        assert!(with_vary(&["Origin"]).varies_on("origin"));
        assert!(with_vary(&["accept-encoding", " ORIGIN "]).varies_on("origin"));
        assert!(with_vary(&["Accept", "Origin"]).varies_on("origin"));
        assert!(!with_vary(&["*"]).varies_on("origin"), "`*` names no field");
        assert!(!with_vary(&["Accept, *"]).varies_on("origin"));
        assert!(!with_vary(&[]).varies_on("origin"));
        assert!(!with_vary(&["Origins"]).varies_on("origin"));
    }
}
