//! The cache store of cors-edge: a byte-bounded in-memory `pingora_cache::Storage` on moka, with
//! purge by selector (origin, host, prefix, url, tag, all) that answers in time independent of
//! the number of cached entries.

mod bans;
mod index;
pub mod key_hash;
mod store;

pub use bans::BanOutcome;
pub use index::StoreStats;
pub use store::{
    stored_vary, CoalescingLock, EntryState, FreshHit, ListedEntry, Listing, MokaStore,
    PurgeReport, PurgeTagSlot, StoreOptions,
};
