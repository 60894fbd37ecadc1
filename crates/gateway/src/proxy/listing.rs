//! What `GET /cache` shows of an entry beyond its purge tags, captured when it is stored: the
//! method it answers, a preflight's question, and the request values its variance was made of.

use cors_edge_core::cors::RequestKind;
use cors_edge_core::inspect::EntryListing;
use http::HeaderMap;
use pingora::http::RequestHeader;

use super::keys;
use super::record::{RequestFacts, VarianceMemo};
use crate::runtime::Route;

/// `memo` is the request's variance memo: the parts listed are those the stored variance is
/// hashed from, worked out here once (Pingora asks for the variance after this point, and
/// finds them remembered).
pub fn describe(
    memo: &mut Option<VarianceMemo>,
    route: &Route,
    facts: &RequestFacts,
    req: &RequestHeader,
    stored: &HeaderMap,
) -> EntryListing {
    let stored_vary = cors_edge_store::stored_vary(stored);
    keys::variance(memo, stored, &stored_vary, route, facts, req);
    let variance = memo
        .as_ref()
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
