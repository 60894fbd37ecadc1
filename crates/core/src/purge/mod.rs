//! Purge selection: which cached entries a purge names. This module is the one place that knows
//! the selector fields ([`Field`]): the admin API parses a body with [`Purge::from_admin_body`],
//! the cluster sends [`Purge::to_json`] and reads it back with [`Purge::from_wire`], the CLI
//! builds its request with [`admin_body`] and its flags from [`Field::ALL`], and the store's bans
//! and index look entries up field by field through [`EntryTags::values`].

mod body;

pub use body::{admin_body, PurgeError};

/// The ways a purge can name entries. Several fields together narrow the match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Entries stored as that `Origin`'s variant.
    Origin,
    /// Entries of one request host.
    Host,
    /// Entries whose path starts with this.
    Prefix,
    /// One path with its query: every variant of it.
    Url,
    /// A surrogate key from `Surrogate-Key` or `Cache-Tag`.
    Tag,
}

impl Field {
    /// Every field, in the order errors, help texts and wire messages list them.
    pub const ALL: [Field; 5] = [
        Field::Origin,
        Field::Host,
        Field::Prefix,
        Field::Url,
        Field::Tag,
    ];

    /// The name in the admin API's JSON body, the CLI flag and the `purges_total` label.
    pub const fn name(self) -> &'static str {
        match self {
            Field::Origin => "origin",
            Field::Host => "host",
            Field::Prefix => "prefix",
            Field::Url => "url",
            Field::Tag => "tag",
        }
    }

    /// A dense index (`0..ALL.len()`) for tables kept per field.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// One line for the CLI's help.
    pub const fn help(self) -> &'static str {
        match self {
            Field::Origin => {
                "Entries stored as this Origin's variant, e.g. https://app.example.com"
            }
            Field::Host => "Entries of this request host",
            Field::Prefix => "Entries whose path starts with this, e.g. /v1/",
            Field::Url => "One path with optional query, every variant of it, e.g. /a?x=1",
            Field::Tag => "Entries the upstream tagged with this Surrogate-Key or Cache-Tag",
        }
    }

    /// The field of a selector member name (`origin`, `url`, ...).
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|field| field.name() == name)
    }

    /// Whether a selector on this field matches by equality with one of the entry's values
    /// (every field but `prefix`): the bans and the index find those by hash lookup.
    pub const fn is_exact(self) -> bool {
        !matches!(self, Field::Prefix)
    }

    /// Checks and normalizes one value as given in a purge request.
    fn normalize(self, raw: String) -> Result<String, PurgeError> {
        let field = self.name();
        if raw.trim().is_empty() {
            return Err(PurgeError::EmptyField { field });
        }
        match self {
            Field::Origin => Ok(normalize_origin(&raw)),
            Field::Host => Ok(crate::key::normalize_host(&raw)),
            Field::Tag => Ok(raw.trim().to_string()),
            Field::Prefix | Field::Url if !raw.starts_with('/') => {
                Err(PurgeError::NotAPath { field, value: raw })
            }
            Field::Prefix if raw.contains('?') => Err(PurgeError::PrefixWithQuery),
            Field::Prefix | Field::Url => Ok(raw),
        }
    }

    fn matches(self, wanted: &str, entry: &EntryTags) -> bool {
        match self {
            Field::Prefix => entry.path.starts_with(wanted),
            exact => entry.values(exact).any(|value| value == wanted),
        }
    }
}

/// Every value of `purges_total{selector}`: one per field, and `all` and `combined`.
pub fn selector_labels() -> impl Iterator<Item = &'static str> {
    Field::ALL
        .into_iter()
        .map(Field::name)
        .chain(["all", "combined"])
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

impl EntryTags {
    /// The entry's values an exact field is compared with: its origin (if any), its host, its
    /// path and query (`url`), each of its tags. `prefix` has none: it compares paths by prefix.
    pub fn values(&self, field: Field) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&str>, &[String]) = match field {
            Field::Origin => (self.origin.as_deref(), &[]),
            Field::Host => (Some(&self.host), &[]),
            Field::Url => (Some(&self.path_and_query), &[]),
            Field::Tag => (None, &self.tags),
            Field::Prefix => (None, &[]),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }
}

/// A validated purge selector: every field that is set must match (fields narrow each other);
/// none set selects everything (`"all": true`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    pub origin: Option<String>,
    pub host: Option<String>,
    pub prefix: Option<String>,
    pub url: Option<String>,
    pub tag: Option<String>,
}

/// One purge as the admin API accepts it and the cluster sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Purge {
    pub selector: Selector,
    /// Mark the matches stale (revalidated next time) instead of dropping them.
    pub soft: bool,
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
        self.fields().next().is_none()
    }

    /// The value of one field, if set.
    pub fn get(&self, field: Field) -> Option<&str> {
        match field {
            Field::Origin => self.origin.as_deref(),
            Field::Host => self.host.as_deref(),
            Field::Prefix => self.prefix.as_deref(),
            Field::Url => self.url.as_deref(),
            Field::Tag => self.tag.as_deref(),
        }
    }

    fn slot(&mut self, field: Field) -> &mut Option<String> {
        match field {
            Field::Origin => &mut self.origin,
            Field::Host => &mut self.host,
            Field::Prefix => &mut self.prefix,
            Field::Url => &mut self.url,
            Field::Tag => &mut self.tag,
        }
    }

    /// The fields that are set, with their values, in [`Field::ALL`] order.
    pub fn fields(&self) -> impl Iterator<Item = (Field, &str)> {
        Field::ALL
            .into_iter()
            .filter_map(|field| self.get(field).map(|value| (field, value)))
    }

    /// The field and value of a selector that sets exactly one field.
    pub fn single(&self) -> Option<(Field, &str)> {
        let mut fields = self.fields();
        match (fields.next(), fields.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }

    /// A bounded label for metrics: which kind of selector this is (see [`selector_labels`]).
    pub fn label(&self) -> &'static str {
        let mut fields = self.fields();
        match (fields.next(), fields.next()) {
            (None, _) => "all",
            (Some((one, _)), None) => one.name(),
            (Some(_), Some(_)) => "combined",
        }
    }

    pub fn matches(&self, entry: &EntryTags) -> bool {
        self.fields()
            .all(|(field, wanted)| field.matches(wanted, entry))
    }
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

    fn select(json: &str) -> Selector {
        Purge::from_admin_body(json.as_bytes()).unwrap().selector
    }

    #[test]
    fn field_names_indexes_and_labels_come_from_one_list() {
        for (i, field) in Field::ALL.into_iter().enumerate() {
            assert_eq!(field.index(), i);
            assert_eq!(Field::from_name(field.name()), Some(field));
        }
        let labels: Vec<_> = selector_labels().collect();
        assert_eq!(
            labels,
            ["origin", "host", "prefix", "url", "tag", "all", "combined"]
        );
    }

    #[test]
    fn labels_name_the_kind_of_selector() {
        let cases = [
            (r#"{"all": true}"#, "all"),
            (r#"{"origin": "https://a.com"}"#, "origin"),
            (r#"{"host": "h"}"#, "host"),
            (r#"{"prefix": "/a"}"#, "prefix"),
            (r#"{"url": "/a"}"#, "url"),
            (r#"{"tag": "t"}"#, "tag"),
            (r#"{"tag": "t", "url": "/a"}"#, "combined"),
        ];
        for (body, label) in cases {
            assert_eq!(select(body).label(), label, "{body}");
        }
    }

    #[test]
    fn entry_values_per_field() {
        let e = entry(Some("https://a.com"), "/a?x=1", &["t1", "t2"]);
        let values = |field| e.values(field).collect::<Vec<_>>();
        assert_eq!(values(Field::Origin), ["https://a.com"]);
        assert_eq!(values(Field::Host), ["api.example.com"]);
        assert_eq!(values(Field::Url), ["/a?x=1"]);
        assert_eq!(values(Field::Tag), ["t1", "t2"]);
        assert!(values(Field::Prefix).is_empty());
        assert!(entry(None, "/", &[]).values(Field::Origin).next().is_none());
    }

    #[test]
    fn all_selects_everything() {
        let sel = select(r#"{"all": true}"#);
        assert!(sel.is_everything());
        assert_eq!(sel.single(), None);
        assert!(sel.matches(&entry(None, "/x", &[])));
    }

    #[test]
    fn origin_matches_only_that_origins_variants() {
        let sel = select(r#"{"origin": "HTTPS://App.example.com/"}"#);
        assert_eq!(
            sel.single(),
            Some((Field::Origin, "https://app.example.com"))
        );
        assert!(sel.matches(&entry(Some("https://app.example.com"), "/a", &[])));
        assert!(!sel.matches(&entry(Some("https://other.example.com"), "/a", &[])));
        assert!(!sel.matches(&entry(None, "/a", &[])));
    }

    #[test]
    fn url_matches_exact_path_and_query_across_origins() {
        let sel = select(r#"{"url": "/a/b?x=1"}"#);
        assert!(sel.matches(&entry(Some("https://a.com"), "/a/b?x=1", &[])));
        assert!(sel.matches(&entry(None, "/a/b?x=1", &[])));
        assert!(!sel.matches(&entry(None, "/a/b?x=2", &[])));
        assert!(!sel.matches(&entry(None, "/a/b", &[])));
        let bare = select(r#"{"url": "/a/b"}"#);
        assert!(!bare.matches(&entry(None, "/a/b?x=1", &[])));
    }

    #[test]
    fn prefix_and_tag_and_host() {
        let sel = select(r#"{"prefix": "/v1/"}"#);
        assert!(sel.matches(&entry(None, "/v1/users?x=1", &[])));
        assert!(!sel.matches(&entry(None, "/v2/users", &[])));
        let tag = select(r#"{"tag": " user-7 "}"#);
        assert!(tag.matches(&entry(None, "/x", &["a", "user-7"])));
        assert!(!tag.matches(&entry(None, "/x", &["user-70"])));
        let host = select(r#"{"host": "API.example.com."}"#);
        assert!(host.matches(&entry(None, "/x", &[])));
    }

    #[test]
    fn several_fields_narrow() {
        let sel = select(r#"{"origin": "https://a.com", "prefix": "/v1"}"#);
        assert_eq!(sel.label(), "combined");
        assert_eq!(sel.single(), None);
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
