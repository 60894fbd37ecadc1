//! `routes[].compression`: the settings, their defaults and their validation (the rule itself
//! is `crate::compression`).

use serde::Deserialize;

use super::error::KeyPath;
use crate::units::ByteSize;

/// `routes[].compression:`. On by default for the text formats: an uncompressed `200` of one
/// of `types` is compressed for clients that accept br, zstd or gzip (see
/// [`crate::compression`]); the cache stores one copy per coding.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with enabled, types, min_bytes and level"
)]
pub struct CompressionConfig {
    /// Default true.
    pub enabled: bool,
    /// Media types (`application/json`) or ranges (`text/*`) compressed. Default
    /// `application/json`, `text/*`, `application/javascript`, `image/svg+xml`.
    pub types: Vec<String>,
    /// Answers announcing a smaller `Content-Length` are sent as they are. Default 1KiB: below
    /// it a coding saves a few hundred bytes at most, less than a second round of the same
    /// request costs.
    pub min_bytes: ByteSize,
    /// 1 (fastest) to 9 (smallest), for every coding. Default 6: each copy is compressed once,
    /// when stored, so a high level costs little.
    pub level: u32,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig {
            enabled: true,
            types: crate::compression::DEFAULT_TYPES
                .iter()
                .map(|t| t.to_string())
                .collect(),
            min_bytes: ByteSize::kib(1),
            level: 6,
        }
    }
}

impl CompressionConfig {
    /// The policy the gateway applies (types lower-cased).
    pub fn policy(&self) -> crate::compression::CompressionPolicy {
        crate::compression::CompressionPolicy {
            enabled: self.enabled,
            types: self
                .types
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .collect(),
            min_bytes: self.min_bytes.0,
            level: self.level,
        }
    }
}

/// `compression`: a level every coding accepts, and media types the rule can match.
pub(super) fn check(key: &KeyPath, compression: &CompressionConfig) -> Vec<(KeyPath, String)> {
    let mut errors = Vec::new();
    if !(1..=9).contains(&compression.level) {
        errors.push((
            key.key("level"),
            format!(
                "{} is not a level: use 1 (fastest) to 9 (smallest), or enabled: false to not compress",
                compression.level
            ),
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for (i, media) in compression.types.iter().enumerate() {
        let lower = media.trim().to_ascii_lowercase();
        let well_formed = match lower.split_once('/') {
            // `*/*` would compress images and archives too: name the types instead.
            Some((kind, subtype)) => {
                !kind.contains('*')
                    && crate::header_list::is_token(kind.as_bytes())
                    && (subtype == "*"
                        || !subtype.contains('*')
                            && crate::header_list::is_token(subtype.as_bytes()))
            }
            None => false,
        };
        if !well_formed {
            errors.push((
                key.key("types").index(i),
                format!("{media:?} is not a media type such as application/json or a range such as text/*"),
            ));
        } else if seen.contains(&lower) {
            errors.push((
                key.key("types").index(i),
                format!("{media:?} is listed twice"),
            ));
        }
        seen.push(lower);
    }
    errors
}
