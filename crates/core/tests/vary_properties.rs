//! Property tests of the `Vary` parser.

use cors_edge_core::vary::{names_all, names_origin, parse_vary, vary_with_origin, VaryFields};
use proptest::prelude::*;

/// Field lines that are mostly list-shaped, with some noise.
fn vary_lines() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let line = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..32),
        "([ \t]{0,2}(Origin|origin|Accept-Encoding|\\*|[A-Za-z-]{1,6}|bad name)?[ \t]{0,2},?){0,5}"
            .prop_map(String::into_bytes),
    ];
    prop::collection::vec(line, 0..4)
}

proptest! {
    #[test]
    fn parse_is_stable_under_reserialization(lines in vary_lines()) {
        let parsed = parse_vary(lines.iter().map(Vec::as_slice));
        let serialized = parsed.to_string();
        prop_assert_eq!(parse_vary([serialized.as_bytes()]), parsed.clone());
        if let VaryFields::Fields(fields) = &parsed {
            let mut sorted = fields.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(&sorted, fields);
            prop_assert!(fields.iter().all(|field| *field == field.to_ascii_lowercase()));
        }
    }

    #[test]
    fn splitting_lines_does_not_change_the_result(lines in vary_lines()) {
        // Several field lines mean the same as one line joined with commas (RFC 9110 5.3),
        // for well-formed lines: an unterminated quoted string ends with its own line but
        // would swallow the next one once joined (quote handling has table tests in core).
        prop_assume!(lines.iter().all(|line| !line.contains(&b'"')));
        let joined = lines.join(&b","[..]);
        prop_assert_eq!(
            parse_vary(lines.iter().map(Vec::as_slice)),
            parse_vary([joined.as_slice()])
        );
    }

    #[test]
    fn vary_with_origin_always_covers_origin(lines in vary_lines()) {
        let downstream = vary_with_origin(lines.iter().map(Vec::as_slice));
        let reparsed = parse_vary([downstream.as_bytes()]);
        prop_assert!(names_origin(&reparsed));
        // The allocation-free check agrees with the parser on whether Origin is named.
        prop_assert_eq!(
            names_all(lines.iter().map(Vec::as_slice), &["Origin"]),
            names_origin(&parse_vary(lines.iter().map(Vec::as_slice)))
        );
        // Adding Origin is idempotent and keeps every name the upstream sent.
        prop_assert_eq!(vary_with_origin([downstream.as_bytes()]), downstream.clone());
        let original = parse_vary(lines.iter().map(Vec::as_slice));
        match (&original, &reparsed) {
            (VaryFields::Any, reparsed) => prop_assert_eq!(reparsed, &VaryFields::Any),
            (VaryFields::Fields(before), VaryFields::Fields(after)) => {
                prop_assert!(before.iter().all(|name| after.contains(name)));
            }
            (VaryFields::Fields(_), VaryFields::Any) => prop_assert!(false, "gained a `*`"),
        }
    }
}
