//! Periodic work outside the request path: upstream health checks, moka maintenance and the
//! cache gauges, and config reload on SIGHUP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::admin::refresh_gauges;
use crate::state::SharedState;

pub struct Housekeeping {
    pub state: Arc<SharedState>,
}

#[async_trait]
impl BackgroundService for Housekeeping {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last_checked: Vec<(String, Instant)> = Vec::new();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            let runtime = self.state.runtime();
            for upstream in &runtime.upstreams {
                if upstream.health_interval.is_zero() {
                    continue;
                }
                let due = last_checked
                    .iter()
                    .find(|(name, _)| *name == upstream.name)
                    .is_none_or(|(_, at)| at.elapsed() >= upstream.health_interval);
                if due {
                    upstream.pool.backends().run_health_check(true).await;
                    last_checked.retain(|(name, _)| *name != upstream.name);
                    last_checked.push((upstream.name.clone(), Instant::now()));
                }
            }
            self.state.store.sync();
            refresh_gauges(&self.state);
        }
    }
}

pub struct ReloadOnHangup {
    pub state: Arc<SharedState>,
}

#[async_trait]
impl BackgroundService for ReloadOnHangup {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hangups =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(signal) => signal,
                Err(e) => {
                    tracing::error!(
                        "cannot listen for SIGHUP, reload only through POST /reload: {e}"
                    );
                    return;
                }
            };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = hangups.recv() => {
                    match self.state.reload() {
                        Ok(report) => tracing::info!(
                            "SIGHUP: reloaded {} routes; needs restart: {:?}",
                            report.routes,
                            report.restart_needed
                        ),
                        Err(e) => tracing::error!("SIGHUP: reload refused, running config kept: {e}"),
                    }
                }
            }
        }
    }
}
