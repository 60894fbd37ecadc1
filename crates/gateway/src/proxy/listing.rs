//! What `GET /cache` shows of an entry beyond its purge tags, captured when it is stored: the
//! method it answers, a preflight's question, and the request values its variance was made of.

use cors_edge_core::cors::RequestKind;
use cors_edge_core::inspect::EntryListing;
use http::HeaderMap;
use pingora::http::RequestHeader;

use super::keys;
use super::record::RequestFacts;
use crate::runtime::Route;

pub fn describe(
    route: &Route,
    facts: &RequestFacts,
    req: &RequestHeader,
    stored: &HeaderMap,
) -> EntryListing {
    // The same parts the stored variance is hashed from (computed apart: Pingora asks for the
    // variance after this point).
    let mut memo = None;
    let stored_vary = cors_edge_store::stored_vary(stored);
    keys::variance(&mut memo, stored, &stored_vary, route, facts, req);
    let variance = memo
        .map(|memo| {
            memo.parts
                .iter()
                .map(|(name, value)| {
                    (
                        name.to_string(),
                        String::from_utf8_lossy(value).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let preflight = facts.preflight.as_ref().map(|ask| {
        (
            String::from_utf8_lossy(&ask.method).into_owned(),
            ask.headers.clone(),
        )
    });
    EntryListing {
        method: if facts.kind == RequestKind::Preflight {
            "OPTIONS".to_string()
        } else {
            "GET".to_string()
        },
        preflight,
        variance,
    }
}
