//! The freshness module on arbitrary bytes: `Cache-Control` parsing is deterministic, stays
//! within its documented bounds and survives a Display round trip; `storage_decision`,
//! `request_requires_revalidation` and `preflight_ttl` never panic and keep their invariants.
//!
//! Input layout: two bytes of flags, then newline-separated lines dealt round-robin to the
//! response `Cache-Control`, request `Cache-Control`, `Expires`, `Date`, `Age`, `Vary` and
//! `Access-Control-Max-Age` fields, so one input exercises every header parser together. Flag
//! bits also hand the response `Cache-Control` lines to the targeted-field (RFC 9213) and
//! `Surrogate-Control` parsers, which must stay within the same bounds.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cors_edge_core::freshness::{
    parse_surrogate_control, parse_targeted, preflight_ttl, request_requires_revalidation,
    storage_decision, CacheControl, FieldScope, MaxStale, Policy, StorageRequest, ResponseFacts,
    StorageDecision, Stored, DELTA_SECONDS_MAX,
};
use libfuzzer_sys::fuzz_target;

fn check_scope(scope: &Option<FieldScope>) {
    if let Some(FieldScope::Fields(fields)) = scope {
        assert!(!fields.is_empty());
        assert!(
            fields.windows(2).all(|pair| pair[0] < pair[1]),
            "sorted and unique"
        );
    }
}

fn check_bounds(parsed: &CacheControl) {
    let max_stale = match parsed.max_stale {
        Some(MaxStale::Seconds(seconds)) => Some(seconds),
        _ => None,
    };
    for seconds in [
        parsed.max_age,
        parsed.s_maxage,
        parsed.stale_while_revalidate,
        parsed.stale_if_error,
        parsed.min_fresh,
        max_stale,
    ]
    .into_iter()
    .flatten()
    {
        assert!(seconds <= DELTA_SECONDS_MAX);
    }
    check_scope(&parsed.no_cache);
    check_scope(&parsed.private);
}

fn check_cache_control(lines: &[&[u8]]) -> CacheControl {
    let parsed = CacheControl::parse(lines.iter().copied());
    assert_eq!(CacheControl::parse(lines.iter().copied()), parsed);
    check_bounds(&parsed);
    let text = parsed.to_string();
    assert_eq!(CacheControl::parse([text.as_bytes()]), parsed, "{text}");
    parsed
}

fuzz_target!(|data: &[u8]| {
    let (flags, rest) = match data {
        [a, b, rest @ ..] => ([*a, *b], rest),
        _ => ([0, 0], data),
    };
    let mut fields: [Vec<&[u8]>; 7] = Default::default();
    for (i, line) in rest.split(|&byte| byte == b'\n').enumerate() {
        fields[i % 7].push(line);
    }
    let [resp_cc, req_cc, expires, date, age, vary, acma] = &fields;

    check_cache_control(resp_cc);
    let request_cc = check_cache_control(req_cc);
    if let Some(targeted) = parse_targeted(resp_cc) {
        check_bounds(&targeted);
    }
    if let Some(surrogate) = parse_surrogate_control(resp_cc) {
        check_bounds(&surrogate);
    }
    let targeted_lines = [resp_cc.clone()];
    let targeted: &[Vec<&[u8]>] = if flags[1] & 4 != 0 {
        &targeted_lines
    } else {
        &[]
    };
    let surrogate: &[&[u8]] = if flags[1] & 8 != 0 { resp_cc } else { &[] };

    let received = UNIX_EPOCH + Duration::from_secs(1_704_067_200);
    let req = StorageRequest {
        method: if flags[0] & 1 == 0 { "GET" } else { "HEAD" },
        cache_control: Some(&CacheControl::parse(req_cc.iter().copied())),
        authorization: flags[0] & 2 != 0,
        sent_at: received - Duration::from_secs(u64::from(flags[0] >> 4)),
    };
    let status = [
        200, 203, 204, 206, 301, 304, 404, 410, 500, 503, 100, 0, 999,
    ][usize::from(flags[1]) % 13];
    let resp = ResponseFacts {
        status,
        cache_control: resp_cc,
        targeted,
        surrogate_control: surrogate,
        expires,
        date,
        age,
        vary,
        set_cookie: flags[0] & 4 != 0,
        has_validator: flags[0] & 8 != 0,
        received_at: received,
    };
    let cap = Duration::from_secs(u64::from(flags[1]) * 60);
    let policy = Policy {
        max_ttl: (flags[1] & 1 == 0).then_some(cap),
        default_stale_while_revalidate: Duration::from_secs(10),
        default_stale_if_error: Duration::from_secs(60),
    };
    if let StorageDecision::Store(f) = storage_decision(&req, &resp, &policy) {
        assert_eq!(f.fresh_for, f.lifetime.saturating_sub(f.initial_age));
        assert!(f.initial_age <= Duration::from_secs(u64::from(DELTA_SECONDS_MAX)));
        assert!(policy.max_ttl.is_none_or(|cap| f.lifetime <= cap));
        assert!(
            !f.must_revalidate
                || (f.stale_while_revalidate.is_zero() && f.stale_if_error.is_zero())
        );
        assert!(!f.fresh_for.is_zero() || resp.has_validator);
        assert!(!resp.set_cookie || f.strip_headers.iter().any(|h| h == "set-cookie"));
        // The entry's creation time must be representable for the Age arithmetic later.
        let created = received
            .checked_sub(f.initial_age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let stored = Stored::at(created, created + f.lifetime, received, f.must_revalidate);
        let _ = request_requires_revalidation(&request_cc, flags[1] & 2 != 0, &stored);
    }

    let ttl = preflight_ttl(
        acma.first().copied(),
        status,
        flags[0] & 16 != 0,
        Some(cap),
        Duration::from_secs(2),
    );
    assert!(ttl.is_none_or(|t| !t.is_zero() && t <= cap.max(Duration::from_secs(2))));
});
