//! `StoredMeta` gives back what `CacheMeta`'s own round trip would.

use super::*;

fn facts(meta: &CacheMeta) -> impl PartialEq + std::fmt::Debug {
    let headers: Vec<(String, Vec<u8>)> = meta
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect();
    (
        (
            meta.fresh_until(),
            meta.created(),
            meta.updated(),
            meta.provenance(),
        ),
        (meta.epoch_override(), meta.variance()),
        (meta.stale_while_revalidate_sec(), meta.stale_if_error_sec()),
        (
            meta.response_header().status,
            meta.response_header().version,
            headers,
        ),
    )
}

fn sample(variance: bool) -> CacheMeta {
    let mut header = pingora::http::ResponseHeader::build(200, None).unwrap();
    header
        .append_header("Cache-Control", "public, max-age=600")
        .unwrap();
    header.append_header("vary", "Origin").unwrap();
    header.append_header("X-Multi", "a").unwrap();
    header.append_header("X-Multi", "b").unwrap();
    let now = SystemTime::now();
    let mut meta = CacheMeta::new(now + Duration::from_secs(600), now, 10, 60, header);
    if variance {
        meta.set_variance([7; 16]);
    }
    meta
}

/// A hit must see exactly what `CacheMeta::deserialize` of the stored bytes gives.
fn assert_same_as_deserialize(meta: &CacheMeta) -> StoredMeta {
    let (internal, header) = meta.serialize().unwrap();
    let expected = CacheMeta::deserialize(&internal, &header).unwrap();
    let stored = StoredMeta::new(meta).unwrap();
    assert_eq!(facts(&stored.to_cache_meta().unwrap()), facts(&expected));
    stored
}

#[test]
fn plain_meta_rebuilds_what_deserialize_gives() {
    for variance in [false, true] {
        let stored = assert_same_as_deserialize(&sample(variance));
        assert!(stored.plain.is_some(), "a fresh fill takes the fast path");
    }
}

#[test]
fn revalidated_or_overridden_meta_is_decoded() {
    let mut revalidated = sample(true);
    std::thread::sleep(Duration::from_millis(2));
    revalidated.update_freshness(SystemTime::now() + Duration::from_secs(60), 0, 0);
    assert!(assert_same_as_deserialize(&revalidated).plain.is_none());

    let mut overridden = sample(false);
    overridden.set_epoch_override(SystemTime::now() - Duration::from_secs(30));
    assert!(assert_same_as_deserialize(&overridden).plain.is_none());
}
