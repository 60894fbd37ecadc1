//! `GET /cache`: the entries a selector matches, as Pingora would find them (hard-purged and
//! invalidated entries left out, soft-purged ones marked).
//!
//! The walk is moka's iterator, which visits the cache's segments one at a time and holds no
//! lock across the walk, so hits and fills go on while it runs; each entry costs a selector
//! match (a few string comparisons) and a ban check. It stops at `limit + 1` matches.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cors_edge_core::inspect::EntryListing;
use cors_edge_core::purge::{EntryTags, Selector};

use super::MokaStore;
use crate::bans::BanOutcome;

/// Where an entry stands at the time of the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    Fresh,
    /// Past its freshness, kept for `stale-while-revalidate`, `stale-if-error` or revalidation.
    Stale,
    /// A soft purge marked it stale at this time: the next request revalidates it.
    SoftPurged(SystemTime),
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Fresh => "fresh",
            EntryState::Stale => "stale",
            EntryState::SoftPurged(_) => "soft-purged",
        }
    }
}

/// One stored entry, as listed.
#[derive(Debug, Clone)]
pub struct ListedEntry {
    pub tags: EntryTags,
    /// How it was asked for (none for an entry stored without it).
    pub listing: Option<Arc<EntryListing>>,
    pub state: EntryState,
    /// The stored status code and header.
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body_bytes: usize,
    /// Since the response was fetched or last revalidated.
    pub age: Duration,
    /// Until the end of freshness (zero when stale).
    pub fresh_for: Duration,
    /// Until the store drops it (the end of its stale and revalidation windows).
    pub kept_for: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub entries: Vec<ListedEntry>,
    /// More entries matched than `limit`.
    pub truncated: bool,
    /// Entries looked at.
    pub scanned: u64,
}

impl MokaStore {
    /// Up to `limit` stored entries the selector matches, sorted by host, URL and origin.
    pub fn list(&self, selector: &Selector, limit: usize, now: SystemTime) -> Listing {
        let mut listing = Listing::default();
        for (_, entry) in self.cache.iter() {
            listing.scanned += 1;
            if entry.keep_until < now || !selector.matches(&entry.info.tags) {
                continue;
            }
            let ban = self.bans.check(&entry.info.tags, entry.info.fetched_at);
            if ban == BanOutcome::Invalid || self.invalidated(&entry.info) {
                continue;
            }
            if listing.entries.len() == limit {
                listing.truncated = true;
                break;
            }
            let facts = &entry.meta.facts;
            let state = match ban {
                BanOutcome::ExpiredAt(at) => EntryState::SoftPurged(at),
                _ if facts.fresh_until < now => EntryState::Stale,
                _ => EntryState::Fresh,
            };
            let until = |at: SystemTime| at.duration_since(now).unwrap_or_default();
            listing.entries.push(ListedEntry {
                tags: entry.info.tags.clone(),
                listing: entry.info.listing.clone(),
                state,
                status: entry.meta.header.status.as_u16(),
                headers: entry.meta.header.headers.clone(),
                body_bytes: entry.body.len(),
                age: now.duration_since(facts.epoch).unwrap_or_default(),
                fresh_for: match state {
                    EntryState::Fresh => until(facts.fresh_until),
                    _ => Duration::ZERO,
                },
                kept_for: until(entry.keep_until),
            });
        }
        listing.entries.sort_by(|a, b| {
            (&a.tags.host, &a.tags.path_and_query, &a.tags.origin).cmp(&(
                &b.tags.host,
                &b.tags.path_and_query,
                &b.tags.origin,
            ))
        });
        listing
    }
}
