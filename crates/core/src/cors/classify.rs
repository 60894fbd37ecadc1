//! Which CORS role a request plays, from its method and two headers.

/// What kind of request this is as far as CORS is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// No `Origin` header and not `OPTIONS`: same-origin navigation, curl, server-to-server.
    NoOrigin,
    /// A request with `Origin` that is not `OPTIONS`: a CORS actual (or "simple") request. Browsers
    /// also send `Origin` on same-origin `POST`s; the gateway cannot tell those apart and does not
    /// need to, since CORS headers on a same-origin response are harmless.
    Cors,
    /// `OPTIONS` with both `Origin` and `Access-Control-Request-Method`: a CORS-preflight request.
    /// A present but empty or malformed `Access-Control-Request-Method` still makes it a preflight,
    /// one that [`crate::cors::CorsPolicy::preflight`] denies.
    Preflight,
    /// Any other `OPTIONS`, with or without `Origin`: not a preflight, so it goes to the upstream
    /// like any other method (for example a WebDAV or `Allow` discovery request).
    PlainOptions,
}

impl RequestKind {
    /// Stable label for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            RequestKind::NoOrigin => "no_origin",
            RequestKind::Cors => "cors",
            RequestKind::Preflight => "preflight",
            RequestKind::PlainOptions => "plain_options",
        }
    }
}

/// Classifies a request. `method` is compared case-sensitively, as HTTP methods are: browsers
/// always send `OPTIONS` in upper case, and `options` is a different (extension) method.
/// Header values are only tested for presence; their validity is the policy's business.
pub fn classify(
    method: &str,
    origin: Option<&[u8]>,
    access_control_request_method: Option<&[u8]>,
) -> RequestKind {
    match (method == "OPTIONS", origin, access_control_request_method) {
        (true, Some(_), Some(_)) => RequestKind::Preflight,
        (true, _, _) => RequestKind::PlainOptions,
        (false, Some(_), _) => RequestKind::Cors,
        (false, None, _) => RequestKind::NoOrigin,
    }
}
