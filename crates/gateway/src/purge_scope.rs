//! Selectors name entries as clients name URLs; the key may not. A `url` selector is the URL a
//! client sends, and a route's `cache.key_query` rewrites the query of its entries' keys (and
//! of the `url` they are indexed under), so the selector is rewritten by the same rule before
//! the store sees it. Which rule: the route the URL would take on the selector's `host`; without
//! a `host`, every route whose path prefix the URL falls under (each rule's spelling is
//! selected, so the purge reaches the entry whatever host made it).
//!
//! `prefix` compares paths, which no rule touches (a prefix with a query is refused).

use cors_edge_core::key_query;
use cors_edge_core::purge::Selector;

use crate::runtime::Runtime;

/// The selectors, as the store indexes entries, that together select what `selector` names.
pub fn keyed(runtime: &Runtime, selector: Selector) -> Vec<Selector> {
    let Some(url) = selector.url.as_deref() else {
        return vec![selector];
    };
    let path = url.split_once('?').map_or(url, |(path, _)| path);
    let rules: Vec<_> = match selector.host.as_deref() {
        Some(host) => runtime
            .route_for(host, path)
            .map(|route| route.key_query.as_ref())
            .into_iter()
            .collect(),
        None => runtime
            .routes
            .iter()
            .filter(|route| path.starts_with(route.path_prefix.as_str()))
            .map(|route| route.key_query.as_ref())
            .collect(),
    };
    let mut urls: Vec<String> = rules
        .into_iter()
        .map(|rule| key_query::key_target(rule, url).into_owned())
        .collect();
    urls.sort_unstable();
    urls.dedup();
    if urls.is_empty() {
        return vec![selector];
    }
    urls.into_iter()
        .map(|url| Selector {
            url: Some(url),
            ..selector.clone()
        })
        .collect()
}

/// Purges what `selector` names as clients name it; the entries matched.
pub fn purge(state: &crate::state::SharedState, selector: Selector, soft: bool) -> u64 {
    let runtime = state.runtime();
    keyed(&runtime, selector)
        .into_iter()
        .map(|selector| state.store.purge(selector, soft).matched)
        .sum()
}
