//! Client connection limits: `server.header_timeout`, `server.idle_timeout` and
//! `server.max_connections`, around Pingora's HTTP apps: one wrapper, [`LimitedApp`], for the
//! proxy's plain and TLS listeners, HTTP/1 and HTTP/2, and (with limits of its own) the admin
//! listener.
//!
//! Every connection is counted as it arrives, before anything else is done with it, and closed
//! at once past the cap. Then, from its arrival, it has `header_timeout` for its TLS handshake
//! (TLS listeners, [`tls`]) and its first request head:
//! - HTTP/1: Pingora 0.9.1 reads a request head with its keep-alive timeout (60 s, per read,
//!   so a client sending a byte a minute is never closed) and, from the connection's first
//!   byte, inside `HttpProxy::process_new_http`, whose future holds the state of the whole
//!   proxy path (tens of KiB, allocated when the connection arrives). This wrapper reads the
//!   head itself ([`head`]), in a small future, with one deadline for the whole head, decides
//!   where it ends as Pingora's parser does, and only then hands the bytes to Pingora as a
//!   "pipelined prefix" that Pingora parses without reading again. A kept-alive connection
//!   waits `idle_timeout` for its next request. The parsed request is offered to the app's
//!   [`FrontDoor`] first ([`front_door`]); what the door declines goes to the app.
//! - HTTP/2 (ALPN `h2`): Pingora serves the connection; [`h2`] bounds the handshake and first
//!   request by the same deadline and closes it after `idle_timeout` without an open stream.
//!
//! Pipelined requests: bytes a client sends past the request being served (a pipelined next
//! request) are served by nobody. Pingora 0.9.1 hands them to the next request only inside
//! `HttpPersistentSettings`, which offers no way to read them, so this wrapper could not read
//! that head with its timeouts; and without its pipelining switch Pingora answers `400` when
//! they arrive during the exchange, after the upstream has the request. The proxy turns the
//! switch on for the exchange and off before Pingora's reuse decision (`proxy/mod.rs`,
//! `request_filter` and `logging`): the request is answered, then the connection closed, and
//! the client sends the next request again on a new one.

mod front_door;
mod h2;
mod head;
mod tls;
mod waits;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use once_cell::sync::Lazy;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, HttpServerOptions, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use pingora_prometheus::prometheus::{self, IntCounter, IntCounterVec, IntGauge, Opts};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use front_door::Offer;
pub use front_door::{Closed, FrontDoor};
pub use head::MAX_HEAD_BYTES;
use head::{read_head, Head};
pub use tls::TlsListeners;
use waits::ConnectionWaits;

/// Connections the admin listener holds at once (`admin.listen`): scrapes, probes, purges and
/// reloads, one or a few at a time each; past it a new one is closed on arrival.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;

/// The limits from `server:`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Which listeners a [`LimitedApp`] serves: each has its own count and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listeners {
    Proxy,
    Admin,
}

struct ConnectionMetrics {
    open: IntGauge,
    refused: IntCounter,
    timeouts: IntCounterVec,
}

fn must<T>(result: prometheus::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("connection metrics: {e}"))
}

impl ConnectionMetrics {
    fn register(prefix: &str, listeners: &str, cap: &str) -> Self {
        let open = must(IntGauge::new(
            format!("{prefix}connections_open"),
            format!("Client connections open on the {listeners} listeners"),
        ));
        let refused = must(IntCounter::new(
            format!("{prefix}connections_refused_total"),
            format!("Client connections closed on arrival because {cap} were open"),
        ));
        let timeouts = must(IntCounterVec::new(
            Opts::new(
                format!("{prefix}connection_timeouts_total"),
                format!(
                    "Client connections on the {listeners} listeners closed by a timeout: phase \
                     header (server.header_timeout: TLS handshake and first request head), idle \
                     (server.idle_timeout)"
                ),
            ),
            &["phase"],
        ));
        for collector in [
            Box::new(open.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(refused.clone()),
            Box::new(timeouts.clone()),
        ] {
            must(prometheus::register(collector));
        }
        for phase in ["header", "idle"] {
            timeouts.with_label_values(&[phase]);
        }
        ConnectionMetrics {
            open,
            refused,
            timeouts,
        }
    }
}

static PROXY_METRICS: Lazy<ConnectionMetrics> = Lazy::new(|| {
    ConnectionMetrics::register(
        "cors_edge_",
        "proxy (plain and TLS)",
        "server.max_connections",
    )
});

static ADMIN_METRICS: Lazy<ConnectionMetrics> = Lazy::new(|| {
    ConnectionMetrics::register(
        "cors_edge_admin_",
        "admin",
        &format!("{ADMIN_MAX_CONNECTIONS} (the admin listener's cap)"),
    )
});

/// Registers the connection metrics (so they are exported at 0 before the first connection).
pub fn register_metrics() {
    Lazy::force(&PROXY_METRICS);
    Lazy::force(&ADMIN_METRICS);
}

/// Pingora's HTTP app `A` behind the limits, with HTTP/1 requests offered to `door` first.
pub struct LimitedApp<A, D = Closed> {
    inner: Arc<A>,
    door: D,
    limits: Limits,
    open: AtomicUsize,
    metrics: &'static ConnectionMetrics,
    /// The TLS listeners among this service's (plain TCP) listeners.
    tls: Option<TlsListeners>,
    /// The inner app's options for HTTP/2, with `h2_idle_timeout` = `idle_timeout`.
    h2_options: HttpServerOptions,
}

impl<A: HttpServerApp, D: FrontDoor> LimitedApp<A, D> {
    pub fn new(
        inner: A,
        door: D,
        limits: Limits,
        listeners: Listeners,
        tls: Option<TlsListeners>,
    ) -> Self {
        let mut h2_options = inner.server_options().cloned().unwrap_or_default();
        h2_options.h2_idle_timeout = Some(limits.idle_timeout);
        LimitedApp {
            inner: Arc::new(inner),
            door,
            limits,
            open: AtomicUsize::new(0),
            metrics: match listeners {
                Listeners::Proxy => &PROXY_METRICS,
                Listeners::Admin => &ADMIN_METRICS,
            },
            tls,
            h2_options,
        }
    }
}

impl<A, D> LimitedApp<A, D> {
    fn admit(&self) -> Option<OpenConnection<'_>> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.limits.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.metrics.refused.inc();
            return None;
        }
        self.metrics.open.inc();
        Some(OpenConnection(&self.open, self.metrics))
    }

    fn timed_out(&self, phase: &str) {
        self.metrics.timeouts.with_label_values(&[phase]).inc();
    }
}

/// Counts a connection as open until dropped.
struct OpenConnection<'a>(&'a AtomicUsize, &'static ConnectionMetrics);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        self.1.open.dec();
    }
}

/// Writes a short final answer and closes, giving a client that does not read one second.
async fn refuse(mut stream: Stream, status: &str) {
    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.flush().await?;
        stream.shutdown().await
    })
    .await;
}

#[async_trait]
impl<A, D> ServerApp for LimitedApp<A, D>
where
    A: HttpServerApp + Send + Sync + 'static,
    D: FrontDoor,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let deadline = Instant::now() + self.limits.header_timeout;
        let Some(_open) = self.admit() else {
            // Closed at once: the client sees a reset or EOF before any answer.
            drop(stream);
            return None;
        };
        let stream = match &self.tls {
            Some(tls) if tls.accepted(&stream) => {
                match tokio::time::timeout_at(deadline, tls.handshake(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!("TLS handshake failed: {e}");
                        return None;
                    }
                    Err(_) => {
                        self.timed_out("header");
                        return None;
                    }
                }
            }
            _ => stream,
        };
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            let options = self.h2_options.clone();
            if let h2::Served::HeaderTimeout =
                h2::serve(&self.inner, options, stream, deadline, shutdown).await
            {
                self.timed_out("header");
            }
            return None;
        }
        self.serve_http1(stream, deadline, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.http_cleanup().await;
    }
}

impl<A, D> LimitedApp<A, D>
where
    A: HttpServerApp + Send + Sync + 'static,
    D: FrontDoor,
{
    /// HTTP/1: each head read here, then parsed by Pingora and answered at the door or served
    /// by the app; the first head must be complete by `deadline`.
    async fn serve_http1(
        self: &Arc<Self>,
        mut stream: Stream,
        deadline: Instant,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let idle_seconds = self.limits.idle_timeout.as_secs().max(1);
        let mut persistent: Option<HttpPersistentSettings> = None;
        let mut waits = ConnectionWaits::new(deadline, shutdown);
        let mut new_connection = true;
        loop {
            let head = match read_head(&mut stream, new_connection, &mut waits, &self.limits).await
            {
                Head::Complete(head) => head,
                Head::Closed | Head::ShuttingDown => return None,
                Head::TimedOut { partial } => {
                    self.timed_out(if partial || new_connection {
                        "header"
                    } else {
                        "idle"
                    });
                    if partial {
                        refuse(stream, "408 Request Timeout").await;
                    }
                    return None;
                }
                Head::TooLarge => {
                    refuse(stream, "431 Request Header Fields Too Large").await;
                    return None;
                }
            };
            let mut session = ServerSession::new_http1(stream);
            match persistent.take() {
                Some(settings) => settings.apply_to_session(&mut session),
                None => session.set_keepalive(Some(idle_seconds)),
            }
            if *shutdown.borrow() {
                session.set_keepalive(None);
            }
            // Pingora parses these bytes first and reads the stream only for what follows (a
            // body); nothing is read twice from the stream. `persistent` never carries bytes of
            // its own (Pingora asserts that): the proxy turns Pingora's pipelining off before
            // reuse (`logging` in proxy/mod.rs) and the admin app never turns it on.
            let reused = if D::OPEN {
                match front_door::offer(&self.door, session, head).await {
                    Offer::Answered(reused) => reused,
                    Offer::Declined(session) => {
                        self.inner.process_new_http(session, shutdown).await
                    }
                }
            } else {
                session.set_pipelined_prefix(head);
                self.inner.process_new_http(session, shutdown).await
            };
            let (next, settings) = reused?.consume();
            stream = next;
            persistent = settings;
            new_connection = false;
        }
    }
}
