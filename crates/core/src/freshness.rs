//! Shared-cache storage and freshness rules (RFC 9111, RFC 5861) as pure functions.
//!
//! * [`CacheControl::parse`] reads the `Cache-Control` field lines of a request or response.
//! * [`storage_decision`] says whether a response may be stored by a shared cache and, if so,
//!   for how long it is fresh, how long it may be served stale, and which fields to drop from
//!   the stored copy.
//! * [`request_requires_revalidation`] applies the request's own directives on a hit.
//! * [`preflight_ttl`] says how long a CORS preflight answer may be reused.
//!
//! Times come in as [`SystemTime`] and header values as raw bytes, so the gateway can call
//! these with whatever its HTTP library holds and tests can pin the clock.

mod cache_control;
mod not_modified;
mod preflight;
mod request;
mod storage;
mod targeted;

pub use cache_control::{CacheControl, FieldScope, MaxStale, DELTA_SECONDS_MAX};
pub use not_modified::updated_by_304;
pub use preflight::{preflight_storage, preflight_ttl, PREFLIGHT_DEFAULT_MAX_AGE};
pub use request::{
    hit_verdict, pragma_has_no_cache, request_requires_revalidation, stored_must_revalidate,
    HitAction,
};
pub use request::{RequestFreshness, Stored};
pub use storage::{storage_decision, Freshness, NotStorable, Policy, StorageDecision};
pub use storage::{ResponseFacts, StorageRequest};
pub use targeted::{
    governing_directives, parse_surrogate_control, parse_targeted, DirectiveSource, Governing,
    ResponseDirectives,
};

#[cfg(test)]
mod tests;
