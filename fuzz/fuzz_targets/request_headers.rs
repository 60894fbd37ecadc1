//! `Access-Control-Request-Headers` normalization: no panic, idempotent, canonical shape, and
//! the preflight decision accepts whatever it produces.
#![no_main]

use std::sync::OnceLock;

use cors_edge_core::cors::{normalize_request_headers, CorsPolicy, PolicySpec};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static CorsPolicy {
    static POLICY: OnceLock<CorsPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let spec = PolicySpec {
            allow_any_origin: true,
            allow_methods: vec!["*".to_string()],
            allow_headers: vec!["*".to_string()],
            ..PolicySpec::default()
        };
        match CorsPolicy::compile(&spec) {
            Ok(policy) => policy,
            Err(error) => panic!("fuzz policy must compile: {error}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    // Newlines separate field lines, so multi-line headers get fuzzed too.
    let normalized = normalize_request_headers(data.split(|&byte| byte == b'\n'));
    assert_eq!(
        normalize_request_headers([normalized.as_bytes()]),
        normalized
    );
    assert!(!normalized.starts_with(',') && !normalized.ends_with(','));
    assert!(!normalized.contains(",,") && !normalized.contains(", "));
    let members: Vec<&str> = normalized.split(',').filter(|m| !m.is_empty()).collect();
    assert!(
        members.windows(2).all(|pair| pair[0] < pair[1]),
        "sorted and unique"
    );

    let decision = policy().preflight(b"https://app.example.com", b"PUT", &normalized);
    if decision.outcome.is_allowed() {
        // Only valid names get echoed, so the header value is always sendable.
        for (_, value) in &decision.headers {
            assert!(value.bytes().all(|byte| (b' '..=b'~').contains(&byte)));
        }
    }
});
