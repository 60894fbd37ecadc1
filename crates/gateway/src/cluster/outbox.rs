//! This node's purges waiting to be published, and the retry pacing. Pure: the publisher task
//! moves purges in, sends [`Outbox::batch`] and reports what Redis accepted.

use std::collections::VecDeque;
use std::time::Duration;

use cors_edge_core::purge::{Purge, Selector};

/// Purges kept for publishing while Redis is unreachable.
pub const MAX_QUEUED: usize = 10_000;
/// Purges sent in one pipeline when several are queued.
pub const PUBLISH_BATCH: usize = 100;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Purge>,
}

impl Outbox {
    /// Queues a purge. Past [`MAX_QUEUED`] the queue becomes one purge of everything (hard
    /// unless every queued purge was soft): dropping some would leave other nodes serving what
    /// was purged here. Returns true when that happened.
    pub fn push(&mut self, purge: Purge) -> bool {
        self.queue.push_back(purge);
        if self.queue.len() <= MAX_QUEUED {
            return false;
        }
        let soft = self.queue.iter().all(|purge| purge.soft);
        self.queue.clear();
        self.queue.push_back(Purge {
            selector: Selector::everything(),
            soft,
        });
        true
    }

    /// The next purges to send, oldest first, at most [`PUBLISH_BATCH`].
    pub fn batch(&self) -> impl Iterator<Item = &Purge> {
        self.queue.iter().take(PUBLISH_BATCH)
    }

    /// The first `count` purges reached Redis.
    pub fn sent(&mut self, count: usize) {
        self.queue.drain(..count.min(self.queue.len()));
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Exponential retry delay, from [`BACKOFF_MIN`] doubling up to [`BACKOFF_MAX`].
#[derive(Debug, Default)]
pub struct Backoff {
    current: Option<Duration>,
}

impl Backoff {
    /// Whether the last attempt failed (so the next success is worth a log line).
    pub fn failing(&self) -> bool {
        self.current.is_some()
    }

    pub fn next(&mut self) -> Duration {
        let next = self
            .current
            .map_or(BACKOFF_MIN, |d| (d * 2).min(BACKOFF_MAX));
        self.current = Some(next);
        next
    }

    pub fn reset(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(i: usize, soft: bool) -> Purge {
        Purge {
            selector: Selector {
                url: Some(format!("/{i}")),
                ..Selector::default()
            },
            soft,
        }
    }

    #[test]
    fn batches_go_out_oldest_first() {
        let mut outbox = Outbox::default();
        for i in 0..PUBLISH_BATCH + 5 {
            assert!(!outbox.push(url(i, false)));
        }
        assert_eq!(outbox.batch().count(), PUBLISH_BATCH);
        assert_eq!(outbox.batch().next(), Some(&url(0, false)));
        outbox.sent(PUBLISH_BATCH);
        assert_eq!(outbox.len(), 5);
        assert_eq!(outbox.batch().next(), Some(&url(PUBLISH_BATCH, false)));
        outbox.sent(99);
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_full_queue_becomes_one_purge_of_everything() {
        for (soft_last, wanted_soft) in [(true, true), (false, false)] {
            let mut outbox = Outbox::default();
            for i in 0..MAX_QUEUED {
                assert!(!outbox.push(url(i, true)));
            }
            assert!(outbox.push(url(MAX_QUEUED, soft_last)));
            assert_eq!(outbox.len(), 1);
            let everything = Purge {
                selector: Selector::everything(),
                soft: wanted_soft,
            };
            assert_eq!(outbox.batch().next(), Some(&everything));
        }
    }

    #[test]
    fn backoff_doubles_up_to_a_bound_and_resets() {
        let mut backoff = Backoff::default();
        assert!(!backoff.failing());
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next()).collect();
        assert_eq!(delays[0], BACKOFF_MIN);
        assert_eq!(delays[1], BACKOFF_MIN * 2);
        assert_eq!(delays[7], BACKOFF_MAX);
        assert!(backoff.failing());
        backoff.reset();
        assert_eq!(backoff.next(), BACKOFF_MIN);
    }
}
