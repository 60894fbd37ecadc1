//! Table-driven tests of the CORS engine through its public API.

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
fn classification_table() {
    use RequestKind::*;
    /// Method, `Origin`, `Access-Control-Request-Method`, expected kind.
    type Case = (
        &'static str,
        Option<&'static [u8]>,
        Option<&'static [u8]>,
        RequestKind,
    );
    let cases: &[Case] = &[
        ("GET", None, None, NoOrigin),
        ("GET", Some(b"https://a.com"), None, Cors),
        ("POST", Some(b"https://a.com"), None, Cors),
        // ACRM on a non-OPTIONS request does not make it a preflight.
        ("GET", Some(b"https://a.com"), Some(b"PUT"), Cors),
        ("DELETE", None, Some(b"PUT"), NoOrigin),
        ("OPTIONS", Some(b"https://a.com"), Some(b"PUT"), Preflight),
        ("OPTIONS", Some(b"null"), Some(b"GET"), Preflight),
        ("OPTIONS", Some(b"https://a.com"), Some(b""), Preflight),
        ("OPTIONS", Some(b"https://a.com"), None, PlainOptions),
        ("OPTIONS", None, Some(b"PUT"), PlainOptions),
        ("OPTIONS", None, None, PlainOptions),
        // Methods are case-sensitive; `options` is not OPTIONS.
        ("options", Some(b"https://a.com"), Some(b"PUT"), Cors),
    ];
    for (method, origin, request_method, expected) in cases {
        assert_eq!(
            classify(method, *origin, *request_method),
            *expected,
            "{method} origin={origin:?} acrm={request_method:?}"
        );
    }
    assert_eq!(Preflight.as_str(), "preflight");
}

#[test]
fn request_header_normalization_table() {
    let cases: &[(&[&[u8]], &str)] = &[
        (&[], ""),
        (&[b""], ""),
        (&[b" , ,\t"], ""),
        (&[b"content-type"], "content-type"),
        (&[b"X-B, x-a"], "x-a,x-b"),
        (&[b"x-a,x-a, X-A"], "x-a"),
        (&[b"  x-b\t,\tx-a  "], "x-a,x-b"),
        (&[b"x-c", b"x-a, x-b", b""], "x-a,x-b,x-c"),
        (&[b"x-a,,x-b,"], "x-a,x-b"),
        (&[b",Authorization"], "authorization"),
        (
            &[b"content-type,authorization,x-requested-with"],
            "authorization,content-type,x-requested-with",
        ),
        // Invalid names are kept, lowercased, so they deny the preflight instead of vanishing.
        (&[b"x-a, Bad Name"], "bad name,x-a"),
        (&[b"x-a, a:b"], "a:b,x-a"),
        (&[b"\xffX"], "\u{fffd}x"),
    ];
    for (lines, expected) in cases {
        let normalized = normalize_request_headers(lines.iter().copied());
        assert_eq!(&normalized, expected, "lines {lines:?}");
        assert_eq!(
            normalize_request_headers([normalized.as_bytes()]),
            normalized,
            "idempotent for {lines:?}"
        );
    }
}

#[test]
fn policy_compile_errors() {
    let base = PolicySpec {
        allow_origins: strings(&["https://a.com"]),
        allow_credentials: true,
        ..PolicySpec::default()
    };
    let cases: Vec<(PolicySpec, PolicyError)> = vec![
        (
            PolicySpec {
                allow_any_origin: true,
                ..base.clone()
            },
            PolicyError::AnyOriginWithCredentials,
        ),
        (
            PolicySpec {
                allow_origins: strings(&["https://a.com", "*"]),
                ..base.clone()
            },
            PolicyError::WildcardOriginWithCredentials,
        ),
        (
            PolicySpec {
                allow_origins: strings(&["https://a.com/"]),
                ..base.clone()
            },
            PolicyError::InvalidOrigin {
                entry: "https://a.com/".to_string(),
                reason: OriginError::HasPath,
            },
        ),
        (
            PolicySpec {
                allow_methods: strings(&["GET", "BAD METHOD"]),
                ..base.clone()
            },
            PolicyError::InvalidMethod {
                entry: "BAD METHOD".to_string(),
            },
        ),
        (
            PolicySpec {
                allow_methods: strings(&["*"]),
                ..base.clone()
            },
            PolicyError::WildcardWithCredentials {
                field: "allow_methods",
            },
        ),
        (
            PolicySpec {
                allow_headers: strings(&["X-Ok", "X:Bad"]),
                ..base.clone()
            },
            PolicyError::InvalidHeaderName {
                field: "allow_headers",
                entry: "X:Bad".to_string(),
            },
        ),
        (
            PolicySpec {
                allow_headers: strings(&["*"]),
                ..base.clone()
            },
            PolicyError::WildcardWithCredentials {
                field: "allow_headers",
            },
        ),
        (
            PolicySpec {
                expose_headers: strings(&["*"]),
                ..base.clone()
            },
            PolicyError::WildcardWithCredentials {
                field: "expose_headers",
            },
        ),
        (
            PolicySpec {
                expose_headers: strings(&[""]),
                ..base.clone()
            },
            PolicyError::InvalidHeaderName {
                field: "expose_headers",
                entry: String::new(),
            },
        ),
    ];
    for (spec, expected) in cases {
        assert_eq!(CorsPolicy::compile(&spec), Err(expected), "spec {spec:?}");
    }
}

#[test]
fn policy_error_messages_name_the_entry() {
    let error = CorsPolicy::compile(&spec_with_origins(&["https://a*.example.com"]))
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(error.contains("\"https://a*.example.com\""), "{error}");
    assert!(error.contains("allow_origins"), "{error}");
}

#[test]
fn wildcards_are_fine_without_credentials() {
    let policy = compile(&PolicySpec {
        allow_origins: strings(&["*"]),
        allow_methods: strings(&["*"]),
        allow_headers: strings(&["*"]),
        expose_headers: strings(&["*"]),
        ..PolicySpec::default()
    });
    assert!(policy.allows_any_origin());
    assert!(!policy.varies_by_origin());
    assert!(policy.allows_origin(b"https://anything.test"));
}

#[test]
fn actual_response_table() {
    let policy = credentialed_policy();
    let cases: &[(Option<&str>, Decision, Option<&str>)] = &[
        (
            Some("https://app.example.com"),
            Decision::Allowed,
            Some("https://app.example.com"),
        ),
        // The origin is echoed exactly as sent, since the browser compares bytes.
        (
            Some("https://A.example.com"),
            Decision::Allowed,
            Some("https://A.example.com"),
        ),
        (Some("https://evil.com"), Decision::DeniedOrigin, None),
        (
            Some("https://example.com.evil.com"),
            Decision::DeniedOrigin,
            None,
        ),
        (Some("https://a.com/"), Decision::InvalidOrigin, None),
        (Some("null"), Decision::DeniedOrigin, None),
        (None, Decision::NoOrigin, None),
    ];
    for (origin, outcome, allow_origin) in cases {
        let decision = policy.actual_response(origin.map(str::as_bytes));
        assert_eq!(decision.outcome, *outcome, "origin {origin:?}");
        assert_eq!(
            header(&decision.headers, ACCESS_CONTROL_ALLOW_ORIGIN),
            *allow_origin,
            "origin {origin:?}"
        );
        if allow_origin.is_some() {
            assert_eq!(
                header(&decision.headers, ACCESS_CONTROL_ALLOW_CREDENTIALS),
                Some("true")
            );
            assert_eq!(
                header(&decision.headers, ACCESS_CONTROL_EXPOSE_HEADERS),
                Some("etag, link")
            );
        } else {
            assert!(decision.headers.is_empty(), "origin {origin:?}");
        }
        // Actual responses never carry preflight grants.
        assert_eq!(
            header(&decision.headers, ACCESS_CONTROL_ALLOW_METHODS),
            None
        );
    }
    assert!(policy.varies_by_origin());
}

#[test]
fn any_origin_answers_star_without_credentials() {
    let policy = compile(&PolicySpec {
        allow_any_origin: true,
        expose_headers: strings(&["X-Total"]),
        ..PolicySpec::default()
    });
    for origin in [
        Some(&b"https://whoever.test"[..]),
        Some(b"null"),
        Some(b"garbage"),
        None,
    ] {
        let decision = policy.actual_response(origin);
        assert_eq!(
            header(&decision.headers, ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("*")
        );
        assert_eq!(
            header(&decision.headers, ACCESS_CONTROL_ALLOW_CREDENTIALS),
            None
        );
        assert_eq!(
            header(&decision.headers, ACCESS_CONTROL_EXPOSE_HEADERS),
            Some("x-total")
        );
        let expected = if origin.is_some() {
            Decision::AllowedAny
        } else {
            Decision::NoOrigin
        };
        assert_eq!(decision.outcome, expected);
    }
}

#[test]
fn preflight_table() {
    let policy = credentialed_policy();
    let origin = "https://app.example.com";
    let cases: &[(&str, &str, &str, Decision)] = &[
        (origin, "PUT", "", Decision::Allowed),
        (
            origin,
            "PATCH",
            "content-type,x-requested-with",
            Decision::Allowed,
        ),
        (origin, "DELETE", "authorization", Decision::Allowed),
        // Safelisted methods are always allowed, even when not configured.
        (origin, "HEAD", "", Decision::Allowed),
        // Configured `put` was upper-cased, as browsers upper-case it.
        (origin, "PUT", "content-type", Decision::Allowed),
        // Other methods are case-sensitive: browsers send `patch` as written.
        (origin, "patch", "", Decision::DeniedMethod),
        (origin, "get", "", Decision::DeniedMethod),
        (origin, "OPTIONS", "", Decision::DeniedMethod),
        (origin, "", "", Decision::DeniedMethod),
        (origin, "PU T", "", Decision::DeniedMethod),
        (origin, "PUT", "x-unknown", Decision::DeniedHeaders),
        (
            origin,
            "PUT",
            "content-type,x-unknown",
            Decision::DeniedHeaders,
        ),
        // Safelisted header names still need allowing when a browser lists them.
        (origin, "POST", "accept", Decision::DeniedHeaders),
        (origin, "PUT", "bad name", Decision::DeniedHeaders),
        // Hand-written lists are tolerated: the policy re-splits and lowercases.
        (
            origin,
            "PUT",
            " Content-Type , X-Requested-With",
            Decision::Allowed,
        ),
        ("https://evil.com", "PUT", "", Decision::DeniedOrigin),
        (
            "https://app.example.com/",
            "GET",
            "",
            Decision::InvalidOrigin,
        ),
    ];
    for (origin, method, request_headers, outcome) in cases {
        let decision = policy.preflight(origin.as_bytes(), method.as_bytes(), request_headers);
        assert_eq!(
            decision.outcome, *outcome,
            "preflight {origin} {method:?} {request_headers:?}"
        );
        assert_eq!(decision.headers.is_empty(), !outcome.is_allowed());
    }
}

#[test]
fn granted_preflight_headers() {
    let policy = credentialed_policy();
    let decision = policy.preflight(
        b"https://a.example.com",
        b"PATCH",
        "content-type,x-requested-with",
    );
    assert_eq!(decision.outcome, Decision::Allowed);
    assert_eq!(
        decision.headers,
        vec![
            (
                ACCESS_CONTROL_ALLOW_ORIGIN,
                "https://a.example.com".to_string()
            ),
            (ACCESS_CONTROL_ALLOW_CREDENTIALS, "true".to_string()),
            (
                ACCESS_CONTROL_ALLOW_METHODS,
                "GET, POST, PUT, PATCH, DELETE".to_string()
            ),
            (
                ACCESS_CONTROL_ALLOW_HEADERS,
                "authorization, content-type, x-requested-with".to_string()
            ),
            (ACCESS_CONTROL_MAX_AGE, "600".to_string()),
        ]
    );
    assert_eq!(policy.preflight_max_age(), Some(Duration::from_secs(600)));
}

#[test]
fn wildcard_headers_never_cover_authorization() {
    let policy = compile(&PolicySpec {
        allow_any_origin: true,
        allow_methods: strings(&["*"]),
        allow_headers: strings(&["*"]),
        ..PolicySpec::default()
    });
    let granted = policy.preflight(b"https://x.test", b"PURGE", "x-a,x-b");
    assert_eq!(granted.outcome, Decision::AllowedAny);
    assert_eq!(
        header(&granted.headers, ACCESS_CONTROL_ALLOW_ORIGIN),
        Some("*")
    );
    assert_eq!(
        header(&granted.headers, ACCESS_CONTROL_ALLOW_METHODS),
        Some("PURGE")
    );
    assert_eq!(
        header(&granted.headers, ACCESS_CONTROL_ALLOW_HEADERS),
        Some("x-a,x-b")
    );
    assert_eq!(header(&granted.headers, ACCESS_CONTROL_MAX_AGE), None);
    let denied = policy.preflight(b"https://x.test", b"GET", "authorization,x-a");
    assert_eq!(denied.outcome, Decision::DeniedHeaders);
    assert!(denied.headers.is_empty());
    // Wildcard does not make invalid names acceptable either.
    let invalid = policy.preflight(b"https://x.test", b"GET", "bad name");
    assert_eq!(invalid.outcome, Decision::DeniedHeaders);

    let listed = compile(&PolicySpec {
        allow_any_origin: true,
        allow_headers: strings(&["*", "Authorization"]),
        ..PolicySpec::default()
    });
    let granted = listed.preflight(b"https://x.test", b"GET", "authorization,x-a");
    assert_eq!(granted.outcome, Decision::AllowedAny);
    // Echoed, not `*`, because `*` alone would not grant authorization.
    assert_eq!(
        header(&granted.headers, ACCESS_CONTROL_ALLOW_HEADERS),
        Some("authorization,x-a")
    );
}

#[test]
fn empty_method_list_grants_only_safelisted_methods() {
    let policy = compile(&spec_with_origins(&["https://a.com"]));
    let granted = policy.preflight(b"https://a.com", b"POST", "");
    assert_eq!(granted.outcome, Decision::Allowed);
    assert_eq!(
        header(&granted.headers, ACCESS_CONTROL_ALLOW_METHODS),
        Some("POST")
    );
    assert_eq!(header(&granted.headers, ACCESS_CONTROL_ALLOW_HEADERS), None);
    assert_eq!(
        header(&granted.headers, ACCESS_CONTROL_ALLOW_CREDENTIALS),
        None
    );
    let denied = policy.preflight(b"https://a.com", b"PUT", "");
    assert_eq!(denied.outcome, Decision::DeniedMethod);
}

#[test]
fn star_never_goes_with_credentials() {
    // Whatever the input, a compiled policy never pairs `*` with credentials.
    let policy = credentialed_policy();
    let decisions = [
        policy.actual_response(Some(b"https://a.example.com")),
        policy.actual_response(Some(b"*")),
        policy.actual_response(None),
    ];
    for decision in decisions {
        assert_ne!(
            header(&decision.headers, ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("*")
        );
    }
}

#[test]
fn decision_labels() {
    let labels: Vec<&str> = [
        Decision::Allowed,
        Decision::AllowedAny,
        Decision::NoOrigin,
        Decision::InvalidOrigin,
        Decision::DeniedOrigin,
        Decision::DeniedMethod,
        Decision::DeniedHeaders,
    ]
    .iter()
    .map(Decision::as_str)
    .collect();
    assert_eq!(
        labels,
        [
            "allowed",
            "allowed_any",
            "no_origin",
            "invalid_origin",
            "denied_origin",
            "denied_method",
            "denied_headers"
        ]
    );
}

#[test]
fn upstream_inspection_table() {
    use UnsafeReason::*;
    const APP: &[u8] = b"https://app.example.com";
    const EVIL: &[u8] = b"https://evil.com";
    struct Case {
        name: &'static str,
        origin: Option<&'static [u8]>,
        acao: &'static [&'static [u8]],
        acac: Option<&'static [u8]>,
        vary_origin: bool,
        shared: bool,
        reasons: &'static [UnsafeReason],
    }
    let cases = [
        Case {
            name: "correct echo with Vary: Origin",
            origin: Some(APP),
            acao: &[APP],
            acac: Some(b"true"),
            vary_origin: true,
            shared: false,
            reasons: &[],
        },
        Case {
            name: "echo without Vary: Origin is still stored per origin",
            origin: Some(APP),
            acao: &[APP],
            acac: None,
            vary_origin: false,
            shared: false,
            reasons: &[AcaoWithoutVary],
        },
        Case {
            name: "ACAO cached upstream for one origin replayed to another",
            origin: Some(EVIL),
            acao: &[APP],
            acac: None,
            vary_origin: false,
            shared: false,
            reasons: &[AcaoWithoutVary, AcaoOtherOrigin],
        },
        Case {
            name: "ACAO compared byte for byte, like the browser does",
            origin: Some(b"https://App.example.com"),
            acao: &[APP],
            acac: None,
            vary_origin: true,
            shared: false,
            reasons: &[AcaoOtherOrigin],
        },
        Case {
            name: "disallowed origin answered without ACAO stays that origin's variant",
            origin: Some(EVIL),
            acao: &[],
            acac: None,
            vary_origin: false,
            shared: false,
            reasons: &[],
        },
        Case {
            name: "no ACAO, no Origin: the no-origin variant",
            origin: None,
            acao: &[],
            acac: None,
            vary_origin: false,
            shared: false,
            reasons: &[],
        },
        Case {
            name: "star without Vary is shared",
            origin: Some(APP),
            acao: &[b"*"],
            acac: None,
            vary_origin: false,
            shared: true,
            reasons: &[],
        },
        Case {
            name: "star for a request without Origin is shared",
            origin: None,
            acao: &[b" * "],
            acac: None,
            vary_origin: false,
            shared: true,
            reasons: &[],
        },
        Case {
            name: "star with Vary: Origin is honoured per origin",
            origin: Some(APP),
            acao: &[b"*"],
            acac: None,
            vary_origin: true,
            shared: false,
            reasons: &[],
        },
        Case {
            name: "star with credentials",
            origin: Some(APP),
            acao: &[b"*"],
            acac: Some(b"true"),
            vary_origin: false,
            shared: true,
            reasons: &[WildcardWithCredentials],
        },
        Case {
            name: "star with credentials spelled in another case is not credentials",
            origin: Some(APP),
            acao: &[b"*"],
            acac: Some(b"TRUE"),
            vary_origin: false,
            shared: true,
            reasons: &[],
        },
        Case {
            name: "two ACAO field lines",
            origin: Some(APP),
            acao: &[APP, b"*"],
            acac: None,
            vary_origin: true,
            shared: false,
            reasons: &[MultipleAcao],
        },
        Case {
            name: "comma list in one line, no Vary",
            origin: Some(APP),
            acao: &[b"https://app.example.com, https://b.com"],
            acac: None,
            vary_origin: false,
            shared: false,
            reasons: &[AcaoWithoutVary, MultipleAcao],
        },
        Case {
            name: "space-separated list",
            origin: Some(APP),
            acao: &[b"https://app.example.com https://b.com"],
            acac: None,
            vary_origin: true,
            shared: false,
            reasons: &[MultipleAcao],
        },
        Case {
            name: "ACAO naming an origin on a request without Origin",
            origin: None,
            acao: &[APP],
            acac: None,
            vary_origin: true,
            shared: false,
            reasons: &[AcaoWithoutRequestOrigin],
        },
        Case {
            name: "null ACAO echoing a null origin",
            origin: Some(b"null"),
            acao: &[b"null"],
            acac: None,
            vary_origin: true,
            shared: false,
            reasons: &[],
        },
    ];
    for case in cases {
        let inspected =
            inspect_upstream_response(case.origin, case.acao, case.acac, case.vary_origin);
        assert_eq!(
            inspected.shared_across_origins, case.shared,
            "{}",
            case.name
        );
        assert_eq!(inspected.stored_per_origin(), !case.shared, "{}", case.name);
        assert_eq!(inspected.unsafe_reasons, case.reasons, "{}", case.name);
    }
}

#[test]
fn unsafe_reason_labels() {
    let labels: Vec<&str> = [
        UnsafeReason::AcaoWithoutVary,
        UnsafeReason::WildcardWithCredentials,
        UnsafeReason::AcaoOtherOrigin,
        UnsafeReason::MultipleAcao,
        UnsafeReason::AcaoWithoutRequestOrigin,
    ]
    .iter()
    .map(UnsafeReason::as_str)
    .collect();
    assert_eq!(
        labels,
        [
            "acao_without_vary",
            "wildcard_with_credentials",
            "acao_other_origin",
            "multiple_acao",
            "acao_without_request_origin"
        ]
    );
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

#[test]
fn shared_across_origins_agrees_with_the_full_facts() {
    type Lines<'a> = &'a [&'a [u8]];
    let cases: [(Lines, Lines, bool); 8] = [
        (&[b"*"], &[], true),
        (&[b" * "], &[b"Accept-Encoding"], true),
        (&[b"*"], &[b"Origin"], false),
        (&[b"*"], &[b"accept, ORIGIN"], false),
        (&[b"*"], &[b"*"], false),
        (&[b"https://a.example"], &[], false),
        (&[], &[], false),
        (&[b"*", b"*"], &[], false),
    ];
    for (acao, vary, shared) in cases {
        assert_eq!(
            shared_across_origins(acao, vary.iter().copied()),
            shared,
            "{acao:?} {vary:?}"
        );
        assert_eq!(
            upstream_response_facts(None, acao, None, vary.iter().copied()).shared_across_origins,
            shared,
            "{acao:?} {vary:?}"
        );
    }
}
