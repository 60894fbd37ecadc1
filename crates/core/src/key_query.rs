//! `routes[].cache.key_query`: how a request's query enters the cache key. It shapes the key
//! only; the upstream receives the query the client sent.
//!
//! With a rule, the query is read as `&`-separated parameters, each `name` or `name=value`.
//! Every parameter is rewritten to its RFC 3986 §6.2.2 equivalent form (percent-encoded
//! unreserved characters decoded, other percent-encodings' hex digits upper-cased; nothing else,
//! so `+` and `%20` stay different), parameters are dropped by name (`ignore`) or kept by name
//! (`only`), and, with `sort`, ordered by name with a stable sort, so a repeated parameter keeps
//! the order the client gave its values. Empty pieces (`a=1&&b=2`) carry no parameter and are
//! dropped. A query left empty leaves no `?`. Without a rule the key keeps the query as sent.

use std::borrow::Cow;

/// A name in `ignore` or `only`: exact, or a prefix when written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    /// In its RFC 3986 equivalent form, like the names it is compared with.
    name: String,
    prefix: bool,
}

impl NamePattern {
    /// A pattern as written in the config; see [`pattern_problem`] for what is refused.
    pub fn parse(written: &str) -> NamePattern {
        let (name, prefix) = match written.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (written, false),
        };
        NamePattern {
            name: equivalent_form(name).into_owned(),
            prefix,
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        if self.prefix {
            name.starts_with(&self.name)
        } else {
            name == self.name
        }
    }
}

/// Why a name cannot be used in `ignore` or `only`, if it cannot.
pub fn pattern_problem(written: &str) -> Option<&'static str> {
    let stem = written.strip_suffix('*').unwrap_or(written);
    if written.is_empty() {
        Some("is empty")
    } else if stem.contains('*') {
        Some("may contain '*' only as its last character (a prefix, as in utm_*)")
    } else if written.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        Some("contains whitespace, a control character or a non-ASCII byte (percent-encode it)")
    } else if written.contains(['&', '=', '#', '?']) {
        Some("is not a parameter name: it contains '&', '=', '#' or '?'")
    } else {
        None
    }
}

/// Which parameters enter the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyQueryFilter {
    /// Every parameter.
    All,
    /// Every parameter but those matching one of these.
    Ignore(Vec<NamePattern>),
    /// Only the parameters matching one of these.
    Only(Vec<NamePattern>),
}

/// A compiled `key_query` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyQuery {
    pub sort: bool,
    pub filter: KeyQueryFilter,
}

impl KeyQuery {
    fn keeps(&self, name: &str) -> bool {
        match &self.filter {
            KeyQueryFilter::All => true,
            KeyQueryFilter::Ignore(patterns) => !patterns.iter().any(|p| p.matches(name)),
            KeyQueryFilter::Only(patterns) => patterns.iter().any(|p| p.matches(name)),
        }
    }

    /// The query as it enters the key (without the `?`), from the query as sent.
    pub fn normalize_query(&self, query: &str) -> String {
        let mut params: Vec<(usize, Cow<'_, str>)> = query
            .split('&')
            .filter(|piece| !piece.is_empty())
            .map(|piece| {
                let piece = equivalent_form(piece);
                let name_len = piece.find('=').unwrap_or(piece.len());
                (name_len, piece)
            })
            .filter(|(name_len, piece)| self.keeps(&piece[..*name_len]))
            .collect();
        if self.sort {
            // `sort_by` is stable: values of a repeated name keep their order.
            params.sort_by(|(a_len, a), (b_len, b)| a[..*a_len].cmp(&b[..*b_len]));
        }
        let mut out = String::with_capacity(query.len());
        for (i, (_, piece)) in params.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(piece);
        }
        out
    }

    /// The path and query as they enter the key: the path untouched, the query normalized.
    pub fn key_target<'a>(&self, path_and_query: &'a str) -> Cow<'a, str> {
        let Some((path, query)) = path_and_query.split_once('?') else {
            return Cow::Borrowed(path_and_query);
        };
        let query = self.normalize_query(query);
        if query.is_empty() {
            Cow::Borrowed(path)
        } else {
            Cow::Owned(format!("{path}?{query}"))
        }
    }
}

/// The path and query as they enter the key under an optional rule (none: as sent).
pub fn key_target<'a>(rule: Option<&KeyQuery>, path_and_query: &'a str) -> Cow<'a, str> {
    match rule {
        Some(rule) => rule.key_target(path_and_query),
        None => Cow::Borrowed(path_and_query),
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §6.2.2.1-2 on one component: `%7E` becomes `~`, `%2f` becomes `%2F`, a `%` not
/// followed by two hex digits stays as it is, and nothing else changes.
pub fn equivalent_form(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| Some(hex_value(hex[0])? << 4 | hex_value(hex[1])?));
        match escaped {
            Some(value) if is_unreserved(value) => {
                out.push(char::from(value));
                i += 3;
            }
            Some(value) => {
                out.push_str(&format!("%{value:02X}"));
                i += 3;
            }
            None => {
                // Copy up to the next `%` at once, keeping multi-byte characters whole.
                let next = bytes[i + 1..]
                    .iter()
                    .position(|&b| b == b'%')
                    .map_or(bytes.len(), |at| i + 1 + at);
                out.push_str(&s[i..next]);
                i = next;
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
#[path = "key_query_tests.rs"]
mod tests;
