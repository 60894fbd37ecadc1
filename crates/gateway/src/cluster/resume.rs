//! Where to read the purge stream from after a (re)connect: a pure decision from this node's
//! position and what the Redis server shows now, so every case is a row of a table test.
//!
//! - First connection: the purges published since this process started (it may have cached
//!   before Redis was reachable), a second of clock skew included.
//! - Another Redis process (`run_id` changed): a stream that still holds this node's position
//!   was persisted, so it is resumed; otherwise it is a new stream, all of it published after the
//!   restart, and it is read from the beginning.
//! - Same server, stream gone or its ids behind this node's position: it was deleted or
//!   recreated; read from the beginning.
//! - Same server, stream trimmed past the entry this node read last: purges were missed, and
//!   purging everything is the only safe way to catch up.

use std::fmt;

/// A stream entry id, `<ms>-<seq>`, ordered like Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    /// Before every entry: reading after it reads the whole stream.
    pub const START: EntryId = EntryId { ms: 0, seq: 0 };

    /// Parses `<ms>-<seq>`; a malformed id reads as [`EntryId::START`] (read everything again
    /// rather than skip something).
    pub fn parse(id: &str) -> EntryId {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        match (ms.parse(), seq.parse()) {
            (Ok(ms), Ok(seq)) => EntryId { ms, seq },
            _ => EntryId::START,
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// This node's position in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// `run_id` of the Redis process this position is in.
    pub run_id: String,
    /// The stream is read after this id.
    pub last_id: EntryId,
    /// Whether `last_id` is an entry this node read (rather than a starting point).
    pub seen_entry: bool,
}

/// What the Redis server shows on a new connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// `run_id` from `INFO server`.
    pub run_id: String,
    /// The stream's newest and oldest entries; `None` when it has none (or does not exist).
    pub newest: Option<EntryId>,
    pub oldest: Option<EntryId>,
    /// Whether the entry at the known cursor's `last_id` is still in the stream (asked only when
    /// the cursor's `seen_entry` is set).
    pub last_seen_still_there: bool,
}

/// What to do before reading from [`Resume::cursor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read on; nothing was lost.
    Continue,
    /// The stream is read from its beginning (counted in `cluster_resyncs_total`).
    Resync(&'static str),
    /// Purges were missed: purge the whole cache, then read on from the newest entry.
    PurgeEverything,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub cursor: Cursor,
    pub action: Action,
}

/// How far before its start a new process reads, for clock skew between it and Redis.
const START_SKEW_MS: u64 = 1000;

/// The decision described in the module documentation. `started_ms`: this process's start,
/// Unix milliseconds (stream ids are times).
pub fn decide(known: Option<&Cursor>, now: &Observed, started_ms: u64) -> Resume {
    let run_id = now.run_id.clone();
    let Some(known) = known else {
        let started = EntryId {
            ms: started_ms.saturating_sub(START_SKEW_MS),
            seq: 0,
        };
        let last_id = match now.newest {
            None => EntryId::START,
            Some(newest) => newest.min(started),
        };
        return continue_at(run_id, last_id, false);
    };
    let position = known.last_id;
    let resume = Resume {
        cursor: Cursor {
            run_id: run_id.clone(),
            ..known.clone()
        },
        action: Action::Continue,
    };
    let from_start = |why| Resume {
        cursor: Cursor {
            run_id: run_id.clone(),
            last_id: EntryId::START,
            seen_entry: false,
        },
        action: Action::Resync(why),
    };
    let Some(newest) = now.newest else {
        // No stream (a new Redis, or it was deleted): everything that comes is unseen.
        if position == EntryId::START {
            return continue_at(run_id, EntryId::START, false);
        }
        return from_start("the purge stream is gone");
    };
    let oldest = now.oldest.unwrap_or(EntryId::START);
    // Does this stream still hold the history up to this node's position?
    let has_history = if known.seen_entry {
        now.last_seen_still_there
    } else {
        oldest <= position
    };
    if known.run_id != run_id {
        return if has_history {
            resume
        } else {
            from_start("Redis restarted")
        };
    }
    if newest < position {
        return from_start("the purge stream was recreated");
    }
    if known.seen_entry && !has_history && oldest > position {
        return Resume {
            cursor: Cursor {
                run_id,
                last_id: newest,
                seen_entry: true,
            },
            action: Action::PurgeEverything,
        };
    }
    resume
}

fn continue_at(run_id: String, last_id: EntryId, seen_entry: bool) -> Resume {
    Resume {
        cursor: Cursor {
            run_id,
            last_id,
            seen_entry,
        },
        action: Action::Continue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> EntryId {
        EntryId { ms, seq }
    }

    fn cursor(run_id: &str, last_id: EntryId, seen_entry: bool) -> Cursor {
        Cursor {
            run_id: run_id.into(),
            last_id,
            seen_entry,
        }
    }

    fn observed(
        run_id: &str,
        oldest: Option<EntryId>,
        newest: Option<EntryId>,
        still: bool,
    ) -> Observed {
        Observed {
            run_id: run_id.into(),
            newest,
            oldest,
            last_seen_still_there: still,
        }
    }

    #[test]
    fn ids_order_like_redis_and_print_back() {
        assert!(EntryId::parse("1700000000000-5") < EntryId::parse("1700000000001-0"));
        assert!(EntryId::parse("5-2") > EntryId::parse("5-1"));
        assert_eq!(EntryId::parse("0-0"), EntryId::START);
        assert_eq!(EntryId::parse("12"), id(12, 0));
        assert_eq!(EntryId::parse("x-1"), EntryId::START);
        assert_eq!(id(17, 3).to_string(), "17-3");
    }

    #[test]
    fn the_first_connection_reads_what_was_published_since_the_start() {
        let started = 10_000;
        let cases = [
            (None, EntryId::START, "no stream: read it all when it comes"),
            (
                Some(id(5_000, 1)),
                id(5_000, 1),
                "only older entries: after the newest",
            ),
            (
                Some(id(20_000, 0)),
                id(9_000, 0),
                "newer entries: from the start, skew included",
            ),
        ];
        for (newest, last_id, why) in cases {
            let now = observed("r1", newest.map(|_| id(1, 0)), newest, false);
            let resume = decide(None, &now, started);
            assert_eq!(resume.cursor, cursor("r1", last_id, false), "{why}");
            assert_eq!(resume.action, Action::Continue, "{why}");
        }
    }

    #[test]
    fn a_reconnect_resumes_resyncs_or_purges_everything() {
        let at = id(100, 0);
        let start = cursor("r2", EntryId::START, false);
        #[rustfmt::skip]
        let cases: Vec<(Cursor, Observed, Resume, &str)> = vec![
            (cursor("r1", at, true), observed("r1", Some(id(50, 0)), Some(id(150, 0)), true),
             Resume { cursor: cursor("r1", at, true), action: Action::Continue },
             "same server, history kept: resume"),
            (cursor("r1", at, true), observed("r2", Some(id(50, 0)), Some(id(150, 0)), true),
             Resume { cursor: cursor("r2", at, true), action: Action::Continue },
             "restarted Redis that persisted the stream: resume"),
            (cursor("r1", at, true), observed("r2", Some(id(200, 0)), Some(id(250, 0)), false),
             Resume { cursor: start.clone(), action: Action::Resync("Redis restarted") },
             "restarted Redis with a new stream: all of it is new"),
            (cursor("r1", at, false), observed("r2", Some(id(50, 0)), Some(id(150, 0)), false),
             Resume { cursor: cursor("r2", at, false), action: Action::Continue },
             "restarted, a start position the stream still covers: resume"),
            (cursor("r1", at, true), observed("r2", None, None, false),
             Resume { cursor: start.clone(), action: Action::Resync("the purge stream is gone") },
             "restarted Redis without the stream"),
            (cursor("r2", at, true), observed("r2", None, None, false),
             Resume { cursor: start.clone(), action: Action::Resync("the purge stream is gone") },
             "stream deleted on the same server"),
            (cursor("r2", EntryId::START, false), observed("r2", None, None, false),
             Resume { cursor: start.clone(), action: Action::Continue },
             "still no stream: nothing was lost"),
            (cursor("r2", at, true), observed("r2", Some(id(10, 0)), Some(id(50, 0)), false),
             Resume { cursor: start.clone(), action: Action::Resync("the purge stream was recreated") },
             "ids went backwards"),
            (cursor("r2", at, true), observed("r2", Some(id(120, 0)), Some(id(150, 0)), false),
             Resume { cursor: cursor("r2", id(150, 0), true), action: Action::PurgeEverything },
             "trimmed past this node's position: purges were missed"),
            (cursor("r2", at, false), observed("r2", Some(id(120, 0)), Some(id(150, 0)), false),
             Resume { cursor: cursor("r2", at, false), action: Action::Continue },
             "a start position (nothing read yet) before the oldest entry: read on"),
        ];
        for (known, now, wanted, why) in cases {
            assert_eq!(decide(Some(&known), &now, 0), wanted, "{why}");
        }
    }
}
