//! The edge policy: request classes, compilation, actual responses, preflights, decisions.

use super::*;

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
