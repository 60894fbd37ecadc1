//! Purges against a store holding one million entries: each selector hides exactly what it
//! names (hard: a miss; soft: a stale hit to revalidate) and every other entry still hits.

mod support;

use cors_edge_core::purge::Selector;
use support::{fill, hit, new_store, origin, path, tag, HOSTS, ORIGINS, SECTIONS, TAGS};

const N: usize = 1_000_000;

/// Entries `i` in `0..N` with `pred(i)`, every `step`-th of them.
fn sample(pred: impl Fn(usize) -> bool, step: usize) -> Vec<usize> {
    (0..N).filter(|&i| pred(i)).step_by(step).collect()
}

#[test]
fn purges_at_one_million_entries_hide_matches_and_keep_the_rest() {
    let store = new_store();
    fill(store, 0..N);
    assert_eq!(store.stats().entries, N as u64);
    assert!(hit(store, 0) && hit(store, N - 1));

    // origin: entries 7, 1007, 2007, ...
    let by_origin = Selector {
        origin: Some(origin(7)),
        ..Default::default()
    };
    assert_eq!(store.purge(by_origin, false).matched, (N / ORIGINS) as u64);
    for i in sample(|i| i % ORIGINS == 7, 1) {
        assert!(!hit(store, i), "entry {i} of the purged origin");
    }
    for i in sample(|i| i % ORIGINS == 8 || i % ORIGINS == 6, 10) {
        assert!(hit(store, i), "entry {i} of another origin");
    }
    // The purged entries' memory is reclaimed off the request path.
    store.sync();
    assert_eq!(store.stats().entries, (N - N / ORIGINS) as u64);

    // tag: tag-42 is on entries 42, 1042, ... (and the origin-7 purge did not touch them).
    let by_tag = Selector {
        tag: Some(tag(42)),
        ..Default::default()
    };
    assert_eq!(store.purge(by_tag, false).matched, (N / TAGS) as u64);
    assert!(sample(|i| i % TAGS == 42, 1)
        .into_iter()
        .all(|i| !hit(store, i)));
    assert!(sample(|i| i % TAGS == 43, 1)
        .into_iter()
        .all(|i| hit(store, i)));

    // url: exactly one entry.
    let one = 123_456;
    let by_url = Selector {
        url: Some(path(one)),
        ..Default::default()
    };
    assert_eq!(store.purge(by_url, false).matched, 1);
    assert!(!hit(store, one));
    assert!(hit(store, one + 1) && hit(store, one - 1) && hit(store, one + SECTIONS));

    // prefix, soft: section 3 (and not 30..39) goes stale, the rest stays fresh.
    let by_prefix = Selector {
        prefix: Some("/t3/".into()),
        ..Default::default()
    };
    assert_eq!(store.purge(by_prefix, true).matched, (N / SECTIONS) as u64);
    for i in sample(|i| i % SECTIONS == 3, 97) {
        assert!(!hit(store, i), "entry {i} under /t3/ is stale");
    }
    for i in sample(|i| i % SECTIONS == 30 || i % SECTIONS == 4, 97) {
        assert!(hit(store, i), "entry {i} is not under /t3/");
    }

    // Several fields narrow: origin 9 and host h9 (i % 10 == 9 already implies it), section 9.
    let combined = Selector {
        origin: Some(origin(9)),
        prefix: Some("/t9/".into()),
        host: Some(format!("h{}.example", 9 % HOSTS)),
        ..Default::default()
    };
    // A combined purge reports an upper bound (README): never fewer than it hides, never more
    // than its narrowest field (origin 9: N / ORIGINS entries, all under /t9/ on h9).
    let matched = store.purge(combined, false).matched;
    assert_eq!(matched, (N / ORIGINS) as u64, "combined purge");
    for i in sample(|i| i % ORIGINS == 9, 1) {
        // 9 mod 100 == 9 for every i ≡ 9 (mod 1000): all of origin 9 is under /t9/.
        assert!(!hit(store, i), "entry {i}");
    }
    for i in sample(|i| i % SECTIONS == 9 && i % ORIGINS != 9, 50) {
        assert!(hit(store, i), "entry {i} of another origin under /t9/");
    }

    // all: nothing hits any more.
    let everything = Selector::everything();
    let cached = store.stats().entries;
    // A single selector's count is exact: `all` matches every entry in the store.
    assert_eq!(store.purge(everything, false).matched, cached);
    assert!((0..N).step_by(997).all(|i| !hit(store, i)));
}
