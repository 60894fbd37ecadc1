//! Reading CORS and cache headers the way a browser and a shared cache read them.

use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, VARY};
use http::{HeaderMap, HeaderName};

/// The headers caches use to say whether they served from cache, in the order they
/// are looked at: cors-edge and Varnish/Fastly style, Cloudflare, nginx.
pub(crate) const CACHE_STATUS_HEADERS: [&str; 3] = ["x-cache", "cf-cache-status", "x-cache-status"];

/// All values of a header joined with `, ` (how a list header is read when it is sent
/// several times), or `None` when absent.
pub(crate) fn joined(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .map(|value| value.to_str().unwrap_or("<non-ascii>").trim())
        .collect();
    if values.is_empty() {
        None
    } else {
        Some(values.join(", "))
    }
}

/// Whether a comma-separated list header (across all its lines) contains `token`,
/// case-insensitively. Allocation-free because the load generator calls it per
/// response.
pub(crate) fn list_contains(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',')
                .any(|item| item.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// Whether a cache may not reuse this response across different values of the request
/// header `name`: `Vary` lists it, or `Vary: *` forbids reuse altogether.
pub(crate) fn varies_on(headers: &HeaderMap, name: &str) -> bool {
    list_contains(headers, &VARY, name) || list_contains(headers, &VARY, "*")
}

/// What an `Access-Control-Allow-Origin` says relative to the request's `Origin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcaoMatch {
    /// No ACAO: the browser will block the response for a cross-origin reader.
    Absent,
    /// `*`: any origin may read it; safe to share across origins.
    Wildcard,
    /// Names the origin the request came from.
    RequestOrigin,
    /// Names some origin, but not the request's (or the request had no `Origin`).
    OtherOrigin,
}

impl AcaoMatch {
    /// True when the ACAO names one specific origin, so the response only makes sense
    /// for that origin and a cache must keep it apart from other origins.
    pub fn is_origin_specific(self) -> bool {
        matches!(self, AcaoMatch::RequestOrigin | AcaoMatch::OtherOrigin)
    }
}

/// Classifies the ACAO of a response against the `Origin` the request sent. Several
/// ACAO lines are invalid for browsers; the worst of them decides, so a leak hidden in a
/// second line is still seen.
pub(crate) fn classify_acao(headers: &HeaderMap, sent_origin: Option<&[u8]>) -> AcaoMatch {
    let mut verdict = AcaoMatch::Absent;
    for value in headers.get_all(ACCESS_CONTROL_ALLOW_ORIGIN) {
        let allowed = value.as_bytes().trim_ascii();
        let this = if allowed == b"*" {
            AcaoMatch::Wildcard
        } else if sent_origin.is_some_and(|origin| origin == allowed) {
            AcaoMatch::RequestOrigin
        } else {
            AcaoMatch::OtherOrigin
        };
        verdict = worst(verdict, this);
    }
    verdict
}

fn worst(a: AcaoMatch, b: AcaoMatch) -> AcaoMatch {
    fn rank(m: AcaoMatch) -> u8 {
        match m {
            AcaoMatch::Absent => 0,
            AcaoMatch::Wildcard => 1,
            AcaoMatch::RequestOrigin => 2,
            AcaoMatch::OtherOrigin => 3,
        }
    }
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// The cache status a response reports, from the first cache-status header present,
/// as `(header name, value)`.
pub(crate) fn cache_status(headers: &HeaderMap) -> Option<(&'static str, String)> {
    CACHE_STATUS_HEADERS
        .iter()
        .find_map(|name| joined(headers, *name).map(|value| (*name, value)))
}

/// The first token of the first cache-status header present, without allocating
/// (the load generator calls it per response).
pub(crate) fn cache_status_token_of(headers: &HeaderMap) -> Option<&str> {
    CACHE_STATUS_HEADERS.iter().find_map(|name| {
        headers
            .get(*name)
            .map(|value| cache_status_token(value.to_str().unwrap_or("")))
    })
}

/// The first token of a cache status (`HIT` of `HIT from edge-1`, of `HIT, MISS`), so
/// statuses from different products can be counted together; callers compare it
/// case-insensitively.
pub(crate) fn cache_status_token(value: &str) -> &str {
    value
        .split([',', ' ', ';'])
        .find(|token| !token.is_empty())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    #[test]
    fn vary_tokens_are_case_insensitive_across_lines() {
        let map = headers(&[("vary", "Accept-Encoding"), ("vary", " origin , X")]);
        assert!(varies_on(&map, "Origin"));
        assert!(!varies_on(&map, "Access-Control-Request-Method"));
        assert!(varies_on(&headers(&[("vary", "*")]), "Origin"));
        assert!(!varies_on(&headers(&[("vary", "Origins")]), "Origin"));
        assert!(!varies_on(&HeaderMap::new(), "Origin"));
    }

    #[test]
    fn acao_is_judged_against_the_sent_origin() {
        let a = Some(&b"https://a.example"[..]);
        assert_eq!(classify_acao(&HeaderMap::new(), a), AcaoMatch::Absent);
        let star = headers(&[("access-control-allow-origin", "*")]);
        assert_eq!(classify_acao(&star, a), AcaoMatch::Wildcard);
        assert_eq!(classify_acao(&star, None), AcaoMatch::Wildcard);
        let named = headers(&[("access-control-allow-origin", "https://a.example")]);
        assert_eq!(classify_acao(&named, a), AcaoMatch::RequestOrigin);
        assert_eq!(
            classify_acao(&named, Some(b"https://b.example")),
            AcaoMatch::OtherOrigin
        );
        assert_eq!(classify_acao(&named, None), AcaoMatch::OtherOrigin);
        let two = headers(&[
            ("access-control-allow-origin", "https://a.example"),
            ("access-control-allow-origin", "https://b.example"),
        ]);
        assert_eq!(classify_acao(&two, a), AcaoMatch::OtherOrigin);
    }

    #[test]
    fn cache_status_comes_from_the_first_known_header() {
        let map = headers(&[("cf-cache-status", "DYNAMIC"), ("x-cache", "HIT from edge")]);
        assert_eq!(
            cache_status(&map),
            Some(("x-cache", "HIT from edge".to_string()))
        );
        assert_eq!(cache_status_token("HIT from edge"), "HIT");
        assert_eq!(cache_status_token("MISS, HIT"), "MISS");
        assert_eq!(cache_status(&HeaderMap::new()), None);
    }
}
