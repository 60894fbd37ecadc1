//! Cross-origin leak detection: what a response's ACAO and `Vary` say about whether it
//! may reach the wrong reader. One judgement for every response either tool sees.

use serde::{Deserialize, Serialize};

use crate::cors::{self, AcaoMatch, HeaderLines};

/// The kinds of cross-origin leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeakKind {
    /// `Access-Control-Allow-Origin` named an origin other than the request's: a cache
    /// served one origin's response to another.
    WrongOrigin,
    /// The ACAO named the request's origin but the response lacked `Vary: Origin`, so
    /// any cache downstream may serve it to other origins.
    MissingVaryOrigin,
    /// A request without `Origin` got an origin-specific ACAO: a response made for an
    /// origin was served from cache to someone else.
    AcaoWithoutOrigin,
}

impl LeakKind {
    pub fn describe(self) -> &'static str {
        match self {
            LeakKind::WrongOrigin => "ACAO names another origin",
            LeakKind::MissingVaryOrigin => "origin-specific ACAO without Vary: Origin",
            LeakKind::AcaoWithoutOrigin => "origin-specific ACAO on a request without Origin",
        }
    }
}

/// The leak a response shows, given the `Origin` its request sent (`None`: no `Origin`).
pub(crate) fn detect<H: HeaderLines + ?Sized>(
    headers: &H,
    sent_origin: Option<&[u8]>,
) -> Option<LeakKind> {
    match (sent_origin, cors::classify_acao(headers, sent_origin)) {
        (_, AcaoMatch::Absent | AcaoMatch::Wildcard) => None,
        (None, _) => Some(LeakKind::AcaoWithoutOrigin),
        (Some(_), AcaoMatch::OtherOrigin) => Some(LeakKind::WrongOrigin),
        (Some(_), AcaoMatch::RequestOrigin) if !cors::varies_on(headers, "origin") => {
            Some(LeakKind::MissingVaryOrigin)
        }
        (Some(_), AcaoMatch::RequestOrigin) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cors::tests::headers;

    const A: &[u8] = b"https://a.example";

    #[test]
    fn each_kind_from_synthetic_answers() {
        let reflected = headers(&[
            ("access-control-allow-origin", "https://a.example"),
            ("vary", "Accept-Encoding, Origin"),
        ]);
        assert_eq!(detect(&reflected, Some(A)), None);
        assert_eq!(
            detect(&reflected, Some(b"https://b.example")),
            Some(LeakKind::WrongOrigin)
        );
        assert_eq!(detect(&reflected, None), Some(LeakKind::AcaoWithoutOrigin));
        let no_vary = headers(&[("access-control-allow-origin", "https://a.example")]);
        assert_eq!(detect(&no_vary, Some(A)), Some(LeakKind::MissingVaryOrigin));
        let star = headers(&[("access-control-allow-origin", "*")]);
        assert_eq!(detect(&star, Some(A)), None);
        assert_eq!(detect(&star, None), None);
        assert_eq!(detect(&headers(&[]), Some(A)), None);
        let vary_star = headers(&[
            ("access-control-allow-origin", "https://a.example"),
            ("vary", "*"),
        ]);
        assert_eq!(detect(&vary_star, Some(A)), None);
    }
}
