//! The cache lock cors-edge hands Pingora: Pingora's own `CacheLock`, with one gap closed.
//!
//! Pingora looks a key up and, on a miss, asks for the key's lock (`HttpCache::cache_lookup`).
//! A writer that stores the key and releases its lock between those two steps leaves the late
//! request with no lock to wait on and an entry it did not see: it becomes a second writer and
//! fetches the URL again. A thread preempted between the two steps under load is enough; CI saw a
//! thousand origins on one URL cause two upstream fetches instead of one.
//!
//! The store notes, per thread, the key its last lookup missed. Pingora asks for the lock on the
//! same thread right after that lookup, with no await in between. When a would-be writer's key
//! is the key just missed and the store now finds an entry, it was stored in between: the request
//! gets a read lock that is already released as `Done`, so Pingora looks the key up again and
//! hits. In every other case (another key, a stale writer revalidating, a hit forced to miss)
//! Pingora's answer stands; at worst the gap stays as Pingora has it.

use std::cell::Cell;
use std::time::Duration;

use pingora::cache::key::HashBinary;
use pingora::cache::lock::{CacheKeyLock, CacheLock, LockStatus, Locked, ReadLock, WritePermit};
use pingora::cache::trace::Span;
use pingora::cache::CacheKey;

use super::MokaStore;

thread_local! {
    /// The key this thread's last storage lookup missed; `None` after a lookup that found one.
    static LAST_MISS: Cell<Option<HashBinary>> = const { Cell::new(None) };
}

pub(super) fn note_miss(hash: HashBinary) {
    LAST_MISS.set(Some(hash));
}

pub(super) fn note_found() {
    LAST_MISS.set(None);
}

impl MokaStore {
    /// Whether this thread's last lookup missed `key` and the store holds it now. Consumes the
    /// note: one miss answers one lock request.
    fn filled_since_last_miss(&self, key: &CacheKey) -> bool {
        let hash = crate::key_hash::combined(key);
        LAST_MISS.take() == Some(hash) && self.find(key, hash).is_some()
    }
}

/// Pingora's [`CacheLock`] that sends a request whose miss was filled while it asked for the
/// lock back to the store instead of upstream.
pub struct CoalescingLock {
    inner: CacheLock,
    store: &'static MokaStore,
}

impl CoalescingLock {
    /// `age_timeout`: how long a writer may hold a key's lock before readers compete for it again
    /// (Pingora's `CacheLock` age timeout).
    pub fn new(store: &'static MokaStore, age_timeout: Duration) -> Self {
        CoalescingLock {
            inner: CacheLock::new(age_timeout),
            store,
        }
    }
}

impl CacheKeyLock for CoalescingLock {
    fn lock(&self, key: &CacheKey, stale_writer: bool) -> Locked {
        let locked = self.inner.lock(key, stale_writer);
        let Locked::Write(permit) = locked else {
            return locked;
        };
        if stale_writer || !self.store.filled_since_last_miss(key) {
            return Locked::Write(permit);
        }
        // While the permit is held, asking again yields a read lock on it; releasing the permit
        // as `Done` then wakes that reader (and any that queued meanwhile) to look up again.
        let reread = self.inner.lock(key, false);
        self.inner.release(key, permit, LockStatus::Done);
        reread
    }

    fn release(&self, key: &CacheKey, permit: WritePermit, reason: LockStatus) {
        self.inner.release(key, permit, reason);
    }

    fn trace_lock_wait(&self, span: &mut Span, read_lock: &ReadLock, lock_status: LockStatus) {
        self.inner.trace_lock_wait(span, read_lock, lock_status);
    }

    fn custom_lock_status(&self, custom_no_cache: &'static str) -> LockStatus {
        self.inner.custom_lock_status(custom_no_cache)
    }
}
