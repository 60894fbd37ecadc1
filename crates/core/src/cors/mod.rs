//! CORS protocol (Fetch standard) as pure functions: origin matching, request classification,
//! `Access-Control-Request-Headers` normalization and the edge-mode policy decisions.

use std::time::Duration;

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
