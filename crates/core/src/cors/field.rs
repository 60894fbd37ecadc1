//! RFC 9110 grammar shared by the CORS headers and `Vary`: comma-separated lists spread over
//! several field lines, optional whitespace, and tokens.

/// `tchar` from RFC 9110 section 5.6.2: the characters a method or field name may contain.
pub(crate) fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A non-empty run of `tchar`, i.e. something that can be a method or a field name.
pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().copied().all(is_tchar)
}

/// Optional whitespace (`OWS`) is only SP and HTAB; other whitespace is part of a member, which
/// then fails token validation instead of being silently repaired.
fn is_ows(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

pub(crate) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&byte| !is_ows(byte))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&byte| !is_ows(byte))
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

/// Every non-empty member of a `#list` header, across all of its field lines. RFC 9110 section
/// 5.6.1 asks recipients to accept and ignore empty members (`a, , b` and a trailing comma), and
/// section 5.3 makes several field lines equivalent to one line joined with commas.
pub(crate) fn list_members<'a, I>(field_values: I) -> impl Iterator<Item = &'a [u8]>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    field_values
        .into_iter()
        .flat_map(|line| line.split(|&byte| byte == b','))
        .map(trim_ows)
        .filter(|member| !member.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_sp_and_htab() {
        assert_eq!(trim_ows(b" \ta b\t "), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b"\ra\n"), b"\ra\n");
    }

    #[test]
    fn members_span_lines_and_skip_empties() {
        let lines: [&[u8]; 3] = [b"a, ,b,", b"", b" c ,, d"];
        let members: Vec<&[u8]> = list_members(lines).collect();
        assert_eq!(members, vec![&b"a"[..], b"b", b"c", b"d"]);
    }

    #[test]
    fn tokens() {
        assert!(is_token(b"X-Requested-With"));
        assert!(is_token(b"*"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a:b"));
        assert!(!is_token("é".as_bytes()));
    }
}
