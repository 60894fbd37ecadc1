//! A real HTTP/1.1 upstream on a loopback port, answering with a test-supplied function and
//! recording every request it receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the upstream saw.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub method: String,
    pub path_and_query: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl UpstreamRequest {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or("")
    }
}

/// What the upstream answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: impl Into<Bytes>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::ok(Bytes::new())
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&UpstreamRequest) -> Reply + Send + Sync;

pub struct Upstream {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<UpstreamRequest>>>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// Starts serving on a free loopback port. Must be called inside a tokio runtime.
    pub async fn start<F>(handler: F) -> Upstream
    where
        F: Fn(&UpstreamRequest) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        Self::serve(listener, Arc::new(handler))
    }

    /// Starts on a given address (for restart tests).
    pub async fn start_on<F>(addr: SocketAddr, handler: F) -> Upstream
    where
        F: Fn(&UpstreamRequest) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind(addr).await.expect("bind upstream");
        Self::serve(listener, Arc::new(handler))
    }

    fn serve(listener: TcpListener, handler: Arc<Handler>) -> Upstream {
        let addr = listener.local_addr().expect("local addr");
        let requests: Arc<Mutex<Vec<UpstreamRequest>>> = Arc::default();
        let log = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let handler = handler.clone();
                        let log = log.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let seen = UpstreamRequest {
                                method: parts.method.to_string(),
                                path_and_query: parts
                                    .uri
                                    .path_and_query()
                                    .map_or("/".into(), |p| p.to_string()),
                                headers: parts.headers,
                                body,
                            };
                            log.lock().push(seen.clone());
                            let reply = handler(&seen);
                            if !reply.delay.is_zero() {
                                tokio::time::sleep(reply.delay).await;
                            }
                            let mut response = http::Response::builder().status(reply.status);
                            for (name, value) in &reply.headers {
                                response = response.header(name.as_str(), value.as_str());
                            }
                            let body = if seen.method == "HEAD" {
                                Bytes::new()
                            } else {
                                reply.body
                            };
                            Ok::<_, Infallible>(
                                response.body(Full::new(body)).expect("valid reply"),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            requests,
            task,
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<UpstreamRequest> {
        self.requests.lock().clone()
    }

    /// How many requests reached this path (without query).
    pub fn hits(&self, path: &str) -> usize {
        self.requests
            .lock()
            .iter()
            .filter(|r| r.path() == path)
            .count()
    }

    pub fn total(&self) -> usize {
        self.requests.lock().len()
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
