//! Table tests: targeted-field and Surrogate-Control parsing, which field governs, and what
//! that does to storage and hits.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::freshness::{
    hit_verdict, storage_decision, HitAction, NotStorable, Policy, ResponseFacts, StorageDecision,
    StorageRequest,
};

const MAX: u32 = DELTA_SECONDS_MAX;

fn targeted(lines: &[&str]) -> Option<CacheControl> {
    let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    parse_targeted(&lines)
}

fn cc(text: &str) -> CacheControl {
    CacheControl::parse([text.as_bytes()])
}

#[test]
fn targeted_field_parsing() {
    let fields = |names: &[&str]| FieldScope::Fields(names.iter().map(|n| n.to_string()).collect());
    // (field lines, directives or None when the field is ignored as a whole)
    let table: Vec<(&[&str], Option<CacheControl>)> = vec![
        (&["max-age=600"], Some(cc("max-age=600"))),
        (
            &["max-age=600, no-store"],
            Some(cc("max-age=600, no-store")),
        ),
        (
            &["max-age=600", "must-revalidate"],
            Some(cc("max-age=600, must-revalidate")),
        ),
        (
            &["s-maxage=60, stale-while-revalidate=5, stale-if-error=9"],
            Some(cc(
                "s-maxage=60, stale-while-revalidate=5, stale-if-error=9",
            )),
        ),
        (&["private"], Some(cc("private"))),
        (&["no-cache"], Some(cc("no-cache"))),
        (
            &[r#"private="Set-Cookie, X-User""#],
            Some(CacheControl {
                private: Some(fields(&["set-cookie", "x-user"])),
                ..CacheControl::default()
            }),
        ),
        (&["public, max-age=5"], Some(cc("public, max-age=5"))),
        // Keys are case-sensitive lower-case tokens: an upper-case one voids the field.
        (&["Max-Age=600"], None),
        (&["max-age=600, Private"], None),
        // No spaces around `=`.
        (&["max-age = 600"], None),
        (&["max-age= 600"], None),
        // Not a Dictionary at all.
        (&["max-age=60,, no-store"], None),
        (&["max-age=60;"], None),
        (&[""], None),
        (&["  "], None),
        (&[], None),
        // Integers clamp at 2^31, also past RFC 8941's 15 digits.
        (
            &["max-age=2147483648"],
            Some(CacheControl {
                max_age: Some(MAX),
                ..CacheControl::default()
            }),
        ),
        (
            &["max-age=99999999999"],
            Some(CacheControl {
                max_age: Some(MAX),
                ..CacheControl::default()
            }),
        ),
        (
            &["max-age=9999999999999999999999, no-store"],
            Some(CacheControl {
                max_age: Some(MAX),
                no_store: true,
                ..CacheControl::default()
            }),
        ),
        // A value of the wrong type drops the directive, not the field.
        (&["max-age=-1, no-store"], Some(cc("no-store"))),
        (&["max-age=1.5"], Some(CacheControl::default())),
        (&[r#"max-age="600""#], Some(CacheControl::default())),
        (&["max-age=(1 2)"], Some(CacheControl::default())),
        // Booleans: `?0` turns a flag off; restrictive flags count with any other value.
        (&["no-store=?0, max-age=5"], Some(cc("max-age=5"))),
        (&["no-store=1"], Some(cc("no-store"))),
        (&["public=?0"], Some(CacheControl::default())),
        (&["private=?0, max-age=5"], Some(cc("max-age=5"))),
        // Parameters are ignored; later keys override earlier ones (RFC 8941 §4.2.2).
        (&["max-age=5;a=1"], Some(cc("max-age=5"))),
        (&["max-age=5, max-age=9"], Some(cc("max-age=9"))),
        // Present and valid but nothing known: it still governs.
        (&["foo"], Some(CacheControl::default())),
    ];
    for (lines, want) in table {
        assert_eq!(targeted(lines), want, "{lines:?}");
    }
}

#[test]
fn long_integers_in_strings_are_left_alone() {
    let got = targeted(&[r#"private="x12345678901234567890", max-age=1"#]);
    assert_eq!(got.and_then(|c| c.max_age), Some(1));
    assert_eq!(
        clamp_long_integers(br#"a="1234567890123456", b=1234567890123456"#),
        br#"a="1234567890123456", b=2147483648"#.to_vec()
    );
}

#[test]
fn surrogate_control_parsing() {
    let sc = |l: &str| parse_surrogate_control(&[l.as_bytes()]);
    assert_eq!(
        sc(r#"max-age=60, content="ESI/1.0""#),
        Some(cc("max-age=60"))
    );
    assert_eq!(sc("no-store"), Some(cc("no-store")));
    // Only max-age and no-store are read.
    assert_eq!(
        sc("max-age=60, private, must-revalidate"),
        Some(cc("max-age=60"))
    );
    assert_eq!(sc(r#"content="ESI/1.0""#), None);
    // Targeted at another device (Edge Architecture `;device`): not for this cache.
    assert_eq!(sc("max-age=3600;not-for-you"), None);
    assert_eq!(sc("no-store;other, max-age=60"), Some(cc("max-age=60")));
    assert_eq!(sc("MaX-aGe=60, foobar"), Some(cc("max-age=60")));
    assert_eq!(sc("private"), None);
    assert_eq!(parse_surrogate_control(&[]), None);
}

fn lines<'a>(v: &[&'a str]) -> Vec<&'a [u8]> {
    v.iter().map(|l| l.as_bytes()).collect()
}

/// Targeted fields in list order, Surrogate-Control, Cache-Control, governing source, max-age.
type GovernRow = (
    Vec<&'static [&'static str]>,
    &'static [&'static str],
    &'static [&'static str],
    DirectiveSource,
    Option<u32>,
);

#[test]
fn which_field_governs() {
    use DirectiveSource::*;
    // (targeted fields in list order, Surrogate-Control, Cache-Control, governing source, max-age)
    let table: Vec<GovernRow> = vec![
        (vec![&[]], &[], &["max-age=1"], CacheControl, Some(1)),
        (
            vec![&["max-age=2"]],
            &[],
            &["max-age=1"],
            Targeted(0),
            Some(2),
        ),
        (
            vec![&["max-age=2"]],
            &["max-age=3"],
            &["max-age=1"],
            Targeted(0),
            Some(2),
        ),
        (
            vec![&[]],
            &["max-age=3"],
            &["max-age=1"],
            SurrogateControl,
            Some(3),
        ),
        // The first present and valid one in the configured order.
        (
            vec![&["max-age=4"], &["max-age=2"]],
            &[],
            &[],
            Targeted(0),
            Some(4),
        ),
        (vec![&[], &["max-age=2"]], &[], &[], Targeted(1), Some(2)),
        (
            vec![&["Max-Age=4"], &["max-age=2"]],
            &[],
            &[],
            Targeted(1),
            Some(2),
        ),
        // An invalid targeted field falls through to the next rule.
        (
            vec![&["max-age = 2"]],
            &["max-age=3"],
            &["max-age=1"],
            SurrogateControl,
            Some(3),
        ),
        (
            vec![&["max-age = 2"]],
            &[],
            &["max-age=1"],
            CacheControl,
            Some(1),
        ),
        // Surrogate-Control without max-age or no-store does not govern.
        (
            vec![],
            &[r#"content="ESI/1.0""#],
            &["max-age=1"],
            CacheControl,
            Some(1),
        ),
        // No targeted fields configured.
        (vec![], &[], &["max-age=1"], CacheControl, Some(1)),
    ];
    for (targeted, surrogate, cache_control, source, max_age) in table {
        let targeted: Vec<Vec<&[u8]>> = targeted.iter().map(|t| lines(t)).collect();
        let (surrogate, cache_control) = (lines(surrogate), lines(cache_control));
        let g = governing_directives(&ResponseDirectives {
            targeted: &targeted,
            surrogate_control: &surrogate,
            cache_control: &cache_control,
        });
        assert_eq!(
            (g.source, g.directives.max_age),
            (source, max_age),
            "{targeted:?} {surrogate:?} {cache_control:?}"
        );
        assert_eq!(g.honours_expires(), source == CacheControl);
    }
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_704_067_200)
}

/// The storage decision for a GET answered 200 with these fields.
fn store(
    cdn: &[&str],
    surrogate: &[&str],
    cache_control: &[&str],
    expires: &[&str],
) -> StorageDecision {
    let targeted = vec![lines(cdn)];
    let (surrogate, cache_control, expires) =
        (lines(surrogate), lines(cache_control), lines(expires));
    storage_decision(
        &StorageRequest {
            method: "GET",
            cache_control: None,
            authorization: false,
            sent_at: t0(),
        },
        &ResponseFacts {
            status: 200,
            cache_control: &cache_control,
            targeted: &targeted,
            surrogate_control: &surrogate,
            expires: &expires,
            date: &[],
            age: &[],
            vary: &[],
            set_cookie: false,
            has_validator: false,
            received_at: t0(),
        },
        &Policy::default(),
    )
}

fn fresh_for(d: &StorageDecision) -> Option<u64> {
    match d {
        StorageDecision::Store(f) => Some(f.fresh_for.as_secs()),
        StorageDecision::DontStore(_) => None,
    }
}

#[test]
fn governing_field_decides_storage() {
    // The issue's two cases.
    assert_eq!(
        fresh_for(&store(&["max-age=600"], &[], &["no-store"], &[])),
        Some(600)
    );
    assert_eq!(
        store(&["private"], &[], &["max-age=600"], &[]),
        StorageDecision::DontStore(NotStorable::Private)
    );
    assert_eq!(
        store(&["no-store"], &[], &["max-age=600"], &[]),
        StorageDecision::DontStore(NotStorable::NoStore)
    );
    // Expires is ignored when a targeted field or Surrogate-Control governs.
    assert_eq!(
        store(&["public"], &[], &[], &["Mon, 01 Jan 2024 01:00:00 GMT"]),
        StorageDecision::DontStore(NotStorable::NoFreshness)
    );
    assert_eq!(
        fresh_for(&store(&[], &[], &[], &["Mon, 01 Jan 2024 01:00:00 GMT"])),
        Some(3600)
    );
    // An invalid targeted field is ignored as a whole.
    assert_eq!(
        fresh_for(&store(&["Max-Age=600"], &[], &["max-age=60"], &[])),
        Some(60)
    );
    // Surrogate-Control when no targeted field is present; the targeted field wins over it.
    assert_eq!(
        fresh_for(&store(&[], &["max-age=300"], &["private"], &[])),
        Some(300)
    );
    assert_eq!(
        store(&[], &["no-store"], &["max-age=60"], &[]),
        StorageDecision::DontStore(NotStorable::NoStore)
    );
    assert_eq!(
        fresh_for(&store(&["max-age=600"], &["no-store"], &[], &[])),
        Some(600)
    );
    // Targeted stale windows and must-revalidate apply.
    let StorageDecision::Store(f) = store(
        &["max-age=60, stale-while-revalidate=7"],
        &[],
        &["max-age=60, must-revalidate"],
        &[],
    ) else {
        panic!("stored");
    };
    assert_eq!(
        (f.stale_while_revalidate.as_secs(), f.must_revalidate),
        (7, false)
    );
    let StorageDecision::Store(f) =
        store(&["max-age=60, must-revalidate"], &[], &["max-age=60"], &[])
    else {
        panic!("stored");
    };
    assert!(f.must_revalidate);
}

#[test]
fn hits_follow_the_governing_field() {
    // 100 s old, lifetime 60 s, and the client accepts any staleness.
    let verdict = |cdn: &[&str], cache_control: &[&str]| {
        let targeted = vec![lines(cdn)];
        let cache_control = lines(cache_control);
        hit_verdict(
            &cc("max-stale"),
            false,
            &ResponseDirectives {
                targeted: &targeted,
                surrogate_control: &[],
                cache_control: &cache_control,
            },
            t0(),
            t0() + Duration::from_secs(60),
            t0() + Duration::from_secs(100),
        )
        .action
    };
    assert_eq!(
        verdict(&[], &["max-age=60, must-revalidate"]),
        HitAction::Stale
    );
    assert_eq!(
        verdict(&["max-age=60"], &["max-age=60, must-revalidate"]),
        HitAction::ServeStale
    );
    assert_eq!(
        verdict(&["max-age=60, must-revalidate"], &["max-age=60"]),
        HitAction::Stale
    );
    assert_eq!(verdict(&["s-maxage=60"], &["max-age=60"]), HitAction::Stale);
}
