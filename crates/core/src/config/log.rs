//! `log:`: the access log (one line per request, like nginx's `access_log`). Off by default.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::error::KeyPath;

/// `log:`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default, expecting = "a mapping with access")]
pub struct LogConfig {
    /// One line per request; absent: no access log.
    pub access: Option<AccessLogConfig>,
}

/// `log.access:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with path (a file or stdout) and format (json or text)"
)]
pub struct AccessLogConfig {
    /// `stdout`, or a file appended to (created if missing, reopened on SIGHUP and
    /// `POST /reload` so it can be rotated). Required.
    pub path: String,
    /// Default `json`.
    #[serde(default)]
    pub format: AccessLogFormat,
}

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDestination {
    Stdout,
    File(PathBuf),
}

/// The word `path` takes to mean standard output.
const STDOUT: &str = "stdout";

impl AccessLogConfig {
    pub fn destination(&self) -> LogDestination {
        match self.path.trim() {
            STDOUT => LogDestination::Stdout,
            _ => LogDestination::File(PathBuf::from(&self.path)),
        }
    }
}

impl fmt::Display for LogDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogDestination::Stdout => f.write_str(STDOUT),
            LogDestination::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The shape of an access log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "json or text")]
pub enum AccessLogFormat {
    /// One JSON object per line, for log shippers.
    #[default]
    Json,
    /// A short line for people, like nginx's `combined`.
    Text,
}

impl AccessLogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLogFormat::Json => "json",
            AccessLogFormat::Text => "text",
        }
    }
}

/// Problems with `log:` (the file itself is opened by the gateway at startup, not here).
pub(crate) fn check(log: &LogConfig) -> Vec<(KeyPath, String)> {
    let Some(access) = &log.access else {
        return Vec::new();
    };
    let key = KeyPath::top("log").key("access").key("path");
    let path = access.path.trim();
    let problem = if path.is_empty() {
        Some(format!(
            "the access log path is empty; give a file path or {STDOUT}"
        ))
    } else if path.ends_with('/') {
        Some(format!(
            "{:?} names a directory; give a file path such as /var/log/cors-edge/access.log",
            access.path
        ))
    } else if path != access.path {
        Some(format!(
            "{:?} has spaces around it; remove them",
            access.path
        ))
    } else {
        None
    };
    problem.map(|message| (key, message)).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    const BASE: &str = "\
upstreams:
  api:
    servers: [\"127.0.0.1:3000\"]
routes:
  - name: api
    upstream: api
";

    #[test]
    fn the_access_log_is_off_by_default_and_read_when_given() {
        let config = load_str(BASE, "t.yaml").unwrap();
        assert_eq!(config.log.access, None);
        assert!(config.summary().contains("access log off"));
        let cases = [
            (
                "{ path: stdout }",
                LogDestination::Stdout,
                AccessLogFormat::Json,
            ),
            (
                "{ path: /var/log/a.log, format: text }",
                LogDestination::File("/var/log/a.log".into()),
                AccessLogFormat::Text,
            ),
            (
                "{ path: logs/a.log, format: json }",
                LogDestination::File("logs/a.log".into()),
                AccessLogFormat::Json,
            ),
        ];
        for (access, destination, format) in cases {
            let text = format!("{BASE}log:\n  access: {access}\n");
            let config = load_str(&text, "t.yaml").unwrap();
            let Some(got) = &config.log.access else {
                panic!("{access}: no access log");
            };
            assert_eq!(got.destination(), destination, "{access}");
            assert_eq!(got.format, format, "{access}");
            let summary = config.summary();
            let line = format!("access log {destination} ({})", format.as_str());
            assert!(summary.contains(&line), "{summary}");
        }
    }

    #[test]
    fn mistakes_are_reported_at_their_line() {
        let cases = [
            ("  access: { path: \"\" }\n", "log.access.path", "is empty"),
            (
                "  access: { path: /var/log/ }\n",
                "log.access.path",
                "names a directory",
            ),
            (
                "  access: { path: \" a.log\" }\n",
                "log.access.path",
                "spaces around",
            ),
            (
                "  access: { path: a.log, format: xml }\n",
                "log.access.format",
                "json, text",
            ),
            ("  access: { format: json }\n", "log.access", "path"),
            ("  acces: { path: a.log }\n", "log", "access"),
        ];
        for (body, key, message) in cases {
            let text = format!("{BASE}log:\n{body}");
            let errors = match load_str(&text, "t.yaml") {
                Ok(_) => panic!("{body}: accepted"),
                Err(errors) => errors.errors,
            };
            assert_eq!(errors.len(), 1, "{body}: {errors:?}");
            let error = &errors[0];
            let shown = error.to_string();
            assert!(shown.starts_with("t.yaml:8"), "{body}: {shown}");
            assert!(
                error
                    .key
                    .as_ref()
                    .is_some_and(|k| k.to_string().starts_with(key)),
                "{body}: {shown}"
            );
            assert!(shown.contains(message), "{body}: {shown}");
        }
    }
}
