//! TLS for the tests of the gateway's TLS listener: a self-signed certificate made per test,
//! written as PEM files for the config, and a client that trusts it (on the rustls that
//! Pingora already builds).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::gateway::TempDir;

/// A self-signed certificate, as `tls.crt` and `tls.key` in a directory of its own.
pub struct TestCert {
    dir: TempDir,
    /// The certificate, for a client to trust.
    pub der: CertificateDer<'static>,
}

impl TestCert {
    /// A certificate for `localhost`.
    pub fn localhost() -> TestCert {
        TestCert::for_names(&["localhost"])
    }

    /// A certificate for these DNS names.
    pub fn for_names(names: &[&str]) -> TestCert {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let generated = rcgen::generate_simple_self_signed(names).expect("certificate");
        let dir = TempDir::new("tls");
        std::fs::write(dir.0.join("tls.crt"), generated.cert.pem()).expect("write cert");
        std::fs::write(dir.0.join("tls.key"), generated.signing_key.serialize_pem())
            .expect("write key");
        TestCert {
            der: generated.cert.der().clone(),
            dir,
        }
    }

    /// The directory of the PEM files (removed with the certificate).
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// The certificate's PEM file, for `tls.cert`.
    pub fn cert(&self) -> String {
        self.dir.0.join("tls.crt").display().to_string()
    }

    /// The key's PEM file, for `tls.key`.
    pub fn key(&self) -> String {
        self.dir.0.join("tls.key").display().to_string()
    }

    /// A TLS connection to `addr` as `localhost`, offering `alpn` (none: no ALPN extension),
    /// trusting only this certificate. The protocol the server chose is
    /// `stream.get_ref().1.alpn_protocol()`.
    pub async fn handshake(&self, addr: SocketAddr, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.der.clone())
            .expect("trust the test certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let tcp = TcpStream::connect(addr)
            .await
            .expect("connect to the TLS listener");
        TlsConnector::from(Arc::new(client))
            .connect(ServerName::try_from("localhost").expect("server name"), tcp)
            .await
            .expect("TLS handshake")
    }

    /// An HTTP/2 connection over TLS (hyper's client: no second HTTP stack), driven by a task
    /// whose handle tells when the server closed it.
    pub async fn http2(
        &self,
        addr: SocketAddr,
    ) -> (
        hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
        tokio::task::JoinHandle<Result<(), hyper::Error>>,
    ) {
        let tls = self.connect(addr, b"h2").await;
        let (sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .expect("HTTP/2 handshake");
        (sender, tokio::spawn(connection))
    }

    /// A TLS connection offering only `alpn`; fails the test unless the server chose it.
    pub async fn connect(&self, addr: SocketAddr, alpn: &[u8]) -> TlsStream<TcpStream> {
        let tls = self.handshake(addr, &[alpn]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn), "ALPN");
        tls
    }
}
