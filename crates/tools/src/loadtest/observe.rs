//! What the load generator keeps of one response: a pure function of its status and
//! header lines (HTTP/1.1 fast path or HTTP/2 header map alike), judged for leaks by
//! [`crate::leak`]. Nothing is allocated unless the response leaked.

use http::{HeaderValue, Uri};
use serde::{Deserialize, Serialize};

use super::plan::Shape;
use crate::cors::{self, HeaderLines};
use crate::leak::{self, LeakKind};

/// Cache-status tokens longer than this are counted as `OTHER`.
const MAX_TOKEN: usize = 24;

/// One observed leak, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakExample {
    pub kind: LeakKind,
    pub method: String,
    pub path: String,
    /// The `Origin` the request sent; `None` for requests without Origin.
    pub origin_sent: Option<String>,
    /// The `Access-Control-Allow-Origin` that came back.
    pub acao_received: String,
    pub vary: Option<String>,
    pub cache_status: Option<String>,
}

/// The recorded observation of one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Observation {
    pub status: u16,
    token: [u8; MAX_TOKEN],
    /// Length of the cache-status token; `None` when the response carried none.
    token_len: Option<usize>,
    pub leak: Option<LeakKind>,
    pub example: Option<Box<LeakExample>>,
}

impl Observation {
    /// Judges one response to a request of `shape` from `origin` for `path`; a leak
    /// example is kept only when `want_example`.
    pub fn of<H: HeaderLines + ?Sized>(
        status: u16,
        headers: &H,
        shape: Shape,
        origin: &HeaderValue,
        path: &Uri,
        want_example: bool,
    ) -> Self {
        let sent_origin = match shape {
            Shape::SimpleWithoutOrigin => None,
            Shape::SimpleWithOrigin | Shape::Preflight => Some(origin.as_bytes()),
        };
        let mut token = [0; MAX_TOKEN];
        let token_len = cors::cache_status_token_of(headers).map(|value| {
            if value.len() <= MAX_TOKEN {
                token[..value.len()].copy_from_slice(value);
                value.len()
            } else {
                token[..5].copy_from_slice(b"OTHER");
                5
            }
        });
        let leak = leak::detect(headers, sent_origin);
        let example = match leak {
            Some(kind) if want_example => Some(Box::new(LeakExample {
                kind,
                method: if shape == Shape::Preflight {
                    "OPTIONS"
                } else {
                    "GET"
                }
                .to_string(),
                path: path.to_string(),
                origin_sent: sent_origin.map(|value| String::from_utf8_lossy(value).into_owned()),
                acao_received: cors::joined(headers, "access-control-allow-origin")
                    .unwrap_or_default(),
                vary: cors::joined(headers, "vary"),
                cache_status: cors::cache_status(headers).map(|(_, value)| value),
            })),
            _ => None,
        };
        Observation {
            status,
            token,
            token_len,
            leak,
            example,
        }
    }

    /// The cache-status token (`HIT`, `MISS`, …) as sent, if any.
    pub fn cache_token(&self) -> Option<&[u8]> {
        self.token_len.map(|len| &self.token[..len])
    }

    /// Served from cache: a `HIT` or `STALE` status.
    pub fn is_hit(&self) -> bool {
        self.cache_token().is_some_and(|token| {
            token.eq_ignore_ascii_case(b"HIT") || token.eq_ignore_ascii_case(b"STALE")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cors::tests::headers;

    #[test]
    fn observations_of_synthetic_answers() {
        let origin = HeaderValue::from_static("https://a.example");
        let path = Uri::from_static("/p/1");
        let good = headers(&[
            ("access-control-allow-origin", "https://a.example"),
            ("vary", "Origin"),
            ("x-cache", "hit from edge-1"),
        ]);
        let seen = Observation::of(200, &good, Shape::SimpleWithOrigin, &origin, &path, true);
        assert_eq!(seen.leak, None);
        assert!(seen.is_hit());
        assert_eq!(seen.cache_token(), Some(&b"hit"[..]));

        let seen = Observation::of(200, &good, Shape::SimpleWithoutOrigin, &origin, &path, true);
        assert_eq!(seen.leak, Some(LeakKind::AcaoWithoutOrigin));
        let example = seen.example.expect("example");
        assert_eq!(example.origin_sent, None);
        assert_eq!(example.acao_received, "https://a.example");
        assert_eq!(example.cache_status.as_deref(), Some("hit from edge-1"));

        let other = HeaderValue::from_static("https://b.example");
        let seen = Observation::of(204, &good, Shape::Preflight, &other, &path, false);
        assert_eq!(seen.leak, Some(LeakKind::WrongOrigin));
        assert!(seen.example.is_none(), "no example unless wanted");

        let odd = headers(&[("x-cache", "A-VERY-LONG-CACHE-STATUS-TOKEN-INDEED")]);
        let seen = Observation::of(200, &odd, Shape::SimpleWithOrigin, &origin, &path, true);
        assert_eq!(seen.cache_token(), Some(&b"OTHER"[..]));
        assert!(!seen.is_hit());
        let none = Observation::of(
            200,
            &headers(&[]),
            Shape::SimpleWithOrigin,
            &origin,
            &path,
            true,
        );
        assert_eq!(none.cache_token(), None);
    }
}
