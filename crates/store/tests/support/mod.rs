//! Fills a `MokaStore` through the pingora `Storage` API, as the proxy does, with entries that
//! have distinct origins, hosts, paths and surrogate keys; shared by the purge-at-scale test and
//! the purge benchmark.

#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cors_edge_core::purge::{self, EntryTags};
use cors_edge_store::{MokaStore, PurgeTagSlot, StoreOptions};
use pingora::cache::trace::Span;
use pingora::cache::{CacheKey, CacheMeta, Storage};
use pingora::http::ResponseHeader;

/// Distinct origins: entry `i` belongs to origin `i % ORIGINS`.
pub const ORIGINS: usize = 1000;
/// Distinct `tag-N` surrogate keys.
pub const TAGS: usize = 1000;
/// Distinct first path segments `/tN/`.
pub const SECTIONS: usize = 100;
/// Distinct hosts.
pub const HOSTS: usize = 10;

pub fn origin(i: usize) -> String {
    format!("https://o{}.example", i % ORIGINS)
}

pub fn host(i: usize) -> String {
    format!("h{}.example", i % HOSTS)
}

pub fn section(i: usize) -> usize {
    i % SECTIONS
}

pub fn path(i: usize) -> String {
    format!("/t{}/item/{i}", section(i))
}

pub fn tag(i: usize) -> String {
    format!("tag-{}", i % TAGS)
}

/// The store's futures never wait on anything: poll once.
pub fn now<F: Future>(future: F) -> F::Output {
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn noop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
    // SAFETY: every function of the vtable ignores the data pointer.
    let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
    let mut context = Context::from_waker(&waker);
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a MokaStore future did not complete at once"),
    }
}

pub fn new_store() -> &'static MokaStore {
    Box::leak(Box::new(MokaStore::new(StoreOptions {
        max_bytes: 16 << 30,
        revalidation_grace: Duration::from_secs(300),
    })))
}

/// The cache key of entry `i`, as the gateway builds it (without the purge extension when
/// only looking up).
pub fn key(i: usize) -> CacheKey {
    CacheKey::new(format!("api|{}|{}", host(i), path(i)), String::new())
}

fn key_with_info(i: usize) -> CacheKey {
    let mut key = key(i);
    // What the gateway fills in for a per-origin response with surrogate keys.
    let slot = PurgeTagSlot::new(SystemTime::now());
    slot.fill(EntryTags {
        host: host(i),
        path: path(i),
        path_and_query: path(i),
        origin: Some(purge::normalize_origin(&origin(i))),
        tags: purge::surrogate_tags(
            [format!("{} group-{}", tag(i), i % 10).as_bytes()],
            std::iter::empty(),
        ),
    });
    key.extensions.insert(slot);
    key
}

fn meta(i: usize) -> CacheMeta {
    let mut header = ResponseHeader::build(200, Some(4)).expect("response header");
    let headers = [
        ("cache-control", "max-age=3600".to_string()),
        ("access-control-allow-origin", origin(i)),
        ("vary", "Origin".to_string()),
        ("surrogate-key", format!("{} group-{}", tag(i), i % 10)),
    ];
    for (name, value) in headers {
        header.insert_header(name, value).expect("header");
    }
    let now = SystemTime::now();
    CacheMeta::new(now + Duration::from_secs(3600), now, 0, 0, header)
}

/// Stores entries `range` (each a small JSON body of about 200 bytes with its headers), from as
/// many threads as there are CPUs.
pub fn fill(store: &'static MokaStore, range: std::ops::Range<usize>) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = range.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for start in range.clone().step_by(chunk) {
            let end = (start + chunk).min(range.end);
            scope.spawn(move || fill_from_one_thread(store, start..end));
        }
    });
    store.sync();
}

fn fill_from_one_thread(store: &'static MokaStore, range: std::ops::Range<usize>) {
    let span = Span::inactive();
    let body = Bytes::from_static(b"{\"id\":1,\"name\":\"item\",\"ok\":true}");
    for i in range {
        let key = key_with_info(i);
        let mut miss =
            now(store.get_miss_handler(&key, &meta(i), &span.handle())).expect("miss handler");
        now(miss.write_body(body.clone(), true)).expect("write body");
        now(miss.finish()).expect("finish");
    }
}

/// Whether entry `i` is served from the store.
pub fn hit(store: &'static MokaStore, i: usize) -> bool {
    let span = Span::inactive();
    now(store.lookup(&key(i), &span.handle()))
        .expect("lookup")
        .is_some_and(|(meta, _)| meta.is_fresh(SystemTime::now()))
}
