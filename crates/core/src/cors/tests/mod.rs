//! Table-driven tests of the CORS engine through its public API, by topic; the helpers
//! every topic uses are here.

mod origins;
mod policy;
mod upstream;

use std::time::Duration;

use super::*;

fn spec_with_origins(origins: &[&str]) -> PolicySpec {
    PolicySpec {
        allow_origins: origins.iter().map(|origin| origin.to_string()).collect(),
        ..PolicySpec::default()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

fn compile(spec: &PolicySpec) -> CorsPolicy {
    match CorsPolicy::compile(spec) {
        Ok(policy) => policy,
        Err(error) => panic!("policy {spec:?} should compile: {error}"),
    }
}

/// The route policy most tests run against: credentials, explicit lists.
fn credentialed_policy() -> CorsPolicy {
    compile(&PolicySpec {
        allow_origins: strings(&[
            "https://app.example.com",
            "https://*.example.com",
            "http://localhost:3000",
            "http://[::1]:8080",
        ]),
        allow_any_origin: false,
        allow_credentials: true,
        allow_methods: strings(&["GET", "POST", "put", "PATCH", "DELETE"]),
        allow_headers: strings(&["Authorization", "Content-Type", "X-Requested-With"]),
        expose_headers: strings(&["ETag", "Link"]),
        max_age: Some(Duration::from_secs(600)),
    })
}

fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(header_name, _)| *header_name == name)
        .map(|(_, value)| value.as_str())
}
