//! The storage rules: which responses are stored, for how long, and which preflights.

use super::*;

#[derive(Debug)]
enum Expect {
    Dont(NotStorable),
    Store {
        fresh: u64,
        age: u64,
        swr: u64,
        sie: u64,
        must: bool,
        strip: &'static [&'static str],
    },
}

/// A stored response with the policy's default stale windows and nothing else special.
const fn fresh(fresh: u64) -> Expect {
    Expect::Store {
        fresh,
        age: 0,
        swr: 10,
        sie: 60,
        must: false,
        strip: &[],
    }
}

/// A stored response that must never be served stale.
const fn strict(fresh: u64) -> Expect {
    Expect::Store {
        fresh,
        age: 0,
        swr: 0,
        sie: 0,
        must: true,
        strip: &[],
    }
}

struct Case {
    name: &'static str,
    method: &'static str,
    req_cc: &'static [&'static str],
    auth: bool,
    /// Seconds between sending the request and receiving the response.
    delay: u64,
    status: u16,
    cc: &'static [&'static str],
    expires: &'static [&'static str],
    date: &'static [&'static str],
    age: &'static [&'static str],
    vary: &'static [&'static str],
    set_cookie: bool,
    validator: bool,
    expect: Expect,
}

const BASE: Case = Case {
    name: "",
    method: "GET",
    req_cc: &[],
    auth: false,
    delay: 0,
    status: 200,
    cc: &[],
    expires: &[],
    date: &[],
    age: &[],
    vary: &[],
    set_cookie: false,
    validator: false,
    expect: Expect::Dont(NotStorable::NoFreshness),
};

const D0: &str = "Mon, 01 Jan 2024 00:00:00 GMT";

// One case per line reads as a table; rustfmt would spread each over a dozen lines.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    vec![
        Case { name: "max-age", cc: &["max-age=60"], expect: fresh(60), ..BASE },
        Case { name: "no freshness, no heuristics", validator: true, ..BASE },
        Case { name: "HEAD is storable", method: "HEAD", cc: &["max-age=60"], expect: fresh(60), ..BASE },
        Case { name: "POST", method: "POST", cc: &["max-age=60"], expect: Expect::Dont(NotStorable::Method), ..BASE },
        Case { name: "OPTIONS is decided elsewhere", method: "OPTIONS", cc: &["max-age=60"], expect: Expect::Dont(NotStorable::Method), ..BASE },
        Case { name: "lower-case method is another method", method: "get", cc: &["max-age=60"], expect: Expect::Dont(NotStorable::Method), ..BASE },
        Case { name: "404 with max-age", status: 404, cc: &["max-age=60"], expect: fresh(60), ..BASE },
        Case { name: "206", status: 206, cc: &["max-age=60"], expect: Expect::Dont(NotStorable::Status), ..BASE },
        Case { name: "304", status: 304, cc: &["max-age=60"], validator: true, expect: Expect::Dont(NotStorable::Status), ..BASE },
        Case { name: "1xx", status: 103, cc: &["max-age=60"], expect: Expect::Dont(NotStorable::Status), ..BASE },
        Case { name: "status out of range", status: 600, cc: &["max-age=60"], expect: Expect::Dont(NotStorable::Status), ..BASE },
        Case { name: "unknown status code", status: 599, cc: &["max-age=60"], expect: fresh(60), ..BASE },
        Case { name: "must-understand, unknown status code", status: 599, cc: &["max-age=60, must-understand"], expect: Expect::Dont(NotStorable::Status), ..BASE },
        Case { name: "must-understand, unknown 2xx", status: 299, cc: &["max-age=60, Must-Understand"], expect: Expect::Dont(NotStorable::Status), ..BASE },
        Case { name: "must-understand, known status code", status: 404, cc: &["max-age=60, must-understand"], expect: fresh(60), ..BASE },
        Case { name: "must-understand does not lift no-store", cc: &["max-age=60, must-understand, no-store"], expect: Expect::Dont(NotStorable::NoStore), ..BASE },
        Case { name: "no-store", cc: &["no-store, max-age=60, public"], expect: Expect::Dont(NotStorable::NoStore), ..BASE },
        Case { name: "request no-store", req_cc: &["no-store"], cc: &["max-age=60"], expect: Expect::Dont(NotStorable::RequestNoStore), ..BASE },
        Case { name: "request no-cache does not stop storing", req_cc: &["no-cache, max-age=0"], cc: &["max-age=60"], expect: fresh(60), ..BASE },
        Case { name: "private", cc: &["private, max-age=60"], expect: Expect::Dont(NotStorable::Private), ..BASE },
        Case { name: "private beats public", cc: &["public, max-age=60", "private"], expect: Expect::Dont(NotStorable::Private), ..BASE },
        Case {
            name: "private with field names is stored without them",
            cc: &[r#"max-age=60, private="X-User, Set-Cookie""#],
            set_cookie: true,
            expect: Expect::Store { fresh: 60, age: 0, swr: 10, sie: 60, must: false, strip: &["set-cookie", "x-user"] },
            ..BASE
        },
        Case {
            name: "private with field names, token form",
            cc: &["max-age=60, private=X-User"],
            expect: Expect::Store { fresh: 60, age: 0, swr: 10, sie: 60, must: false, strip: &["x-user"] },
            ..BASE
        },
        Case { name: "private with a non-token list is unqualified", cc: &[r#"max-age=60, private="a b""#], expect: Expect::Dont(NotStorable::Private), ..BASE },
        Case { name: "private=\"\" is unqualified", cc: &[r#"max-age=60, private="""#], expect: Expect::Dont(NotStorable::Private), ..BASE },
        Case { name: "no-cache with validator", cc: &["no-cache"], validator: true, expect: strict(0), ..BASE },
        Case { name: "no-cache overrides max-age", cc: &["max-age=600, no-cache"], validator: true, expect: strict(0), ..BASE },
        Case { name: "no-cache without validator", cc: &["no-cache, max-age=60"], expect: Expect::Dont(NotStorable::NoCache), ..BASE },
        Case {
            name: "no-cache with field names",
            cc: &[r#"no-cache="set-cookie", max-age=60"#],
            set_cookie: true,
            expect: Expect::Store { fresh: 60, age: 0, swr: 10, sie: 60, must: false, strip: &["set-cookie"] },
            ..BASE
        },
        Case {
            name: "no-cache unqualified wins over no-cache with fields",
            cc: &[r#"no-cache="x-a", max-age=60"#, "no-cache"],
            validator: true,
            expect: Expect::Store { fresh: 0, age: 0, swr: 0, sie: 0, must: true, strip: &[] },
            ..BASE
        },
        Case { name: "Authorization alone", auth: true, cc: &["max-age=60"], expect: Expect::Dont(NotStorable::Authorization), ..BASE },
        Case { name: "Authorization + public", auth: true, cc: &["public, max-age=60"], expect: fresh(60), ..BASE },
        Case { name: "Authorization + s-maxage", auth: true, cc: &["s-maxage=60"], expect: strict(60), ..BASE },
        Case { name: "Authorization + must-revalidate", auth: true, cc: &["must-revalidate, max-age=60"], expect: strict(60), ..BASE },
        Case { name: "Authorization + private field names is not enough", auth: true, cc: &["max-age=60, private=x-a"], expect: Expect::Dont(NotStorable::Authorization), ..BASE },
        Case { name: "Authorization + s-maxage + private", auth: true, cc: &["s-maxage=60, private"], expect: Expect::Dont(NotStorable::Private), ..BASE },
        Case { name: "Set-Cookie", cc: &["max-age=60"], set_cookie: true, expect: Expect::Dont(NotStorable::SetCookie), ..BASE },
        Case { name: "Set-Cookie + public + s-maxage", cc: &["public, s-maxage=60"], set_cookie: true, expect: Expect::Dont(NotStorable::SetCookie), ..BASE },
        Case { name: "Vary: *", cc: &["max-age=60"], vary: &["Origin", "Accept, * "], expect: Expect::Dont(NotStorable::VaryStar), ..BASE },
        Case { name: "Vary without *", cc: &["max-age=60"], vary: &["Origin, Accept-Encoding"], expect: fresh(60), ..BASE },
        Case { name: "s-maxage beats max-age, no stale", cc: &["max-age=60, s-maxage=120, stale-while-revalidate=30"], expect: strict(120), ..BASE },
        Case { name: "max_ttl caps", cc: &["max-age=86400"], expect: fresh(3600), ..BASE },
        Case { name: "overflow clamps, then max_ttl", cc: &["max-age=999999999999999999999"], expect: fresh(3600), ..BASE },
        Case { name: "must-revalidate", cc: &["max-age=60, must-revalidate, stale-if-error=600"], expect: strict(60), ..BASE },
        Case { name: "proxy-revalidate", cc: &["max-age=60, proxy-revalidate"], expect: strict(60), ..BASE },
        Case {
            name: "explicit stale windows",
            cc: &["max-age=60, stale-while-revalidate=30, stale-if-error=300"],
            expect: Expect::Store { fresh: 60, age: 0, swr: 30, sie: 300, must: false, strip: &[] },
            ..BASE
        },
        Case {
            name: "one explicit window, one default",
            cc: &["max-age=60, stale-while-revalidate=30"],
            expect: Expect::Store { fresh: 60, age: 0, swr: 30, sie: 60, must: false, strip: &[] },
            ..BASE
        },
        Case { name: "Expires - Date", date: &[D0], expires: &["Mon, 01 Jan 2024 00:05:00 GMT"], expect: fresh(300), ..BASE },
        Case { name: "Expires without Date uses receipt time", expires: &["Mon, 01 Jan 2024 00:05:00 GMT"], expect: fresh(300), ..BASE },
        Case { name: "Expires in RFC 850 format", expires: &["Monday, 01-Jan-24 00:05:00 GMT"], expect: fresh(300), ..BASE },
        Case { name: "Expires in the past", date: &[D0], expires: &["Sun, 31 Dec 2023 00:00:00 GMT"], expect: Expect::Dont(NotStorable::Stale), ..BASE },
        Case { name: "Expires in the past with validator", date: &[D0], expires: &["Sun, 31 Dec 2023 00:00:00 GMT"], validator: true, expect: fresh(0), ..BASE },
        Case { name: "Expires: 0", expires: &["0"], expect: Expect::Dont(NotStorable::Stale), ..BASE },
        Case { name: "Expires: 0 with validator", expires: &["0"], validator: true, expect: fresh(0), ..BASE },
        Case { name: "conflicting Expires lines", expires: &["Mon, 01 Jan 2024 00:05:00 GMT", "Mon, 01 Jan 2024 00:09:00 GMT"], expect: Expect::Dont(NotStorable::Stale), ..BASE },
        Case { name: "max-age overrides Expires", cc: &["max-age=60"], expires: &["0"], expect: fresh(60), ..BASE },
        Case { name: "Age larger than max-age", cc: &["max-age=60"], age: &["120"], expect: Expect::Dont(NotStorable::Stale), ..BASE },
        Case {
            name: "Age larger than max-age, with validator",
            cc: &["max-age=60"],
            age: &["120"],
            validator: true,
            expect: Expect::Store { fresh: 0, age: 120, swr: 10, sie: 60, must: false, strip: &[] },
            ..BASE
        },
        Case {
            name: "Age counts against max-age",
            cc: &["max-age=60"],
            age: &["20"],
            expect: Expect::Store { fresh: 40, age: 20, swr: 10, sie: 60, must: false, strip: &[] },
            ..BASE
        },
        // Age (§5.1): the first member of a list counts; a value that is not delta-seconds
        // is ignored, as if absent; 2^31 or more makes the response stale.
        Case { name: "Age list: the first member counts", cc: &["max-age=60"], age: &["20, 50"], expect: Expect::Store { fresh: 40, age: 20, swr: 10, sie: 60, must: false, strip: &[] }, ..BASE },
        Case { name: "Age list of equal values", cc: &["max-age=60"], age: &["0, 0"], expect: fresh(60), ..BASE },
        Case { name: "two Age lines: the first counts", cc: &["max-age=60"], age: &["30", "0"], expect: Expect::Store { fresh: 30, age: 30, swr: 10, sie: 60, must: false, strip: &[] }, ..BASE },
        Case { name: "negative Age is ignored", cc: &["max-age=60"], age: &["-5"], expect: fresh(60), ..BASE },
        Case { name: "decimal Age is ignored", cc: &["max-age=60"], age: &["5.0"], expect: fresh(60), ..BASE },
        Case { name: "Age with a parameter is ignored", cc: &["max-age=60"], age: &["5;a=1"], expect: fresh(60), ..BASE },
        Case { name: "non-numeric Age is ignored", cc: &["max-age=60"], age: &["abc"], expect: fresh(60), ..BASE },
        Case { name: "empty Age is ignored", cc: &["max-age=60"], age: &[""], expect: fresh(60), ..BASE },
        Case { name: "Age with surrounding whitespace", cc: &["max-age=60"], age: &[" 20 "], expect: Expect::Store { fresh: 40, age: 20, swr: 10, sie: 60, must: false, strip: &[] }, ..BASE },
        Case { name: "Age of 2^31 is stale", cc: &["max-age=2147483648"], age: &["2147483648"], expect: Expect::Dont(NotStorable::Stale), ..BASE },
        Case { name: "Age past 2^31 is stale", cc: &["max-age=60"], age: &["99999999999999999999"], expect: Expect::Dont(NotStorable::Stale), ..BASE },
        Case {
            name: "Age of 2^31 with validator: stored as stale, revalidated before use",
            cc: &["max-age=60"],
            age: &["2147483648"],
            validator: true,
            expect: Expect::Store { fresh: 0, age: 1 << 31, swr: 10, sie: 60, must: false, strip: &[] },
            ..BASE
        },
        Case {
            name: "response delay is added to Age",
            cc: &["max-age=60"],
            age: &["10"],
            delay: 5,
            expect: Expect::Store { fresh: 45, age: 15, swr: 10, sie: 60, must: false, strip: &[] },
            ..BASE
        },
        Case {
            name: "apparent age from an old Date",
            cc: &["max-age=60"],
            date: &["Sun, 31 Dec 2023 23:59:30 GMT"],
            expect: Expect::Store { fresh: 30, age: 30, swr: 10, sie: 60, must: false, strip: &[] },
            ..BASE
        },
        Case { name: "Date in the future: apparent age 0", cc: &["max-age=60"], date: &["Mon, 01 Jan 2024 01:00:00 GMT"], expect: fresh(60), ..BASE },
        Case {
            name: "Date in the future: Expires - Date absorbs skew",
            date: &["Mon, 01 Jan 2024 01:00:00 GMT"],
            expires: &["Mon, 01 Jan 2024 01:01:00 GMT"],
            expect: fresh(60),
            ..BASE
        },
        Case { name: "conflicting Date lines are ignored", cc: &["max-age=60"], date: &["Sun, 31 Dec 2023 23:59:30 GMT", D0], expect: fresh(60), ..BASE },
        Case { name: "invalid Date is ignored", cc: &["max-age=60"], date: &["yesterday"], expect: fresh(60), ..BASE },
        Case { name: "conflicting max-age: smallest wins", cc: &["max-age=60, max-age=30"], expect: fresh(30), ..BASE },
        Case { name: "conflicting max-age across lines", cc: &["max-age=30", "max-age=60"], expect: fresh(30), ..BASE },
        Case { name: "negative max-age is stale", cc: &["max-age=-5"], expect: Expect::Dont(NotStorable::Stale), ..BASE },
        Case { name: "non-digit max-age is stale, revalidatable", cc: &["max-age=1h"], validator: true, expect: fresh(0), ..BASE },
        Case { name: "max-age without a value", cc: &["max-age"], expect: Expect::Dont(NotStorable::Stale), ..BASE },
        Case { name: "upper-case directives", cc: &["MAX-AGE=60, PUBLIC"], auth: true, expect: fresh(60), ..BASE },
        Case { name: "whitespace everywhere", cc: &["  ,\t max-age = 60 ,\tpublic , "], auth: true, expect: fresh(60), ..BASE },
        Case { name: "quoted delta-seconds are not a lifetime", cc: &[r#"max-age="60""#], expect: Expect::Dont(NotStorable::Stale), ..BASE },
        Case { name: "comma inside a quoted string", cc: &[r#"ext="a, no-store", max-age=60"#], expect: fresh(60), ..BASE },
        Case { name: "escaped quote inside a quoted string", cc: &[r#"ext="a\", no-store", max-age=60"#], expect: fresh(60), ..BASE },
        Case { name: "junk after a value", cc: &["max-age=60 seconds"], expect: Expect::Dont(NotStorable::Stale), ..BASE },
        Case { name: "unknown directives are ignored", cc: &["foo, bar=baz, max-age=60, immutable"], expect: fresh(60), ..BASE },
        Case { name: "public with an argument is not public", auth: true, cc: &["public=yes, max-age=60"], expect: Expect::Dont(NotStorable::Authorization), ..BASE },
        Case { name: "no-store with an argument still counts", cc: &["no-store=1, max-age=60"], expect: Expect::Dont(NotStorable::NoStore), ..BASE },
    ]
}

#[test]
fn storage_table() {
    let cases = cases();
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for c in &cases {
        let lines = |v: &'static [&'static str]| v.iter().map(|s| s.as_bytes()).collect::<Vec<_>>();
        let (req_cc, cc, expires, date, age, vary) = (
            lines(c.req_cc),
            lines(c.cc),
            lines(c.expires),
            lines(c.date),
            lines(c.age),
            lines(c.vary),
        );
        let req = StorageRequest {
            method: c.method,
            cache_control: Some(&CacheControl::parse(req_cc.iter().copied())),
            authorization: c.auth,
            sent_at: t0() - Duration::from_secs(c.delay),
        };
        let resp = ResponseFacts {
            status: c.status,
            cache_control: &cc,
            targeted: &[],
            surrogate_control: &[],
            expires: &expires,
            date: &date,
            age: &age,
            vary: &vary,
            set_cookie: c.set_cookie,
            has_validator: c.validator,
            received_at: t0(),
        };
        let got = storage_decision(&req, &resp, &policy());
        let ok = match (&c.expect, &got) {
            (Expect::Dont(want), StorageDecision::DontStore(got)) => want == got,
            (
                Expect::Store {
                    fresh,
                    age,
                    swr,
                    sie,
                    must,
                    strip,
                },
                StorageDecision::Store(f),
            ) => {
                f.fresh_for == Duration::from_secs(*fresh)
                    && f.initial_age == Duration::from_secs(*age)
                    && f.stale_while_revalidate == Duration::from_secs(*swr)
                    && f.stale_if_error == Duration::from_secs(*sie)
                    && f.must_revalidate == *must
                    && f.strip_headers == *strip
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                c.name, c.expect, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_cap_keeps_two_to_the_31() {
    let cc = [b"max-age=99999999999999".as_slice()];
    let req = StorageRequest {
        method: "GET",
        cache_control: None,
        authorization: false,
        sent_at: t0(),
    };
    let resp = ResponseFacts {
        status: 200,
        cache_control: &cc,
        targeted: &[],
        surrogate_control: &[],
        expires: &[],
        date: &[],
        age: &[],
        vary: &[],
        set_cookie: false,
        has_validator: false,
        received_at: t0(),
    };
    let StorageDecision::Store(f) = storage_decision(&req, &resp, &Policy::default()) else {
        panic!("not stored");
    };
    assert_eq!(f.fresh_for, Duration::from_secs(1 << 31));
    assert_eq!(f.stale_while_revalidate, Duration::ZERO);
}

#[test]
fn labels_are_distinct_snake_case() {
    let mut labels: Vec<_> = NotStorable::ALL.iter().map(|r| r.as_str()).collect();
    assert!(labels
        .iter()
        .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels.len(), NotStorable::ALL.len());
}

#[test]
fn preflight_storage_rules() {
    let s = Duration::from_secs;
    let decide = |cache_control: &[&[u8]], max_age: Option<&[u8]>, status: u16, granted: bool| {
        preflight_storage(
            &ResponseDirectives {
                targeted: &[],
                surrogate_control: &[],
                cache_control,
            },
            max_age,
            status,
            granted,
            Some(s(3600)),
            s(10),
        )
    };
    assert_eq!(decide(&[], Some(b"600"), 204, true), Ok(s(600)));
    assert_eq!(
        decide(&[b"no-store"], Some(b"600"), 204, true),
        Err(NotStorable::NoStore)
    );
    assert_eq!(
        decide(&[b"private"], Some(b"600"), 204, true),
        Err(NotStorable::Private)
    );
    assert_eq!(
        decide(&[b"public"], Some(b"-1"), 204, true),
        Err(NotStorable::PreflightNotCacheable)
    );
    // A refusal is kept for the negative TTL.
    assert_eq!(decide(&[], None, 403, false), Ok(s(10)));
    assert_eq!(
        NotStorable::PreflightNotCacheable.as_str(),
        "preflight_not_cacheable"
    );
}
