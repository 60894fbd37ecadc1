//! Exact counts of what the store holds, kept on insert and removal, so `/stats`, the gauges, the
//! variant limit and purge reports never scan the cache.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use cors_edge_core::purge::{EntryTags, Selector};
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
    per_origin: HashMap<String, u64>,
    per_host: HashMap<String, u64>,
    per_url: HashMap<String, u64>,
    per_tag: HashMap<String, u64>,
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
        if let Some(origin) = &tags.origin {
            bump(&mut self.per_origin, origin);
        }
        bump(&mut self.per_host, &tags.host);
        bump(&mut self.per_url, &tags.path_and_query);
        *self.per_path.entry(tags.path.clone()).or_default() += 1;
        for directory in directories(&tags.path) {
            bump(&mut self.per_directory, directory);
        }
        for tag in &tags.tags {
            bump(&mut self.per_tag, tag);
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
        if let Some(origin) = &tags.origin {
            drop_one(&mut self.per_origin, origin.as_str());
        }
        drop_one(&mut self.per_host, tags.host.as_str());
        drop_one(&mut self.per_url, tags.path_and_query.as_str());
        if let Some(count) = self.per_path.get_mut(&tags.path) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_path.remove(&tags.path);
            }
        }
        for directory in directories(&tags.path) {
            drop_one(&mut self.per_directory, directory);
        }
        for tag in &tags.tags {
            drop_one(&mut self.per_tag, tag.as_str());
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
        let mut counts = Vec::with_capacity(5);
        if let Some(origin) = &selector.origin {
            counts.push(self.per_origin.get(origin).copied().unwrap_or(0));
        }
        if let Some(host) = &selector.host {
            counts.push(self.per_host.get(host).copied().unwrap_or(0));
        }
        if let Some(url) = &selector.url {
            counts.push(self.per_url.get(url).copied().unwrap_or(0));
        }
        if let Some(tag) = &selector.tag {
            counts.push(self.per_tag.get(tag).copied().unwrap_or(0));
        }
        if let Some(prefix) = selector.prefix.as_ref().filter(|p| p.ends_with('/')) {
            counts.push(self.per_directory.get(prefix).copied().unwrap_or(0));
        } else if let Some(prefix) = &selector.prefix {
            // Within a path segment: a walk over the distinct paths that match.
            let matching = self
                .per_path
                .range::<str, _>((
                    std::ops::Bound::Included(prefix.as_str()),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(path, _)| path.starts_with(prefix.as_str()))
                .map(|(_, count)| *count)
                .sum();
            counts.push(matching);
        }
        counts.into_iter().min().unwrap_or(self.stats.entries)
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
}
