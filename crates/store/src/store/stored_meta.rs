//! The stored form of Pingora's `CacheMeta`: what a hit reads without decoding it again.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cors_edge_core::vary::StoredVary;

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
    /// Size of the header's fields ([`header_size`]), counted in the entry's weight.
    header_len: usize,
    /// The internal part when `CacheMeta::new` rebuilds it exactly (never revalidated, no epoch
    /// override): then a hit does not decode `internal` either.
    pub(super) plain: Option<PlainMeta>,
    /// What [`MokaStore::fresh_hit`] decides on, decoded once when the entry is stored.
    pub(super) facts: HitFacts,
    /// What its `Vary` and CORS grant say, worked out once when the entry is stored.
    pub(super) vary: Arc<StoredVary>,
}

/// What the `Vary` and `Access-Control-Allow-Origin` lines of a response header say
/// ([`StoredVary`]): the one way it is worked out, for the store and for the gateway's full
/// cache path.
pub fn stored_vary(headers: &http::HeaderMap) -> StoredVary {
    let acao: Vec<&[u8]> = headers
        .get_all(http::header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .iter()
        .map(http::HeaderValue::as_bytes)
        .collect();
    StoredVary::of(
        headers
            .get_all(http::header::VARY)
            .iter()
            .map(http::HeaderValue::as_bytes),
        &acao,
    )
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

impl HitFacts {
    fn of(meta: &CacheMeta) -> Self {
        HitFacts {
            fresh_until: meta.fresh_until(),
            epoch: meta.epoch(),
            created: meta.created(),
            provenance: meta.provenance(),
            variance: meta.variance(),
        }
    }
}

impl PlainMeta {
    /// The meta when `CacheMeta::new` (and `set_variance`) rebuild it exactly.
    fn of(meta: &CacheMeta) -> Option<Self> {
        let created = meta.created();
        (meta.updated() == created
            && meta.provenance() == created
            && meta.epoch_override().is_none())
        .then(|| PlainMeta {
            fresh_until: meta.fresh_until(),
            created,
            stale_while_revalidate_sec: meta.stale_while_revalidate_sec(),
            stale_if_error_sec: meta.stale_if_error_sec(),
            variance: meta.variance(),
        })
    }
}

/// The bytes a stored header holds: its fields as written on the wire (it is kept parsed, so
/// this is closer to its memory than its compressed serialization was).
pub(super) fn header_size(header: &pingora::http::ResponseHeader) -> usize {
    header.headers.iter().fold(16, |total, (name, value)| {
        total + name.as_str().len() + value.len() + 4
    })
}

/// Fields a hit adds to the stored header on its way out: `Age`, `Accept-Ranges`, the cache
/// status, Pingora's `Date`, `Connection` and `Keep-Alive`, and room for CORS's `Vary` and the
/// debug header.
const HIT_FIELDS: usize = 8;

/// `header` with its field names (as cased) and values copied into one buffer. An upstream's
/// header as Pingora parsed it holds slices of the whole read buffer (4 KiB or more, often
/// with the start of the body), which a stored copy would keep alive uncounted in its weight;
/// the copy holds only its own bytes, adjacent, as the deserialized form did.
fn compact(header: &pingora::http::ResponseHeader) -> Result<pingora::http::ResponseHeader> {
    use bytes::{BufMut, BytesMut};
    use pingora::http::{HeaderNameVariant, ResponseHeader};

    let fields = header.headers.len();
    let mut buf = BytesMut::with_capacity(header_size(header));
    let mut spans = Vec::with_capacity(fields);
    header.map(|name, value| {
        let name = match name {
            HeaderNameVariant::Case(case) => case.as_slice(),
            HeaderNameVariant::Titled(titled) => titled.as_bytes(),
        };
        let start = buf.len();
        buf.put_slice(name);
        buf.put_slice(value.as_bytes());
        spans.push((start, start + name.len(), start + name.len() + value.len()));
        Ok(())
    })?;
    let buf = buf.freeze();
    // A hit's copy of this header keeps its index tables (a `HeaderMap` clone does), so room
    // made here spares every hit a rehash of both maps when its own fields go in.
    let room = fields + HIT_FIELDS;
    let mut out = if header.has_case() {
        ResponseHeader::build(header.status, Some(room))?
    } else {
        ResponseHeader::build_no_case(header.status, Some(room))?
    };
    out.set_version(header.version);
    out.set_reason_phrase(header.get_reason_phrase())?;
    for (start, name_end, end) in spans {
        let value = pingora::http::header_value_from_raw(buf.slice(name_end..end));
        if header.has_case() {
            out.append_header(buf.slice(start..name_end), value)?;
        } else {
            let name = http::HeaderName::from_bytes(&buf[start..name_end])
                .or_err(InternalError, "a stored field name")?;
            out.append_header(name, value)?;
        }
    }
    Ok(out)
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
        // A fresh fill (never revalidated, no epoch override) is read as it is: Pingora's own
        // round trip of it (rmp-serde for the times, which keeps them exact; the header written
        // as HTTP/1.1 and parsed back) gives the same facts and fields, at the cost of a zstd
        // compression and decompression per stored response (a tenth of a miss's CPU).
        if let Some(plain) = PlainMeta::of(meta) {
            let mut header = compact(meta.response_header())?;
            header.set_version(http::Version::HTTP_11);
            return Ok(StoredMeta {
                internal: Vec::new(),
                header_len: header_size(&header),
                vary: Arc::new(stored_vary(&header.headers)),
                header,
                plain: Some(plain),
                facts: HitFacts::of(meta),
            });
        }
        let (internal, header_bytes) = meta.serialize()?;
        let decoded = CacheMeta::deserialize(&internal, &header_bytes)?;
        let header = decoded.response_header_copy();
        Ok(StoredMeta {
            internal,
            header_len: header_size(&header),
            vary: Arc::new(stored_vary(&header.headers)),
            header,
            plain: None,
            facts: HitFacts::of(&decoded),
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
