//! The hit rules: what a request's own directives ask of a stored response, and preflights.

use super::*;

fn hit(req: &str, pragma: bool, age: u64, lifetime: u64, must: bool) -> RequestFreshness {
    let cc = CacheControl::parse([req.as_bytes()].into_iter().filter(|l| !l.is_empty()));
    let stored = Stored {
        age: Duration::from_secs(age),
        lifetime: Duration::from_secs(lifetime),
        must_revalidate: must,
    };
    request_requires_revalidation(&cc, pragma, &stored)
}

#[test]
fn request_directives_on_a_hit() {
    use HitAction::*;
    let table: &[(&str, bool, u64, u64, bool, HitAction)] = &[
        ("", false, 10, 60, false, Serve),
        ("", false, 60, 60, false, Stale),
        ("no-cache", false, 0, 60, false, Revalidate),
        ("", true, 0, 60, false, Revalidate),
        ("max-age=100", true, 0, 60, false, Serve),
        ("x-unknown", true, 0, 60, false, Revalidate),
        ("max-age=0", false, 1, 60, false, Revalidate),
        ("max-age=0", false, 0, 60, false, Serve),
        ("max-age=30", false, 31, 60, false, Revalidate),
        ("min-fresh=30", false, 40, 60, false, Revalidate),
        ("min-fresh=20", false, 40, 60, false, Serve),
        ("max-stale", false, 1000, 60, false, ServeStale),
        ("max-stale=20", false, 70, 60, false, ServeStale),
        ("max-stale=5", false, 70, 60, false, Stale),
        ("max-stale", false, 70, 60, true, Stale),
        ("max-stale, min-fresh=1", false, 70, 60, false, Revalidate),
        ("max-stale, max-age=65", false, 70, 60, false, Revalidate),
    ];
    for (req, pragma, age, lifetime, must, want) in table {
        let got = hit(req, *pragma, *age, *lifetime, *must);
        assert_eq!(
            got.action, *want,
            "{req:?} pragma={pragma} age={age} lifetime={lifetime}"
        );
        assert!(!got.only_if_cached);
    }
    assert!(hit("only-if-cached", false, 0, 60, false).only_if_cached);
}

#[test]
fn stored_from_times() {
    let s = Stored::at(
        t0(),
        t0() + Duration::from_secs(60),
        t0() + Duration::from_secs(70),
        true,
    );
    assert_eq!(s.age, Duration::from_secs(70));
    assert_eq!(s.lifetime, Duration::from_secs(60));
    let s = Stored::at(t0(), t0(), t0() - Duration::from_secs(5), false);
    assert_eq!(s.age, Duration::ZERO);
}

#[test]
fn pragma() {
    assert!(pragma_has_no_cache([b"foo, No-Cache ".as_slice()]));
    assert!(!pragma_has_no_cache([b"no-cache-please".as_slice()]));
    assert!(!pragma_has_no_cache(std::iter::empty()));
}

#[test]
fn preflight() {
    let s = Duration::from_secs;
    let cap = Some(s(300));
    let neg = s(2);
    assert_eq!(
        preflight_ttl(Some(b"600"), 200, true, cap, neg),
        Some(s(300))
    );
    assert_eq!(
        preflight_ttl(Some(b" 120 "), 204, true, cap, neg),
        Some(s(120))
    );
    assert_eq!(preflight_ttl(None, 204, true, cap, neg), Some(s(5)));
    assert_eq!(preflight_ttl(Some(b"0"), 200, true, cap, neg), None);
    assert_eq!(preflight_ttl(Some(b"-1"), 200, true, cap, neg), None);
    assert_eq!(preflight_ttl(Some(b"ten"), 200, true, cap, neg), Some(s(5)));
    assert_eq!(
        preflight_ttl(Some(b"600, 600"), 200, true, cap, neg),
        Some(s(5))
    );
    assert_eq!(preflight_ttl(Some(b"600"), 200, false, cap, neg), Some(neg));
    assert_eq!(preflight_ttl(Some(b"600"), 403, true, cap, neg), Some(neg));
    assert_eq!(preflight_ttl(Some(b"600"), 503, true, cap, neg), Some(neg));
    assert_eq!(
        preflight_ttl(Some(b"600"), 403, false, cap, Duration::ZERO),
        None
    );
    assert_eq!(
        preflight_ttl(Some(b"600"), 200, true, Some(Duration::ZERO), neg),
        None
    );
    assert_eq!(
        preflight_ttl(Some(b"99999999999999"), 200, true, None, neg),
        Some(s(1 << 31))
    );
}
