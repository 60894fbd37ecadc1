//! Purges as bans (the Varnish model): a purge records "entries matching S that were fetched
//! before T are invalid" and every lookup checks the entry against the bans newer than it.
//! Recording a ban is O(1) whatever the cache holds, and because the test is on the time the
//! upstream fetch *started*, a fill that was in flight when the purge answered is caught too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cors_edge_core::purge::{EntryTags, Field, Selector};
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
    by_value: ByValue<SystemTime>,
    other: Vec<(Selector, SystemTime)>,
}

impl HardBans {
    pub(crate) fn is_empty(&self) -> bool {
        self.by_value.is_empty() && self.other.is_empty()
    }

    /// Whether one of these bans hides an entry fetched at `fetched_at`.
    pub(crate) fn hide(&self, tags: &EntryTags, fetched_at: SystemTime) -> bool {
        self.by_value.found(tags).any(|at| *at >= fetched_at)
            || self
                .other
                .iter()
                .any(|(selector, at)| *at >= fetched_at && selector.matches(tags))
    }
}

/// Single-field selectors on an exact field ([`Field::is_exact`]), one table per field, keyed by
/// the selector's value.
struct ByValue<T>([HashMap<String, T>; Field::ALL.len()]);

impl<T> Default for ByValue<T> {
    fn default() -> Self {
        ByValue(Default::default())
    }
}

impl<T> ByValue<T> {
    /// The table a selector goes in and its value, when it is one exact field.
    fn slot<'s>(&mut self, selector: &'s Selector) -> Option<(&mut HashMap<String, T>, &'s str)> {
        let (field, value) = selector.single().filter(|(field, _)| field.is_exact())?;
        Some((&mut self.0[field.index()], value))
    }

    /// What is recorded under any of the entry's values, field by field.
    fn found<'a>(&'a self, tags: &'a EntryTags) -> impl Iterator<Item = &'a T> {
        Field::ALL.into_iter().flat_map(move |field| {
            let table = &self.0[field.index()];
            tags.values(field).filter_map(move |value| table.get(value))
        })
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(HashMap::is_empty)
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

#[derive(Clone, Copy)]
struct Mark {
    at: SystemTime,
    soft: bool,
}

/// Every ban in force, in the order made, and the single-field ones also by selector value,
/// so a lookup costs a few hash lookups plus a scan of the combined selectors (prefix, all,
/// several fields), not a scan of every ban.
#[derive(Default)]
struct InForce {
    list: Vec<Arc<Ban>>,
    by_value: ByValue<Vec<Mark>>,
    other: Vec<Arc<Ban>>,
}

impl InForce {
    fn push(&mut self, ban: Arc<Ban>) {
        let mark = Mark {
            at: ban.at,
            soft: ban.soft,
        };
        match self.by_value.slot(&ban.selector) {
            Some((map, value)) => map.entry(value.to_string()).or_default().push(mark),
            None => self.other.push(ban.clone()),
        }
        self.list.push(ban);
    }

    /// Drops the bans whose `forget_after` has passed. `forget_after` never decreases from
    /// one ban to the next, so those are the oldest ones.
    fn forget(&mut self, now: SystemTime) {
        let expired = self.list.partition_point(|ban| ban.forget_after <= now);
        let Some(last) = expired.checked_sub(1).map(|i| self.list[i].at) else {
            return;
        };
        self.list.drain(..expired);
        self.other.retain(|ban| ban.at > last);
        for map in &mut self.by_value.0 {
            map.retain(|_, marks| {
                marks.retain(|mark| mark.at > last);
                !marks.is_empty()
            });
        }
    }
}

/// Folds the bans made at or after `fetched_at` (newest last) into `outcome`; true when a hard
/// one applies.
fn apply(marks: &[Mark], fetched_at: SystemTime, outcome: &mut BanOutcome) -> bool {
    for mark in marks.iter().rev() {
        if mark.at < fetched_at {
            break;
        }
        if !mark.soft {
            return true;
        }
        // The earliest soft purge decides since when the entry is stale.
        *outcome = match *outcome {
            BanOutcome::ExpiredAt(t) => BanOutcome::ExpiredAt(t.min(mark.at)),
            _ => BanOutcome::ExpiredAt(mark.at),
        };
    }
    false
}

#[derive(Default)]
pub(crate) struct Bans {
    in_force: RwLock<InForce>,
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
        let mut in_force = self.in_force.write();
        in_force.forget(now);
        in_force.push(Arc::new(Ban {
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
        let in_force = self.in_force.read();
        let mut outcome = BanOutcome::Valid;
        for marks in in_force.by_value.found(tags) {
            if apply(marks, fetched_at, &mut outcome) {
                return BanOutcome::Invalid;
            }
        }
        let others = in_force
            .other
            .iter()
            .rev()
            .take_while(|ban| ban.at >= fetched_at)
            .filter(|ban| ban.selector.matches(tags))
            .map(|ban| Mark {
                at: ban.at,
                soft: ban.soft,
            })
            .collect::<Vec<_>>();
        if apply(&others, fetched_at, &mut outcome) {
            return BanOutcome::Invalid;
        }
        outcome
    }

    /// The hard bans made at or after `since`, for the reclamation pass (it only needs the
    /// bans made since its previous pass).
    pub(crate) fn hard_since(&self, since: SystemTime) -> HardBans {
        let in_force = self.in_force.read();
        let mut bans = HardBans::default();
        for ban in in_force.list.iter().rev().take_while(|ban| ban.at >= since) {
            if ban.soft {
                continue;
            }
            match bans.by_value.slot(&ban.selector) {
                Some((map, value)) => {
                    let at = map.entry(value.to_string()).or_insert(ban.at);
                    *at = (*at).max(ban.at);
                }
                None => bans.other.push((ban.selector.clone(), ban.at)),
            }
        }
        bans
    }

    pub(crate) fn len(&self) -> usize {
        self.in_force.read().list.len()
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

    fn entry(origin: &str, host: &str, path: &str, entry_tags: &[&str]) -> EntryTags {
        EntryTags {
            host: host.into(),
            path: path.into(),
            path_and_query: path.into(),
            origin: Some(origin.into()),
            tags: entry_tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn every_selector_kind_is_found_among_many_bans() {
        let bans = Bans::default();
        let before = SystemTime::now() - Duration::from_secs(1);
        for k in 0..500 {
            bans.add(
                by_origin(&format!("unrelated-{k}")),
                false,
                SystemTime::now(),
            );
        }
        let tagged = entry("o", "h", "/a", &["red", "blue"]);
        assert_eq!(bans.check(&tagged, before), BanOutcome::Valid);
        let soft_tag = Selector {
            tag: Some("blue".into()),
            ..Default::default()
        };
        bans.add(soft_tag, true, SystemTime::now());
        assert!(matches!(
            bans.check(&tagged, before),
            BanOutcome::ExpiredAt(_)
        ));
        let narrow = Selector {
            host: Some("h".into()),
            prefix: Some("/b".into()),
            ..Default::default()
        };
        bans.add(narrow, false, SystemTime::now());
        assert!(
            matches!(bans.check(&tagged, before), BanOutcome::ExpiredAt(_)),
            "a combined selector applies only when every field matches"
        );
        assert_eq!(
            bans.check(&entry("o", "h", "/b/c", &[]), before),
            BanOutcome::Invalid
        );
        let url = Selector {
            url: Some("/a".into()),
            ..Default::default()
        };
        bans.add(url, false, SystemTime::now());
        assert_eq!(bans.check(&tagged, before), BanOutcome::Invalid);
        assert_eq!(
            bans.check(&entry("o", "other-host", "/a", &[]), before),
            BanOutcome::Invalid,
            "url matches on every host"
        );
        let after = SystemTime::now() + Duration::from_millis(5);
        assert_eq!(bans.check(&tagged, after), BanOutcome::Valid);
    }

    #[test]
    fn forgotten_bans_no_longer_apply() {
        let bans = Bans::default();
        let before = SystemTime::now() - Duration::from_secs(1);
        bans.add(by_origin("o"), false, SystemTime::now());
        bans.add(
            Selector {
                origin: Some("o".into()),
                prefix: Some("/".into()),
                ..Default::default()
            },
            false,
            SystemTime::now(),
        );
        assert_eq!(bans.check(&tags("o"), before), BanOutcome::Invalid);
        bans.in_force
            .write()
            .forget(SystemTime::now() + Duration::from_secs(2 * 3600));
        assert_eq!(bans.len(), 0);
        assert_eq!(bans.check(&tags("o"), before), BanOutcome::Valid);
    }
}
