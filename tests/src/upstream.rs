//! A real HTTP/1.1 upstream on a loopback port, answering with a test-supplied function and
//! recording every request it receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// A gate an upstream answer waits at until the test opens it: "the fill is in flight" is then
/// a fact the test controls, not a guess about how long a delay lasts.
#[derive(Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gate(open: {})", self.is_open())
    }
}

impl Gate {
    pub fn new() -> Gate {
        Gate(Arc::new(tokio::sync::watch::channel(false).0))
    }

    /// Lets every answer waiting at the gate, and every later one, through.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    pub fn is_open(&self) -> bool {
        *self.0.borrow()
    }

    async fn passed(&self) {
        let mut open = self.0.subscribe();
        let _ = open.wait_for(|open| *open).await;
    }
}

/// What the upstream answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub delay: Duration,
    pub gate: Option<Gate>,
}

/// An HTTP-date (IMF-fixdate) for `t`, truncated to the second.
pub fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs();
    let days = i64::try_from(secs / 86_400).expect("days");
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        [usize::try_from(days % 7).expect("weekday")];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[usize::try_from(month - 1).expect("month")],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `Date` for an answer made now, rounded *up* to the next whole second. hyper's own `Date` is
/// rounded down, so a cache computing the apparent age (RFC 9111 §4.2.3) sees up to a second
/// of age at once: `max-age=1` may then be fresh for only a few milliseconds. A `Date` a
/// fraction of a second ahead gives an apparent age of 0: the whole lifetime counts from the
/// fetch.
pub fn date_rounded_up() -> String {
    let now = SystemTime::now();
    let secs = now
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs();
    http_date(UNIX_EPOCH + Duration::from_secs(secs + 1))
}

impl Reply {
    pub fn ok(body: impl Into<Bytes>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
            gate: None,
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

    /// The answer waits at `gate` (after the request was recorded) until the test opens it.
    pub fn gated(mut self, gate: &Gate) -> Reply {
        self.gate = Some(gate.clone());
        self
    }

    /// `Date` rounded up to the next second (see [`date_rounded_up`]).
    pub fn dated_now(self) -> Reply {
        self.header("date", &date_rounded_up())
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
                            if let Some(gate) = &reply.gate {
                                gate.passed().await;
                            }
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

/// A loopback address where connections are refused for as long as this value lives: a socket
/// bound to the port but never listening. Nobody else can bind the port meanwhile, so unlike
/// "a port that was free a moment ago" it cannot turn into some other test's server.
pub struct RefusingAddr {
    pub addr: SocketAddr,
    _socket: tokio::net::TcpSocket,
}

impl RefusingAddr {
    pub fn new() -> RefusingAddr {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("bind a loopback port");
        let addr = socket.local_addr().expect("bound address");
        RefusingAddr {
            addr,
            _socket: socket,
        }
    }
}

impl Default for RefusingAddr {
    fn default() -> Self {
        RefusingAddr::new()
    }
}
