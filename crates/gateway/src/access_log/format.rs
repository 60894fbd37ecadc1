//! Access log lines, as pure functions of an [`AccessRecord`]: JSON (one object per line) and
//! a short text form. Request-supplied strings (host, path, `Origin`, method) are escaped so a
//! hostile header can neither break the line nor forge another one.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cors_edge_core::config::AccessLogFormat;
use cors_edge_core::outcome::CorsOutcome;

use super::AccessRecord;

/// Appends one line for `record` to `out`, newline included.
pub fn write_line(record: &AccessRecord<'_>, format: AccessLogFormat, out: &mut String) {
    match format {
        AccessLogFormat::Json => json(record, out),
        AccessLogFormat::Text => text(record, out),
    }
    out.push('\n');
}

// Writing to a String cannot fail: the `fmt::Result`s below are ignored for that reason.

fn json(r: &AccessRecord<'_>, out: &mut String) {
    out.push_str("{\"time\":\"");
    rfc3339(r.time, out);
    out.push_str("\",\"client\":");
    match r.client {
        Some(ip) => {
            let _ = write!(out, "\"{ip}\"");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"method\":");
    json_string(r.method, out);
    out.push_str(",\"host\":");
    json_string(r.host, out);
    out.push_str(",\"path\":");
    json_string(r.path_and_query, out);
    let _ = write!(
        out,
        ",\"status\":{},\"bytes\":{},\"duration_ms\":",
        r.status, r.bytes_sent
    );
    millis(r.duration, out);
    out.push_str(",\"upstream_ms\":");
    match r.upstream_duration {
        Some(duration) => millis(duration, out),
        None => out.push_str("null"),
    }
    out.push_str(",\"route\":");
    json_optional(r.route, out);
    out.push_str(",\"cache\":");
    json_string(r.cache_status.as_str(), out);
    out.push_str(",\"kind\":");
    json_string(r.kind.as_str(), out);
    out.push_str(",\"origin\":");
    json_optional(r.origin, out);
    out.push_str(",\"cors\":");
    json_optional(r.cors_decision.map(CorsOutcome::as_str), out);
    out.push_str(",\"unsafe\":[");
    for (i, reason) in r.unsafe_reasons.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(reason.as_str(), out);
    }
    out.push(']');
    if let Some(owner) = r.owner {
        out.push_str(",\"owner\":");
        json_string(owner, out);
    }
    out.push('}');
}

/// `TIME CLIENT "METHOD HOST PATH" STATUS BYTES DURATION_MS cache=… kind=… route=…
/// upstream_ms=… origin="…" cors=… unsafe=a,b`; absent values are `-`.
fn text(r: &AccessRecord<'_>, out: &mut String) {
    rfc3339(r.time, out);
    match r.client {
        Some(ip) => {
            let _ = write!(out, " {ip} \"");
        }
        None => out.push_str(" - \""),
    }
    text_escaped(r.method, out);
    out.push(' ');
    text_escaped(r.host, out);
    out.push(' ');
    text_escaped(r.path_and_query, out);
    let _ = write!(out, "\" {} {} ", r.status, r.bytes_sent);
    millis(r.duration, out);
    out.push_str(" cache=");
    out.push_str(r.cache_status.as_str());
    out.push_str(" kind=");
    out.push_str(r.kind.as_str());
    out.push_str(" route=");
    text_word(r.route, out);
    out.push_str(" upstream_ms=");
    match r.upstream_duration {
        Some(duration) => millis(duration, out),
        None => out.push('-'),
    }
    out.push_str(" origin=");
    match r.origin {
        Some(origin) => {
            out.push('"');
            text_escaped(origin, out);
            out.push('"');
        }
        None => out.push('-'),
    }
    out.push_str(" cors=");
    text_word(r.cors_decision.map(CorsOutcome::as_str), out);
    out.push_str(" unsafe=");
    if r.unsafe_reasons.is_empty() {
        out.push('-');
    }
    for (i, reason) in r.unsafe_reasons.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(reason.as_str());
    }
    if let Some(owner) = r.owner {
        out.push_str(" owner=\"");
        text_escaped(owner, out);
        out.push('"');
    }
}

fn json_optional(value: Option<&str>, out: &mut String) {
    match value {
        Some(value) => json_string(value, out),
        None => out.push_str("null"),
    }
}

/// A JSON string literal (RFC 8259 §7): quote, backslash and control characters escaped; DEL
/// and the line/paragraph separators too, since log viewers and JavaScript readers trip on them.
fn json_string(value: &str, out: &mut String) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0}'..='\u{1f}' | '\u{7f}' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Inside a quoted text field: quote, backslash, control characters and DEL as `\xNN`, like
/// nginx's default `escape`.
fn text_escaped(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '"' | '\\' | '\u{0}'..='\u{1f}' | '\u{7f}' => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A value from the gateway's own vocabulary (route names, decisions), `-` when absent.
fn text_word(value: Option<&str>, out: &mut String) {
    match value {
        Some(value) => text_escaped(value, out),
        None => out.push('-'),
    }
}

/// Milliseconds with microsecond precision, e.g. `0.412`.
fn millis(duration: Duration, out: &mut String) {
    let micros = duration.as_micros();
    let _ = write!(out, "{}.{:03}", micros / 1000, micros % 1000);
}

/// `2026-11-27T16:58:48.123Z`: RFC 3339 in UTC with milliseconds.
pub fn rfc3339(time: SystemTime, out: &mut String) {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since_epoch.subsec_millis()
    );
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use cors_edge_core::cors::{Decision, UnsafeReason};
    use cors_edge_core::outcome::{CacheStatus, TrafficKind};

    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    fn hit() -> AccessRecord<'static> {
        AccessRecord {
            time: at(1_795_798_728, 123),
            client: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            method: "GET",
            host: "api.example.com",
            path_and_query: "/a?x=1",
            status: 200,
            bytes_sent: 1234,
            duration: Duration::from_micros(412),
            upstream_duration: None,
            route: Some("api"),
            cache_status: CacheStatus::Hit,
            kind: TrafficKind::Simple,
            origin: Some("https://app.example.com"),
            cors_decision: Some(CorsOutcome::UpstreamOrigin),
            unsafe_reasons: &[],
            owner: None,
        }
    }

    fn line(record: &AccessRecord<'_>, format: AccessLogFormat) -> String {
        let mut out = String::new();
        write_line(record, format, &mut out);
        out
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let cases = [
            (at(0, 0), "1970-01-01T00:00:00.000Z"),
            (at(951_782_400, 5), "2000-02-29T00:00:00.005Z"),
            (at(1_795_798_728, 123), "2026-11-27T16:58:48.123Z"),
            (at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z"),
            (
                UNIX_EPOCH - Duration::from_secs(1),
                "1970-01-01T00:00:00.000Z",
            ),
        ];
        for (time, wanted) in cases {
            let mut out = String::new();
            rfc3339(time, &mut out);
            assert_eq!(out, wanted);
        }
    }

    #[test]
    fn both_formats_carry_every_field() {
        let miss = AccessRecord {
            method: "POST",
            status: 201,
            upstream_duration: Some(Duration::from_micros(12_345)),
            cache_status: CacheStatus::Miss,
            kind: TrafficKind::Other,
            origin: None,
            cors_decision: Some(CorsOutcome::Policy(Decision::NoOrigin)),
            unsafe_reasons: &[UnsafeReason::AcaoWithoutVary, UnsafeReason::MultipleAcao],
            client: None,
            route: None,
            ..hit()
        };
        let cases = [
            (
                hit(),
                AccessLogFormat::Json,
                r#"{"time":"2026-11-27T16:58:48.123Z","client":"127.0.0.1","method":"GET","host":"api.example.com","path":"/a?x=1","status":200,"bytes":1234,"duration_ms":0.412,"upstream_ms":null,"route":"api","cache":"HIT","kind":"simple","origin":"https://app.example.com","cors":"upstream_origin","unsafe":[]}"#,
            ),
            (
                miss.clone(),
                AccessLogFormat::Json,
                r#"{"time":"2026-11-27T16:58:48.123Z","client":null,"method":"POST","host":"api.example.com","path":"/a?x=1","status":201,"bytes":1234,"duration_ms":0.412,"upstream_ms":12.345,"route":null,"cache":"MISS","kind":"other","origin":null,"cors":"no_origin","unsafe":["acao_without_vary","multiple_acao"]}"#,
            ),
            (
                hit(),
                AccessLogFormat::Text,
                r#"2026-11-27T16:58:48.123Z 127.0.0.1 "GET api.example.com /a?x=1" 200 1234 0.412 cache=HIT kind=simple route=api upstream_ms=- origin="https://app.example.com" cors=upstream_origin unsafe=-"#,
            ),
            (
                miss,
                AccessLogFormat::Text,
                r#"2026-11-27T16:58:48.123Z - "POST api.example.com /a?x=1" 201 1234 0.412 cache=MISS kind=other route=- upstream_ms=12.345 origin=- cors=no_origin unsafe=acao_without_vary,multiple_acao"#,
            ),
        ];
        for (record, format, wanted) in cases {
            assert_eq!(line(&record, format), format!("{wanted}\n"));
        }
    }

    #[test]
    fn the_owner_appears_only_in_a_ring() {
        let record = AccessRecord {
            owner: Some("10.0.0.2:8080"),
            ..hit()
        };
        let json = line(&record, AccessLogFormat::Json);
        assert!(
            json.ends_with(
                r#""unsafe":[],"owner":"10.0.0.2:8080"}
"#
            ),
            "{json}"
        );
        let text = line(&record, AccessLogFormat::Text);
        assert!(
            text.ends_with(" unsafe=- owner=\"10.0.0.2:8080\"\n"),
            "{text}"
        );
        assert!(!line(&hit(), AccessLogFormat::Json).contains("owner"));
    }

    #[test]
    fn hostile_values_stay_inside_their_field() {
        let hostile = [
            "https://a.com\",\"status\":500,\"x\":\"",
            "https://a.com\n{\"forged\":true}",
            "https://a.com\\\"",
            "\u{0}\u{1b}[31m\u{7f}\u{2028}é",
        ];
        for origin in hostile {
            let record = AccessRecord {
                origin: Some(origin),
                host: origin,
                path_and_query: origin,
                ..hit()
            };
            let json = line(&record, AccessLogFormat::Json);
            assert_eq!(json.matches('\n').count(), 1, "{json}");
            let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(parsed["origin"], origin, "{json}");
            assert_eq!(parsed["host"], origin);
            assert_eq!(parsed["status"], 200);
            assert!(!json.contains('\u{2028}') && !json.contains('\u{1b}'));

            let text = line(&record, AccessLogFormat::Text);
            assert_eq!(text.matches('\n').count(), 1, "{text}");
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{0}'),
                "{text}"
            );
            // Only the delimiting quotes are left: two quoted fields, two quotes each.
            assert_eq!(text.matches('"').count(), 4, "{text}");
        }
    }
}
