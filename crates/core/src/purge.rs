//! Purge selection: which cached entries a purge request names. The admin endpoint parses the
//! JSON body into [`PurgeRequest`], [`PurgeRequest::into_selector`] validates it, and the store
//! asks [`Selector::matches`] of each entry's [`EntryTags`].

use serde::Deserialize;
use thiserror::Error;

/// The JSON body of `POST /purge`, as sent. Unknown fields are refused by the deserializer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    pub origin: Option<String>,
    pub host: Option<String>,
    pub prefix: Option<String>,
    pub url: Option<String>,
    pub tag: Option<String>,
    pub all: Option<bool>,
    #[serde(default)]
    pub soft: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PurgeError {
    #[error(
        "empty selector: give at least one of origin, host, prefix, url, tag, or \"all\": true"
    )]
    Empty,
    #[error("\"all\": true cannot be combined with other selectors")]
    AllWithOthers,
    #[error("{field} must not be empty")]
    EmptyField { field: &'static str },
    #[error("{field} must be a path starting with '/', got {value:?}")]
    NotAPath { field: &'static str, value: String },
    #[error("prefix must not contain a query ('?'); use url for one exact path and query")]
    PrefixWithQuery,
}

/// What an entry is cached under, as far as purging is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryTags {
    /// Request host, normalized by [`crate::key::normalize_host`].
    pub host: String,
    /// Path without query.
    pub path: String,
    /// Path with query, as in the cache key.
    pub path_and_query: String,
    /// The `Origin` the entry is a variant of; `None` when shared by all origins or made for a
    /// request without `Origin`.
    pub origin: Option<String>,
    /// Surrogate keys from `Surrogate-Key` and `Cache-Tag`.
    pub tags: Vec<String>,
}

/// A validated purge selector: every field that is set must match (fields narrow each other).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    pub origin: Option<String>,
    pub host: Option<String>,
    pub prefix: Option<String>,
    pub url: Option<String>,
    pub tag: Option<String>,
}

impl PurgeRequest {
    /// Validates the request; returns the selector and whether the purge is soft.
    pub fn into_selector(self) -> Result<(Selector, bool), PurgeError> {
        let all = self.all.unwrap_or(false);
        let selector = Selector {
            origin: non_empty("origin", self.origin)?.map(|o| normalize_origin(&o)),
            host: non_empty("host", self.host)?.map(|h| crate::key::normalize_host(&h)),
            prefix: path_field("prefix", self.prefix)?,
            url: path_field("url", self.url)?,
            tag: non_empty("tag", self.tag)?.map(|t| t.trim().to_string()),
        };
        if selector.prefix.as_deref().is_some_and(|p| p.contains('?')) {
            return Err(PurgeError::PrefixWithQuery);
        }
        match (all, selector.is_everything()) {
            (true, false) => Err(PurgeError::AllWithOthers),
            (false, true) => Err(PurgeError::Empty),
            _ => Ok((selector, self.soft)),
        }
    }
}

fn non_empty(field: &'static str, value: Option<String>) -> Result<Option<String>, PurgeError> {
    match value {
        Some(v) if v.trim().is_empty() => Err(PurgeError::EmptyField { field }),
        other => Ok(other),
    }
}

fn path_field(field: &'static str, value: Option<String>) -> Result<Option<String>, PurgeError> {
    match non_empty(field, value)? {
        Some(v) if !v.starts_with('/') => Err(PurgeError::NotAPath { field, value: v }),
        other => Ok(other),
    }
}

/// Origins are compared in their serialized form: scheme and host are case-insensitive and a
/// trailing slash is a common copy-paste artefact, not a different origin.
pub fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl Selector {
    /// Selects every entry (`"all": true`).
    pub fn everything() -> Self {
        Self::default()
    }

    pub fn is_everything(&self) -> bool {
        *self == Self::default()
    }

    /// A bounded label for metrics: which kind of selector this is.
    pub fn label(&self) -> &'static str {
        let fields = [
            (self.origin.is_some(), "origin"),
            (self.host.is_some(), "host"),
            (self.prefix.is_some(), "prefix"),
            (self.url.is_some(), "url"),
            (self.tag.is_some(), "tag"),
        ];
        let mut set = fields.iter().filter(|(on, _)| *on).map(|(_, name)| *name);
        match (set.next(), set.next()) {
            (None, _) => "all",
            (Some(one), None) => one,
            (Some(_), Some(_)) => "combined",
        }
    }

    pub fn matches(&self, entry: &EntryTags) -> bool {
        self.origin
            .as_deref()
            .is_none_or(|o| entry.origin.as_deref() == Some(o))
            && self.host.as_deref().is_none_or(|h| entry.host == h)
            && self
                .prefix
                .as_deref()
                .is_none_or(|p| entry.path.starts_with(p))
            && self.url.as_deref().is_none_or(|u| url_matches(u, entry))
            && self
                .tag
                .as_deref()
                .is_none_or(|t| entry.tags.iter().any(|x| x == t))
    }
}

/// `url` names one resource: with a query it must match path and query exactly; without one it
/// matches the bare path only, so `/a` does not purge `/a?page=2`.
fn url_matches(url: &str, entry: &EntryTags) -> bool {
    entry.path_and_query == url
}

/// Surrogate keys an upstream attached to a response: `Surrogate-Key` is space-separated (Fastly),
/// `Cache-Tag` comma-separated (Cloudflare, Akamai). Returned sorted and deduplicated.
pub fn surrogate_tags<'a, S, C>(surrogate_key_lines: S, cache_tag_lines: C) -> Vec<String>
where
    S: IntoIterator<Item = &'a [u8]>,
    C: IntoIterator<Item = &'a [u8]>,
{
    let mut tags: Vec<String> = Vec::new();
    for line in surrogate_key_lines {
        tags.extend(
            String::from_utf8_lossy(line)
                .split_ascii_whitespace()
                .map(str::to_string),
        );
    }
    for line in cache_tag_lines {
        tags.extend(
            String::from_utf8_lossy(line)
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string),
        );
    }
    tags.sort_unstable();
    tags.dedup();
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(origin: Option<&str>, path_and_query: &str, tags: &[&str]) -> EntryTags {
        EntryTags {
            host: "api.example.com".into(),
            path: path_and_query.split('?').next().unwrap_or_default().into(),
            path_and_query: path_and_query.into(),
            origin: origin.map(str::to_string),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn select(json: PurgeRequest) -> Selector {
        json.into_selector().unwrap().0
    }

    #[test]
    fn empty_and_contradictory_requests_are_refused() {
        assert_eq!(
            PurgeRequest::default().into_selector(),
            Err(PurgeError::Empty)
        );
        let all_false = PurgeRequest {
            all: Some(false),
            ..Default::default()
        };
        assert_eq!(all_false.into_selector(), Err(PurgeError::Empty));
        let both = PurgeRequest {
            all: Some(true),
            tag: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(both.into_selector(), Err(PurgeError::AllWithOthers));
        let blank = PurgeRequest {
            origin: Some("  ".into()),
            ..Default::default()
        };
        assert!(matches!(
            blank.into_selector(),
            Err(PurgeError::EmptyField { field: "origin" })
        ));
        let rel = PurgeRequest {
            url: Some("a/b".into()),
            ..Default::default()
        };
        assert!(matches!(
            rel.into_selector(),
            Err(PurgeError::NotAPath { .. })
        ));
        let q = PurgeRequest {
            prefix: Some("/a?x".into()),
            ..Default::default()
        };
        assert_eq!(q.into_selector(), Err(PurgeError::PrefixWithQuery));
    }

    #[test]
    fn all_selects_everything() {
        let (sel, soft) = PurgeRequest {
            all: Some(true),
            soft: true,
            ..Default::default()
        }
        .into_selector()
        .unwrap();
        assert!(soft);
        assert_eq!(sel.label(), "all");
        assert!(sel.matches(&entry(None, "/x", &[])));
    }

    #[test]
    fn origin_matches_only_that_origins_variants() {
        let sel = select(PurgeRequest {
            origin: Some("HTTPS://App.example.com/".into()),
            ..Default::default()
        });
        assert!(sel.matches(&entry(Some("https://app.example.com"), "/a", &[])));
        assert!(!sel.matches(&entry(Some("https://other.example.com"), "/a", &[])));
        assert!(!sel.matches(&entry(None, "/a", &[])));
    }

    #[test]
    fn url_matches_exact_path_and_query_across_origins() {
        let sel = select(PurgeRequest {
            url: Some("/a/b?x=1".into()),
            ..Default::default()
        });
        assert!(sel.matches(&entry(Some("https://a.com"), "/a/b?x=1", &[])));
        assert!(sel.matches(&entry(None, "/a/b?x=1", &[])));
        assert!(!sel.matches(&entry(None, "/a/b?x=2", &[])));
        assert!(!sel.matches(&entry(None, "/a/b", &[])));
        let bare = select(PurgeRequest {
            url: Some("/a/b".into()),
            ..Default::default()
        });
        assert!(!bare.matches(&entry(None, "/a/b?x=1", &[])));
    }

    #[test]
    fn prefix_and_tag_and_host() {
        let sel = select(PurgeRequest {
            prefix: Some("/v1/".into()),
            ..Default::default()
        });
        assert!(sel.matches(&entry(None, "/v1/users?x=1", &[])));
        assert!(!sel.matches(&entry(None, "/v2/users", &[])));
        let tag = select(PurgeRequest {
            tag: Some("user-7".into()),
            ..Default::default()
        });
        assert!(tag.matches(&entry(None, "/x", &["a", "user-7"])));
        assert!(!tag.matches(&entry(None, "/x", &["user-70"])));
        let host = select(PurgeRequest {
            host: Some("API.example.com".into()),
            ..Default::default()
        });
        assert!(host.matches(&entry(None, "/x", &[])));
    }

    #[test]
    fn several_fields_narrow() {
        let sel = select(PurgeRequest {
            origin: Some("https://a.com".into()),
            prefix: Some("/v1".into()),
            ..Default::default()
        });
        assert_eq!(sel.label(), "combined");
        assert!(sel.matches(&entry(Some("https://a.com"), "/v1/x", &[])));
        assert!(!sel.matches(&entry(Some("https://b.com"), "/v1/x", &[])));
        assert!(!sel.matches(&entry(Some("https://a.com"), "/v2/x", &[])));
    }

    #[test]
    fn surrogate_tags_from_both_headers() {
        let tags = surrogate_tags([&b"a  b"[..], &b"c"[..]], [&b" d, a,,e "[..]]);
        assert_eq!(tags, vec!["a", "b", "c", "d", "e"]);
    }
}
