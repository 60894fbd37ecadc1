//! Request templates both tools build from: the base headers (Host and the user's extra
//! ones, the reserved CORS request headers refused), and one request's CORS shape, as a
//! hyper request or as HTTP/1.1 bytes.

use http::header::{ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HOST, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Empty;

use crate::net::http::Body;
use crate::target::TargetUrl;
use crate::ToolError;

/// Headers the tools set per request themselves: a fixed value from the command line
/// would make the checks judge answers against the wrong request.
pub(crate) fn is_reserved(name: &HeaderName) -> bool {
    name == ORIGIN
        || name == ACCESS_CONTROL_REQUEST_METHOD
        || name == ACCESS_CONTROL_REQUEST_HEADERS
}

/// `Host` from the URL plus the user's headers (a `Host` among them replaces the URL's).
/// `flag` and `instead` word the error for a reserved header.
pub(crate) fn base_headers(
    target: &TargetUrl,
    extra: &[(HeaderName, HeaderValue)],
    flag: &str,
    instead: &str,
) -> Result<HeaderMap, ToolError> {
    if let Some((name, _)) = extra.iter().find(|(name, _)| is_reserved(name)) {
        return Err(ToolError::Usage(format!(
            "{flag} {name}: the tool sets this header itself (use {instead})"
        )));
    }
    let mut headers = HeaderMap::new();
    headers.insert(HOST, target.host_header.clone());
    for (name, value) in extra {
        if name == HOST {
            headers.insert(HOST, value.clone());
        } else {
            headers.append(name.clone(), value.clone());
        }
    }
    Ok(headers)
}

/// The CORS part of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CorsShape<'a> {
    pub origin: Option<&'a HeaderValue>,
    /// For a preflight: Access-Control-Request-Method and, if any, -Headers.
    pub preflight: Option<(&'a HeaderValue, Option<&'a HeaderValue>)>,
}

impl CorsShape<'_> {
    pub fn method(&self) -> Method {
        if self.preflight.is_some() {
            Method::OPTIONS
        } else {
            Method::GET
        }
    }
}

/// A hyper request in origin form with a `Host` header (see `net::http::Sender::exchange`
/// for HTTP/2).
pub(crate) fn build(base: &HeaderMap, path: Uri, shape: CorsShape<'_>) -> Request<Body> {
    let mut request = Request::new(Empty::new());
    *request.method_mut() = shape.method();
    *request.uri_mut() = path;
    let headers = request.headers_mut();
    headers.reserve(base.len() + 3);
    for (name, value) in base {
        headers.append(name.clone(), value.clone());
    }
    if let Some(origin) = shape.origin {
        headers.insert(ORIGIN, origin.clone());
    }
    if let Some((method, requested)) = shape.preflight {
        headers.insert(ACCESS_CONTROL_REQUEST_METHOD, method.clone());
        if let Some(requested) = requested {
            headers.insert(ACCESS_CONTROL_REQUEST_HEADERS, requested.clone());
        }
    }
    request
}

/// The base headers rendered once as HTTP/1.1 header lines.
#[derive(Debug, Clone)]
pub(crate) struct H1Template {
    base_lines: Vec<u8>,
}

impl H1Template {
    pub fn new(base: &HeaderMap) -> Self {
        let mut base_lines = Vec::new();
        for (name, value) in base {
            push_line(&mut base_lines, name.as_str().as_bytes(), value.as_bytes());
        }
        H1Template { base_lines }
    }

    /// Writes the whole request head into `out` (cleared first).
    pub fn write(&self, out: &mut Vec<u8>, path: &Uri, shape: CorsShape<'_>) {
        out.clear();
        out.extend_from_slice(shape.method().as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(path.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        out.extend_from_slice(&self.base_lines);
        if let Some(origin) = shape.origin {
            push_line(out, b"origin", origin.as_bytes());
        }
        if let Some((method, requested)) = shape.preflight {
            push_line(out, b"access-control-request-method", method.as_bytes());
            if let Some(requested) = requested {
                push_line(out, b"access-control-request-headers", requested.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn push_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_headers_are_refused_and_host_replaces() {
        let target = TargetUrl::parse("http://127.0.0.1:9/x").expect("url");
        let host = (HOST, HeaderValue::from_static("api.example.com"));
        let extra = (
            HeaderName::from_static("x-test"),
            HeaderValue::from_static("1"),
        );
        let base = base_headers(&target, &[host, extra], "--header", "--origins").expect("ok");
        assert_eq!(base.get(HOST).expect("host"), "api.example.com");
        assert_eq!(base.len(), 2);
        let origin = (ORIGIN, HeaderValue::from_static("https://x.example"));
        let err = base_headers(&target, &[origin], "--header", "--origins").expect_err("reserved");
        assert!(err.to_string().contains("sets this header itself"), "{err}");
    }

    #[test]
    fn the_h1_bytes_match_the_hyper_request() {
        let target = TargetUrl::parse("http://h:8080/").expect("url");
        let base = base_headers(&target, &[], "--header", "-").expect("ok");
        let origin = HeaderValue::from_static("https://a.example");
        let method = HeaderValue::from_static("PUT");
        let requested = HeaderValue::from_static("content-type");
        let shape = CorsShape {
            origin: Some(&origin),
            preflight: Some((&method, Some(&requested))),
        };
        let path = Uri::from_static("/p/1?q=2");
        let mut out = Vec::new();
        H1Template::new(&base).write(&mut out, &path, shape);
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "OPTIONS /p/1?q=2 HTTP/1.1\r\nhost: h:8080\r\norigin: https://a.example\r\n\
             access-control-request-method: PUT\r\naccess-control-request-headers: content-type\r\n\r\n"
        );
        let request = build(&base, path, shape);
        assert_eq!(request.method(), Method::OPTIONS);
        assert_eq!(request.headers().len(), 4);
    }
}
