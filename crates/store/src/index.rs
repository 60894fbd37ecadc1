//! Exact counts of what the store holds, kept on insert and removal, so `/stats`, the gauges, the
//! variant limit and purge reports never scan the cache.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use cors_edge_core::purge::{EntryTags, Field, Selector};
use pingora::cache::key::HashBinary;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub entries: u64,
    pub bytes: u64,
    pub evictions: u64,
}

#[derive(Default)]
pub(crate) struct Index {
    stats: StoreStats,
    per_primary: HashMap<HashBinary, u32>,
    /// Entries per value of each exact purge field ([`Field::is_exact`]), indexed by field.
    per_value: [HashMap<String, u64>; Field::ALL.len()],
    /// Ordered so a prefix count is a range walk over matching paths, not over all entries.
    per_path: BTreeMap<String, u64>,
    /// Entries under each directory prefix of their paths (`/`, `/a/`, `/a/b/` for `/a/b/c`),
    /// so a prefix purge ending in `/` (nearly all of them) is counted with one lookup.
    per_directory: HashMap<String, u64>,
    /// Per primary key with `Vary` variants: the secondary slots and the provenance of the
    /// latest primary-slot entry, so a vacated primary slot can hand over to a surviving variant.
    families: HashMap<HashBinary, Family>,
}

#[derive(Default)]
struct Family {
    /// Provenance of the latest entry written to the primary slot: variants created before it
    /// belong to an older `Vary` family and are dead to Pingora.
    floor: Option<SystemTime>,
    secondaries: Vec<HashBinary>,
}

fn bump(map: &mut HashMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

/// The prefixes of `path` that end with `/`.
fn directories(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(|(at, _)| &path[..=at])
}

fn drop_one<K: std::hash::Hash + Eq + ?Sized + ToOwned>(map: &mut HashMap<K::Owned, u64>, key: &K)
where
    K::Owned: std::hash::Hash + Eq + std::borrow::Borrow<K>,
{
    if let Some(count) = map.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            map.remove(key);
        }
    }
}

impl Index {
    pub(crate) fn added(&mut self, primary: &HashBinary, tags: &EntryTags, weight: u64) {
        self.stats.entries += 1;
        self.stats.bytes += weight;
        *self.per_primary.entry(*primary).or_default() += 1;
        for field in Field::ALL {
            for value in tags.values(field) {
                bump(&mut self.per_value[field.index()], value);
            }
        }
        *self.per_path.entry(tags.path.clone()).or_default() += 1;
        for directory in directories(&tags.path) {
            bump(&mut self.per_directory, directory);
        }
    }

    pub(crate) fn removed(
        &mut self,
        primary: &HashBinary,
        tags: &EntryTags,
        weight: u64,
        evicted: bool,
    ) {
        self.stats.entries = self.stats.entries.saturating_sub(1);
        self.stats.bytes = self.stats.bytes.saturating_sub(weight);
        if evicted {
            self.stats.evictions += 1;
        }
        if let Some(count) = self.per_primary.get_mut(primary) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_primary.remove(primary);
            }
        }
        for field in Field::ALL {
            for value in tags.values(field) {
                drop_one(&mut self.per_value[field.index()], value);
            }
        }
        if let Some(count) = self.per_path.get_mut(&tags.path) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_path.remove(&tags.path);
            }
        }
        for directory in directories(&tags.path) {
            drop_one(&mut self.per_directory, directory);
        }
    }

    pub(crate) fn stats(&self) -> StoreStats {
        self.stats
    }

    /// An entry was written to `slot` under `primary`; `varied` is the provenance of its
    /// `CacheMeta` when the entry is a `Vary` variant (none: no family to track).
    pub(crate) fn slot_added(
        &mut self,
        primary: &HashBinary,
        slot: &HashBinary,
        varied: Option<SystemTime>,
    ) {
        let Some(provenance) = varied else {
            return;
        };
        let family = self.families.entry(*primary).or_default();
        if slot == primary {
            family.floor = Some(provenance);
        } else {
            family.secondaries.push(*slot);
        }
    }

    pub(crate) fn slot_removed(&mut self, primary: &HashBinary, slot: &HashBinary) {
        if slot != primary {
            if let Some(family) = self.families.get_mut(primary) {
                if let Some(at) = family.secondaries.iter().position(|s| s == slot) {
                    family.secondaries.swap_remove(at);
                }
            }
        }
        let empty = self
            .families
            .get(primary)
            .is_some_and(|f| f.secondaries.is_empty());
        if empty && !self.per_primary.contains_key(primary) {
            self.families.remove(primary);
        }
    }

    /// The secondary slots of a primary key and the floor their creation time must reach.
    pub(crate) fn family_of(
        &self,
        primary: &HashBinary,
    ) -> Option<(Option<SystemTime>, Vec<HashBinary>)> {
        let family = self.families.get(primary)?;
        (!family.secondaries.is_empty()).then(|| (family.floor, family.secondaries.clone()))
    }

    pub(crate) fn variants_of(&self, primary: &HashBinary) -> u32 {
        self.per_primary.get(primary).copied().unwrap_or(0)
    }

    /// How many entries a selector matches. Exact for a single field; for several fields it
    /// is the smallest single-field count, an upper bound (the README says so).
    pub(crate) fn count_matching(&self, selector: &Selector) -> u64 {
        selector
            .fields()
            .map(|(field, value)| match field {
                Field::Prefix => self.count_prefix(value),
                exact => self.per_value[exact.index()]
                    .get(value)
                    .copied()
                    .unwrap_or(0),
            })
            .min()
            .unwrap_or(self.stats.entries)
    }

    fn count_prefix(&self, prefix: &str) -> u64 {
        if prefix.ends_with('/') {
            return self.per_directory.get(prefix).copied().unwrap_or(0);
        }
        // Within a path segment: a walk over the distinct paths that match.
        self.per_path
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(path, _)| path.starts_with(prefix))
            .map(|(_, count)| *count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(path: &str) -> EntryTags {
        EntryTags {
            host: "h".into(),
            path: path.into(),
            path_and_query: path.into(),
            origin: None,
            tags: vec![],
        }
    }

    fn prefix(p: &str) -> Selector {
        Selector {
            prefix: Some(p.into()),
            ..Default::default()
        }
    }

    #[test]
    fn prefix_counts_follow_inserts_and_removals() {
        let mut index = Index::default();
        let paths = ["/a/b/c", "/a/b/d", "/a/x", "/ab", "/a/b/c"];
        for (i, path) in paths.iter().enumerate() {
            index.added(&[i as u8; 16], &tags(path), 10);
        }
        let count = |index: &Index, p: &str| index.count_matching(&prefix(p));
        assert_eq!(count(&index, "/"), 5);
        assert_eq!(count(&index, "/a/"), 4);
        assert_eq!(count(&index, "/a/b/"), 3);
        assert_eq!(count(&index, "/a"), 5, "within a segment: /a/... and /ab");
        assert_eq!(count(&index, "/a/b/c"), 2);
        assert_eq!(count(&index, "/z/"), 0);
        index.removed(&[0; 16], &tags("/a/b/c"), 10, false);
        assert_eq!(count(&index, "/a/b/"), 2);
        assert_eq!(count(&index, "/"), 4);
        for (i, path) in paths.iter().enumerate().skip(1) {
            index.removed(&[i as u8; 16], &tags(path), 10, false);
        }
        assert_eq!(count(&index, "/"), 0);
        assert!(index.per_directory.is_empty() && index.per_path.is_empty());
    }

    #[test]
    fn counts_per_field_follow_inserts_and_removals() {
        let entry = |origin: Option<&str>, host: &str, path: &str, tags: &[&str]| EntryTags {
            host: host.into(),
            path: path.split('?').next().unwrap_or_default().into(),
            path_and_query: path.into(),
            origin: origin.map(str::to_string),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        let entries = [
            entry(Some("https://a"), "h1", "/x?1", &["red", "blue"]),
            entry(Some("https://a"), "h2", "/x?1", &["red"]),
            entry(Some("https://b"), "h1", "/y", &[]),
            entry(None, "h1", "/y", &["blue"]),
        ];
        let mut index = Index::default();
        for (i, tags) in entries.iter().enumerate() {
            index.added(&[i as u8; 16], tags, 1);
        }
        let selector = |field: Field, value: &str| {
            let mut selector = Selector::default();
            let slot = match field {
                Field::Origin => &mut selector.origin,
                Field::Host => &mut selector.host,
                Field::Prefix => &mut selector.prefix,
                Field::Url => &mut selector.url,
                Field::Tag => &mut selector.tag,
            };
            *slot = Some(value.into());
            selector
        };
        let cases = [
            (Field::Origin, "https://a", 2),
            (Field::Origin, "https://c", 0),
            (Field::Host, "h1", 3),
            (Field::Url, "/x?1", 2),
            (Field::Url, "/x", 0),
            (Field::Tag, "red", 2),
            (Field::Tag, "blue", 2),
            (Field::Prefix, "/y", 2),
        ];
        for (field, value, count) in cases {
            assert_eq!(
                index.count_matching(&selector(field, value)),
                count,
                "{field:?} {value}"
            );
        }
        let combined = Selector {
            host: Some("h1".into()),
            tag: Some("red".into()),
            ..Default::default()
        };
        assert_eq!(
            index.count_matching(&combined),
            2,
            "the smallest count: an upper bound"
        );
        assert_eq!(index.count_matching(&Selector::everything()), 4);
        for (i, tags) in entries.iter().enumerate() {
            index.removed(&[i as u8; 16], tags, 1, false);
        }
        assert!(index.per_value.iter().all(HashMap::is_empty));
    }
}
