//! hyper's HTTP/1.1 and HTTP/2 client connections over [`Stream`]: what the probe uses for
//! every request, and the load generator for HTTP/2.

use bytes::Bytes;
use http::header::HOST;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{connect, Endpoint, Negotiated, Protocol, RequestError, Stream};

pub(crate) type Body = Empty<Bytes>;

/// A connection's request side; its driver runs as a task of its own and ends when the
/// sender is dropped or the peer closes.
pub(crate) enum Sender {
    Http1(http1::SendRequest<Body>),
    Http2(http2::SendRequest<Body>),
}

/// Connects, negotiates, and completes the HTTP handshake.
pub(crate) async fn open(endpoint: &Endpoint) -> Result<(Sender, Negotiated), RequestError> {
    let (stream, negotiated) = connect(endpoint).await?;
    let sender = handshake(stream, negotiated.protocol).await?;
    Ok((sender, negotiated))
}

/// The HTTP handshake on an established connection.
pub(crate) async fn handshake(stream: Stream, protocol: Protocol) -> Result<Sender, RequestError> {
    let io = TokioIo::new(stream);
    match protocol {
        Protocol::Http1 => {
            let (mut sender, connection) = http1::handshake(io)
                .await
                .map_err(|err| RequestError::Handshake(err.to_string()))?;
            tokio::spawn(async move {
                // A connection error also fails the pending request, which is where it is
                // counted; here it has nowhere better to go.
                let _ = connection.await;
            });
            sender
                .ready()
                .await
                .map_err(|err| RequestError::Handshake(err.to_string()))?;
            Ok(Sender::Http1(sender))
        }
        Protocol::Http2 => {
            let (mut sender, connection) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|err| RequestError::Handshake(err.to_string()))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            sender
                .ready()
                .await
                .map_err(|err| RequestError::Handshake(err.to_string()))?;
            Ok(Sender::Http2(sender))
        }
    }
}

impl Sender {
    /// Whether another request can go out on this connection.
    pub fn is_open(&self) -> bool {
        match self {
            Sender::Http1(sender) => !sender.is_closed(),
            Sender::Http2(sender) => !sender.is_closed(),
        }
    }

    /// Sends one request (origin-form URI and a `Host` header, as built for HTTP/1.1) and
    /// reads the whole response body so the connection can be reused; returns the head.
    /// On HTTP/2 the `Host` header becomes the `:authority`.
    pub async fn exchange(
        &mut self,
        endpoint: &Endpoint,
        mut request: Request<Body>,
    ) -> Result<http::response::Parts, RequestError> {
        let response = match self {
            Sender::Http1(sender) => {
                sender
                    .ready()
                    .await
                    .map_err(|err| RequestError::Send(err.to_string()))?;
                sender.send_request(request).await
            }
            Sender::Http2(sender) => {
                let authority = request
                    .headers_mut()
                    .remove(HOST)
                    .and_then(|host| host.to_str().ok().map(str::to_string))
                    .unwrap_or_else(|| endpoint.authority.clone());
                let path = request
                    .uri()
                    .path_and_query()
                    .map_or("/", |path| path.as_str());
                let uri: Uri = format!("{}://{authority}{path}", endpoint.scheme.as_str())
                    .parse()
                    .map_err(|err| RequestError::Send(format!("request URI: {err}")))?;
                *request.uri_mut() = uri;
                *request.version_mut() = http::Version::HTTP_2;
                sender
                    .ready()
                    .await
                    .map_err(|err| RequestError::Send(err.to_string()))?;
                sender.send_request(request).await
            }
        }
        .map_err(|err| RequestError::Send(err.to_string()))?;
        let (parts, mut body) = response.into_parts();
        while let Some(frame) = body.frame().await {
            frame.map_err(|err| RequestError::Receive(err.to_string()))?;
        }
        Ok(parts)
    }
}
