//! `Access-Control-Request-Headers` normalization, used both as part of the preflight cache key
//! and as the list the policy checks.

use crate::header_list::members as list_members;

/// Normalizes the `Access-Control-Request-Headers` field lines of one request into a canonical
/// string: members split on commas across all lines, SP/HTAB trimmed, empty members dropped,
/// ASCII-lowercased, sorted, deduplicated, joined with `,` and no spaces (`content-type,x-b`).
///
/// That is the exact form a browser sends (Fetch's "CORS-unsafe request-header names"), so
/// browser traffic normalizes to itself and only hand-written requests change.
///
/// Members that are not valid field names (RFC 9110 tokens) are kept, lowercased, rather than
/// dropped: dropping them would give a request that asks for `x-a, bad name` the same preflight
/// cache key and answer as one that asks for `x-a` alone. Kept, they can never match a policy
/// (names in a policy are validated tokens), so the preflight is denied. Bytes that are not UTF-8
/// become U+FFFD. The result is idempotent: normalizing it again returns it unchanged.
pub fn normalize_request_headers<'a, I>(field_values: I) -> String
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut names: Vec<String> = list_members(field_values)
        .map(|member| String::from_utf8_lossy(member).to_ascii_lowercase())
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

/// The members of an already normalized (or hand-written) header list, for checking each one.
pub(crate) fn request_header_names(normalized: &str) -> impl Iterator<Item = &[u8]> {
    list_members([normalized.as_bytes()])
}
