//! Sizes (`256MiB`) and durations (`10s`) as written in the config file.
//!
//! Sizes are binary: `KiB`, `MiB`, `GiB` are 1024-based, and the looser spellings `K`/`KB`,
//! `M`/`MB`, `G`/`GB` mean the same binary units, as they do in nginx and Varnish, because
//! that is what people who write `256MB` for a memory bound expect. Units are case-insensitive
//! and may be separated from the number by spaces. A bare integer is a number of bytes.
//!
//! Durations take `ms`, `s`, `m`, `h` and must carry a unit: a bare `10` is refused, since
//! there is no spelling that readers agree on (seconds? milliseconds?).
//!
//! Both types print in the largest unit that represents them exactly, so
//! `parse(display(x)) == x`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Why a size or duration did not parse. The message is written for the config file's reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const KIB: u64 = 1024;
    pub const MIB: u64 = 1024 * 1024;
    pub const GIB: u64 = 1024 * 1024 * 1024;

    pub const fn bytes(n: u64) -> Self {
        ByteSize(n)
    }
    pub const fn kib(n: u64) -> Self {
        ByteSize(n * Self::KIB)
    }
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * Self::MIB)
    }
    pub const fn gib(n: u64) -> Self {
        ByteSize(n * Self::GIB)
    }
    pub const fn as_u64(self) -> u64 {
        self.0
    }
    /// The size as `usize`, saturating on 32-bit targets where a `GiB`-scale bound cannot be
    /// represented anyway.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// Splits `"256 MiB"` into `(256, "MiB")`; the unit may be empty.
fn split_number(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits_end == 0 {
        return None;
    }
    let number = text[..digits_end].parse::<u64>().ok()?;
    Some((number, text[digits_end..].trim_start()))
}

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            UnitError(format!(
                "{text:?} is not a size (expected a number of bytes or a number with B, KiB, MiB or GiB, e.g. 256MiB)"
            ))
        };
        let (number, unit) = split_number(text).ok_or_else(bad)?;
        let multiplier = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => Self::KIB,
            "m" | "mb" | "mib" => Self::MIB,
            "g" | "gb" | "gib" => Self::GIB,
            _ => return Err(bad()),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| UnitError(format!("{text:?} is too large a size")))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        // Zero is divisible by everything; "0B" reads better than "0GiB".
        if n != 0 && n.is_multiple_of(Self::GIB) {
            write!(f, "{}GiB", n / Self::GIB)
        } else if n != 0 && n.is_multiple_of(Self::MIB) {
            write!(f, "{}MiB", n / Self::MIB)
        } else if n != 0 && n.is_multiple_of(Self::KIB) {
            write!(f, "{}KiB", n / Self::KIB)
        } else {
            write!(f, "{n}B")
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 256MiB, 64KiB or a number of bytes")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{v} is not a size: sizes cannot be negative")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
                Err(E::custom(format!(
                    "{v} is not a size: use a whole number with a unit, e.g. 1536KiB instead of 1.5MiB"
                )))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

/// A span of time written with a unit (`250ms`, `10s`, `5m`, `1h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DurationValue(pub Duration);

impl DurationValue {
    pub const fn from_millis(ms: u64) -> Self {
        DurationValue(Duration::from_millis(ms))
    }
    pub const fn from_secs(s: u64) -> Self {
        DurationValue(Duration::from_secs(s))
    }
    pub const fn as_duration(self) -> Duration {
        self.0
    }
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
    /// Whole seconds, rounded up so that a non-zero sub-second value never becomes zero
    /// (for APIs such as Pingora's that only take seconds).
    pub fn as_secs_ceil(self) -> u64 {
        let secs = self.0.as_secs();
        if self.0.subsec_nanos() > 0 {
            secs.saturating_add(1)
        } else {
            secs
        }
    }
}

impl From<DurationValue> for Duration {
    fn from(value: DurationValue) -> Duration {
        value.0
    }
}

impl From<Duration> for DurationValue {
    fn from(value: Duration) -> Self {
        DurationValue(value)
    }
}

const BARE_NUMBER_HINT: &str = "a duration needs a unit (ms, s, m, h or d), e.g. use a unit: 10s";

impl FromStr for DurationValue {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            UnitError(format!(
                "{text:?} is not a duration (expected a whole number with ms, s, m, h or d, e.g. 10s, 250ms, 1h, 1d)"
            ))
        };
        let (number, unit) = split_number(text).ok_or_else(bad)?;
        let millis_per_unit: u64 = match unit {
            "" => return Err(UnitError(format!("{text:?}: {BARE_NUMBER_HINT}"))),
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            // A day of 24 hours, as in nginx (`1d`); no calendar involved.
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        number
            .checked_mul(millis_per_unit)
            .map(DurationValue::from_millis)
            .ok_or_else(|| UnitError(format!("{text:?} is too long a duration")))
    }
}

impl fmt::Display for DurationValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !self.0.subsec_nanos().is_multiple_of(1_000_000) {
            // Only reachable for values built in code; the file format has no finer unit.
            return write!(f, "{}ns", self.0.as_nanos());
        }
        if ms != 0 && ms.is_multiple_of(86_400_000) {
            write!(f, "{}d", ms / 86_400_000)
        } else if ms != 0 && ms.is_multiple_of(3_600_000) {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms != 0 && ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1_000) {
            write!(f, "{}s", ms / 1_000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = DurationValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 10s, 250ms, 5m or 1h")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationValue, E> {
                Err(E::custom(format!("{v} has no unit: {BARE_NUMBER_HINT}")))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
                Err(E::custom(format!("{v} has no unit: {BARE_NUMBER_HINT}")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationValue, E> {
                Err(E::custom(format!(
                    "{v} is not a duration: use a whole number with a unit, e.g. 1500ms"
                )))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationValue, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!("256MiB".parse::<ByteSize>().unwrap(), ByteSize::mib(256));
        assert_eq!("256MB".parse::<ByteSize>().unwrap(), ByteSize::mib(256));
        assert_eq!("256 mib".parse::<ByteSize>().unwrap(), ByteSize::mib(256));
        assert_eq!("64KiB".parse::<ByteSize>().unwrap(), ByteSize(64 * 1024));
        assert_eq!("64k".parse::<ByteSize>().unwrap(), ByteSize(64 * 1024));
        assert_eq!("2GiB".parse::<ByteSize>().unwrap(), ByteSize(2 << 30));
        assert_eq!("100B".parse::<ByteSize>().unwrap(), ByteSize(100));
        assert_eq!("100".parse::<ByteSize>().unwrap(), ByteSize(100));
    }

    #[test]
    fn bad_sizes_are_explained() {
        for text in ["", "MiB", "1.5MiB", "-1", "10 TB", "10 bits", "ten"] {
            let err = text.parse::<ByteSize>().unwrap_err().to_string();
            assert!(err.contains("is not a size"), "{text}: {err}");
        }
        let err = "99999999999999GiB".parse::<ByteSize>().unwrap_err();
        assert!(err.to_string().contains("too large"));
    }

    #[test]
    fn sizes_round_trip_through_display() {
        for n in [
            0,
            1,
            1023,
            1024,
            1536,
            8 << 20,
            (8 << 20) + 1,
            3 << 30,
            u64::MAX,
        ] {
            let shown = ByteSize(n).to_string();
            assert_eq!(shown.parse::<ByteSize>().unwrap(), ByteSize(n), "{shown}");
        }
        assert_eq!(ByteSize::mib(256).to_string(), "256MiB");
        assert_eq!(ByteSize(1536).to_string(), "1536B");
        assert_eq!(ByteSize(0).to_string(), "0B");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            "250ms".parse::<DurationValue>().unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(
            "10s".parse::<DurationValue>().unwrap().0,
            Duration::from_secs(10)
        );
        assert_eq!(
            "5m".parse::<DurationValue>().unwrap().0,
            Duration::from_secs(300)
        );
        assert_eq!(
            "1h".parse::<DurationValue>().unwrap().0,
            Duration::from_secs(3600)
        );
        assert_eq!(
            "600 s".parse::<DurationValue>().unwrap().0,
            Duration::from_secs(600)
        );
        assert!("0s".parse::<DurationValue>().unwrap().is_zero());
        assert_eq!(
            "1d".parse::<DurationValue>().unwrap().0,
            Duration::from_secs(86_400)
        );
        assert_eq!(
            "7d".parse::<DurationValue>().unwrap().0,
            Duration::from_secs(7 * 86_400)
        );
    }

    #[test]
    fn bare_numbers_and_unknown_units_are_refused() {
        let err = "10".parse::<DurationValue>().unwrap_err().to_string();
        assert!(err.contains("use a unit: 10s"), "{err}");
        for text in ["10S", "1D", "1w", "1.5s", "s", "", "-1s", "10 sec", "1 day"] {
            let err = text.parse::<DurationValue>().unwrap_err().to_string();
            assert!(err.contains("is not a duration"), "{text}: {err}");
        }
    }

    #[test]
    fn durations_round_trip_through_display() {
        for ms in [
            0, 1, 999, 1000, 1500, 60_000, 90_000, 3_600_000, 5_400_000, 86_400_000,
        ] {
            let value = DurationValue::from_millis(ms);
            let shown = value.to_string();
            assert_eq!(shown.parse::<DurationValue>().unwrap(), value, "{shown}");
        }
        assert_eq!(DurationValue::from_secs(600).to_string(), "10m");
        assert_eq!(DurationValue::from_millis(1500).to_string(), "1500ms");
        assert_eq!(DurationValue::from_secs(0).to_string(), "0s");
        assert_eq!(DurationValue::from_secs(86_400).to_string(), "1d");
        assert_eq!(DurationValue::from_secs(90_000).to_string(), "25h");
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(DurationValue::from_millis(1).as_secs_ceil(), 1);
        assert_eq!(DurationValue::from_secs(5).as_secs_ceil(), 5);
        assert_eq!(DurationValue::from_secs(0).as_secs_ceil(), 0);
    }
}
