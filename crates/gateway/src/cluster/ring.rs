//! Membership and the ring: which node owns a key.
//!
//! Built on Pingora's load-balancing crate: a `LoadBalancer<Consistent>` (Ketama, equal
//! weights) over the backends a [`PeerDiscovery`] resolves from `cluster.peers`, with a TCP
//! health check. [`RingKeeper`] re-resolves the names and probes every peer each
//! `cluster.health_check_interval` (and at once after a reload that changed the peers), so a
//! dead node leaves the ring within one interval and comes back when it answers again.
//!
//! The membership outlives reloads: a reload changes the peer list the discovery reads, the
//! ring keeps the health it has observed.

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use cors_edge_core::cluster::Owner;
use cors_edge_core::config::ClusterConfig;
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::health_check::TcpHealthCheck;
use pingora::lb::selection::Consistent;
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::sync::Notify;

use crate::metrics::PEER_METRICS;

/// The settings of the sharded cache that a reload may change.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    /// `peers` is set: keys have owners.
    pub sharded: bool,
    pub peers: Vec<String>,
    /// This node's address among the resolved peers.
    pub me: Option<SocketAddr>,
    pub local_ttl: Duration,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub interval: Duration,
}

/// One member of the ring, for `/stats`.
pub struct Member {
    pub address: SocketAddr,
    pub healthy: bool,
    pub me: bool,
}

pub struct Membership {
    /// The peer token, read once at start from `cluster.peer_token_env`.
    token: Option<String>,
    token_env: String,
    settings: ArcSwap<PeerSettings>,
    /// What the discovery resolves (shared with it).
    names: Arc<ArcSwap<Vec<String>>>,
    ring: LoadBalancer<Consistent>,
    /// The peers changed: resolve and probe now rather than at the next interval.
    changed: Notify,
    updated_once: AtomicBool,
}

/// Resolves `host:port` (a name may stand for several addresses).
fn resolve(entry: &str) -> Result<Vec<SocketAddr>, String> {
    entry
        .trim()
        .to_socket_addrs()
        .map(Iterator::collect)
        .map_err(|e| format!("{entry:?} cannot be resolved: {e}"))
}

/// The settings of `config`, with `self` found among the resolved peers (blocking DNS: at
/// start and on reload, never on the request path).
fn settings_of(config: &ClusterConfig) -> Result<PeerSettings, String> {
    let mut me = None;
    if config.sharded() {
        let own = match config.self_expanded() {
            Some(Ok(own)) => own,
            Some(Err(why)) => return Err(format!("cluster.self: {why}")),
            None => return Err("cluster.self is required with cluster.peers".to_string()),
        };
        let own_addresses = resolve(&own).map_err(|e| format!("cluster.self: {e}"))?;
        let mut resolved = Vec::new();
        for peer in &config.peers {
            resolved.extend(resolve(peer).map_err(|e| format!("cluster.peers: {e}"))?);
        }
        me = own_addresses.iter().find(|a| resolved.contains(a)).copied();
        if me.is_none() {
            return Err(format!(
                "cluster.self {own} ({}) is not among the resolved cluster.peers ({}): this node would forward to a ring it is not part of",
                list(&own_addresses),
                list(&resolved)
            ));
        }
    }
    Ok(PeerSettings {
        sharded: config.sharded(),
        peers: config.peers.clone(),
        me,
        local_ttl: config.local_ttl.0,
        connect_timeout: config.peer_connect_timeout.0,
        read_timeout: config.peer_read_timeout.0,
        interval: config.health_check_interval.0,
    })
}

/// A starting pod may not be in its headless Service's DNS answer yet: `self` missing from the
/// peers is retried for a few seconds before the node refuses to start.
fn settings_at_start(config: &ClusterConfig) -> Result<PeerSettings, String> {
    let deadline = std::time::Instant::now() + START_RESOLVE_PATIENCE;
    loop {
        match settings_of(config) {
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::info!("cluster: {e}; resolving again");
                std::thread::sleep(Duration::from_millis(500));
            }
            done => return done,
        }
    }
}

const START_RESOLVE_PATIENCE: Duration = Duration::from_secs(5);

fn list(addresses: &[SocketAddr]) -> String {
    let texts: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    texts.join(", ")
}

fn token_of(config: &ClusterConfig) -> Option<String> {
    std::env::var(&config.peer_token_env)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

impl Membership {
    /// At start: refuses peers without a token, and a `self` that is not among the peers.
    pub fn new(config: &ClusterConfig) -> Result<Membership, String> {
        let token = token_of(config);
        if config.sharded() && token.is_none() {
            return Err(format!(
                "cluster.peers is set, so the peer token is required: set the environment variable {} (cluster.peer_token_env) to the same secret on every node",
                config.peer_token_env
            ));
        }
        let settings = settings_at_start(config)?;
        let names = Arc::new(ArcSwap::from_pointee(settings.peers.clone()));
        let discovery = PeerDiscovery {
            names: names.clone(),
        };
        let mut ring =
            LoadBalancer::<Consistent>::from_backends(Backends::new(Box::new(discovery)));
        let mut check = TcpHealthCheck::new();
        check.peer_template.options.connection_timeout = Some(settings.connect_timeout);
        ring.set_health_check(check);
        once_cell::sync::Lazy::force(&PEER_METRICS);
        Ok(Membership {
            token,
            token_env: config.peer_token_env.clone(),
            settings: ArcSwap::from_pointee(settings),
            names,
            ring,
            changed: Notify::new(),
            updated_once: AtomicBool::new(false),
        })
    }

    /// On reload: the new peers and settings, or why they are refused (the running ones stay).
    pub fn reconfigure(&self, config: &ClusterConfig) -> Result<(), String> {
        if config.peer_token_env != self.token_env {
            return Err(format!(
                "cluster.peer_token_env changed ({} -> {}): the token is read at start; restart to change it",
                self.token_env, config.peer_token_env
            ));
        }
        if config.sharded() && self.token.is_none() {
            return Err(format!(
                "cluster.peers is set but {} was not set when this node started: restart with the peer token",
                self.token_env
            ));
        }
        let settings = settings_of(config)?;
        let peers_changed = settings.peers != self.settings.load().peers;
        self.names.store(Arc::new(settings.peers.clone()));
        self.settings.store(Arc::new(settings));
        if peers_changed {
            self.changed.notify_one();
        }
        Ok(())
    }

    pub fn settings(&self) -> Arc<PeerSettings> {
        self.settings.load_full()
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The owner of `key` (see `cors_edge_core::cluster::ring_key`) among the healthy members.
    pub fn owner(&self, settings: &PeerSettings, key: &[u8]) -> Owner<SocketAddr> {
        let Some(me) = settings.me.filter(|_| settings.sharded) else {
            return Owner::Nobody;
        };
        match self
            .ring
            .select(key, 256)
            .and_then(|b| b.addr.as_inet().copied())
        {
            None => Owner::Nobody,
            Some(address) if address == me => Owner::Me,
            Some(address) => Owner::Peer(address),
        }
    }

    /// The ring's members and their health.
    pub fn members(&self) -> Vec<Member> {
        let me = self.settings.load().me;
        let backends = self.ring.backends();
        backends
            .get_backend()
            .iter()
            .filter_map(|b| {
                let address = *b.addr.as_inet()?;
                Some(Member {
                    address,
                    healthy: backends.ready(b),
                    me: Some(address) == me,
                })
            })
            .collect()
    }

    /// Resolves the peers again and probes them.
    async fn refresh(&self) {
        if let Err(e) = self.ring.update().await {
            tracing::warn!("cluster: cannot resolve the peers ({e}); the ring stays as it was");
        }
        self.ring.backends().run_health_check(true).await;
        let members = self.members();
        let healthy = members.iter().filter(|m| m.healthy).count();
        PEER_METRICS.set_ring(members.len(), healthy);
        if !self.updated_once.swap(true, Ordering::Relaxed) {
            tracing::info!(
                "cluster: ring of {} nodes, {healthy} healthy",
                members.len()
            );
        }
    }
}

/// Resolves the current `cluster.peers` each time the ring is updated.
struct PeerDiscovery {
    names: Arc<ArcSwap<Vec<String>>>,
}

#[async_trait]
impl ServiceDiscovery for PeerDiscovery {
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let names = self.names.load_full();
        let mut backends = BTreeSet::new();
        let mut failed = 0;
        for name in names.iter() {
            match tokio::net::lookup_host(name.trim()).await {
                Ok(addresses) => {
                    for address in addresses {
                        backends.insert(Backend {
                            addr: pingora::protocols::l4::socket::SocketAddr::Inet(address),
                            weight: 1,
                            ext: http::Extensions::new(),
                        });
                    }
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!("cluster: peer {name:?} does not resolve: {e}");
                }
            }
        }
        if failed > 0 && backends.is_empty() {
            return pingora::Error::e_explain(
                pingora::ErrorType::InternalError,
                "no cluster peer resolves",
            );
        }
        Ok((backends, HashMap::new()))
    }
}

/// Keeps the ring current: resolves and probes every `health_check_interval`, and at once
/// after a reload changed the peers.
pub struct RingKeeper {
    pub membership: Arc<Membership>,
}

#[async_trait]
impl BackgroundService for RingKeeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            if self.membership.settings().sharded {
                self.membership.refresh().await;
            }
            let interval = self.membership.settings().interval;
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(interval) => {}
                _ = self.membership.changed.notified() => {}
            }
        }
    }
}
