//! `GET /cache?<selector>`: what the store holds for a URL, an origin, a host, a prefix or a
//! tag, one JSON object per entry. The selector is the purge selector, read by the same code
//! and rewritten by the routes' `key_query` the same way (see [`crate::purge_scope`]).

use std::time::SystemTime;

use cors_edge_core::inspect::{self, InspectQuery};
use cors_edge_store::ListedEntry;
use serde_json::{json, Map, Value};

use crate::state::SharedState;

/// The answer to `GET /cache?<query>`: status and JSON.
pub fn inspect(state: &SharedState, query: Option<&str>) -> (u16, Value) {
    let InspectQuery { selector, limit } = match inspect::parse_query(query) {
        Ok(parsed) => parsed,
        Err(e) => return (400, json!({ "error": e.to_string() })),
    };
    let now = SystemTime::now();
    let runtime = state.runtime();
    let mut entries = Vec::new();
    let mut truncated = false;
    let mut scanned = 0;
    for selector in crate::purge_scope::keyed(&runtime, selector) {
        let listing = state
            .store
            .list(&selector, limit.saturating_sub(entries.len()), now);
        scanned += listing.scanned;
        truncated |= listing.truncated;
        // Once the limit is reached, a later spelling is listed with 0 left: its walk stops
        // at its first match, which only sets `truncated`.
        entries.extend(listing.entries.iter().map(entry_json));
    }
    (
        200,
        json!({
            "count": entries.len(),
            "limit": limit,
            "truncated": truncated,
            "scanned": scanned,
            "entries": entries,
        }),
    )
}

fn header_value(entry: &ListedEntry, name: &str) -> Option<String> {
    let lines: Vec<String> = entry
        .headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!lines.is_empty()).then(|| lines.join(", "))
}

/// A variance value as the variance holds it, made readable: `:origin` is `=` and the origin
/// or a marker for none; a header absent from the request is a marker too.
fn shown(name: &str, value: &str) -> Value {
    if value == "\0absent" {
        return Value::Null;
    }
    match (name, value.strip_prefix('=')) {
        (cors_edge_core::key::ORIGIN_VARIANCE_NAME, Some(origin)) => origin.into(),
        _ => value.into(),
    }
}

fn entry_json(entry: &ListedEntry) -> Value {
    let described = entry.listing.as_deref();
    let mut access_control = Map::new();
    for (name, value) in &entry.headers {
        let name = name.as_str();
        if name.starts_with("access-control-") {
            access_control.insert(
                name.to_string(),
                header_value(entry, name)
                    .unwrap_or_else(|| String::from_utf8_lossy(value.as_bytes()).into_owned())
                    .into(),
            );
        }
    }
    let variance: Map<String, Value> = described
        .map(|d| {
            d.variance
                .iter()
                .map(|(name, value)| (name.clone(), shown(name, value)))
                .collect()
        })
        .unwrap_or_default();
    let mut object = json!({
        "method": described.map_or("GET", |d| d.method.as_str()),
        "host": entry.tags.host,
        "url": entry.tags.path_and_query,
        "origin": entry.tags.origin,
        "variance": variance,
        "coding": header_value(entry, "content-encoding").unwrap_or_else(|| "identity".into()),
        "state": entry.state.as_str(),
        "age_secs": entry.age.as_secs(),
        "fresh_secs": entry.fresh_for.as_secs(),
        "kept_secs": entry.kept_for.as_secs(),
        "size_bytes": entry.body_bytes,
        "status": entry.status,
        "vary": header_value(entry, "vary"),
        "access_control": access_control,
        "tags": entry.tags.tags,
    });
    if let (Some((method, headers)), Value::Object(map)) =
        (described.and_then(|d| d.preflight.as_ref()), &mut object)
    {
        map.insert(
            "preflight".into(),
            json!({ "request_method": method, "request_headers": headers }),
        );
    }
    object
}
