//! Config errors: one sentence each, naming the file, line, column and key path when known.

use std::fmt;

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A mapping key, such as `cache` or an upstream's name.
    Key(String),
    /// A position in a list, from 0.
    Index(usize),
}

/// Where a value sits in the config document, printed as `routes[0].cors.allow_origins[1]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KeyPath(pub Vec<PathSegment>);

impl KeyPath {
    /// The document itself.
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    /// A top-level key.
    pub fn top(key: &str) -> Self {
        KeyPath(vec![PathSegment::Key(key.to_string())])
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Key(key.to_string()));
        KeyPath(segments)
    }

    /// This path extended by a list index.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Index(index));
        KeyPath(segments)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }

    /// The path without its last step (the root stays the root).
    pub fn parent(&self) -> KeyPath {
        let mut segments = self.0.clone();
        segments.pop();
        KeyPath(segments)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Key(key) if i == 0 => f.write_str(key)?,
                PathSegment::Key(key) => write!(f, ".{key}")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// What went wrong, broadly; the message says the specifics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The file could not be read.
    Io,
    /// Not well-formed YAML.
    Syntax,
    /// A key the format does not have (usually a typo). The message names the key and its
    /// parent, so the key path is not printed again.
    UnknownKey,
    /// A value of the wrong type or form (`10` for a duration, `"x"` for a size...).
    Value,
    /// Well-formed, but inconsistent or unsafe (a route naming a missing upstream...).
    Invalid,
}

/// One problem in a config file.
///
/// Displays as `FILE:LINE:COLUMN: KEY: MESSAGE`, leaving out what is not known, e.g.
/// `config/gateway.yaml:14:7: routes[0].cors.allow_origins[1]: "https//x" is not an origin: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(self))]
pub struct ConfigError {
    pub kind: ConfigErrorKind,
    /// The file as named by the caller (or the origin name given to `load_str`).
    pub file: Option<String>,
    /// 1-based.
    pub line: Option<usize>,
    /// 1-based.
    pub column: Option<usize>,
    /// The key the problem is about; for [`ConfigErrorKind::UnknownKey`], the unknown key.
    pub key: Option<KeyPath>,
    /// The sentence itself, without location or key.
    pub message: String,
}

fn render(error: &ConfigError) -> String {
    let mut out = String::new();
    if let Some(file) = &error.file {
        out.push_str(file);
        if let Some(line) = error.line {
            out.push_str(&format!(":{line}"));
            if let Some(column) = error.column {
                out.push_str(&format!(":{column}"));
            }
        }
        out.push_str(": ");
    } else if let Some(line) = error.line {
        out.push_str(&format!("line {line}"));
        if let Some(column) = error.column {
            out.push_str(&format!(", column {column}"));
        }
        out.push_str(": ");
    }
    if let Some(key) = &error.key {
        if !key.is_root() && error.kind != ConfigErrorKind::UnknownKey {
            out.push_str(&format!("{key}: "));
        }
    }
    out.push_str(&error.message);
    out
}

impl ConfigError {
    /// A problem found by validation, at `key`, not yet located in a file.
    pub fn invalid(key: KeyPath, message: impl Into<String>) -> Self {
        ConfigError {
            kind: ConfigErrorKind::Invalid,
            file: None,
            line: None,
            column: None,
            key: Some(key),
            message: message.into(),
        }
    }

    pub(crate) fn new(kind: ConfigErrorKind, message: impl Into<String>) -> Self {
        ConfigError {
            kind,
            file: None,
            line: None,
            column: None,
            key: None,
            message: message.into(),
        }
    }
}

/// Every problem found in one config file, in document order where known. Displays one
/// problem per line, so `cors-edge check` shows them all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_all(.errors))]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

fn render_all(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors {
            errors: vec![error],
        }
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_print_like_the_document() {
        let path = KeyPath::top("routes")
            .index(0)
            .key("cors")
            .key("allow_origins")
            .index(1);
        assert_eq!(path.to_string(), "routes[0].cors.allow_origins[1]");
        assert_eq!(path.parent().to_string(), "routes[0].cors.allow_origins");
        assert_eq!(KeyPath::root().to_string(), "(top level)");
    }

    #[test]
    fn display_leaves_out_what_is_unknown() {
        let mut error = ConfigError::invalid(KeyPath::top("listen"), "no address");
        assert_eq!(error.to_string(), "listen: no address");
        error.file = Some("g.yaml".into());
        assert_eq!(error.to_string(), "g.yaml: listen: no address");
        error.line = Some(3);
        error.column = Some(9);
        assert_eq!(error.to_string(), "g.yaml:3:9: listen: no address");
        let all = ConfigErrors {
            errors: vec![error.clone(), error],
        };
        assert_eq!(all.to_string().lines().count(), 2);
    }
}
