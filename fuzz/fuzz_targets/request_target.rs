//! The request-target rule on arbitrary targets and `Host` values: what the route match and the
//! key see (`RequestTarget`) and what the upstream is sent (its origin-form as an `http::Uri`,
//! with the key's host) agree, or the request is refused. The upstream's view, parsed again by
//! the same rule, makes the same cache key.
#![no_main]

use cors_edge_core::key::{key_host, primary_key, KeyParts};
use cors_edge_core::request_target::{parse, valid_authority, TargetForm, TargetInput};
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 4] = ["GET", "HEAD", "OPTIONS", "POST"];

fn key(host: &str, path_and_query: &str) -> Vec<u8> {
    primary_key(&KeyParts {
        route: "api",
        tls: false,
        host,
        path_and_query,
        preflight: None,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(flags & 3)];
    let host_optional = flags & 4 != 0;
    // Target, then host lines, separated by 0xFF (a byte neither may hold).
    let mut parts = rest.split(|&b| b == 0xFF);
    let target = parts.next().unwrap_or_default();
    let host_lines: Vec<&[u8]> = parts.take(3).collect();
    let input = TargetInput {
        method,
        target,
        host_lines: &host_lines,
        authority: None,
        host_optional,
    };
    let Ok(parsed) = parse(&input) else {
        return;
    };
    assert!(parsed.host.is_empty() || valid_authority(&parsed.host));
    if parsed.form == TargetForm::Asterisk {
        assert_eq!(method, "OPTIONS");
        return;
    }
    // What the gateway sends upstream: the origin-form as a URI, unchanged by parsing.
    let uri = match http::Uri::try_from(parsed.path_and_query.as_str()) {
        Ok(uri) => uri,
        Err(e) => panic!("accepted target {:?} is not a URI: {e}", parsed.path_and_query),
    };
    assert_eq!(
        uri.path_and_query().map(|pq| pq.as_str()),
        Some(parsed.path_and_query.as_str())
    );
    assert_eq!(uri.path(), parsed.path());
    assert!(uri.authority().is_none() && uri.scheme().is_none());
    // The upstream's request, read with the same rule, is the same URL and the same key.
    let sent_host = key_host(&parsed.host, false);
    let sent_lines: Vec<&[u8]> = if sent_host.is_empty() {
        Vec::new()
    } else {
        vec![sent_host.as_bytes()]
    };
    let again = parse(&TargetInput {
        method,
        target: parsed.path_and_query.as_bytes(),
        host_lines: &sent_lines,
        authority: None,
        host_optional,
    });
    let again = match again {
        Ok(again) => again,
        Err(e) => panic!("the upstream's request for {parsed:?} is refused: {e}"),
    };
    assert_eq!(again.path_and_query, parsed.path_and_query);
    assert_eq!(
        key(&again.host, &again.path_and_query),
        key(&parsed.host, &parsed.path_and_query)
    );
});
