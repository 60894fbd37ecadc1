//! RFC 9110 list grammar, once for every field that uses it (`Vary`,
//! `Access-Control-Request-Headers`, `Cache-Control`, `Pragma`, `Connection`, the field-name
//! lists of `no-cache="..."` and `private="..."`): comma-separated members spread over several
//! field lines, optional whitespace, tokens and quoted strings.
//!
//! Splitting is quote-aware everywhere: a comma inside a quoted string (`no-cache="a, b"`)
//! belongs to its member. A field that has no quoted strings splits exactly as a plain
//! comma split would.

use std::borrow::Cow;

/// `tchar` (RFC 9110 §5.6.2): the characters a method, a directive or a field name may contain.
pub fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A non-empty run of `tchar`: something that can be a method or a field name.
pub fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().copied().all(is_tchar)
}

/// Optional whitespace (`OWS`, §5.6.3) is only SP and HTAB; other whitespace is part of a
/// member, which then fails token validation instead of being silently repaired.
pub fn is_ows(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// `bytes` without leading and trailing OWS.
pub fn trim_ows(bytes: &[u8]) -> &[u8] {
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

/// Every non-empty member of a `#list` field, across all of its field lines, OWS-trimmed.
/// §5.6.1 asks recipients to accept and ignore empty members (`a, , b` and a trailing comma);
/// §5.3 makes several field lines equivalent to one line joined with commas.
pub fn members<'a, I>(field_lines: I) -> impl Iterator<Item = &'a [u8]>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    field_lines
        .into_iter()
        .flat_map(LineMembers::new)
        .map(trim_ows)
        .filter(|member| !member.is_empty())
}

/// The comma-separated elements of one field line, commas inside quoted strings included in
/// their element (an unterminated quote runs to the end of the line).
struct LineMembers<'a> {
    line: &'a [u8],
    at: usize,
    done: bool,
}

impl<'a> LineMembers<'a> {
    fn new(line: &'a [u8]) -> Self {
        LineMembers {
            line,
            at: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for LineMembers<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        let start = self.at;
        let end = element_end(self.line, start);
        if end >= self.line.len() {
            self.done = true;
        }
        self.at = end + 1;
        Some(&self.line[start..end.min(self.line.len())])
    }
}

/// Index of the next top-level comma at or after `i` (or the line's end), stepping over quoted
/// strings.
pub fn element_end(line: &[u8], mut i: usize) -> usize {
    while i < line.len() {
        match line[i] {
            b',' => return i,
            b'"' => i = quoted_string(line, i + 1).1,
            _ => i += 1,
        }
    }
    i
}

/// Reads a quoted string (§5.6.4) whose opening quote is just before `start`. Returns the
/// unescaped content (None when the closing quote is missing) and the index just after the
/// closing quote.
pub fn quoted_string(line: &[u8], start: usize) -> (Option<Cow<'_, [u8]>>, usize) {
    let mut unescaped: Option<Vec<u8>> = None;
    let mut i = start;
    while i < line.len() {
        match line[i] {
            b'"' => {
                let value = match unescaped {
                    Some(v) => Cow::Owned(v),
                    None => Cow::Borrowed(&line[start..i]),
                };
                return (Some(value), i + 1);
            }
            b'\\' if i + 1 < line.len() => {
                // quoted-pair: the escaped octet stands for itself; allocate only once an
                // escape is seen.
                let buf = unescaped.get_or_insert_with(|| line[start..i].to_vec());
                buf.push(line[i + 1]);
                i += 2;
            }
            byte => {
                if let Some(buf) = unescaped.as_mut() {
                    buf.push(byte);
                }
                i += 1;
            }
        }
    }
    (None, i)
}

/// Whether any member of the lines is `wanted`, compared case-insensitively (`Pragma:
/// no-cache`, `Vary: *`).
pub fn has_member<'a, I>(field_lines: I, wanted: &[u8]) -> bool
where
    I: IntoIterator<Item = &'a [u8]>,
{
    members(field_lines).any(|member| member.eq_ignore_ascii_case(wanted))
}

/// The field names a `Connection` header lists (RFC 9110 §7.6.1), lower-case: hop-by-hop
/// fields that are never stored nor forwarded. The connection options `close` and
/// `keep-alive` are not field names of the response and are left out.
pub fn connection_listed<'a, I>(field_lines: I) -> Vec<String>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut names: Vec<String> = members(field_lines)
        .filter(|member| is_token(member))
        .map(|member| String::from_utf8_lossy(member).to_ascii_lowercase())
        .filter(|name| name != "close" && name != "keep-alive")
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(lines: &[&str]) -> Vec<String> {
        members(lines.iter().map(|l| l.as_bytes()))
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn members_table() {
        let cases: &[(&[&str], &[&str])] = &[
            (&[], &[]),
            (&[""], &[]),
            (&["a"], &["a"]),
            (&["a, ,b,", "", " c ,, d"], &["a", "b", "c", "d"]),
            (&["\ta\t,\tb "], &["a", "b"]),
            // Quote-aware: the comma inside quotes stays in its member.
            (
                &["no-cache=\"set-cookie, x-a\", max-age=5"],
                &["no-cache=\"set-cookie, x-a\"", "max-age=5"],
            ),
            (&["a=\"x\\\",y\", b"], &["a=\"x\\\",y\"", "b"]),
            // An unterminated quote runs to the end of its line, not into the next line.
            (&["a=\"x, y", "b"], &["a=\"x, y", "b"]),
            (&[",,,"], &[]),
        ];
        for (lines, expected) in cases {
            assert_eq!(split(lines), *expected, "lines {lines:?}");
        }
    }

    #[test]
    fn trims_only_sp_and_htab() {
        assert_eq!(trim_ows(b" \ta b\t "), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b"\ra\n"), b"\ra\n");
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

    #[test]
    fn quoted_strings_unescape() {
        assert_eq!(
            quoted_string(b"a\\\"b\" rest", 0),
            (Some(Cow::Owned(b"a\"b".to_vec())), 5)
        );
        assert_eq!(quoted_string(b"plain\"", 0).0.as_deref(), Some(&b"plain"[..]));
        assert_eq!(quoted_string(b"open", 0).0, None);
    }

    #[test]
    fn has_member_is_case_insensitive_and_list_aware() {
        assert!(has_member([&b"x, No-Cache"[..]], b"no-cache"));
        assert!(!has_member([&b"no-cache-please"[..]], b"no-cache"));
        assert!(has_member([&b"accept"[..], b"*"], b"*"));
        assert!(!has_member([&b"\"a,*\""[..]], b"*"));
    }

    #[test]
    fn connection_listed_table() {
        let cases: &[(&[&str], &[&str])] = &[
            (&[], &[]),
            (&["close"], &[]),
            (&["keep-alive, X-Hop"], &["x-hop"]),
            (&["Upgrade", "x-a, X-A, , x-b"], &["upgrade", "x-a", "x-b"]),
            (&["bad name, x-c"], &["x-c"]),
        ];
        for (lines, expected) in cases {
            assert_eq!(
                connection_listed(lines.iter().map(|l| l.as_bytes())),
                *expected,
                "lines {lines:?}"
            );
        }
    }
}
