//! The config loader on arbitrary YAML: errors out, never panics. A config it accepts is also
//! valid for `Config::validate`, and its summary and every error message can be printed.
#![no_main]

use cors_edge_core::config::load_str;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match load_str(&text, "fuzz.yaml") {
        Ok(config) => {
            assert!(config.validate().is_ok(), "loaded but invalid: {text:?}");
            let _ = config.summary();
            for route in &config.routes {
                let _ = route.forwarding_policy(&config.server);
            }
        }
        Err(errors) => {
            assert!(!errors.errors.is_empty());
            assert!(!errors.to_string().is_empty());
        }
    }
});
