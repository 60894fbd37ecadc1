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

    /// Whether `Vary` names `field` (case-insensitive).
    pub fn varies_on(&self, field: &str) -> bool {
        self.header("vary")
            .split(',')
            .any(|f| f.trim().eq_ignore_ascii_case(field) || f.trim() == "*")
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
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = if method == "HEAD" {
        Bytes::new()
    } else {
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
    };
    Response {
        status,
        headers,
        body,
    }
}

/// Writes raw bytes on a new connection and returns whatever comes back until the server
/// closes it or 5 s pass: for malformed requests a real client cannot send.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    out
}
