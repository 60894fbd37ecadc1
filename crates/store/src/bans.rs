//! Purges as bans (the Varnish model): a purge records "entries matching S that were fetched
//! before T are invalid" and every lookup checks the entry against the bans newer than it.
//! Recording a ban is O(1) whatever the cache holds, and because the test is on the time the
//! upstream fetch *started*, a fill that was in flight when the purge answered is caught too.

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

    /// Whether a hard ban made at or after `since` hides an entry fetched at `fetched_at`: the
    /// reclamation pass only needs the bans made since its previous pass.
    pub(crate) fn hard_since(
        &self,
        tags: &EntryTags,
        fetched_at: SystemTime,
        since: SystemTime,
    ) -> bool {
        let list = self.list.read();
        list.iter()
            .rev()
            .take_while(|ban| ban.at >= since)
            .any(|ban| !ban.soft && ban.at >= fetched_at && ban.selector.matches(tags))
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
