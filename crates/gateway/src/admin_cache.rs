//! `GET /cache?<selector>`: what the store holds for a URL, an origin, a host, a prefix or a
//! tag, one JSON object per entry. The selector is the purge selector, read by the same code
//! and rewritten by the routes' `key_query` the same way (see [`crate::purge_scope`]).
//!
//! The answer is serialized straight from borrowed structs (no `serde_json::Value` per entry):
//! a listing of 10,000 entries is mostly this serialization.

use std::collections::BTreeMap;
use std::time::SystemTime;

use cors_edge_core::inspect::{self, InspectQuery};
use cors_edge_store::{ListedEntry, Listing};
use serde::Serialize;

use crate::state::SharedState;

/// One entry as listed; fields in alphabetical order, as the README shows them.
#[derive(Serialize)]
struct EntryOut<'a> {
    access_control: BTreeMap<&'a str, String>,
    age_secs: u64,
    coding: String,
    fresh_secs: u64,
    host: &'a str,
    kept_secs: u64,
    method: &'a str,
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preflight: Option<PreflightOut<'a>>,
    size_bytes: usize,
    state: &'static str,
    status: u16,
    tags: &'a [String],
    url: &'a str,
    variance: BTreeMap<&'a str, Option<&'a str>>,
    vary: Option<String>,
}

#[derive(Serialize)]
struct PreflightOut<'a> {
    request_method: &'a str,
    request_headers: &'a str,
}

#[derive(Serialize)]
struct Answer<'a> {
    /// How many entries are listed (the SPEC's `entries`).
    entries: usize,
    limit: usize,
    scanned: u64,
    truncated: bool,
    variants: Vec<EntryOut<'a>>,
}

/// The answer to `GET /cache?<query>`: status and JSON body.
pub fn inspect(state: &SharedState, query: Option<&str>) -> (u16, Vec<u8>) {
    let InspectQuery { selector, limit } = match inspect::parse_query(query) {
        Ok(parsed) => parsed,
        Err(e) => {
            return (
                400,
                serde_json::json!({ "error": e.to_string() })
                    .to_string()
                    .into_bytes(),
            )
        }
    };
    let now = SystemTime::now();
    let runtime = state.runtime();
    let mut listings: Vec<Listing> = Vec::new();
    let mut listed = 0;
    for selector in crate::purge_scope::keyed(&runtime, selector) {
        // Once the limit is reached, a later spelling is listed with 0 left: its walk stops
        // at its first match, which only sets `truncated`.
        let listing = state
            .store
            .list(&selector, limit.saturating_sub(listed), now);
        listed += listing.entries.len();
        listings.push(listing);
    }
    let variants: Vec<EntryOut<'_>> = listings
        .iter()
        .flat_map(|listing| listing.entries.iter().map(entry_out))
        .collect();
    let answer = Answer {
        entries: variants.len(),
        variants,
        limit,
        scanned: listings.iter().map(|l| l.scanned).sum(),
        truncated: listings.iter().any(|l| l.truncated),
    };
    match serde_json::to_vec(&answer) {
        Ok(body) => (200, body),
        Err(e) => (
            500,
            serde_json::json!({ "error": format!("cannot write the listing: {e}") })
                .to_string()
                .into_bytes(),
        ),
    }
}

fn header_value(entry: &ListedEntry, name: &str) -> Option<String> {
    let mut lines = entry.headers.get_all(name).iter();
    let first = lines.next()?;
    let mut value = String::from_utf8_lossy(first.as_bytes()).into_owned();
    for line in lines {
        value.push_str(", ");
        value.push_str(&String::from_utf8_lossy(line.as_bytes()));
    }
    Some(value)
}

/// A variance value as the variance holds it, made readable: `:origin` is `=` and the origin
/// or a marker for none; a header absent from the request is a marker too (shown as `null`).
fn shown<'a>(name: &str, value: &'a str) -> Option<&'a str> {
    if value == "\0absent" {
        return None;
    }
    match (name, value.strip_prefix('=')) {
        (cors_edge_core::key::ORIGIN_VARIANCE_NAME, Some(origin)) => Some(origin),
        _ => Some(value),
    }
}

fn entry_out(entry: &ListedEntry) -> EntryOut<'_> {
    let described = entry.listing.as_deref();
    let access_control = entry
        .headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("access-control-"))
        .filter_map(|name| Some((name, header_value(entry, name)?)))
        .collect();
    let variance = described
        .map(|d| {
            d.variance
                .iter()
                .map(|(name, value)| (name.as_str(), shown(name, value)))
                .collect()
        })
        .unwrap_or_default();
    EntryOut {
        access_control,
        age_secs: entry.age.as_secs(),
        coding: header_value(entry, "content-encoding").unwrap_or_else(|| "identity".into()),
        fresh_secs: entry.fresh_for.as_secs(),
        host: &entry.tags.host,
        kept_secs: entry.kept_for.as_secs(),
        method: described.map_or("GET", |d| d.method.as_str()),
        origin: entry.tags.origin.as_deref(),
        preflight: described
            .and_then(|d| d.preflight.as_ref())
            .map(|(method, headers)| PreflightOut {
                request_method: method,
                request_headers: headers,
            }),
        size_bytes: entry.body_bytes,
        state: entry.state.as_str(),
        status: entry.status,
        tags: &entry.tags.tags,
        url: &entry.tags.path_and_query,
        variance,
        vary: header_value(entry, "vary"),
    }
}
