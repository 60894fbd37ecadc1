//! Property tests for the `Cache-Control` parser.

use super::*;

fn secs_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![0..=100u32, Just(DELTA_SECONDS_MAX), 0..=DELTA_SECONDS_MAX]
}

fn scope_strategy() -> impl Strategy<Value = Option<FieldScope>> {
    let names =
        proptest::collection::vec("[a-z0-9!#$%&'*+.^_`|~-]{1,8}", 1..4).prop_map(|mut v| {
            v.sort();
            v.dedup();
            FieldScope::Fields(v)
        });
    proptest::option::of(prop_oneof![Just(FieldScope::All), names])
}

fn cache_control_strategy() -> impl Strategy<Value = CacheControl> {
    let opt = || proptest::option::of(secs_strategy());
    let max_stale = proptest::option::of(prop_oneof![
        Just(MaxStale::Any),
        secs_strategy().prop_map(MaxStale::Seconds)
    ]);
    (
        (opt(), opt(), opt(), opt(), opt(), max_stale),
        (scope_strategy(), scope_strategy()),
        proptest::array::uniform7(any::<bool>()),
    )
        .prop_map(
            |((max_age, s_maxage, swr, sie, min_fresh, max_stale), (no_cache, private), f)| {
                CacheControl {
                    max_age,
                    s_maxage,
                    no_store: f[0],
                    no_cache,
                    private,
                    public: f[1],
                    must_revalidate: f[2],
                    proxy_revalidate: f[3],
                    must_understand: f[6],
                    stale_while_revalidate: swr,
                    stale_if_error: sie,
                    immutable: f[4],
                    max_stale,
                    min_fresh,
                    only_if_cached: f[5],
                }
            },
        )
}

/// Directive-shaped input: known names in random case with token, quoted or broken values.
fn directive_soup() -> impl Strategy<Value = Vec<u8>> {
    const NAMES: &[&str] = &[
        "max-age",
        "s-maxage",
        "no-store",
        "no-cache",
        "private",
        "public",
        "must-revalidate",
        "proxy-revalidate",
        "must-understand",
        "stale-while-revalidate",
        "stale-if-error",
        "immutable",
        "max-stale",
        "min-fresh",
        "only-if-cached",
    ];
    let name = prop_oneof![
        3 => proptest::sample::select(NAMES).prop_map(str::to_owned),
        1 => "[a-z-]{1,6}",
    ];
    let value = prop_oneof![
        Just(String::new()),
        "=[0-9]{1,12}".prop_map(|s| s),
        "=-?[0-9a-z]{0,4}".prop_map(|s| s),
        "=\"[ -~]{0,12}\"?".prop_map(|s| s),
    ];
    let sep = prop_oneof![Just(","), Just(", "), Just(" ,\t"), Just(",,")];
    proptest::collection::vec((name, any::<u32>(), value, sep), 0..8).prop_map(|parts| {
        let mut out = Vec::new();
        for (name, case_bits, value, sep) in parts {
            for (i, b) in name.bytes().enumerate() {
                let upper = case_bits.checked_shr(i as u32).unwrap_or(0) & 1 == 1;
                out.push(if upper { b.to_ascii_uppercase() } else { b });
            }
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(sep.as_bytes());
        }
        out
    })
}

fn reparse(cc: &CacheControl) -> CacheControl {
    CacheControl::parse([cc.to_string().as_bytes()])
}

proptest! {
    #[test]
    fn display_then_parse_is_identity(cc in cache_control_strategy()) {
        prop_assert_eq!(reparse(&cc), cc);
    }

    #[test]
    fn parse_arbitrary_bytes_is_stable(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4)) {
        let cc = CacheControl::parse(lines.iter().map(Vec::as_slice));
        prop_assert_eq!(reparse(&cc), cc);
    }

    #[test]
    fn parse_directive_soup_is_stable(a in directive_soup(), b in directive_soup()) {
        let cc = CacheControl::parse([a.as_slice(), b.as_slice()]);
        prop_assert_eq!(reparse(&cc), cc);
    }

    #[test]
    fn storage_decision_invariants(
        cc in directive_soup(),
        req_cc in directive_soup(),
        other in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 4),
        status in 0u16..700,
        flags in proptest::array::uniform4(any::<bool>()),
        sent_back in 0u64..100,
        max_ttl in proptest::option::of(0u64..100_000),
    ) {
        let cc_lines = [cc.as_slice()];
        let req_lines = [req_cc.as_slice()];
        let expires = [other[0].as_slice()];
        let date = [other[1].as_slice()];
        let age = [other[2].as_slice()];
        let vary = [other[3].as_slice()];
        let req = StorageRequest {
            method: if flags[0] { "GET" } else { "HEAD" },
            cache_control: Some(&CacheControl::parse(req_lines.iter().copied())),
            authorization: flags[1],
            sent_at: t0() - Duration::from_secs(sent_back),
        };
        let resp = ResponseFacts {
            status,
            cache_control: &cc_lines,
            targeted: &[],
            surrogate_control: &[],
            expires: &expires,
            date: &date,
            age: &age,
            vary: &vary,
            set_cookie: flags[2],
            has_validator: flags[3],
            received_at: t0(),
        };
        let policy = Policy {
            max_ttl: max_ttl.map(Duration::from_secs),
            default_stale_while_revalidate: Duration::from_secs(10),
            default_stale_if_error: Duration::from_secs(60),
        };
        if let StorageDecision::Store(f) = storage_decision(&req, &resp, &policy) {
            prop_assert!(f.fresh_for <= f.lifetime);
            prop_assert_eq!(f.fresh_for, f.lifetime.saturating_sub(f.initial_age));
            prop_assert!(f.initial_age <= Duration::from_secs(1 << 31));
            if let Some(cap) = policy.max_ttl {
                prop_assert!(f.lifetime <= cap);
            }
            if f.must_revalidate {
                prop_assert!(f.stale_while_revalidate.is_zero() && f.stale_if_error.is_zero());
            }
            prop_assert!(f.fresh_for > Duration::ZERO || flags[3]);
            prop_assert!(!flags[2] || f.strip_headers.iter().any(|h| h == "set-cookie"));
            prop_assert!(f.strip_headers.windows(2).all(|w| w[0] < w[1]));
            prop_assert!((200..=599).contains(&status) && status != 206 && status != 304);
        }
    }

    #[test]
    fn preflight_never_exceeds_cap(v in proptest::collection::vec(any::<u8>(), 0..16), status in 0u16..700, granted: bool, cap in 0u64..1000) {
        let cap = Duration::from_secs(cap);
        if let Some(ttl) = preflight_ttl(Some(&v), status, granted, Some(cap), Duration::from_secs(3)) {
            prop_assert!(!ttl.is_zero());
            prop_assert!(ttl <= cap.max(Duration::from_secs(3)));
        }
    }
}
