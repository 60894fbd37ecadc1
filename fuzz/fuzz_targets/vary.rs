//! `Vary` parsing: no panic, stable under re-serialization, and the downstream value always
//! covers `Origin`.
#![no_main]

use cors_edge_core::vary::{names_origin, parse_vary, vary_with_origin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = || data.split(|&byte| byte == b'\n');
    let parsed = parse_vary(lines());
    let serialized = parsed.to_string();
    assert_eq!(parse_vary([serialized.as_bytes()]), parsed);

    let downstream = vary_with_origin(lines());
    assert!(names_origin(&parse_vary([downstream.as_bytes()])));
    assert_eq!(vary_with_origin([downstream.as_bytes()]), downstream);
});
