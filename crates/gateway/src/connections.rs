//! Client connection limits: `server.header_timeout`, `server.idle_timeout` and
//! `server.max_connections`, around Pingora's HTTP proxy app.
//!
//! Pingora 0.9.1 reads a request head with its keep-alive timeout (60 s, per read, so a client
//! sending a byte a minute is never closed) and, from the connection's first byte, inside
//! `HttpProxy::process_new_http`, whose future holds the state of the whole proxy path (tens of
//! KiB, allocated when the connection arrives). This wrapper reads the head itself, in a small
//! future, with one deadline for the whole head, and only then hands the bytes to Pingora as a
//! "pipelined prefix" that Pingora parses without reading again. So a half-open or idle
//! keep-alive connection costs this wrapper's buffer and future, not a proxy session; and
//! connections over `max_connections` are closed before anything is allocated for them.
//!
//! HTTP/2 (TLS with ALPN `h2`) goes to Pingora's own handling after the connection is counted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use once_cell::sync::Lazy;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use pingora_prometheus::prometheus::{self, IntCounter, IntCounterVec, IntGauge, Opts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// A request head larger than this is answered `431` and the connection closed. The proxy's
/// own limit (32 KiB, `431`) applies to heads under it.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The limits from `server:`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

struct ConnectionMetrics {
    open: IntGauge,
    refused: IntCounter,
    timeouts: IntCounterVec,
}

static METRICS: Lazy<ConnectionMetrics> = Lazy::new(|| {
    let open = IntGauge::new(
        "cors_edge_connections_open",
        "Client connections open on the proxy listeners",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let refused = IntCounter::new(
        "cors_edge_connections_refused_total",
        "Client connections closed on arrival because server.max_connections were open",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let timeouts = IntCounterVec::new(
        Opts::new(
            "cors_edge_connection_timeouts_total",
            "Client connections closed by a timeout: phase header (server.header_timeout), idle (server.idle_timeout)",
        ),
        &["phase"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for collector in [
        Box::new(open.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(refused.clone()),
        Box::new(timeouts.clone()),
    ] {
        if let Err(e) = prometheus::register(collector) {
            panic!("metric registration failed: {e}");
        }
    }
    for phase in ["header", "idle"] {
        timeouts.with_label_values(&[phase]);
    }
    ConnectionMetrics {
        open,
        refused,
        timeouts,
    }
});

/// Registers the connection metrics (so they are exported at 0 before the first connection).
pub fn register_metrics() {
    Lazy::force(&METRICS);
}

/// Pingora's HTTP app `A` behind the limits.
pub struct LimitedApp<A> {
    inner: Arc<A>,
    limits: Limits,
    open: AtomicUsize,
}

impl<A> LimitedApp<A> {
    pub fn new(inner: A, limits: Limits) -> Self {
        LimitedApp {
            inner: Arc::new(inner),
            limits,
            open: AtomicUsize::new(0),
        }
    }

    fn admit(&self) -> Option<OpenConnection<'_>> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.limits.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            METRICS.refused.inc();
            return None;
        }
        METRICS.open.inc();
        Some(OpenConnection(&self.open))
    }
}

/// Counts a connection as open until dropped.
struct OpenConnection<'a>(&'a AtomicUsize);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        METRICS.open.dec();
    }
}

/// How reading a request head ended.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    Complete(BytesMut),
    /// The client closed the connection, or it broke.
    Closed,
    /// No complete head in time; `partial` when some of it had arrived.
    TimedOut {
        partial: bool,
    },
    TooLarge,
    /// The server is stopping and the connection was idle.
    ShuttingDown,
}

/// Whether `buf` holds a whole request head: the empty line after the header fields. Empty
/// lines before the request line are skipped, as RFC 9112 §2.2 lets a server do. `scanned` is
/// how far earlier calls looked, so each byte is looked at about once.
fn head_end(buf: &[u8], scanned: &mut usize) -> bool {
    let Some(start) = buf.iter().position(|&b| b != b'\r' && b != b'\n') else {
        *scanned = buf.len();
        return false;
    };
    let from = (*scanned).max(start + 1);
    *scanned = buf.len();
    (from..buf.len()).any(|i| {
        buf[i] == b'\n'
            && (buf[i - 1] == b'\n' || (buf[i - 1] == b'\r' && i >= 2 && buf[i - 2] == b'\n'))
            && i > start
    })
}

/// Reads one request head from `stream`. A new connection has `header_timeout` from its
/// arrival for the whole head; a kept-alive one waits up to `idle_timeout` for the first byte
/// of the next request, then has `header_timeout` for the rest.
async fn read_head(
    stream: &mut Stream,
    new_connection: bool,
    limits: &Limits,
    shutdown: &ShutdownWatch,
) -> Head {
    let mut shutdown = shutdown.clone();
    if !new_connection && *shutdown.borrow() {
        return Head::ShuttingDown;
    }
    let mut buf = BytesMut::new();
    let mut scanned = 0;
    let mut deadline = Instant::now()
        + if new_connection {
            limits.header_timeout
        } else {
            limits.idle_timeout
        };
    let mut started = new_connection;
    loop {
        if buf.capacity() - buf.len() < 256 {
            // Most heads fit in 1 KiB; a bigger one doubles the buffer.
            buf.reserve(buf.len().max(1024));
        }
        let read = tokio::select! {
            read = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)) => read,
            changed = shutdown.changed(), if buf.is_empty() && !new_connection => {
                if changed.is_err() || *shutdown.borrow() {
                    return Head::ShuttingDown;
                }
                continue;
            }
        };
        match read {
            Err(_) => {
                return Head::TimedOut {
                    partial: !buf.is_empty(),
                }
            }
            Ok(Err(_) | Ok(0)) => return Head::Closed,
            Ok(Ok(_)) => {}
        }
        if !started {
            started = true;
            deadline = Instant::now() + limits.header_timeout;
        }
        if head_end(&buf, &mut scanned) {
            return Head::Complete(buf);
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Head::TooLarge;
        }
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
impl<A> ServerApp for LimitedApp<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Some(_open) = self.admit() else {
            // Closed at once: the client sees a reset or EOF before any answer.
            drop(stream);
            return None;
        };
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.inner, stream, shutdown).await;
        }
        let idle_seconds = self.limits.idle_timeout.as_secs().max(1);
        let mut stream = stream;
        let mut persistent: Option<HttpPersistentSettings> = None;
        let mut new_connection = true;
        loop {
            let head = match read_head(&mut stream, new_connection, &self.limits, shutdown).await {
                Head::Complete(head) => head,
                Head::Closed | Head::ShuttingDown => return None,
                Head::TimedOut { partial } => {
                    METRICS
                        .timeouts
                        .with_label_values(&[if partial || new_connection {
                            "header"
                        } else {
                            "idle"
                        }])
                        .inc();
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
            // body); nothing is read twice.
            session.set_pipelined_prefix(head);
            let reused = self.inner.process_new_http(session, shutdown).await?;
            let (next, settings) = reused.consume();
            stream = next;
            persistent = settings;
            new_connection = false;
        }
    }

    async fn cleanup(&self) {
        self.inner.http_cleanup().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(bytes: &[u8]) -> bool {
        let mut scanned = 0;
        head_end(bytes, &mut scanned)
    }

    #[test]
    fn head_ends_at_the_empty_line() {
        assert!(complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(complete(b"GET / HTTP/1.1\nHost: x\n\n"));
        assert!(complete(b"GET / HTTP/1.1\r\n\r\nbody"));
        assert!(complete(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!complete(b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(!complete(b"\r\n\r\n\r\n"));
        assert!(!complete(b""));
        assert!(!complete(b"\r\n\r\nGET / HTTP/1.1\r\n"));
    }

    #[test]
    fn head_end_found_across_reads() {
        let whole = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for split in 1..whole.len() {
            let mut scanned = 0;
            let first = head_end(&whole[..split], &mut scanned);
            let second = head_end(whole, &mut scanned);
            assert!(!first || split == whole.len(), "split {split}");
            assert!(second, "split {split}");
        }
    }
}
