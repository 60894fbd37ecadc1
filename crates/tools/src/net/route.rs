//! curl's `--resolve HOST:PORT:ADDR` and `--connect-to HOST1:PORT1:HOST2:PORT2`: aim at one
//! edge node or a staging address while the URL (and so `Host`, SNI and the certificate
//! check) keeps the real host name.

use std::net::{IpAddr, SocketAddr};

use crate::target::TargetUrl;
use crate::ToolError;

/// `--resolve HOST:PORT:ADDR`: connections to HOST:PORT go to ADDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRule {
    /// Lower-cased, without brackets; `*` matches any host.
    pub host: String,
    pub port: u16,
    pub addr: IpAddr,
}

/// `--connect-to HOST1:PORT1:HOST2:PORT2`; `None` parts match anything (left) or keep
/// the URL's (right).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    pub from_host: Option<String>,
    pub from_port: Option<u16>,
    pub to_host: Option<String>,
    pub to_port: Option<u16>,
}

/// Splits on `:` outside `[...]`, so IPv6 addresses can be written in brackets.
fn split_fields(text: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => {
                fields.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    fields.push(&text[start..]);
    fields
}

fn unbracket(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn port(text: &str, what: &str) -> Result<u16, String> {
    text.trim()
        .parse::<u16>()
        .map_err(|_| format!("`{text}` is not a port ({what})"))
}

/// Parses `HOST:PORT:ADDR` (ADDR may be `[v6]`; only the first of a comma list is used).
pub fn parse_resolve(text: &str) -> Result<ResolveRule, String> {
    let fields = split_fields(text);
    let [host, port_text, addr] = fields.as_slice() else {
        return Err(format!("`{text}` is not HOST:PORT:ADDR"));
    };
    if host.trim().is_empty() {
        return Err(format!("`{text}`: HOST is empty"));
    }
    let first = addr.split(',').next().unwrap_or_default();
    let addr: IpAddr = unbracket(first)
        .parse()
        .map_err(|_| format!("`{first}` is not an IP address (in --resolve {text})"))?;
    Ok(ResolveRule {
        host: unbracket(host),
        port: port(port_text, "in --resolve")?,
        addr,
    })
}

/// Parses `HOST1:PORT1:HOST2:PORT2`, any part may be empty.
pub fn parse_connect_to(text: &str) -> Result<ConnectTo, String> {
    let fields = split_fields(text);
    let [from_host, from_port, to_host, to_port] = fields.as_slice() else {
        return Err(format!("`{text}` is not HOST1:PORT1:HOST2:PORT2"));
    };
    let host = |part: &str| (!part.trim().is_empty()).then(|| unbracket(part));
    let port_of = |part: &str| -> Result<Option<u16>, String> {
        if part.trim().is_empty() {
            Ok(None)
        } else {
            port(part, "in --connect-to").map(Some)
        }
    };
    Ok(ConnectTo {
        from_host: host(from_host),
        from_port: port_of(from_port)?,
        to_host: host(to_host),
        to_port: port_of(to_port)?,
    })
}

/// Where a connection for `host:port` goes, as a host to look up and a port, after the
/// first matching `--connect-to`; then `--resolve` or DNS gives the address.
pub(crate) fn destination(host: &str, port: u16, connect_to: &[ConnectTo]) -> (String, u16) {
    let rule = connect_to.iter().find(|rule| {
        rule.from_host.as_deref().is_none_or(|from| from == host)
            && rule.from_port.is_none_or(|from| from == port)
    });
    match rule {
        Some(rule) => (
            rule.to_host.clone().unwrap_or_else(|| host.to_string()),
            rule.to_port.unwrap_or(port),
        ),
        None => (host.to_string(), port),
    }
}

/// The `--connect-to` rules that match `host:port`, in order. A load test spreads its
/// connections over all of them (the nodes of a cluster serving one host name); other tools
/// use the first, as curl does.
pub(crate) fn matching_connect_to<'r>(
    host: &str,
    port: u16,
    connect_to: &'r [ConnectTo],
) -> Vec<&'r ConnectTo> {
    connect_to
        .iter()
        .filter(|rule| {
            rule.from_host.as_deref().is_none_or(|from| from == host)
                && rule.from_port.is_none_or(|from| from == port)
        })
        .collect()
}

/// A `--resolve` answer for `host:port`, if one matches.
pub(crate) fn resolved(host: &str, port: u16, rules: &[ResolveRule]) -> Option<SocketAddr> {
    rules
        .iter()
        .find(|rule| (rule.host == host || rule.host == "*") && rule.port == port)
        .map(|rule| SocketAddr::new(rule.addr, port))
}

/// Resolves the target once, up front.
pub(crate) async fn resolve(
    target: &TargetUrl,
    rules: &[ResolveRule],
    connect_to: &[ConnectTo],
) -> Result<SocketAddr, ToolError> {
    let (host, port) = destination(target.bare_host(), target.port, connect_to);
    if let Some(addr) = resolved(&host, port, rules) {
        return Ok(addr);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let name = format!("{host}:{port}");
    let mut addrs =
        tokio::net::lookup_host(name.clone())
            .await
            .map_err(|err| ToolError::Resolve {
                host: name.clone(),
                reason: err.to_string(),
            })?;
    addrs.next().ok_or(ToolError::Resolve {
        host: name,
        reason: "no addresses".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_rules_parse_like_curl() {
        let rule = parse_resolve("api.example.com:443:127.0.0.1").expect("valid");
        assert_eq!(rule.host, "api.example.com");
        assert_eq!(rule.port, 443);
        assert_eq!(rule.addr, IpAddr::from([127, 0, 0, 1]));
        let v6 = parse_resolve("API.example.com:8443:[::1]").expect("valid");
        assert_eq!(v6.host, "api.example.com");
        assert_eq!(v6.addr, "::1".parse::<IpAddr>().expect("ip"));
        for bad in [
            "host:443",
            "host:x:127.0.0.1",
            "host:443:not-an-ip",
            ":443:127.0.0.1",
        ] {
            assert!(parse_resolve(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn connect_to_rules_match_and_keep_what_is_empty() {
        let rule = parse_connect_to("api.example.com:443:edge-1.internal:8443").expect("valid");
        assert_eq!(
            destination("api.example.com", 443, std::slice::from_ref(&rule)),
            ("edge-1.internal".to_string(), 8443)
        );
        // Another host is not redirected.
        assert_eq!(
            destination("other.example", 443, std::slice::from_ref(&rule)),
            ("other.example".to_string(), 443)
        );
        let any = parse_connect_to("::127.0.0.1:").expect("valid");
        assert_eq!(any.from_host, None);
        assert_eq!(any.to_port, None);
        assert_eq!(
            destination("x.example", 8080, &[any]),
            ("127.0.0.1".to_string(), 8080)
        );
        assert!(parse_connect_to("a:b:c").is_err());
        assert!(parse_connect_to("a:x:c:1").is_err());
    }

    #[test]
    fn resolve_rules_apply_after_connect_to() {
        let rules = [parse_resolve("edge-1.internal:8443:10.1.2.3").expect("valid")];
        assert_eq!(
            resolved("edge-1.internal", 8443, &rules),
            Some("10.1.2.3:8443".parse().expect("addr"))
        );
        assert_eq!(resolved("edge-1.internal", 443, &rules), None);
        let wildcard = [parse_resolve("*:443:127.0.0.2").expect("valid")];
        assert!(resolved("anything.example", 443, &wildcard).is_some());
    }
}
