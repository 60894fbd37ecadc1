//! The cors-edge gateway: Pingora proxy with origin-aware caching, the admin API, metrics and
//! server assembly.

pub mod access_log;
pub mod admin;
mod admin_cache;
mod allocator;
pub mod background;
pub mod cluster;
pub mod connections;
pub mod demo;
pub mod listeners;
pub mod metrics;
pub mod proxy;
pub mod purge_scope;
pub mod runtime;
pub mod server;
pub mod state;

pub use server::{run, Reservations, RunOptions, StartError};
