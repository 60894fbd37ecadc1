//! Assembles the Pingora server: the proxy listeners, the admin API, background work.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cors_edge_core::config::{self, Config, ConfigErrors};
use cors_edge_store::{MokaStore, StoreOptions};
use pingora::apps::http_app::HttpServer;
use pingora::cache::lock::{CacheKeyLockImpl, CacheLock};
use pingora::proxy::http_proxy_service;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use thiserror::Error;

use crate::admin::AdminApp;
use crate::background::{Housekeeping, ReloadOnHangup};
use crate::demo::DemoApi;
use crate::proxy::Gateway;
use crate::state::SharedState;

pub struct RunOptions {
    pub config_path: PathBuf,
    /// Also serve the demo API on this address (for `cors-edge demo`).
    pub demo_upstream: Option<String>,
}

#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error(
        "{path}: admin.listen {listen} is not a loopback address, so the admin API needs a token: \
         set the environment variable {env} (admin.token_env)"
    )]
    MissingToken { path: String, listen: String, env: String },
    #[error("{path}: {reason}")]
    Runtime { path: String, reason: String },
}

/// Reads the admin token; refuses to expose an unauthenticated admin API beyond loopback.
fn admin_token(config: &Config, path: &str) -> Result<Option<String>, StartError> {
    let token = std::env::var(&config.admin.token_env).ok().filter(|t| !t.trim().is_empty());
    if token.is_none() && !config.admin_is_loopback() {
        return Err(StartError::MissingToken {
            path: path.to_string(),
            listen: config.admin.listen.clone(),
            env: config.admin.token_env.clone(),
        });
    }
    Ok(token.map(|t| t.trim().to_string()))
}

/// Starts the gateway and serves until a signal stops it. Returns only on a startup error.
pub fn run(options: RunOptions) -> Result<std::convert::Infallible, StartError> {
    let path_text = options.config_path.display().to_string();
    let config = config::load_file(&options.config_path)?;
    let token = admin_token(&config, &path_text)?;

    let store: &'static MokaStore = Box::leak(Box::new(MokaStore::new(StoreOptions {
        max_bytes: config.cache.max_bytes.0,
        revalidation_grace: Duration::from_secs(300),
    })));
    let cache_lock: &'static CacheKeyLockImpl =
        Box::leak(CacheLock::new_boxed(config.cache.lock_timeout.0));

    let server_conf = ServerConf {
        threads: config.server.threads_or_default(),
        grace_period_seconds: Some(config.server.grace_period.as_secs_ceil()),
        graceful_shutdown_timeout_seconds: Some(config.server.shutdown_timeout.as_secs_ceil()),
        ..ServerConf::default()
    };
    let listen = config.listen.clone();
    let admin_listen = config.admin.listen.clone();
    let state = Arc::new(
        SharedState::new(Arc::new(config), options.config_path.clone(), store, cache_lock, token)
            .map_err(|reason| StartError::Runtime { path: path_text.clone(), reason })?,
    );
    // Register every metric before the first scrape, not on the first request.
    once_cell::sync::Lazy::force(&crate::metrics::METRICS);

    let mut server = Server::new_with_opt_and_conf(None, server_conf);
    server.bootstrap();

    let mut proxy = http_proxy_service(&server.configuration, Gateway { state: state.clone() });
    for address in &listen {
        proxy.add_tcp(address);
    }
    server.add_service(proxy);

    let mut admin = Service::new("admin".to_string(), HttpServer::new_app(AdminApp { state: state.clone() }));
    admin.add_tcp(&admin_listen);
    server.add_service(admin);

    server.add_service(background_service("housekeeping", Housekeeping { state: state.clone() }));
    server.add_service(background_service("reload-on-sighup", ReloadOnHangup { state }));

    if let Some(address) = options.demo_upstream {
        let mut demo = Service::new("demo-api".to_string(), HttpServer::new_app(DemoApi::default()));
        demo.add_tcp(&address);
        server.add_service(demo);
    }
    server.run_forever()
}
