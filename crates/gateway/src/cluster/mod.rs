//! Cluster purge: a purge accepted by any node's admin API reaches every node through Redis.
//!
//! The bus is a Redis stream (key = `cluster.channel`), not pub/sub, so a node that was cut
//! off from Redis for a while catches up on what it missed instead of serving purged content:
//!
//! - publishing: the admin handler purges locally, then hands the purge to
//!   [`ClusterHandle::publish`], which only queues it; the publisher task sends it with
//!   `XADD <channel> MAXLEN ~ 10000 * node <id> purge <json>` ([`wire`]). While Redis is
//!   unreachable the [`outbox`] holds the purges (bounded: past its limit they collapse into one
//!   purge of everything, the only safe summary) and the task retries with backoff.
//! - receiving: the subscriber task reads with a blocking `XREAD` from the last id it has seen,
//!   so delivery is immediate and a reconnect resumes where it left off. Entries carry the
//!   publishing node's id; a node skips its own.
//! - Redis restarts: on every (re)connect, [`resume::decide`] compares what the server shows
//!   (`run_id`, the stream's ends) with this node's position and says where to read from.
//!
//! [`redis_stream`] is the only file that talks to Redis.

mod outbox;
mod redis_stream;
mod resume;
pub mod ring;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cors_edge_core::config::ClusterConfig;
use cors_edge_core::purge::{Purge, Selector};
use parking_lot::Mutex;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::sync::mpsc;

use self::outbox::{Backoff, Outbox, MAX_QUEUED};
use self::redis_stream::{Connection, RedisError, Stream};
use self::resume::{Action, Cursor};
use self::wire::Message;
use crate::metrics::{CLUSTER_METRICS, METRICS};
use crate::state::SharedState;

/// On a graceful stop, how long queued purges may still take to reach Redis.
const FLUSH_ON_STOP: Duration = Duration::from_secs(1);

/// What the admin API holds to send purges to the other nodes. Never blocks.
#[derive(Clone)]
pub struct ClusterHandle {
    sender: mpsc::UnboundedSender<Purge>,
}

impl ClusterHandle {
    pub fn publish(&self, purge: &Purge) {
        if self.sender.send(purge.clone()).is_err() {
            tracing::error!("cluster: the publisher has stopped; purge applied on this node only");
        }
    }
}

/// The background service that publishes this node's purges and applies the others'.
pub struct ClusterBus {
    stream: Stream,
    node_id: String,
    /// Process start, Unix milliseconds: where the first read starts (stream ids are times).
    started_ms: u64,
    state: Arc<SharedState>,
    incoming: Mutex<Option<mpsc::UnboundedReceiver<Purge>>>,
}

impl ClusterBus {
    /// Validates the Redis URL; the connection itself is made (and retried) in the background.
    pub fn new(
        config: &ClusterConfig,
        state: Arc<SharedState>,
    ) -> Result<(ClusterBus, ClusterHandle), String> {
        let stream = Stream::new(&config.redis_url, &config.channel)
            .map_err(|e| format!("cluster.redis_url: {e}"))?;
        once_cell::sync::Lazy::force(&CLUSTER_METRICS);
        let (sender, receiver) = mpsc::unbounded_channel();
        let bus = ClusterBus {
            stream,
            node_id: wire::node_id(),
            started_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            state,
            incoming: Mutex::new(Some(receiver)),
        };
        Ok((bus, ClusterHandle { sender }))
    }

    /// Sends queued purges until shutdown; keeps them while Redis is unreachable.
    async fn publish_loop(
        &self,
        mut incoming: mpsc::UnboundedReceiver<Purge>,
        mut shutdown: ShutdownWatch,
    ) {
        let mut outbox = Outbox::default();
        let mut connection: Option<Connection> = None;
        let mut backoff = Backoff::default();
        loop {
            if outbox.is_empty() {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    purge = incoming.recv() => match purge {
                        Some(purge) => queue(&mut outbox, purge),
                        None => return,
                    },
                }
            }
            if let Err(delay) = self
                .send_some(&mut incoming, &mut outbox, &mut connection, &mut backoff)
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
            while !outbox.is_empty() {
                if let Err(delay) = self
                    .send_some(&mut incoming, &mut outbox, &mut connection, &mut backoff)
                    .await
                {
                    tokio::time::sleep(delay).await;
                }
            }
        };
        if tokio::time::timeout(FLUSH_ON_STOP, flush).await.is_err() {
            tracing::warn!(
                "cluster: stopping with {} purges not sent to Redis",
                outbox.len()
            );
        }
    }

    /// Moves new purges into the outbox and sends a batch; on failure, how long to wait.
    async fn send_some(
        &self,
        incoming: &mut mpsc::UnboundedReceiver<Purge>,
        outbox: &mut Outbox,
        connection: &mut Option<Connection>,
        backoff: &mut Backoff,
    ) -> Result<(), Duration> {
        while let Ok(purge) = incoming.try_recv() {
            queue(outbox, purge);
        }
        CLUSTER_METRICS.set_queued(outbox.len());
        let sent = match connection {
            Some(connection) => self.publish(connection, outbox).await,
            None => match self.stream.connect().await {
                Ok(fresh) => self.publish(connection.insert(fresh), outbox).await,
                Err(e) => Err(e),
            },
        };
        match sent {
            Ok(count) => {
                if backoff.failing() {
                    tracing::info!("cluster: publishing to Redis again");
                }
                backoff.reset();
                outbox.sent(count);
                CLUSTER_METRICS.published.inc_by(count as u64);
                CLUSTER_METRICS.set_queued(outbox.len());
                Ok(())
            }
            Err(e) => {
                *connection = None;
                if !backoff.failing() {
                    tracing::warn!(
                        "cluster: cannot publish to Redis ({e}); {} purges queued, retrying",
                        outbox.len()
                    );
                }
                Err(backoff.next())
            }
        }
    }

    async fn publish(
        &self,
        connection: &mut Connection,
        outbox: &Outbox,
    ) -> Result<usize, RedisError> {
        self.stream
            .publish(connection, &self.node_id, outbox.batch())
            .await
    }

    /// Reads the stream and applies other nodes' purges until shutdown.
    async fn subscribe_loop(&self, mut shutdown: ShutdownWatch) {
        let mut cursor: Option<Cursor> = None;
        let mut backoff = Backoff::default();
        loop {
            let session = async {
                let mut connection = self.stream.connect().await?;
                let observed = self
                    .stream
                    .observe(&mut connection, cursor.as_ref())
                    .await?;
                Ok::<_, RedisError>((connection, observed))
            };
            let (mut connection, observed) = tokio::select! {
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
            let resumed = resume::decide(cursor.as_ref(), &observed, self.started_ms);
            self.act_on(resumed.action, cursor.as_ref());
            if backoff.failing() {
                tracing::info!(
                    "cluster: reading purges from Redis again (from id {})",
                    resumed.cursor.last_id
                );
            }
            backoff.reset();
            CLUSTER_METRICS.connected.set(1);
            let cursor = cursor.insert(resumed.cursor);

            loop {
                let read = tokio::select! {
                    _ = shutdown.changed() => return,
                    read = self.stream.read(&mut connection, cursor.last_id) => read,
                };
                match read {
                    Ok(entries) => {
                        for entry in entries {
                            self.apply(entry.message(&self.node_id), entry.id);
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

    fn act_on(&self, action: Action, known: Option<&Cursor>) {
        match action {
            Action::Continue => {}
            Action::Resync(why) => {
                tracing::warn!(
                    "cluster: {why}; reading the purge stream {} from its beginning",
                    self.stream.name
                );
                CLUSTER_METRICS.resyncs.inc();
            }
            Action::PurgeEverything => {
                tracing::warn!(
                    "cluster: the purge stream was trimmed past this node's position {}; purging the whole cache",
                    known.map(|cursor| cursor.last_id).unwrap_or_default()
                );
                let report = self.state.store.purge(Selector::everything(), false);
                METRICS.purged_entries.inc_by(report.matched);
                CLUSTER_METRICS.resyncs.inc();
            }
        }
    }

    fn apply(&self, message: Message, id: resume::EntryId) {
        match message {
            Message::Own => {}
            Message::Unreadable => tracing::warn!(
                "cluster: skipping stream entry {id} that is not a purge this node understands"
            ),
            Message::Purge(purge) => {
                let matched = crate::purge_scope::purge(&self.state, purge.selector, purge.soft);
                METRICS.purged_entries.inc_by(matched);
                CLUSTER_METRICS.received.inc();
            }
        }
    }
}

/// Queues a purge for publishing, and says so when the outbox overflowed.
fn queue(outbox: &mut Outbox, purge: Purge) {
    if outbox.push(purge) {
        tracing::warn!(
            "cluster: more than {MAX_QUEUED} purges queued while Redis is unreachable; they become one purge of everything"
        );
    }
}

#[async_trait]
impl BackgroundService for ClusterBus {
    async fn start(&self, shutdown: ShutdownWatch) {
        let Some(incoming) = self.incoming.lock().take() else {
            return;
        };
        tracing::info!(
            "cluster: node {} shares purges on Redis stream {}",
            self.node_id,
            self.stream.name
        );
        tokio::join!(
            self.publish_loop(incoming, shutdown.clone()),
            self.subscribe_loop(shutdown)
        );
    }
}
