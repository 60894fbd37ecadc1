//! The Pingora `ProxyHttp` implementation. Every hook is short: it fills or reads the
//! request's [`RequestRecord`] and calls core or one of the modules below, each of which holds
//! one job. A routed request's runtime, route, facts and key are one value
//! ([`record::Routed`]), made in `answer_early`: a hook has all of them or none.
//!
//! The paths a request can take, in Pingora 0.9.1's hook order. What `request_filter` answers
//! needs no lookup by Pingora, and it is one function, [`Gateway::answer_early`]: an HTTP/1
//! request meets it first in front of Pingora's proxy framework ([`front`], through
//! `connections::FrontDoor`), where an answer costs none of the framework's per-request work;
//! a request it declines there (HTTP/2 requests and a peer's skip the door) reaches the proxy,
//! which parses it again and runs `request_filter`, without the direct lookup just done.
//!
//! - **Refused before routing**: `answer_early` ([`request_checks::admit`]: head size, the
//!   request-target rule, `OPTIONS *`, no route) → [`answers::answer`] → `logging`
//!   ([`observe`]).
//! - **Edge-mode preflight**: `answer_early` → [`cors_stamp::answer_edge_preflight`] (the
//!   policy answers from memory; nothing is looked up, stored or forwarded) → the answer
//!   filter is not run → `logging`.
//! - **Fresh hit, direct**: `answer_early` (facts, key, [`direct_hit::lookup`]) →
//!   [`direct_hit::serve`] → the answer filter (`response_filter`'s: [`status`],
//!   [`cors_stamp::stamp`], debug) → `logging`.
//! - **Hit on Pingora's path** (the request constrains freshness, is conditional, ranged, …):
//!   `request_filter` → `request_cache_filter` ([`cache_policy::enable`]) →
//!   `cache_key_callback` (the recorded key) → Pingora's lookup (`cache_vary_filter`:
//!   [`keys::variance`]) → `cache_hit_filter` ([`cache_policy::on_hit`]: the request's verdict)
//!   → `response_filter` → `logging`.
//! - **Miss**: … lookup → `proxy_upstream_filter` (`only-if-cached`: a `504` here) →
//!   `upstream_peer` ([`upstream::peer`], or the key's owner: [`cluster_route::peer`]) →
//!   `fail_to_connect` on a refused connection (retry, failover) → `upstream_request_filter`
//!   ([`upstream::prepare_request`] or [`cluster_route::prepare_forward`], both through
//!   [`upstream::send_target`]) → `upstream_response_filter` (on the response header:
//!   [`cors_stamp::on_upstream_response`], [`upstream::on_response_header`] — invalidation,
//!   the 304 to merge —, [`compress::on_response_header`]) → `response_cache_filter` (on the
//!   same header, before any body: [`cache_policy::store_decision`]) → `cache_vary_filter`
//!   again when the response is stored → `response_filter` → `upstream_response_body_filter`
//!   for each body chunk ([`compress::on_body`]) → `logging`.
//! - **Revalidation**: an expired entry with a validator is fetched conditionally; a `304` is
//!   recorded in `upstream_response_filter` and merged into the stored header in
//!   `response_cache_filter` (`merge_not_modified`); the answer is the stored body.
//! - **Stale**: `should_serve_stale` (inside `stale-while-revalidate`, or `stale-if-error`
//!   on an upstream failure or `5xx`) lets Pingora serve the stored copy.
//! - **Failure**: `fail_to_proxy` ([`answers::fail_to_proxy`]: a JSON error answer) →
//!   `logging`.
//!
//! In a ring (`cluster.peers`, [`cluster_route`]): `request_filter` first removes the peer
//! marker (`take_marker`) and, once the key is known, decides the request's hop (`decide`:
//! alone, owner, for a peer, or forward to the owner). A forwarded local miss goes to the owner
//! as above (`on_owner_response` in `upstream_response_filter`); an unreachable owner fails over
//! to the upstream through `fail_to_connect` / `error_while_proxy` (`failover`, a retry that
//! calls `upstream_peer` again); `response_cache_filter` caps the local copy at
//! `cluster.local_ttl`; a successful unsafe method's invalidation is published to every node
//! (`publish_invalidation`).

mod answers;
mod cache_policy;
mod cluster_route;
mod compress;
mod cors_stamp;
mod debug;
mod direct_hit;
mod encoder;
mod front;
mod keys;
mod listing;
mod observe;
mod record;
mod request_checks;
mod status;
mod upstream;

use std::sync::Arc;

use async_trait::async_trait;
use cors_edge_core::cors::RequestKind;
use cors_edge_store::PurgeTagSlot;
use pingora::cache::key::HashBinary;
use pingora::cache::{CacheKey, CacheMeta, CachePhase, ForcedFreshness, HitHandler, RespCacheable};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::protocols::http::ServerSession;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

pub use front::FrontAnswers;
pub use record::RequestRecord;

use crate::runtime::CorsMode;
use crate::state::SharedState;

pub struct Gateway {
    pub state: Arc<SharedState>,
    /// Publishes the invalidations of unsafe methods to the other nodes (`cluster:`).
    pub cluster: Option<crate::cluster::ClusterHandle>,
}

impl Gateway {
    /// What `request_filter` does, on Pingora's parsed request alone (so the front door runs it
    /// too, [`front`]): routes the request and answers what needs no cache lookup by Pingora —
    /// refusals, edge-mode preflights, fresh hits ([`direct_hit`]). `true` when answered.
    async fn answer_early(
        &self,
        session: &mut ServerSession,
        record: &mut RequestRecord,
    ) -> Result<bool> {
        // Bytes of a next request that arrive while this one is proxied are set aside
        // (Pingora's pipelining) instead of failing this request with `400` after the upstream
        // has run it; `logging` turns it off before Pingora decides on reuse, so such a
        // connection is closed after this answer (connections/mod.rs, "Pipelined requests").
        session.set_pipelining_enabled(true);
        // Before anything reads the request: only a peer with the token keeps its marker's say.
        cluster_route::take_marker(&self.state, session, record);
        let runtime = self.state.runtime();
        let (route, target) = match request_checks::admit(&runtime, session.req_header()) {
            Ok(admitted) => admitted,
            Err((refusal, target)) => {
                record.unrouted_target = target;
                if matches!(
                    refusal,
                    request_checks::Refusal::HeaderTooLarge | request_checks::Refusal::BadTarget(_)
                ) {
                    // Whatever follows on this connection cannot be trusted to be framed right.
                    session.set_keepalive(None);
                }
                let headers: Vec<(&'static str, String)> = refusal
                    .headers()
                    .iter()
                    .map(|(name, value)| (*name, (*value).to_string()))
                    .collect();
                return answers::answer(
                    session,
                    status::NOT_CONSULTED,
                    record,
                    refusal.status(),
                    &headers,
                    refusal.body(),
                )
                .await;
            }
        };
        let mut facts =
            request_checks::facts(session, &route, target, self.state.admin_token.as_deref());
        if let Some(tls) = record.peer.from_peer {
            // The client's request reached the forwarding node over https: keyed as such.
            facts.tls = tls;
        }
        let edge_preflight =
            route.cors_mode == CorsMode::Edge && facts.kind == RequestKind::Preflight;
        let key = keys::request_key(&route, &facts);
        if edge_preflight {
            // The policy answers it from memory: nothing is looked up, stored or forwarded.
            record.routed = Some(record::Routed {
                runtime,
                route: route.clone(),
                facts,
                key,
            });
            return cors_stamp::answer_edge_preflight(session, record, &route).await;
        }
        cluster_route::decide(
            &self.state,
            record,
            &route.name,
            facts.host(),
            facts.tls,
            &key.path_and_query,
            facts.cacheable,
        );
        record.routed = Some(record::Routed {
            runtime,
            route,
            facts,
            key,
        });
        if record.declined_at_front {
            return Ok(false);
        }
        if let Some(hit) = direct_hit::lookup(self.state.store, session.req_header(), record) {
            return direct_hit::serve(self, session, record, hit).await;
        }
        Ok(false)
    }

    /// The answer filter (`response_filter`): cache status, surrogate fields, CORS stamp, debug
    /// header, on Pingora's answers and direct hits (the gateway's own answers, [`answers`],
    /// write their cache status themselves). `phase`: Pingora's cache phase then.
    fn filter_answer(
        &self,
        phase: CachePhase,
        resp: &mut ResponseHeader,
        record: &mut RequestRecord,
    ) {
        if resp.status.is_informational() {
            // An interim answer (`100 Continue`) says nothing about the final one: no cache
            // status, no `Vary`, no CORS fields.
            return;
        }
        status::write(resp, status::of(phase, record));
        if record.peer.hop != cors_edge_core::cluster::Hop::ForPeer {
            // Surrogate keys are for the cache, not for browsers (a peer keeps them for its
            // local copy's purges and freshness).
            resp.remove_header(&keys::SURROGATE_KEY);
            resp.remove_header(&keys::CACHE_TAG);
            // Surrogate-Control is addressed to this cache; Fastly and Akamai strip it from
            // every answer too, cached or not, so a browser or a second CDN never acts on it.
            resp.remove_header(&cache_policy::SURROGATE_CONTROL);
        }
        let Some(route) = record.route().cloned() else {
            return;
        };
        cors_stamp::stamp(resp, record, &route);
        if record.facts().is_some_and(|r| r.debug) {
            let value = debug::describe(record);
            if let Err(e) = resp.insert_header(request_checks::DEBUG_HEADER, value) {
                tracing::warn!("cannot set the debug header: {e}");
            }
        }
    }

    /// The request's end (`logging`): metrics, the access log, the ring's bookkeeping.
    fn request_done(
        &self,
        session: &mut ServerSession,
        phase: CachePhase,
        record: &mut RequestRecord,
    ) {
        // Runs before Pingora's reuse decision: bytes set aside during this request (see
        // `request_filter`) now close the connection instead of starting its next request.
        session.set_pipelining_enabled(false);
        let status = status::of(phase, record);
        cluster_route::done(record);
        observe::request_done(&self.state, record, status);
        observe::log_access(&self.state, session, record, status);
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestRecord;

    fn new_ctx(&self) -> RequestRecord {
        RequestRecord::new()
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        record: &mut RequestRecord,
    ) -> Result<bool> {
        self.answer_early(&mut session.downstream_session, record)
            .await
    }

    fn on_connection_reuse(
        &self,
        _session: &mut Session,
        record: &mut RequestRecord,
        note: Box<dyn std::any::Any + Send + Sync>,
    ) {
        record.declined_at_front = note.is::<front::Declined>();
    }

    fn request_cache_filter(
        &self,
        session: &mut Session,
        record: &mut RequestRecord,
    ) -> Result<()> {
        cache_policy::enable(&self.state, session, record);
        Ok(())
    }

    fn cache_key_callback(
        &self,
        _session: &Session,
        record: &mut RequestRecord,
    ) -> Result<CacheKey> {
        let Some(routed) = &record.routed else {
            return Error::e_explain(InternalError, "cache key requested without a route");
        };
        let mut cache_key = routed.key.key.clone();
        record.looked_up = true;
        let slot = PurgeTagSlot::new(record.started_at);
        cache_key.extensions.insert(slot.clone());
        record.purge_tags = Some(slot);
        Ok(cache_key)
    }

    async fn cache_hit_filter(
        &self,
        _session: &mut Session,
        meta: &CacheMeta,
        _hit_handler: &mut HitHandler,
        _is_fresh: bool,
        record: &mut RequestRecord,
    ) -> Result<Option<ForcedFreshness>> {
        Ok(cache_policy::on_hit(record, meta))
    }

    async fn proxy_upstream_filter(
        &self,
        session: &mut Session,
        record: &mut RequestRecord,
    ) -> Result<bool> {
        if record.only_if_cached() {
            // RFC 9111 §5.2.1.7: nothing usable is stored, so answer 504 instead of fetching.
            let phase = session.cache.phase();
            answers::answer(
                session,
                phase,
                record,
                504,
                &[],
                "{\"error\":\"only-if-cached and not in cache\"}\n",
            )
            .await?;
            return Ok(false);
        }
        Ok(true)
    }

    fn cache_vary_filter(
        &self,
        meta: &CacheMeta,
        record: &mut RequestRecord,
        req: &RequestHeader,
    ) -> Option<HashBinary> {
        let routed = record.routed.as_ref()?;
        keys::variance(
            &mut record.variance,
            meta.headers(),
            &cors_edge_store::stored_vary(meta.headers()),
            &routed.route,
            &routed.facts,
            req,
        )
    }

    fn response_cache_filter(
        &self,
        session: &Session,
        resp: &ResponseHeader,
        record: &mut RequestRecord,
    ) -> Result<RespCacheable> {
        Ok(cache_policy::store_decision(
            &self.state,
            session,
            resp,
            record,
        ))
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        record: &mut RequestRecord,
    ) -> Result<Box<HttpPeer>> {
        if let Some(owner) = cluster_route::peer(&self.state, record) {
            return Ok(owner);
        }
        let Some(route) = record.route() else {
            return Error::e_explain(InternalError, "upstream requested without a route");
        };
        upstream::peer(route)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        record: &mut RequestRecord,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if cluster_route::failover(record, &mut e) {
            return e;
        }
        upstream::retry_after_connect_failure(record, e)
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        record: &mut RequestRecord,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        // The owner died before answering: the upstream answers instead.
        if cluster_route::failover(record, &mut e) {
            return e;
        }
        // Pingora's default.
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        record: &mut RequestRecord,
    ) -> Result<()> {
        if record.peer.forwarding_to().is_some() {
            return cluster_route::prepare_forward(&self.state, session, upstream_request, record);
        }
        upstream::prepare_request(session, upstream_request, record)
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        record: &mut RequestRecord,
    ) -> Result<()> {
        let Some(route) = record.route().cloned() else {
            return Ok(());
        };
        cluster_route::on_owner_response(record, upstream_response);
        // CORS first: a 304 kept for merging must not bring the upstream's CORS headers into
        // an entry shared by every origin.
        cors_stamp::on_upstream_response(record, &route, upstream_response)?;
        upstream::on_response_header(&self.state, session, record, &route, upstream_response);
        cluster_route::publish_invalidation(
            &self.state,
            self.cluster.as_ref(),
            record,
            &session.req_header().method,
            upstream_response.status.as_u16(),
        );
        compress::on_response_header(record, &route, upstream_response)
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        record: &mut RequestRecord,
    ) -> Result<Option<std::time::Duration>> {
        compress::on_body(record, body, end_of_stream)?;
        Ok(None)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        record: &mut RequestRecord,
    ) -> Result<()> {
        self.filter_answer(session.cache.phase(), resp, record);
        Ok(())
    }

    fn should_serve_stale(
        &self,
        _session: &mut Session,
        record: &mut RequestRecord,
        error: Option<&Error>,
    ) -> bool {
        cache_policy::serve_stale(record, error)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        record: &mut RequestRecord,
    ) -> FailToProxy {
        answers::fail_to_proxy(session, e, record).await
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, record: &mut RequestRecord) {
        let phase = session.cache.phase();
        self.request_done(&mut session.downstream_session, phase, record);
    }
}
