//! Reading a config file: the only code in the project that knows serde_yaml.
//!
//! Errors carry the file, line, column and key path. Parse errors get them from serde_yaml
//! (position) and serde_path_to_error (key path). Validation errors only know their key path;
//! their position is recovered by walking the document again with a probe that fails on
//! purpose at that path, so serde_yaml attaches the position of exactly that node. This uses
//! the real YAML parser, so it works for flow style (`{ host: x }`), quoting and anchors alike,
//! where a text search would guess.

use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::error::{ConfigError, ConfigErrorKind, ConfigErrors, KeyPath, PathSegment};
use super::model::Config;
use super::validate;

/// Reads, parses and validates a config file. Every problem found is returned, each naming
/// the file as `path` is written.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|err| {
        let message = match err.kind() {
            std::io::ErrorKind::NotFound => "config file not found".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                "config file cannot be read: permission denied".to_string()
            }
            std::io::ErrorKind::InvalidData => "config file is not UTF-8 text".to_string(),
            _ => format!("config file cannot be read: {err}"),
        };
        let mut error = ConfigError::new(ConfigErrorKind::Io, message);
        error.file = Some(name.clone());
        error
    })?;
    load_str(&text, &name)
}

/// Parses and validates config text; `origin_name` names it in errors (usually the path).
pub fn load_str(text: &str, origin_name: &str) -> Result<Config, ConfigErrors> {
    let config = parse(text).map_err(|mut error| {
        error.file = Some(origin_name.to_string());
        ConfigErrors::from(error)
    })?;
    let mut errors = validate::validate(&config);
    if errors.is_empty() {
        return Ok(config);
    }
    for error in &mut errors {
        error.file = Some(origin_name.to_string());
        if let Some(key) = &error.key {
            if let Some((line, column)) = locate(text, key) {
                error.line = Some(line);
                error.column = Some(column);
            }
        }
    }
    // Document order reads best; errors about keys absent from the file come first, since
    // they are usually the more fundamental ones (no routes at all...). The sort is stable,
    // so errors on one line keep validation's order.
    errors.sort_by_key(|error| error.line);
    Err(ConfigErrors { errors })
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    // Syntax first: deserializing into the real types stops at the first type error, which
    // would hide a syntax error further down and make the user fix the file twice.
    if let Err(err) = IgnoredAny::deserialize(serde_yaml::Deserializer::from_str(text)) {
        return Err(syntax_error(text, &err));
    }
    if document_is_empty(text) {
        return Err(ConfigError::new(
            ConfigErrorKind::Syntax,
            "the config file is empty; it needs at least upstreams and routes",
        ));
    }
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let key = key_path(err.path());
        let raw_path = err.path().to_string();
        let inner = err.into_inner();
        value_error(key, &raw_path, &inner)
    })
}

fn document_is_empty(text: &str) -> bool {
    struct IsNull;

    impl Visitor<'_> for IsNull {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("anything")
        }

        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(true)
        }

        fn visit_none<E: de::Error>(self) -> Result<bool, E> {
            Ok(true)
        }
    }

    // Anything but null makes the visitor fail, which means "not empty".
    serde_yaml::Deserializer::from_str(text)
        .deserialize_any(IsNull)
        .unwrap_or(false)
}

fn key_path(path: &serde_path_to_error::Path) -> KeyPath {
    use serde_path_to_error::Segment;
    KeyPath(
        path.iter()
            .map(|segment| match segment {
                Segment::Seq { index } => PathSegment::Index(*index),
                Segment::Map { key } | Segment::Enum { variant: key } => {
                    PathSegment::Key(key.clone())
                }
                Segment::Unknown => PathSegment::Key("?".to_string()),
            })
            .collect(),
    )
}

fn location(err: &serde_yaml::Error) -> Option<(usize, usize)> {
    err.location().map(|loc| (loc.line(), loc.column()))
}

/// serde_yaml's message with the position it appends (` at line 3 column 5`) removed, since
/// the position is printed in front.
fn message_without_position(err: &serde_yaml::Error) -> String {
    let raw = err.to_string();
    match location(err) {
        Some((line, column)) => raw.replacen(&format!(" at line {line} column {column}"), "", 1),
        None => raw,
    }
}

fn syntax_error(text: &str, err: &serde_yaml::Error) -> ConfigError {
    let mut message = format!("invalid YAML: {}", message_without_position(err));
    let position = location(err);
    if let Some((line, _)) = position {
        let starts_with_tab = text
            .lines()
            .nth(line.saturating_sub(1))
            .is_some_and(|l| l.starts_with('\t'));
        if starts_with_tab {
            message.push_str(" (YAML does not allow tabs for indentation; use spaces)");
        }
    }
    let mut error = ConfigError::new(ConfigErrorKind::Syntax, message);
    if let Some((line, column)) = position {
        error.line = Some(line);
        error.column = Some(column);
    }
    error
}

/// Turns a serde error into a sentence for the config's reader: serde's wording speaks of
/// fields and structs, the file has keys and mappings.
fn value_error(key: KeyPath, raw_path: &str, err: &serde_yaml::Error) -> ConfigError {
    let mut message = message_without_position(err);
    // serde_yaml puts its own path in front (the value's, or its parent's for a key error);
    // we print ours instead.
    let parent = key.parent();
    for prefix in [raw_path.to_string(), parent.to_string()] {
        if let Some(rest) = message.strip_prefix(&format!("{prefix}: ")) {
            message = rest.to_string();
            break;
        }
    }
    let names = backticked(&message);
    let (kind, message) = if message.starts_with("unknown field") {
        let unknown = names.first().cloned().unwrap_or_default();
        let expected = names.get(1..).unwrap_or_default();
        let place = if parent.is_root() {
            "at the top level".to_string()
        } else {
            format!("in {parent}")
        };
        let mut text = format!("unknown key {unknown:?} {place}");
        if let Some(near) = closest(&unknown, expected) {
            text.push_str(&format!("; did you mean {near:?}?"));
        }
        if !expected.is_empty() {
            text.push_str(&format!(" (expected one of: {})", expected.join(", ")));
        }
        (ConfigErrorKind::UnknownKey, text)
    } else if message.starts_with("unknown variant") {
        let given = names.first().cloned().unwrap_or_default();
        let expected = names.get(1..).unwrap_or_default().join(", ");
        (
            ConfigErrorKind::Value,
            format!("{given:?} is not one of the choices (expected one of: {expected})"),
        )
    } else if message.starts_with("missing field") {
        let missing = names.first().cloned().unwrap_or_default();
        (
            ConfigErrorKind::Value,
            format!("required key {missing:?} is missing"),
        )
    } else if message.starts_with("duplicate field") {
        let repeated = names.first().cloned().unwrap_or_default();
        (
            ConfigErrorKind::Value,
            format!("key {repeated:?} is given twice"),
        )
    } else {
        (
            ConfigErrorKind::Value,
            message
                .replace("unit value", "an empty value")
                .replace("invalid type: ", "wrong type: found "),
        )
    };
    let mut error = ConfigError::new(kind, message);
    error.key = Some(key);
    if let Some((line, column)) = location(err) {
        error.line = Some(line);
        error.column = Some(column);
    }
    error
}

/// The names serde quotes in backticks, in order: the offending one first, then the expected.
fn backticked(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The expected key nearest to a typo, if one is near enough to be a likely intent: a few
/// edits away (`max_byte`), or containing it whole (`prefix` for `path_prefix`).
fn closest<'a>(typo: &str, candidates: &'a [String]) -> Option<&'a String> {
    let limit = (typo.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|candidate| (edit_distance(typo, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
        .or_else(|| {
            let mut containing = candidates
                .iter()
                .filter(|candidate| typo.len() >= 4 && candidate.contains(typo));
            // Only when it is unambiguous.
            match (containing.next(), containing.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        })
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            let insertion = current[j] + 1;
            let deletion = previous[j + 1] + 1;
            current.push(substitution.min(insertion).min(deletion));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Marks the probe's deliberate failure, so it is not mistaken for a real parse error.
const PROBE_HIT: &str = "\u{0}cors-edge-probe-hit";
const PROBE_HIT_COLLECTION: &str = "\u{0}cors-edge-probe-hit-collection";

/// Line and column of the node at `path`. A scalar is located at its value; a mapping or
/// list given under a key is located at that key, which is where a reader looks for it.
pub(crate) fn locate(text: &str, path: &KeyPath) -> Option<(usize, usize)> {
    let segments = path.segments();
    let probe = |at_key: bool| {
        Probe {
            rest: segments,
            at_key,
        }
        .deserialize(serde_yaml::Deserializer::from_str(text))
    };
    match probe(false) {
        Err(err) if err.to_string().contains(PROBE_HIT_COLLECTION) => {
            if matches!(segments.last(), Some(PathSegment::Key(_))) {
                if let Err(err) = probe(true) {
                    if err.to_string().contains(PROBE_HIT) {
                        return location(&err);
                    }
                }
            }
            location(&err)
        }
        Err(err) if err.to_string().contains(PROBE_HIT) => location(&err),
        _ => None,
    }
}

/// Walks the document along `rest` and fails on purpose at its end.
struct Probe<'p> {
    rest: &'p [PathSegment],
    /// Fail while reading the last key rather than its value.
    at_key: bool,
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Probe<'_> {
    fn hit_scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.rest.is_empty() {
            Err(E::custom(PROBE_HIT))
        } else {
            // The path goes deeper than the document: not found.
            Ok(())
        }
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.hit_scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.hit_scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.hit_scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.hit_scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.hit_scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.hit_scalar()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.hit_scalar()
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.rest.split_first() else {
            return Err(de::Error::custom(PROBE_HIT_COLLECTION));
        };
        let PathSegment::Index(target) = first else {
            return Ok(());
        };
        let mut index = 0;
        loop {
            if index == *target {
                let probe = Probe {
                    rest,
                    at_key: self.at_key,
                };
                return seq.next_element_seed(probe).map(|_| ());
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.rest.split_first() else {
            return Err(de::Error::custom(PROBE_HIT_COLLECTION));
        };
        let PathSegment::Key(target) = first else {
            return Ok(());
        };
        let fail_on_key = self.at_key && rest.is_empty();
        while let Some(key) = map.next_key_seed(KeyProbe {
            target,
            fail_on_match: fail_on_key,
        })? {
            if key == *target {
                let probe = Probe {
                    rest,
                    at_key: self.at_key,
                };
                return map.next_value_seed(probe);
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// Reads a mapping key as text (YAML keys may be numbers or booleans), failing on purpose
/// when it is the target and the probe wants the key's position.
struct KeyProbe<'p> {
    target: &'p str,
    fail_on_match: bool,
}

impl<'de> DeserializeSeed<'de> for KeyProbe<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl KeyProbe<'_> {
    fn check<E: de::Error>(&self, key: String) -> Result<String, E> {
        if self.fail_on_match && key == self.target {
            Err(E::custom(PROBE_HIT))
        } else {
            Ok(key)
        }
    }
}

impl<'de> Visitor<'de> for KeyProbe<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.check(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        self.check(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        self.check(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.check(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        self.check(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    // A complex key (a list or mapping used as a key) can never be on a config path.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(String::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, path: KeyPath) -> Option<(usize, usize)> {
        locate(text, &path)
    }

    #[test]
    fn locates_scalars_at_their_value_and_collections_at_their_key() {
        let text = "\
listen: [\"a\", \"b\"]
cache:
  max_bytes: 1MiB
routes:
  - name: api
    match: { host: x.com, path_prefix: /api }
    cors:
      allow_origins:
        - https://a.com
        - \"https//x\"
";
        assert_eq!(at(text, KeyPath::top("listen").index(1)), Some((1, 15)));
        assert_eq!(
            at(text, KeyPath::top("cache").key("max_bytes")),
            Some((3, 14))
        );
        assert_eq!(at(text, KeyPath::top("cache")), Some((2, 1)));
        let route = KeyPath::top("routes").index(0);
        assert_eq!(at(text, route.key("name")), Some((5, 11)));
        assert_eq!(
            at(text, route.key("match").key("path_prefix")),
            Some((6, 40))
        );
        let origins = route.key("cors").key("allow_origins");
        assert_eq!(at(text, origins.clone()), Some((8, 7)));
        assert_eq!(at(text, origins.index(1)), Some((10, 11)));
        assert_eq!(at(text, route.key("upstream")), None);
        assert_eq!(at(text, KeyPath::top("routes").index(3)), None);
        assert_eq!(
            at(text, KeyPath::top("cache").key("max_bytes").key("x")),
            None
        );
    }

    #[test]
    fn edit_distance_finds_typos() {
        assert_eq!(edit_distance("max_byte", "max_bytes"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        let names = vec!["max_bytes".to_string(), "max_variants".to_string()];
        assert_eq!(closest("max_byte", &names), Some(&names[0]));
        assert_eq!(closest("color", &names), None);
    }
}
