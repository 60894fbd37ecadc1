//! The loopback upstream for comparing `cors-edge loadtest` with `wrk`: a minimal hyper
//! HTTP/1.1 server on ONE thread answering `200 ok` with the request's `Origin` reflected
//! in `Access-Control-Allow-Origin` and `Vary: Origin`, so the load generator's leak check
//! runs on every response. It prints its address and serves until killed.
//!
//! ```text
//! cargo build --release -p cors-edge -p cors-edge-tools --example bench_upstream
//! taskset -c 1 target/release/examples/bench_upstream 127.0.0.1:18080 &
//! taskset -c 0 wrk -t1 -c32 -d5s -H 'Origin: https://o1.loadtest.example' http://127.0.0.1:18080/
//! taskset -c 0 target/release/cors-edge loadtest http://127.0.0.1:18080/ --origins 1 \
//!     --concurrency 32 --duration 5s
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN, VARY};
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        println!("{}", listener.local_addr()?);
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
        Ok(())
    })
}
