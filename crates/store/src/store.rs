//! The moka-backed `Storage`.
//!
//! Eviction policy: plain LRU, not moka's default TinyLFU. TinyLFU's admission filter refuses a
//! new object that has not been seen often enough once the cache is full, so a freshly fetched
//! response would be dropped and the next request would miss again; for an HTTP cache the
//! object just fetched is the one most likely to be asked for next.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use cors_edge_core::inspect::EntryListing;
use cors_edge_core::purge::{EntryTags, Selector};
use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;
use parking_lot::Mutex;
use pingora::cache::key::{CacheHashKey, HashBinary};
use pingora::cache::storage::{HandleHit, HandleMiss, MissFinishType};
use pingora::cache::trace::SpanHandle;
use pingora::cache::{
    CacheKey, CacheMeta, HitHandler, MissHandler, PurgeOutcome, PurgeTarget, PurgeType, Storage,
};
use pingora::prelude::*;

use crate::bans::{BanOutcome, Bans};
use crate::index::{Index, StoreStats};

/// What an entry is cached under, for purges, handed to the store by whoever builds the keys
/// (the way Pingora takes a `CacheKeyLock`): the store knows nothing of CORS or of requests.
///
/// The key builder puts one in the key's extensions when it makes the key and fills in the
/// tags once it has seen the response ([`PurgeTagSlot::fill`]); the store reads them when the
/// entry is stored. An entry stored without tags can still be purged by `all` and by key.
#[derive(Debug, Clone)]
pub struct PurgeTagSlot {
    /// When the request started; an entry counts as fetched then, so a purge that answers
    /// while the fetch is in flight still invalidates it.
    pub fetch_started: SystemTime,
    tags: Arc<std::sync::OnceLock<EntryTags>>,
    /// What `GET /cache` shows of the entry beyond its tags.
    listing: Arc<std::sync::OnceLock<Arc<EntryListing>>>,
}

impl PurgeTagSlot {
    pub fn new(fetch_started: SystemTime) -> Self {
        PurgeTagSlot {
            fetch_started,
            tags: Arc::default(),
            listing: Arc::default(),
        }
    }

    /// Sets how the entry about to be stored was asked for; only the first call counts.
    pub fn describe(&self, listing: EntryListing) {
        let _ = self.listing.set(Arc::new(listing));
    }

    /// Sets the tags of the entry about to be stored; only the first call counts.
    pub fn fill(&self, tags: EntryTags) {
        let _ = self.tags.set(tags);
    }

    fn tags(&self) -> EntryTags {
        self.tags.get().cloned().unwrap_or_default()
    }

    fn listing(&self) -> Option<Arc<EntryListing>> {
        self.listing.get().cloned()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    pub max_bytes: u64,
    /// How long an entry that can be revalidated (it has `ETag` or `Last-Modified`) is kept past
    /// its freshness, so a 304 can refresh it instead of a full fetch.
    pub revalidation_grace: Duration,
}

/// A stored response that may be served without revalidation (see [`MokaStore::fresh_hit`]).
pub struct FreshHit {
    pub header: pingora::http::ResponseHeader,
    pub body: Bytes,
    /// Time since the response was fetched or last revalidated.
    pub age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeReport {
    /// Entries the selector matched when the purge was made.
    pub matched: u64,
}

struct EntryInfo {
    primary: HashBinary,
    tags: EntryTags,
    fetched_at: SystemTime,
    /// For a `Vary` variant, its `CacheMeta` provenance (see [`MokaStore::promote_variant`]).
    varied: Option<SystemTime>,
    listing: Option<Arc<EntryListing>>,
}

struct Entry {
    meta: StoredMeta,
    body: Bytes,
    info: Arc<EntryInfo>,
    keep_until: SystemTime,
}

impl Entry {
    fn weight(&self) -> u32 {
        let bytes = 64 + self.meta.stored_len() + self.body.len();
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

struct KeepUntilExpiry;

fn remaining(until: SystemTime) -> Option<Duration> {
    Some(until.duration_since(SystemTime::now()).unwrap_or_default())
}

impl moka::Expiry<HashBinary, Arc<Entry>> for KeepUntilExpiry {
    fn expire_after_create(
        &self,
        _: &HashBinary,
        entry: &Arc<Entry>,
        _: Instant,
    ) -> Option<Duration> {
        remaining(entry.keep_until)
    }

    // Without this, moka keeps the old deadline when a revalidated entry is re-inserted.
    fn expire_after_update(
        &self,
        _: &HashBinary,
        entry: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        remaining(entry.keep_until)
    }
}

pub struct MokaStore {
    cache: moka::sync::Cache<HashBinary, Arc<Entry>>,
    index: Arc<Mutex<Index>>,
    bans: Bans,
    /// Primary keys invalidated by an unsafe request (RFC 9111 §4.4), with the time: entries
    /// of that key fetched before it are stale for good. Bounded and short-lived on purpose:
    /// an entry older than an hour was fetched before any invalidation this could record.
    invalidations: moka::sync::Cache<HashBinary, SystemTime>,
    any_invalidation: std::sync::atomic::AtomicBool,
    /// Set by a hard purge: the time from which [`MokaStore::reclaim`] must apply purges.
    reclaim_from: Mutex<Option<SystemTime>>,
    /// No reclamation pass before this (see [`MokaStore::reclaim`]).
    next_reclaim: Mutex<Option<Instant>>,
    /// Latest `keep_until` of any entry ever stored, as seconds since the epoch: after it, a
    /// ban can no longer match anything and is forgotten.
    horizon_secs: AtomicU64,
    options: StoreOptions,
}

impl MokaStore {
    pub fn new(options: StoreOptions) -> Self {
        let index = Arc::new(Mutex::new(Index::default()));
        let listener_index = index.clone();
        let cache = moka::sync::Cache::builder()
            .max_capacity(options.max_bytes)
            .weigher(|_: &HashBinary, entry: &Arc<Entry>| entry.weight())
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(KeepUntilExpiry)
            .eviction_listener(move |slot: Arc<HashBinary>, entry: Arc<Entry>, cause| {
                let mut index = listener_index.lock();
                index.removed(
                    &entry.info.primary,
                    &entry.info.tags,
                    u64::from(entry.weight()),
                    cause == RemovalCause::Size,
                );
                index.slot_removed(&entry.info.primary, &slot);
            })
            .build();
        let invalidations = moka::sync::Cache::builder()
            .max_capacity(1_000_000)
            .time_to_live(Duration::from_secs(3600))
            .build();
        MokaStore {
            cache,
            index,
            bans: Bans::default(),
            invalidations,
            any_invalidation: std::sync::atomic::AtomicBool::new(false),
            reclaim_from: Mutex::new(None),
            next_reclaim: Mutex::new(None),
            horizon_secs: AtomicU64::new(0),
            options,
        }
    }

    pub fn stats(&self) -> StoreStats {
        self.index.lock().stats()
    }

    /// Purges still remembered (they expire once nothing they could match can remain).
    pub fn active_bans(&self) -> usize {
        self.bans.len()
    }

    /// How many entries (the primary slot and its `Vary` variants) share a primary key.
    pub fn variants_of(&self, key: &CacheKey) -> u32 {
        self.index.lock().variants_of(&key.primary_bin())
    }

    /// Purges what the selector matches; O(1) in the number of cached entries. The memory of
    /// hard-purged entries is reclaimed later, off the request path, by [`MokaStore::sync`].
    ///
    /// Not moka's `invalidate_entries_if`: moka applies every registered predicate to every
    /// `get` and scans the whole cache with them from the threads that read it, so after a
    /// burst of purges on a large cache each hit paid milliseconds.
    pub fn purge(&self, selector: Selector, soft: bool) -> PurgeReport {
        let matched = self.index.lock().count_matching(&selector);
        let horizon = UNIX_EPOCH + Duration::from_secs(self.horizon_secs.load(Ordering::Relaxed));
        if !soft {
            if selector.is_everything() {
                // O(1) in moka: a timestamp every read compares against.
                self.cache.invalidate_all();
            } else {
                self.reclaim_from.lock().get_or_insert_with(SystemTime::now);
            }
        }
        self.bans.add(selector, soft, horizon);
        PurgeReport { matched }
    }

    /// Drops the entries hidden by hard purges made since the previous pass: one walk over the
    /// cache checking only those purges, a few hash lookups per entry for single-field ones.
    ///
    /// A pass costs about a microsecond per cached entry (moka's iterator), so passes are
    /// spaced to keep them under a tenth of one core: after a pass of `d`, the next waits `9d`.
    /// Meanwhile the bans keep the purged entries hidden; only their memory waits.
    fn reclaim(&self) {
        if self
            .next_reclaim
            .lock()
            .is_some_and(|at| Instant::now() < at)
        {
            return;
        }
        let Some(since) = self.reclaim_from.lock().take() else {
            return;
        };
        let bans = self.bans.hard_since(since);
        if bans.is_empty() {
            return;
        }
        let started = Instant::now();
        let doomed: Vec<Arc<HashBinary>> = self
            .cache
            .iter()
            .filter(|(_, entry)| bans.hide(&entry.info.tags, entry.info.fetched_at))
            .map(|(slot, _)| slot)
            .collect();
        for slot in doomed {
            self.cache.invalidate(&*slot);
        }
        *self.next_reclaim.lock() = Some(Instant::now() + started.elapsed() * 9);
    }

    /// Drops every variant stored under a primary key (all origins, all `Vary` values): after
    /// a successful unsafe request to a URL, what is stored for it may be outdated.
    pub fn invalidate_primary(&self, primary: HashBinary) {
        self.invalidations.insert(primary, SystemTime::now());
        self.any_invalidation.store(true, Ordering::Release);
    }

    fn invalidated(&self, info: &EntryInfo) -> bool {
        self.any_invalidation.load(Ordering::Acquire)
            && self
                .invalidations
                .get(&info.primary)
                .is_some_and(|at| info.fetched_at <= at)
    }

    /// Reclaims the memory of hard-purged entries and runs moka's deferred work (evictions,
    /// expirations); the gateway's housekeeping calls it twice a second.
    pub fn sync(&self) {
        self.reclaim();
        self.cache.run_pending_tasks();
    }

    fn insert(&self, key: HashBinary, entry: Entry) {
        let keep_secs = entry
            .keep_until
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() + 1);
        self.horizon_secs.fetch_max(keep_secs, Ordering::Relaxed);
        {
            let mut index = self.index.lock();
            index.added(
                &entry.info.primary,
                &entry.info.tags,
                u64::from(entry.weight()),
            );
            index.slot_added(&entry.info.primary, &key, entry.info.varied);
        }
        self.cache.insert(key, Arc::new(entry));
        // moka evicts in batches (every few dozen writes or on the housekeeping tick), so
        // without this the cache could hold up to twice `max_bytes` between batches.
        let bytes = self.index.lock().stats().bytes;
        if bytes > self.options.max_bytes {
            self.cache.run_pending_tasks();
        }
    }

    /// Pingora keeps the first variant of a URL in the primary slot and takes that entry's
    /// provenance as the tombstone of every other variant: a secondary created before it is
    /// ignored. When the primary slot is vacated (a purge that named its variant only, an
    /// eviction, an expiry), the next fill would land there with a new provenance and hide every
    /// other variant: purging one origin would drop all origins of the URL. Moves the oldest
    /// surviving variant into the primary slot instead, so the others stay valid; returns it.
    fn promote_variant(&self, primary: HashBinary) -> Option<Arc<Entry>> {
        let (floor, slots) = self.index.lock().family_of(&primary)?;
        let mut oldest: Option<(SystemTime, HashBinary, Arc<Entry>)> = None;
        for slot in slots {
            let Some(entry) = self.cache.get(&slot) else {
                continue;
            };
            if self.bans.check(&entry.info.tags, entry.info.fetched_at) == BanOutcome::Invalid
                || self.invalidated(&entry.info)
            {
                continue;
            }
            let Ok(meta) = entry.meta.to_cache_meta() else {
                continue;
            };
            let created = meta.created();
            if meta.variance().is_none() || floor.is_some_and(|floor| created < floor) {
                continue;
            }
            if oldest.as_ref().is_none_or(|(at, _, _)| created < *at) {
                oldest = Some((created, slot, entry));
            }
        }
        let (_, slot, entry) = oldest?;
        let moved = Entry {
            meta: entry.meta.clone(),
            body: entry.body.clone(),
            info: entry.info.clone(),
            keep_until: entry.keep_until,
        };
        self.insert(primary, moved);
        self.cache.invalidate(&slot);
        self.cache.get(&primary)
    }

    /// The entry Pingora's lookup finds under `key`, with its ban verdict: the slot itself unless
    /// a purge invalidated it, else (for a primary key) the oldest surviving variant promoted
    /// into the primary slot. Shared by [`Storage::lookup`] and the cache lock's re-check, so the
    /// two can never disagree on what "in the store" means.
    /// `hash` is the key's slot ([`crate::key_hash::combined`]), which the callers need too.
    fn find(&self, key: &CacheKey, hash: HashBinary) -> Option<(Arc<Entry>, BanOutcome)> {
        let mut ban = BanOutcome::Valid;
        let mut found = self.cache.get(&hash);
        if let Some(entry) = &found {
            ban = self.bans.check(&entry.info.tags, entry.info.fetched_at);
            if ban == BanOutcome::Invalid || self.invalidated(&entry.info) {
                self.cache.invalidate(&hash);
                found = None;
            }
        }
        if found.is_none() && key.get_variance_key().is_none() {
            found = self.promote_variant(hash);
            if let Some(entry) = &found {
                ban = self.bans.check(&entry.info.tags, entry.info.fetched_at);
            }
        }
        found.map(|entry| (entry, ban))
    }

    /// The stored response for `key` when it can be served as is, without Pingora's cache state
    /// machine: the same entry Pingora's lookup would find (primary slot, then the variant
    /// `variance_of` names, valid only if created after the primary's provenance, as Pingora's
    /// `cache_vary_lookup` requires), fresh at `now`, and touched by no purge or invalidation.
    /// `None` sends the request down the full path, which handles every other case (stale,
    /// soft-purged, promotion of a variant into an empty primary slot, misses).
    pub fn fresh_hit(
        &self,
        key: &mut CacheKey,
        variance_of: impl FnOnce(
            &pingora::http::ResponseHeader,
            &Arc<cors_edge_core::vary::StoredVary>,
        ) -> Option<HashBinary>,
        now: SystemTime,
    ) -> Option<FreshHit> {
        let untouched = |entry: &Entry| {
            self.bans.check(&entry.info.tags, entry.info.fetched_at) == BanOutcome::Valid
                && !self.invalidated(&entry.info)
        };
        // The gateway hashes the primary key once, when it builds the key (its override).
        let primary_bin = key.primary_bin();
        let primary = self.cache.get(&primary_bin)?;
        // A purged primary makes the full path drop it and promote a variant in its place.
        if !untouched(&primary) {
            return None;
        }
        let variance = variance_of(&primary.meta.header, &primary.meta.vary);
        let entry = if variance == primary.meta.facts.variance {
            primary
        } else {
            key.set_variance_key(variance?);
            let variant = self.cache.get(&crate::key_hash::combined(key))?;
            if variant.meta.facts.created < primary.meta.facts.provenance {
                return None;
            }
            variant
        };
        if entry.meta.facts.fresh_until < now || !untouched(&entry) {
            return None;
        }
        Some(FreshHit {
            header: entry.meta.header.clone(),
            body: entry.body.clone(),
            age: now
                .duration_since(entry.meta.facts.epoch)
                .unwrap_or_default(),
        })
    }

    fn keep_until(&self, meta: &CacheMeta) -> SystemTime {
        let stale = meta
            .stale_while_revalidate_sec()
            .max(meta.stale_if_error_sec());
        let headers = meta.headers();
        let revalidatable = headers.contains_key("etag") || headers.contains_key("last-modified");
        let grace = if revalidatable {
            self.options.revalidation_grace
        } else {
            Duration::ZERO
        };
        meta.fresh_until() + Duration::from_secs(u64::from(stale)).max(grace)
    }

    fn entry_tags(
        key: &CacheKey,
        meta: &CacheMeta,
    ) -> (EntryTags, SystemTime, Option<Arc<EntryListing>>) {
        match key.extensions.get::<PurgeTagSlot>() {
            Some(slot) => (slot.tags(), slot.fetch_started, slot.listing()),
            None => (EntryTags::default(), meta.created(), None),
        }
    }
}

mod coalescing;
mod listing;
mod stored_meta;
pub use coalescing::CoalescingLock;
pub use listing::{EntryState, ListedEntry, Listing};
pub use stored_meta::stored_vary;
use stored_meta::StoredMeta;
mod pingora_storage;
#[cfg(test)]
mod stored_meta_tests;
