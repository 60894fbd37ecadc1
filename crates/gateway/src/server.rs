//! Assembles the Pingora server: the proxy listeners, the admin API, background work.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cors_edge_core::config::{self, Config, ConfigErrors, TlsConfig};
use cors_edge_store::{CoalescingLock, MokaStore, StoreOptions};
use pingora::apps::http_app::HttpServer;
use pingora::cache::lock::CacheKeyLockImpl;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::proxy::http_proxy;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use pingora::tls::ServerConfig;
use thiserror::Error;

use crate::admin::AdminApp;
use crate::background::{Housekeeping, ReloadOnHangup};
use crate::cluster::ClusterBus;
use crate::connections::{self, Closed, LimitedApp, Limits, Listeners, TlsListeners};
use crate::demo::DemoApi;
pub use crate::listeners::Reservations;
use crate::listeners::{BoundListeners, ListenAddress, ReadyReporter};
use crate::proxy::{FrontAnswers, Gateway};
use crate::state::SharedState;

pub struct RunOptions {
    pub config_path: PathBuf,
    /// Also serve the demo API on this address (for `cors-edge demo`).
    pub demo_upstream: Option<String>,
    /// Ports already reserved by the caller (see `listeners`), bound as such.
    pub reservations: Reservations,
    /// Once every listener accepts, write the bound addresses here (JSON, with the pid).
    pub ready_file: Option<PathBuf>,
}

#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error(
        "{path}: admin.listen {listen} is not a loopback address, so the admin API needs a token: \
         set the environment variable {env} (admin.token_env)"
    )]
    MissingToken {
        path: String,
        listen: String,
        env: String,
    },
    #[error("{path}: {reason}")]
    Runtime { path: String, reason: String },
}

/// Reads the admin token; refuses to expose an unauthenticated admin API beyond loopback.
fn admin_token(config: &Config, path: &str) -> Result<Option<String>, StartError> {
    let token = std::env::var(&config.admin.token_env)
        .ok()
        .filter(|t| !t.trim().is_empty());
    if token.is_none() && !config.admin_is_loopback() {
        return Err(StartError::MissingToken {
            path: path.to_string(),
            listen: config.admin.listen.clone(),
            env: config.admin.token_env.clone(),
        });
    }
    Ok(token.map(|t| t.trim().to_string()))
}

/// The TLS listener's certificate and key, loaded and checked: every failure is found (and
/// named) here. The result is the rustls config Pingora's TLS listener would build from them
/// (TLS 1.2 and 1.3, no client certificates); the handshake itself runs inside the connection
/// limits (`connections::TlsListeners`).
fn check_tls(tls: &TlsConfig) -> Result<ServerConfig, String> {
    use pingora::tls::{self as rustls, version};
    let cert = tls
        .cert
        .to_str()
        .ok_or_else(|| format!("tls.cert {}: the path is not UTF-8", tls.cert.display()))?;
    let key = tls
        .key
        .to_str()
        .ok_or_else(|| format!("tls.key {}: the path is not UTF-8", tls.key.display()))?;
    for (name, path) in [("tls.cert", cert), ("tls.key", key)] {
        if let Err(e) = std::fs::File::open(path) {
            return Err(format!("{name} {path}: cannot read the file: {e}"));
        }
    }
    match rustls::load_pem_file_ca(&cert.to_string()) {
        Ok(found) if !found.is_empty() => {}
        Ok(_) => {
            return Err(format!(
                "tls.cert {cert}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file"
            ))
        }
        Err(e) => {
            return Err(format!(
                "tls.cert {cert}: not a valid PEM certificate chain ({e})"
            ))
        }
    }
    match rustls::load_pem_file_private_key(&key.to_string()) {
        Ok(found) if !found.is_empty() => {}
        Ok(_) => {
            return Err(format!(
                "tls.key {key}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file"
            ))
        }
        Err(e) => return Err(format!("tls.key {key}: not a valid PEM private key ({e})")),
    }
    let (certs, private_key) = match rustls::load_certs_and_key_files(cert, key) {
        Ok(Some(pair)) => pair,
        Ok(None) => {
            return Err(format!(
                "tls.key {key}: no usable private key for tls.cert {cert}"
            ))
        }
        Err(e) => {
            return Err(format!(
                "tls.cert {cert} / tls.key {key}: cannot be loaded ({e})"
            ))
        }
    };
    rustls::install_default_crypto_provider();
    ServerConfig::builder_with_protocol_versions(&[&version::TLS12, &version::TLS13])
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| format!("tls.key {key} does not fit tls.cert {cert}: {e}"))
}

/// Starts the gateway and serves until a signal stops it. Returns only on a startup error.
pub fn run(options: RunOptions) -> Result<std::convert::Infallible, StartError> {
    let path_text = options.config_path.display().to_string();
    let config = config::load_file(&options.config_path)?;
    let token = admin_token(&config, &path_text)?;
    let runtime_error = |reason: String| StartError::Runtime {
        path: path_text.clone(),
        reason,
    };
    let tls = match &config.tls {
        Some(tls) => Some((tls.listen.clone(), check_tls(tls).map_err(runtime_error)?)),
        None => None,
    };
    let cluster_config = config.cluster.clone();

    let store: &'static MokaStore = Box::leak(Box::new(MokaStore::new(StoreOptions {
        max_bytes: config.cache.max_bytes.0,
        revalidation_grace: Duration::from_secs(300),
    })));
    let cache_lock: &'static CacheKeyLockImpl = Box::leak(Box::new(CoalescingLock::new(
        store,
        config.cache.lock_timeout.0,
    )));

    let server_conf = ServerConf {
        threads: config.server.threads_or_default(),
        grace_period_seconds: Some(config.server.grace_period.as_secs_ceil()),
        graceful_shutdown_timeout_seconds: Some(config.server.shutdown_timeout.as_secs_ceil()),
        ..ServerConf::default()
    };
    let limits = Limits {
        header_timeout: config.server.header_timeout.0,
        idle_timeout: config.server.idle_timeout.0,
        max_connections: config.server.max_connections,
    };
    let mut reservations = options.reservations;
    let listen = reservations
        .resolve_all(&config.listen)
        .map_err(runtime_error)?;
    let admin_listen = reservations
        .resolve(&config.admin.listen)
        .map_err(runtime_error)?;
    let tls = match tls {
        Some((addresses, files)) => Some((
            reservations
                .resolve_all(&addresses)
                .map_err(runtime_error)?,
            files,
        )),
        None => None,
    };
    let demo_listen = match &options.demo_upstream {
        Some(address) => Some(reservations.resolve(address).map_err(runtime_error)?),
        None => None,
    };
    let state = Arc::new(
        SharedState::new(
            Arc::new(config),
            options.config_path.clone(),
            store,
            cache_lock,
            token,
        )
        .map_err(runtime_error)?,
    );
    let cluster = match &cluster_config {
        Some(cluster) => Some(ClusterBus::new(cluster, state.clone()).map_err(runtime_error)?),
        None => None,
    };
    // Register every metric before the first scrape, not on the first request.
    once_cell::sync::Lazy::force(&crate::metrics::METRICS);
    crate::metrics::register_known_series();
    connections::register_metrics();

    let mut server = Server::new_with_opt_and_conf(None, server_conf);
    server.bootstrap();

    // Connection limits (server.header_timeout, idle_timeout, max_connections) around
    // Pingora's proxy app, on plain and TLS listeners alike; see connections/mod.rs. The TLS
    // listeners are TCP listeners here: the limits count a connection before its handshake,
    // which they run themselves (connections/tls.rs).
    let tls_listeners = tls.as_ref().map(|(addresses, config)| {
        TlsListeners::new(addresses.iter().map(|a| a.addr).collect(), config.clone())
    });
    let gateway = || Gateway {
        state: state.clone(),
        cluster: cluster.as_ref().map(|(_, handle)| handle.clone()),
    };
    // HTTP/1 requests the gateway answers without a cache lookup by Pingora (fresh hits, edge
    // preflights, refusals) are answered in front of the proxy framework (connections/
    // front_door.rs, proxy/front.rs).
    let mut proxy = Service::new(
        "Pingora HTTP Proxy Service".to_string(),
        LimitedApp::new(
            http_proxy(&server.configuration, gateway()),
            FrontAnswers { gateway: gateway() },
            limits,
            Listeners::Proxy,
            tls_listeners,
        ),
    );
    for address in &listen {
        // No L4 read buffer on plain proxy listeners: Pingora reads heads and bodies into
        // buffers of its own, and the default 64 KiB one would be held by every idle connection.
        add_tcp_unbuffered(&mut proxy, address);
    }
    if let Some((tls_listen, _)) = &tls {
        for address in tls_listen {
            // Pingora's default L4 buffer, as on its own TLS listeners: rustls reads records
            // through it.
            add_tcp(&mut proxy, address);
        }
    }
    server.add_service(proxy);

    let admin_app = AdminApp {
        state: state.clone(),
        cluster: cluster.as_ref().map(|(_, handle)| handle.clone()),
    };
    // The same limits on the admin listener, with a cap of its own.
    let admin_limits = Limits {
        max_connections: connections::ADMIN_MAX_CONNECTIONS,
        ..limits
    };
    let mut admin = Service::new(
        "admin".to_string(),
        LimitedApp::new(
            HttpServer::new_app(admin_app),
            Closed,
            admin_limits,
            Listeners::Admin,
            None,
        ),
    );
    add_tcp(&mut admin, &admin_listen);
    server.add_service(admin);

    server.add_service(background_service(
        "housekeeping",
        Housekeeping {
            state: state.clone(),
        },
    ));
    server.add_service(background_service(
        "reload-on-sighup",
        ReloadOnHangup {
            state: state.clone(),
        },
    ));
    if let Some(membership) = &state.membership {
        server.add_service(background_service(
            "cluster-ring",
            crate::cluster::ring::RingKeeper {
                membership: membership.clone(),
            },
        ));
    }
    if let Some((bus, _)) = cluster {
        server.add_service(background_service("cluster-purge", bus));
    }

    if let Some(address) = &demo_listen {
        let mut demo = Service::new(
            "demo-api".to_string(),
            HttpServer::new_app(DemoApi::default()),
        );
        add_tcp(&mut demo, address);
        server.add_service(demo);
    }
    let listeners = BoundListeners {
        pid: std::process::id(),
        listen: listen.iter().map(|a| a.addr).collect(),
        tls: tls
            .as_ref()
            .map(|(addresses, _)| addresses.iter().map(|a| a.addr).collect())
            .unwrap_or_default(),
        admin: admin_listen.addr,
        demo: demo_listen.iter().map(|a| a.addr).collect(),
    };
    server.add_service(background_service(
        "ready",
        ReadyReporter {
            listeners,
            ready_file: options.ready_file,
            reservations,
        },
    ));
    server.run_forever()
}

/// Like [`add_tcp`], without Pingora's L4 read buffer (issue 14: the cost of idle connections).
fn add_tcp_unbuffered<A>(service: &mut Service<A>, address: &ListenAddress) {
    let mut listener =
        ListenerConfig::tcp(address.text()).l4_buffer(L4BufferSettings::default().read(0));
    if let Some(options) = address.socket_options() {
        listener = listener.tcp_socket_options(options);
    }
    service.add_listener(listener);
}

fn add_tcp<A>(service: &mut Service<A>, address: &ListenAddress) {
    match address.socket_options() {
        Some(options) => service.add_tcp_with_settings(&address.text(), options),
        None => service.add_tcp(&address.text()),
    }
}
