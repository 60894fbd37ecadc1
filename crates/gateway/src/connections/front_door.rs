//! The front door: an HTTP/1 request, once Pingora has parsed it, is offered to a
//! [`FrontDoor`] before Pingora's proxy framework sees it. The door answers what it can on
//! Pingora's own `ServerSession` (the proxy answers fresh hits there,
//! `proxy::front`); anything it declines goes to the app unchanged, as the bytes the client
//! sent, on a new session with the same settings.
//!
//! Why: the proxy framework costs a fixed amount per request before the first hook runs (its
//! per-request future, about 16 KiB, is allocated and moved into a box; its `Session`, module
//! contexts and cache state are built), as much as a fresh hit's own work. A declined request
//! is parsed a second time by the app; that is the price of Pingora 0.9.1 offering no way to
//! hand `HttpProxy` a request it has already read.

use std::future::Future;

use bytes::BytesMut;
use pingora::apps::{HttpPersistentSettings, ReusedHttpStream};
use pingora::protocols::http::ServerSession;

/// Answers some requests in front of an HTTP app.
pub trait FrontDoor: Send + Sync + 'static {
    /// Whether the door ever answers: when not, requests go straight to the app.
    const OPEN: bool;

    /// Answers the request `session` has read, or returns `false` having changed nothing that
    /// outlives `session` (no metric counted, no log line written) but the connection's user
    /// context, which goes to the app (Pingora's `on_connection_reuse`).
    fn answer(&self, session: &mut ServerSession) -> impl Future<Output = bool> + Send;
}

/// The door of an app that answers everything itself (the admin listener).
pub struct Closed;

impl FrontDoor for Closed {
    const OPEN: bool = false;

    async fn answer(&self, _session: &mut ServerSession) -> bool {
        false
    }
}

/// What became of a request offered at the door.
// Not boxed: an offer is matched once, right away, and the session goes on by value to the app
// (which takes it by value); a box would be one more allocation per declined request.
#[allow(clippy::large_enum_variant)]
pub enum Offer {
    /// Answered; the connection to read the next request on, if it stays open.
    Answered(Option<ReusedHttpStream>),
    /// Declined: the session for the app, holding the request's bytes unread.
    Declined(ServerSession),
}

/// The connection settings a session starts with, to start the app's session the same way.
struct StartSettings {
    keepalive: Option<u64>,
    reuses_remaining: Option<u32>,
    pipelining: bool,
}

impl StartSettings {
    fn of(session: &ServerSession) -> Self {
        StartSettings {
            keepalive: session.get_keepalive(),
            reuses_remaining: session.get_keepalive_reuses_remaining(),
            pipelining: session.pipelining_enabled(),
        }
    }

    fn apply(self, session: &mut ServerSession) {
        session.set_keepalive(self.keepalive);
        session.set_keepalive_reuses_remaining(self.reuses_remaining);
        session.set_pipelining_enabled(self.pipelining);
    }
}

/// Offers the request in `head` to `door` on `session` (a new HTTP/1 session, its settings
/// applied, nothing read yet). A request Pingora cannot parse is declined: the app parses it
/// again and answers it as it always does.
pub async fn offer<D: FrontDoor>(door: &D, mut session: ServerSession, head: BytesMut) -> Offer {
    let start = StartSettings::of(&session);
    // The app may need the bytes again; a head is a few hundred bytes.
    session.set_pipelined_prefix(head.clone());
    if matches!(session.read_request().await, Ok(true)) && door.answer(&mut session).await {
        let settings = HttpPersistentSettings::for_session(&session);
        let reused = session
            .finish()
            .await
            .ok()
            .flatten()
            .map(|stream| ReusedHttpStream::from_reusable_stream(stream, settings));
        return Offer::Answered(reused);
    }
    let note = session.take_connection_user_context();
    let ServerSession::H1(read) = session else {
        // Only HTTP/1 sessions are offered.
        return Offer::Answered(None);
    };
    let mut session = ServerSession::new_http1(read.into_inner());
    start.apply(&mut session);
    session.set_connection_user_context(note);
    session.set_pipelined_prefix(head);
    Offer::Declined(session)
}
