//! What the proxy, the admin API and the background tasks share: the running configuration
//! (swapped whole on reload), the store, the access log, and request counters for `/stats`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use cors_edge_core::config::{self, Config};
use cors_edge_core::outcome::CacheStatus;
use cors_edge_store::MokaStore;
use parking_lot::Mutex;
use pingora::cache::lock::CacheKeyLockImpl;

use crate::access_log::AccessLog;
use crate::cluster::ring::Membership;
use crate::runtime::{RouteMetricsCache, Runtime};

#[derive(Default)]
pub struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub preflight_hits: AtomicU64,
}

pub struct SharedState {
    runtime: ArcSwap<Runtime>,
    route_metrics: Mutex<RouteMetricsCache>,
    pub config_path: PathBuf,
    pub store: &'static MokaStore,
    pub cache_lock: &'static CacheKeyLockImpl,
    pub admin_token: Option<String>,
    pub counters: Counters,
    /// `None` when `log.access` is off.
    pub access_log: Option<AccessLog>,
    /// The sharded cache's membership and ring (`cluster:` at start; `peers` may be empty).
    pub membership: Option<Arc<Membership>>,
}

impl SharedState {
    pub fn new(
        config: Arc<Config>,
        config_path: PathBuf,
        store: &'static MokaStore,
        cache_lock: &'static CacheKeyLockImpl,
        admin_token: Option<String>,
    ) -> Result<Self, String> {
        let mut route_metrics = RouteMetricsCache::default();
        let access_log = AccessLog::start(config.log.access.as_ref())?;
        let membership = match &config.cluster {
            Some(cluster) => Some(Arc::new(Membership::new(cluster)?)),
            None => None,
        };
        let runtime = Runtime::build(config, &mut route_metrics).map_err(|e| e.to_string())?;
        Ok(SharedState {
            runtime: ArcSwap::from_pointee(runtime),
            route_metrics: Mutex::new(route_metrics),
            config_path,
            store,
            cache_lock,
            admin_token,
            counters: Counters::default(),
            access_log,
            membership,
        })
    }

    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Re-reads the config file and swaps routes, policies and upstreams. The cache, the
    /// listeners and open connections are untouched; on any error the running config stays.
    /// Settings that need new sockets or a new store (listen, admin, cache.max_bytes, tls,
    /// cluster, log) are reported as needing a restart. The access log file is reopened (log
    /// rotation), whatever the new file says.
    pub fn reload(&self) -> Result<ReloadReport, String> {
        if let Some(access_log) = &self.access_log {
            access_log.reopen();
        }
        let config = config::load_file(&self.config_path).map_err(|e| e.to_string())?;
        let current = self.runtime();
        let mut restart_needed = Vec::new();
        if config.listen != current.config.listen {
            restart_needed.push("listen");
        }
        if config.admin != current.config.admin {
            restart_needed.push("admin");
        }
        if config.cache.max_bytes != current.config.cache.max_bytes {
            restart_needed.push("cache.max_bytes");
        }
        if config.tls != current.config.tls {
            restart_needed.push("tls");
        }
        if config.log != current.config.log {
            restart_needed.push("log");
        }
        let runtime = {
            let mut metrics = self.route_metrics.lock();
            Runtime::build(Arc::new(config), &mut metrics).map_err(|e| e.to_string())?
        };
        // The purge stream needs a restart; the ring (peers, self, timeouts) changes here.
        match (
            &runtime.config.cluster,
            &current.config.cluster,
            &self.membership,
        ) {
            (Some(new), Some(old), Some(membership))
                if new.redis_url == old.redis_url && new.channel == old.channel =>
            {
                membership.reconfigure(new)?;
            }
            (new, old, _) if new != old => restart_needed.push("cluster"),
            _ => {}
        }
        let routes = runtime.routes.len();
        self.runtime.store(Arc::new(runtime));
        Ok(ReloadReport {
            routes,
            restart_needed,
        })
    }

    pub fn count_cache_status(&self, status: CacheStatus, preflight: bool) {
        if status.is_hit() {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            if preflight {
                self.counters.preflight_hits.fetch_add(1, Ordering::Relaxed);
            }
        } else if status.is_miss() {
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub struct ReloadReport {
    pub routes: usize,
    pub restart_needed: Vec<&'static str>,
}
