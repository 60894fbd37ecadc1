//! `MokaStore::list` (what `GET /cache` answers from): the entries a selector matches, with
//! their state, hard-purged ones left out, soft-purged ones marked, `limit` and `truncated`.

mod support;

use std::time::SystemTime;

use cors_edge_core::purge::Selector;
use cors_edge_store::EntryState;
use support::{fill, new_store, origin, path, ORIGINS};

fn by_origin(i: usize) -> Selector {
    Selector {
        origin: Some(origin(i)),
        ..Selector::default()
    }
}

#[test]
fn lists_what_a_selector_matches_as_lookups_would_find_it() {
    let store = new_store();
    let entries = 3 * ORIGINS;
    fill(store, 0..entries);
    let now = SystemTime::now();

    let listing = store.list(&by_origin(7), 100, now);
    assert!(!listing.truncated);
    assert_eq!(listing.scanned, entries as u64, "a walk over every entry");
    let mut paths: Vec<&str> = listing
        .entries
        .iter()
        .map(|e| e.tags.path.as_str())
        .collect();
    paths.sort_unstable();
    let mut wanted = [path(7), path(7 + ORIGINS), path(7 + 2 * ORIGINS)];
    wanted.sort_unstable();
    assert_eq!(paths, wanted);
    for entry in &listing.entries {
        assert_eq!(entry.state, EntryState::Fresh);
        assert_eq!(entry.status, 200);
        assert!(entry.headers.contains_key("access-control-allow-origin"));
        assert!(entry.fresh_for.as_secs() > 3500);
    }

    let limited = store.list(&by_origin(7), 2, now);
    assert_eq!(limited.entries.len(), 2);
    assert!(limited.truncated);
    let exact = store.list(&by_origin(7), 3, now);
    assert_eq!(exact.entries.len(), 3);
    assert!(!exact.truncated, "exactly the limit is not truncated");

    store.purge(by_origin(7), true);
    let soft = store.list(&by_origin(7), 100, now);
    assert_eq!(soft.entries.len(), 3);
    assert!(soft
        .entries
        .iter()
        .all(|e| matches!(e.state, EntryState::SoftPurged(_))));

    store.purge(by_origin(8), false);
    assert!(store.list(&by_origin(8), 100, now).entries.is_empty());
    assert_eq!(store.list(&by_origin(9), 100, now).entries.len(), 3);
}
