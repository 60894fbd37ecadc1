//! The access log: one line per request, like nginx's `access_log` or Varnish's `varnishncsa`,
//! configured by `log.access` (off by default).
//!
//! The proxy calls [`AccessLog::log`] once per request from its `logging` hook. The line is
//! formatted there ([`format`], pure) and handed to a bounded channel; a writer thread
//! ([`writer`]) does all the I/O. Nothing on the request path ever waits for the log: when the
//! writer falls behind (a slow disk, a pipe nobody reads) the channel is full and the line is
//! dropped and counted in `cors_edge_access_log_dropped_total`. [`AccessLog::reopen`] (SIGHUP,
//! `POST /reload`) makes the writer close and reopen the file, for log rotation.

pub mod format;
mod writer;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cors_edge_core::config::{AccessLogConfig, AccessLogFormat};
use cors_edge_core::cors::UnsafeReason;
use cors_edge_core::outcome::{CacheStatus, CorsOutcome, TrafficKind};

use crate::metrics::METRICS;

/// Lines that may wait for the writer; past this they are dropped. Several times what the
/// highest rates bring in one `writer::BATCH_INTERVAL` (10 ms: 4096 lines is 400k lines/s), so
/// only a writer that is really stuck loses lines.
pub const QUEUED_LINES: usize = 4096;

/// One request, as logged. Borrowed from the request's context; nothing is copied until the
/// line is formatted.
#[derive(Debug, Clone)]
pub struct AccessRecord<'a> {
    /// When the request arrived.
    pub time: SystemTime,
    /// The client's address (the TCP peer).
    pub client: Option<IpAddr>,
    pub method: &'a str,
    pub host: &'a str,
    pub path_and_query: &'a str,
    pub status: u16,
    /// Body bytes sent downstream.
    pub bytes_sent: u64,
    /// From the request's arrival to the end of the response.
    pub duration: Duration,
    /// From sending the upstream request to its response header; `None` without one.
    pub upstream_duration: Option<Duration>,
    /// `None` when no route matched.
    pub route: Option<&'a str>,
    /// What `X-Cache` says.
    pub cache_status: CacheStatus,
    pub kind: TrafficKind,
    /// The request's `Origin`, as sent.
    pub origin: Option<&'a str>,
    /// The CORS decision; `None` when none was made (no route, an error answer).
    pub cors_decision: Option<CorsOutcome>,
    /// Why the upstream response had to be protected (`unsafe_upstream_responses_total`).
    pub unsafe_reasons: &'a [UnsafeReason],
    /// The sharded cache (`cluster.peers`): the key's owner (`self`, `self (for a peer)`, or
    /// the owner's address). `None` outside a ring: the field is left out of the line.
    pub owner: Option<&'a str>,
}

/// The running access log. Cheap to call from any thread.
pub struct AccessLog {
    format: AccessLogFormat,
    lines: SyncSender<writer::Message>,
    reopen: Arc<AtomicBool>,
}

impl AccessLog {
    /// Starts the writer thread for `config`; `None` when the access log is off. Fails when the
    /// file cannot be opened, so a wrong path stops the gateway at startup.
    pub fn start(config: Option<&AccessLogConfig>) -> Result<Option<AccessLog>, String> {
        let Some(config) = config else {
            return Ok(None);
        };
        let destination = config.destination();
        writer::check(&destination)
            .map_err(|e| format!("log.access.path: cannot open {destination}: {e}"))?;
        let (lines, received) = sync_channel(QUEUED_LINES);
        let reopen = Arc::new(AtomicBool::new(false));
        let writer = writer::Writer {
            destination,
            lines: received,
            reopen: reopen.clone(),
            dropped: Box::new(|count| METRICS.access_log_dropped.inc_by(count)),
        };
        std::thread::Builder::new()
            .name("access-log".to_string())
            .spawn(move || writer.run())
            .map_err(|e| format!("cannot start the access log writer: {e}"))?;
        Ok(Some(AccessLog {
            format: config.format,
            lines,
            reopen,
        }))
    }

    /// Queues one line; never waits.
    pub fn log(&self, record: &AccessRecord<'_>) {
        let mut line = String::with_capacity(320);
        format::write_line(record, self.format, &mut line);
        match self.lines.try_send(writer::Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                METRICS.access_log_dropped.inc();
            }
        }
    }

    /// Asks the writer to close and reopen its file (log rotation).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
        // A full channel means the writer is busy and sees the flag before its next line.
        let _ = self.lines.try_send(writer::Message::Wake);
    }
}
