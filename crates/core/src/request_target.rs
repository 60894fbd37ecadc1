//! The request-target rule (RFC 9112 §3.2): one parse of the request line's target and the
//! `Host` field gives the host and the origin-form path that the route match, the cache key and
//! the request sent upstream all use, so no request can be keyed as one URL and fetched as
//! another.
//!
//! - origin-form (`/items?id=1`): the target as sent, with `Host` as the host;
//! - absolute-form (`http://shop.example/items`, scheme `http` or `https`): the authority is the
//!   host (a `Host` field is ignored, §3.2.2) and the rest, anchored at `/`, is the path; the
//!   upstream gets the origin-form and the authority as its `Host`;
//! - asterisk-form (`*`): only with `OPTIONS`, a question about the server itself;
//! - anything else (`evil-page?x=1`, `foo://host/x`, authority-form, a fragment, bytes outside
//!   visible ASCII, `"`, `<`, `>`, `` ` ``): refused with `400`.
//!
//! The host must be a valid URI authority (RFC 3986 §3.2: reg-name or IP literal, optional
//! port, no user info); an HTTP/1.1 request without one, or with two `Host` lines, is refused
//! (RFC 9112 §3.2).

use std::fmt;

/// Which of the request-target forms the request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    Origin,
    Absolute,
    /// `OPTIONS *`.
    Asterisk,
}

/// The request's host and path, from one parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTarget {
    pub form: TargetForm,
    /// The authority the request is for, as sent (the key normalizes its case and port).
    pub host: String,
    /// Origin-form: starts with `/` (`*` for the asterisk form), no fragment.
    pub path_and_query: String,
    /// Where the query starts in `path_and_query` (its length when there is none).
    path_end: usize,
}

impl RequestTarget {
    /// The path without the query.
    pub fn path(&self) -> &str {
        &self.path_and_query[..self.path_end]
    }

    /// The upstream must be sent another target than the one received: the absolute form is
    /// rewritten to the origin-form the key was built from.
    pub fn rewritten(&self) -> bool {
        self.form == TargetForm::Absolute
    }
}

/// Why a request-target or host is refused. Every refusal is a `400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// Not origin-form, absolute-form with an http(s) scheme, nor `OPTIONS *`.
    Form,
    /// `*` with another method than `OPTIONS`.
    AsteriskNotOptions,
    /// A byte a request-target may not hold (control, space, non-ASCII, `#`).
    Byte,
    /// No host: an HTTP/1.1 request without `Host`, or an empty authority.
    MissingHost,
    /// Several `Host` field lines.
    SeveralHosts,
    /// The host is not a URI authority (user info, a path, bad characters, a bad port).
    BadHost,
}

impl TargetError {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetError::Form => "the request-target is not origin-form or absolute-form",
            TargetError::AsteriskNotOptions => "the request-target * is only valid with OPTIONS",
            TargetError::Byte => "the request-target holds a byte it may not",
            TargetError::MissingHost => "the request has no host",
            TargetError::SeveralHosts => "the request has several Host fields",
            TargetError::BadHost => "the host is not a valid authority",
        }
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the request line and header say about where the request goes.
#[derive(Debug, Clone, Copy)]
pub struct TargetInput<'a> {
    pub method: &'a str,
    /// The request-target as received (for HTTP/2, `:path`).
    pub target: &'a [u8],
    /// Every `Host` field line.
    pub host_lines: &'a [&'a [u8]],
    /// HTTP/2's `:authority`, which stands for `Host` when that is absent.
    pub authority: Option<&'a str>,
    /// HTTP/1.0 requests may come without a host (the host is then empty).
    pub host_optional: bool,
}

/// A byte allowed in a request-target: visible ASCII except `#` (a fragment is never sent) and
/// the delimiters RFC 3986 §2 excludes that the `http` crate's URI (what the upstream request
/// is built from) also refuses: `"`, `<`, `>`, `` ` ``. (`{`, `}`, `|`, `\`, `^` are not valid
/// either, but clients send them raw and the URI carries them as they are.)
fn target_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'#' | b'"' | b'<' | b'>' | b'`')
}

/// A path (with its query) a request can carry as its origin-form target, by the same byte
/// rule as a client's: what the config accepts as a request path of its own (health checks).
pub fn is_origin_form(target: &str) -> bool {
    target.starts_with('/') && target.bytes().all(target_byte)
}

/// RFC 3986 §3.2.2-3.2.3 `host [ ":" port ]`: a reg-name (unreserved, sub-delims,
/// pct-encoded) or a bracketed IP literal, and a port of digits.
pub fn valid_authority(authority: &str) -> bool {
    let bytes = authority.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let (host, port) = if bytes[0] == b'[' {
        let Some(close) = authority.find(']') else {
            return false;
        };
        let literal = &authority[1..close];
        let ok = !literal.is_empty()
            && literal
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !ok {
            return false;
        }
        match &authority[close + 1..] {
            "" => return true,
            rest => match rest.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(authority), None),
        }
    };
    let reg_name_ok = host.is_none_or(|host| {
        // A name of dots is empty once its trailing dots go (as they do in the key).
        !host.trim_end_matches('.').is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'-' | b'.'
                            | b'_'
                            | b'~'
                            | b'%'
                            | b'!'
                            | b'$'
                            | b'&'
                            | b'\''
                            | b'('
                            | b')'
                            | b'*'
                            | b'+'
                            | b','
                            | b';'
                            | b'='
                    )
            })
    });
    let port_ok = port.is_none_or(|p| p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    reg_name_ok && port_ok
}

/// The host from the `Host` lines (or HTTP/2's `:authority`).
fn header_host(input: &TargetInput<'_>) -> Result<String, TargetError> {
    let host = match input.host_lines {
        [] => match input.authority {
            Some(authority) => authority.to_string(),
            None if input.host_optional => return Ok(String::new()),
            None => return Err(TargetError::MissingHost),
        },
        [one] => std::str::from_utf8(one)
            .map_err(|_| TargetError::BadHost)?
            .trim_matches([' ', '\t'])
            .to_string(),
        _ => return Err(TargetError::SeveralHosts),
    };
    if host.is_empty() {
        return if input.host_optional {
            Ok(host)
        } else {
            Err(TargetError::MissingHost)
        };
    }
    if !valid_authority(&host) {
        return Err(TargetError::BadHost);
    }
    Ok(host)
}

fn strip_scheme(target: &str) -> Option<&str> {
    for scheme in ["http://", "https://"] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(&target[scheme.len()..]);
        }
    }
    None
}

fn with_path(form: TargetForm, host: String, path_and_query: String) -> RequestTarget {
    let path_end = path_and_query.find('?').unwrap_or(path_and_query.len());
    RequestTarget {
        form,
        host,
        path_and_query,
        path_end,
    }
}

/// The request's target and host, or why the request is refused.
pub fn parse(input: &TargetInput<'_>) -> Result<RequestTarget, TargetError> {
    if input.target.is_empty() || !input.target.iter().all(|&b| target_byte(b)) {
        return Err(if input.target.is_empty() {
            TargetError::Form
        } else {
            TargetError::Byte
        });
    }
    // Only visible ASCII: valid UTF-8.
    let target = std::str::from_utf8(input.target).map_err(|_| TargetError::Byte)?;
    if target.starts_with('/') {
        let host = header_host(input)?;
        return Ok(with_path(TargetForm::Origin, host, target.to_string()));
    }
    if target == "*" {
        if input.method != "OPTIONS" {
            return Err(TargetError::AsteriskNotOptions);
        }
        let host = header_host(input)?;
        return Ok(with_path(TargetForm::Asterisk, host, target.to_string()));
    }
    let Some(rest) = strip_scheme(target) else {
        return Err(TargetError::Form);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.is_empty() {
        return Err(TargetError::MissingHost);
    }
    if !valid_authority(authority) {
        return Err(TargetError::BadHost);
    }
    // The Host field is still required (RFC 9112 §3.2: an HTTP/1.1 client sends it even with
    // an absolute-form target), though its value is replaced by the target's authority.
    match input.host_lines.len() {
        0 if !input.host_optional && input.authority.is_none() => {
            return Err(TargetError::MissingHost)
        }
        0 | 1 => {}
        _ => return Err(TargetError::SeveralHosts),
    }
    let path = &rest[authority_end..];
    let path_and_query = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok(with_path(
        TargetForm::Absolute,
        authority.to_string(),
        path_and_query,
    ))
}

#[cfg(test)]
mod tests;
