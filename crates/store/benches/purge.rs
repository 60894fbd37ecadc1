//! Purge latency against the number of cached entries, and hit latency against the number of
//! purges in force.
//!
//! `cargo bench -p cors-edge-store --bench purge` (a few minutes; `-- lookup/` narrows the
//! criterion part). For each size (10k, 100k, 1M entries, filled once through the pingora
//! `Storage` API):
//!
//! * purge: one `MokaStore::purge` call per selector kind, timed 51 times with a different
//!   value each time (origin `o{k}`, tag `tag-{k}`, url of entry `k`, prefix `/t{k}/`, host,
//!   all), soft then hard; printed as a table of median / p90 / max. Not a criterion loop: every
//!   purge is recorded as a ban, so letting criterion repeat a purge a million times would
//!   measure a store holding a million bans.
//! * lookup/N/bans: criterion measurement of a hit (`Storage::lookup` of a random cached
//!   entry) with 0, 100 and 1000 purges in force that do not match the entry.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use cors_edge_core::purge::Selector;
use cors_edge_store::MokaStore;
use criterion::{BenchmarkId, Criterion};
use pingora::cache::trace::Span;
use pingora::cache::{CacheKey, Storage};
use support::{fill, host, new_store, now, origin, path, tag};

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
const PURGES: usize = 51;

fn selector(kind: &str, k: usize, size: usize) -> Selector {
    let mut selector = Selector::default();
    match kind {
        "origin" => selector.origin = Some(origin(k)),
        "host" => selector.host = Some(host(k)),
        "prefix" => selector.prefix = Some(format!("/t{}/", k % support::SECTIONS)),
        "url" => selector.url = Some(path((k * 7919) % size)),
        "tag" => selector.tag = Some(tag(k)),
        _ => {}
    }
    selector
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Times `PURGES` purges of one selector kind; returns (median, p90, max, matched by the median one).
fn time_purges(
    store: &MokaStore,
    size: usize,
    kind: &str,
    soft: bool,
    first: usize,
) -> (Duration, Duration, Duration, u64) {
    let mut samples: Vec<(Duration, u64)> = (first..first + PURGES)
        .map(|k| {
            let selector = selector(kind, k, size);
            let started = Instant::now();
            let report = black_box(store.purge(black_box(selector), soft));
            (started.elapsed(), report.matched)
        })
        .collect();
    samples.sort_by_key(|(d, _)| *d);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (
        at(0.5).0,
        at(0.9).0,
        samples[samples.len() - 1].0,
        at(0.5).1,
    )
}

fn purge_table() {
    println!("\npurge latency (µs), {PURGES} purges per row, each with a different value");
    println!(
        "{:>9} {:>7} {:>5} {:>9} {:>9} {:>9} {:>9} {:>6}",
        "entries", "selector", "mode", "median", "p90", "max", "matched", "bans"
    );
    for size in SIZES {
        let store = new_store();
        let started = Instant::now();
        fill(store, 0..size);
        eprintln!(
            "filled {size} entries in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        let mut first = 0;
        // Soft purges first: they leave every entry in place for the hard ones.
        for soft in [true, false] {
            for kind in ["origin", "host", "prefix", "url", "tag", "all"] {
                let (median, p90, max, matched) = time_purges(store, size, kind, soft, first);
                first += PURGES;
                println!(
                    "{size:>9} {kind:>8} {:>5} {:>9.2} {:>9.2} {:>9.2} {matched:>9} {:>6}",
                    if soft { "soft" } else { "hard" },
                    micros(median),
                    micros(p90),
                    micros(max),
                    store.active_bans(),
                );
            }
        }
        // The first reclamation pass after those hard purges (later ones are spaced out).
        let started = Instant::now();
        store.sync();
        println!(
            "{size:>9} reclamation pass (memory of hard-purged entries): {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
}

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let span = Span::inactive();
    for size in SIZES {
        let store = new_store();
        fill(store, 0..size);
        // Keys of entries spread over the whole store, looked up round robin.
        let keys: Vec<CacheKey> = (0..4096)
            .map(|j| support::key((j * 2_654_435_761) % size))
            .collect();
        let mut bans = 0;
        for target in [0usize, 100, 1000] {
            while bans < target {
                // Hard purges of tags no entry carries: they match nothing but are in force.
                store.purge(
                    Selector {
                        tag: Some(format!("absent-{bans}")),
                        ..Default::default()
                    },
                    false,
                );
                bans += 1;
            }
            store.sync();
            let mut next = 0;
            group.bench_with_input(
                BenchmarkId::new(format!("{size}"), format!("{target}_bans")),
                &target,
                |b, _| {
                    b.iter(|| {
                        next = (next + 1) % keys.len();
                        let found = now(store.lookup(&keys[next], &span.handle())).expect("lookup");
                        assert!(found.is_some(), "every looked-up entry is cached");
                        black_box(found)
                    })
                },
            );
        }
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    // `cargo bench -- lookup/` skips the purge table.
    let filtered = std::env::args().skip(1).any(|a| !a.starts_with('-'));
    if !filtered {
        purge_table();
    }
    lookups(&mut criterion);
    criterion.final_summary();
}
