//! Table tests of the forwarding rule.
use super::*;

fn cidr(text: &str) -> Cidr {
    parse_cidr(text).unwrap()
}

fn policy(trusted: &[&str], strip: &[&str]) -> ForwardingPolicy {
    ForwardingPolicy {
        trusted_proxies: trusted.iter().map(|t| cidr(t)).collect(),
        strip_request_headers: strip.iter().map(|s| s.to_string()).collect(),
    }
}

fn facts<'a>(peer: &str, tls: bool, host: &'a str, method: &'a str) -> ForwardedRequest<'a> {
    ForwardedRequest {
        peer: Some(peer.parse().unwrap()),
        tls,
        host,
        local_port: Some(if tls { 8443 } else { 8080 }),
        method,
        from_cluster_peer: false,
    }
}

/// The upstream request's headers after the edits, lower-case names, in order.
fn apply(edits: &[HeaderEdit], request: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = request
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    for edit in edits {
        match edit {
            HeaderEdit::Remove(name) => out.retain(|(n, _)| n != name),
            HeaderEdit::RemoveNamed(name) => out.retain(|(n, _)| n != name),
            HeaderEdit::Set(name, value) => {
                out.retain(|(n, _)| n != name);
                out.push((name.to_string(), value.clone()));
            }
        }
    }
    out
}

fn run(
    policy: &ForwardingPolicy,
    facts: &ForwardedRequest<'_>,
    request: &[(&str, &str)],
) -> Vec<(String, String)> {
    let edits = policy.upstream_edits(facts, request.iter().map(|(n, v)| (*n, v.as_bytes())));
    apply(&edits, request)
}

fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut values = headers.iter().filter(|(n, _)| n == name);
    let first = values.next().map(|(_, v)| v.as_str());
    assert!(values.next().is_none(), "{name} sent twice: {headers:?}");
    first
}

const POISON: [(&str, &str); 10] = [
    ("Host", "api.example.com"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-For", "1.2.3.4"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Port", "1337"),
    ("Forwarded", "for=1.2.3.4;host=evil;proto=https"),
    ("X-Real-IP", "1.2.3.4"),
    ("X-Original-URL", "/admin"),
    ("x-rewrite-url", "/admin"),
    ("X-Host", "evil.example"),
];

#[test]
fn an_untrusted_client_cannot_set_any_forwarding_header() {
    let out = run(
        &policy(&[], &[]),
        &facts("203.0.113.9", false, "api.example.com", "GET"),
        &POISON,
    );
    assert_eq!(get(&out, "x-forwarded-for"), Some("203.0.113.9"));
    assert_eq!(get(&out, "x-forwarded-proto"), Some("http"));
    assert_eq!(get(&out, "x-forwarded-host"), Some("api.example.com"));
    assert_eq!(get(&out, "x-forwarded-port"), Some("8080"));
    assert_eq!(
        get(&out, "forwarded"),
        Some("for=203.0.113.9;host=api.example.com;proto=http")
    );
    assert_eq!(get(&out, "x-real-ip"), Some("203.0.113.9"));
    for dropped in ["x-original-url", "x-rewrite-url", "x-host"] {
        assert_eq!(get(&out, dropped), None);
    }
    assert_eq!(get(&out, "host"), Some("api.example.com"));
    let all: String = out.iter().map(|(_, v)| v.as_str()).collect();
    assert!(!all.contains("evil") && !all.contains("1.2.3.4") && !all.contains("1337"));
}

#[test]
fn a_trusted_proxy_keeps_and_extends_the_chain() {
    let out = run(
        &policy(&["10.0.0.0/8"], &[]),
        &facts("10.1.2.3", true, "api.example.com", "GET"),
        &POISON,
    );
    assert_eq!(get(&out, "x-forwarded-for"), Some("1.2.3.4, 10.1.2.3"));
    assert_eq!(get(&out, "x-forwarded-proto"), Some("https"));
    assert_eq!(get(&out, "x-forwarded-host"), Some("evil.example"));
    assert_eq!(get(&out, "x-forwarded-port"), Some("1337"));
    assert_eq!(
        get(&out, "forwarded"),
        Some("for=1.2.3.4;host=evil;proto=https, for=10.1.2.3;host=api.example.com;proto=https")
    );
    assert_eq!(get(&out, "x-real-ip"), Some("1.2.3.4"));
    // Override headers are dropped even from a trusted proxy.
    assert_eq!(get(&out, "x-original-url"), None);
    assert_eq!(get(&out, "x-host"), None);
}

#[test]
fn a_trusted_proxy_without_headers_gets_the_gateways_values() {
    let out = run(
        &policy(&["10.0.0.0/8"], &[]),
        &facts("10.1.2.3", false, "api.example.com:8080", "GET"),
        &[("Host", "api.example.com:8080")],
    );
    assert_eq!(get(&out, "x-forwarded-for"), Some("10.1.2.3"));
    assert_eq!(get(&out, "x-forwarded-host"), Some("api.example.com:8080"));
    assert_eq!(
        get(&out, "forwarded"),
        Some("for=10.1.2.3;host=\"api.example.com:8080\";proto=http")
    );
}

#[test]
fn several_lines_from_a_trusted_proxy_are_one_list() {
    let out = run(
        &policy(&["192.168.0.0/16"], &[]),
        &facts("192.168.1.1", false, "h", "GET"),
        &[
            ("x-forwarded-for", "1.1.1.1"),
            ("X-Forwarded-For", " 2.2.2.2 "),
        ],
    );
    assert_eq!(
        get(&out, "x-forwarded-for"),
        Some("1.1.1.1, 2.2.2.2, 192.168.1.1")
    );
}

#[test]
fn ipv6_and_mapped_peers() {
    let out = run(
        &policy(&["10.0.0.0/8"], &[]),
        &facts("::ffff:10.0.0.1", false, "h", "GET"),
        &[("x-forwarded-for", "1.1.1.1")],
    );
    // A dual-stack listener reports IPv4 peers as mapped addresses: still trusted, and
    // written as IPv4.
    assert_eq!(get(&out, "x-forwarded-for"), Some("1.1.1.1, 10.0.0.1"));
    let out = run(
        &policy(&[], &[]),
        &facts("2001:db8::1", false, "h", "GET"),
        &[],
    );
    assert_eq!(get(&out, "x-forwarded-for"), Some("2001:db8::1"));
    assert_eq!(
        get(&out, "forwarded"),
        Some("for=\"[2001:db8::1]\";host=h;proto=http")
    );
}

#[test]
fn method_overrides_are_dropped_only_where_answers_are_cached() {
    let request = [
        ("X-HTTP-Method-Override", "DELETE"),
        ("x-http-method", "PUT"),
    ];
    for method in ["GET", "HEAD", "OPTIONS"] {
        let out = run(
            &policy(&[], &[]),
            &facts("1.1.1.1", false, "h", method),
            &request,
        );
        assert_eq!(get(&out, "x-http-method-override"), None, "{method}");
        assert_eq!(get(&out, "x-http-method"), None, "{method}");
    }
    let out = run(
        &policy(&[], &[]),
        &facts("1.1.1.1", false, "h", "POST"),
        &request,
    );
    assert_eq!(get(&out, "x-http-method-override"), Some("DELETE"));
}

#[test]
fn a_route_strips_its_own_headers() {
    let out = run(
        &policy(&[], &["x-tenant", "cookie"]),
        &facts("1.1.1.1", false, "h", "GET"),
        &[("X-Tenant", "evil"), ("Cookie", "a=b"), ("Accept", "*/*")],
    );
    assert_eq!(get(&out, "x-tenant"), None);
    assert_eq!(get(&out, "cookie"), None);
    assert_eq!(get(&out, "accept"), Some("*/*"));
}

#[test]
fn the_upstream_gets_the_host_of_the_key() {
    for (sent, tls, upstream) in [
        ("EXAMPLE.com:80", false, "example.com"),
        ("example.com.", false, "example.com"),
        ("example.com:443", true, "example.com"),
        ("example.com:8080", false, "example.com:8080"),
        ("example.com", false, "example.com"),
    ] {
        let out = run(
            &policy(&[], &[]),
            &facts("1.1.1.1", tls, sent, "GET"),
            &[("Host", sent)],
        );
        assert_eq!(get(&out, "host"), Some(upstream), "{sent}");
        assert_eq!(get(&out, "x-forwarded-host"), Some(upstream), "{sent}");
    }
}

#[test]
fn a_host_that_cannot_be_a_field_value_is_not_forwarded() {
    let out = run(&policy(&[], &[]), &facts("1.1.1.1", false, "", "GET"), &[]);
    assert_eq!(get(&out, "x-forwarded-host"), None);
    assert_eq!(get(&out, "forwarded"), Some("for=1.1.1.1;proto=http"));
    let quoted = forwarded_value("a\"b\\c");
    assert_eq!(quoted, "\"a\\\"b\\\\c\"");
}

#[test]
fn cidrs_parse_and_match() {
    let table: [(&str, &str, bool); 10] = [
        ("10.0.0.0/8", "10.255.1.2", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("192.168.1.7", "192.168.1.7", true),
        ("192.168.1.7", "192.168.1.8", false),
        ("0.0.0.0/0", "8.8.8.8", true),
        ("0.0.0.0/0", "2001:db8::1", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::1", false),
        ("::/0", "::1", true),
        ("127.0.0.0/8", "::ffff:127.0.0.1", true),
    ];
    for (net, ip, inside) in table {
        assert_eq!(
            cidr(net).contains(ip.parse().unwrap()),
            inside,
            "{net} {ip}"
        );
    }
    assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
    assert_eq!(cidr(" ::1 ").to_string(), "::1/128");
}

#[test]
fn bad_cidrs_say_why() {
    assert_eq!(
        parse_cidr("10.0.0.0/33"),
        Err(CidrError::BadPrefix { max: 32 })
    );
    assert_eq!(parse_cidr("::/129"), Err(CidrError::BadPrefix { max: 128 }));
    assert_eq!(
        parse_cidr("10.0.0.0/+8"),
        Err(CidrError::BadPrefix { max: 32 })
    );
    assert_eq!(
        parse_cidr("10.0.0.0/"),
        Err(CidrError::BadPrefix { max: 32 })
    );
    assert_eq!(parse_cidr("example.com"), Err(CidrError::NotAnAddress));
    assert_eq!(parse_cidr("10.0.0/8"), Err(CidrError::NotAnAddress));
    assert_eq!(
        parse_cidr("10.1.2.3/8"),
        Err(CidrError::HostBits {
            network: "10.0.0.0/8".into()
        })
    );
    assert_eq!(
        parse_cidr("2001:db8::1/32"),
        Err(CidrError::HostBits {
            network: "2001:db8::/32".into()
        })
    );
}

#[test]
fn header_names_for_routes() {
    assert_eq!(header_name_problem("X-Tenant"), None);
    assert!(header_name_problem("").is_some());
    assert!(header_name_problem("x tenant").is_some());
    assert!(header_name_problem("x:y").is_some());
    assert!(header_name_problem("Host").is_some());
    assert!(header_name_problem("transfer-encoding").is_some());
}

#[test]
fn an_authenticated_cluster_peer_is_trusted_for_its_clients_forwarding_headers() {
    // What the node that received the client's request set, as the owner receives it.
    let from_node = [
        ("Host", "api.example.com"),
        ("X-Forwarded-For", "198.51.100.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Port", "8443"),
    ];
    let mut peer = facts("10.0.0.2", false, "api.example.com", "GET");
    peer.from_cluster_peer = true;
    let out = run(&policy(&[], &[]), &peer, &from_node);
    assert_eq!(get(&out, "x-forwarded-for"), Some("198.51.100.7, 10.0.0.2"));
    assert_eq!(get(&out, "x-forwarded-proto"), Some("https"));
    assert_eq!(get(&out, "x-forwarded-port"), Some("8443"));
    // The same headers from an ordinary client at that address are replaced.
    let out = run(
        &policy(&[], &[]),
        &facts("10.0.0.2", false, "api.example.com", "GET"),
        &from_node,
    );
    assert_eq!(get(&out, "x-forwarded-for"), Some("10.0.0.2"));
    assert_eq!(get(&out, "x-forwarded-proto"), Some("http"));
}
