//! HTTP/2 connections (TLS with ALPN `h2`) inside the connection limits.
//!
//! Pingora drives the connection (its h2 handshake, its accept loop with graceful shutdown and
//! the malformed-stream budget, one task per stream); this module only adds the two timeouts:
//! - `server.idle_timeout`: Pingora 0.9.1's `HttpServerOptions::h2_idle_timeout`, which closes
//!   a connection once it has had no open stream for that long (pings do not count);
//! - `server.header_timeout`: the h2 handshake and the first request's HEADERS must arrive
//!   within it. Pingora has no hook for that, so the connection is served through
//!   [`FirstRequest`], an `HttpServerApp` that tells when Pingora hands it the first request
//!   and passes every request on to the proxy; until then the whole connection future is
//!   raced against the deadline and dropped (the socket closed) when it passes.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream, ServerApp};
use pingora::protocols::http::v2::server::H2Options;
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use tokio::sync::Notify;
use tokio::time::Instant;

/// One HTTP/2 connection's view of the app `A`.
struct FirstRequest<A> {
    inner: Arc<A>,
    options: HttpServerOptions,
    arrived: Notify,
}

#[async_trait]
impl<A> HttpServerApp for FirstRequest<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        // A permit is kept if nobody waits yet, so the order does not matter.
        self.arrived.notify_one();
        self.inner.process_new_http(session, shutdown).await
    }

    fn h2_options(&self) -> Option<H2Options> {
        self.inner.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }
}

/// How serving an HTTP/2 connection ended.
pub(super) enum Served {
    /// Pingora's connection loop returned (closed by either side, idle, or shut down).
    Done,
    /// No first request by the deadline.
    HeaderTimeout,
}

/// Serves the HTTP/2 connection `stream` with `inner`; `options` are the inner app's with
/// `h2_idle_timeout` set.
pub(super) async fn serve<A>(
    inner: &Arc<A>,
    options: HttpServerOptions,
    stream: Stream,
    deadline: Instant,
    shutdown: &ShutdownWatch,
) -> Served
where
    A: HttpServerApp + Send + Sync + 'static,
{
    let connection = Arc::new(FirstRequest {
        inner: inner.clone(),
        options,
        arrived: Notify::new(),
    });
    let serving = ServerApp::process_new(&connection, stream, shutdown);
    tokio::pin!(serving);
    tokio::select! {
        _ = &mut serving => return Served::Done,
        first = tokio::time::timeout_at(deadline, connection.arrived.notified()) => {
            if first.is_err() {
                return Served::HeaderTimeout;
            }
        }
    }
    serving.await;
    Served::Done
}
