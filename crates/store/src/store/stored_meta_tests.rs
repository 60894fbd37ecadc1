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

/// An upstream's header as Pingora's HTTP/1 client builds it: names and values are slices of
/// one large read buffer (here 64 KiB, the values far apart in it).
fn header_slicing_a_large_buffer() -> pingora::http::ResponseHeader {
    let mut read_buf = vec![b'x'; 64 * 1024];
    let fields: [(&[u8], &[u8], usize); 3] = [
        (b"Cache-Control", b"max-age=600", 0),
        (b"X-Upstream-Case", b"kept", 30_000),
        (b"vary", b"Origin", 60_000),
    ];
    for (name, value, at) in fields {
        read_buf[at..at + name.len()].copy_from_slice(name);
        read_buf[at + 100..at + 100 + value.len()].copy_from_slice(value);
    }
    let read_buf = Bytes::from(read_buf);
    let mut header = pingora::http::ResponseHeader::build(200, None).unwrap();
    for (name, value, at) in fields {
        header
            .append_header(
                read_buf.slice(at..at + name.len()),
                pingora::http::header_value_from_raw(
                    read_buf.slice(at + 100..at + 100 + value.len()),
                ),
            )
            .unwrap();
    }
    header
}

#[test]
fn a_stored_header_holds_its_own_bytes_only_with_the_upstreams_case() {
    let header = header_slicing_a_large_buffer();
    let now = SystemTime::now();
    let meta = CacheMeta::new(now + Duration::from_secs(600), now, 0, 0, header.clone());
    let stored = assert_same_as_deserialize(&meta);
    assert!(stored.plain.is_some());

    let wire = |h: &pingora::http::ResponseHeader| {
        let mut buf = bytes::BytesMut::new();
        h.header_to_h1_wire(&mut buf);
        buf
    };
    assert_eq!(
        wire(&stored.header),
        wire(&header),
        "same fields, same case"
    );
    assert!(String::from_utf8_lossy(&wire(&stored.header)).contains("X-Upstream-Case: kept"));

    // Every value now lies in one small buffer, not across the 64 KiB the upstream's read held.
    let spans: Vec<(usize, usize)> = stored
        .header
        .headers
        .values()
        .map(|v| {
            let start = v.as_bytes().as_ptr() as usize;
            (start, start + v.len())
        })
        .collect();
    let lowest = spans.iter().map(|s| s.0).min().unwrap();
    let highest = spans.iter().map(|s| s.1).max().unwrap();
    assert!(
        highest - lowest <= stored_meta::header_size(&stored.header),
        "values span {} bytes",
        highest - lowest
    );
}

#[test]
fn a_header_without_case_stays_without_case() {
    let mut header = pingora::http::ResponseHeader::build_no_case(200, None).unwrap();
    header.append_header("cache-control", "max-age=60").unwrap();
    header.append_header("x-a", "1").unwrap();
    header.append_header("x-a", "2").unwrap();
    let now = SystemTime::now();
    let meta = CacheMeta::new(now + Duration::from_secs(60), now, 0, 0, header);
    let stored = assert_same_as_deserialize(&meta);
    assert!(!stored.header.has_case());
    let values: Vec<_> = stored.header.headers.get_all("x-a").iter().collect();
    assert_eq!(values, ["1", "2"]);
}
