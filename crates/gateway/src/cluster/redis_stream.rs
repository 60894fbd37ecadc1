//! The only code that talks to Redis: connect, publish a batch, observe the stream on a new
//! connection, and the blocking read.

use std::time::Duration;

use cors_edge_core::purge::Purge;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamRangeReply, StreamReadReply};
use redis::AsyncConnectionConfig;

use super::resume::{Cursor, EntryId, Observed};
use super::wire::{self, StreamEntry};

/// Approximate length the stream is trimmed to: how far back a reconnecting node can catch up.
const STREAM_MAX_LEN: usize = 10_000;
/// How long one blocking read waits for new entries before asking again.
pub const READ_BLOCK: Duration = Duration::from_secs(2);
/// Entries taken by one read.
const READ_COUNT: usize = 500;
/// Client-side bound on any one Redis answer (a blocking read takes up to `READ_BLOCK`).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub use redis::RedisError;

/// One Redis server and the stream purges travel on.
pub struct Stream {
    client: redis::Client,
    pub name: String,
}

pub struct Connection(MultiplexedConnection);

impl Stream {
    /// Validates the URL; nothing is connected yet.
    pub fn new(redis_url: &str, name: &str) -> Result<Stream, RedisError> {
        Ok(Stream {
            client: redis::Client::open(redis_url)?,
            name: name.to_string(),
        })
    }

    pub async fn connect(&self) -> Result<Connection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(Connection(connection))
    }

    /// XADDs the purges in one pipeline; returns how many were sent.
    pub async fn publish<'a>(
        &self,
        connection: &mut Connection,
        node_id: &str,
        purges: impl Iterator<Item = &'a Purge>,
    ) -> Result<usize, RedisError> {
        let mut pipeline = redis::pipe();
        let mut count = 0;
        for purge in purges {
            let command = pipeline
                .cmd("XADD")
                .arg(&self.name)
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAX_LEN)
                .arg("*");
            for (field, value) in wire::entry_fields(node_id, purge) {
                command.arg(field).arg(value);
            }
            command.ignore();
            count += 1;
        }
        pipeline.query_async::<()>(&mut connection.0).await?;
        Ok(count)
    }

    /// What [`super::resume::decide`] needs to know about the server and the stream.
    pub async fn observe(
        &self,
        connection: &mut Connection,
        known: Option<&Cursor>,
    ) -> Result<Observed, RedisError> {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut connection.0)
            .await?;
        let run_id = info
            .lines()
            .find_map(|line| line.strip_prefix("run_id:"))
            .map(|id| id.trim().to_string())
            .unwrap_or_default();
        let newest = self.end_id(connection, "XREVRANGE", "+", "-").await?;
        let oldest = self.end_id(connection, "XRANGE", "-", "+").await?;
        let last_seen_still_there = match known.filter(|cursor| cursor.seen_entry) {
            Some(cursor) => {
                let id = cursor.last_id.to_string();
                let seen: StreamRangeReply = redis::cmd("XRANGE")
                    .arg(&self.name)
                    .arg(&id)
                    .arg(&id)
                    .query_async(&mut connection.0)
                    .await?;
                !seen.ids.is_empty()
            }
            None => false,
        };
        Ok(Observed {
            run_id,
            newest,
            oldest,
            last_seen_still_there,
        })
    }

    /// The id of the entry at one end of the stream; `None` when it has none.
    async fn end_id(
        &self,
        connection: &mut Connection,
        command: &str,
        from: &str,
        to: &str,
    ) -> Result<Option<EntryId>, RedisError> {
        let end: StreamRangeReply = redis::cmd(command)
            .arg(&self.name)
            .arg(from)
            .arg(to)
            .arg("COUNT")
            .arg(1)
            .query_async(&mut connection.0)
            .await?;
        Ok(end.ids.first().map(|entry| EntryId::parse(&entry.id)))
    }

    /// One blocking read: the entries after `last_id`, or none after [`READ_BLOCK`].
    pub async fn read(
        &self,
        connection: &mut Connection,
        last_id: EntryId,
    ) -> Result<Vec<StreamEntry>, RedisError> {
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.name)
            .arg(last_id.to_string())
            .query_async(&mut connection.0)
            .await?;
        let entries = reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .map(|entry| StreamEntry {
                id: EntryId::parse(&entry.id),
                node: entry.get(wire::NODE_FIELD),
                purge: entry.get(wire::PURGE_FIELD),
            })
            .collect();
        Ok(entries)
    }
}
