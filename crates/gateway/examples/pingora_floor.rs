//! The floor under any Pingora-based cache on this machine: a Pingora proxy whose
//! `request_filter` answers every request with a fixed 1 KiB body (the headers a stored
//! per-origin answer carries, no lookup, no metrics, no upstream). What it serves per second on
//! one core is the most a cache hit on Pingora's HTTP/1 stack can reach; `benches/compare`
//! runs it next to cors-edge, nginx and Varnish.
//!
//!     cargo run --release -p cors-edge-gateway --example pingora_floor -- 127.0.0.1:6190

// Linked for its global allocator only: the floor is built the way the gateway is.
use cors_edge_gateway as _;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{http_proxy_service, ProxyHttp, Session};
use pingora::server::configuration::ServerConf;

static BODY: [u8; 1024] = [b'a'; 1024];

struct FixedAnswer;

#[async_trait]
impl ProxyHttp for FixedAnswer {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        let origin = session.req_header().headers.get("origin").cloned();
        let mut resp = ResponseHeader::build(200, Some(8))?;
        resp.insert_header("cache-control", "public, max-age=600")?;
        if let Some(origin) = origin {
            resp.insert_header("access-control-allow-origin", origin)?;
        }
        resp.insert_header("vary", "Origin")?;
        resp.insert_header("content-type", "application/octet-stream")?;
        resp.insert_header("content-length", BODY.len())?;
        resp.insert_header("age", 0)?;
        resp.insert_header("x-cache", "HIT")?;
        session.write_response_header(Box::new(resp), false).await?;
        session
            .write_response_body(Some(Bytes::from_static(&BODY)), true)
            .await?;
        Ok(true)
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Error::e_explain(InternalError, "every request is answered in request_filter")
    }
}

fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6190".to_string());
    let conf = ServerConf {
        threads: 1,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, FixedAnswer);
    proxy.add_tcp(&address);
    server.add_service(proxy);
    server.run_forever()
}
