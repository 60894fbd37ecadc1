//! The sharded cache on the request path: the peer marker checked (and removed) first thing,
//! the request's [`Hop`] decided once from the ring, a local miss fetched from the key's owner
//! instead of the upstream, failover to the upstream when the owner is unreachable, the local
//! copy's freshness capped at `cluster.local_ttl`, and the invalidation of an unsafe method
//! published to every node. The rules themselves are in `cors_edge_core::cluster`.

use std::net::SocketAddr;
use std::time::Duration;

use cors_edge_core::cluster::{self, Hop, Marker, Owner, PEER_HEADER};
use cors_edge_core::purge::{Purge, Selector};
use http::header::HeaderName;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::protocols::http::ServerSession;
use pingora::proxy::Session;

use super::record::RequestRecord;
use super::request_checks::DEBUG_HEADER;
use crate::cluster::ClusterHandle;
use crate::metrics::{PeerResult, PEER_METRICS};
use crate::state::SharedState;

const PEER: HeaderName = HeaderName::from_static(PEER_HEADER);

/// What the cluster decided about one request (kept on the record).
#[derive(Debug, Clone, Copy)]
pub struct PeerFacts {
    pub hop: Hop<SocketAddr>,
    /// An authenticated peer sent it; `Some(true)` when the client's request was https.
    pub from_peer: Option<bool>,
    /// The owner could not be reached: the upstream answered instead.
    pub failover: bool,
    /// The owner's answer arrived (after that a failure is no longer retried elsewhere).
    pub owner_answered: bool,
}

impl Default for PeerFacts {
    fn default() -> Self {
        PeerFacts {
            hop: Hop::Alone,
            from_peer: None,
            failover: false,
            owner_answered: false,
        }
    }
}

impl PeerFacts {
    /// The owner this request is being fetched from (none after failover).
    pub fn forwarding_to(&self) -> Option<SocketAddr> {
        match self.hop {
            Hop::Forward(owner) if !self.failover => Some(owner),
            _ => None,
        }
    }

    /// For the debug header and the access log: `-`, `self`, `peer` or the owner's address.
    pub fn owner_label(&self) -> String {
        match self.hop {
            Hop::Alone => "-".to_string(),
            Hop::Owner => "self".to_string(),
            Hop::ForPeer => "self (for a peer)".to_string(),
            Hop::Forward(owner) if self.failover => format!("{owner} (unreachable: upstream)"),
            Hop::Forward(owner) => owner.to_string(),
        }
    }
}

/// Whether the request carries a peer marker (a valid one or not).
pub fn carries_marker(req: &RequestHeader) -> bool {
    req.headers.contains_key(&PEER)
}

/// First thing on every request: the peer marker is removed, and only a constant-time match of
/// the cluster's token makes the request a peer's. Anything else is an ordinary client.
pub fn take_marker(state: &SharedState, session: &mut ServerSession, record: &mut RequestRecord) {
    let req = session.req_header_mut();
    if !carries_marker(req) {
        return;
    }
    let token = state.membership.as_ref().and_then(|m| m.token());
    // Every line is checked and removed: a second line cannot slip past.
    let mut verdict = None;
    for value in req.headers.get_all(&PEER) {
        let marker = cluster::check_marker(value.as_bytes(), token.map(str::as_bytes));
        verdict = match (verdict, marker) {
            (None, m) => Some(m),
            (Some(Marker::Peer { tls }), Marker::Peer { tls: again }) if tls == again => {
                Some(Marker::Peer { tls })
            }
            _ => Some(Marker::Refused),
        };
    }
    req.remove_header(&PEER);
    match verdict {
        Some(Marker::Peer { tls }) => record.peer.from_peer = Some(tls),
        _ => PEER_METRICS.count(PeerResult::Refused),
    }
}

/// The request's hop, decided once the key is known: the ring's owner of its URL.
pub fn decide(
    state: &SharedState,
    record: &mut RequestRecord,
    route: &str,
    host: &str,
    tls: bool,
    path_and_query: &str,
    cacheable: bool,
) {
    let owner = match &state.membership {
        Some(membership) if cacheable && record.peer.from_peer.is_none() => {
            let settings = membership.settings();
            membership.owner(
                &settings,
                &cluster::ring_key(route, host, tls, path_and_query),
            )
        }
        _ => Owner::Nobody,
    };
    record.peer.hop = cluster::decide(record.peer.from_peer.is_some(), cacheable, owner);
}

/// The owner's address as the request's peer, while it is being forwarded.
pub fn peer(state: &SharedState, record: &RequestRecord) -> Option<Box<HttpPeer>> {
    let owner = record.peer.forwarding_to()?;
    let settings = state.membership.as_ref()?.settings();
    let mut peer = HttpPeer::new(owner, false, String::new());
    peer.options.connection_timeout = Some(settings.connect_timeout);
    peer.options.read_timeout = Some(settings.read_timeout);
    peer.options.write_timeout = Some(settings.read_timeout);
    Some(Box::new(peer))
}

/// The owner could not be reached: fetch from the upstream instead (Pingora calls
/// `upstream_peer` again). `None` when the failure was not the owner's.
pub fn failover(record: &mut RequestRecord, e: &mut Box<Error>) -> bool {
    if record.peer.forwarding_to().is_none() || record.peer.owner_answered {
        return false;
    }
    record.peer.failover = true;
    PEER_METRICS.count(PeerResult::Failover);
    tracing::warn!("cluster: owner unreachable ({e}); fetching from the upstream");
    e.set_retry(true);
    true
}

/// The request as the owner gets it: as the client sent it (everything the key and the
/// variance read: `Origin`, `Access-Control-Request-*`, `Accept-Encoding`, the key headers,
/// conditional headers), with the marker and without the debug token.
pub fn prepare_forward(
    state: &SharedState,
    session: &Session,
    upstream_request: &mut RequestHeader,
    record: &mut RequestRecord,
) -> Result<()> {
    let Some(token) = state.membership.as_ref().and_then(|m| m.token()) else {
        return Error::e_explain(InternalError, "forwarding without a peer token");
    };
    let tls = record.facts().is_some_and(|facts| facts.tls);
    // The owner gets the forwarding headers this node sets for its client (and keeps them:
    // an authenticated peer is a trusted proxy), so the upstream sees the client, not this node.
    super::upstream::prepare_request(session, upstream_request, record)?;
    if let Some(facts) = record.facts() {
        if !upstream_request.headers.contains_key(http::header::HOST) {
            // An HTTP/2 client's :authority: the owner keys and routes by the same host.
            upstream_request.insert_header(http::header::HOST, facts.host())?;
        }
    }
    upstream_request.remove_header(&DEBUG_HEADER);
    upstream_request.insert_header(PEER, cluster::marker_value(token, tls))?;
    PEER_METRICS.count(PeerResult::Forwarded);
    Ok(())
}

/// The owner's answer as this node's upstream answer: its cache status and debug header are
/// the owner's own, not part of the response.
pub fn on_owner_response(record: &mut RequestRecord, resp: &mut ResponseHeader) {
    if record.peer.forwarding_to().is_none() {
        return;
    }
    record.peer.owner_answered = true;
    resp.remove_header(&super::status::X_CACHE);
    resp.remove_header(&DEBUG_HEADER);
    resp.remove_header(&PEER);
}

/// How long a local copy of the owner's answer may stay fresh: `Some(cap)` on a node that
/// fetched from the owner; `Some(0)` means no local copy at all.
pub fn local_cap(state: &SharedState, record: &RequestRecord) -> Option<Duration> {
    record.peer.forwarding_to()?;
    Some(state.membership.as_ref()?.settings().local_ttl)
}

/// Counted when the answer to a peer's request goes out.
pub fn done(record: &RequestRecord) {
    if record.peer.hop == Hop::ForPeer {
        PEER_METRICS.count(PeerResult::ServedAsOwner);
    }
}

/// A successful unsafe request through this node: its URL was invalidated here; the owner and
/// every local copy drop it through the purge stream (RFC 9111 §4.4).
pub fn publish_invalidation(
    state: &SharedState,
    cluster: Option<&ClusterHandle>,
    record: &RequestRecord,
    method: &http::Method,
    status: u16,
) {
    if !super::upstream::is_unsafe_method(method) || status >= 400 {
        return;
    }
    let sharded = state
        .membership
        .as_ref()
        .is_some_and(|m| m.settings().sharded);
    let (Some(cluster), true, Some(routed)) = (cluster, sharded, &record.routed) else {
        return;
    };
    let (facts, key) = (&routed.facts, &routed.key);
    cluster.publish(&Purge {
        selector: Selector {
            host: Some(cors_edge_core::key::key_host(facts.host(), facts.tls)),
            url: Some(key.path_and_query.clone()),
            ..Selector::default()
        },
        soft: false,
    });
}
