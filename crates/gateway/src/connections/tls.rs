//! TLS on the proxy's TLS listeners, done inside the connection limits.
//!
//! A Pingora TLS listener runs the handshake before the app sees the connection, with a fixed
//! 60 s timeout, so a connection that never sends a ClientHello would be neither counted nor
//! timed. The TLS addresses are therefore plain TCP listeners of the same service, and
//! [`LimitedApp`](super::LimitedApp) counts each connection first, then runs Pingora's own
//! rustls handshake ([`Acceptor::tls_handshake`], the one its TLS listener calls) within
//! `server.header_timeout`. What comes out is the stream Pingora's listener would have made.

use std::net::SocketAddr;
use std::sync::Arc;

use pingora::listeners::tls::Acceptor;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::Stream;
use pingora::tls::ServerConfig;

/// The TLS listeners' addresses and their acceptor.
pub struct TlsListeners {
    addresses: Vec<SocketAddr>,
    acceptor: Acceptor,
}

impl TlsListeners {
    /// `config` is the checked certificate and key (see `server::check_tls`); HTTP/2 is offered
    /// first by ALPN, then HTTP/1.1, as with Pingora's `TlsSettings::enable_h2`.
    pub fn new(addresses: Vec<SocketAddr>, mut config: ServerConfig) -> TlsListeners {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsListeners {
            addresses,
            acceptor: Acceptor::from_server_config(Arc::new(config)),
        }
    }

    /// Whether `stream` arrived on a TLS listener (by the address it was accepted on).
    pub(super) fn accepted(&self, stream: &Stream) -> bool {
        let Some(digest) = stream.get_socket_digest() else {
            return false;
        };
        let Some(local) = digest.local_addr().and_then(|a| a.as_inet()).copied() else {
            return false;
        };
        self.addresses.iter().any(|listener| {
            listener.port() == local.port()
                && (listener.ip() == local.ip() || listener.ip().is_unspecified())
        })
    }

    /// Pingora's server handshake on the accepted TCP stream.
    pub(super) async fn handshake(&self, stream: Stream) -> Result<Stream, String> {
        // A TCP listener's stream is Pingora's L4 stream; the handshake needs the concrete type.
        let l4 = stream
            .into_any()
            .downcast::<L4Stream>()
            .map_err(|_| "not a TCP stream".to_string())?;
        let tls = self
            .acceptor
            .tls_handshake(*l4)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Box::new(tls))
    }
}
