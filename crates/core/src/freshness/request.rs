//! The request's own say on a cache hit (RFC 9111 §5.2.1, §5.4).

use std::time::{Duration, SystemTime};

use super::cache_control::{trim_ows, CacheControl, MaxStale};

/// What the cache knows about the stored response at the time of the hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Current age (§4.2.3): `now - created`, with `created` set as [`super::Freshness`]
    /// describes.
    pub age: Duration,
    /// Freshness lifetime: `fresh_until - created`. The response is fresh while
    /// `lifetime > age` (§4.2).
    pub lifetime: Duration,
    /// The stored response forbids stale serving ([`super::Freshness::must_revalidate`]).
    pub must_revalidate: bool,
}

impl Stored {
    /// Builds the facts from the stored entry's times; a clock that went backwards counts as
    /// zero elapsed time.
    pub fn at(
        created: SystemTime,
        fresh_until: SystemTime,
        now: SystemTime,
        must_revalidate: bool,
    ) -> Stored {
        Stored {
            age: now.duration_since(created).unwrap_or(Duration::ZERO),
            lifetime: fresh_until
                .duration_since(created)
                .unwrap_or(Duration::ZERO),
            must_revalidate,
        }
    }
}

/// What the request allows the cache to do with a stored response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitAction {
    /// Fresh, and fresh enough for the client: serve it.
    Serve,
    /// Stale, but within the client's `max-stale` (§5.2.1.2) and not `must_revalidate`:
    /// serve it without revalidating (with `X-Cache: STALE`).
    ServeStale,
    /// Stale and the client said nothing: the usual stale handling applies
    /// (stale-while-revalidate / revalidate / stale-if-error per the stored response).
    Stale,
    /// The client asked for validation (`no-cache`, `Pragma: no-cache`) or for a fresher
    /// response than this one (`max-age`, `min-fresh`): do not serve it without successful
    /// revalidation, not even inside a stale-while-revalidate window.
    Revalidate,
}

/// [`request_requires_revalidation`]'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFreshness {
    /// What to do with the stored response.
    pub action: HitAction,
    /// `only-if-cached` (§5.2.1.7): when the answer cannot come from the cache (a miss, or an
    /// action that needs upstream), answer 504 instead of going upstream.
    pub only_if_cached: bool,
}

/// Applies the request directives to a stored response found for it.
///
/// `pragma_no_cache` is whether the request had `Pragma: no-cache` (see
/// [`pragma_has_no_cache`]); it counts only when the request has no `Cache-Control`
/// directive we understand (§5.4 says "when the Cache-Control header field is not present";
/// a `Cache-Control` holding only unknown directives is treated as absent, the cautious side).
pub fn request_requires_revalidation(
    request_cc: &CacheControl,
    pragma_no_cache: bool,
    stored: &Stored,
) -> RequestFreshness {
    let only_if_cached = request_cc.only_if_cached;
    let verdict = |action| RequestFreshness {
        action,
        only_if_cached,
    };
    // §5.2.1.4: request no-cache means "do not use a stored response without validation";
    // field names have no meaning on a request, so any form counts.
    let no_cache = request_cc.no_cache.is_some() || (pragma_no_cache && request_cc.is_empty());
    if no_cache {
        return verdict(HitAction::Revalidate);
    }
    // §5.2.1.1: the client wants a response no older than max-age.
    if let Some(max_age) = request_cc.max_age {
        if stored.age > Duration::from_secs(u64::from(max_age)) {
            return verdict(HitAction::Revalidate);
        }
    }
    let remaining = stored.lifetime.saturating_sub(stored.age);
    // §5.2.1.3: the client wants it to stay fresh for at least min-fresh more seconds.
    if let Some(min_fresh) = request_cc.min_fresh {
        if remaining < Duration::from_secs(u64::from(min_fresh)) {
            return verdict(HitAction::Revalidate);
        }
    }
    if !remaining.is_zero() {
        return verdict(HitAction::Serve);
    }
    let staleness = stored.age.saturating_sub(stored.lifetime);
    // §5.2.2.2: must-revalidate (and what implies it) overrides the client's max-stale.
    let accepted = !stored.must_revalidate
        && match request_cc.max_stale {
            Some(MaxStale::Any) => true,
            Some(MaxStale::Seconds(n)) => staleness <= Duration::from_secs(u64::from(n)),
            None => false,
        };
    verdict(if accepted {
        HitAction::ServeStale
    } else {
        HitAction::Stale
    })
}

/// Whether the `Pragma` field lines contain the `no-cache` member (§5.4), case-insensitively.
pub fn pragma_has_no_cache<'a, I: IntoIterator<Item = &'a [u8]>>(lines: I) -> bool {
    lines.into_iter().any(|line| {
        line.split(|&b| b == b',')
            .any(|member| trim_ows(member).eq_ignore_ascii_case(b"no-cache"))
    })
}
