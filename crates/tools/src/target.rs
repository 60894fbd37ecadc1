//! The URL both tools aim at: where to connect, what `Host` to send, which path.

use std::net::SocketAddr;

use http::{HeaderValue, Uri};

use crate::ToolError;

/// A parsed plain-`http://` URL.
#[derive(Debug, Clone)]
pub(crate) struct TargetUrl {
    /// `host:port` to resolve and connect to.
    pub host_port: String,
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
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(ToolError::Usage(format!(
                    "`{url}`: https is not supported; point the tool at the plain http listener"
                )))
            }
            _ => {
                return Err(ToolError::Usage(format!(
                    "`{url}` must be an absolute http:// URL"
                )))
            }
        }
        let authority = uri
            .authority()
            .ok_or_else(|| ToolError::Usage(format!("`{url}` has no host")))?;
        if authority.as_str().contains('@') {
            return Err(ToolError::Usage(format!(
                "`{url}`: credentials in the URL are not supported"
            )));
        }
        let port = authority.port_u16().unwrap_or(80);
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|_| ToolError::Usage(format!("`{url}` has an invalid host")))?;
        let path = match uri.path() {
            "" => "/".to_string(),
            path => path.to_string(),
        };
        Ok(TargetUrl {
            host_port: format!("{}:{port}", authority.host()),
            host_header,
            path,
            query: uri.query().map(str::to_string),
        })
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

    /// Resolves the host once, up front, so connections never wait on DNS.
    pub async fn resolve(&self) -> Result<SocketAddr, ToolError> {
        let mut addrs = tokio::net::lookup_host(&self.host_port)
            .await
            .map_err(|err| ToolError::Resolve {
                host: self.host_port.clone(),
                reason: err.to_string(),
            })?;
        addrs.next().ok_or_else(|| ToolError::Resolve {
            host: self.host_port.clone(),
            reason: "no addresses".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_http_urls() {
        let target = TargetUrl::parse("http://127.0.0.1:8080/api?x=1").expect("valid");
        assert_eq!(target.host_port, "127.0.0.1:8080");
        assert_eq!(target.host_header, "127.0.0.1:8080");
        assert_eq!(target.path, "/api");
        assert_eq!(target.query.as_deref(), Some("x=1"));
        assert_eq!(target.path_and_query(), "/api?x=1");

        let bare = TargetUrl::parse("http://localhost").expect("valid");
        assert_eq!(bare.host_port, "localhost:80");
        assert_eq!(bare.path, "/");

        let v6 = TargetUrl::parse("http://[::1]:9000/").expect("valid");
        assert_eq!(v6.host_port, "[::1]:9000");
    }

    #[test]
    fn rejects_what_it_cannot_reach() {
        for url in [
            "https://example.com/",
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
