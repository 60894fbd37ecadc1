//! `--cacert FILE` as curl reads it: a server certificate that is itself in the file is
//! trusted, even when it says `CA:TRUE`.
//!
//! `openssl req -x509 -newkey ...`, the most common way to make a self-signed certificate,
//! marks it `basicConstraints=CA:TRUE`. webpki (rustls) refuses a CA certificate as the
//! server's own (`CaUsedAsEndEntity`); OpenSSL, and so curl, accepts a server certificate that
//! is a trust anchor of the `--cacert` file. This verifier wraps rustls' WebPki verifier and,
//! on that one error only, accepts the server certificate when it is byte for byte one of the
//! file's certificates, names the host (its subjectAltName, as webpki reads it) and is within
//! its validity period. The handshake signature is still checked with the certificate's key,
//! so the server holds its private key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme};

#[derive(Debug)]
pub(crate) struct CacertVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// Every certificate of the `--cacert` file.
    file: Vec<CertificateDer<'static>>,
}

impl CacertVerifier {
    pub(crate) fn new(
        webpki: Arc<WebPkiServerVerifier>,
        file: Vec<CertificateDer<'static>>,
    ) -> Self {
        CacertVerifier { webpki, file }
    }
}

/// Whether rustls refused the certificate only because it is a CA certificate.
fn is_ca_used_as_end_entity(error: &Error) -> bool {
    match error {
        Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => matches!(
            inner.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

/// The name and validity checks webpki would have made of a server certificate.
fn check_own_certificate(
    certificate: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), Error> {
    let parsed = ParsedCertificate::try_from(certificate)?;
    rustls::client::verify_server_name(&parsed, server_name)?;
    let (_, x509) = x509_parser::parse_x509_certificate(certificate.as_ref())
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = x509.validity();
    if now_secs < validity.not_before.timestamp() {
        return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
    }
    if now_secs > validity.not_after.timestamp() {
        return Err(Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(())
}

impl ServerCertVerifier for CacertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(error)
                if is_ca_used_as_end_entity(&error)
                    && self.file.iter().any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                check_own_certificate(end_entity, server_name, now)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
