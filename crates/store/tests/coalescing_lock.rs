//! The cache lock re-checks the store for a would-be writer whose miss was filled while it asked
//! for the lock, and leaves every other lock request as Pingora's `CacheLock` answers it.
//!
//! Each test plays the interleaving out step by step on one thread: a lookup, another request's
//! fill, then the lock request Pingora makes right after the lookup.

mod support;

use std::time::Duration;

use cors_edge_store::{CoalescingLock, MokaStore};
use pingora::cache::lock::{CacheKeyLock, LockStatus, Locked};
use pingora::cache::trace::Span;
use pingora::cache::Storage;
use support::{fill, key, new_store, now};

fn lock_for(store: &'static MokaStore) -> CoalescingLock {
    CoalescingLock::new(store, Duration::from_secs(5))
}

fn looked_up(store: &'static MokaStore, i: usize) -> bool {
    let span = Span::inactive();
    now(store.lookup(&key(i), &span.handle()))
        .expect("lookup")
        .is_some()
}

/// What the lock tells the request to do: fetch (`None`), or wait on a lock with this status.
fn wait_status(locked: &Locked) -> Option<LockStatus> {
    match locked {
        Locked::Write(_) => None,
        Locked::Read(read) => Some(read.lock_status()),
    }
}

#[test]
fn a_miss_filled_before_the_lock_request_looks_up_again_instead_of_fetching() {
    let store = new_store();
    let lock = lock_for(store);
    assert!(!looked_up(store, 1));
    fill(store, 1..2);
    let locked = lock.lock(&key(1), false);
    assert_eq!(wait_status(&locked), Some(LockStatus::Done));
    // The key's lock is free again: the next real miss of it becomes the writer.
    assert_eq!(wait_status(&lock.lock(&key(1), false)), None);
}

#[test]
fn a_miss_still_missing_at_the_lock_request_fetches() {
    let store = new_store();
    let lock = lock_for(store);
    assert!(!looked_up(store, 1));
    assert_eq!(wait_status(&lock.lock(&key(1), false)), None);
}

#[test]
fn a_request_behind_a_writer_waits_for_it() {
    let store = new_store();
    let lock = lock_for(store);
    assert!(!looked_up(store, 1));
    let Locked::Write(permit) = lock.lock(&key(1), false) else {
        panic!("the first miss writes");
    };
    assert!(!looked_up(store, 1));
    let reader = lock.lock(&key(1), false);
    assert_eq!(wait_status(&reader), Some(LockStatus::Waiting));
    lock.release(&key(1), permit, LockStatus::Done);
    assert_eq!(wait_status(&reader), Some(LockStatus::Done));
}

#[test]
fn only_the_key_just_missed_is_rechecked() {
    let store = new_store();
    let lock = lock_for(store);
    assert!(!looked_up(store, 1));
    fill(store, 1..3);
    // This thread's last miss was key 1; key 2 was filled too, but not in that gap.
    assert_eq!(wait_status(&lock.lock(&key(2), false)), None);
}

#[test]
fn a_stale_writer_revalidates_even_when_the_store_holds_the_key() {
    let store = new_store();
    let lock = lock_for(store);
    assert!(!looked_up(store, 1));
    fill(store, 1..2);
    assert_eq!(wait_status(&lock.lock(&key(1), true)), None);
}

#[test]
fn a_hit_forced_to_miss_fetches_instead_of_looping_on_the_store() {
    let store = new_store();
    let lock = lock_for(store);
    fill(store, 1..2);
    assert!(looked_up(store, 1));
    assert_eq!(wait_status(&lock.lock(&key(1), false)), None);
}

#[test]
fn one_miss_answers_one_lock_request() {
    let store = new_store();
    let lock = lock_for(store);
    assert!(!looked_up(store, 1));
    fill(store, 1..2);
    assert_eq!(
        wait_status(&lock.lock(&key(1), false)),
        Some(LockStatus::Done)
    );
    // Without a new lookup, a further lock request is Pingora's answer (this one: write).
    assert_eq!(wait_status(&lock.lock(&key(1), false)), None);
}

#[test]
fn a_miss_on_another_thread_does_not_count() {
    let store = new_store();
    let lock = lock_for(store);
    std::thread::scope(|scope| {
        scope.spawn(|| assert!(!looked_up(store, 1)));
    });
    fill(store, 1..2);
    assert_eq!(wait_status(&lock.lock(&key(1), false)), None);
}
