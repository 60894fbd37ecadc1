//! The stream entry format: `node <id> purge <json>`. The JSON is the admin API's purge body
//! ([`Purge::to_json`] / [`Purge::from_wire`]); the node id lets a node skip its own purges.

use cors_edge_core::purge::Purge;

use super::resume::EntryId;

/// Field names of a stream entry.
pub const NODE_FIELD: &str = "node";
pub const PURGE_FIELD: &str = "purge";

/// One stream entry as read, before it is understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: EntryId,
    pub node: Option<String>,
    pub purge: Option<Vec<u8>>,
}

/// What a stream entry means to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Published by this node: already applied here.
    Own,
    Purge(Purge),
    /// Not a purge this node understands (skipped, with a warning).
    Unreadable,
}

impl StreamEntry {
    pub fn message(&self, this_node: &str) -> Message {
        if self.node.as_deref() == Some(this_node) {
            return Message::Own;
        }
        match self.purge.as_deref().map(Purge::from_wire) {
            Some(Ok(purge)) => Message::Purge(purge),
            _ => Message::Unreadable,
        }
    }
}

/// The field-value pairs of the entry that publishes `purge`.
pub fn entry_fields(node_id: &str, purge: &Purge) -> [(&'static str, String); 2] {
    [
        (NODE_FIELD, node_id.to_string()),
        (PURGE_FIELD, purge.to_json()),
    ]
}

/// Unique per process: host name, process id and start time.
pub fn node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{host}-{}-{:x}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use cors_edge_core::purge::Selector;

    use super::*;

    fn entry(node: Option<&str>, purge: Option<&str>) -> StreamEntry {
        StreamEntry {
            id: EntryId::START,
            node: node.map(str::to_string),
            purge: purge.map(|p| p.as_bytes().to_vec()),
        }
    }

    #[test]
    fn entries_are_understood_or_skipped() {
        let purge = Purge {
            selector: Selector {
                origin: Some("https://a.example".into()),
                prefix: Some("/x".into()),
                ..Selector::default()
            },
            soft: true,
        };
        let [(node_field, node), (purge_field, json)] = entry_fields("n1", &purge);
        assert_eq!((node_field, purge_field), (NODE_FIELD, PURGE_FIELD));
        let published = entry(Some(&node), Some(&json));
        assert_eq!(published.message("n2"), Message::Purge(purge));
        assert_eq!(published.message("n1"), Message::Own);
        let cases = [
            (entry(Some("n1"), None), "no purge field"),
            (entry(Some("n1"), Some("not json")), "not JSON"),
            (
                entry(None, Some(r#"{"region":"eu","soft":false}"#)),
                "names nothing",
            ),
            (
                entry(None, Some(r#"{"all":true,"host":"h"}"#)),
                "contradictory",
            ),
        ];
        for (entry, why) in cases {
            assert_eq!(entry.message("n2"), Message::Unreadable, "{why}");
        }
    }

    #[test]
    fn node_ids_name_the_process() {
        assert!(node_id().contains(&format!("-{}-", std::process::id())));
    }
}
