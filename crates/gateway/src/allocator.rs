//! The process-wide allocator of every binary built on this crate (the gateway and the
//! benches' Pingora floor, so that the two are compared built the same way).
//!
//! jemalloc by default: on one core with wrk it made hits and misses cheaper than glibc's
//! malloc, whose `malloc`/`free`/`malloc_consolidate` were a tenth of a hit's profile, and
//! cheaper than mimalloc (README, "Speed", has the figures and the command).

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
