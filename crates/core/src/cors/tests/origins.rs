//! Origins: matching, serialization, patterns and allow lists.

use super::*;

#[test]
fn origin_matching_table() {
    let policy = credentialed_policy();
    let cases: &[(&str, bool)] = &[
        ("https://app.example.com", true),
        ("https://a.example.com", true),
        ("https://a.b.example.com", true),
        // The wildcard covers strict subdomains only.
        ("https://example.com", false),
        // Suffix bypasses.
        ("https://example.com.evil.com", false),
        ("https://evilexample.com", false),
        ("https://app.example.com.evil.com", false),
        ("https://evil.com/.example.com", false),
        ("https://evil.com?.example.com", false),
        ("https://evil.com#.example.com", false),
        // Userinfo tricks.
        ("https://a.example.com@evil.com", false),
        ("https://evil.com@a.example.com", false),
        // Scheme must match.
        ("http://app.example.com", false),
        ("http://a.example.com", false),
        ("wss://a.example.com", false),
        // Ports must match, default port is normalized away.
        ("https://a.example.com:8443", false),
        ("https://app.example.com:443", true),
        ("https://app.example.com:444", false),
        ("http://localhost:3000", true),
        ("http://localhost", false),
        ("http://localhost:3001", false),
        ("http://localhost:03000", true),
        ("http://localhost:99999", false),
        ("http://localhost:", false),
        // Letter case of scheme and host does not matter.
        ("https://APP.Example.COM", true),
        ("HTTPS://app.example.com", true),
        // Not serialized origins.
        ("https://app.example.com/", false),
        ("https://app.example.com/path", false),
        ("https://app.example.com.", false),
        ("https://app%2eexample.com", false),
        ("https://app.example.com%2f", false),
        ("https://app\u{e9}.example.com", false),
        ("app.example.com", false),
        ("//app.example.com", false),
        ("https:app.example.com", false),
        ("https://", false),
        ("", false),
        (" https://app.example.com", false),
        ("https://app.example.com ", false),
        ("https://a.com https://app.example.com", false),
        ("https://app.example.com, https://a.com", false),
        ("https://app.example.com\\@evil.com", false),
        ("https://*.example.com", false),
        // `null` is not allowed unless listed.
        ("null", false),
        // IPv6, canonical and not.
        ("http://[::1]:8080", true),
        ("http://[0:0:0:0:0:0:0:1]:8080", true),
        ("http://[::1]", false),
        ("http://[::1%25eth0]:8080", false),
        ("http://[::1:8080", false),
    ];
    for (origin, expected) in cases {
        assert_eq!(
            policy.allows_origin(origin.as_bytes()),
            *expected,
            "origin {origin:?}"
        );
    }
}

#[test]
fn null_origin_only_when_listed() {
    let with_null = compile(&spec_with_origins(&["null", "https://a.com"]));
    assert!(with_null.allows_origin(b"null"));
    assert!(!with_null.allows_origin(b"NULL"));
    assert!(!with_null.allows_origin(b"null "));
    assert!(!with_null.allows_origin(b"https://null"));
    let without = compile(&spec_with_origins(&["https://a.com"]));
    assert!(!without.allows_origin(b"null"));
}

#[test]
fn wildcard_pattern_with_port() {
    let policy = compile(&spec_with_origins(&["https://*.example.com:8443"]));
    assert!(policy.allows_origin(b"https://a.example.com:8443"));
    assert!(!policy.allows_origin(b"https://a.example.com"));
    assert!(!policy.allows_origin(b"https://example.com:8443"));
}

#[test]
fn ip_hosts_never_match_domain_wildcards() {
    // `*.0.1` cannot even be written: a numeric last label means an IPv4 address.
    assert!(CorsPolicy::compile(&spec_with_origins(&["http://*.0.1"])).is_err());
    let policy = compile(&spec_with_origins(&["http://*.localhost", "http://*.com"]));
    assert!(policy.allows_origin(b"http://app.localhost"));
    assert!(!policy.allows_origin(b"http://127.0.0.1"));
    assert!(!policy.allows_origin(b"http://[::1]"));
}

#[test]
fn serialized_origin_normalization() {
    let cases: &[(&str, &str)] = &[
        ("https://App.Example.com:443", "https://app.example.com"),
        ("http://example.com:80", "http://example.com"),
        ("http://example.com:443", "http://example.com:443"),
        ("HTTP://[0:0::1]:8080", "http://[::1]:8080"),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
        ("chrome-extension://abcdef", "chrome-extension://abcdef"),
        ("null", "null"),
    ];
    for (input, expected) in cases {
        let parsed = SerializedOrigin::parse(input.as_bytes());
        assert_eq!(
            parsed.map(|origin| origin.to_string()).as_deref(),
            Ok(*expected),
            "origin {input:?}"
        );
    }
}

#[test]
fn serialized_origin_errors() {
    let cases: &[(&[u8], OriginError)] = &[
        (b"", OriginError::Empty),
        (b"https://a.com/", OriginError::HasPath),
        (b"https://a.com?x", OriginError::HasQuery),
        (b"https://a.com#x", OriginError::HasFragment),
        (b"https://user@a.com", OriginError::HasUserinfo),
        (b"https://user:pass@a.com/", OriginError::HasUserinfo),
        (b"https://a .com", OriginError::Whitespace),
        (b"https://a.com\r\n", OriginError::Whitespace),
        (b"https://\xc3\xa9.com", OriginError::NonAscii),
        (b"a.com", OriginError::MissingScheme),
        (b"://a.com", OriginError::MissingScheme),
        (b"1http://a.com", OriginError::InvalidScheme),
        (b"https://a.com:65536", OriginError::InvalidPort),
        (b"https://a.com:-1", OriginError::InvalidPort),
        (b"https://a.com:1:2", OriginError::InvalidPort),
        (b"https://a..com", OriginError::InvalidHost),
        (b"https://a.1", OriginError::InvalidHost),
        (b"https://01.2.3.4", OriginError::InvalidHost),
        (b"https://[::g]", OriginError::InvalidHost),
        (b"https://a%41.com", OriginError::InvalidHost),
        (b"https://*.a.com", OriginError::MisplacedWildcard),
    ];
    for (input, expected) in cases {
        assert_eq!(
            SerializedOrigin::parse(input).as_ref(),
            Err(expected),
            "origin {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn pattern_parsing_table() {
    let accepted: &[(&str, &str)] = &[
        ("*", "*"),
        ("null", "null"),
        ("https://App.Example.com", "https://app.example.com"),
        ("https://*.Example.com", "https://*.example.com"),
        ("https://*.example.com:443", "https://*.example.com"),
        ("https://*.example.com:8443", "https://*.example.com:8443"),
        ("http://*.localhost:3000", "http://*.localhost:3000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ];
    for (entry, expected) in accepted {
        let pattern = OriginPattern::parse(entry).map(|pattern| pattern.to_string());
        assert_eq!(pattern.as_deref(), Ok(*expected), "pattern {entry:?}");
    }
    let refused: &[(&str, OriginError)] = &[
        ("", OriginError::Empty),
        ("https://app.example.com/", OriginError::HasPath),
        ("https://app.example.com/api", OriginError::HasPath),
        ("*.example.com", OriginError::MissingScheme),
        ("app.example.com", OriginError::MissingScheme),
        ("https://a*.example.com", OriginError::MisplacedWildcard),
        ("https://*example.com", OriginError::MisplacedWildcard),
        ("https://a.*.example.com", OriginError::MisplacedWildcard),
        ("https://*.*.example.com", OriginError::MisplacedWildcard),
        ("https://*", OriginError::MisplacedWildcard),
        ("https://*.", OriginError::InvalidHost),
        ("https://*.1.2.3.4", OriginError::MisplacedWildcard),
        ("https://*.example.com:*", OriginError::InvalidPort),
        ("*://app.example.com", OriginError::InvalidScheme),
        ("https://user@app.example.com", OriginError::HasUserinfo),
        ("NULL", OriginError::MissingScheme),
    ];
    for (entry, expected) in refused {
        assert_eq!(
            OriginPattern::parse(entry).as_ref(),
            Err(expected),
            "pattern {entry:?}"
        );
    }
}

#[test]
fn allow_list_matches_exact_subdomain_and_null_entries() {
    let mut list = AllowList::default();
    for entry in [
        "https://a.example",
        "https://A.example:443",
        "https://*.b.example",
        "null",
        "null",
    ] {
        list.insert(OriginPattern::parse(entry).unwrap());
    }
    assert_eq!(
        list.len(),
        3,
        "duplicates after normalization are kept once"
    );
    for (origin, allowed) in [
        ("https://a.example", true),
        ("https://a.example:443", true),
        ("http://a.example", false),
        ("https://x.a.example", false),
        ("https://x.b.example", true),
        ("https://b.example", false),
        ("null", true),
    ] {
        let parsed = SerializedOrigin::parse(origin.as_bytes()).unwrap();
        assert_eq!(list.matches(&parsed), allowed, "{origin}");
    }
    assert!(AllowList::default().is_empty());
}
