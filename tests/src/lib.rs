//! Harness for black-box tests: start the built `cors-edge` binary with a config, start real
//! upstream HTTP servers on loopback ports picked by the OS, and send requests.
//!
//! The binary is `target/<profile>/cors-edge` next to the test executable, or `$CORS_EDGE_BIN`.

pub mod client;
pub mod cluster;
pub mod config;
pub mod gateway;
pub mod tls;
pub mod upstream;

pub use client::{request, send_raw, Response};
pub use config::{GatewayConfig, Route};
pub use gateway::{binary_path, GatewayProcess};
pub use upstream::{Reply, Upstream, UpstreamRequest};
