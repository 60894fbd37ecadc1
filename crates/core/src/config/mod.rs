//! The config file: model, loader (the only place that knows serde_yaml) and validation.
//!
//! ```no_run
//! # use std::path::Path;
//! let config = cors_edge_core::config::load_file(Path::new("config/gateway.yaml"))?;
//! println!("{}", config.summary());
//! # Ok::<(), cors_edge_core::config::ConfigErrors>(())
//! ```

mod cluster;
mod compression;
mod cors;
mod error;
mod key_query;
mod load;
mod log;
mod model;
mod summary;
mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_compression;
#[cfg(test)]
mod tests_validation;

pub use cluster::{expand_env, ClusterConfig};
pub use compression::CompressionConfig;
pub use cors::{CorsConfig, CorsMode};
pub use error::{ConfigError, ConfigErrorKind, ConfigErrors, KeyPath, PathSegment};
pub use key_query::KeyQueryConfig;
pub use load::{load_file, load_str};
pub use log::{AccessLogConfig, AccessLogFormat, LogConfig, LogDestination};
pub use model::{
    AdminConfig, CacheConfig, Config, HealthCheckConfig, RouteCacheConfig, RouteConfig, RouteMatch,
    ServerConfig, TlsConfig, UpstreamConfig,
};
