//! The admin API's purge body parser on arbitrary bytes: no panic; whatever it accepts names
//! something (never an empty selector read as "everything" by mistake), survives the cluster
//! wire format and the CLI body unchanged, and its label is one of the known labels.
#![no_main]

use cors_edge_core::purge::{selector_labels, Purge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(purge) = Purge::from_admin_body(data) else {
        return;
    };
    let json = purge.to_json();
    assert_eq!(
        Purge::from_wire(json.as_bytes()).as_ref(),
        Ok(&purge),
        "{json}"
    );
    assert_eq!(
        Purge::from_admin_body(json.as_bytes()).as_ref(),
        Ok(&purge),
        "{json}"
    );
    let label = purge.selector.label();
    assert!(selector_labels().any(|known| known == label), "{label}");
    // "all" is only ever explicit: the body said so.
    if purge.selector.is_everything() {
        assert!(json.contains("\"all\":true"));
    }
});
