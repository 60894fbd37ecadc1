//! "Why was this a MISS?": the record of a request, written into one response header
//! (`X-Cors-Edge-Debug`) for a request that sent the admin token in that header or came
//! through a route with `debug: true`, like Fastly's `Fastly-Debug`.

use std::fmt::Write;

use super::record::{RequestRecord, Routed, StorageVerdict};
use crate::runtime::CorsMode;

/// Header values are visible ASCII; whatever else a client sent is shown as `?`.
fn visible(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) && b != b'"' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// Bounded so a debug answer never passes the header limits of clients and proxies.
const MAX_DEBUG_HEADER: usize = 4096;

/// The debug header's value: `; `-separated `name=value` facts.
pub fn describe(record: &RequestRecord) -> String {
    let mut out = String::new();
    let status = record.cache_status.map_or("-", |s| s.as_str());
    let _ = write!(out, "status={status}");
    if let Some(route) = record.route() {
        let mode = match route.cors_mode {
            CorsMode::Upstream => "upstream",
            CorsMode::Edge => "edge",
        };
        let _ = write!(out, "; route={}; cors_mode={mode}", route.name);
    }
    if let Some(Routed { facts, key, .. }) = &record.routed {
        let _ = write!(
            out,
            "; kind={}; origin={}",
            facts.kind.as_str(),
            facts
                .origin
                .as_deref()
                .map_or_else(|| "-".to_string(), |o| format!("\"{}\"", visible(o)))
        );
        let _ = write!(
            out,
            "; key=\"{}|{}|{}",
            if facts.tls { "https" } else { "http" },
            visible(facts.host().as_bytes()),
            visible(key.path_and_query.as_bytes())
        );
        if let Some(ask) = &facts.preflight {
            let _ = write!(
                out,
                "|{}|{}",
                visible(&ask.method),
                visible(ask.headers.as_bytes())
            );
        }
        out.push('"');
        let _ = write!(out, "; cacheable={}", facts.cacheable);
    }
    if let Some(memo) = &record.variance {
        let parts: Vec<String> = memo
            .parts
            .iter()
            .map(|(name, value)| format!("{name}=\"{}\"", visible(value)))
            .collect();
        let _ = write!(out, "; variance=[{}]", parts.join(" "));
    }
    if let Some(facts) = &record.response_cors {
        let sharing = if facts.shared_across_origins {
            "shared"
        } else {
            "per_origin"
        };
        let _ = write!(out, "; response_cors={sharing}");
        if !facts.unsafe_reasons.is_empty() {
            let reasons: Vec<&str> = facts.unsafe_reasons.iter().map(|r| r.as_str()).collect();
            let _ = write!(out, "; unsafe=[{}]", reasons.join(" "));
        }
    }
    if let Some(action) = record.hit_action() {
        let _ = write!(out, "; hit_verdict={action:?}");
    }
    match &record.storage {
        Some(StorageVerdict::Stored { fresh_for }) => {
            let _ = write!(out, "; storage=stored fresh_for={}s", fresh_for.as_secs());
        }
        Some(StorageVerdict::NotStored(reason)) => {
            let _ = write!(out, "; storage=not_stored:{}", reason.as_str());
        }
        None => {}
    }
    if let Some(outcome) = record.cors_outcome {
        let _ = write!(out, "; cors_decision={}", outcome.as_str());
    }
    if let Some(facts) = record.facts() {
        let _ = write!(out, "; coding={}", facts.coding.as_str());
    }
    if let Some(transform) = record.compression {
        let _ = write!(out, "; compression={transform}");
    }
    if record.peer.hop != cors_edge_core::cluster::Hop::Alone {
        let _ = write!(out, "; owner={}", record.peer.owner_label());
    }
    if out.len() > MAX_DEBUG_HEADER {
        let mut end = MAX_DEBUG_HEADER;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_and_quotes_are_masked() {
        assert_eq!(visible(b"a\r\nb\"c\xff"), "a??b?c?");
        assert_eq!(visible(b"https://app.example"), "https://app.example");
    }

    #[test]
    fn an_empty_record_still_describes_itself() {
        assert_eq!(describe(&RequestRecord::new()), "status=-");
    }
}
