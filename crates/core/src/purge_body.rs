//! The body of `POST /purge`: JSON bytes in, a validated selector or the one-sentence error
//! the admin API answers `400` with. Pure, so the fuzz target (`fuzz/fuzz_targets/purge_body.rs`)
//! runs it without a server.

use crate::purge::{PurgeRequest, Selector};

/// Parses and validates a purge body: the selector and whether the purge is soft.
///
/// ```
/// let (selector, soft) =
///     cors_edge_core::purge_body::parse(br#"{"origin": "https://App.example.com/"}"#).unwrap();
/// assert_eq!(selector.origin.as_deref(), Some("https://app.example.com"));
/// assert!(!soft);
/// assert!(cors_edge_core::purge_body::parse(b"{}").is_err());
/// ```
pub fn parse(body: &[u8]) -> Result<(Selector, bool), String> {
    let request: PurgeRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid purge body: {e}"))?;
    request.into_selector().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_the_admin_apis() {
        assert_eq!(
            parse(b"{}").unwrap_err(),
            "empty selector: give at least one of origin, host, prefix, url, tag, or \"all\": true"
        );
        assert!(parse(br#"{"nope": 1}"#)
            .unwrap_err()
            .starts_with("invalid purge body: unknown field `nope`"));
        assert!(parse(b"not json")
            .unwrap_err()
            .starts_with("invalid purge body:"));
        let (selector, soft) = parse(br#"{"prefix": "/a/", "soft": true}"#).unwrap();
        assert_eq!(selector.prefix.as_deref(), Some("/a/"));
        assert!(soft);
    }
}
