//! Which request headers reach the upstream: the rule that keeps a client from poisoning the
//! cache through headers the cache key does not contain.
//!
//! Frameworks build absolute URLs, redirects and routing decisions from `X-Forwarded-Host`,
//! `Forwarded`, `X-Original-URL` and their relatives. The cache key holds the route, scheme,
//! host and path, not those headers, so an answer built from an attacker's value would be
//! stored under the plain URL and served to everyone ("Practical Web Cache Poisoning", 2018).
//! On an edge node the gateway therefore:
//!
//! - **replaces** the forwarding headers ([`FORWARDING_HEADERS`]) with its own values: the
//!   peer's address, the scheme of the listener, the request's `Host`, the listener's port. Only
//!   when the peer is in `server.trusted_proxies` (another proxy in front, like nginx's
//!   `set_real_ip_from`) are the client's values kept, `X-Forwarded-For` and `Forwarded`
//!   extended with the peer;
//! - **drops** the override headers ([`OVERRIDE_HEADERS`]) that rewrite the URL, host or
//!   scheme upstream, whoever sent them, and the method-override headers
//!   ([`METHOD_OVERRIDE_HEADERS`]) on the requests whose answers can be cached;
//! - drops the route's own `strip_request_headers`.
//!
//! The gateway applies the returned [`HeaderEdit`]s to the upstream request; nothing here
//! touches a socket.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Set by the gateway on every upstream request; a client's values are kept only from a
/// trusted proxy.
pub const FORWARDING_HEADERS: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "forwarded",
    "x-real-ip",
];

/// Request headers that make common frameworks and servers use another URL, host, scheme or
/// path than the one in the request line and `Host` (Symfony/Zend/IIS `X-Original-URL` and
/// `X-Rewrite-URL`, `X-Host`, `X-Forwarded-Server`, Rack's `X-Forwarded-Scheme` and
/// `X-Forwarded-Ssl`, Spring's `X-Forwarded-Prefix`, IIS's `Front-End-Https`, …). None of them is
/// in the cache key, so they are dropped before the upstream, from every peer, trusted or not.
pub const OVERRIDE_HEADERS: [&str; 13] = [
    "x-original-url",
    "x-rewrite-url",
    "x-override-url",
    "x-host",
    "x-original-host",
    "x-forwarded-server",
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "x-forwarded-prefix",
    "x-forwarded-path",
    "x-url-scheme",
    "front-end-https",
    "x-proxy-url",
];

/// Headers that make a framework treat a `GET` as another method: a cached `GET` answer could
/// then be a `DELETE`'s or an error ("CPDoS", 2019). Dropped on the requests whose answers are
/// cached (`GET`, `HEAD`, `OPTIONS`); an API that tunnels methods through `POST` keeps them.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Headers a route may neither strip nor add to its key: the request cannot be framed or
/// routed without them, or they are already handled.
pub const PROTECTED_HEADERS: [&str; 7] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
];

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address is a /32 or
/// a /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a `trusted_proxies` entry is not a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    NotAnAddress,
    BadPrefix {
        max: u8,
    },
    /// Bits set past the prefix: `10.1.2.3/8` probably meant `10.0.0.0/8` or `10.1.2.3/32`.
    HostBits {
        network: String,
    },
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::NotAnAddress => f.write_str(
                "is not an IP address or network (expected e.g. 10.0.0.0/8, 192.168.1.7 or 2001:db8::/32)",
            ),
            CidrError::BadPrefix { max } => {
                write!(f, "has a prefix length that is not a number from 0 to {max}")
            }
            CidrError::HostBits { network } => write!(
                f,
                "has bits set past its prefix length; write the network, {network}, or a single address without /"
            ),
        }
    }
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        let all = if width == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        all & !all.checked_shr(u32::from(prefix)).unwrap_or(0)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| CidrError::NotAnAddress)?;
        let (value, width) = bits(network);
        let prefix = match prefix {
            None => width,
            // Digits only: `u8::from_str` would also take `+8`.
            Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(CidrError::BadPrefix { max: width })
            }
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= width => p,
                _ => return Err(CidrError::BadPrefix { max: width }),
            },
        };
        if value & !mask(width, prefix) != 0 {
            let masked = value & mask(width, prefix);
            let network = match network {
                IpAddr::V4(_) => {
                    IpAddr::from(u32::try_from(masked).unwrap_or_default().to_be_bytes())
                }
                IpAddr::V6(_) => IpAddr::from(masked.to_be_bytes()),
            };
            return Err(CidrError::HostBits {
                network: format!("{network}/{prefix}"),
            });
        }
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a
    /// dual-stack `[::]` listener reports for an IPv4 peer) is compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let (value, width) = bits(ip);
        let (network, network_width) = bits(self.network);
        width == network_width && value & mask(width, self.prefix) == network
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Parses a `trusted_proxies` entry.
pub fn parse_cidr(text: &str) -> Result<Cidr, CidrError> {
    text.parse()
}

/// Why a header name given in a route cannot be used.
pub fn header_name_problem(name: &str) -> Option<&'static str> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() {
        Some("is empty")
    } else if !name.bytes().all(tchar) {
        Some("is not a header name (letters, digits and !#$%&'*+-.^_`|~, no spaces or colons)")
    } else if PROTECTED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        Some("frames or routes the request and cannot be changed by a route")
    } else {
        None
    }
}

/// The forwarding rule of one route: the trusted networks (from `server.trusted_proxies`) and
/// the route's extra headers to drop, lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardingPolicy {
    pub trusted_proxies: Vec<Cidr>,
    pub strip_request_headers: Vec<String>,
}

/// What the gateway knows about the request, besides its headers.
#[derive(Debug, Clone, Copy)]
pub struct ForwardedRequest<'a> {
    /// The TCP peer; `None` for a connection without an IP peer (a Unix socket).
    pub peer: Option<IpAddr>,
    /// Arrived on the TLS listener.
    pub tls: bool,
    /// The request's `Host` (or the request-target's authority), as sent.
    pub host: &'a str,
    /// The port of the listener the request arrived on.
    pub local_port: Option<u16>,
    pub method: &'a str,
    /// Forwarded by an authenticated node of the cluster (`cluster.peers`): its forwarding
    /// headers are the ones it set for its client, kept as a trusted proxy's are.
    pub from_cluster_peer: bool,
}

/// One change to the upstream request. Names are lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Remove every field line of this name.
    Remove(&'static str),
    /// Remove a route's `strip_request_headers` entry.
    RemoveNamed(String),
    /// Replace every field line of this name with one line.
    Set(&'static str, String),
}

impl ForwardingPolicy {
    pub fn is_trusted(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.trusted_proxies.iter().any(|net| net.contains(ip)))
    }

    /// The edits that turn the client's request headers into the upstream's. `headers` yields
    /// every request field line as (name, value); names in any case.
    pub fn upstream_edits<'h, I>(&self, facts: &ForwardedRequest<'_>, headers: I) -> Vec<HeaderEdit>
    where
        I: IntoIterator<Item = (&'h str, &'h [u8])>,
    {
        let trusted = facts.from_cluster_peer || self.is_trusted(facts.peer);
        let cacheable_method = matches!(facts.method, "GET" | "HEAD" | "OPTIONS");
        let mut sent: [Vec<&'h [u8]>; 6] = Default::default();
        let mut host_lines = 0;
        let mut edits = Vec::new();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("host") {
                host_lines += 1;
            } else if let Some(i) = FORWARDING_HEADERS
                .iter()
                .position(|known| name.eq_ignore_ascii_case(known))
            {
                sent[i].push(value);
            } else if let Some(known) = OVERRIDE_HEADERS
                .iter()
                .chain(if cacheable_method {
                    METHOD_OVERRIDE_HEADERS.iter()
                } else {
                    [].iter()
                })
                .find(|known| name.eq_ignore_ascii_case(known))
            {
                if !edits.contains(&HeaderEdit::Remove(known)) {
                    edits.push(HeaderEdit::Remove(known));
                }
            }
        }
        for name in &self.strip_request_headers {
            edits.push(HeaderEdit::RemoveNamed(name.clone()));
        }

        let peer = facts.peer.map(|ip| ip.to_canonical().to_string());
        let proto = if facts.tls { "https" } else { "http" };
        let port = facts
            .local_port
            .map(|p| p.to_string())
            .unwrap_or_else(|| if facts.tls { "443" } else { "80" }.to_string());
        // A header the trusted proxy sent, as one line (several lines are one list).
        let kept = |i: usize| -> Option<String> {
            if !trusted || sent[i].is_empty() {
                return None;
            }
            let joined: Vec<&str> = sent[i]
                .iter()
                .filter_map(|v| std::str::from_utf8(v).ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect();
            (!joined.is_empty()).then(|| joined.join(", "))
        };

        // X-Forwarded-For: the peer, after the trusted proxy's list.
        let xff = match (kept(0), &peer) {
            (Some(list), Some(peer)) => Some(format!("{list}, {peer}")),
            (Some(list), None) => Some(list),
            (None, peer) => peer.clone(),
        };
        match xff {
            Some(value) => edits.push(HeaderEdit::Set("x-forwarded-for", value)),
            None => edits.push(HeaderEdit::Remove("x-forwarded-for")),
        }
        edits.push(HeaderEdit::Set(
            "x-forwarded-proto",
            kept(1).unwrap_or_else(|| proto.to_string()),
        ));
        // The upstream sees the host the cache key holds (`Host: EXAMPLE.com:80` and
        // `Host: example.com` share an entry, so they must get one answer).
        let key_host = crate::key::key_host(facts.host, facts.tls);
        let host = if is_field_value(&key_host) {
            key_host.as_str()
        } else {
            ""
        };
        if host_lines == 1 && !host.is_empty() && host != facts.host {
            edits.push(HeaderEdit::Set("host", host.to_string()));
        }
        match kept(2) {
            Some(value) => edits.push(HeaderEdit::Set("x-forwarded-host", value)),
            None if host.is_empty() => edits.push(HeaderEdit::Remove("x-forwarded-host")),
            None => edits.push(HeaderEdit::Set("x-forwarded-host", host.to_string())),
        }
        edits.push(HeaderEdit::Set("x-forwarded-port", kept(3).unwrap_or(port)));
        // Forwarded (RFC 7239): this hop's element, after the trusted proxy's elements.
        let mut element = Vec::new();
        if let Some(peer) = &facts.peer {
            element.push(format!("for={}", forwarded_node(*peer)));
        }
        if !host.is_empty() {
            element.push(format!("host={}", forwarded_value(host)));
        }
        element.push(format!("proto={proto}"));
        let element = element.join(";");
        edits.push(HeaderEdit::Set(
            "forwarded",
            match kept(4) {
                Some(list) => format!("{list}, {element}"),
                None => element,
            },
        ));
        match (kept(5), &peer) {
            (Some(value), _) => edits.push(HeaderEdit::Set("x-real-ip", value)),
            (None, Some(peer)) => edits.push(HeaderEdit::Set("x-real-ip", peer.clone())),
            (None, None) => edits.push(HeaderEdit::Remove("x-real-ip")),
        }
        edits
    }
}

/// Visible ASCII and spaces only, so the value can be sent as a header field.
fn is_field_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
}

/// An RFC 7239 node: IPv6 in brackets and quotes.
fn forwarded_node(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

/// A token as is, anything else as a quoted string (a `host` with a port has a colon).
fn forwarded_value(value: &str) -> String {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !value.is_empty() && value.bytes().all(tchar) {
        value.to_string()
    } else {
        let mut quoted = String::with_capacity(value.len() + 2);
        quoted.push('"');
        for c in value.chars() {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('"');
        quoted
    }
}

#[cfg(test)]
mod tests;
