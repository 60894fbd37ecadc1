//! An upstream's CORS answer: its facts, unsafe reasons and the sharing rule.

use super::*;

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
