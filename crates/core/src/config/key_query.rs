//! `routes[].cache.key_query`: the settings and their validation (the rule itself is
//! `crate::key_query`).

use serde::Deserialize;

use super::error::KeyPath;
use crate::key_query::{pattern_problem, KeyQuery, KeyQueryFilter, NamePattern};

/// `routes[].cache.key_query:`. Absent: the key keeps the query exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with sort, ignore or only"
)]
pub struct KeyQueryConfig {
    /// Order parameters by name (stable: a repeated parameter keeps its values' order).
    pub sort: bool,
    /// Parameters left out of the key; a trailing `*` makes a name a prefix (`utm_*`).
    pub ignore: Option<Vec<String>>,
    /// The only parameters kept in the key; exclusive with `ignore`.
    pub only: Option<Vec<String>>,
}

impl KeyQueryConfig {
    /// The compiled rule (the config was validated by [`check`]).
    pub fn rule(&self) -> KeyQuery {
        let compile = |names: &[String]| names.iter().map(|n| NamePattern::parse(n)).collect();
        let filter = match (&self.ignore, &self.only) {
            (_, Some(only)) => KeyQueryFilter::Only(compile(only)),
            (Some(ignore), None) => KeyQueryFilter::Ignore(compile(ignore)),
            (None, None) => KeyQueryFilter::All,
        };
        KeyQuery {
            sort: self.sort,
            filter,
        }
    }
}

impl KeyQueryConfig {
    /// One phrase for `cors-edge check`: `sorted, ignore [utm_*, _]`.
    pub fn describe(&self) -> String {
        let mut parts = vec![if self.sort { "sorted" } else { "in sent order" }.to_string()];
        for (list, names) in [("ignore", &self.ignore), ("only", &self.only)] {
            if let Some(names) = names {
                parts.push(format!("{list} [{}]", names.join(", ")));
            }
        }
        parts.join(", ")
    }
}

/// `key_query`: `ignore` or `only`, not both; names well-formed and each listed once.
pub(super) fn check(key: &KeyPath, config: &KeyQueryConfig) -> Vec<(KeyPath, String)> {
    let mut errors = Vec::new();
    if config.ignore.is_some() && config.only.is_some() {
        errors.push((
            key.clone(),
            "ignore and only are exclusive: ignore drops the parameters it names, only keeps \
             just the ones it names; give one of them"
                .to_string(),
        ));
    }
    if config.only.as_ref().is_some_and(Vec::is_empty) {
        errors.push((
            key.key("only"),
            "is empty, which would drop every parameter from the key; write ignore: [\"*\"] if \
             that is meant"
                .to_string(),
        ));
    }
    for (list, names) in [("ignore", &config.ignore), ("only", &config.only)] {
        let Some(names) = names else { continue };
        let mut seen: Vec<&str> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let problem = pattern_problem(name)
                .or_else(|| seen.contains(&name.as_str()).then_some("is listed twice"));
            if let Some(problem) = problem {
                errors.push((key.key(list).index(i), format!("{name:?} {problem}")));
            }
            seen.push(name);
        }
    }
    errors
}
