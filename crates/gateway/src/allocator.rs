//! The process-wide allocator of every binary built on this crate (the gateway and the
//! benches' Pingora floor, so that the two are compared built the same way).
//!
//! jemalloc by default: on one core under wrk it made hits 8% and misses 5% cheaper in CPU than
//! glibc's malloc, and beat mimalloc on both (README, "Performance", has the figures and the
//! command: `benches/compare/hits-ab.sh` with one binary per allocator).

#[cfg(all(
    feature = "jemalloc",
    not(feature = "mimalloc"),
    not(feature = "system-allocator")
))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(all(feature = "mimalloc", not(feature = "system-allocator")))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
