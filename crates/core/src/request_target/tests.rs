use proptest::prelude::*;

use super::*;

fn input<'a>(method: &'a str, target: &'a [u8], hosts: &'a [&'a [u8]]) -> TargetInput<'a> {
    TargetInput {
        method,
        target,
        host_lines: hosts,
        authority: None,
        host_optional: false,
    }
}

fn ok(method: &str, target: &str, host: &str) -> (TargetForm, String, String) {
    let hosts: &[&[u8]] = &[host.as_bytes()];
    let parsed = parse(&input(method, target.as_bytes(), hosts))
        .unwrap_or_else(|e| panic!("{method} {target} Host {host}: {e}"));
    (parsed.form, parsed.host, parsed.path_and_query)
}

fn refused(method: &str, target: &str, host: &str) -> TargetError {
    let hosts: &[&[u8]] = &[host.as_bytes()];
    match parse(&input(method, target.as_bytes(), hosts)) {
        Ok(parsed) => panic!("{method} {target} Host {host}: accepted as {parsed:?}"),
        Err(e) => e,
    }
}

#[test]
fn origin_form_keeps_the_target_and_the_host() {
    assert_eq!(
        ok("GET", "/items?id=1", "shop.example"),
        (
            TargetForm::Origin,
            "shop.example".into(),
            "/items?id=1".into()
        )
    );
    assert_eq!(ok("GET", "/", "shop.example:8080").1, "shop.example:8080");
    assert_eq!(ok("GET", "/", "[::1]:8080").1, "[::1]:8080");
    assert_eq!(ok("GET", "/", " shop.example ").1, "shop.example");
}

#[test]
fn absolute_form_takes_its_authority_as_the_host_and_anchors_the_path() {
    for (target, host, path) in [
        ("http://shop.example/p?x=1", "shop.example", "/p?x=1"),
        ("https://shop.example/p", "shop.example", "/p"),
        ("HTTP://Shop.Example", "Shop.Example", "/"),
        ("http://shop.example?q=1", "shop.example", "/?q=1"),
        ("http://shop.example:81/a", "shop.example:81", "/a"),
    ] {
        assert_eq!(
            ok("GET", target, "other.example"),
            (TargetForm::Absolute, host.into(), path.into()),
            "{target}"
        );
    }
}

#[test]
fn targets_that_are_not_a_path_are_refused() {
    for target in [
        "evil-page?x=1",
        "admin/x",
        "foo://shop.example/admin",
        "shop.example:443",
        "//shop.example/p",
        "ftp://shop.example/",
        "http:/shop.example/",
    ] {
        // `//shop.example/p` starts with `/`: origin-form with an empty first segment is a
        // path, not an authority; it is accepted as one.
        if target.starts_with('/') {
            assert_eq!(ok("GET", target, "h").2, target);
            continue;
        }
        assert_eq!(refused("GET", target, "h"), TargetError::Form, "{target}");
    }
    assert_eq!(refused("GET", "", "h"), TargetError::Form);
    assert_eq!(refused("GET", "/a#frag", "h"), TargetError::Byte);
    assert_eq!(refused("GET", "/caf\u{e9}", "h"), TargetError::Byte);
    assert_eq!(refused("GET", "/a b", "h"), TargetError::Byte);
    assert_eq!(refused("GET", "/a\x7f", "h"), TargetError::Byte);
    for delimiter in ["\"", "<", ">", "`"] {
        assert_eq!(
            refused("GET", &format!("/a{delimiter}b?c"), "h"),
            TargetError::Byte
        );
        assert_eq!(
            refused("GET", &format!("/a?b{delimiter}c"), "h"),
            TargetError::Byte
        );
    }
    assert_eq!(ok("GET", "/a{b}|c^d\\e", "h").2, "/a{b}|c^d\\e");
}

#[test]
fn the_asterisk_is_only_for_options() {
    assert_eq!(ok("OPTIONS", "*", "h").0, TargetForm::Asterisk);
    assert_eq!(refused("GET", "*", "h"), TargetError::AsteriskNotOptions);
}

#[test]
fn hosts_must_be_authorities() {
    for host in [
        "user@shop.example",
        "shop.example/admin",
        "shop.example?x",
        "shop example",
        "shop.example:80a",
        "shop.example:123456",
        "a:b:c",
        "[::1",
        "[zz]",
        "[::1]x",
        ".",
        "...:80",
        "shop.example:",
    ] {
        if host == "shop.example:" {
            // An empty port is allowed by RFC 3986 (`port = *DIGIT`).
            assert_eq!(ok("GET", "/", host).1, host);
            continue;
        }
        assert_eq!(refused("GET", "/", host), TargetError::BadHost, "{host}");
    }
    assert_eq!(
        refused("GET", "http://user@shop.example/", "h"),
        TargetError::BadHost
    );
    assert_eq!(refused("GET", "http:///p", "h"), TargetError::MissingHost);
}

#[test]
fn a_request_needs_exactly_one_host() {
    let none: &[&[u8]] = &[];
    assert_eq!(
        parse(&input("GET", b"/", none)),
        Err(TargetError::MissingHost)
    );
    let two: &[&[u8]] = &[b"a", b"b"];
    assert_eq!(
        parse(&input("GET", b"/", two)),
        Err(TargetError::SeveralHosts)
    );
    assert_eq!(
        parse(&input("GET", b"http://a/", two)),
        Err(TargetError::SeveralHosts)
    );
    let empty: &[&[u8]] = &[b""];
    assert_eq!(
        parse(&input("GET", b"/", empty)),
        Err(TargetError::MissingHost)
    );
    let mut http10 = input("GET", b"/", none);
    http10.host_optional = true;
    assert_eq!(parse(&http10).map(|t| t.host), Ok(String::new()));
    let mut h2 = input("GET", b"/x", none);
    h2.authority = Some("shop.example");
    assert_eq!(parse(&h2).map(|t| t.host), Ok("shop.example".into()));
}

#[test]
fn path_excludes_the_query() {
    let hosts: &[&[u8]] = &[b"h"];
    let t = parse(&input("GET", b"/a/b?c=/d", hosts)).expect("parses");
    assert_eq!(t.path(), "/a/b");
    let t = parse(&input("GET", b"/a", hosts)).expect("parses");
    assert_eq!(t.path(), "/a");
}

proptest! {
    /// Whatever the bytes, an accepted target is origin-form (or `*`), its host a valid
    /// authority (or empty only where allowed), and the path the key sees is a prefix of what
    /// the upstream is sent.
    #[test]
    fn accepted_targets_are_always_origin_form(
        target in proptest::collection::vec(any::<u8>(), 0..40),
        host in proptest::collection::vec(any::<u8>(), 0..20),
        method in prop_oneof!["GET", "OPTIONS", "HEAD"],
    ) {
        let hosts: &[&[u8]] = &[&host];
        if let Ok(parsed) = parse(&input(&method, &target, hosts)) {
            prop_assert!(parsed.path_and_query.starts_with('/') || parsed.path_and_query == "*");
            prop_assert!(valid_authority(&parsed.host));
            prop_assert!(parsed.path_and_query.bytes().all(target_byte));
            prop_assert!(parsed.path_and_query.starts_with(parsed.path()));
        }
    }
}
