//! Purges as bans (the Varnish model): a purge records "entries matching S that were fetched
//! before T are invalid" and every lookup checks the entry against the bans newer than it.
//! Recording a ban is O(1) whatever the cache holds, and because the test is on the time the
//! upstream fetch *started*, a fill that was in flight when the purge answered is caught too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cors_edge_core::purge::{EntryTags, Selector};
use parking_lot::RwLock;

struct Ban {
    selector: Selector,
    at: SystemTime,
    soft: bool,
    /// After this, no entry fetched before `at` can still be in the store.
    forget_after: SystemTime,
}

/// Hard bans arranged by selector value, so checking an entry against any number of
/// single-field bans costs a few hash lookups; other selectors are tried one by one.
#[derive(Default)]
pub(crate) struct HardBans {
    origin: HashMap<String, SystemTime>,
    host: HashMap<String, SystemTime>,
    url: HashMap<String, SystemTime>,
    tag: HashMap<String, SystemTime>,
    other: Vec<(Selector, SystemTime)>,
}

impl HardBans {
    pub(crate) fn is_empty(&self) -> bool {
        self.origin.is_empty()
            && self.host.is_empty()
            && self.url.is_empty()
            && self.tag.is_empty()
            && self.other.is_empty()
    }

    /// Whether one of these bans hides an entry fetched at `fetched_at`.
    pub(crate) fn hide(&self, tags: &EntryTags, fetched_at: SystemTime) -> bool {
        let newer = |map: &HashMap<String, SystemTime>, value: &str| {
            map.get(value).is_some_and(|at| *at >= fetched_at)
        };
        tags.origin
            .as_deref()
            .is_some_and(|origin| newer(&self.origin, origin))
            || newer(&self.host, &tags.host)
            || newer(&self.url, &tags.path_and_query)
            || tags.tags.iter().any(|tag| newer(&self.tag, tag))
            || self
                .other
                .iter()
                .any(|(selector, at)| *at >= fetched_at && selector.matches(tags))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanOutcome {
    /// No ban applies: serve as stored.
    Valid,
    /// A soft purge applies: the entry is stale since the given time.
    ExpiredAt(SystemTime),
    /// A hard purge applies: the entry must not be served.
    Invalid,
}

#[derive(Default)]
pub(crate) struct Bans {
    list: RwLock<Vec<Arc<Ban>>>,
    /// Lets the hit path skip the lock entirely when there is nothing to check.
    any: AtomicBool,
}

impl Bans {
    /// `horizon` is the latest time any entry stored so far may be kept until.
    pub(crate) fn add(&self, selector: Selector, soft: bool, horizon: SystemTime) {
        let now = SystemTime::now();
        // Fills in flight when the ban is made may land later and live a full TTL: keep the
        // ban well past the horizon to cover them.
        let forget_after = horizon.max(now) + Duration::from_secs(3600);
        let mut list = self.list.write();
        list.retain(|ban| ban.forget_after > now);
        list.push(Arc::new(Ban {
            selector,
            at: now,
            soft,
            forget_after,
        }));
        self.any.store(true, Ordering::Release);
    }

    /// Checks an entry whose content was fetched at `fetched_at`.
    pub(crate) fn check(&self, tags: &EntryTags, fetched_at: SystemTime) -> BanOutcome {
        if !self.any.load(Ordering::Acquire) {
            return BanOutcome::Valid;
        }
        let list = self.list.read();
        let mut outcome = BanOutcome::Valid;
        for ban in list.iter().rev() {
            if ban.at < fetched_at {
                continue;
            }
            if !ban.selector.matches(tags) {
                continue;
            }
            if !ban.soft {
                return BanOutcome::Invalid;
            }
            // The earliest soft purge decides since when the entry is stale.
            outcome = match outcome {
                BanOutcome::ExpiredAt(t) => BanOutcome::ExpiredAt(t.min(ban.at)),
                _ => BanOutcome::ExpiredAt(ban.at),
            };
        }
        outcome
    }

    /// The hard bans made at or after `since`, for the reclamation pass (it only needs the
    /// bans made since its previous pass).
    pub(crate) fn hard_since(&self, since: SystemTime) -> HardBans {
        let list = self.list.read();
        let mut bans = HardBans::default();
        for ban in list.iter().rev().take_while(|ban| ban.at >= since) {
            if ban.soft {
                continue;
            }
            let s = &ban.selector;
            let by_value = match (&s.origin, &s.host, &s.prefix, &s.url, &s.tag) {
                (Some(value), None, None, None, None) => Some((&mut bans.origin, value)),
                (None, Some(value), None, None, None) => Some((&mut bans.host, value)),
                (None, None, None, Some(value), None) => Some((&mut bans.url, value)),
                (None, None, None, None, Some(value)) => Some((&mut bans.tag, value)),
                _ => None,
            };
            match by_value {
                Some((map, value)) => {
                    let at = map.entry(value.clone()).or_insert(ban.at);
                    *at = (*at).max(ban.at);
                }
                None => bans.other.push((s.clone(), ban.at)),
            }
        }
        bans
    }

    pub(crate) fn len(&self) -> usize {
        self.list.read().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(origin: &str) -> EntryTags {
        EntryTags {
            host: "h".into(),
            path: "/a".into(),
            path_and_query: "/a".into(),
            origin: Some(origin.into()),
            tags: vec![],
        }
    }

    fn by_origin(origin: &str) -> Selector {
        Selector {
            origin: Some(origin.into()),
            ..Default::default()
        }
    }

    #[test]
    fn ban_hits_entries_fetched_before_it_only() {
        let bans = Bans::default();
        let before = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(bans.check(&tags("o"), before), BanOutcome::Valid);
        bans.add(by_origin("o"), false, SystemTime::now());
        assert_eq!(bans.check(&tags("o"), before), BanOutcome::Invalid);
        assert_eq!(bans.check(&tags("p"), before), BanOutcome::Valid);
        let after = SystemTime::now() + Duration::from_millis(5);
        assert_eq!(bans.check(&tags("o"), after), BanOutcome::Valid);
    }

    #[test]
    fn hard_bans_since_a_time_hide_what_the_bans_do() {
        let bans = Bans::default();
        let before = SystemTime::now() - Duration::from_secs(1);
        bans.add(by_origin("old"), false, SystemTime::now());
        let since = SystemTime::now();
        bans.add(by_origin("o"), false, SystemTime::now());
        bans.add(by_origin("soft"), true, SystemTime::now());
        let narrow = Selector {
            origin: Some("p".into()),
            prefix: Some("/a".into()),
            ..Default::default()
        };
        bans.add(narrow, false, SystemTime::now());
        let hard = bans.hard_since(since);
        assert!(hard.hide(&tags("o"), before));
        assert!(hard.hide(&tags("p"), before), "a combined selector");
        assert!(
            !hard.hide(&tags("old"), before),
            "made before `since`: an earlier pass applied it"
        );
        assert!(
            !hard.hide(&tags("soft"), before),
            "soft bans keep the entry"
        );
        assert!(!hard.hide(&tags("q"), before));
        let after = SystemTime::now() + Duration::from_millis(5);
        assert!(!hard.hide(&tags("o"), after), "fetched after the ban");
        assert!(Bans::default().hard_since(since).is_empty());
    }

    #[test]
    fn soft_ban_expires_and_hard_wins() {
        let bans = Bans::default();
        let before = SystemTime::now() - Duration::from_secs(1);
        bans.add(by_origin("o"), true, SystemTime::now());
        assert!(matches!(
            bans.check(&tags("o"), before),
            BanOutcome::ExpiredAt(_)
        ));
        bans.add(Selector::everything(), false, SystemTime::now());
        assert_eq!(bans.check(&tags("o"), before), BanOutcome::Invalid);
        assert_eq!(bans.len(), 2);
    }
}
