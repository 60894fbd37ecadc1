//! Property tests of the CORS engine: no input makes it panic, normalization is canonical, and
//! the safety invariants hold for any request.

use cors_edge_core::cors::{
    classify, inspect_upstream_response, normalize_request_headers, CorsPolicy, OriginPattern,
    PolicySpec, SerializedOrigin, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN,
};
use proptest::prelude::*;

/// Strings that look like origins often enough to reach the deep parsing paths.
fn origin_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "(?i)(https?|wss)://[a-z0-9.@:/*_%\\[\\]-]{0,24}(\\.example\\.com)?(:[0-9]{1,6})?",
        "(?i)https://([a-z0-9-]{1,5}\\.){0,3}example\\.com(\\.evil\\.com)?",
        "(?i)https?://[a-z0-9.@-]{0,8}example\\.com(\\.evil\\.com)?(:443|:8443)?",
        "\\PC{0,40}",
        Just("null".to_string()),
    ]
}

fn credentialed_policy() -> CorsPolicy {
    let spec = PolicySpec {
        allow_origins: vec![
            "https://app.example.com".to_string(),
            "https://*.example.com".to_string(),
            "null".to_string(),
        ],
        allow_credentials: true,
        allow_methods: vec!["PUT".to_string(), "PATCH".to_string()],
        allow_headers: vec!["Authorization".to_string(), "Content-Type".to_string()],
        expose_headers: vec!["ETag".to_string()],
        ..PolicySpec::default()
    };
    match CorsPolicy::compile(&spec) {
        Ok(policy) => policy,
        Err(error) => panic!("test policy must compile: {error}"),
    }
}

/// Splits `text` into field lines at arbitrary points chosen by `cuts` (only at commas, which is
/// where a sender may split a list across lines).
fn split_at_commas(text: &str, cuts: &[bool]) -> Vec<String> {
    let mut lines = vec![String::new()];
    let mut cut_choices = cuts.iter().cycle();
    for (index, member) in text.split(',').enumerate() {
        let line_break = index > 0 && cut_choices.next().copied().unwrap_or(false);
        if line_break {
            lines.push(String::new());
        } else if index > 0 {
            if let Some(line) = lines.last_mut() {
                line.push(',');
            }
        }
        if let Some(line) = lines.last_mut() {
            line.push_str(member);
        }
    }
    lines
}

/// A semantically equal but messier spelling of a list of header names.
#[derive(Debug, Clone)]
struct Messy {
    lines: Vec<String>,
    canonical: String,
}

fn messy_header_list() -> impl Strategy<Value = Messy> {
    prop::collection::vec("[a-z0-9][a-z0-9-]{0,8}", 0..6)
        .prop_flat_map(|names| {
            let mut canonical_names = names.clone();
            canonical_names.sort();
            canonical_names.dedup();
            let canonical = canonical_names.join(",");
            // Duplicate some names, then shuffle.
            let with_duplicates: Vec<String> = names
                .iter()
                .cloned()
                .chain(names.iter().take(2).cloned())
                .collect();
            let count = with_duplicates.len();
            (
                Just(with_duplicates).prop_shuffle(),
                prop::collection::vec(any::<bool>(), count * 12 + 1),
                prop::collection::vec("[ \t]{0,2}", count * 2 + 2),
                prop::collection::vec(0usize..3, count + 1),
                prop::collection::vec(any::<bool>(), count + 1),
                Just(canonical),
            )
        })
        .prop_map(
            |(names, upper_choices, whitespace, empty_members, cuts, canonical)| {
                let mut upper = upper_choices.iter().cycle();
                let mut spaces = whitespace.iter().cycle();
                let mut empties = empty_members.iter().cycle();
                let mut members: Vec<String> = Vec::new();
                for name in names {
                    for _ in 0..*empties.next().unwrap_or(&0) {
                        members.push(spaces.next().cloned().unwrap_or_default());
                    }
                    let recased: String = name
                        .chars()
                        .map(|character| {
                            if *upper.next().unwrap_or(&false) {
                                character.to_ascii_uppercase()
                            } else {
                                character
                            }
                        })
                        .collect();
                    let before = spaces.next().cloned().unwrap_or_default();
                    let after = spaces.next().cloned().unwrap_or_default();
                    members.push(format!("{before}{recased}{after}"));
                }
                Messy {
                    lines: split_at_commas(&members.join(","), &cuts),
                    canonical,
                }
            },
        )
}

proptest! {
    #[test]
    fn origin_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = SerializedOrigin::parse(&bytes);
        let _ = OriginPattern::parse(&String::from_utf8_lossy(&bytes));
        let _ = credentialed_policy().allows_origin(&bytes);
    }

    #[test]
    fn origin_normalization_round_trips(text in origin_like()) {
        if let Ok(origin) = SerializedOrigin::parse(text.as_bytes()) {
            let serialized = origin.to_string();
            prop_assert_eq!(SerializedOrigin::parse(serialized.as_bytes()), Ok(origin.clone()));
            // Every valid origin can be listed exactly and then matches itself.
            if let Ok(pattern) = OriginPattern::parse(&serialized) {
                prop_assert!(pattern.matches(&origin));
            }
        }
    }

    #[test]
    fn wildcard_matches_only_strict_subdomains(text in origin_like()) {
        let policy = credentialed_policy();
        if policy.allows_origin(text.as_bytes()) && text != "null" {
            let serialized = SerializedOrigin::parse(text.as_bytes())
                .map(|origin| origin.to_string())
                .unwrap_or_default();
            prop_assert!(serialized.starts_with("https://"), "{}", serialized);
            prop_assert!(serialized.ends_with(".example.com"), "{}", serialized);
            prop_assert!(!serialized["https://".len()..].contains(['@', '/', ':', '?', '#']));
        }
    }

    #[test]
    fn credentialed_policy_never_sends_star(
        origin in proptest::option::of(origin_like()),
        method in "[A-Za-z]{0,7}|\\PC{0,8}",
        request_headers in "\\PC{0,40}",
    ) {
        let policy = credentialed_policy();
        let origin_bytes = origin.as_deref().map(str::as_bytes);
        let actual = policy.actual_response(origin_bytes);
        let mut responses = vec![actual.headers];
        if let Some(origin) = &origin {
            let normalized = normalize_request_headers([request_headers.as_bytes()]);
            let preflight = policy.preflight(origin.as_bytes(), method.as_bytes(), &normalized);
            prop_assert_eq!(preflight.headers.is_empty(), !preflight.outcome.is_allowed());
            responses.push(preflight.headers);
        }
        for headers in responses {
            for (name, value) in &headers {
                if *name == ACCESS_CONTROL_ALLOW_ORIGIN {
                    prop_assert_ne!(value.as_str(), "*");
                    // Echo is exact, and only of an origin that was sent.
                    prop_assert_eq!(Some(value.as_str()), origin.as_deref());
                }
                prop_assert!(value.bytes().all(|byte| (b' '..=b'~').contains(&byte)));
            }
            if !headers.is_empty() {
                prop_assert!(headers.contains(&(ACCESS_CONTROL_ALLOW_CREDENTIALS, "true".to_string())));
            }
        }
    }

    #[test]
    fn request_header_normalization_never_panics_and_is_idempotent(
        lines in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 0..4),
    ) {
        let normalized = normalize_request_headers(lines.iter().map(Vec::as_slice));
        prop_assert_eq!(normalize_request_headers([normalized.as_bytes()]), normalized.clone());
        prop_assert!(!normalized.contains(", "));
        prop_assert!(!normalized.starts_with(',') && !normalized.ends_with(','));
    }

    #[test]
    fn equivalent_request_header_lists_normalize_alike(messy in messy_header_list()) {
        let normalized = normalize_request_headers(messy.lines.iter().map(String::as_bytes));
        prop_assert_eq!(normalized, messy.canonical);
    }

    #[test]
    fn classify_and_upstream_inspection_never_panic(
        method in "\\PC{0,8}",
        origin in proptest::option::of(prop::collection::vec(any::<u8>(), 0..32)),
        request_method in proptest::option::of(prop::collection::vec(any::<u8>(), 0..8)),
        acao in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..32), 0..3),
        acac in proptest::option::of(prop::collection::vec(any::<u8>(), 0..8)),
        vary_names_origin in any::<bool>(),
    ) {
        let _ = classify(&method, origin.as_deref(), request_method.as_deref());
        let acao_lines: Vec<&[u8]> = acao.iter().map(Vec::as_slice).collect();
        let inspected = inspect_upstream_response(
            origin.as_deref(),
            &acao_lines,
            acac.as_deref(),
            vary_names_origin,
        );
        // Sharing needs exactly one `*` and no Vary: Origin.
        if inspected.shared_across_origins {
            prop_assert!(!vary_names_origin);
            prop_assert_eq!(acao_lines.len(), 1);
        }
    }
}
