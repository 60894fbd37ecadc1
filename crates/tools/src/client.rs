//! A thin layer over hyper's low-level HTTP/1 client connection.
//!
//! The load generator needs one keep-alive connection per worker and full control
//! over when it reconnects, which a pooled client would hide; the probe uses a fresh
//! connection per request so one exchange can never influence the next.

use std::net::SocketAddr;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub(crate) type Body = Empty<Bytes>;
pub(crate) type Sender = SendRequest<Body>;

/// One failed exchange, by stage, so reports can say where things broke.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("connect failed: {0}")]
    Connect(#[source] std::io::Error),
    #[error("HTTP handshake failed: {0}")]
    Handshake(#[source] hyper::Error),
    #[error("request failed: {0}")]
    Send(#[source] hyper::Error),
    #[error("reading the body failed: {0}")]
    Body(#[source] hyper::Error),
    #[error("no complete response within the timeout")]
    Timeout,
}

impl RequestError {
    /// A short, stable name for grouping errors in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::Connect(_) => "connect",
            RequestError::Handshake(_) => "handshake",
            RequestError::Send(_) => "request",
            RequestError::Body(_) => "body",
            RequestError::Timeout => "timeout",
        }
    }
}

/// Opens a keep-alive HTTP/1.1 connection; the connection driver runs as its own task
/// and ends when the returned sender is dropped or the peer closes.
pub(crate) async fn connect(addr: SocketAddr) -> Result<Sender, RequestError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(RequestError::Connect)?;
    // Requests are tiny; Nagle would hold each one back waiting for an ACK.
    stream.set_nodelay(true).map_err(RequestError::Connect)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(RequestError::Handshake)?;
    tokio::spawn(async move {
        // A connection error also fails the pending request, which is where it is
        // counted; here it has nowhere better to go.
        let _ = connection.await;
    });
    sender.ready().await.map_err(RequestError::Handshake)?;
    Ok(sender)
}

/// Sends one request and reads the whole response body (so the connection can be
/// reused), returning the response head. The body bytes are not kept.
pub(crate) async fn exchange(
    sender: &mut Sender,
    request: Request<Body>,
) -> Result<http::response::Parts, RequestError> {
    let response = sender
        .send_request(request)
        .await
        .map_err(RequestError::Send)?;
    let (parts, mut body) = response.into_parts();
    while let Some(frame) = body.frame().await {
        frame.map_err(RequestError::Body)?;
    }
    Ok(parts)
}
