//! Serialized origins (the value of the `Origin` request header) and allow-list patterns.
//!
//! A browser sends its origin as `scheme "://" host [ ":" port ]`, or the literal `null` for an
//! opaque origin. Anything else in an `Origin` header did not come from a browser's fetch, so it
//! is treated as invalid and matches nothing: a lenient parser here is how allow-lists get
//! bypassed (`https://a.example.com@evil.com`, `https://example.com.evil.com`).
//!
//! Comparison is on the normalized tuple: lowercase scheme and host, default port dropped,
//! IPv6 literals in canonical form. Hosts are restricted to ASCII letters, digits, `-`, `_` and
//! `.` with no empty labels; browsers send internationalized names as punycode, so a real origin
//! never needs more, and every exotic spelling is refused instead of interpreted.

use std::collections::HashSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a value is not a serialized origin or an allow-list pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("is empty")]
    Empty,
    #[error("contains whitespace or control characters")]
    Whitespace,
    #[error("contains non-ASCII characters (write internationalized hosts in punycode)")]
    NonAscii,
    #[error("must start with a scheme followed by `://`, as in `https://app.example.com`")]
    MissingScheme,
    #[error("has an invalid scheme")]
    InvalidScheme,
    #[error("must not have a path (an origin has none, not even a trailing `/`)")]
    HasPath,
    #[error("must not have a query")]
    HasQuery,
    #[error("must not have a fragment")]
    HasFragment,
    #[error("must not have userinfo (`user@`)")]
    HasUserinfo,
    #[error("has an invalid host")]
    InvalidHost,
    #[error("has an invalid port (expected 0-65535)")]
    InvalidPort,
    #[error(
        "has `*` in a place other than the whole first label of a domain, as in `https://*.example.com`"
    )]
    MisplacedWildcard,
}

/// A host as it appears in a serialized origin, normalized for comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// Lowercase DNS name.
    Domain(String),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

impl fmt::Display for Host {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(name) => formatter.write_str(name),
            Host::Ipv4(address) => write!(formatter, "{address}"),
            Host::Ipv6(address) => write!(formatter, "[{address}]"),
        }
    }
}

/// A parsed `Origin` header value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SerializedOrigin {
    /// The literal `null`, sent for opaque origins (sandboxed iframes, `file:` pages, some
    /// redirects). Allowed only when an allow-list names `null` explicitly.
    Null,
    Tuple {
        /// Lowercase.
        scheme: String,
        host: Host,
        /// `None` when absent or equal to the scheme's default port.
        port: Option<u16>,
    },
}

impl SerializedOrigin {
    /// Parses an `Origin` request header value. Only the exact serialization a browser produces
    /// (up to letter case and an explicit default port) is accepted.
    pub fn parse(value: &[u8]) -> Result<SerializedOrigin, OriginError> {
        if value == b"null" {
            return Ok(SerializedOrigin::Null);
        }
        let parts = split_origin(value)?;
        let host = parse_host(parts.host)?;
        Ok(SerializedOrigin::Tuple {
            port: effective_port(&parts.scheme, parts.port),
            scheme: parts.scheme,
            host,
        })
    }
}

impl fmt::Display for SerializedOrigin {
    /// The normalized serialization, e.g. `https://app.example.com` or `http://[::1]:8080`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerializedOrigin::Null => formatter.write_str("null"),
            SerializedOrigin::Tuple { scheme, host, port } => {
                write!(formatter, "{scheme}://{host}")?;
                if let Some(port) = port {
                    write!(formatter, ":{port}")?;
                }
                Ok(())
            }
        }
    }
}

/// One entry of `allow_origins`, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: every origin. Only meaningful without credentials; `CorsPolicy::compile` enforces it.
    Any,
    /// `null`: the opaque origin, which many sandboxed contexts share, so it must be opted into.
    Null,
    /// One exact origin such as `https://app.example.com` or `http://localhost:3000`.
    Exact(SerializedOrigin),
    /// `scheme://*.suffix[:port]`: every strict subdomain of `suffix`, at any depth, with the same
    /// scheme and port. `suffix` itself is not matched; list it separately if wanted.
    Subdomains {
        scheme: String,
        /// Lowercase, without the leading dot.
        suffix: String,
        port: Option<u16>,
    },
}

impl OriginPattern {
    /// Parses an allow-list entry from the config.
    pub fn parse(entry: &str) -> Result<OriginPattern, OriginError> {
        match entry {
            "*" => return Ok(OriginPattern::Any),
            "null" => return Ok(OriginPattern::Null),
            _ => {}
        }
        let parts = split_origin(entry.as_bytes())?;
        let port = effective_port(&parts.scheme, parts.port);
        if let Some(suffix) = parts.host.strip_prefix(b"*.") {
            if suffix.contains(&b'*') {
                return Err(OriginError::MisplacedWildcard);
            }
            return match parse_host(suffix)? {
                Host::Domain(suffix) => Ok(OriginPattern::Subdomains {
                    scheme: parts.scheme,
                    suffix,
                    port,
                }),
                // An IP address has no subdomains.
                Host::Ipv4(_) | Host::Ipv6(_) => Err(OriginError::MisplacedWildcard),
            };
        }
        if parts.host.contains(&b'*') {
            return Err(OriginError::MisplacedWildcard);
        }
        Ok(OriginPattern::Exact(SerializedOrigin::Tuple {
            host: parse_host(parts.host)?,
            scheme: parts.scheme,
            port,
        }))
    }

    pub fn matches(&self, origin: &SerializedOrigin) -> bool {
        match (self, origin) {
            (OriginPattern::Any, _) => true,
            (OriginPattern::Null, SerializedOrigin::Null) => true,
            (OriginPattern::Exact(expected), origin) => expected == origin,
            (
                OriginPattern::Subdomains {
                    scheme,
                    suffix,
                    port,
                },
                SerializedOrigin::Tuple {
                    scheme: origin_scheme,
                    host: Host::Domain(name),
                    port: origin_port,
                },
            ) => {
                scheme == origin_scheme && port == origin_port && is_strict_subdomain(name, suffix)
            }
            _ => false,
        }
    }
}

/// A compiled `allow_origins`: exact origins in a hash set, so a list of thousands costs one
/// lookup per request; subdomain patterns and `null` are tried in turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    exact: HashSet<SerializedOrigin>,
    others: Vec<OriginPattern>,
}

impl AllowList {
    /// Adds a pattern; `false` when it was already there. `Any` belongs to the policy, not the
    /// list: it is kept with the others and matches everything.
    pub fn insert(&mut self, pattern: OriginPattern) -> bool {
        match pattern {
            OriginPattern::Exact(origin) => self.exact.insert(origin),
            other if self.others.contains(&other) => false,
            other => {
                self.others.push(other);
                true
            }
        }
    }

    pub fn matches(&self, origin: &SerializedOrigin) -> bool {
        self.exact.contains(origin) || self.others.iter().any(|pattern| pattern.matches(origin))
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.others.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginPattern::Any => formatter.write_str("*"),
            OriginPattern::Null => formatter.write_str("null"),
            OriginPattern::Exact(origin) => write!(formatter, "{origin}"),
            OriginPattern::Subdomains {
                scheme,
                suffix,
                port,
            } => {
                write!(formatter, "{scheme}://*.{suffix}")?;
                if let Some(port) = port {
                    write!(formatter, ":{port}")?;
                }
                Ok(())
            }
        }
    }
}

/// `name` ends with `.suffix` and has at least one label before it. Hosts never have empty
/// labels (see `parse_domain`), so a dot boundary check is all it takes to reject
/// `evilexample.com` and `example.com.evil.com` for suffix `example.com`.
fn is_strict_subdomain(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1
        && name.ends_with(suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

struct OriginParts<'a> {
    scheme: String,
    /// Raw, not yet validated; may contain `*` in a pattern.
    host: &'a [u8],
    port: Option<u16>,
}

/// Splits `scheme://authority` and rejects everything an origin cannot contain.
fn split_origin(value: &[u8]) -> Result<OriginParts<'_>, OriginError> {
    if value.is_empty() {
        return Err(OriginError::Empty);
    }
    if !value.is_ascii() {
        return Err(OriginError::NonAscii);
    }
    if value
        .iter()
        .any(|&byte| byte <= b' ' || byte == 0x7f || byte == b'\\')
    {
        // Backslash is here because URL parsers treat it as `/` for special schemes.
        return Err(OriginError::Whitespace);
    }
    let separator = find(value, b"://").ok_or(OriginError::MissingScheme)?;
    let scheme = &value[..separator];
    if !is_valid_scheme(scheme) {
        return Err(if scheme.is_empty() {
            OriginError::MissingScheme
        } else {
            OriginError::InvalidScheme
        });
    }
    let rest = &value[separator + 3..];
    let authority_end = rest
        .iter()
        .position(|&byte| matches!(byte, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // Userinfo is checked before the delimiter so `https://a.com@evil.com/` reports the
    // confusing part, not the path.
    if authority.contains(&b'@') {
        return Err(OriginError::HasUserinfo);
    }
    match rest.get(authority_end) {
        Some(b'/') => return Err(OriginError::HasPath),
        Some(b'?') => return Err(OriginError::HasQuery),
        Some(b'#') => return Err(OriginError::HasFragment),
        _ => {}
    }
    let (host, port) = split_host_port(authority)?;
    Ok(OriginParts {
        scheme: String::from_utf8_lossy(scheme).to_ascii_lowercase(),
        host,
        port,
    })
}

/// RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_valid_scheme(scheme: &[u8]) -> bool {
    match scheme.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphabetic()
                && rest
                    .iter()
                    .all(|&byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.'))
        }
        None => false,
    }
}

fn split_host_port(authority: &[u8]) -> Result<(&[u8], Option<u16>), OriginError> {
    let (host, port_text) = if authority.first() == Some(&b'[') {
        let close = authority
            .iter()
            .position(|&byte| byte == b']')
            .ok_or(OriginError::InvalidHost)?;
        let host = &authority[..=close];
        match &authority[close + 1..] {
            [] => (host, None),
            [b':', port @ ..] => (host, Some(port)),
            _ => return Err(OriginError::InvalidHost),
        }
    } else {
        match authority.iter().position(|&byte| byte == b':') {
            Some(colon) => (&authority[..colon], Some(&authority[colon + 1..])),
            None => (authority, None),
        }
    };
    let port = port_text.map(parse_port).transpose()?;
    Ok((host, port))
}

/// Decimal digits only; an empty port (`https://a.com:`) is not something a browser sends.
fn parse_port(text: &[u8]) -> Result<u16, OriginError> {
    if text.is_empty() || text.len() > 5 || !text.iter().all(u8::is_ascii_digit) {
        return Err(OriginError::InvalidPort);
    }
    // At most five digits, so the sum cannot overflow a u32.
    let value = text
        .iter()
        .fold(0u32, |value, digit| value * 10 + u32::from(digit - b'0'));
    u16::try_from(value).map_err(|_| OriginError::InvalidPort)
}

/// The URL standard's default ports; an explicit default port names the same origin.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ftp" => Some(21),
        _ => None,
    }
}

fn effective_port(scheme: &str, port: Option<u16>) -> Option<u16> {
    port.filter(|&port| default_port(scheme) != Some(port))
}

fn parse_host(raw: &[u8]) -> Result<Host, OriginError> {
    if let Some(inner) = raw.strip_prefix(b"[") {
        let inner = inner.strip_suffix(b"]").ok_or(OriginError::InvalidHost)?;
        // Only hex digits, colons and dots: this keeps zone identifiers (`%eth0`) out.
        if !inner
            .iter()
            .all(|&byte| byte.is_ascii_hexdigit() || byte == b':' || byte == b'.')
        {
            return Err(OriginError::InvalidHost);
        }
        let text = std::str::from_utf8(inner).map_err(|_| OriginError::InvalidHost)?;
        return text
            .parse::<Ipv6Addr>()
            .map(Host::Ipv6)
            .map_err(|_| OriginError::InvalidHost);
    }
    parse_domain(raw)
}

fn parse_domain(raw: &[u8]) -> Result<Host, OriginError> {
    if raw.contains(&b'*') {
        return Err(OriginError::MisplacedWildcard);
    }
    let labels_valid = !raw.is_empty()
        && raw.split(|&byte| byte == b'.').all(|label| {
            !label.is_empty()
                && label
                    .iter()
                    .all(|&byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        });
    if !labels_valid {
        return Err(OriginError::InvalidHost);
    }
    let name = String::from_utf8_lossy(raw).to_ascii_lowercase();
    // The URL standard reads a host whose last label is numeric as an IPv4 address and rejects
    // it if that fails, so `1.2.3.4` is an address and `a.1` or `01.2.3.4` are not origins.
    let last_label_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|label| label.bytes().all(|byte| byte.is_ascii_digit()));
    if last_label_numeric {
        return name
            .parse::<Ipv4Addr>()
            .map(Host::Ipv4)
            .map_err(|_| OriginError::InvalidHost);
    }
    Ok(Host::Domain(name))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
