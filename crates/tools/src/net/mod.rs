//! Reaching a target: where to connect (`--resolve`, `--connect-to`), TLS with the
//! system's roots or `--cacert` (SNI from the URL's host), and which HTTP version by ALPN
//! (`--http1.1`, `--http2`). Both tools connect only through [`connect`].

mod own_cert;
mod route;
mod stream;
mod tls;

pub(crate) mod h1;
pub(crate) mod http;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

pub use route::{ConnectTo, ResolveRule};
pub(crate) use stream::Stream;

use crate::target::{Scheme, TargetUrl};
use crate::ToolError;

/// How to reach the target: the options curl users know, shared by `probe` and `loadtest`.
#[derive(Debug, Clone, Default, Args)]
pub struct ConnectArgs {
    /// Trust the CA certificates in this PEM file instead of the system's (for a
    /// self-signed or private CA).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Do not verify the server's certificate or host name (TLS still encrypts).
    #[arg(long, short = 'k')]
    pub insecure: bool,

    /// Use HTTP/1.1 only (over TLS: offer only http/1.1 by ALPN).
    #[arg(long = "http1.1", conflicts_with = "http2")]
    pub http1_1: bool,

    /// Use HTTP/2 only: over TLS offer only h2 by ALPN; on http:// speak HTTP/2 from the
    /// first byte (prior knowledge). Without either flag, https offers h2 and http/1.1.
    #[arg(long)]
    pub http2: bool,

    /// Connect to ADDR whenever the URL names HOST:PORT, keeping the URL's host for
    /// `Host`, SNI and the certificate check (as curl's --resolve). Repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = route::parse_resolve)]
    pub resolve: Vec<ResolveRule>,

    /// Connect to HOST2:PORT2 instead of HOST1:PORT1 (an empty part matches any host or
    /// port, or keeps the URL's), keeping the URL's host name (as curl's --connect-to).
    /// Repeatable: `loadtest` spreads its connections over every rule that matches (the
    /// nodes of a cluster) and reports each node; other commands use the first.
    #[arg(long = "connect-to", value_name = "HOST1:PORT1:HOST2:PORT2", value_parser = route::parse_connect_to)]
    pub connect_to: Vec<ConnectTo>,
}

/// The HTTP version spoken on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "HTTP/1.1")]
    Http1,
    #[serde(rename = "HTTP/2")]
    Http2,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }
}

/// What a connection ended up as, for the reports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Negotiated {
    pub protocol: Protocol,
    /// `TLSv1.3` or `TLSv1.2`; `None` on plain http.
    pub tls_version: Option<String>,
    /// The address connected to (after `--resolve`, `--connect-to` and DNS).
    pub address: String,
}

impl Negotiated {
    /// `HTTP/2 over TLSv1.3 to 127.0.0.1:8443`.
    pub fn describe(&self) -> String {
        match &self.tls_version {
            Some(tls) => format!("{} over {tls} to {}", self.protocol.label(), self.address),
            None => format!("{} (plain) to {}", self.protocol.label(), self.address),
        }
    }
}

/// Which HTTP version to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionChoice {
    Http1Only,
    Http2Only,
    /// ALPN decides (https); plain http is HTTP/1.1.
    Either,
}

/// Everything needed to open connections to one target, resolved once up front so
/// connections never wait on DNS or re-read certificates.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub addr: SocketAddr,
    pub scheme: Scheme,
    /// The authority requests carry (`:authority` on HTTP/2).
    pub authority: String,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    version: VersionChoice,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.addr)
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl ConnectArgs {
    /// One endpoint per `--connect-to` rule matching `target` (the nodes of a cluster), or
    /// the one endpoint `target` is reached at when fewer than two match.
    pub(crate) async fn endpoints(&self, target: &TargetUrl) -> Result<Vec<Endpoint>, ToolError> {
        let rules = route::matching_connect_to(target.bare_host(), target.port, &self.connect_to);
        if rules.len() < 2 {
            return Ok(vec![self.endpoint(target).await?]);
        }
        let mut endpoints = Vec::with_capacity(rules.len());
        for rule in rules {
            let single = ConnectArgs {
                connect_to: vec![rule.clone()],
                ..self.clone()
            };
            endpoints.push(single.endpoint(target).await?);
        }
        Ok(endpoints)
    }

    /// Validates the options and resolves where `target` is reached.
    pub(crate) async fn endpoint(&self, target: &TargetUrl) -> Result<Endpoint, ToolError> {
        let version = match (self.http1_1, self.http2) {
            (true, true) => {
                return Err(ToolError::Usage(
                    "--http1.1 and --http2 exclude each other".into(),
                ))
            }
            (true, false) => VersionChoice::Http1Only,
            (false, true) => VersionChoice::Http2Only,
            (false, false) => VersionChoice::Either,
        };
        let addr = route::resolve(target, &self.resolve, &self.connect_to).await?;
        let tls = match target.scheme {
            Scheme::Http => None,
            Scheme::Https => {
                let alpn: Vec<Vec<u8>> = match version {
                    VersionChoice::Http1Only => vec![b"http/1.1".to_vec()],
                    VersionChoice::Http2Only => vec![b"h2".to_vec()],
                    VersionChoice::Either => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
                };
                let config = tls::client_config(self.cacert.as_deref(), self.insecure, alpn)?;
                let name = ServerName::try_from(target.bare_host().to_string()).map_err(|_| {
                    ToolError::Usage(format!(
                        "`{}` is not a host name TLS can check a certificate against",
                        target.host
                    ))
                })?;
                Some((config, name))
            }
        };
        Ok(Endpoint {
            addr,
            scheme: target.scheme,
            authority: target.host_header.to_str().unwrap_or_default().to_string(),
            tls,
            version,
        })
    }
}

/// One failed exchange, by stage, so reports can say where things broke.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("connect failed: {0}")]
    Connect(#[source] std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
    #[error("HTTP handshake failed: {0}")]
    Handshake(String),
    #[error("request failed: {0}")]
    Send(String),
    #[error("reading the response failed: {0}")]
    Receive(String),
    #[error("the connection closed before a response")]
    Closed,
    #[error("no complete response within the timeout")]
    Timeout,
}

impl RequestError {
    /// A short, stable name for grouping errors in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::Connect(_) => "connect",
            RequestError::Tls(_) => "tls",
            RequestError::Handshake(_) => "handshake",
            RequestError::Send(_) => "request",
            RequestError::Receive(_) | RequestError::Closed => "response",
            RequestError::Timeout => "timeout",
        }
    }
}

/// Opens a TCP connection (and TLS on https), and says which HTTP version to speak.
pub(crate) async fn connect(endpoint: &Endpoint) -> Result<(Stream, Negotiated), RequestError> {
    let tcp = TcpStream::connect(endpoint.addr)
        .await
        .map_err(RequestError::Connect)?;
    // Requests are tiny; Nagle would hold each one back waiting for an ACK.
    tcp.set_nodelay(true).map_err(RequestError::Connect)?;
    let address = endpoint.addr.to_string();
    let Some((config, name)) = &endpoint.tls else {
        let protocol = match endpoint.version {
            VersionChoice::Http2Only => Protocol::Http2,
            VersionChoice::Http1Only | VersionChoice::Either => Protocol::Http1,
        };
        let negotiated = Negotiated {
            protocol,
            tls_version: None,
            address,
        };
        return Ok((Stream::Plain(tcp), negotiated));
    };
    let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name.clone(), tcp)
        .await
        .map_err(RequestError::Tls)?;
    let session = tls.get_ref().1;
    let protocol = match session.alpn_protocol() {
        Some(b"h2") => Protocol::Http2,
        _ => Protocol::Http1,
    };
    if endpoint.version == VersionChoice::Http2Only && protocol != Protocol::Http2 {
        return Err(RequestError::Handshake(
            "the server did not agree to HTTP/2 by ALPN (try without --http2)".into(),
        ));
    }
    let tls_version = session.protocol_version().map(|version| {
        match version {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS (other)",
        }
        .to_string()
    });
    let negotiated = Negotiated {
        protocol,
        tls_version,
        address,
    };
    Ok((Stream::Tls(Box::new(tls)), negotiated))
}
