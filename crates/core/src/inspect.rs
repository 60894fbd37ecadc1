//! `GET /cache?<selector>` on the admin API: what is stored for a URL, an origin, a host, a
//! prefix or a tag. The selector is read by the purge reader ([`Selector::from_values`]), from
//! a query string instead of a JSON body; what the store lists per entry is described by
//! [`EntryListing`], filled in when the entry is stored.

use thiserror::Error;

use crate::purge::{Field, PurgeError, Selector};

/// Entries listed when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted: the answer is built in memory.
pub const MAX_LIMIT: usize = 10_000;

/// What an entry is, for the listing, beyond its purge tags: how it was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryListing {
    /// `GET` (which also answers `HEAD`) or `OPTIONS` for a preflight answer.
    pub method: String,
    /// A preflight's `Access-Control-Request-Method` and normalized request headers.
    pub preflight: Option<(String, String)>,
    /// The variance: each request value the entry was selected by (`:origin`, the coding,
    /// the fields its `Vary` and the route's `key_headers` name), as `(name, value)`.
    pub variance: Vec<(String, String)>,
}

/// A parsed `GET /cache` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectQuery {
    /// Empty selects every entry (listing is harmless, unlike purging).
    pub selector: Selector,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InspectError {
    #[error("{0}")]
    Selector(#[from] PurgeError),
    #[error("unknown parameter {0:?}: use origin, host, prefix, url, tag and limit")]
    Unknown(String),
    #[error("parameter {0} is given twice")]
    Repeated(String),
    #[error("parameter {name} is not valid percent-encoded UTF-8: {value:?}")]
    Encoding { name: String, value: String },
    #[error("limit must be a whole number from 1 to {MAX_LIMIT}, got {0:?}")]
    Limit(String),
}

/// Reads `url=/a%3Fx%3D1&origin=https://app.example.com&limit=10`. Values are
/// percent-decoded (a `url` with a query must encode its `?`, `&` and `=`); `+` is kept as is.
pub fn parse_query(query: Option<&str>) -> Result<InspectQuery, InspectError> {
    let mut values: [Option<String>; Field::ALL.len()] = Default::default();
    let mut limit = None;
    for piece in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, raw) = piece.split_once('=').unwrap_or((piece, ""));
        let decoded = percent_decode(raw).ok_or_else(|| InspectError::Encoding {
            name: name.to_string(),
            value: raw.to_string(),
        })?;
        let slot = if name == "limit" {
            &mut limit
        } else if let Some(field) = Field::from_name(name) {
            &mut values[field.index()]
        } else {
            return Err(InspectError::Unknown(name.to_string()));
        };
        if slot.replace(decoded).is_some() {
            return Err(InspectError::Repeated(name.to_string()));
        }
    }
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(InspectError::Limit(text)),
        },
    };
    Ok(InspectQuery {
        selector: Selector::from_values(values)?,
        limit,
    })
}

fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_read_like_purge_bodies() {
        let q = parse_query(Some("url=/x%3Fa%3D1%26b%3D2&origin=HTTPS://A.com/")).unwrap();
        assert_eq!(q.selector.url.as_deref(), Some("/x?a=1&b=2"));
        assert_eq!(q.selector.origin.as_deref(), Some("https://a.com"));
        assert_eq!(q.limit, DEFAULT_LIMIT);
        let q = parse_query(Some("prefix=/v1/&host=H.&tag=t&limit=5")).unwrap();
        assert_eq!(q.selector.host.as_deref(), Some("h"));
        assert_eq!(q.limit, 5);
        assert!(parse_query(None).unwrap().selector.is_everything());
        assert!(parse_query(Some("")).unwrap().selector.is_everything());
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        let cases = [
            ("path=/x", "unknown parameter \"path\""),
            ("url=/a&url=/b", "url is given twice"),
            ("url=x", "url must be a path starting with '/'"),
            ("prefix=/a%3Fx", "prefix must not contain a query"),
            ("origin=", "origin must not be empty"),
            ("limit=0", "limit must be a whole number from 1 to 10000"),
            ("limit=10001", "got \"10001\""),
            ("limit=-1", "limit must be"),
            ("url=/%zz", "not valid percent-encoded UTF-8"),
            ("url=/%ff", "not valid percent-encoded UTF-8"),
        ];
        for (query, wanted) in cases {
            let message = parse_query(Some(query)).unwrap_err().to_string();
            assert!(message.contains(wanted), "{query}: {message}");
        }
    }
}
