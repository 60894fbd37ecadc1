//! The rustls client configuration: the system's root certificates (through
//! rustls-native-certs, the same store curl and the OS use), or `--cacert`, or none at all
//! with `--insecure`. A `--cacert` server certificate marked `CA:TRUE` is accepted as curl
//! accepts it (see `own_cert`).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::own_cert::CacertVerifier;
use crate::ToolError;

pub(crate) fn client_config(
    cacert: Option<&Path>,
    insecure: bool,
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<ClientConfig>, ToolError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|err| ToolError::Internal(format!("TLS versions: {err}")))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        match cacert {
            Some(path) => {
                let (roots, file) = roots_from_file(path)?;
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .build()
                .map_err(|err| certificate_error(path, err.to_string()))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(CacertVerifier::new(webpki, file)))
                    .with_no_client_auth()
            }
            None => builder
                .with_root_certificates(system_roots()?)
                .with_no_client_auth(),
        }
    };
    config.alpn_protocols = alpn;
    Ok(Arc::new(config))
}

fn certificate_error(path: &Path, reason: impl Into<String>) -> ToolError {
    ToolError::Certificates {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The certificates of a PEM file, as trust anchors and as they are; a file without one is an
/// error, not an empty store.
fn roots_from_file(
    path: &Path,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), ToolError> {
    let mut roots = RootCertStore::empty();
    let mut file = Vec::new();
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|err| certificate_error(path, err.to_string()))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|err| certificate_error(path, err.to_string()))?;
        roots
            .add(certificate.clone())
            .map_err(|err| certificate_error(path, err.to_string()))?;
        file.push(certificate);
    }
    if roots.is_empty() {
        return Err(certificate_error(
            path,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
        ));
    }
    Ok((roots, file))
}

fn system_roots() -> Result<RootCertStore, ToolError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map(|err| format!(" ({err})"))
            .unwrap_or_default();
        return Err(ToolError::Usage(format!(
            "no system root certificates could be loaded{why}: give --cacert FILE, or --insecure"
        )));
    }
    Ok(roots)
}

/// `--insecure`: any certificate and host name is accepted, but the handshake signatures
/// are still checked so the connection is a real TLS session with that key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
