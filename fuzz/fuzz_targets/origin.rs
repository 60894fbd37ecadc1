//! `Origin` parsing and allow-list matching on arbitrary bytes: no panic, normalization is a
//! fixed point, and nothing outside the allow-list ever gets a CORS grant.
#![no_main]

use std::sync::OnceLock;

use cors_edge_core::cors::{CorsPolicy, OriginPattern, PolicySpec, SerializedOrigin};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static CorsPolicy {
    static POLICY: OnceLock<CorsPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let spec = PolicySpec {
            allow_origins: vec![
                "https://app.example.com".to_string(),
                "https://*.example.com".to_string(),
                "http://localhost:3000".to_string(),
                "http://[::1]:8080".to_string(),
                "null".to_string(),
            ],
            allow_credentials: true,
            ..PolicySpec::default()
        };
        match CorsPolicy::compile(&spec) {
            Ok(policy) => policy,
            Err(error) => panic!("fuzz policy must compile: {error}"),
        }
    })
}

fn is_on_allow_list(normalized: &str) -> bool {
    normalized == "null"
        || normalized == "https://app.example.com"
        || normalized == "http://localhost:3000"
        || normalized == "http://[::1]:8080"
        || (normalized.starts_with("https://")
            && normalized.ends_with(".example.com")
            && !normalized["https://".len()..].contains(['@', '/', ':', '?', '#', '[']))
}

fuzz_target!(|data: &[u8]| {
    let parsed = SerializedOrigin::parse(data);
    if let Ok(origin) = &parsed {
        let normalized = origin.to_string();
        assert_eq!(
            SerializedOrigin::parse(normalized.as_bytes()).as_ref(),
            Ok(origin)
        );
    }

    let allowed = policy().allows_origin(data);
    let normalized = parsed.as_ref().map(ToString::to_string).unwrap_or_default();
    assert_eq!(
        allowed,
        parsed.is_ok() && is_on_allow_list(&normalized),
        "{normalized}"
    );

    let decision = policy().actual_response(Some(data));
    assert_eq!(decision.outcome.is_allowed(), allowed);
    for (name, value) in &decision.headers {
        if *name == "access-control-allow-origin" {
            assert_eq!(
                value.as_bytes(),
                data,
                "ACAO must echo the request origin exactly"
            );
        }
    }

    if let Ok(entry) = std::str::from_utf8(data) {
        if let Ok(pattern) = OriginPattern::parse(entry) {
            let reparsed = OriginPattern::parse(&pattern.to_string());
            assert_eq!(reparsed.as_ref(), Ok(&pattern));
            if let Ok(origin) = &parsed {
                // An exact entry always matches the origin it was written as.
                if matches!(pattern, OriginPattern::Exact(_)) {
                    assert!(pattern.matches(origin));
                }
            }
        }
    }
});
