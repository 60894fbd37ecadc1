//! A thin layer over hyper's low-level HTTP/1 client connection.
//!
//! The load generator needs one keep-alive connection per worker and full control
//! over when it reconnects, which a pooled client would hide; the probe uses a fresh
//! connection per request so one exchange can never influence the next.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub(crate) type Body = Empty<Bytes>;
pub(crate) type Sender = SendRequest<Body>;
/// The future that does a connection's reading and writing.
type ConnectionDriver = Connection<TokioIo<TcpStream>, Body>;

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

/// A keep-alive connection whose driver runs inside the caller's task instead of a
/// task of its own.
///
/// The load generator's hot path is one request at a time per connection; polling the
/// driver in the same task saves two cross-task wake-ups per request, which is a
/// measurable share of the client's CPU per request on loopback.
pub(crate) struct InlineConnection {
    sender: Sender,
    /// `None` once the connection has closed: the finished driver must be dropped,
    /// because it owns the request channel and `ready()` only reports the connection
    /// closed once that channel is gone.
    driver: Option<Pin<Box<ConnectionDriver>>>,
}

impl InlineConnection {
    /// Connects and completes the HTTP/1 handshake.
    pub async fn open(addr: SocketAddr) -> Result<Self, RequestError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(RequestError::Connect)?;
        stream.set_nodelay(true).map_err(RequestError::Connect)?;
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(RequestError::Handshake)?;
        let mut connection = InlineConnection {
            sender,
            driver: Some(Box::pin(driver)),
        };
        if connection.is_reusable().await {
            Ok(connection)
        } else {
            Err(RequestError::Connect(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "closed right after the handshake",
            )))
        }
    }

    /// Whether another request can go out on this connection (the peer may have closed
    /// it, or the last response said `Connection: close`).
    pub async fn is_reusable(&mut self) -> bool {
        let InlineConnection { sender, driver } = self;
        drive(driver, sender.ready()).await.is_ok()
    }

    /// Like [`exchange`], driving the connection while waiting.
    pub async fn exchange(
        &mut self,
        request: Request<Body>,
    ) -> Result<http::response::Parts, RequestError> {
        let InlineConnection { sender, driver } = self;
        drive(driver, exchange(sender, request)).await
    }
}

/// Polls `work` to completion while also polling the connection driver, which does the
/// actual reading and writing; once the driver is done it is dropped.
async fn drive<T>(
    driver: &mut Option<Pin<Box<ConnectionDriver>>>,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    loop {
        let Some(running) = driver.as_mut() else {
            return work.await;
        };
        tokio::select! {
            biased;
            output = &mut work => return output,
            // The connection is gone; `work` fails on its next poll with the reason.
            _ = running.as_mut() => {}
        }
        *driver = None;
    }
}
