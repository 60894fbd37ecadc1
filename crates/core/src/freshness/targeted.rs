//! Which directives govern a response in this cache: a targeted field (RFC 9213), else
//! `Surrogate-Control` (Edge Architecture 1.0), else `Cache-Control` with `Expires`.
//!
//! The storage decision and the hit verdict both ask [`governing_directives`], so a stored
//! response is judged on the same field at both times.
//!
//! * Targeted fields (`CDN-Cache-Control`, or an operator's own list, first match wins) are
//!   Structured Field Dictionaries (RFC 8941): keys are case-sensitive lower-case tokens,
//!   no spaces around `=`, and a field that does not parse is ignored as a whole (RFC 9213
//!   §2.1), as is an empty one. A directive with a value of the wrong type is ignored, except
//!   that restrictive flags (`no-store`, `must-revalidate`, `proxy-revalidate`) count with any
//!   value but `?0`, the same cautious side the `Cache-Control` parser takes. Integers past
//!   2^31 clamp to 2^31 (RFC 9111 §1.2.2), including those past RFC 8941's 15 digits, which
//!   would otherwise make the whole field fail to parse.
//! * `Surrogate-Control` is read for `max-age` and `no-store` only (its `content="..."` form is
//!   ignored, and so are directives targeted at a device with `;name`, since this cache sends
//!   no `Surrogate-Capability`); it governs only when it has one of the two.
//! * The governing field replaces `Cache-Control` and `Expires` as a whole (RFC 9213 §2.1: the
//!   cache "MUST ignore the Cache-Control and Expires header fields"); those still go
//!   downstream unchanged for browsers.

use super::cache_control::{
    field_names_scope, members, CacheControl, FieldScope, DELTA_SECONDS_MAX,
};

/// The response fields that can carry cache directives, as raw field lines in order.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseDirectives<'a> {
    /// The lines of each configured targeted field, in the configured order (empty for an
    /// absent field).
    pub targeted: &'a [Vec<&'a [u8]>],
    /// Every `Surrogate-Control` line.
    pub surrogate_control: &'a [&'a [u8]],
    /// Every `Cache-Control` line.
    pub cache_control: &'a [&'a [u8]],
}

/// Which field the governing directives came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectiveSource {
    /// The targeted field at this index of the configured list.
    Targeted(usize),
    /// `Surrogate-Control`.
    SurrogateControl,
    /// `Cache-Control` (and `Expires`).
    CacheControl,
}

impl DirectiveSource {
    /// A short label for logs and the debug header.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectiveSource::Targeted(_) => "targeted",
            DirectiveSource::SurrogateControl => "surrogate-control",
            DirectiveSource::CacheControl => "cache-control",
        }
    }
}

/// The directives this cache follows for one response, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Governing {
    /// The directives, in the form the `Cache-Control` parser produces.
    pub directives: CacheControl,
    /// Their field.
    pub source: DirectiveSource,
}

impl Governing {
    /// `Expires` counts only when `Cache-Control` governs (RFC 9213 §2.1).
    pub fn honours_expires(&self) -> bool {
        self.source == DirectiveSource::CacheControl
    }
}

/// The directives that govern a response: the first present and valid targeted field, else
/// `Surrogate-Control` when it has `max-age` or `no-store`, else `Cache-Control`.
pub fn governing_directives(fields: &ResponseDirectives<'_>) -> Governing {
    for (i, lines) in fields.targeted.iter().enumerate() {
        if let Some(directives) = parse_targeted(lines) {
            return Governing {
                directives,
                source: DirectiveSource::Targeted(i),
            };
        }
    }
    if let Some(directives) = parse_surrogate_control(fields.surrogate_control) {
        return Governing {
            directives,
            source: DirectiveSource::SurrogateControl,
        };
    }
    Governing {
        directives: CacheControl::parse(fields.cache_control.iter().copied()),
        source: DirectiveSource::CacheControl,
    }
}

/// A targeted field's directives, or None when it is absent, empty or not a valid Structured
/// Field Dictionary. Several lines are one Dictionary joined by commas (RFC 8941 §4.2).
pub fn parse_targeted(lines: &[&[u8]]) -> Option<CacheControl> {
    let joined = lines.join(&b", "[..]);
    if joined.iter().all(|b| matches!(b, b' ' | b'\t' | b',')) {
        return None;
    }
    let dict = sfv::Parser::parse_dictionary(&joined)
        .or_else(|_| sfv::Parser::parse_dictionary(&clamp_long_integers(&joined)))
        .ok()?;
    if dict.is_empty() {
        return None;
    }
    let mut cc = CacheControl::default();
    for (key, entry) in &dict {
        let sfv::ListEntry::Item(item) = entry else {
            // An inner list is no directive's value.
            continue;
        };
        apply(&mut cc, key, &item.bare_item);
    }
    Some(cc)
}

fn apply(cc: &mut CacheControl, key: &str, value: &sfv::BareItem) {
    use sfv::BareItem;
    let seconds = || match value {
        BareItem::Integer(n) if *n >= 0 => {
            Some(u32::try_from((*n).min(i64::from(DELTA_SECONDS_MAX))).unwrap_or(DELTA_SECONDS_MAX))
        }
        _ => None,
    };
    // Restrictive flags count unless explicitly false; permissive ones only when true.
    let restrictive = !matches!(value, BareItem::Boolean(false));
    let permissive = matches!(value, BareItem::Boolean(true));
    let scope = || match value {
        BareItem::Boolean(false) => None,
        BareItem::String(names) => Some(field_names_scope(names.as_bytes())),
        _ => Some(FieldScope::All),
    };
    match key {
        "max-age" => cc.max_age = seconds(),
        "s-maxage" => cc.s_maxage = seconds(),
        "stale-while-revalidate" => cc.stale_while_revalidate = seconds(),
        "stale-if-error" => cc.stale_if_error = seconds(),
        "no-store" => cc.no_store = restrictive,
        "must-revalidate" => cc.must_revalidate = restrictive,
        "proxy-revalidate" => cc.proxy_revalidate = restrictive,
        "public" => cc.public = permissive,
        "immutable" => cc.immutable = permissive,
        "private" => cc.private = scope(),
        "no-cache" => cc.no_cache = scope(),
        _ => {}
    }
}

/// RFC 8941 Integers have at most 15 digits; a longer run of digits outside a String is
/// replaced by 2^31 so that a huge `max-age` clamps (RFC 9111 §1.2.2) instead of voiding the
/// field. A longer number is anything but a clamped integer only when it has a fraction,
/// which still fails to parse after the rewrite.
fn clamp_long_integers(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut in_string = false;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if in_string {
            out.push(b);
            if b == b'\\' {
                if let Some(&next) = input.get(i + 1) {
                    out.push(next);
                    i += 1;
                }
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
        }
        if b.is_ascii_digit() && !out.last().is_some_and(|p: &u8| p.is_ascii_alphanumeric()) {
            let end = i + input[i..].iter().take_while(|d| d.is_ascii_digit()).count();
            if end - i > 15 && input.get(end) != Some(&b'.') {
                out.extend_from_slice(DELTA_SECONDS_MAX.to_string().as_bytes());
            } else {
                out.extend_from_slice(&input[i..end]);
            }
            i = end;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// `Surrogate-Control`'s `max-age` and `no-store`, or None when it has neither.
pub fn parse_surrogate_control(lines: &[&[u8]]) -> Option<CacheControl> {
    if lines.is_empty() {
        return None;
    }
    // A directive with `;device` is targeted at that device (Edge Architecture 1.0 §3); this
    // cache announces no device name, so none is meant for it.
    let untargeted = members(lines.iter().copied()).filter(|m| !m.contains(&b';'));
    let all = CacheControl::parse(untargeted);
    if all.max_age.is_none() && !all.no_store {
        return None;
    }
    Some(CacheControl {
        max_age: all.max_age,
        no_store: all.no_store,
        ..CacheControl::default()
    })
}

#[cfg(test)]
#[path = "targeted_tests.rs"]
mod tests;
