//! The `Cache-Control` field (RFC 9111 §5.2), parsed from every field line of a request or a
//! response into one [`CacheControl`].
//!
//! The parser never fails: the field comes from upstreams and clients we do not control, and
//! RFC 9111 §4.2.1 asks a cache to treat bad freshness information as stale rather than reject
//! the message. Where the input is broken or contradicts itself, the parser picks the reading
//! that caches *less*, so a parsing mistake can cost a hit but never leak or over-serve:
//!
//! * Directive names are case-insensitive (§5.2: "Cache directives are identified by a token,
//!   to be compared case-insensitively").
//! * Arguments are accepted as token or quoted-string for every directive (§5.2: recipients
//!   "ought to accept both forms, even if a specific form is required for generation"). Quoted
//!   strings may hold commas and backslash escapes.
//! * A delta-seconds argument that is not all digits (negative, empty, `60s`, an unterminated
//!   quote...) reads as `0`: §4.2.1 encourages treating "a max-age directive with non-integer
//!   content" as stale. A value too large for the cache reads as 2^31 (§1.2.2).
//! * A directive repeated with different arguments keeps the most restrictive one: the smallest
//!   `max-age`, `s-maxage`, `max-stale`, `stale-while-revalidate` and `stale-if-error`, the
//!   largest `min-fresh`. §4.2.1 allows "the first occurrence" or "stale"; the smallest value
//!   is between the two and does not depend on the order of field lines, which proxies may change.
//! * `private` and `no-cache` without field names win over the same directive with field
//!   names; field-name lists of repeated directives are merged. An empty list or a list with
//!   anything but field names (tokens) reads as the unqualified directive, since we cannot
//!   tell which fields were meant.
//! * Restrictive flags (`no-store`, `must-revalidate`, `proxy-revalidate`, `must-understand`,
//!   `only-if-cached`) count even when they wrongly carry an argument; permissive ones (`public`, `immutable`)
//!   are ignored when they do.
//! * Unknown directives are ignored (§5.2.3). `must-understand` (§5.2.2.3) is read: a response
//!   carrying it is stored only when its status code is one the cache knows (see
//!   `storage.rs`); the `no-store` that should accompany it still applies (ignoring it there is
//!   a SHOULD, and applying it stores less).

use std::fmt;

pub(crate) use crate::header_list::members;
pub(crate) use crate::header_list::trim_ows;
use crate::header_list::{is_ows, is_tchar, is_token, quoted_string};

/// The greatest delta-seconds value kept: RFC 9111 §1.2.2 lets a cache use 2^31 for anything
/// larger it cannot represent.
pub const DELTA_SECONDS_MAX: u32 = 1 << 31;

/// Which fields a `private` or `no-cache` directive applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldScope {
    /// The directive without an argument: the whole response.
    All,
    /// `private="a, b"` / `no-cache="a, b"`: only these fields (lower-case, sorted, without
    /// duplicates, never empty when produced by the parser).
    Fields(Vec<String>),
}

impl FieldScope {
    /// Merges a repeated directive: the whole response wins over some fields, field lists add up.
    fn merge(self, other: FieldScope) -> FieldScope {
        match (self, other) {
            (FieldScope::Fields(mut a), FieldScope::Fields(b)) => {
                a.extend(b);
                a.sort();
                a.dedup();
                FieldScope::Fields(a)
            }
            _ => FieldScope::All,
        }
    }
}

/// The request directive `max-stale` (RFC 9111 §5.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxStale {
    /// `max-stale` without a value: any staleness is acceptable to the client.
    Any,
    /// `max-stale=N`: at most N seconds stale.
    Seconds(u32),
}

/// All `Cache-Control` directives of one message that the gateway acts on. Seconds are
/// `u32`, never above [`DELTA_SECONDS_MAX`].
///
/// The same struct serves requests and responses (several directives exist on both sides);
/// each consumer reads the fields that apply to its side.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CacheControl {
    /// `max-age` (§5.2.1.1 request, §5.2.2.1 response).
    pub max_age: Option<u32>,
    /// `s-maxage` (§5.2.2.10), response only.
    pub s_maxage: Option<u32>,
    /// `no-store` (§5.2.1.5, §5.2.2.5).
    pub no_store: bool,
    /// `no-cache` (§5.2.1.4 request, §5.2.2.4 response, where it may name fields).
    pub no_cache: Option<FieldScope>,
    /// `private` (§5.2.2.7), response only, may name fields.
    pub private: Option<FieldScope>,
    /// `public` (§5.2.2.9).
    pub public: bool,
    /// `must-revalidate` (§5.2.2.2).
    pub must_revalidate: bool,
    /// `proxy-revalidate` (§5.2.2.8).
    pub proxy_revalidate: bool,
    /// `must-understand` (§5.2.2.3), response only.
    pub must_understand: bool,
    /// `stale-while-revalidate` (RFC 5861 §3).
    pub stale_while_revalidate: Option<u32>,
    /// `stale-if-error` (RFC 5861 §4), on either side.
    pub stale_if_error: Option<u32>,
    /// `immutable` (RFC 8246).
    pub immutable: bool,
    /// `max-stale` (§5.2.1.2), request only.
    pub max_stale: Option<MaxStale>,
    /// `min-fresh` (§5.2.1.3), request only.
    pub min_fresh: Option<u32>,
    /// `only-if-cached` (§5.2.1.7), request only.
    pub only_if_cached: bool,
}

/// A directive's argument as found on the wire.
enum Arg<'a> {
    /// No `=`.
    Absent,
    /// A token, or the unescaped content of a quoted string.
    Value(std::borrow::Cow<'a, [u8]>),
    /// The unescaped content of a quoted string. RFC 9111 §1.2.2 gives delta-seconds the token
    /// form only, so a quoted number is not a usable lifetime (http-cache-tests
    /// `freshness-max-age-ignore-quoted`); field-name lists are normally quoted.
    Quoted(std::borrow::Cow<'a, [u8]>),
    /// Something was there but it was not a well-formed token or quoted string.
    Malformed,
}

impl CacheControl {
    /// Parses every field line of `Cache-Control` in order, as if they were one
    /// comma-separated list (RFC 9110 §5.3 allows a recipient to combine them that way).
    pub fn parse<'a, I: IntoIterator<Item = &'a [u8]>>(lines: I) -> CacheControl {
        let mut cc = CacheControl::default();
        for element in members(lines) {
            cc.parse_element(element);
        }
        cc
    }

    /// True when no directive we act on was found.
    pub fn is_empty(&self) -> bool {
        *self == CacheControl::default()
    }

    /// One list member (already split quote-aware and OWS-trimmed): `name[=value]`.
    fn parse_element(&mut self, element: &[u8]) {
        let name_end = skip_while(element, 0, is_tchar);
        if name_end == 0 {
            // Not a directive: ignore the element.
            return;
        }
        let name = &element[..name_end];
        // BWS around "=" is not in the grammar but costs nothing to tolerate.
        let mut j = skip_while(element, name_end, is_ows);
        let mut arg = Arg::Absent;
        if element.get(j) == Some(&b'=') {
            j = skip_while(element, j + 1, is_ows);
            if element.get(j) == Some(&b'"') {
                let (value, end) = quoted_string(element, j + 1);
                arg = value.map_or(Arg::Malformed, Arg::Quoted);
                j = end;
            } else {
                let start = j;
                j = skip_while(element, j, is_tchar);
                arg = if j == start {
                    Arg::Malformed
                } else {
                    Arg::Value(std::borrow::Cow::Borrowed(&element[start..j]))
                };
            }
            j = skip_while(element, j, is_ows);
        }
        if j < element.len() {
            // Junk after the directive (`max-age=60 s`, `max-age 60`): we cannot tell what
            // the sender meant, so keep the directive with an unusable argument.
            arg = Arg::Malformed;
        }
        self.apply(name, arg);
    }

    fn apply(&mut self, name: &[u8], arg: Arg<'_>) {
        let is = |d: &str| name.eq_ignore_ascii_case(d.as_bytes());
        if is("max-age") {
            self.max_age = Some(merge_min(self.max_age, delta_seconds(&arg)));
        } else if is("s-maxage") {
            self.s_maxage = Some(merge_min(self.s_maxage, delta_seconds(&arg)));
        } else if is("stale-while-revalidate") {
            let v = delta_seconds(&arg);
            self.stale_while_revalidate = Some(merge_min(self.stale_while_revalidate, v));
        } else if is("stale-if-error") {
            self.stale_if_error = Some(merge_min(self.stale_if_error, delta_seconds(&arg)));
        } else if is("min-fresh") {
            let v = delta_seconds(&arg);
            self.min_fresh = Some(self.min_fresh.map_or(v, |old| old.max(v)));
        } else if is("max-stale") {
            let new = match arg {
                Arg::Absent => MaxStale::Any,
                _ => MaxStale::Seconds(delta_seconds(&arg)),
            };
            self.max_stale = Some(match (self.max_stale, new) {
                (None, n) | (Some(MaxStale::Any), n) => n,
                (Some(old), MaxStale::Any) => old,
                (Some(MaxStale::Seconds(a)), MaxStale::Seconds(b)) => MaxStale::Seconds(a.min(b)),
            });
        } else if is("no-cache") {
            let scope = field_scope(&arg);
            self.no_cache = Some(match self.no_cache.take() {
                Some(old) => old.merge(scope),
                None => scope,
            });
        } else if is("private") {
            let scope = field_scope(&arg);
            self.private = Some(match self.private.take() {
                Some(old) => old.merge(scope),
                None => scope,
            });
        } else if is("no-store") {
            self.no_store = true;
        } else if is("must-revalidate") {
            self.must_revalidate = true;
        } else if is("proxy-revalidate") {
            self.proxy_revalidate = true;
        } else if is("must-understand") {
            self.must_understand = true;
        } else if is("only-if-cached") {
            self.only_if_cached = true;
        } else if is("public") {
            self.public |= matches!(arg, Arg::Absent);
        } else if is("immutable") {
            self.immutable |= matches!(arg, Arg::Absent);
        }
    }
}

/// Writes the directives in a fixed order, comma-separated, in the form the parser reads back
/// to an equal value (an empty struct writes nothing).
impl fmt::Display for CacheControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let flag = |parts: &mut Vec<String>, on: bool, name: &str| {
            if on {
                parts.push(name.to_owned());
            }
        };
        let secs = |parts: &mut Vec<String>, v: Option<u32>, name: &str| {
            if let Some(v) = v {
                parts.push(format!("{name}={v}"));
            }
        };
        let scope = |parts: &mut Vec<String>, v: &Option<FieldScope>, name: &str| match v {
            None => {}
            Some(FieldScope::All) => parts.push(name.to_owned()),
            // Field names are tokens, so they never need escaping inside the quotes.
            Some(FieldScope::Fields(names)) => {
                parts.push(format!("{name}=\"{}\"", names.join(", ")));
            }
        };
        flag(&mut parts, self.no_store, "no-store");
        scope(&mut parts, &self.no_cache, "no-cache");
        scope(&mut parts, &self.private, "private");
        flag(&mut parts, self.public, "public");
        secs(&mut parts, self.max_age, "max-age");
        secs(&mut parts, self.s_maxage, "s-maxage");
        flag(&mut parts, self.must_revalidate, "must-revalidate");
        flag(&mut parts, self.proxy_revalidate, "proxy-revalidate");
        flag(&mut parts, self.must_understand, "must-understand");
        secs(
            &mut parts,
            self.stale_while_revalidate,
            "stale-while-revalidate",
        );
        secs(&mut parts, self.stale_if_error, "stale-if-error");
        flag(&mut parts, self.immutable, "immutable");
        match self.max_stale {
            None => {}
            Some(MaxStale::Any) => parts.push("max-stale".to_owned()),
            Some(MaxStale::Seconds(n)) => parts.push(format!("max-stale={n}")),
        }
        secs(&mut parts, self.min_fresh, "min-fresh");
        flag(&mut parts, self.only_if_cached, "only-if-cached");
        f.write_str(&parts.join(", "))
    }
}

fn skip_while(line: &[u8], mut i: usize, pred: impl Fn(u8) -> bool) -> usize {
    while i < line.len() && pred(line[i]) {
        i += 1;
    }
    i
}

/// delta-seconds (RFC 9111 §1.2.2). Anything but digits reads as 0, i.e. already stale
/// (§4.2.1); overflow saturates at 2^31 (§1.2.2).
fn delta_seconds(arg: &Arg<'_>) -> u32 {
    match arg {
        Arg::Value(v) => parse_delta_seconds(v).unwrap_or(0),
        Arg::Absent | Arg::Quoted(_) | Arg::Malformed => 0,
    }
}

/// Digits only, saturating at [`DELTA_SECONDS_MAX`]; None for anything else (empty, sign,
/// whitespace, letters).
pub(crate) fn parse_delta_seconds(v: &[u8]) -> Option<u32> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u32 = 0;
    for d in v {
        n = n
            .saturating_mul(10)
            .saturating_add(u32::from(d - b'0'))
            .min(DELTA_SECONDS_MAX);
    }
    Some(n)
}

fn merge_min(old: Option<u32>, new: u32) -> u32 {
    old.map_or(new, |o| o.min(new))
}

/// The argument of `private` / `no-cache`: a comma-separated list of field names.
fn field_scope(arg: &Arg<'_>) -> FieldScope {
    let (Arg::Value(v) | Arg::Quoted(v)) = arg else {
        return FieldScope::All;
    };
    field_names_scope(v)
}

/// A comma-separated list of field names as the scope of `private` / `no-cache`; anything
/// that is not a list of tokens reads as the whole response.
pub(crate) fn field_names_scope(v: &[u8]) -> FieldScope {
    let mut names = Vec::new();
    for name in members([v]) {
        if !is_token(name) {
            // Not a field name: the scope is unknown, so apply the directive to everything.
            return FieldScope::All;
        }
        names.push(String::from_utf8_lossy(name).to_ascii_lowercase());
    }
    if names.is_empty() {
        return FieldScope::All;
    }
    names.sort();
    names.dedup();
    FieldScope::Fields(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(lines: &[&str]) -> CacheControl {
        CacheControl::parse(lines.iter().map(|l| l.as_bytes()))
    }

    #[test]
    fn quoted_string_with_comma_and_escape() {
        let c = cc(&[r#"private="set-cookie, x-a\"b", max-age=5"#]);
        // `x-a"b` is not a token, so the scope cannot be trusted.
        assert_eq!(c.private, Some(FieldScope::All));
        assert_eq!(c.max_age, Some(5));
        let c = cc(&[r#"no-cache="Set-Cookie,  X-Foo", max-age=5"#]);
        assert_eq!(
            c.no_cache,
            Some(FieldScope::Fields(vec![
                "set-cookie".into(),
                "x-foo".into()
            ]))
        );
    }

    #[test]
    fn unterminated_quote_is_malformed() {
        let c = cc(&[r#"max-age="60, public"#]);
        assert_eq!(c.max_age, Some(0));
        assert!(!c.public);
    }

    #[test]
    fn garbage_elements_are_skipped() {
        let c = cc(&["=x, \"a,b\" , max-age=7,,, ;;, public"]);
        assert_eq!(c.max_age, Some(7));
        assert!(c.public);
    }

    #[test]
    fn delta_seconds_saturate() {
        assert_eq!(
            parse_delta_seconds(b"99999999999999999999"),
            Some(DELTA_SECONDS_MAX)
        );
        assert_eq!(parse_delta_seconds(b"2147483647"), Some(2_147_483_647));
        assert_eq!(parse_delta_seconds(b"-1"), None);
        assert_eq!(parse_delta_seconds(b""), None);
    }

    #[test]
    fn display_round_trips() {
        let c =
            cc(&["no-cache=\"a, b\", private, max-age=3, max-stale, min-fresh=2, only-if-cached"]);
        assert_eq!(
            c.to_string(),
            "no-cache=\"a, b\", private, max-age=3, max-stale, min-fresh=2, only-if-cached"
        );
        assert_eq!(cc(&[&c.to_string()]), c);
    }
}
