//! Reading CORS and cache headers the way a browser and a shared cache read them, over
//! any set of header lines: a hyper `HeaderMap` (the probe, HTTP/2) or the borrowed lines
//! of the HTTP/1.1 fast path (the load generator), so both tools judge with one code.

use http::HeaderMap;

/// Header lines that can be looked up by (lower-case) name.
pub(crate) trait HeaderLines {
    /// The values of every line named `name`, in order.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;
}

impl HeaderLines for HeaderMap {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).iter().map(|value| value.as_bytes())
    }
}

impl<'b> HeaderLines for [httparse::Header<'b>] {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value)
    }
}

/// The headers caches use to say whether they served from cache, in the order they
/// are looked at: cors-edge and Varnish/Fastly style, Cloudflare, nginx.
pub(crate) const CACHE_STATUS_HEADERS: [&str; 3] = ["x-cache", "cf-cache-status", "x-cache-status"];

/// All values of a header joined with `, ` (how a list header is read when it is sent
/// several times), or `None` when absent.
pub(crate) fn joined<H: HeaderLines + ?Sized>(headers: &H, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .values(name)
        .map(|value| String::from_utf8_lossy(value.trim_ascii()).into_owned())
        .collect();
    if values.is_empty() {
        None
    } else {
        Some(values.join(", "))
    }
}

/// Whether a comma-separated list header (across all its lines) contains `token`,
/// case-insensitively. Allocation-free: the load generator calls it per response.
pub(crate) fn list_contains<H: HeaderLines + ?Sized>(headers: &H, name: &str, token: &str) -> bool {
    headers.values(name).any(|value| {
        value
            .split(|byte| *byte == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Whether a cache may not reuse this response across different values of the request
/// header `name`: `Vary` lists it, or `Vary: *` forbids reuse altogether.
pub(crate) fn varies_on<H: HeaderLines + ?Sized>(headers: &H, name: &str) -> bool {
    list_contains(headers, "vary", name) || list_contains(headers, "vary", "*")
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

    fn rank(self) -> u8 {
        match self {
            AcaoMatch::Absent => 0,
            AcaoMatch::Wildcard => 1,
            AcaoMatch::RequestOrigin => 2,
            AcaoMatch::OtherOrigin => 3,
        }
    }
}

/// Classifies the ACAO of a response against the `Origin` the request sent. Several
/// ACAO lines are invalid for browsers; the worst of them decides, so a leak hidden in a
/// second line is still seen.
pub(crate) fn classify_acao<H: HeaderLines + ?Sized>(
    headers: &H,
    sent_origin: Option<&[u8]>,
) -> AcaoMatch {
    let mut verdict = AcaoMatch::Absent;
    for value in headers.values("access-control-allow-origin") {
        let allowed = value.trim_ascii();
        let this = if allowed == b"*" {
            AcaoMatch::Wildcard
        } else if sent_origin.is_some_and(|origin| origin == allowed) {
            AcaoMatch::RequestOrigin
        } else {
            AcaoMatch::OtherOrigin
        };
        if this.rank() > verdict.rank() {
            verdict = this;
        }
    }
    verdict
}

/// The cache status a response reports, from the first cache-status header present,
/// as `(header name, value)`.
pub(crate) fn cache_status<H: HeaderLines + ?Sized>(headers: &H) -> Option<(&'static str, String)> {
    CACHE_STATUS_HEADERS
        .iter()
        .find_map(|name| joined(headers, name).map(|value| (*name, value)))
}

/// The first token of the first cache-status header present, without allocating.
pub(crate) fn cache_status_token_of<H: HeaderLines + ?Sized>(headers: &H) -> Option<&[u8]> {
    CACHE_STATUS_HEADERS
        .iter()
        .find_map(|name| headers.values(name).next().map(cache_status_token))
}

/// The first token of a cache status (`HIT` of `HIT from edge-1`, of `HIT, MISS`), so
/// statuses from different products can be counted together; callers compare it
/// case-insensitively.
pub(crate) fn cache_status_token(value: &[u8]) -> &[u8] {
    value
        .split(|byte| matches!(byte, b',' | b' ' | b';'))
        .find(|token| !token.is_empty())
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
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
        assert!(varies_on(&map, "origin"));
        assert!(!varies_on(&map, "access-control-request-method"));
        assert!(varies_on(&headers(&[("vary", "*")]), "origin"));
        assert!(!varies_on(&headers(&[("vary", "Origins")]), "origin"));
        assert!(!varies_on(&HeaderMap::new(), "origin"));
    }

    #[test]
    fn raw_lines_read_like_a_header_map() {
        let lines = [
            httparse::Header {
                name: "Vary",
                value: b"Accept-Encoding, Origin",
            },
            httparse::Header {
                name: "Access-Control-Allow-Origin",
                value: b"https://a.example",
            },
            httparse::Header {
                name: "X-Cache",
                value: b"HIT from edge",
            },
        ];
        let lines: &[httparse::Header<'_>] = &lines;
        assert!(varies_on(lines, "origin"));
        assert_eq!(
            classify_acao(lines, Some(b"https://a.example")),
            AcaoMatch::RequestOrigin
        );
        assert_eq!(cache_status_token_of(lines), Some(&b"HIT"[..]));
        assert_eq!(
            joined(lines, "access-control-allow-origin").as_deref(),
            Some("https://a.example")
        );
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
        assert_eq!(cache_status_token(b"HIT from edge"), b"HIT");
        assert_eq!(cache_status_token(b"MISS, HIT"), b"MISS");
        assert_eq!(cache_status(&HeaderMap::new()), None);
    }
}
