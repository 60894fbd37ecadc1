//! The admin purge body on arbitrary bytes: no panic, and every accepted selector keeps the
//! rules the store relies on (paths start with `/`, a prefix has no query, `all` stands alone).
#![no_main]

use cors_edge_core::purge_body::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok((selector, _soft)) => {
            for path in [&selector.prefix, &selector.url].into_iter().flatten() {
                assert!(path.starts_with('/'), "{path:?}");
            }
            assert!(!selector.prefix.as_deref().unwrap_or("").contains('?'));
            for value in [&selector.origin, &selector.host, &selector.tag]
                .into_iter()
                .flatten()
            {
                assert!(!value.trim().is_empty());
            }
            let label = selector.label();
            assert!(
                ["origin", "host", "prefix", "url", "tag", "all", "combined"].contains(&label),
                "{label}"
            );
            assert_eq!(label == "all", selector.is_everything());
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
