//! The hashes the store is keyed on: a request's primary key, the variance its stored answer
//! selects, and the two combined. They never leave the process (nothing is persisted, and nodes
//! of a ring exchange URLs, not hashes), so they need to be unforgeable, not stable: SipHash-1-3
//! with 128-bit output under a key drawn from the OS at start. SipHash is a keyed PRF: without
//! the key, which no request can read, finding two keys that collide is no easier than guessing
//! (2^64 work for a birthday collision on 128 bits even with the key known), so a client cannot
//! craft a URL, `Origin` or `Vary`d value whose answer lands on another's entry. It replaces
//! Pingora's default (unkeyed BLAKE2b), which costs several times as much per hash, three
//! times per hit.

use std::hash::{BuildHasher, Hasher};

use once_cell::sync::Lazy;
use pingora::cache::key::{CacheHashKey, HashBinary};
use siphasher::sip128::{Hasher128, SipHasher13};

/// This process's key: 16 bytes from the OS; if the OS cannot give them, std's per-process
/// random hasher seeds, which are drawn from the same source when it can.
static KEY: Lazy<(u64, u64)> = Lazy::new(|| {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_ok() {
        let (k0, k1) = bytes.split_at(8);
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        return (word(k0), word(k1));
    }
    let state = std::collections::hash_map::RandomState::new();
    let draw = |n: u64| {
        let mut h = state.build_hasher();
        h.write_u64(n);
        h.finish()
    };
    (draw(0), draw(1))
});

fn hasher() -> SipHasher13 {
    SipHasher13::new_with_keys(KEY.0, KEY.1)
}

fn finish(h: &SipHasher13) -> HashBinary {
    h.finish128().as_bytes()
}

/// The hash of a primary key's text.
pub fn primary(text: &[u8]) -> HashBinary {
    let mut h = hasher();
    h.write(text);
    finish(&h)
}

/// The hash of a stored answer's variance: the request's values of the fields it varies on.
/// Each name and value is written with its length, so no two lists of pairs hash the same
/// input.
#[derive(Clone)]
pub struct VarianceHasher {
    hasher: SipHasher13,
    empty: bool,
}

impl Default for VarianceHasher {
    fn default() -> Self {
        VarianceHasher {
            hasher: hasher(),
            empty: true,
        }
    }
}

impl VarianceHasher {
    pub fn add(&mut self, name: &str, value: &[u8]) {
        self.empty = false;
        for part in [name.as_bytes(), value] {
            self.hasher.write_usize(part.len());
            self.hasher.write(part);
        }
    }

    /// `None` when nothing was added: the answer does not vary (as Pingora's
    /// `VarianceBuilder`).
    pub fn finish(&self) -> Option<HashBinary> {
        (!self.empty).then(|| finish(&self.hasher))
    }
}

/// The slot of an entry: its primary hash, or with a variance the hash of both.
pub fn combined(key: &impl CacheHashKey) -> HashBinary {
    let primary = key.primary_bin();
    match key.variance_bin() {
        None => primary,
        Some(variance) => {
            let mut h = hasher();
            h.write(&primary);
            h.write(&variance);
            finish(&h)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::cache::CacheKey;

    #[test]
    fn pairs_are_length_delimited() {
        let of = |pairs: &[(&str, &[u8])]| {
            let mut v = VarianceHasher::default();
            for (name, value) in pairs {
                v.add(name, value);
            }
            v.finish()
        };
        assert_eq!(of(&[]), None);
        assert_ne!(of(&[("ab", b"c")]), of(&[("a", b"bc")]));
        assert_ne!(of(&[("a", b""), ("b", b"")]), of(&[("a", b"\x01b")]));
        assert_eq!(of(&[("a", b"1")]), of(&[("a", b"1")]));
        assert_ne!(of(&[("a", b"1")]), of(&[("a", b"2")]));
    }

    #[test]
    fn the_combined_slot_is_the_primary_without_a_variance() {
        let mut key = CacheKey::new("k", "");
        key.set_primary_bin_override(primary(b"k"));
        assert_eq!(combined(&key), primary(b"k"));
        key.set_variance_key(primary(b"v"));
        let with_variance = combined(&key);
        assert_ne!(with_variance, primary(b"k"));
        assert_eq!(combined(&key.to_compact()), with_variance);
    }
}
