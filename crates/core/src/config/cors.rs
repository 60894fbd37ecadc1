//! `routes[].cors:`: who answers CORS for a route, the policy's keys, the policy compiled once
//! from them, and the check that reports every bad entry.

use std::fmt;

use serde::Deserialize;

use super::error::KeyPath;
use crate::cors::{CorsPolicy, PolicyError, PolicySpec};
use crate::units::DurationValue;

/// Who answers CORS for a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "upstream or edge")]
pub enum CorsMode {
    /// The upstream decides; the gateway forwards the CORS request headers and caches the
    /// answers per origin so one origin's answer is never served to another.
    #[default]
    Upstream,
    /// The gateway decides from the `cors:` block, answers preflights itself and stamps the
    /// CORS headers on responses after the cache.
    Edge,
}

impl CorsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CorsMode::Upstream => "upstream",
            CorsMode::Edge => "edge",
        }
    }
}

impl fmt::Display for CorsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `routes[].cors:`. The policy keys are always validated; in `upstream` mode the gateway
/// does not use them to answer, only `edge` mode does.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default, expecting = "a mapping of CORS settings")]
pub struct CorsConfig {
    /// Default `upstream`.
    pub mode: CorsMode,
    /// Exact origins (`https://app.example.com`), subdomain patterns
    /// (`https://*.example.com`), or `null`.
    pub allow_origins: Vec<String>,
    /// Answer `Access-Control-Allow-Origin: *`; refused together with credentials.
    pub allow_any_origin: bool,
    pub allow_credentials: bool,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    /// `Access-Control-Max-Age` sent on preflight answers; absent: not sent.
    pub max_age: Option<DurationValue>,
    /// Upstream mode: also add `Vary: Origin` to responses for requests without `Origin`
    /// (unless shared `ACAO: *`). Default true: otherwise a browser may cache such a response
    /// (an `<img>`, a navigation) and reuse it for a later CORS fetch, which then fails.
    /// Turn off only when no browser reads the route, e.g. to compare caches on plain RFC 9111.
    pub vary_origin_always: bool,
    /// The policy compiled from the keys above, once: validation compiles it to judge it, and
    /// the runtime reads that same compiled policy.
    #[serde(skip)]
    compiled: CompiledPolicy,
}

/// A memo of `CorsPolicy::compile` for the keys beside it; equal whatever its state, since it
/// is derived from them.
#[derive(Debug, Clone, Default)]
struct CompiledPolicy(std::sync::OnceLock<Result<CorsPolicy, PolicyError>>);

impl PartialEq for CompiledPolicy {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for CompiledPolicy {}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            mode: CorsMode::default(),
            allow_origins: Vec::new(),
            allow_any_origin: false,
            allow_credentials: false,
            allow_methods: Vec::new(),
            allow_headers: Vec::new(),
            expose_headers: Vec::new(),
            max_age: None,
            vary_origin_always: true,
            compiled: CompiledPolicy::default(),
        }
    }
}

impl CorsConfig {
    /// The route's CORS policy, compiled the first time it is asked for (by validation, when
    /// the config is loaded).
    pub fn policy(&self) -> Result<&CorsPolicy, PolicyError> {
        self.compiled
            .0
            .get_or_init(|| CorsPolicy::compile(&self.policy_spec()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The policy in the form `crate::cors::CorsPolicy::compile` takes.
    pub fn policy_spec(&self) -> PolicySpec {
        PolicySpec {
            allow_origins: self.allow_origins.clone(),
            allow_any_origin: self.allow_any_origin,
            allow_credentials: self.allow_credentials,
            allow_methods: self.allow_methods.clone(),
            allow_headers: self.allow_headers.clone(),
            expose_headers: self.expose_headers.clone(),
            max_age: self.max_age.map(DurationValue::as_duration),
        }
    }
}

/// The CORS policy is judged by `CorsPolicy::compile`, the same code that enforces it, and
/// the policy it compiles here is the one the runtime uses ([`CorsConfig::policy`]). Compiling
/// stops at the first problem, so when it fails each entry is also compiled on its own, which
/// finds every bad entry and its index.
pub(super) fn check(key: &KeyPath, cors: &CorsConfig) -> Vec<(KeyPath, String)> {
    let mut errors = Vec::new();
    let Err(whole) = cors.policy() else {
        return errors;
    };
    let credentials = cors.allow_credentials;
    let mut found = false;
    let mut report = |errors: &mut Vec<(KeyPath, String)>, key: KeyPath, error: PolicyError| {
        found = true;
        errors.push((key, policy_message(error)));
    };
    let alone = |spec: PolicySpec| CorsPolicy::compile(&spec).err();

    if cors.allow_any_origin {
        if let Some(error) = alone(PolicySpec {
            allow_any_origin: true,
            allow_credentials: credentials,
            ..PolicySpec::default()
        }) {
            report(&mut errors, key.key("allow_any_origin"), error);
        }
    }
    let lists = [
        ("allow_origins", &cors.allow_origins),
        ("allow_methods", &cors.allow_methods),
        ("allow_headers", &cors.allow_headers),
        ("expose_headers", &cors.expose_headers),
    ];
    for (field, entries) in lists {
        for (i, entry) in entries.iter().enumerate() {
            let mut spec = PolicySpec {
                allow_credentials: credentials,
                ..PolicySpec::default()
            };
            let list = match field {
                "allow_origins" => &mut spec.allow_origins,
                "allow_methods" => &mut spec.allow_methods,
                "allow_headers" => &mut spec.allow_headers,
                _ => &mut spec.expose_headers,
            };
            list.push(entry.clone());
            if let Some(error) = alone(spec) {
                report(&mut errors, key.key(field).index(i), error);
            }
        }
    }
    // A rule about the combination, not about one entry.
    if !found {
        errors.push((key.clone(), policy_message(whole)));
    }
    errors
}

fn policy_message(error: PolicyError) -> String {
    match error {
        PolicyError::InvalidOrigin { entry, reason } => format!(
            "{entry:?} is not an origin (expected scheme://host[:port], e.g. https://app.example.com): it {reason}"
        ),
        other => other.to_string(),
    }
}
