//! The URL both tools aim at: scheme, where to connect, what `Host` to send, which path.

use http::{HeaderValue, Uri};

use crate::ToolError;

/// `http://` or `https://`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone)]
pub(crate) struct TargetUrl {
    pub scheme: Scheme,
    /// The host as written in the URL (IPv6 in brackets), lower-cased.
    pub host: String,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// The `Host` header: the authority as written, which is what a browser sends.
    pub host_header: HeaderValue,
    /// The path without query, never empty (`/` at least).
    pub path: String,
    /// The query without `?`, if the URL had one.
    pub query: Option<String>,
}

impl TargetUrl {
    /// Parses the URL; every problem is a usage error because the URL is an argument.
    pub fn parse(url: &str) -> Result<Self, ToolError> {
        let uri: Uri = url
            .parse()
            .map_err(|err| ToolError::Usage(format!("`{url}` is not a URL: {err}")))?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            _ => {
                return Err(ToolError::Usage(format!(
                    "`{url}` must be an absolute http:// or https:// URL"
                )))
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| ToolError::Usage(format!("`{url}` has no host")))?;
        if authority.as_str().contains('@') {
            return Err(ToolError::Usage(format!(
                "`{url}`: credentials in the URL are not supported"
            )));
        }
        let port = authority.port_u16().unwrap_or(match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        });
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|_| ToolError::Usage(format!("`{url}` has an invalid host")))?;
        let path = match uri.path() {
            "" => "/".to_string(),
            path => path.to_string(),
        };
        Ok(TargetUrl {
            scheme,
            host: authority.host().to_ascii_lowercase(),
            port,
            host_header,
            path,
            query: uri.query().map(str::to_string),
        })
    }

    /// The host without IPv6 brackets: what DNS, `--resolve` and SNI use.
    pub fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// Joins `suffix` onto the URL's path (one `/` between them) and keeps the URL's
    /// query unless the suffix brings its own.
    pub fn joined_path(&self, suffix: &str) -> String {
        let base = self.path.trim_end_matches('/');
        let suffix = suffix.trim_start_matches('/');
        let mut joined = format!("{base}/{suffix}");
        if !suffix.contains('?') {
            if let Some(query) = &self.query {
                joined.push('?');
                joined.push_str(query);
            }
        }
        joined
    }

    /// The path and query of the URL itself, in origin form.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_and_https_urls() {
        let target = TargetUrl::parse("http://127.0.0.1:8080/api?x=1").expect("valid");
        assert_eq!(target.scheme, Scheme::Http);
        assert_eq!((target.host.as_str(), target.port), ("127.0.0.1", 8080));
        assert_eq!(target.host_header, "127.0.0.1:8080");
        assert_eq!(target.path, "/api");
        assert_eq!(target.query.as_deref(), Some("x=1"));
        assert_eq!(target.path_and_query(), "/api?x=1");

        let bare = TargetUrl::parse("http://localhost").expect("valid");
        assert_eq!(bare.port, 80);
        assert_eq!(bare.path, "/");

        let secure = TargetUrl::parse("https://API.example.com/data").expect("valid");
        assert_eq!(secure.scheme, Scheme::Https);
        assert_eq!(
            (secure.host.as_str(), secure.port),
            ("api.example.com", 443)
        );
        assert_eq!(secure.host_header, "API.example.com");

        let v6 = TargetUrl::parse("https://[::1]:9000/").expect("valid");
        assert_eq!(v6.host, "[::1]");
        assert_eq!(v6.bare_host(), "::1");
    }

    #[test]
    fn rejects_what_it_cannot_reach() {
        for url in [
            "ftp://example.com/",
            "example.com/x",
            "/just/a/path",
            "http://u:p@h/",
        ] {
            let err = TargetUrl::parse(url).expect_err(url);
            assert_eq!(err.exit_code(), crate::exit_code::USAGE, "{url}");
        }
    }

    #[test]
    fn joins_paths_with_one_slash_and_keeps_the_query() {
        let root = TargetUrl::parse("http://h/").expect("valid");
        assert_eq!(root.joined_path("/p/1"), "/p/1");
        let api = TargetUrl::parse("http://h/api/?v=2").expect("valid");
        assert_eq!(api.joined_path("p/1"), "/api/p/1?v=2");
        assert_eq!(api.joined_path("/q?own=1"), "/api/q?own=1");
    }
}
