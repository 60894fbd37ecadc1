//! CORS protocol (Fetch standard) as pure functions: origin matching, request classification,
//! `Access-Control-Request-Headers` normalization, the edge-mode policy decisions and the
//! inspection of upstream CORS responses in upstream mode.

use std::time::Duration;

mod classify;
mod origin;
mod policy;
mod request_headers;
mod upstream;

#[cfg(test)]
mod tests;

pub use classify::{classify, RequestKind};
pub use origin::{AllowList, Host, OriginError, OriginPattern, SerializedOrigin};
pub use policy::{
    CorsDecision, CorsPolicy, Decision, PolicyError, PreflightDecision,
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
};
pub use request_headers::normalize_request_headers;
pub use upstream::{
    inspect_upstream_response, shared_across_origins, shared_across_origins_given,
    upstream_response_facts, AllowOrigin, UnsafeReason, UpstreamCors,
};

/// What a route's `cors:` block says, already parsed from YAML. `CorsPolicy::compile` turns it
/// into a matcher; the config validator calls `compile` so a bad policy is a config error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicySpec {
    pub allow_origins: Vec<String>,
    pub allow_any_origin: bool,
    pub allow_credentials: bool,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<Duration>,
}
