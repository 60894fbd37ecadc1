//! How long a CORS preflight answer may be reused (Fetch standard, "CORS-preflight cache").

use std::time::Duration;

use super::cache_control::{parse_delta_seconds, trim_ows};
use super::storage::NotStorable;
use super::targeted::{governing_directives, ResponseDirectives};

/// What Fetch uses when `Access-Control-Max-Age` is absent or unparsable ("set max-age to 5").
pub const PREFLIGHT_DEFAULT_MAX_AGE: Duration = Duration::from_secs(5);

/// The time to keep a preflight answer, or None to not keep it.
///
/// * `granted` is the caller's verdict that the preflight allows the request (for example a
///   matching `Access-Control-Allow-Origin`). A granted 2xx answer is kept for its
///   `Access-Control-Max-Age` (delta-seconds, RFC 9111 §1.2.2 parsing), bounded by `cap`.
///   Absent, several values, or not digits: Fetch's 5 s default. A negative value (`-1`,
///   which Chromium documents as "disable caching") is taken as the upstream asking for no
///   caching: None. Zero, or a zero cap: None.
/// * Anything else (a denial or an upstream failure, any non-2xx) is kept for the short
///   `negative_ttl`, so a burst of refused preflights does not reach the upstream one by one
///   yet a fix upstream shows quickly; a zero `negative_ttl` keeps nothing.
pub fn preflight_ttl(
    access_control_max_age: Option<&[u8]>,
    status: u16,
    granted: bool,
    cap: Option<Duration>,
    negative_ttl: Duration,
) -> Option<Duration> {
    let keep = |d: Duration| (!d.is_zero()).then_some(d);
    if !granted || !(200..=299).contains(&status) {
        return keep(negative_ttl);
    }
    let max_age = match access_control_max_age {
        None => PREFLIGHT_DEFAULT_MAX_AGE,
        Some(value) => {
            let value = trim_ows(value);
            match parse_delta_seconds(value) {
                Some(s) => Duration::from_secs(u64::from(s)),
                None if is_negative_integer(value) => return None,
                None => PREFLIGHT_DEFAULT_MAX_AGE,
            }
        }
    };
    keep(cap.map_or(max_age, |cap| max_age.min(cap)))
}

fn is_negative_integer(v: &[u8]) -> bool {
    match v.split_first() {
        Some((b'-', digits)) => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// A preflight answer's storage rule, beside the other storage rules: the governing directives
/// (targeted fields, `Surrogate-Control`, `Cache-Control`) may forbid storing it (`no-store`,
/// `private`, qualified or not), and otherwise [`preflight_ttl`] says how long it is kept.
pub fn preflight_storage(
    directives: &ResponseDirectives<'_>,
    access_control_max_age: Option<&[u8]>,
    status: u16,
    granted: bool,
    cap: Option<Duration>,
    negative_ttl: Duration,
) -> Result<Duration, NotStorable> {
    let cc = governing_directives(directives).directives;
    if cc.no_store {
        return Err(NotStorable::NoStore);
    }
    if cc.private.is_some() {
        return Err(NotStorable::Private);
    }
    preflight_ttl(access_control_max_age, status, granted, cap, negative_ttl)
        .ok_or(NotStorable::PreflightNotCacheable)
}
