//! Cluster purge: a purge accepted by any node's admin API reaches every node through Redis.
//!
//! The bus is a Redis stream (key = `cluster.channel`), not pub/sub, so a node that was cut
//! off from Redis for a while catches up on what it missed instead of serving purged content:
//!
//! - publishing: the admin handler purges locally, then hands the selector to
//!   [`ClusterHandle::publish`], which only queues it; the publisher task sends it with
//!   `XADD <channel> MAXLEN ~ 10000 * node <id> purge <json>`. While Redis is unreachable the
//!   queue holds the purges (bounded: past [`MAX_QUEUED`] they collapse into one purge of
//!   everything, the only safe summary) and the task retries with backoff.
//! - receiving: the subscriber task reads with a blocking `XREAD` from the last id it has seen,
//!   so delivery is immediate and a reconnect resumes where it left off. Entries carry the
//!   publishing node's id; a node skips its own.
//! - Redis restarts: on every (re)connect the subscriber compares `INFO server`'s `run_id` with
//!   the one it knew. A restarted Redis without persistence has a new, empty stream whose
//!   entries were all published after the restart, so the node reads it from the beginning;
//!   a restarted Redis that kept the stream (its last seen id is still there) is resumed from
//!   that id. Ids that went backwards or a vanished stream (same server) also mean "from the
//!   beginning".

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cors_edge_core::config::ClusterConfig;
use cors_edge_core::purge::Selector;
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora_prometheus::prometheus::{self, IntCounter, IntGauge};
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::AsyncConnectionConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::metrics::METRICS;
use crate::state::SharedState;

/// Approximate length the stream is trimmed to: how far back a reconnecting node can catch up.
const STREAM_MAX_LEN: usize = 10_000;
/// Purges kept for publishing while Redis is unreachable.
const MAX_QUEUED: usize = 10_000;
/// Purges sent in one pipeline when several are queued.
const PUBLISH_BATCH: usize = 100;
/// How long one blocking read waits for new entries before asking again.
const READ_BLOCK: Duration = Duration::from_secs(2);
/// Client-side bound on any one Redis answer (a blocking read takes up to `READ_BLOCK`).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// On a graceful stop, how long queued purges may still take to reach Redis.
const FLUSH_ON_STOP: Duration = Duration::from_secs(1);

struct ClusterMetrics {
    connected: IntGauge,
    published: IntCounter,
    received: IntCounter,
    queued: IntGauge,
    resyncs: IntCounter,
}

static CLUSTER_METRICS: Lazy<ClusterMetrics> = Lazy::new(|| {
    fn gauge(name: &str, help: &str) -> IntGauge {
        let gauge = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
        if let Err(e) = prometheus::register(Box::new(gauge.clone())) {
            panic!("metric registration failed: {e}");
        }
        gauge
    }
    fn counter(name: &str, help: &str) -> IntCounter {
        let counter = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
        if let Err(e) = prometheus::register(Box::new(counter.clone())) {
            panic!("metric registration failed: {e}");
        }
        counter
    }
    ClusterMetrics {
        connected: gauge("cors_edge_cluster_connected", "1 while this node reads the cluster purge stream"),
        published: counter("cors_edge_cluster_purges_published_total", "Purges this node sent to the cluster"),
        received: counter(
            "cors_edge_cluster_purges_received_total",
            "Purges from other nodes applied to this node's cache",
        ),
        queued: gauge("cors_edge_cluster_publish_queue", "Purges waiting for Redis to be reachable"),
        resyncs: counter(
            "cors_edge_cluster_resyncs_total",
            "Times the purge stream was read again from its beginning (Redis restarted or the stream was recreated)",
        ),
    }
});

/// One purge as it travels between nodes (the `purge` field of a stream entry).
///
/// `all` is explicit: a message whose fields this node does not know must not turn into a
/// purge of everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePurge {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    #[serde(default)]
    pub soft: bool,
}

impl WirePurge {
    pub fn new(selector: &Selector, soft: bool) -> WirePurge {
        WirePurge {
            origin: selector.origin.clone(),
            host: selector.host.clone(),
            prefix: selector.prefix.clone(),
            url: selector.url.clone(),
            tag: selector.tag.clone(),
            all: selector.is_everything(),
            soft,
        }
    }

    /// The selector, or `None` for a message that names nothing (not even `all`).
    pub fn selector(&self) -> Option<(Selector, bool)> {
        let selector = Selector {
            origin: self.origin.clone(),
            host: self.host.clone(),
            prefix: self.prefix.clone(),
            url: self.url.clone(),
            tag: self.tag.clone(),
        };
        (self.all == selector.is_everything()).then_some((selector, self.soft))
    }
}

/// What the admin API holds to send purges to the other nodes. Never blocks.
#[derive(Clone)]
pub struct ClusterHandle {
    sender: mpsc::UnboundedSender<WirePurge>,
}

impl ClusterHandle {
    pub fn publish(&self, selector: &Selector, soft: bool) {
        if self.sender.send(WirePurge::new(selector, soft)).is_err() {
            tracing::error!("cluster: the publisher has stopped; purge applied on this node only");
        }
    }
}

/// The background service that publishes this node's purges and applies the others'.
pub struct ClusterBus {
    client: redis::Client,
    stream: String,
    node_id: String,
    /// Process start, Unix milliseconds: where the first read starts (stream ids are times).
    started_ms: u64,
    state: Arc<SharedState>,
    outbox: Mutex<Option<mpsc::UnboundedReceiver<WirePurge>>>,
}

impl ClusterBus {
    /// Validates the Redis URL; the connection itself is made (and retried) in the background.
    pub fn new(
        config: &ClusterConfig,
        state: Arc<SharedState>,
    ) -> Result<(ClusterBus, ClusterHandle), String> {
        let client = redis::Client::open(config.redis_url.as_str())
            .map_err(|e| format!("cluster.redis_url: {e}"))?;
        Lazy::force(&CLUSTER_METRICS);
        let (sender, receiver) = mpsc::unbounded_channel();
        let bus = ClusterBus {
            client,
            stream: config.channel.clone(),
            node_id: node_id(),
            started_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            state,
            outbox: Mutex::new(Some(receiver)),
        };
        Ok((bus, ClusterHandle { sender }))
    }

    async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Sends queued purges until shutdown; keeps them while Redis is unreachable.
    async fn publish_loop(
        &self,
        mut outbox: mpsc::UnboundedReceiver<WirePurge>,
        mut shutdown: ShutdownWatch,
    ) {
        let mut queue: VecDeque<WirePurge> = VecDeque::new();
        let mut connection: Option<MultiplexedConnection> = None;
        let mut backoff = Backoff::default();
        loop {
            if queue.is_empty() {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    message = outbox.recv() => match message {
                        Some(message) => queue.push_back(message),
                        None => return,
                    },
                }
            }
            if let Err(delay) = self
                .send_some(&mut outbox, &mut queue, &mut connection, &mut backoff)
                .await
            {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
        // Stopping while Redis was unreachable: one last short chance for the queued purges.
        let flush = async {
            while !queue.is_empty() {
                if let Err(delay) = self
                    .send_some(&mut outbox, &mut queue, &mut connection, &mut backoff)
                    .await
                {
                    tokio::time::sleep(delay).await;
                }
            }
        };
        if tokio::time::timeout(FLUSH_ON_STOP, flush).await.is_err() {
            tracing::warn!(
                "cluster: stopping with {} purges not sent to Redis",
                queue.len()
            );
        }
    }

    /// Moves new purges into the queue and sends a batch; on failure, how long to wait.
    async fn send_some(
        &self,
        outbox: &mut mpsc::UnboundedReceiver<WirePurge>,
        queue: &mut VecDeque<WirePurge>,
        connection: &mut Option<MultiplexedConnection>,
        backoff: &mut Backoff,
    ) -> Result<(), Duration> {
        while let Ok(message) = outbox.try_recv() {
            queue.push_back(message);
        }
        collapse_if_full(queue);
        CLUSTER_METRICS
            .queued
            .set(i64::try_from(queue.len()).unwrap_or(i64::MAX));
        let sent = match connection {
            Some(connection) => self.send_batch(connection, queue).await,
            None => match self.connect().await {
                Ok(fresh) => self.send_batch(connection.insert(fresh), queue).await,
                Err(e) => Err(e),
            },
        };
        match sent {
            Ok(count) => {
                if backoff.failing() {
                    tracing::info!("cluster: publishing to Redis again");
                }
                backoff.reset();
                queue.drain(..count);
                CLUSTER_METRICS.published.inc_by(count as u64);
                CLUSTER_METRICS
                    .queued
                    .set(i64::try_from(queue.len()).unwrap_or(i64::MAX));
                Ok(())
            }
            Err(e) => {
                *connection = None;
                if !backoff.failing() {
                    tracing::warn!(
                        "cluster: cannot publish to Redis ({e}); {} purges queued, retrying",
                        queue.len()
                    );
                }
                Err(backoff.next())
            }
        }
    }

    /// XADDs up to [`PUBLISH_BATCH`] queued purges in one pipeline; returns how many.
    async fn send_batch(
        &self,
        connection: &mut MultiplexedConnection,
        queue: &VecDeque<WirePurge>,
    ) -> redis::RedisResult<usize> {
        let mut pipeline = redis::pipe();
        let mut count = 0;
        for message in queue.iter().take(PUBLISH_BATCH) {
            let payload = match serde_json::to_string(message) {
                Ok(payload) => payload,
                // Plain strings and booleans always serialize; keep the count consistent anyway.
                Err(_) => "{}".to_string(),
            };
            pipeline
                .cmd("XADD")
                .arg(&self.stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAX_LEN)
                .arg("*")
                .arg("node")
                .arg(&self.node_id)
                .arg("purge")
                .arg(payload)
                .ignore();
            count += 1;
        }
        pipeline.query_async::<()>(connection).await?;
        Ok(count)
    }

    /// Reads the stream and applies other nodes' purges until shutdown.
    async fn subscribe_loop(&self, mut shutdown: ShutdownWatch) {
        let mut cursor: Option<Cursor> = None;
        let mut backoff = Backoff::default();
        loop {
            let session = async {
                let mut connection = self.connect().await?;
                let resumed = self.resume(&mut connection, cursor.as_ref()).await?;
                Ok::<_, redis::RedisError>((connection, resumed))
            };
            let (mut connection, resumed) = tokio::select! {
                _ = shutdown.changed() => return,
                result = session => match result {
                    Ok(ok) => ok,
                    Err(e) => {
                        if !backoff.failing() {
                            tracing::warn!("cluster: cannot read purges from Redis ({e}); retrying");
                        }
                        CLUSTER_METRICS.connected.set(0);
                        let delay = backoff.next();
                        tokio::select! {
                            _ = shutdown.changed() => return,
                            _ = tokio::time::sleep(delay) => continue,
                        }
                    }
                },
            };
            if backoff.failing() {
                tracing::info!(
                    "cluster: reading purges from Redis again (from id {})",
                    resumed.last_id
                );
            }
            backoff.reset();
            CLUSTER_METRICS.connected.set(1);
            let cursor = cursor.insert(resumed);

            loop {
                let read = tokio::select! {
                    _ = shutdown.changed() => return,
                    read = self.read(&mut connection, &cursor.last_id) => read,
                };
                match read {
                    Ok(entries) => {
                        for entry in entries {
                            self.apply(&entry);
                            cursor.last_id = entry.id;
                            cursor.seen_entry = true;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("cluster: lost the Redis connection ({e}); reconnecting");
                        CLUSTER_METRICS.connected.set(0);
                        break;
                    }
                }
            }
        }
    }

    /// Where to read from on this connection: see the module documentation.
    async fn resume(
        &self,
        connection: &mut MultiplexedConnection,
        known: Option<&Cursor>,
    ) -> redis::RedisResult<Cursor> {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(connection)
            .await?;
        let run_id = info
            .lines()
            .find_map(|line| line.strip_prefix("run_id:"))
            .map(|id| id.trim().to_string())
            .unwrap_or_default();
        let newest = self.end_id(connection, true).await?;
        let Some(known) = known else {
            // First connection: the purges published since this process started (it may have
            // cached before Redis was reachable), a second of clock skew included.
            let started = (self.started_ms.saturating_sub(1000), 0);
            let last_id = match &newest {
                None => "0-0".to_string(),
                Some(newest) if parse_id(newest) < started => newest.clone(),
                Some(_) => format!("{}-{}", started.0, started.1),
            };
            return Ok(Cursor {
                run_id,
                last_id,
                seen_entry: false,
            });
        };
        let position = parse_id(&known.last_id);
        let resume = Cursor {
            run_id: run_id.clone(),
            ..known.clone()
        };
        let from_start = Cursor {
            run_id: run_id.clone(),
            last_id: "0-0".to_string(),
            seen_entry: false,
        };
        let Some(newest) = newest else {
            // No stream (a new Redis, or it was deleted): everything that comes is unseen.
            if position != (0, 0) {
                self.resynced("the purge stream is gone");
            }
            return Ok(from_start);
        };
        let oldest = self
            .end_id(connection, false)
            .await?
            .map_or((0, 0), |id| parse_id(&id));
        // Does this stream still hold the history up to this node's position?
        let has_history = if known.seen_entry {
            let seen: StreamRangeReply = redis::cmd("XRANGE")
                .arg(&self.stream)
                .arg(&known.last_id)
                .arg(&known.last_id)
                .query_async(connection)
                .await?;
            !seen.ids.is_empty()
        } else {
            oldest <= position
        };
        if known.run_id != run_id {
            // Another Redis process: a stream that kept the history was persisted, resume it;
            // otherwise it is a new stream, all of it published after the restart.
            if has_history {
                return Ok(resume);
            }
            self.resynced("Redis restarted");
            return Ok(from_start);
        }
        if parse_id(&newest) < position {
            self.resynced("the purge stream was recreated");
            return Ok(from_start);
        }
        if known.seen_entry && !has_history && oldest > position {
            // Cut off for so long that the stream was trimmed past this node's position:
            // purges were missed, and purging everything is the only safe way to catch up.
            tracing::warn!(
                "cluster: the purge stream was trimmed past this node's position {}; purging the whole cache",
                known.last_id
            );
            let report = self.state.store.purge(Selector::everything(), false);
            METRICS.purged_entries.inc_by(report.matched);
            CLUSTER_METRICS.resyncs.inc();
            return Ok(Cursor {
                run_id,
                last_id: newest,
                seen_entry: true,
            });
        }
        Ok(resume)
    }

    fn resynced(&self, why: &str) {
        tracing::warn!(
            "cluster: {why}; reading the purge stream {} from its beginning",
            self.stream
        );
        CLUSTER_METRICS.resyncs.inc();
    }

    /// The id of the newest (or oldest) entry of the stream; `None` when it has none.
    async fn end_id(
        &self,
        connection: &mut MultiplexedConnection,
        newest: bool,
    ) -> redis::RedisResult<Option<String>> {
        let (command, from, to) = if newest {
            ("XREVRANGE", "+", "-")
        } else {
            ("XRANGE", "-", "+")
        };
        let end: StreamRangeReply = redis::cmd(command)
            .arg(&self.stream)
            .arg(from)
            .arg(to)
            .arg("COUNT")
            .arg(1)
            .query_async(connection)
            .await?;
        Ok(end.ids.into_iter().next().map(|entry| entry.id))
    }

    /// One blocking read: the entries after `last_id`, or none after [`READ_BLOCK`].
    async fn read(
        &self,
        connection: &mut MultiplexedConnection,
        last_id: &str,
    ) -> redis::RedisResult<Vec<StreamId>> {
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(500)
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(last_id)
            .query_async(connection)
            .await?;
        Ok(reply
            .map(|reply| reply.keys.into_iter().flat_map(|key| key.ids).collect())
            .unwrap_or_default())
    }

    fn apply(&self, entry: &StreamId) {
        let node: Option<String> = entry.get("node");
        if node.as_deref() == Some(self.node_id.as_str()) {
            return;
        }
        let payload: Option<String> = entry.get("purge");
        let parsed = payload
            .as_deref()
            .and_then(|payload| serde_json::from_str::<WirePurge>(payload).ok())
            .and_then(|message| message.selector());
        let Some((selector, soft)) = parsed else {
            tracing::warn!(
                "cluster: skipping stream entry {} that is not a purge this node understands",
                entry.id
            );
            return;
        };
        let report = self.state.store.purge(selector, soft);
        METRICS.purged_entries.inc_by(report.matched);
        CLUSTER_METRICS.received.inc();
    }
}

#[async_trait]
impl BackgroundService for ClusterBus {
    async fn start(&self, shutdown: ShutdownWatch) {
        let Some(outbox) = self.outbox.lock().take() else {
            return;
        };
        tracing::info!(
            "cluster: node {} shares purges on Redis stream {}",
            self.node_id,
            self.stream
        );
        tokio::join!(
            self.publish_loop(outbox, shutdown.clone()),
            self.subscribe_loop(shutdown)
        );
    }
}

#[derive(Clone)]
struct Cursor {
    /// `run_id` of the Redis process this position is in.
    run_id: String,
    /// The stream is read after this id.
    last_id: String,
    /// Whether `last_id` is an entry this node read (rather than a starting point).
    seen_entry: bool,
}

/// `<ms>-<seq>` as a pair that orders like Redis orders ids; malformed ids order first.
fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// Past [`MAX_QUEUED`] purges the queue becomes one purge of everything: dropping some would
/// leave other nodes serving what was purged here.
fn collapse_if_full(queue: &mut VecDeque<WirePurge>) {
    if queue.len() <= MAX_QUEUED {
        return;
    }
    let soft = queue.iter().all(|message| message.soft);
    tracing::warn!(
        "cluster: more than {MAX_QUEUED} purges queued while Redis is unreachable; they become one purge of everything"
    );
    queue.clear();
    queue.push_back(WirePurge::new(&Selector::everything(), soft));
}

/// Unique per process: host name, process id and start time.
fn node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{host}-{}-{:x}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff
    )
}

#[derive(Default)]
struct Backoff {
    current: Option<Duration>,
}

impl Backoff {
    fn failing(&self) -> bool {
        self.current.is_some()
    }

    fn next(&mut self) -> Duration {
        let next = self
            .current
            .map_or(BACKOFF_MIN, |d| (d * 2).min(BACKOFF_MAX));
        self.current = Some(next);
        next
    }

    fn reset(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_purge_round_trips_and_refuses_empty_messages() {
        let selector = Selector {
            origin: Some("https://a.example".into()),
            prefix: Some("/x".into()),
            ..Selector::default()
        };
        let message = WirePurge::new(&selector, true);
        let json = serde_json::to_string(&message).unwrap();
        let back: WirePurge = serde_json::from_str(&json).unwrap();
        assert_eq!(back.selector(), Some((selector, true)));

        let all = WirePurge::new(&Selector::everything(), false);
        assert_eq!(
            serde_json::to_string(&all).unwrap(),
            r#"{"all":true,"soft":false}"#
        );
        assert_eq!(all.selector(), Some((Selector::everything(), false)));

        // A field this node does not know is ignored, and then nothing is named: skipped.
        let unknown: WirePurge = serde_json::from_str(r#"{"region":"eu","soft":false}"#).unwrap();
        assert_eq!(unknown.selector(), None);
        // "all" together with a field is contradictory: skipped.
        let both: WirePurge = serde_json::from_str(r#"{"all":true,"host":"h"}"#).unwrap();
        assert_eq!(both.selector(), None);
    }

    #[test]
    fn ids_order_like_redis() {
        assert!(parse_id("1700000000000-5") < parse_id("1700000000001-0"));
        assert!(parse_id("5-2") > parse_id("5-1"));
        assert_eq!(parse_id("0-0"), (0, 0));
    }

    #[test]
    fn a_full_queue_becomes_one_purge_of_everything() {
        let mut queue: VecDeque<WirePurge> = (0..=MAX_QUEUED)
            .map(|i| {
                WirePurge::new(
                    &Selector {
                        url: Some(format!("/{i}")),
                        ..Selector::default()
                    },
                    true,
                )
            })
            .collect();
        collapse_if_full(&mut queue);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue[0].selector(), Some((Selector::everything(), true)));
    }
}
