use super::Untouched as Skip;
use super::*;

fn choose(lines: &[&str]) -> Coding {
    choose_coding(lines.iter().map(|line| line.as_bytes()))
}

#[test]
fn choose_coding_table() {
    use Coding::*;
    let cases: &[(&[&str], Coding)] = &[
        // No field, an empty one, nothing the gateway produces: identity.
        (&[], Identity),
        (&[""], Identity),
        (&["deflate"], Identity),
        (&["identity"], Identity),
        (&["compress, deflate"], Identity),
        // What browsers send.
        (&["gzip, deflate, br, zstd"], Brotli),
        (&["gzip, deflate, br"], Brotli),
        (&["gzip, deflate"], Gzip),
        (&["br;q=1.0, gzip;q=0.8, *;q=0.1"], Brotli),
        // Order in the field does not matter, weights do; ties go to br > zstd > gzip.
        (&["gzip, br"], Brotli),
        (&["zstd, gzip"], Zstd),
        (&["gzip;q=1, br;q=0.9"], Gzip),
        (&["br;q=0.5, zstd;q=0.5, gzip;q=0.5"], Brotli),
        (&["gzip;q=0.9, zstd;q=0.95"], Zstd),
        // q=0 means not acceptable.
        (&["br;q=0, gzip"], Gzip),
        (&["gzip;q=0"], Identity),
        (&["br;q=0.000, gzip;q=0.001"], Gzip),
        // `*` covers the codings not named, and only those.
        (&["*"], Brotli),
        (&["*;q=0"], Identity),
        (&["br;q=0, *"], Zstd),
        (&["br;q=0, zstd;q=0, *;q=0.2"], Gzip),
        (&["gzip;q=0.5, *;q=0.8"], Brotli),
        // x-gzip is gzip; case and whitespace do not matter; several lines are one list.
        (&["x-gzip"], Gzip),
        (&["GZIP ; Q=0.7 , Br;q=0.6"], Gzip),
        (&["gzip", "br"], Brotli),
        // Malformed members are ignored, the others count.
        (&["br;q=2, gzip"], Gzip),
        (&["br;q=1.5, gzip"], Gzip),
        (&["br;q=0.1234, gzip;q=0.1"], Gzip),
        (&["br;q, gzip"], Gzip),
        (&["br;q=abc"], Identity),
        (&[";q=1, gzip"], Gzip),
        // Other parameters are ignored.
        (&["br;level=5"], Brotli),
        // Listed twice: the highest weight counts, but a `q=0` listing refuses the coding.
        (&["gzip;q=0.2, gzip;q=0.5, br;q=0.3"], Gzip),
        (&["gzip;q=0, gzip;q=0.5"], Identity),
        (&["gzip, gzip;q=0"], Identity),
        (&["gzip, gzip;q=0, br;q=0.1"], Brotli),
    ];
    for (lines, expected) in cases {
        assert_eq!(choose(lines), *expected, "Accept-Encoding {lines:?}");
    }
}

#[test]
fn qvalue_table() {
    let cases: &[(&str, Option<u16>)] = &[
        ("0", Some(0)),
        ("0.", Some(0)),
        ("0.5", Some(500)),
        ("0.05", Some(50)),
        ("0.001", Some(1)),
        ("1", Some(1000)),
        ("1.000", Some(1000)),
        ("1.001", None),
        ("0.0001", None),
        ("2", None),
        ("", None),
        ("-1", None),
        ("0.a", None),
    ];
    for (value, expected) in cases {
        assert_eq!(parse_qvalue(value.as_bytes()), *expected, "q={value}");
    }
}

#[test]
fn spellings_of_one_choice_share_a_variance() {
    // The variance keys `Accept-Encoding` on the chosen coding (`key::vary_header_value`).
    let variance = |line: &str| choose_coding([line.as_bytes()]).as_str();
    assert_eq!(variance("gzip, deflate, br, zstd"), "br");
    assert_eq!(variance("gzip, deflate, br"), variance("br"));
    assert_eq!(variance("gzip, deflate"), variance("gzip"));
    assert_ne!(variance("gzip"), variance("br"));
    assert_eq!(choose_coding(std::iter::empty()).as_str(), "identity");
    assert_eq!(variance("deflate"), "identity");
}

fn policy() -> CompressionPolicy {
    CompressionPolicy {
        enabled: true,
        types: DEFAULT_TYPES.iter().map(|t| t.to_string()).collect(),
        min_bytes: 256,
        level: 6,
    }
}

struct Case {
    status: u16,
    content_type: Option<&'static str>,
    content_encoding: &'static [&'static str],
    content_range: bool,
    content_length: Option<u64>,
    cache_control: &'static [&'static str],
}

const JSON: Case = Case {
    status: 200,
    content_type: Some("application/json"),
    content_encoding: &[],
    content_range: false,
    content_length: Some(1000),
    cache_control: &[],
};

fn decide(policy: &CompressionPolicy, case: &Case, coding: Coding) -> Transform {
    let encoding: Vec<&[u8]> = case.content_encoding.iter().map(|v| v.as_bytes()).collect();
    let cc: Vec<&[u8]> = case.cache_control.iter().map(|v| v.as_bytes()).collect();
    policy.decide(
        &ResponseFacts {
            status: case.status,
            content_type: case.content_type.map(str::as_bytes),
            content_encoding: &encoding,
            content_range: case.content_range,
            content_length: case.content_length,
            cache_control: &cc,
        },
        coding,
    )
}

#[test]
fn decide_table() {
    use Transform::*;
    let br = Coding::Brotli;
    let cases: &[(Case, Coding, Transform)] = &[
        (JSON, br, Compress(br)),
        (JSON, Coding::Gzip, Compress(Coding::Gzip)),
        (JSON, Coding::Identity, VaryOnly),
        // Length unknown (chunked): compressed.
        (
            Case {
                content_length: None,
                ..JSON
            },
            br,
            Compress(br),
        ),
        (
            Case {
                content_length: Some(256),
                ..JSON
            },
            br,
            Compress(br),
        ),
        (
            Case {
                content_length: Some(255),
                ..JSON
            },
            br,
            Untouched(Skip::Small),
        ),
        (
            Case {
                content_length: Some(0),
                ..JSON
            },
            br,
            Untouched(Skip::Small),
        ),
        (
            Case {
                status: 206,
                ..JSON
            },
            br,
            Untouched(Skip::Status),
        ),
        (
            Case {
                status: 404,
                ..JSON
            },
            br,
            Untouched(Skip::Status),
        ),
        (
            Case {
                status: 304,
                ..JSON
            },
            br,
            Untouched(Skip::Status),
        ),
        // Encoded by the upstream: valid only for the coding it carries.
        (
            Case {
                content_encoding: &["gzip"],
                ..JSON
            },
            br,
            Untouched(Skip::ForeignCoding),
        ),
        (
            Case {
                content_encoding: &["br"],
                ..JSON
            },
            Coding::Identity,
            Untouched(Skip::ForeignCoding),
        ),
        (
            Case {
                content_encoding: &["gzip"],
                ..JSON
            },
            Coding::Gzip,
            Untouched(Skip::Encoded),
        ),
        (
            Case {
                content_encoding: &["X-Gzip"],
                status: 404,
                ..JSON
            },
            Coding::Gzip,
            Untouched(Skip::Encoded),
        ),
        (
            Case {
                content_encoding: &["gzip", "br"],
                ..JSON
            },
            Coding::Gzip,
            Untouched(Skip::ForeignCoding),
        ),
        (
            Case {
                content_encoding: &["deflate"],
                ..JSON
            },
            Coding::Gzip,
            Untouched(Skip::ForeignCoding),
        ),
        (
            Case {
                content_encoding: &["identity, br"],
                ..JSON
            },
            br,
            Untouched(Skip::Encoded),
        ),
        // A token outside the registry: stored as the request's variant, untouched.
        (
            Case {
                content_encoding: &["aes128gcm"],
                ..JSON
            },
            Coding::Identity,
            Untouched(Skip::Encoded),
        ),
        (
            Case {
                content_encoding: &["aes128gcm, gzip"],
                ..JSON
            },
            Coding::Gzip,
            Untouched(Skip::ForeignCoding),
        ),
        (
            Case {
                content_encoding: &["identity"],
                ..JSON
            },
            br,
            Compress(br),
        ),
        (
            Case {
                content_range: true,
                ..JSON
            },
            br,
            Untouched(Skip::Range),
        ),
        (
            Case {
                cache_control: &["public, No-Transform"],
                ..JSON
            },
            br,
            Untouched(Skip::NoTransform),
        ),
        (
            Case {
                cache_control: &["max-age=60", "no-transform"],
                ..JSON
            },
            Coding::Identity,
            Untouched(Skip::NoTransform),
        ),
        (
            Case {
                cache_control: &["max-age=60"],
                ..JSON
            },
            br,
            Compress(br),
        ),
        (
            Case {
                content_type: None,
                ..JSON
            },
            br,
            Untouched(Skip::Type),
        ),
        (
            Case {
                content_type: Some("image/png"),
                ..JSON
            },
            br,
            Untouched(Skip::Type),
        ),
        (
            Case {
                content_type: Some("Text/HTML; charset=utf-8"),
                ..JSON
            },
            br,
            Compress(br),
        ),
        (
            Case {
                content_type: Some("application/json;charset=utf-8"),
                ..JSON
            },
            br,
            Compress(br),
        ),
        (
            Case {
                content_type: Some("image/svg+xml"),
                ..JSON
            },
            br,
            Compress(br),
        ),
        (
            Case {
                content_type: Some("application/javascript"),
                ..JSON
            },
            br,
            Compress(br),
        ),
        (
            Case {
                content_type: Some("application/jsonx"),
                ..JSON
            },
            br,
            Untouched(Skip::Type),
        ),
        (
            Case {
                content_type: Some("textual/plain"),
                ..JSON
            },
            br,
            Untouched(Skip::Type),
        ),
    ];
    for (i, (case, coding, expected)) in cases.iter().enumerate() {
        assert_eq!(decide(&policy(), case, *coding), *expected, "case {i}");
    }
    let disabled = CompressionPolicy {
        enabled: false,
        ..policy()
    };
    assert_eq!(decide(&disabled, &JSON, br), Untouched(Skip::Disabled));
    // Compression off does not make an upstream-encoded answer valid for every client.
    let gzipped = Case {
        content_encoding: &["gzip"],
        ..JSON
    };
    assert_eq!(
        decide(&disabled, &gzipped, Coding::Identity),
        Untouched(Skip::ForeignCoding)
    );
    let kept = decide(&disabled, &gzipped, Coding::Gzip);
    assert_eq!(kept, Untouched(Skip::Encoded));
    assert!(kept.varies() && kept.storable());
    assert!(!Untouched(Skip::ForeignCoding).storable());
    assert!(Untouched(Skip::ForeignCoding).varies());
    assert!(!Untouched(Skip::Disabled).varies());
    assert!(VaryOnly.varies() && Compress(br).varies());
    assert_eq!(Compress(br).to_string(), "compress:br");
    assert_eq!(VaryOnly.to_string(), "vary_only");
    assert_eq!(
        Untouched(Skip::NoTransform).to_string(),
        "untouched:no_transform"
    );
    assert!(!Untouched(Skip::Type).varies());
}

#[test]
fn compressed_etag_table() {
    let cases: &[(&str, Option<&str>)] = &[
        ("\"abc\"", Some("W/\"abc\"")),
        ("W/\"abc\"", Some("W/\"abc\"")),
        (" \"abc\" ", Some("W/\"abc\"")),
        ("\"\"", Some("W/\"\"")),
        ("abc", None),
        ("\"abc", None),
        ("\"a\"b\"", None),
        ("W/abc", None),
        ("", None),
    ];
    for (etag, expected) in cases {
        let weak = compressed_etag(etag.as_bytes());
        assert_eq!(
            weak.as_deref(),
            expected.map(str::as_bytes),
            "ETag {etag:?}"
        );
    }
}

#[test]
fn coding_tokens() {
    assert_eq!(Coding::Brotli.as_str(), "br");
    assert_eq!(Coding::Zstd.as_str(), "zstd");
    assert_eq!(Coding::Gzip.as_str(), "gzip");
    assert_eq!(Coding::Identity.as_str(), "identity");
}
