//! The request's own say on a cache hit (RFC 9111 §5.2.1, §5.4).

use std::time::{Duration, SystemTime};

use super::cache_control::{CacheControl, FieldScope, MaxStale};

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
    crate::header_list::has_member(lines, b"no-cache")
}

/// Whether a stored response may never be served stale, whatever the request allows
/// (`max-stale`) and whatever stale windows are configured: `must-revalidate` (§5.2.2.2),
/// `proxy-revalidate` (§5.2.2.8), `s-maxage` (§5.2.2.10: implies proxy-revalidate in a shared
/// cache) and unqualified `no-cache` (§5.2.2.4: never used without successful validation).
/// The one rule the storage decision and the hit path both apply.
pub fn stored_must_revalidate(stored_cc: &CacheControl) -> bool {
    stored_cc.must_revalidate
        || stored_cc.proxy_revalidate
        || stored_cc.s_maxage.is_some()
        || matches!(stored_cc.no_cache, Some(FieldScope::All))
}

/// The request's verdict on a stored response: the request's parsed `Cache-Control` and
/// whether it has `Pragma: no-cache`, the stored response's directive fields (the governing
/// ones are chosen as the storage decision chose them), when its current age started
/// (`created`) and until when it is fresh.
pub fn hit_verdict(
    request: &CacheControl,
    pragma: bool,
    stored: &super::ResponseDirectives<'_>,
    created: SystemTime,
    fresh_until: SystemTime,
    now: SystemTime,
) -> RequestFreshness {
    let stored_cc = super::governing_directives(stored).directives;
    let stored = Stored::at(
        created,
        fresh_until,
        now,
        stored_must_revalidate(&stored_cc),
    );
    request_requires_revalidation(request, pragma, &stored)
}

#[cfg(test)]
mod hit_matrix {
    use super::*;

    const T0: u64 = 1_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// Stored responses, all 100 s old: (name, Cache-Control, freshness lifetime in s).
    const STORED: [(&str, &str, u64); 7] = [
        ("fresh", "max-age=600", 600),
        ("stale", "max-age=60", 60),
        ("no-cache", "no-cache", 0),
        ("must-revalidate", "max-age=60, must-revalidate", 60),
        ("proxy-revalidate", "max-age=60, proxy-revalidate", 60),
        ("s-maxage", "s-maxage=60", 60),
        ("no-cache=field", "max-age=60, no-cache=\"set-cookie\"", 60),
    ];

    fn cc_only<'a>(lines: &'a [&'a [u8]]) -> crate::freshness::ResponseDirectives<'a> {
        crate::freshness::ResponseDirectives {
            cache_control: lines,
            ..Default::default()
        }
    }

    fn verdict(request_cc: &str, pragma: &str, stored_cc: &str, lifetime: u64) -> HitAction {
        hit_verdict(
            &CacheControl::parse([request_cc.as_bytes()]),
            pragma_has_no_cache([pragma.as_bytes()]),
            &cc_only(&[stored_cc.as_bytes()]),
            at(T0),
            at(T0 + lifetime),
            at(T0 + 100),
        )
        .action
    }

    #[test]
    fn request_directives_against_stored_responses() {
        use HitAction::*;
        // Columns in the order of STORED: fresh, stale, no-cache, must-revalidate,
        // proxy-revalidate, s-maxage, no-cache="field".
        let table: [(&str, &str, [HitAction; 7]); 8] = [
            ("", "", [Serve, Stale, Stale, Stale, Stale, Stale, Stale]),
            // max-stale never lifts no-cache, must-revalidate, proxy-revalidate, s-maxage
            // (§5.2.2.2, §5.2.2.4, §5.2.2.8, §5.2.2.10); a qualified no-cache does not forbid it.
            (
                "max-stale",
                "",
                [Serve, ServeStale, Stale, Stale, Stale, Stale, ServeStale],
            ),
            (
                "max-stale=1000",
                "",
                [Serve, ServeStale, Stale, Stale, Stale, Stale, ServeStale],
            ),
            // 40 s stale is more than max-stale=10 allows.
            (
                "max-stale=10",
                "",
                [Serve, Stale, Stale, Stale, Stale, Stale, Stale],
            ),
            // Nothing here stays fresh 1000 s more.
            ("min-fresh=1000", "", [Revalidate; 7]),
            ("max-age=0", "", [Revalidate; 7]),
            ("no-cache", "", [Revalidate; 7]),
            ("", "no-cache", [Revalidate; 7]),
        ];
        for (request_cc, pragma, expected) in table {
            for ((name, stored_cc, lifetime), want) in STORED.iter().zip(expected) {
                assert_eq!(
                    verdict(request_cc, pragma, stored_cc, *lifetime),
                    want,
                    "request Cache-Control {request_cc:?} Pragma {pragma:?}, stored {name}"
                );
            }
        }
    }

    #[test]
    fn min_fresh_wants_the_remaining_freshness() {
        // 500 s of freshness left.
        assert_eq!(
            verdict("min-fresh=400", "", "max-age=600", 600),
            HitAction::Serve
        );
        assert_eq!(
            verdict("min-fresh=501", "", "max-age=600", 600),
            HitAction::Revalidate
        );
    }

    #[test]
    fn only_if_cached_is_reported_with_the_action() {
        let v = hit_verdict(
            &CacheControl::parse([&b"only-if-cached"[..]]),
            false,
            &cc_only(&[b"max-age=600"]),
            at(T0),
            at(T0 + 600),
            at(T0 + 100),
        );
        assert_eq!(v.action, HitAction::Serve);
        assert!(v.only_if_cached);
    }

    #[test]
    fn the_storage_rule_and_the_hit_rule_agree() {
        for (name, stored_cc, _) in STORED {
            let cc = CacheControl::parse([stored_cc.as_bytes()]);
            let storage = crate::freshness::storage_decision(
                &crate::freshness::StorageRequest {
                    method: "GET",
                    cache_control: None,
                    authorization: false,
                    sent_at: at(T0),
                },
                &crate::freshness::ResponseFacts {
                    status: 200,
                    cache_control: &[stored_cc.as_bytes()],
                    targeted: &[],
                    surrogate_control: &[],
                    expires: &[],
                    date: &[],
                    age: &[],
                    vary: &[],
                    set_cookie: false,
                    has_validator: true,
                    received_at: at(T0),
                },
                &crate::freshness::Policy::default(),
            );
            let crate::freshness::StorageDecision::Store(freshness) = storage else {
                panic!("{name} is stored");
            };
            assert_eq!(
                freshness.must_revalidate,
                stored_must_revalidate(&cc),
                "{name}"
            );
        }
    }
}
