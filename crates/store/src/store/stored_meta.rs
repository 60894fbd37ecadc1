//! The stored form of Pingora's `CacheMeta`: what a hit reads without decoding it again.

use std::time::{SystemTime, UNIX_EPOCH};

use pingora::cache::key::HashBinary;
use pingora::cache::CacheMeta;
use pingora::prelude::*;

/// A stored `CacheMeta` (which is not `Clone`): the serialized internal part, and the response
/// header already through pingora's serialize/deserialize round trip. A hit clones the parsed
/// header instead of zstd-decompressing and re-parsing it (the most expensive part of a hit),
/// and still gets exactly the header `CacheMeta::deserialize` would have produced.
#[derive(Clone)]
pub(super) struct StoredMeta {
    internal: Vec<u8>,
    pub(super) header: pingora::http::ResponseHeader,
    /// Size of the serialized header, counted in the entry's weight.
    header_len: usize,
    /// The internal part when `CacheMeta::new` rebuilds it exactly (never revalidated, no epoch
    /// override): then a hit does not decode `internal` either.
    pub(super) plain: Option<PlainMeta>,
    /// What [`MokaStore::fresh_hit`] decides on, decoded once when the entry is stored.
    pub(super) facts: HitFacts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HitFacts {
    pub(super) fresh_until: SystemTime,
    /// The reference of `Age` (`CacheMeta::epoch`).
    pub(super) epoch: SystemTime,
    pub(super) created: SystemTime,
    pub(super) provenance: SystemTime,
    pub(super) variance: Option<HashBinary>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PlainMeta {
    fresh_until: SystemTime,
    created: SystemTime,
    stale_while_revalidate_sec: u32,
    stale_if_error_sec: u32,
    variance: Option<HashBinary>,
}

/// The serialized form of a header with no fields: `CacheMeta::deserialize` needs one, and the
/// parsed header then replaces it.
fn empty_header() -> Result<&'static [u8]> {
    static EMPTY: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    EMPTY
        .get_or_init(|| {
            let header = pingora::http::ResponseHeader::build(200, Some(0)).ok()?;
            let meta = CacheMeta::new(UNIX_EPOCH, UNIX_EPOCH, 0, 0, header);
            meta.serialize().ok().map(|(_, header)| header)
        })
        .as_deref()
        .ok_or_else(|| Error::explain(InternalError, "cannot serialize an empty header"))
}

impl StoredMeta {
    pub(super) fn new(meta: &CacheMeta) -> Result<Self> {
        let (internal, header_bytes) = meta.serialize()?;
        let decoded = CacheMeta::deserialize(&internal, &header_bytes)?;
        let created = decoded.created();
        let plain = (decoded.updated() == created
            && decoded.provenance() == created
            && decoded.epoch_override().is_none())
        .then(|| PlainMeta {
            fresh_until: decoded.fresh_until(),
            created,
            stale_while_revalidate_sec: decoded.stale_while_revalidate_sec(),
            stale_if_error_sec: decoded.stale_if_error_sec(),
            variance: decoded.variance(),
        });
        let facts = HitFacts {
            fresh_until: decoded.fresh_until(),
            epoch: decoded.epoch(),
            created,
            provenance: decoded.provenance(),
            variance: decoded.variance(),
        };
        Ok(StoredMeta {
            internal,
            header: decoded.response_header_copy(),
            header_len: header_bytes.len(),
            plain,
            facts,
        })
    }

    pub(super) fn to_cache_meta(&self) -> Result<CacheMeta> {
        if let Some(plain) = self.plain {
            let mut meta = CacheMeta::new(
                plain.fresh_until,
                plain.created,
                plain.stale_while_revalidate_sec,
                plain.stale_if_error_sec,
                self.header.clone(),
            );
            if let Some(variance) = plain.variance {
                meta.set_variance(variance);
            }
            return Ok(meta);
        }
        let mut meta = CacheMeta::deserialize(&self.internal, empty_header()?)?;
        *meta.response_header_mut() = self.header.clone();
        Ok(meta)
    }

    /// Bytes of the stored metadata, counted in the entry's weight.
    pub(super) fn stored_len(&self) -> usize {
        self.internal.len() + self.header_len
    }
}
