//! Real HTTP servers on loopback for the black-box tests: a CORS API that does things
//! right (or, on request, wrong), and a tiny cache that sits in front of it and either
//! honours `Vary` or, like a naive CDN config, ignores it.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, CACHE_CONTROL, CONNECTION,
    CONTENT_TYPE, ETAG, HOST, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

mod edge;
pub mod tls;

// Each test binary uses a different part.
#[allow(unused_imports)]
pub use edge::{start_broken_proxy, start_cache, CacheBehaviour, Edit};

pub type Reply = Response<Full<Bytes>>;

/// Requests a server received, by method, plus the Host headers it saw.
#[derive(Default)]
pub struct Counts {
    pub get: AtomicU64,
    pub options: AtomicU64,
    pub other: AtomicU64,
    pub hosts: Mutex<BTreeSet<String>>,
    pub paths: Mutex<BTreeSet<String>>,
    /// The `Origin` values received (none recorded for requests without one).
    pub origins: Mutex<BTreeSet<String>>,
    /// HTTP versions received, as `HTTP/1.1` or `HTTP/2.0`.
    pub versions: Mutex<BTreeSet<String>>,
}

impl Counts {
    fn record(&self, request: &Request<Incoming>) {
        let counter = match *request.method() {
            Method::GET => &self.get,
            Method::OPTIONS => &self.options,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        // HTTP/2 carries the host as the :authority, not a Host header.
        let host = request
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| request.uri().authority().map(|a| a.to_string()));
        if let Some(host) = host {
            self.hosts.lock().expect("lock").insert(host);
        }
        self.paths
            .lock()
            .expect("lock")
            .insert(request.uri().path().to_string());
        if let Some(origin) = request.headers().get(ORIGIN).and_then(|h| h.to_str().ok()) {
            self.origins
                .lock()
                .expect("lock")
                .insert(origin.to_string());
        }
        self.versions
            .lock()
            .expect("lock")
            .insert(format!("{:?}", request.version()));
    }

    pub fn origins(&self) -> BTreeSet<String> {
        self.origins.lock().expect("lock").clone()
    }

    pub fn total(&self) -> u64 {
        self.get.load(Ordering::Relaxed)
            + self.options.load(Ordering::Relaxed)
            + self.other.load(Ordering::Relaxed)
    }

    pub fn get(&self) -> u64 {
        self.get.load(Ordering::Relaxed)
    }

    pub fn options(&self) -> u64 {
        self.options.load(Ordering::Relaxed)
    }
}

/// A server on a loopback port of its own; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    accept_loop: JoinHandle<()>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn serve<H, F>(handler: H) -> TestServer
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    serve_on(handler, None).await
}

/// How a test server speaks when not plain HTTP/1.1.
#[derive(Clone)]
pub enum Transport {
    /// TLS, then HTTP/2 or HTTP/1.1 by ALPN.
    Tls(tokio_rustls::TlsAcceptor),
    /// HTTP/2 in the clear from the first byte (prior knowledge).
    H2c,
}

/// Serves `handler` on a port of its own: HTTP/1.1, or as `tls` says.
pub(crate) async fn serve_on<H, F>(handler: H, tls: Option<Transport>) -> TestServer
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let counts = Arc::new(Counts::default());
    let counted = Arc::clone(&counts);
    let accept_loop = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            let counts = Arc::clone(&counted);
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    counts.record(&request);
                    let reply = handler(request);
                    async move { Ok::<_, Infallible>(reply.await) }
                });
                let acceptor = match tls {
                    Some(Transport::Tls(acceptor)) => acceptor,
                    Some(Transport::H2c) => {
                        let _ = hyper::server::conn::http2::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        )
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                        return;
                    }
                    None => {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        return;
                    }
                };
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            });
        }
    });
    TestServer {
        addr,
        counts,
        accept_loop,
    }
}

/// How the test API behaves; `Default` is a correct CORS API.
#[derive(Debug, Clone, Copy)]
pub struct ApiBehaviour {
    /// Send `Vary: Origin` (and the preflight Vary); false reproduces the classic bug.
    pub vary: bool,
    /// Answer `ACAO: *` with `Access-Control-Allow-Credentials: true`.
    pub wildcard_with_credentials: bool,
    /// Close every connection after one response.
    pub close_connections: bool,
}

impl Default for ApiBehaviour {
    fn default() -> Self {
        ApiBehaviour {
            vary: true,
            wildcard_with_credentials: false,
            close_connections: false,
        }
    }
}

pub const ALLOWED_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
pub const ALLOWED_HEADERS: [&str; 3] = ["content-type", "authorization", "x-requested-with"];

/// Origins under `.example` on https are allowed; everything else is not.
pub fn is_allowed(origin: &str) -> bool {
    origin.starts_with("https://") && origin.ends_with(".example")
}

/// Starts the CORS API.
pub async fn start_api(behaviour: ApiBehaviour) -> TestServer {
    serve(move |request| async move { api_response(&request, behaviour) }).await
}

/// Starts the CORS API over TLS with `cert` (HTTP/2 and HTTP/1.1 by ALPN).
pub async fn start_tls_api(behaviour: ApiBehaviour, cert: &tls::TestCert) -> TestServer {
    serve_on(
        move |request| async move { api_response(&request, behaviour) },
        Some(Transport::Tls(cert.acceptor())),
    )
    .await
}

/// Starts the CORS API speaking HTTP/2 in the clear (h2c, prior knowledge).
pub async fn start_h2c_api(behaviour: ApiBehaviour) -> TestServer {
    serve_on(
        move |request| async move { api_response(&request, behaviour) },
        Some(Transport::H2c),
    )
    .await
}

fn api_response(request: &Request<Incoming>, behaviour: ApiBehaviour) -> Reply {
    let headers = request.headers();
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
    let allowed_origin = origin.filter(|origin| is_allowed(origin));
    let mut response = Response::new(Full::new(Bytes::new()));
    let out = response.headers_mut();
    if behaviour.close_connections {
        out.insert(CONNECTION, HeaderValue::from_static("close"));
    }

    let requested_method = headers
        .get(ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok());
    if request.method() == Method::OPTIONS && origin.is_some() && requested_method.is_some() {
        if behaviour.vary {
            out.insert(
                VARY,
                HeaderValue::from_static(
                    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
                ),
            );
        }
        let requested_headers: Vec<String> = headers
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect();
        let method_ok = requested_method.is_some_and(|m| ALLOWED_METHODS.contains(&m));
        let headers_ok = requested_headers
            .iter()
            .all(|name| ALLOWED_HEADERS.contains(&name.as_str()));
        match allowed_origin {
            Some(origin) if method_ok && headers_ok => {
                *response.status_mut() = StatusCode::NO_CONTENT;
                let out = response.headers_mut();
                set_acao(out, origin, behaviour);
                out.insert(
                    ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_str(requested_method.unwrap_or("GET")).expect("method"),
                );
                if !requested_headers.is_empty() {
                    out.insert(
                        ACCESS_CONTROL_ALLOW_HEADERS,
                        HeaderValue::from_str(&requested_headers.join(", ")).expect("headers"),
                    );
                }
                out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
                out.insert(
                    CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=60"),
                );
            }
            _ => *response.status_mut() = StatusCode::FORBIDDEN,
        }
        return response;
    }

    *response.body_mut() = Full::new(Bytes::from(format!("hello {}", request.uri().path())));
    let out = response.headers_mut();
    out.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    out.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    out.insert(ETAG, HeaderValue::from_static("\"v1\""));
    if behaviour.vary {
        out.insert(VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(origin) = allowed_origin {
        set_acao(out, origin, behaviour);
        out.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("ETag"),
        );
    }
    response
}

fn set_acao(out: &mut HeaderMap, origin: &str, behaviour: ApiBehaviour) {
    let allow = if behaviour.wildcard_with_credentials {
        HeaderValue::from_static("*")
    } else {
        HeaderValue::from_str(origin).expect("origin")
    };
    out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    out.insert(
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}

/// Sends one GET with `origin` straight to `addr`, to warm a cache deterministically.
pub async fn warm(addr: SocketAddr, path: &str, origin: &str) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let request = Request::builder()
        .uri(path)
        .header(HOST, addr.to_string())
        .header(ORIGIN, origin)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    response.into_body().collect().await.expect("body");
}

/// A server that accepts connections and never answers; stops when dropped.
pub struct SilentServer {
    pub addr: SocketAddr,
    accept_loop: JoinHandle<()>,
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

pub async fn start_silent_server() -> SilentServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accept_loop = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    SilentServer { addr, accept_loop }
}

/// A loopback address nothing answers on: a socket bound to it for the test's lifetime
/// that never listens, so connecting is refused and no other process can take the port
/// meanwhile (a bind-then-release helper would race with every other test).
pub struct ClosedPort {
    pub addr: SocketAddr,
    _socket: tokio::net::TcpSocket,
}

pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind without listening");
    let addr = socket.local_addr().expect("addr");
    ClosedPort {
        addr,
        _socket: socket,
    }
}

/// The `cors-edge` command line shape: the tools' Args as subcommands, so the tests
/// parse arguments exactly as the binary will.
#[derive(clap::Parser, Debug)]
#[command(name = "cors-edge")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    Loadtest(cors_edge_tools::loadtest::LoadtestArgs),
    Probe(cors_edge_tools::probe::ProbeArgs),
}

pub fn parse(argv: &[&str]) -> Result<Command, clap::Error> {
    use clap::Parser;
    let mut full = vec!["cors-edge"];
    full.extend_from_slice(argv);
    Cli::try_parse_from(full).map(|cli| cli.command)
}

pub fn loadtest_args(argv: &[&str]) -> cors_edge_tools::loadtest::LoadtestArgs {
    let mut full = vec!["loadtest"];
    full.extend_from_slice(argv);
    match parse(&full) {
        Ok(Command::Loadtest(args)) => args,
        other => panic!("not loadtest arguments: {other:?}"),
    }
}

pub fn probe_args(argv: &[&str]) -> cors_edge_tools::probe::ProbeArgs {
    let mut full = vec!["probe"];
    full.extend_from_slice(argv);
    match parse(&full) {
        Ok(Command::Probe(args)) => args,
        other => panic!("not probe arguments: {other:?}"),
    }
}
