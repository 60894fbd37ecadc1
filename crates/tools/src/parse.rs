//! Parsers for command-line values, shaped for clap's `value_parser` so bad values
//! are reported by clap as usage errors (exit 2) before anything runs.

use std::time::Duration;

use cors_edge_core::units::DurationValue;
use http::{HeaderName, HeaderValue};

/// Parses a duration in the units of the gateway's config file (`500ms`, `10s`, `2m`,
/// `1h`; a unit is required), with the config's own parser, so users type one syntax.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<DurationValue>()
        .map(Duration::from)
        .map_err(|err| err.to_string())
}

/// Parses a share of requests: a number from 0.0 to 1.0 inclusive.
pub fn parse_share(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number between 0.0 and 1.0"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is outside 0.0–1.0"))
    }
}

/// Parses a request rate in requests per second; must be positive and finite.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a rate in requests per second"))?;
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(format!(
            "rate must be above 0 requests per second, got {text}"
        ))
    }
}

/// Parses a `Name: value` header line as curl's `-H` takes it.
pub fn parse_header_line(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("header `{text}` is not in the form 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("`{}` is not a valid header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of header `{name}` is not a valid header value"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_config_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        // The config refuses a bare number (seconds? milliseconds?), and so do the tools.
        assert!(parse_duration("3").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn shares_are_bounded_to_zero_one() {
        assert_eq!(parse_share("0"), Ok(0.0));
        assert_eq!(parse_share("1.0"), Ok(1.0));
        assert_eq!(parse_share("0.25"), Ok(0.25));
        assert!(parse_share("1.01").is_err());
        assert!(parse_share("-0.1").is_err());
        assert!(parse_share("NaN").is_err());
        assert!(parse_share("half").is_err());
    }

    #[test]
    fn rates_must_be_positive() {
        assert_eq!(parse_rate("1000"), Ok(1000.0));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-5").is_err());
        assert!(parse_rate("inf").is_err());
    }

    #[test]
    fn header_lines_split_on_the_first_colon() {
        let (name, value) = parse_header_line("Host: api.example.com:8080").expect("valid");
        assert_eq!(name, "host");
        assert_eq!(value, "api.example.com:8080");
        assert!(parse_header_line("no colon").is_err());
        assert!(parse_header_line("bad name: x").is_err());
    }
}
