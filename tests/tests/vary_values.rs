//! Which request values select the same stored variant (RFC 9111 §4.1): list whitespace and
//! the case of case-insensitive fields do not split the cache; order, quoted strings and
//! absence do.

use cors_edge_tests::{request, GatewayConfig, GatewayProcess, Reply, Upstream};

#[tokio::test]
async fn list_whitespace_and_language_case_share_a_variant_order_does_not() {
    let upstream = Upstream::start(|req| {
        Reply::ok(req.header("accept-language").unwrap_or_default())
            .header("cache-control", "max-age=60")
            .header("vary", "Accept-Language")
    })
    .await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let get = |value: &'static str| async move {
        request(gateway.addr, "GET", "/l", &[("accept-language", value)]).await
    };

    let first = get("en,de").await;
    assert_eq!(
        (first.cache().as_str(), first.text().as_str()),
        ("MISS", "en,de")
    );
    for same in [" en ,   de", "EN, De", "en, de"] {
        let again = get(same).await;
        assert_eq!(
            (again.cache().as_str(), again.text().as_str()),
            ("HIT", "en,de"),
            "{same:?}"
        );
    }
    // The upstream may prefer the first language: another order is another variant.
    let reordered = get("de, en").await;
    assert_eq!(
        (reordered.cache().as_str(), reordered.text().as_str()),
        ("MISS", "de, en")
    );
    assert_eq!(upstream.hits("/l"), 2);
}

#[tokio::test]
async fn quoted_strings_and_case_of_other_fields_are_kept() {
    let upstream = Upstream::start(|req| {
        Reply::ok(req.header("foo").unwrap_or_else(|| "(absent)".into()))
            .header("cache-control", "max-age=60")
            .header("vary", "Foo")
    })
    .await;
    let gateway = GatewayProcess::start(&GatewayConfig::new(upstream.addr).yaml());
    let get = |headers: &'static [(&'static str, &'static str)]| async move {
        request(gateway.addr, "GET", "/f", headers).await
    };

    assert_eq!(get(&[("foo", "\"a, b\"")]).await.cache(), "MISS");
    let spaced = get(&[("foo", "\"a ,b\"")]).await;
    assert_eq!(
        (spaced.cache().as_str(), spaced.text().as_str()),
        ("MISS", "\"a ,b\"")
    );
    assert_eq!(get(&[("foo", "x")]).await.cache(), "MISS");
    let upper = get(&[("foo", "X")]).await;
    assert_eq!(
        (upper.cache().as_str(), upper.text().as_str()),
        ("MISS", "X")
    );
    // Outside quotes, whitespace around list commas is not significant.
    assert_eq!(get(&[("foo", "1,2")]).await.cache(), "MISS");
    assert_eq!(get(&[("foo", " 1 , 2 ")]).await.cache(), "HIT");

    let absent = get(&[]).await;
    assert_eq!(
        (absent.cache().as_str(), absent.text().as_str()),
        ("MISS", "(absent)")
    );
    let empty = get(&[("foo", "")]).await;
    assert_eq!(
        (empty.cache().as_str(), empty.text().as_str()),
        ("MISS", "")
    );
    assert_eq!(get(&[]).await.cache(), "HIT");
    assert_eq!(upstream.hits("/f"), 7);
}
