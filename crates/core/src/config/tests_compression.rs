//! `routes[].compression`: defaults, parsing and each validation error.

use super::tests::{errors, key, load, BASE};
use crate::compression::DEFAULT_TYPES;

#[test]
fn compression_defaults_on_for_text_formats() {
    let config = load(BASE).unwrap();
    let policy = config.routes[0].compression.policy();
    assert!(policy.enabled);
    assert_eq!(policy.types, DEFAULT_TYPES);
    assert_eq!(policy.min_bytes, 1024);
    assert_eq!(policy.level, 6);
}

#[test]
fn compression_settings_parse() {
    let config = load(&format!(
        "{BASE}    compression: {{ enabled: false, types: [Application/JSON, \"text/*\"], min_bytes: 1KiB, level: 9 }}\n"
    ))
    .unwrap();
    let policy = config.routes[0].compression.policy();
    assert!(!policy.enabled);
    assert_eq!(policy.types, ["application/json", "text/*"]);
    assert_eq!(policy.min_bytes, 1024);
    assert_eq!(policy.level, 9);
    // Partial blocks keep the other defaults.
    let config = load(&format!("{BASE}    compression: {{ min_bytes: 0 }}\n")).unwrap();
    let policy = config.routes[0].compression.policy();
    assert!(policy.enabled);
    assert_eq!(policy.min_bytes, 0);
    assert_eq!(policy.types, DEFAULT_TYPES);
}

#[test]
fn compression_errors() {
    let all = errors(&format!(
        "{BASE}    compression: {{ level: 0, types: [json, \"*/*\", \"text/*\", TEXT/*, \"image/svg*\", \"a b/c\"] }}\n"
    ));
    let found: Vec<(String, &str)> = all.iter().map(|e| (key(e), e.message.as_str())).collect();
    let expect = [
        ("routes[0].compression.level", "use 1 (fastest) to 9"),
        ("routes[0].compression.types[0]", "is not a media type"),
        ("routes[0].compression.types[1]", "is not a media type"),
        ("routes[0].compression.types[3]", "listed twice"),
        ("routes[0].compression.types[4]", "is not a media type"),
        ("routes[0].compression.types[5]", "is not a media type"),
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for ((key, message), (want_key, want)) in found.iter().zip(expect) {
        assert_eq!(key, want_key);
        assert!(message.contains(want), "{key}: {message}");
    }
    let all = errors(&format!("{BASE}    compression: {{ level: 10 }}\n"));
    assert_eq!(all.len(), 1);
    let all = errors(&format!("{BASE}    compression: {{ gzip: true }}\n"));
    assert!(
        all[0].message.contains("enabled, types, min_bytes"),
        "{}",
        all[0]
    );
}
