//! The JSON form of a purge: the body of `POST /purge`, what `cors-edge purge` sends, and the
//! `purge` field of a cluster stream entry. One reader serves the admin API (unknown members
//! refused) and the cluster (unknown members ignored, so a newer node's message is still
//! understood as far as it goes); one writer serves the CLI and the cluster.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use thiserror::Error;

use super::{Field, Purge, Selector};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PurgeError {
    /// Not JSON, not an object, a member of the wrong type, an unknown or repeated member.
    #[error("invalid purge body: {0}")]
    Body(String),
    #[error(
        "empty selector: give at least one of origin, host, prefix, url, tag, or \"all\": true"
    )]
    Empty,
    #[error("\"all\": true cannot be combined with other selectors")]
    AllWithOthers,
    #[error("{field} must not be empty")]
    EmptyField { field: &'static str },
    #[error("{field} must be a path starting with '/', got {value:?}")]
    NotAPath { field: &'static str, value: String },
    #[error("prefix must not contain a query ('?'); use url for one exact path and query")]
    PrefixWithQuery,
}

const ALL: &str = "all";
const SOFT: &str = "soft";

/// Every member a body may have, for the "unknown field" message.
const MEMBERS: [&str; Field::ALL.len() + 2] = {
    let mut names = [ALL; Field::ALL.len() + 2];
    let mut i = 0;
    while i < Field::ALL.len() {
        names[i] = Field::ALL[i].name();
        i += 1;
    }
    names[Field::ALL.len() + 1] = SOFT;
    names
};

impl Purge {
    /// Parses and validates the body of `POST /purge`. Pure: fuzzed by `fuzz_targets/purge_body`.
    pub fn from_admin_body(body: &[u8]) -> Result<Purge, PurgeError> {
        parse(body, Unknown::Refuse)
    }

    /// Reads a purge sent by another node. A member this node does not know is ignored (a purge
    /// that ignores a narrowing field purges more, never less); a message that then names
    /// nothing, not even `"all": true`, is refused rather than taken as "everything".
    pub fn from_wire(payload: &[u8]) -> Result<Purge, PurgeError> {
        parse(payload, Unknown::Ignore)
    }

    /// The JSON the admin API and the other nodes read: the fields set, `"all": true` for
    /// everything, and `soft`.
    pub fn to_json(&self) -> String {
        admin_body(
            self.selector.fields(),
            self.selector.is_everything(),
            self.soft,
        )
    }
}

/// A `POST /purge` body from raw values, not validated (the admin API validates and says what is
/// wrong, so the CLI and the API cannot disagree about what is valid).
pub fn admin_body<'a>(
    fields: impl IntoIterator<Item = (Field, &'a str)>,
    all: bool,
    soft: bool,
) -> String {
    let mut body = serde_json::Map::new();
    for (field, value) in fields {
        body.insert(field.name().to_string(), value.into());
    }
    if all {
        body.insert(ALL.to_string(), true.into());
    }
    body.insert(SOFT.to_string(), soft.into());
    serde_json::Value::Object(body).to_string()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unknown {
    Refuse,
    Ignore,
}

/// The members as sent, before validation.
#[derive(Default)]
struct Raw {
    values: [Option<String>; Field::ALL.len()],
    all: Option<bool>,
    soft: Option<bool>,
}

fn parse(body: &[u8], unknown: Unknown) -> Result<Purge, PurgeError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let raw = RawReader(unknown)
        .deserialize(&mut deserializer)
        .and_then(|raw| deserializer.end().map(|()| raw))
        .map_err(|e| PurgeError::Body(e.to_string()))?;
    let selector = Selector::from_values(raw.values)?;
    match (raw.all.unwrap_or(false), selector.is_everything()) {
        (true, false) => Err(PurgeError::AllWithOthers),
        (false, true) => Err(PurgeError::Empty),
        _ => Ok(Purge {
            selector,
            soft: raw.soft.unwrap_or(false),
        }),
    }
}

impl Selector {
    /// A selector from the values given per field (indexed by [`Field::index`]), each checked
    /// and normalized: what `POST /purge` and `GET /cache` both read their selectors with.
    pub fn from_values(values: [Option<String>; Field::ALL.len()]) -> Result<Selector, PurgeError> {
        let mut selector = Selector::default();
        for (field, value) in Field::ALL.into_iter().zip(values) {
            if let Some(value) = value {
                *selector.slot(field) = Some(field.normalize(value)?);
            }
        }
        Ok(selector)
    }
}

struct RawReader(Unknown);

impl<'de> DeserializeSeed<'de> for RawReader {
    type Value = Raw;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawReader {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object such as {\"origin\": \"https://app.example.com\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut raw = Raw::default();
        while let Some(name) = map.next_key::<String>()? {
            // `null` reads as absent, as it did when these were `Option` members of a struct.
            if let Some(field) = Field::from_name(&name) {
                let slot = &mut raw.values[field.index()];
                if slot.is_some() {
                    return Err(de::Error::duplicate_field(field.name()));
                }
                *slot = map.next_value::<Option<String>>()?;
            } else if name == ALL || name == SOFT {
                let (slot, member) = if name == ALL {
                    (&mut raw.all, ALL)
                } else {
                    (&mut raw.soft, SOFT)
                };
                if slot.is_some() {
                    return Err(de::Error::duplicate_field(member));
                }
                *slot = map.next_value::<Option<bool>>()?;
            } else if self.0 == Unknown::Refuse {
                return Err(de::Error::unknown_field(&name, &MEMBERS));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(body: &str) -> Result<Purge, PurgeError> {
        Purge::from_admin_body(body.as_bytes())
    }

    fn body_error(body: &str) -> String {
        match admin(body) {
            Err(PurgeError::Body(message)) => message,
            other => panic!("{body}: expected a body error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_bodies_are_refused_with_the_reason() {
        let cases = [
            ("", "EOF while parsing"),
            ("{\"origin\": ", "EOF while parsing"),
            ("[]", "expected a JSON object"),
            ("\"origin\"", "expected a JSON object"),
            ("{\"origin\": 7}", "expected a string"),
            ("{\"all\": \"yes\"}", "expected a boolean"),
            ("{\"soft\": 1, \"all\": true}", "expected a boolean"),
            (
                "{\"path\": \"/a\"}",
                "unknown field `path`, expected one of `origin`, `host`, `prefix`, `url`, `tag`, `all`, `soft`",
            ),
            ("{\"origin\": \"https://a.com\", \"extra\": 1}", "unknown field `extra`"),
            ("{\"tag\": \"a\", \"tag\": \"b\"}", "duplicate field `tag`"),
            ("{\"all\": true, \"all\": true}", "duplicate field `all`"),
            ("{\"all\": true} {}", "trailing characters"),
        ];
        for (body, wanted) in cases {
            let message = body_error(body);
            assert!(message.contains(wanted), "{body}: {message}");
        }
        assert!(PurgeError::Body("x".into())
            .to_string()
            .starts_with("invalid purge body: "));
    }

    #[test]
    fn selectors_are_validated() {
        let cases: [(&str, PurgeError); 9] = [
            ("{}", PurgeError::Empty),
            ("{\"soft\": true}", PurgeError::Empty),
            ("{\"all\": false}", PurgeError::Empty),
            ("{\"origin\": null}", PurgeError::Empty),
            ("{\"all\": true, \"tag\": \"x\"}", PurgeError::AllWithOthers),
            (
                "{\"origin\": \"  \"}",
                PurgeError::EmptyField { field: "origin" },
            ),
            ("{\"tag\": \"\"}", PurgeError::EmptyField { field: "tag" }),
            (
                "{\"url\": \"a/b\"}",
                PurgeError::NotAPath {
                    field: "url",
                    value: "a/b".into(),
                },
            ),
            ("{\"prefix\": \"/a?x=1\"}", PurgeError::PrefixWithQuery),
        ];
        for (body, wanted) in cases {
            assert_eq!(admin(body), Err(wanted), "{body}");
        }
    }

    #[test]
    fn valid_bodies_give_normalized_purges() {
        let purge = admin(r#"{"all": true, "soft": true}"#).unwrap();
        assert_eq!(
            purge,
            Purge {
                selector: Selector::everything(),
                soft: true
            }
        );
        let purge =
            admin(r#"{"origin": "HTTPS://A.com/", "host": "H.", "tag": " t ", "soft": null}"#)
                .unwrap();
        assert_eq!(purge.selector.origin.as_deref(), Some("https://a.com"));
        assert_eq!(purge.selector.host.as_deref(), Some("h"));
        assert_eq!(purge.selector.tag.as_deref(), Some("t"));
        assert!(!purge.soft);
    }

    #[test]
    fn the_wire_form_round_trips_and_reads_like_the_admin_body() {
        let purges = [
            r#"{"origin": "https://a.example", "prefix": "/x", "soft": true}"#,
            r#"{"all": true}"#,
            r#"{"url": "/a?b=1", "host": "h", "tag": "t"}"#,
        ];
        for body in purges {
            let purge = admin(body).unwrap();
            let json = purge.to_json();
            assert_eq!(
                Purge::from_wire(json.as_bytes()),
                Ok(purge.clone()),
                "{json}"
            );
            assert_eq!(admin(&json), Ok(purge), "the CLI's body is the admin API's");
        }
        let everything = Purge {
            selector: Selector::everything(),
            soft: false,
        };
        assert_eq!(everything.to_json(), r#"{"all":true,"soft":false}"#);
    }

    #[test]
    fn the_wire_ignores_unknown_members_but_never_reads_them_as_everything() {
        let wider = Purge::from_wire(br#"{"host": "h", "region": "eu"}"#).unwrap();
        assert_eq!(wider.selector.host.as_deref(), Some("h"));
        assert_eq!(
            Purge::from_wire(br#"{"region": "eu", "soft": false}"#),
            Err(PurgeError::Empty)
        );
        assert_eq!(
            Purge::from_wire(br#"{"all": true, "host": "h"}"#),
            Err(PurgeError::AllWithOthers)
        );
        assert!(admin(r#"{"host": "h", "region": "eu"}"#).is_err());
    }

    #[test]
    fn the_cli_body_is_not_validated_locally() {
        let body = admin_body([(Field::Url, "a/b")], false, false);
        assert_eq!(body, r#"{"soft":false,"url":"a/b"}"#);
        assert!(matches!(admin(&body), Err(PurgeError::NotAPath { .. })));
    }
}
