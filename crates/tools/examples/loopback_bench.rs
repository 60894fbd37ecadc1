//! Measures how many requests per second the load generator pushes from ONE core.
//!
//! A minimal hyper server (fixed 200 with a reflected ACAO and `Vary: Origin`, so the
//! leak checks run on every response) runs on its own thread; the load generator runs
//! on a current-thread runtime, i.e. one core. Build in release:
//!
//! ```text
//! cargo run --release -p cors-edge-tools --example loopback_bench -- [SECONDS] [CONNECTIONS]
//! ```

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN, VARY};
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// CPU time (user + system) of the calling thread, from /proc (Linux); 0 elsewhere.
fn thread_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and
    // 15th fields overall, in clock ticks (100 per second on Linux).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(Ok(5), |s| s.parse())?;
    let connections: usize = args.next().map_or(Ok(64), |s| s.parse())?;

    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = server_runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    server_runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|request: Request<Incoming>| async move {
                    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                    if let Some(origin) = request.headers().get(ORIGIN) {
                        response
                            .headers_mut()
                            .insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                    }
                    response
                        .headers_mut()
                        .insert(VARY, HeaderValue::from_static("Origin"));
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut args = cors_edge_tools::loadtest::LoadtestArgs::new(format!("http://{addr}/"));
    args.duration = Some(Duration::from_secs(seconds));
    args.concurrency = connections;
    args.paths = Some(16);
    args.preflight_share = 0.1;
    args.json = true;
    let cpu_before = thread_cpu_seconds();
    let report = client_runtime.block_on(cors_edge_tools::loadtest::execute(&args))?;
    let cpu_used = thread_cpu_seconds() - cpu_before;
    print!("{}", report.render_text());
    // The machine may be shared; CPU time per request says what one free core would do.
    if cpu_used > 0.0 {
        let per_request_us = cpu_used * 1e6 / report.requests as f64;
        println!(
            "generator  {cpu_used:.2}s CPU on its thread, {per_request_us:.2} µs CPU per request = {:.0} req/s per free core",
            1e6 / per_request_us
        );
    }
    server_runtime.shutdown_background();
    Ok(())
}
