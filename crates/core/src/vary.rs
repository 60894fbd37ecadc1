//! The `Vary` response header (RFC 9110 section 12.5.5), as the cache and the gateway need it.
//!
//! `Vary` is a comma-separated list of request field names that may span several field lines;
//! a member `*` anywhere means the response varies on things outside the request headers, so a
//! cache must never reuse it. Members that are not valid field names (RFC 9110 tokens) are
//! ignored: no request header can have such a name, so every request "lacks" it equally and it
//! cannot distinguish two requests — ignoring it is exactly what honouring it would do.

use std::fmt;

use crate::header_list::{is_token, members as list_members};

/// The `Vary` a preflight answer sends downstream: its grant depends on all three headers.
pub const PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// A parsed `Vary`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VaryFields {
    /// `*`: never served from cache.
    Any,
    /// Lowercase field names, sorted and deduplicated, so equal sets compare equal. Empty when the
    /// response has no (usable) `Vary`.
    Fields(Vec<String>),
}

impl VaryFields {
    pub fn is_any(&self) -> bool {
        matches!(self, VaryFields::Any)
    }

    /// Whether the response varies on `field_name` (case-insensitive). `*` varies on everything.
    pub fn names(&self, field_name: &str) -> bool {
        match self {
            VaryFields::Any => true,
            VaryFields::Fields(fields) => fields
                .iter()
                .any(|field| field.eq_ignore_ascii_case(field_name)),
        }
    }
}

impl fmt::Display for VaryFields {
    /// A `Vary` value that parses back to the same `VaryFields` (empty for no fields).
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaryFields::Any => formatter.write_str("*"),
            VaryFields::Fields(fields) => formatter.write_str(&fields.join(", ")),
        }
    }
}

/// Parses all `Vary` field lines of a response.
pub fn parse_vary<'a, I>(field_values: I) -> VaryFields
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut fields = Vec::new();
    for member in list_members(field_values) {
        if member == b"*" {
            return VaryFields::Any;
        }
        if is_token(member) {
            fields.push(String::from_utf8_lossy(member).to_ascii_lowercase());
        }
    }
    fields.sort_unstable();
    fields.dedup();
    VaryFields::Fields(fields)
}

/// Whether `Vary` names `Origin`. `Vary: *` counts: it varies on everything, Origin included.
pub fn names_origin(fields: &VaryFields) -> bool {
    fields.names("origin")
}

/// What a stored response's `Vary` and `Access-Control-Allow-Origin` lines say about the
/// requests it may answer: worked out once per stored header set, when it is stored, and read
/// by every request matched against it (the variance, the sharing rule) instead of parsing
/// `Vary` again per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVary {
    pub fields: VaryFields,
    /// Upstream mode: one stored copy serves every origin
    /// ([`crate::cors::shared_across_origins`]).
    pub shared_across_origins: bool,
}

impl StoredVary {
    pub fn of<'a, I>(vary: I, acao: &[&[u8]]) -> Self
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let fields = parse_vary(vary);
        StoredVary {
            shared_across_origins: crate::cors::shared_across_origins_given(acao, &fields),
            fields,
        }
    }
}

/// The fields a preflight answer varies on, in the order they are added to its `Vary`.
pub const PREFLIGHT_VARY_NAMES: [&str; 3] = [
    "Origin",
    "Access-Control-Request-Method",
    "Access-Control-Request-Headers",
];

/// Whether the `Vary` lines name every field of `required` (at most eight names; compared
/// case-insensitively), or are `*`: then they can be sent as they are. Allocates nothing, so a
/// hit whose stored `Vary` is already right pays only this.
pub fn names_all<'a, I>(field_values: I, required: &[&str]) -> bool
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut missing = required.len();
    let mut seen = [false; 8];
    if required.len() > seen.len() {
        return false;
    }
    for member in list_members(field_values) {
        if member == b"*" {
            return true;
        }
        for (i, name) in required.iter().enumerate() {
            if !seen[i] && member.eq_ignore_ascii_case(name.as_bytes()) {
                seen[i] = true;
                missing -= 1;
            }
        }
    }
    missing == 0
}

/// The `Vary` value to send downstream for a response that must vary on each field of
/// `required`: the upstream's names in their original order and spelling, without duplicates
/// (compared case-insensitively), with the missing ones of `required` appended in order. `*`
/// stays `*`, since it already covers everything. Invalid members are dropped, as in
/// [`parse_vary`].
pub fn vary_naming<'a, I>(field_values: I, required: &[&str]) -> String
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut names: Vec<&[u8]> = Vec::new();
    for member in list_members(field_values) {
        if member == b"*" {
            return "*".to_string();
        }
        if is_token(member) && !names.iter().any(|seen| seen.eq_ignore_ascii_case(member)) {
            names.push(member);
        }
    }
    for name in required {
        if !names
            .iter()
            .any(|seen| seen.eq_ignore_ascii_case(name.as_bytes()))
        {
            names.push(name.as_bytes());
        }
    }
    // Every name is a token, hence ASCII; lossy conversion never replaces anything here.
    names
        .iter()
        .map(|name| String::from_utf8_lossy(name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `Vary` value to send downstream for a response stored per origin: [`vary_naming`] with
/// `Origin`.
pub fn vary_with_origin<'a, I>(field_values: I) -> String
where
    I: IntoIterator<Item = &'a [u8]>,
{
    vary_naming(field_values, &["Origin"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(names: &[&str]) -> VaryFields {
        VaryFields::Fields(names.iter().map(|name| name.to_string()).collect())
    }

    /// A response's `Vary` lines and its `Access-Control-Allow-Origin` lines.
    type FieldLines<'a> = (&'a [&'a [u8]], &'a [&'a [u8]]);

    #[test]
    fn stored_vary_shares_as_the_rule_says() {
        let table: &[FieldLines] = &[
            (&[b"Origin"], &[b"*"]),
            (&[b"Accept-Encoding"], &[b"*"]),
            (&[], &[b"*"]),
            (&[b"accept-encoding, origin"], &[b"*"]),
            (&[b"Accept-Encoding"], &[b"https://a.example"]),
            (&[], &[]),
            (&[b"*"], &[b"*"]),
            (&[], &[b"*", b"*"]),
        ];
        for (vary, acao) in table {
            let stored = StoredVary::of(vary.iter().copied(), acao);
            assert_eq!(stored.fields, parse_vary(vary.iter().copied()));
            assert_eq!(
                stored.shared_across_origins,
                crate::cors::shared_across_origins(acao, vary.iter().copied()),
                "{vary:?} {acao:?}"
            );
        }
    }

    #[test]
    fn parse_vary_table() {
        let cases: &[(&[&str], VaryFields)] = &[
            (&[], fields(&[])),
            (&[""], fields(&[])),
            (&["Origin"], fields(&["origin"])),
            (
                &["Accept-Encoding, Origin"],
                fields(&["accept-encoding", "origin"]),
            ),
            (&["origin, ORIGIN,Origin"], fields(&["origin"])),
            (
                &["Origin", "Accept-Encoding"],
                fields(&["accept-encoding", "origin"]),
            ),
            (&[" , Origin ,,\t"], fields(&["origin"])),
            (&["*"], VaryFields::Any),
            (&["Origin, *"], VaryFields::Any),
            (&["Origin", " * "], VaryFields::Any),
            (&["Accept", "Origin, *, Cookie"], VaryFields::Any),
            // `a*` is a valid token, not the wildcard.
            (&["a*"], fields(&["a*"])),
            // Not field names: ignored rather than taken as `*`.
            (&["Origin, bad name, x:y"], fields(&["origin"])),
            (&["Accept\u{e9}"], fields(&[])),
        ];
        for (lines, expected) in cases {
            let parsed = parse_vary(lines.iter().map(|line| line.as_bytes()));
            assert_eq!(&parsed, expected, "Vary lines {lines:?}");
        }
    }

    #[test]
    fn non_utf8_bytes_are_ignored() {
        let lines: [&[u8]; 1] = [b"Origin, \xff\xfe, Accept"];
        assert_eq!(parse_vary(lines), fields(&["accept", "origin"]));
    }

    #[test]
    fn names_origin_table() {
        assert!(names_origin(&VaryFields::Any));
        assert!(names_origin(&fields(&["accept", "origin"])));
        assert!(!names_origin(&fields(&["accept", "origin-x"])));
        assert!(!names_origin(&fields(&[])));
    }

    #[test]
    fn vary_with_origin_table() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "Origin"),
            (&[""], "Origin"),
            (&["Accept-Encoding"], "Accept-Encoding, Origin"),
            (&["Accept-Encoding, origin"], "Accept-Encoding, origin"),
            (&["ORIGIN", "Accept"], "ORIGIN, Accept"),
            (&["Accept, accept,ACCEPT"], "Accept, Origin"),
            (&["Accept", "*"], "*"),
            (&["Accept, bad name"], "Accept, Origin"),
            (&[" , ,"], "Origin"),
        ];
        for (lines, expected) in cases {
            let value = vary_with_origin(lines.iter().map(|line| line.as_bytes()));
            assert_eq!(&value, expected, "Vary lines {lines:?}");
        }
    }

    #[test]
    fn preflight_vary_keeps_the_upstream_spelling_and_adds_what_is_missing() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&[], PREFLIGHT_VARY, false),
            (&[PREFLIGHT_VARY], PREFLIGHT_VARY, true),
            (
                &["origin, access-control-request-method, access-control-request-headers"],
                "origin, access-control-request-method, access-control-request-headers",
                true,
            ),
            (&["Origin"], PREFLIGHT_VARY, false),
            (
                &["Accept-Encoding", "Access-Control-Request-Headers"],
                "Accept-Encoding, Access-Control-Request-Headers, Origin, Access-Control-Request-Method",
                false,
            ),
            (&["*"], "*", true),
        ];
        for (lines, expected, unchanged) in cases {
            let bytes = || lines.iter().map(|line| line.as_bytes());
            assert_eq!(
                vary_naming(bytes(), &PREFLIGHT_VARY_NAMES),
                *expected,
                "Vary lines {lines:?}"
            );
            assert_eq!(
                names_all(bytes(), &PREFLIGHT_VARY_NAMES),
                *unchanged,
                "Vary lines {lines:?}"
            );
        }
        assert_eq!(PREFLIGHT_VARY_NAMES.join(", "), PREFLIGHT_VARY);
    }

    #[test]
    fn display_round_trips() {
        for parsed in [VaryFields::Any, fields(&[]), fields(&["accept", "origin"])] {
            let serialized = parsed.to_string();
            assert_eq!(parse_vary([serialized.as_bytes()]), parsed);
        }
    }

    #[test]
    fn preflight_vary_names_all_three_headers() {
        let parsed = parse_vary([PREFLIGHT_VARY.as_bytes()]);
        assert_eq!(
            parsed,
            fields(&[
                "access-control-request-headers",
                "access-control-request-method",
                "origin",
            ])
        );
    }
}
