//! Pure logic of cors-edge. Nothing in this crate does I/O or knows about Pingora, so every
//! rule here is unit-tested, property-tested and fuzzed without a server.

pub mod cluster;
pub mod compression;
pub mod config;
pub mod cors;
pub mod forwarding;
pub mod freshness;
pub mod header_list;
pub mod inspect;
pub mod key;
pub mod key_query;
pub mod outcome;
pub mod purge;
pub mod request_target;
pub mod units;
pub mod vary;
