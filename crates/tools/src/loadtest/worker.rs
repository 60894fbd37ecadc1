//! The one place the load test does I/O: the dispatcher that hands out request slots,
//! and the workers, each driving one keep-alive connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Uri};
use tokio::time::{Instant, Sleep};

use super::observe::Observation;
use super::plan::{LoadPlan, Shape, SplitMix64};
use super::series::{Outcome, SeriesRecorder, Timeline};
use super::stats::WorkerStats;
use crate::net::h1::H1Connection;
use crate::net::{self, Endpoint, Negotiated, Protocol, RequestError};
use crate::request;

/// Tokio's timer has millisecond granularity, so an open-loop worker wakes up to one
/// tick early rather than late; otherwise the timer's rounding would show up as latency.
const TIMER_TICK: Duration = Duration::from_millis(1);
/// Pause after a failed connect so a dead target is not hammered in a tight loop.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub(crate) struct Dispatcher {
    next_ticket: AtomicU64,
    request_limit: Option<u64>,
    started: Instant,
    deadline: Option<Instant>,
    rate: Option<f64>,
}

/// One request a worker may send; `scheduled` is its intended start in open loop.
pub(crate) struct Slot {
    scheduled: Option<Instant>,
}

impl Dispatcher {
    pub fn new(plan: &LoadPlan, started: Instant) -> Self {
        Dispatcher {
            next_ticket: AtomicU64::new(0),
            request_limit: plan.bounds.requests,
            started,
            deadline: plan.bounds.duration.map(|limit| started + limit),
            rate: plan.rate,
        }
    }

    /// The next slot, or `None` when the run is over.
    pub fn next(&self) -> Option<Slot> {
        if self.rate.is_none() && self.deadline.is_some_and(|end| Instant::now() >= end) {
            return None;
        }
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        if self.request_limit.is_some_and(|limit| ticket >= limit) {
            return None;
        }
        let scheduled = match self.rate {
            None => None,
            Some(rate) => {
                // Precision: f64 holds tickets exactly far beyond any run length.
                let at = self.started + Duration::from_secs_f64(ticket as f64 / rate);
                if self.deadline.is_some_and(|end| at >= end) {
                    return None;
                }
                Some(at)
            }
        };
        Some(Slot { scheduled })
    }
}

/// What workers share while running: the plan, the dispatcher, the timeline and the
/// live counters the progress display reads.
pub(crate) struct Shared {
    pub plan: Arc<LoadPlan>,
    pub dispatcher: Dispatcher,
    pub timeline: Timeline,
    pub started: Instant,
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    pub leaks: AtomicU64,
}

/// A worker's connection: the HTTP/1.1 fast path, or hyper's HTTP/2 client.
enum Connection {
    Http1(H1Connection),
    Http2(net::http::Sender),
}

impl Connection {
    async fn open(endpoint: &Endpoint) -> Result<(Connection, Negotiated), RequestError> {
        let (stream, negotiated) = net::connect(endpoint).await?;
        let connection = match negotiated.protocol {
            Protocol::Http1 => Connection::Http1(H1Connection::new(stream)),
            Protocol::Http2 => {
                Connection::Http2(net::http::handshake(stream, Protocol::Http2).await?)
            }
        };
        Ok((connection, negotiated))
    }

    fn is_reusable(&self) -> bool {
        match self {
            Connection::Http1(connection) => connection.is_reusable(),
            Connection::Http2(sender) => sender.is_open(),
        }
    }
}

/// A worker's way to its node: the endpoint (one node of a cluster, or the one target) and
/// the connection currently open to it.
struct Link<'e> {
    endpoint: &'e Endpoint,
    connection: Option<Connection>,
}

/// One request on `connection` (opened first when `None` or spent); the connection is
/// put back when it may be reused. A reused HTTP/1.1 connection that the server closed
/// while idle is reopened and the request sent again, as browsers do.
async fn send(
    plan: &LoadPlan,
    stats: &mut WorkerStats,
    link: &mut Link<'_>,
    buffer: &mut Vec<u8>,
    shape: Shape,
    origin: &HeaderValue,
    path: &Uri,
) -> Result<(Instant, Observation), RequestError> {
    let Link {
        endpoint,
        connection,
    } = link;
    let endpoint: &Endpoint = endpoint;
    let cors = plan.cors_shape(shape, origin);
    let want_example = stats.wants_example();
    let mut retried = false;
    loop {
        let mut open = match connection.take() {
            Some(open) if open.is_reusable() => open,
            _ => {
                let (open, negotiated) = Connection::open(endpoint).await?;
                stats.note_connection(negotiated);
                open
            }
        };
        let send_start = Instant::now();
        let seen = match &mut open {
            Connection::Http1(h1) => {
                plan.h1.write(buffer, path, cors);
                let reused = h1.answered() > 0;
                let outcome = h1
                    .exchange(buffer, false, |status, headers| {
                        Observation::of(status, headers, shape, origin, path, want_example)
                    })
                    .await;
                match outcome {
                    Err(RequestError::Closed) if reused && !retried => {
                        retried = true;
                        continue;
                    }
                    other => other?,
                }
            }
            Connection::Http2(sender) => {
                let request = request::build(&plan.base_headers, path.clone(), cors);
                let head = sender.exchange(endpoint, request).await?;
                Observation::of(
                    head.status.as_u16(),
                    &head.headers,
                    shape,
                    origin,
                    path,
                    want_example,
                )
            }
        };
        *connection = Some(open);
        return Ok((send_start, seen));
    }
}

pub(crate) async fn worker(
    index: usize,
    shared: Arc<Shared>,
    mut stats: WorkerStats,
) -> WorkerStats {
    let plan = &shared.plan;
    let mut rng = SplitMix64::new(index as u64);
    let mut link = Link {
        endpoint: plan.endpoint_of(index),
        connection: None,
    };
    let mut timer = RequestTimer::new(plan.timeout);
    let mut series = SeriesRecorder::new(plan.interval);
    let mut buffer = Vec::with_capacity(512);

    while let Some(slot) = shared.dispatcher.next() {
        if let Some(scheduled) = slot.scheduled {
            let wake_at = scheduled.checked_sub(TIMER_TICK).unwrap_or(scheduled);
            if wake_at > Instant::now() {
                tokio::time::sleep_until(wake_at).await;
            }
        }

        let shape = plan.pick_shape(rng.next_f64());
        let origin = &plan.origins[rng.below(plan.origins.len())];
        let path = &plan.paths[rng.below(plan.paths.len())];
        stats.count_sent(shape);

        let outcome = timer
            .limit(send(
                plan,
                &mut stats,
                &mut link,
                &mut buffer,
                shape,
                origin,
                path,
            ))
            .await;
        let now = Instant::now();
        let at = now.saturating_duration_since(shared.started);
        match outcome {
            Ok((send_start, seen)) => {
                // Open loop: a request sent late is measured from when it should
                // have started (coordinated omission); one sent up to a timer tick
                // early is measured from when it really started.
                let measured_from = slot.scheduled.map_or(send_start, |at| at.min(send_start));
                let latency = now.saturating_duration_since(measured_from);
                stats.record_latency(latency);
                let (hit, with_cache_status) = (seen.is_hit(), seen.cache_token().is_some());
                let leak = stats.commit(seen);
                if leak {
                    shared.leaks.fetch_add(1, Ordering::Relaxed);
                }
                let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                let outcome = Outcome::Response {
                    latency_us,
                    hit,
                    with_cache_status,
                    leak,
                };
                series.record(&shared.timeline, at, outcome);
            }
            Err(err) => {
                let reconnect_failed = matches!(
                    err,
                    RequestError::Connect(_) | RequestError::Tls(_) | RequestError::Handshake(_)
                );
                stats.record_error(&err);
                series.record(&shared.timeline, at, Outcome::Error);
                shared.errors.fetch_add(1, Ordering::Relaxed);
                // The connection's state is unknown after a failure; never reuse it.
                link.connection = None;
                if reconnect_failed {
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                }
            }
        }
        shared.completed.fetch_add(1, Ordering::Relaxed);
    }
    series.flush(&shared.timeline);
    stats
}

/// Bounds each request of one worker by `limit`, re-arming a single timer only when it
/// fires instead of registering a timer per request: at ~100k requests per second the
/// per-request registration and removal is a visible share of the client's CPU.
struct RequestTimer {
    limit: Duration,
    /// Fires no later than the current request's due time; when it fires early (it
    /// was set for an earlier request) it is re-armed for the current one.
    alarm: Pin<Box<Sleep>>,
}

impl RequestTimer {
    fn new(limit: Duration) -> Self {
        RequestTimer {
            limit,
            alarm: Box::pin(tokio::time::sleep(limit)),
        }
    }

    async fn limit<T>(
        &mut self,
        work: impl Future<Output = Result<T, RequestError>>,
    ) -> Result<T, RequestError> {
        let due = Instant::now() + self.limit;
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                output = &mut work => return output,
                () = self.alarm.as_mut() => {
                    if Instant::now() >= due {
                        return Err(RequestError::Timeout);
                    }
                    self.alarm.as_mut().reset(due);
                }
            }
        }
    }
}
