//! Edge-mode CORS: a compiled route policy that decides actual requests and answers preflights
//! itself, following the CORS protocol of the Fetch standard.

use std::time::Duration;

use crate::header_list::is_token;
use super::origin::{AllowList, OriginError, OriginPattern, SerializedOrigin};
use super::request_headers::request_header_names;
use super::PolicySpec;

pub const ACCESS_CONTROL_ALLOW_ORIGIN: &str = "access-control-allow-origin";
pub const ACCESS_CONTROL_ALLOW_CREDENTIALS: &str = "access-control-allow-credentials";
pub const ACCESS_CONTROL_ALLOW_METHODS: &str = "access-control-allow-methods";
pub const ACCESS_CONTROL_ALLOW_HEADERS: &str = "access-control-allow-headers";
pub const ACCESS_CONTROL_EXPOSE_HEADERS: &str = "access-control-expose-headers";
pub const ACCESS_CONTROL_MAX_AGE: &str = "access-control-max-age";

/// Methods a browser never preflights and always accepts (Fetch "CORS-safelisted method").
const SAFELISTED_METHODS: [&str; 3] = ["GET", "HEAD", "POST"];

/// Methods that `fetch()` upper-cases whatever case the page used (Fetch "normalize a method").
/// Configured in any case, they are stored upper-case so they match what browsers send; every
/// other method is compared byte for byte, which is why `patch` and `PATCH` differ.
const BROWSER_NORMALIZED_METHODS: [&str; 6] = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];

/// The one request header that `Access-Control-Allow-Headers: *` never covers (Fetch "CORS
/// non-wildcard request-header name"): it has to be listed by name.
const NON_WILDCARD_REQUEST_HEADER: &str = "authorization";

/// Why a CORS decision came out the way it did. `as_str` is a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The origin is on the allow-list and is echoed back.
    Allowed,
    /// The policy allows any origin and answers `*`.
    AllowedAny,
    /// The request had no `Origin`.
    NoOrigin,
    /// `Origin` is present but is not a serialized origin (path, userinfo, garbage...).
    InvalidOrigin,
    /// `Origin` is well-formed but not on the allow-list.
    DeniedOrigin,
    /// Preflight only: the requested method is not allowed (or not a valid method name).
    DeniedMethod,
    /// Preflight only: at least one requested header is not allowed (or not a valid name).
    DeniedHeaders,
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::AllowedAny => "allowed_any",
            Decision::NoOrigin => "no_origin",
            Decision::InvalidOrigin => "invalid_origin",
            Decision::DeniedOrigin => "denied_origin",
            Decision::DeniedMethod => "denied_method",
            Decision::DeniedHeaders => "denied_headers",
        }
    }

    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed | Decision::AllowedAny)
    }
}

/// The result for an actual (non-preflight) request: the headers to add to the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsDecision {
    pub outcome: Decision,
    /// Lowercase header names and their values; empty when the origin is not allowed.
    pub headers: Vec<(&'static str, String)>,
}

/// The result for a preflight: the headers of the gateway's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightDecision {
    pub outcome: Decision,
    /// Grant headers when allowed; empty when denied, so the browser fails the preflight.
    pub headers: Vec<(&'static str, String)>,
}

impl PreflightDecision {
    fn denied(outcome: Decision) -> PreflightDecision {
        PreflightDecision {
            outcome,
            headers: Vec::new(),
        }
    }
}

/// A `cors:` block the gateway cannot enforce as written. Messages name the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "allow_any_origin: true cannot be combined with allow_credentials: true: browsers reject \
         `Access-Control-Allow-Origin: *` on credentialed requests; list the origins in allow_origins instead"
    )]
    AnyOriginWithCredentials,
    #[error(
        "allow_origins entry \"*\" cannot be combined with allow_credentials: true: browsers reject \
         `Access-Control-Allow-Origin: *` on credentialed requests; list the origins instead"
    )]
    WildcardOriginWithCredentials,
    #[error("allow_origins entry {entry:?} {reason}")]
    InvalidOrigin { entry: String, reason: OriginError },
    #[error("allow_methods entry {entry:?} is not a valid HTTP method name")]
    InvalidMethod { entry: String },
    #[error("{field} entry {entry:?} is not a valid header name")]
    InvalidHeaderName { field: &'static str, entry: String },
    #[error(
        "{field} contains \"*\" while allow_credentials is true; with credentials browsers read \"*\" \
         as a literal name, not as \"any\", so list the names instead"
    )]
    WildcardWithCredentials { field: &'static str },
}

/// A configured list of names, or `*` for "any".
#[derive(Debug, Clone, PartialEq, Eq)]
struct NameList {
    /// `*` was listed (only possible without credentials).
    any: bool,
    /// Names other than `*`, for comparison (lowercase for headers, see
    /// `BROWSER_NORMALIZED_METHODS` for methods).
    names: Vec<String>,
    /// The header value to send: the normalized names joined with `, `, or `*`.
    header_value: Option<String>,
}

impl NameList {
    fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|listed| listed == name)
    }
}

/// A route's CORS policy, validated and ready to answer requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    /// `allow_any_origin: true` or `*` in `allow_origins` (never with credentials).
    any_origin: bool,
    origins: AllowList,
    credentials: bool,
    methods: NameList,
    headers: NameList,
    expose_header_value: Option<String>,
    max_age: Option<Duration>,
}

impl CorsPolicy {
    pub fn compile(spec: &PolicySpec) -> Result<CorsPolicy, PolicyError> {
        if spec.allow_any_origin && spec.allow_credentials {
            return Err(PolicyError::AnyOriginWithCredentials);
        }
        let mut any_origin = spec.allow_any_origin;
        let mut origins = AllowList::default();
        for entry in &spec.allow_origins {
            let pattern =
                OriginPattern::parse(entry).map_err(|reason| PolicyError::InvalidOrigin {
                    entry: entry.clone(),
                    reason,
                })?;
            if pattern == OriginPattern::Any {
                if spec.allow_credentials {
                    return Err(PolicyError::WildcardOriginWithCredentials);
                }
                any_origin = true;
            } else {
                origins.insert(pattern);
            }
        }
        let methods = compile_methods(&spec.allow_methods, spec.allow_credentials)?;
        let headers =
            compile_header_names("allow_headers", &spec.allow_headers, spec.allow_credentials)?;
        let exposed = compile_header_names(
            "expose_headers",
            &spec.expose_headers,
            spec.allow_credentials,
        )?;
        Ok(CorsPolicy {
            any_origin,
            origins,
            credentials: spec.allow_credentials,
            methods,
            headers,
            expose_header_value: exposed.header_value,
            max_age: spec.max_age,
        })
    }

    /// Whether a request with this `Origin` value may read responses.
    pub fn allows_origin(&self, origin: &[u8]) -> bool {
        self.any_origin
            || SerializedOrigin::parse(origin).is_ok_and(|origin| self.origins.matches(&origin))
    }

    /// Answers `Access-Control-Allow-Origin: *` to everyone.
    pub fn allows_any_origin(&self) -> bool {
        self.any_origin
    }

    pub fn allows_credentials(&self) -> bool {
        self.credentials
    }

    /// Whether the CORS headers of a response depend on the request's `Origin`, i.e. whether the
    /// gateway must add `Vary: Origin` to every response of the route (allowed, denied and
    /// origin-less alike) so a downstream cache never serves one origin's answer to another.
    /// With `allow_any_origin` the answer is `*` for everyone and does not vary.
    pub fn varies_by_origin(&self) -> bool {
        !self.any_origin
    }

    pub fn preflight_max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// The CORS headers for an actual (non-preflight) response, stamped after the cache.
    ///
    /// With `allow_any_origin` every response gets `*`, including requests without `Origin`, so
    /// the headers do not depend on the request and need no `Vary: Origin`; the outcome still says
    /// `no_origin` for those. Otherwise an allowed origin is echoed byte for byte (the browser
    /// compares it that way), a disallowed or malformed one gets no CORS headers at all.
    pub fn actual_response(&self, origin: Option<&[u8]>) -> CorsDecision {
        let outcome = self.origin_outcome(origin);
        let mut headers = Vec::new();
        if let Some(allow_origin) = self.allow_origin_value(outcome, origin) {
            headers.push((ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin));
            if self.credentials {
                headers.push((ACCESS_CONTROL_ALLOW_CREDENTIALS, "true".to_string()));
            }
            if let Some(exposed) = &self.expose_header_value {
                headers.push((ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone()));
            }
        }
        CorsDecision { outcome, headers }
    }

    /// Answers a CORS preflight. `normalized_request_headers` is the output of
    /// [`crate::cors::normalize_request_headers`] (empty when the header was absent).
    ///
    /// Granted when the origin is allowed, the method is a CORS-safelisted method (`GET`, `HEAD`,
    /// `POST`, always allowed) or allowed by the policy, and every requested header is allowed:
    /// named in `allow_headers`, or covered by `*` — which never covers `authorization`. There is
    /// no exemption for safelisted header names such as `content-type`: a browser only lists them
    /// when their value is not safelisted (`application/json`), and then they must be allowed.
    pub fn preflight(
        &self,
        origin: &[u8],
        request_method: &[u8],
        normalized_request_headers: &str,
    ) -> PreflightDecision {
        let outcome = self.origin_outcome(Some(origin));
        let Some(allow_origin) = self.allow_origin_value(outcome, Some(origin)) else {
            return PreflightDecision::denied(outcome);
        };
        let Some(method) = std::str::from_utf8(request_method)
            .ok()
            .filter(|method| is_token(method.as_bytes()))
        else {
            return PreflightDecision::denied(Decision::DeniedMethod);
        };
        if !self.allows_method(method) {
            return PreflightDecision::denied(Decision::DeniedMethod);
        }
        if !request_header_names(normalized_request_headers).all(|name| self.allows_header(name)) {
            return PreflightDecision::denied(Decision::DeniedHeaders);
        }

        let mut headers = vec![(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin)];
        if self.credentials {
            headers.push((ACCESS_CONTROL_ALLOW_CREDENTIALS, "true".to_string()));
        }
        // A configured list is sent whole so the browser's preflight cache learns all of it; `*`
        // or an empty list echo the request, which is exactly what was granted.
        let allow_methods = match (&self.methods.header_value, self.methods.any) {
            (Some(list), false) => list.clone(),
            _ => method.to_string(),
        };
        headers.push((ACCESS_CONTROL_ALLOW_METHODS, allow_methods));
        // With `*` the requested names are echoed rather than sending `*`, because `*` would not
        // grant `authorization` even when the policy lists it next to `*`.
        let allow_headers = match (&self.headers.header_value, self.headers.any) {
            (Some(list), false) => Some(list.clone()),
            _ => Some(normalized_request_headers.to_string()).filter(|echo| !echo.is_empty()),
        };
        if let Some(allow_headers) = allow_headers {
            headers.push((ACCESS_CONTROL_ALLOW_HEADERS, allow_headers));
        }
        if let Some(max_age) = self.max_age {
            headers.push((ACCESS_CONTROL_MAX_AGE, max_age.as_secs().to_string()));
        }
        PreflightDecision { outcome, headers }
    }

    fn origin_outcome(&self, origin: Option<&[u8]>) -> Decision {
        let Some(origin) = origin else {
            return Decision::NoOrigin;
        };
        if self.any_origin {
            return Decision::AllowedAny;
        }
        match SerializedOrigin::parse(origin) {
            Err(_) => Decision::InvalidOrigin,
            Ok(parsed) if self.origins.matches(&parsed) => Decision::Allowed,
            Ok(_) => Decision::DeniedOrigin,
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request whose origin got `outcome`, or
    /// `None` when no CORS headers may be sent.
    fn allow_origin_value(&self, outcome: Decision, origin: Option<&[u8]>) -> Option<String> {
        if self.any_origin {
            return Some("*".to_string());
        }
        if outcome != Decision::Allowed {
            return None;
        }
        // `Allowed` means the value parsed as an origin, so it is printable ASCII and safe to put
        // in a header.
        origin
            .and_then(|origin| std::str::from_utf8(origin).ok())
            .map(str::to_string)
    }

    fn allows_method(&self, method: &str) -> bool {
        SAFELISTED_METHODS.contains(&method) || self.methods.any || self.methods.contains(method)
    }

    fn allows_header(&self, name: &[u8]) -> bool {
        if !is_token(name) {
            return false;
        }
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        self.headers.contains(&name) || (self.headers.any && name != NON_WILDCARD_REQUEST_HEADER)
    }
}

fn compile_methods(entries: &[String], credentials: bool) -> Result<NameList, PolicyError> {
    compile_name_list(entries, credentials, "allow_methods", |entry| {
        if !is_token(entry.as_bytes()) {
            return Err(PolicyError::InvalidMethod {
                entry: entry.to_string(),
            });
        }
        let upper = entry.to_ascii_uppercase();
        Ok(if BROWSER_NORMALIZED_METHODS.contains(&upper.as_str()) {
            upper
        } else {
            entry.to_string()
        })
    })
}

fn compile_header_names(
    field: &'static str,
    entries: &[String],
    credentials: bool,
) -> Result<NameList, PolicyError> {
    compile_name_list(entries, credentials, field, |entry| {
        if is_token(entry.as_bytes()) {
            Ok(entry.to_ascii_lowercase())
        } else {
            Err(PolicyError::InvalidHeaderName {
                field,
                entry: entry.to_string(),
            })
        }
    })
}

/// Shared shape of the method and header lists: `*` means "any" without credentials and is
/// refused with them (Fetch reads it literally then, which is never what a config author means);
/// duplicates are dropped.
fn compile_name_list(
    entries: &[String],
    credentials: bool,
    field: &'static str,
    normalize: impl Fn(&str) -> Result<String, PolicyError>,
) -> Result<NameList, PolicyError> {
    let mut list = NameList {
        any: false,
        names: Vec::new(),
        header_value: None,
    };
    for entry in entries {
        if entry == "*" {
            if credentials {
                return Err(PolicyError::WildcardWithCredentials { field });
            }
            list.any = true;
            continue;
        }
        let name = normalize(entry)?;
        if !list.contains(&name) {
            list.names.push(name);
        }
    }
    list.header_value = if list.any {
        Some("*".to_string())
    } else if list.names.is_empty() {
        None
    } else {
        Some(list.names.join(", "))
    };
    Ok(list)
}
