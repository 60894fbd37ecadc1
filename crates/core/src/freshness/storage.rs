//! May a shared cache store this response, and how fresh is it? (RFC 9111 §3, §4.2, §5.2.2)

use std::time::{Duration, SystemTime};

use super::cache_control::{
    members, parse_delta_seconds, trim_ows, CacheControl, FieldScope, DELTA_SECONDS_MAX,
};
use super::targeted::{governing_directives, ResponseDirectives};

/// Operator settings that bound what upstreams ask for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Upper bound on the freshness lifetime of any stored response (the route's `max_ttl`).
    pub max_ttl: Option<Duration>,
    /// Stale-while-revalidate window when the response has no `stale-while-revalidate`.
    pub default_stale_while_revalidate: Duration,
    /// Stale-if-error window when the response has no `stale-if-error`.
    pub default_stale_if_error: Duration,
}

/// What the storage decision needs to know about the request.
#[derive(Debug, Clone, Copy)]
pub struct StorageRequest<'a> {
    /// The request method, case-sensitive as in RFC 9110 §9.1 (`GET`, `HEAD`, ...).
    pub method: &'a str,
    /// The request's `Cache-Control`, parsed once where the request is read (none sent: `None`).
    pub cache_control: Option<&'a CacheControl>,
    /// The request carries `Authorization`.
    pub authorization: bool,
    /// RFC 9111 §4.2.3's `request_time`: when the request was made. The gateway gives the
    /// request's arrival, which is no later than its send upstream, so the corrected age is
    /// over-estimated, never under-estimated (the conservative side for a shared cache).
    pub sent_at: SystemTime,
}

impl<'a> ResponseFacts<'a> {
    /// The fields that can govern caching, for [`super::governing_directives`].
    pub fn directives(&self) -> ResponseDirectives<'a> {
        ResponseDirectives {
            targeted: self.targeted,
            surrogate_control: self.surrogate_control,
            cache_control: self.cache_control,
        }
    }
}

/// What the storage decision needs to know about the response. Field lines are raw values,
/// one slice per line, in order; an absent field is an empty slice.
#[derive(Debug, Clone, Copy)]
pub struct ResponseFacts<'a> {
    /// The final status code.
    pub status: u16,
    /// Every `Cache-Control` field line.
    pub cache_control: &'a [&'a [u8]],
    /// The lines of each configured targeted field (RFC 9213), in the configured order.
    pub targeted: &'a [Vec<&'a [u8]>],
    /// Every `Surrogate-Control` field line.
    pub surrogate_control: &'a [&'a [u8]],
    /// Every `Expires` field line.
    pub expires: &'a [&'a [u8]],
    /// Every `Date` field line.
    pub date: &'a [&'a [u8]],
    /// Every `Age` field line.
    pub age: &'a [&'a [u8]],
    /// Every `Vary` field line.
    pub vary: &'a [&'a [u8]],
    /// The response carries at least one `Set-Cookie`.
    pub set_cookie: bool,
    /// The response carries `ETag` or `Last-Modified`, so it can be revalidated with a
    /// conditional request (RFC 9111 §4.3.1).
    pub has_validator: bool,
    /// When the response was received ("response_time", RFC 9111 §4.2.3).
    pub received_at: SystemTime,
}

/// How a stored response may be used. All durations count from `received_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freshness {
    /// Freshness lifetime (RFC 9111 §4.2.1) after the `max_ttl` cap; zero for `no-cache`.
    pub lifetime: Duration,
    /// corrected_initial_age (§4.2.3), at most 2^31 s. Store the entry as created at
    /// `received_at - initial_age`: then `now - created` is the response's current age
    /// (§4.2.3 "current_age = corrected_initial_age + resident_time"), which is what the
    /// `Age` header sent downstream must say, and `lifetime` is reached at `created + lifetime`.
    pub initial_age: Duration,
    /// Freshness left on arrival: `lifetime - initial_age`, zero when the response arrived
    /// stale (it is then stored only because it can be revalidated).
    pub fresh_for: Duration,
    /// How long after becoming stale it may still be served while a revalidation runs in the
    /// background (RFC 5861 §3).
    pub stale_while_revalidate: Duration,
    /// How long after becoming stale it may be served when revalidation fails (RFC 5861 §4).
    pub stale_if_error: Duration,
    /// Never serve it stale, for any reason: on a failed revalidation answer 504
    /// (RFC 9111 §5.2.2.2). Set by `must-revalidate`, `proxy-revalidate`, `s-maxage` (which
    /// implies proxy-revalidate for a shared cache, §5.2.2.10) and unqualified `no-cache`
    /// (§4.2.4: a cache must not generate a stale response the origin prohibited). Both stale
    /// windows are zero when it is set.
    pub must_revalidate: bool,
    /// Lower-case field names to drop from the stored copy: those named by `private="..."`
    /// (§5.2.2.7) and `no-cache="..."` (§5.2.2.4). Sorted, without duplicates. When the
    /// response had `Set-Cookie`, it is always in this list.
    pub strip_headers: Vec<String>,
}

/// Why a response is not stored. [`NotStorable::as_str`] gives a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotStorable {
    /// The request method is not GET or HEAD (§3: the method must be cacheable; preflights
    /// are cached by their own rules).
    Method,
    /// The request had `Cache-Control: no-store` (§5.2.1.5).
    RequestNoStore,
    /// 1xx, 206, 304 or a code outside 100..=599 (§3: final, understood, and no partial
    /// content support here), or `must-understand` with a code RFC 9110 does not define.
    Status,
    /// The response had `no-store` (§5.2.2.5).
    NoStore,
    /// The response had `private` without field names (§5.2.2.7): not for a shared cache.
    Private,
    /// `Vary: *` (§4.1): no later request can ever match it.
    VaryStar,
    /// The request had `Authorization` and the response has none of `public`, `s-maxage`,
    /// `must-revalidate` (§3.5).
    Authorization,
    /// The response sets a cookie and does not say the rest of it is shareable.
    SetCookie,
    /// Unqualified `no-cache` without `ETag`/`Last-Modified`: it could only be refetched.
    NoCache,
    /// No explicit freshness (`s-maxage`, `max-age`, `Expires`): heuristic freshness
    /// (§4.2.2) is deliberately not used in front of APIs.
    NoFreshness,
    /// Already stale on arrival (expired `Expires`, `max-age=0`, an `Age` past the lifetime or
    /// of 2^31 or more) and no validator to revalidate it with.
    Stale,
    /// A preflight answer whose `Access-Control-Max-Age` asks for no caching (`0`, negative),
    /// or a refusal with no negative TTL configured ([`super::preflight_storage`]).
    PreflightNotCacheable,
}

impl NotStorable {
    /// Every reason, for pre-registering metric label values.
    pub const ALL: [NotStorable; 11] = [
        NotStorable::Method,
        NotStorable::RequestNoStore,
        NotStorable::Status,
        NotStorable::NoStore,
        NotStorable::Private,
        NotStorable::VaryStar,
        NotStorable::Authorization,
        NotStorable::SetCookie,
        NotStorable::NoCache,
        NotStorable::NoFreshness,
        NotStorable::Stale,
    ];

    /// A short snake_case label, stable for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            NotStorable::Method => "method",
            NotStorable::RequestNoStore => "request_no_store",
            NotStorable::Status => "status",
            NotStorable::NoStore => "no_store",
            NotStorable::Private => "private",
            NotStorable::VaryStar => "vary_star",
            NotStorable::Authorization => "authorization",
            NotStorable::SetCookie => "set_cookie",
            NotStorable::NoCache => "no_cache",
            NotStorable::NoFreshness => "no_freshness",
            NotStorable::Stale => "stale",
            NotStorable::PreflightNotCacheable => "preflight_not_cacheable",
        }
    }
}

/// The outcome of [`storage_decision`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageDecision {
    /// Store it, with these freshness facts.
    Store(Freshness),
    /// Serve it but do not store it.
    DontStore(NotStorable),
}

/// Decides whether a shared cache may store `resp`, answering `req`, under `policy`
/// (RFC 9111 §3), and computes its freshness (§4.2) if so.
///
/// The checks run in the order of the [`NotStorable`] variants, so the reported reason is the
/// first one that applies. Choices where the RFC leaves room, all on the side of storing less:
///
/// * No heuristic freshness (§4.2.2): without `s-maxage`, `max-age` or `Expires` the response
///   is not stored, except unqualified `no-cache` with a validator, stored as always stale.
/// * A response that is stale on arrival (lifetime zero or already used up by its age) is
///   stored only when it has a validator, since otherwise every use would be a full refetch.
/// * `Set-Cookie` makes a response unstorable, even with `public` or `s-maxage` (frameworks
///   add those carelessly, and a stored cookie would be handed to every client), unless
///   `private="set-cookie"` or `no-cache="set-cookie"` says the rest is shareable: then the
///   response is stored without its `Set-Cookie`.
/// * An invalid or conflicting `Expires` means already expired (§5.3, §4.2.1); an invalid or
///   conflicting `Date` is ignored and the receipt time used instead (RFC 9110 §6.6.1); `Age`
///   is read as §5.1 says (see [`age_header`]).
/// * A targeted field (RFC 9213) or `Surrogate-Control` replaces `Cache-Control` and
///   `Expires` (see [`super::governing_directives`]).
/// * The policy's default stale windows apply whenever the response does not name them and
///   does not forbid stale serving; they are the operator's out-of-band permission (§4.2.4).
pub fn storage_decision(
    req: &StorageRequest<'_>,
    resp: &ResponseFacts<'_>,
    policy: &Policy,
) -> StorageDecision {
    match decide(req, resp, policy) {
        Ok(freshness) => StorageDecision::Store(freshness),
        Err(reason) => StorageDecision::DontStore(reason),
    }
}

fn decide(
    req: &StorageRequest<'_>,
    resp: &ResponseFacts<'_>,
    policy: &Policy,
) -> Result<Freshness, NotStorable> {
    // §3: "the request method is understood by the cache" and cacheable. HEAD responses may
    // be stored too (they update or stand in for GET metadata, RFC 9110 §9.3.2).
    if req.method != "GET" && req.method != "HEAD" {
        return Err(NotStorable::Method);
    }
    if req.cache_control.is_some_and(|cc| cc.no_store) {
        return Err(NotStorable::RequestNoStore);
    }
    if !status_storable(resp.status) {
        return Err(NotStorable::Status);
    }
    // The first valid targeted field, else Surrogate-Control, else Cache-Control (RFC 9213).
    let governing = governing_directives(&resp.directives());
    let honours_expires = governing.honours_expires();
    let cc = governing.directives;
    // §3: with `must-understand`, only a cache that understands the status code may store it.
    if cc.must_understand && !status_understood(resp.status) {
        return Err(NotStorable::Status);
    }
    if cc.no_store {
        return Err(NotStorable::NoStore);
    }
    let mut strip_headers = Vec::new();
    match &cc.private {
        Some(FieldScope::All) => return Err(NotStorable::Private),
        Some(FieldScope::Fields(names)) => strip_headers.extend(names.iter().cloned()),
        None => {}
    }
    if vary_has_star(resp.vary) {
        return Err(NotStorable::VaryStar);
    }
    // §3.5: the three directives that let a shared cache reuse an authenticated response.
    if req.authorization && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate) {
        return Err(NotStorable::Authorization);
    }
    let no_cache_all = matches!(cc.no_cache, Some(FieldScope::All));
    if let Some(FieldScope::Fields(names)) = &cc.no_cache {
        strip_headers.extend(names.iter().cloned());
    }
    strip_headers.sort();
    strip_headers.dedup();
    if resp.set_cookie && !strip_headers.iter().any(|f| f == "set-cookie") {
        return Err(NotStorable::SetCookie);
    }

    let received = resp.received_at;
    let date_value = single_http_date(resp.date).unwrap_or(received);
    // §4.2.1: for a shared cache s-maxage, then max-age, then Expires - Date. §5.3: Expires
    // is ignored when max-age (or s-maxage) is present.
    let explicit = if let Some(s) = cc.s_maxage {
        Some(secs(s))
    } else if let Some(m) = cc.max_age {
        Some(secs(m))
    } else if honours_expires && !resp.expires.is_empty() {
        Some(expires_lifetime(resp.expires, date_value))
    } else {
        None
    };
    let lifetime = if no_cache_all {
        // §5.2.2.4: never used without successful validation, whatever its lifetime says,
        // so worth storing only when a conditional request can validate it.
        if !resp.has_validator {
            return Err(NotStorable::NoCache);
        }
        Duration::ZERO
    } else {
        explicit.ok_or(NotStorable::NoFreshness)?
    };
    let lifetime = policy.max_ttl.map_or(lifetime, |cap| lifetime.min(cap));

    // §4.2.3, with the receipt time standing in for a missing Date (then apparent_age is 0).
    let apparent_age = received
        .duration_since(date_value)
        .unwrap_or(Duration::ZERO);
    let response_delay = received
        .duration_since(req.sent_at)
        .unwrap_or(Duration::ZERO);
    // An `Age` of 2^31 or more saturates at 2^31, past any lifetime: the response is stale.
    let age_value = age_header(resp.age).map_or(Duration::ZERO, secs);
    let corrected_age_value = age_value.saturating_add(response_delay);
    // §1.2.2: a calculation that overflows what we want to represent becomes 2^31 seconds.
    let initial_age = apparent_age
        .max(corrected_age_value)
        .min(secs(DELTA_SECONDS_MAX));
    let fresh_for = lifetime.saturating_sub(initial_age);
    if fresh_for.is_zero() && !resp.has_validator {
        return Err(NotStorable::Stale);
    }

    let must_revalidate = super::request::stored_must_revalidate(&cc);
    let (stale_while_revalidate, stale_if_error) = if must_revalidate {
        (Duration::ZERO, Duration::ZERO)
    } else {
        (
            cc.stale_while_revalidate
                .map_or(policy.default_stale_while_revalidate, secs),
            cc.stale_if_error
                .map_or(policy.default_stale_if_error, secs),
        )
    };
    Ok(Freshness {
        lifetime,
        initial_age,
        fresh_for,
        stale_while_revalidate,
        stale_if_error,
        must_revalidate,
        strip_headers,
    })
}

/// Final (not 1xx) and within the range RFC 9110 §15 defines; 206 is not stored because
/// partial content is not assembled here, 304 because it only updates a stored response.
fn status_storable(status: u16) -> bool {
    (200..=599).contains(&status) && status != 206 && status != 304
}

/// The final status codes RFC 9110 §15 defines, whose caching rules this cache follows: the
/// ones `must-understand` (RFC 9111 §5.2.2.3) lets it store. 206 and 304 are never stored.
fn status_understood(status: u16) -> bool {
    matches!(
        status,
        200..=205 | 300..=305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505
    )
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// An HTTP-date (RFC 9110 §5.6.7) in any of the three formats recipients must accept.
fn parse_http_date(v: &[u8]) -> Option<SystemTime> {
    let s = std::str::from_utf8(trim_ows(v)).ok()?;
    httpdate::parse_http_date(s).ok()
}

/// The date of a singleton date field (`Date`), or None when it is absent, invalid, or given
/// more than once with different values.
fn single_http_date(lines: &[&[u8]]) -> Option<SystemTime> {
    let first = trim_ows(lines.first()?);
    if lines.iter().any(|l| trim_ows(l) != first) {
        return None;
    }
    parse_http_date(first)
}

/// `Expires - Date` (§4.2.1), zero when `Expires` is invalid (§5.3: "especially the value
/// 0", already expired), before `Date`, or repeated with different values (§4.2.1 allows
/// treating the response as stale).
fn expires_lifetime(lines: &[&[u8]], date_value: SystemTime) -> Duration {
    single_http_date(lines)
        .and_then(|expires| expires.duration_since(date_value).ok())
        .unwrap_or(Duration::ZERO)
}

/// `Age` (§5.1): the first member of the first line when it is delta-seconds, saturating at
/// 2^31 (§1.2.2); None when absent or when that member is not digits only (negative, decimal,
/// text): "a cache SHOULD ignore" an invalid value, and a list means the first member counts.
fn age_header(lines: &[&[u8]]) -> Option<u32> {
    let first = members(lines.iter().copied()).next()?;
    parse_delta_seconds(first)
}

/// `Vary` has the member `*` on any line (RFC 9110 §12.5.5).
fn vary_has_star(lines: &[&[u8]]) -> bool {
    crate::header_list::has_member(lines.iter().copied(), b"*")
}
