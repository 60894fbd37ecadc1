//! Cache keys. A key is a sequence of length-framed components, so no choice of path, host or
//! header value can make two different requests collide (`/a` + `b` never equals `/ab` + ``).
//!
//! Objects (GET and HEAD share one) are keyed by route, host and path with query; the request's
//! `Origin` is not in the primary key but in the variance, because whether a response depends on
//! the origin is only known from the response (`Access-Control-Allow-Origin: *` without
//! `Vary: Origin` is shared by every origin). Preflights are keyed by everything that can change
//! their answer: route, host, path, `Origin`, the requested method and the normalized requested
//! headers. The kind is the first component, so an `OPTIONS` answer can never be served for a
//! `GET` (pingora#265).

/// Which family of cached answers a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A GET or HEAD response (HEAD is answered from the stored GET).
    Object,
    /// A CORS preflight answer.
    Preflight,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Object => "object",
            KeyKind::Preflight => "preflight",
        }
    }
}

/// The preflight-only parts of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreflightParts<'a> {
    pub origin: &'a [u8],
    /// `Access-Control-Request-Method`, compared byte for byte: methods are case-sensitive.
    pub request_method: &'a [u8],
    /// Output of [`crate::cors::normalize_request_headers`].
    pub request_headers: &'a str,
}

/// Everything the primary key is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyParts<'a> {
    pub route: &'a str,
    /// Arrived over TLS: an upstream may answer `http` and `https` differently (a redirect to
    /// https), so they never share an entry, as in nginx's default `$scheme` key.
    pub tls: bool,
    /// Request host as sent; normalized by [`key_host`] inside [`primary_key`].
    pub host: &'a str,
    pub path_and_query: &'a str,
    pub preflight: Option<PreflightParts<'a>>,
}

impl KeyParts<'_> {
    pub fn kind(&self) -> KeyKind {
        if self.preflight.is_some() {
            KeyKind::Preflight
        } else {
            KeyKind::Object
        }
    }
}

pub(crate) fn push_framed(buf: &mut Vec<u8>, part: &[u8]) {
    let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&part[..len as usize]);
}

/// Host names are case-insensitive and may carry a trailing dot; both spellings are one site.
pub fn normalize_host(host: &str) -> String {
    let lower = host.trim().to_ascii_lowercase();
    match lower.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || name.starts_with('[') => {
            // `example.com.:8080` and `example.com:8080` are the same authority.
            if name.ends_with('.') && port.bytes().all(|b| b.is_ascii_digit()) {
                format!("{}:{}", name.trim_end_matches('.'), port)
            } else {
                lower
            }
        }
        _ if lower.ends_with('.') => lower.trim_end_matches('.').to_string(),
        _ => lower,
    }
}

/// The host as it enters the key: [`normalize_host`], then the scheme's default port dropped
/// (`example.com:80` over HTTP and `example.com:443` over TLS are `example.com`), so one site
/// is one set of entries however the client spelled its `Host`.
pub fn key_host(host: &str, tls: bool) -> String {
    let mut host = normalize_host(host);
    let default_port = if tls { ":443" } else { ":80" };
    if host.len() > default_port.len() && host.ends_with(default_port) {
        let name = &host[..host.len() - default_port.len()];
        // `[::1]:80` loses its port; a bare IPv6 address (`::80`) has none to lose.
        let bracketed = name.starts_with('[') && name.ends_with(']');
        if bracketed || !name.contains(':') {
            host.truncate(name.len());
        }
    }
    host
}

/// The primary key bytes for a request.
pub fn primary_key(parts: &KeyParts<'_>) -> Vec<u8> {
    let host = key_host(parts.host, parts.tls);
    let mut key =
        Vec::with_capacity(32 + parts.route.len() + host.len() + parts.path_and_query.len());
    push_framed(&mut key, parts.kind().as_str().as_bytes());
    push_framed(&mut key, parts.route.as_bytes());
    push_framed(
        &mut key,
        if parts.tls {
            &b"https"[..]
        } else {
            &b"http"[..]
        },
    );
    push_framed(&mut key, host.as_bytes());
    push_framed(&mut key, parts.path_and_query.as_bytes());
    if let Some(preflight) = parts.preflight {
        push_framed(&mut key, preflight.origin);
        push_framed(&mut key, preflight.request_method);
        push_framed(&mut key, preflight.request_headers.as_bytes());
    }
    key
}

/// The name under which the request's origin enters the variance. It cannot clash with a
/// header named in `Vary`: header names never contain a colon.
pub const ORIGIN_VARIANCE_NAME: &str = ":origin";

/// The origin's value in the variance: a request without `Origin` is its own variant, distinct
/// from any origin, including an empty `Origin:` header.
pub fn origin_variance_value(origin: Option<&[u8]>) -> Vec<u8> {
    match origin {
        None => b"\0absent".to_vec(),
        Some(value) => {
            let mut framed = Vec::with_capacity(value.len() + 1);
            framed.push(b'=');
            framed.extend_from_slice(value);
            framed
        }
    }
}

/// Request fields named in `Vary` whose whole value is case-insensitive: language ranges
/// (RFC 4647 §2), charsets (RFC 9110 §8.3.2) and their `q` weights (§12.4.2).
/// (`Accept-Encoding` is keyed on the coding it selects, see [`crate::compression`].)
const CASE_INSENSITIVE_FIELDS: [&str; 2] = ["accept-language", "accept-charset"];

/// The value a request contributes for the header `name` (lower-case) named in `Vary`
/// (RFC 9111 §4.1). Its field lines are read as one list (RFC 9110 §5.3, §5.6.1): members
/// split at commas outside quoted strings, whitespace around them and empty members dropped,
/// joined with `", "`; so one line or two, `1,2` or ` 1 , 2 `, select the same variant, while
/// anything inside a quoted string or a member stays as sent. Fields whose values are
/// case-insensitive are lower-cased. A header absent from the request is a value of its own,
/// distinct from a present but empty one (§4.1). `Accept-Encoding` is the exception: its
/// value is `coding`, the coding the gateway chose for the request
/// ([`crate::compression::choose_coding`], made once per request), so every spelling of one
/// choice (absent and empty included: both choose identity) shares a variant.
pub fn vary_header_value<'a, I: IntoIterator<Item = &'a [u8]>>(
    name: &str,
    field_lines: I,
    coding: crate::compression::Coding,
) -> Vec<u8> {
    if name == "accept-encoding" {
        return coding.as_str().as_bytes().to_vec();
    }
    let mut lines = field_lines.into_iter().peekable();
    if lines.peek().is_none() {
        return b"\0absent".to_vec();
    }
    let mut value = Vec::new();
    for line in lines {
        for member in crate::header_list::members([line]) {
            if !value.is_empty() {
                value.extend_from_slice(b", ");
            }
            value.extend_from_slice(member);
        }
    }
    if CASE_INSENSITIVE_FIELDS.contains(&name) {
        value.make_ascii_lowercase();
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(route: &'static str, host: &'static str, path: &'static str) -> Vec<u8> {
        primary_key(&KeyParts {
            route,
            tls: false,
            host,
            path_and_query: path,
            preflight: None,
        })
    }

    #[test]
    fn framing_prevents_component_collisions() {
        assert_ne!(object("api", "a.com", "/ab"), object("api", "a.com/", "ab"));
        assert_ne!(object("ap", "ia.com", "/"), object("api", "a.com", "/"));
    }

    #[test]
    fn http_and_https_never_share_a_key() {
        let plain = object("api", "h", "/a");
        let secure = primary_key(&KeyParts {
            route: "api",
            tls: true,
            host: "h",
            path_and_query: "/a",
            preflight: None,
        });
        assert_ne!(plain, secure);
    }

    #[test]
    fn query_is_part_of_the_key() {
        assert_ne!(object("api", "h", "/a?x=1"), object("api", "h", "/a?x=2"));
        assert_ne!(object("api", "h", "/a?x=1"), object("api", "h", "/a"));
    }

    #[test]
    fn host_case_and_trailing_dot_do_not_split_the_cache() {
        assert_eq!(
            object("api", "API.Example.com", "/"),
            object("api", "api.example.com.", "/")
        );
        assert_eq!(
            object("api", "Example.com.:8080", "/"),
            object("api", "example.com:8080", "/")
        );
        assert_ne!(
            object("api", "example.com:8080", "/"),
            object("api", "example.com", "/")
        );
        assert_eq!(normalize_host("[::1]:8080"), "[::1]:8080");
    }

    #[test]
    fn the_default_port_of_the_scheme_does_not_split_the_cache() {
        let table: [(&str, bool, &str); 10] = [
            ("example.com:80", false, "example.com"),
            ("EXAMPLE.com:80", false, "example.com"),
            ("example.com.:80", false, "example.com"),
            ("example.com:443", true, "example.com"),
            ("example.com:443", false, "example.com:443"),
            ("example.com:80", true, "example.com:80"),
            ("example.com:8080", false, "example.com:8080"),
            ("[::1]:80", false, "[::1]"),
            ("[::1]", false, "[::1]"),
            ("::80", false, "::80"),
        ];
        for (host, tls, expected) in table {
            assert_eq!(key_host(host, tls), expected, "{host} tls={tls}");
        }
        let key = |host, tls| {
            primary_key(&KeyParts {
                route: "r",
                tls,
                host,
                path_and_query: "/",
                preflight: None,
            })
        };
        assert_eq!(key("Example.COM:80", false), key("example.com", false));
        assert_eq!(key("example.com:443", true), key("example.com", true));
        assert_ne!(key("example.com:8080", false), key("example.com", false));
    }

    #[test]
    fn preflight_never_shares_a_key_with_an_object() {
        let pre = primary_key(&KeyParts {
            route: "api",
            tls: false,
            host: "h",
            path_and_query: "/",
            preflight: Some(PreflightParts {
                origin: b"",
                request_method: b"",
                request_headers: "",
            }),
        });
        assert_ne!(pre, object("api", "h", "/"));
    }

    #[test]
    fn preflight_key_covers_origin_method_and_headers() {
        let key = |origin: &'static [u8], method: &'static [u8], headers: &'static str| {
            primary_key(&KeyParts {
                route: "api",
                tls: false,
                host: "h",
                path_and_query: "/x",
                preflight: Some(PreflightParts {
                    origin,
                    request_method: method,
                    request_headers: headers,
                }),
            })
        };
        let base = key(b"https://a.com", b"PUT", "content-type");
        assert_ne!(base, key(b"https://b.com", b"PUT", "content-type"));
        assert_ne!(base, key(b"https://a.com", b"DELETE", "content-type"));
        assert_ne!(base, key(b"https://a.com", b"put", "content-type"));
        assert_ne!(
            base,
            key(b"https://a.com", b"PUT", "authorization,content-type")
        );
        assert_eq!(base, key(b"https://a.com", b"PUT", "content-type"));
    }

    #[test]
    fn absent_origin_is_not_an_empty_origin() {
        assert_ne!(
            origin_variance_value(None),
            origin_variance_value(Some(b""))
        );
        assert_ne!(
            origin_variance_value(Some(b"null")),
            origin_variance_value(None)
        );
    }

    fn vary(name: &str, lines: &[&str]) -> Vec<u8> {
        // The coding as the gateway chooses it once per request, from the same lines.
        let coding = crate::compression::choose_coding(lines.iter().map(|l| l.as_bytes()));
        vary_header_value(name, lines.iter().map(|l| l.as_bytes()), coding)
    }

    #[test]
    fn vary_value_joins_lines_and_trims() {
        let one = vary("foo", &["gzip, br"]);
        assert_eq!(one, b"gzip, br");
        assert_eq!(one, vary("foo", &[" gzip", "br ", ""]));
        assert_eq!(one, vary("foo", &["gzip,br"]));
        assert_eq!(one, vary("foo", &[" gzip ,  br ", ",,"]));
        assert_eq!(one, vary("foo", &["gzip", "", "br"]));
        assert_ne!(one, vary("foo", &["br, gzip"]));
        assert_ne!(one, vary("foo", &["gzip br"]));
    }

    #[test]
    fn vary_value_keeps_quoted_strings_and_member_insides() {
        assert_ne!(vary("foo", &[r#""a , b""#]), vary("foo", &[r#""a,b""#]));
        assert_eq!(vary("foo", &[r#""a , b" , c"#]), br#""a , b", c"#);
        assert_eq!(vary("foo", &[r#""a\", b" ,c"#]), br#""a\", b", c"#);
        assert_ne!(vary("foo", &["a b"]), vary("foo", &["a  b"]));
        assert_eq!(vary("foo", &[r#"x, "open, quote"#]), br#"x, "open, quote"#);
    }

    #[test]
    fn vary_value_case_only_for_case_insensitive_fields() {
        assert_eq!(
            vary("accept-language", &["eN, De"]),
            vary("accept-language", &["en,de"])
        );
        assert_eq!(vary("accept-encoding", &["GZIP"]), b"gzip");
        // Keyed on the chosen coding: browsers' spellings of one choice share a variant.
        assert_eq!(vary("accept-encoding", &["gzip, deflate, br, zstd"]), b"br");
        assert_eq!(vary("accept-encoding", &["br;q=0, GZIP"]), b"gzip");
        assert_eq!(vary("accept-encoding", &[]), vary("accept-encoding", &[""]));
        assert_ne!(
            vary("accept-language", &["en, de"]),
            vary("accept-language", &["de, en"])
        );
        assert_ne!(
            vary("authorization", &["Bearer ABC"]),
            vary("authorization", &["bearer abc"])
        );
        assert_ne!(vary("foo", &["A"]), vary("foo", &["a"]));
    }

    #[test]
    fn absent_header_is_not_an_empty_one() {
        assert_ne!(vary("foo", &[]), vary("foo", &[""]));
        assert_eq!(vary("foo", &[""]), vary("foo", &[" , "]));
        assert!(vary("foo", &[""]).is_empty());
    }
}
