//! The gateway at the front door ([`crate::connections::FrontDoor`]): an HTTP/1 request is
//! offered to the same [`Gateway::answer_early`] that `request_filter` runs, before Pingora's
//! proxy framework is entered. What it answers there (fresh hits, edge-mode preflights,
//! refusals) gets the same answer filter, metrics and access log line as on the proxy path;
//! everything else is declined and goes to the proxy, which runs `request_filter` again on its
//! own parse of the same bytes.

use pingora::http::Method;
use pingora::protocols::http::ServerSession;

use super::record::RequestRecord;
use super::{answers, cluster_route, status, Gateway};
use crate::connections::FrontDoor;

/// The note a declined request carries to the proxy (as the connection's user context, which
/// Pingora hands to `on_connection_reuse`): its direct lookup is done.
pub struct Declined;

/// The front door of the proxy's listeners.
pub struct FrontAnswers {
    pub gateway: Gateway,
}

/// Requests the door leaves to the proxy before looking at them: a peer's request (taking its
/// marker counts a refused one, which must happen once) and `CONNECT`, which Pingora refuses
/// before any hook.
fn proxy_only(session: &ServerSession) -> bool {
    let req = session.req_header();
    req.method == Method::CONNECT || cluster_route::carries_marker(req)
}

impl FrontDoor for FrontAnswers {
    const OPEN: bool = true;

    async fn answer(&self, session: &mut ServerSession) -> bool {
        if proxy_only(session) {
            return false;
        }
        let mut record = RequestRecord::new();
        match self.gateway.answer_early(session, &mut record).await {
            Ok(false) => {
                session.set_connection_user_context(Some(Box::new(Declined)));
                false
            }
            Ok(true) => {
                self.gateway
                    .request_done(session, status::NOT_CONSULTED, &mut record);
                true
            }
            Err(e) => {
                // As Pingora does when `request_filter` fails: the error answer (none when the
                // client is gone), the end of the request, and the connection closed.
                answers::send_failure(session, status::NOT_CONSULTED, &e, &mut record).await;
                session.set_keepalive(None);
                self.gateway
                    .request_done(session, status::NOT_CONSULTED, &mut record);
                true
            }
        }
    }
}
