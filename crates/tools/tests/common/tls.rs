//! A self-signed certificate per test, written as a PEM file for `--cacert`, and the
//! rustls acceptor the TLS test servers use (ALPN h2 and http/1.1).

use std::path::PathBuf;
use std::sync::Arc;

use tokio_rustls::rustls;

/// A certificate for `localhost` and `api.test`, its key, and the PEM file of the
/// certificate (removed on drop).
pub struct TestCert {
    pub pem_path: PathBuf,
    config: Arc<rustls::ServerConfig>,
}

impl TestCert {
    pub fn new(label: &str) -> TestCert {
        let generated = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "api.test".to_string(),
        ])
        .expect("certificate");
        // A counter, not the clock: two tests can read the same nanosecond.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pem_path = std::env::temp_dir().join(format!(
            "cors-edge-tools-{label}-{}-{n}.pem",
            std::process::id()
        ));
        std::fs::write(&pem_path, generated.cert.pem()).expect("write the certificate");
        let key = rustls::pki_types::PrivateKeyDer::try_from(generated.signing_key.serialize_der())
            .expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![generated.cert.der().clone()], key)
            .expect("server config");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TestCert {
            pem_path,
            config: Arc::new(config),
        }
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.config))
    }

    pub fn pem(&self) -> &str {
        self.pem_path.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pem_path);
    }
}
