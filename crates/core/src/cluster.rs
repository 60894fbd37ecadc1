//! One cache across the cluster, the pure parts: which bytes choose a request's owner node,
//! what a node does with a request (forward it to the owner, serve it itself, go straight
//! upstream), and how a request proves it comes from a peer.
//!
//! The gateway asks the ring (Pingora's Ketama `LoadBalancer<Consistent>`) for the owner of
//! [`ring_key`] and hands the answer to [`decide`]; the result is kept on the request's record.

use crate::key::{key_host, push_framed};

/// The request header a node adds when it forwards a request to the key's owner:
/// `<token>` or `<token> https` (the client's request arrived over TLS, so the owner keys it
/// as https). Removed from every incoming request before anything else reads it.
pub const PEER_HEADER: &str = "x-cors-edge-peer";

/// The bytes the ring hashes: the primary key without the scheme and without a preflight's
/// parts (route, host, path and query), so every variant of a URL — each `Origin`, each
/// coding, http and https — and its preflights have one owner, and per-origin variance,
/// purge by URL and request coalescing work as on one node.
pub fn ring_key(route: &str, host: &str, tls: bool, path_and_query: &str) -> Vec<u8> {
    let host = key_host(host, tls);
    let mut key = Vec::with_capacity(12 + route.len() + host.len() + path_and_query.len());
    push_framed(&mut key, route.as_bytes());
    push_framed(&mut key, host.as_bytes());
    push_framed(&mut key, path_and_query.as_bytes());
    key
}

/// Who owns a key, as the ring says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<A> {
    /// No ring (no `peers`), or no healthy member: the node is on its own.
    Nobody,
    /// This node.
    Me,
    /// Another node, at this address.
    Peer(A),
}

/// What a node does with one request; decided once, in `request_filter`, and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop<A> {
    /// Not in a cluster, or not cacheable: the node's own cache (if any) and the upstream.
    Alone,
    /// Cacheable and this node owns it: its cache, its upstream.
    Owner,
    /// An authenticated peer forwarded it: the full cache logic here, never forwarded again
    /// (one hop), even if this node's view of the ring names someone else.
    ForPeer,
    /// Cacheable and another node owns it: a local miss is fetched from that node.
    Forward(A),
}

impl<A> Hop<A> {
    /// The label of `cors_edge_cluster_peer_requests_total` and the access log.
    pub fn as_str(&self) -> &'static str {
        match self {
            Hop::Alone => "alone",
            Hop::Owner => "owner",
            Hop::ForPeer => "for_peer",
            Hop::Forward(_) => "forward",
        }
    }
}

/// The decision table. `from_peer` is true only for a request carrying the right token.
pub fn decide<A>(from_peer: bool, cacheable: bool, owner: Owner<A>) -> Hop<A> {
    match (from_peer, cacheable, owner) {
        (true, _, _) => Hop::ForPeer,
        (false, false, _) => Hop::Alone,
        (false, true, Owner::Nobody) => Hop::Alone,
        (false, true, Owner::Me) => Hop::Owner,
        (false, true, Owner::Peer(address)) => Hop::Forward(address),
    }
}

/// What a peer marker says once its token is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// The token matches: a peer; `tls` when the client's request to that peer was https.
    Peer { tls: bool },
    /// Present with a wrong or missing token: an ordinary client (counted as refused).
    Refused,
}

/// Checks a peer marker's value against the cluster's token in constant time. `token` is
/// `None` when this node has no token (not in a cluster): every marker is refused.
pub fn check_marker(value: &[u8], token: Option<&[u8]>) -> Marker {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Marker::Refused;
    };
    let value = value.trim_ascii();
    let (given, tls) = match value.strip_suffix(b" https") {
        Some(given) => (given.trim_ascii(), true),
        None => (value, false),
    };
    if constant_time_eq(given, token) {
        Marker::Peer { tls }
    } else {
        Marker::Refused
    }
}

/// The marker a forwarding node sends.
pub fn marker_value(token: &str, tls: bool) -> String {
    if tls {
        format!("{token} https")
    } else {
        token.to_string()
    }
}

/// Equal-length comparison that takes the same time wherever the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_of_a_url_has_one_ring_key() {
        let base = ring_key("api", "Example.com", false, "/a?x=1");
        // Host spelling and the scheme's default port do not matter; the scheme does not either.
        assert_eq!(base, ring_key("api", "example.com.:80", false, "/a?x=1"));
        assert_eq!(base, ring_key("api", "example.com:443", true, "/a?x=1"));
        assert_eq!(base, ring_key("api", "example.com", true, "/a?x=1"));
        // Route, host, path and query do.
        for other in [
            ring_key("web", "example.com", false, "/a?x=1"),
            ring_key("api", "example.org", false, "/a?x=1"),
            ring_key("api", "example.com", false, "/a?x=2"),
            ring_key("api", "example.com", false, "/b?x=1"),
            ring_key("api", "example.com:8080", false, "/a?x=1"),
        ] {
            assert_ne!(base, other);
        }
        // Framed: moving bytes between parts changes the key.
        assert_ne!(
            ring_key("ab", "c", false, "/"),
            ring_key("a", "bc", false, "/")
        );
    }

    #[test]
    fn decision_table() {
        type H = Hop<u8>;
        let cases: [(bool, bool, Owner<u8>, H); 10] = [
            (true, true, Owner::Peer(2), Hop::ForPeer),
            (true, true, Owner::Me, Hop::ForPeer),
            (true, true, Owner::Nobody, Hop::ForPeer),
            (true, false, Owner::Peer(2), Hop::ForPeer),
            (false, false, Owner::Peer(2), Hop::Alone),
            (false, false, Owner::Me, Hop::Alone),
            (false, false, Owner::Nobody, Hop::Alone),
            (false, true, Owner::Nobody, Hop::Alone),
            (false, true, Owner::Me, Hop::Owner),
            (false, true, Owner::Peer(2), Hop::Forward(2)),
        ];
        for (from_peer, cacheable, owner, wanted) in cases {
            assert_eq!(
                decide(from_peer, cacheable, owner),
                wanted,
                "{from_peer} {cacheable} {owner:?}"
            );
        }
    }

    #[test]
    fn markers() {
        let token = Some(&b"s3cret"[..]);
        for (value, wanted) in [
            (&b"s3cret"[..], Marker::Peer { tls: false }),
            (b" s3cret ", Marker::Peer { tls: false }),
            (b"s3cret https", Marker::Peer { tls: true }),
            (b"", Marker::Refused),
            (b"s3cre", Marker::Refused),
            (b"s3cretx", Marker::Refused),
            (b"S3CRET", Marker::Refused),
            (b"https", Marker::Refused),
            (b"wrong https", Marker::Refused),
        ] {
            assert_eq!(check_marker(value, token), wanted, "{value:?}");
        }
        assert_eq!(check_marker(b"s3cret", None), Marker::Refused);
        assert_eq!(check_marker(b"", Some(b"")), Marker::Refused);
        assert_eq!(
            check_marker(marker_value("t", true).as_bytes(), Some(b"t")),
            Marker::Peer { tls: true }
        );
        assert_eq!(
            check_marker(marker_value("t", false).as_bytes(), Some(b"t")),
            Marker::Peer { tls: false }
        );
    }
}
