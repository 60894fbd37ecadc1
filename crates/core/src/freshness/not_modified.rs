//! Freshening a stored response with a 304 (RFC 9111 §4.3.4).

/// Fields of a 304 that must not replace the stored response's: those describing the stored
/// body (§4.3.4 via §3.2) or the connection, and the two that decide which requests a stored
/// variant answers (`Vary`, `Access-Control-Allow-Origin`): a variant is not re-keyed over a
/// 304, so taking them would let a 304 for one origin's copy make it everyone's.
const KEPT_ON_304: [&str; 10] = [
    "content-length",
    "content-encoding",
    "content-range",
    "content-md5",
    "etag",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "vary",
    "access-control-allow-origin",
];

/// Whether the 304's field `name` (lower-case, as `http` header names are) replaces the stored
/// response's field of that name. Every other field of the 304 does (§4.3.4), `Age` included:
/// the stored `Age` described the first response, the 304's own (absent: 0) the refreshed one.
pub fn updated_by_304(name: &str) -> bool {
    !KEPT_ON_304.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_fields_a_304_replaces() {
        let cases = [
            ("cache-control", true),
            ("expires", true),
            ("date", true),
            ("age", true),
            ("x-api-version", true),
            ("access-control-allow-credentials", true),
            ("etag", false),
            ("content-length", false),
            ("content-encoding", false),
            ("transfer-encoding", false),
            ("vary", false),
            ("access-control-allow-origin", false),
        ];
        for (name, replaced) in cases {
            assert_eq!(updated_by_304(name), replaced, "{name}");
        }
    }
}
