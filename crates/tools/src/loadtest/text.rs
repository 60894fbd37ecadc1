//! The load test's text report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::LoadtestReport;

impl LoadtestReport {
    /// The human-readable report.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let settings = &self.settings;
        let _ = writeln!(out, "cors-edge loadtest  {}", self.url);
        let mode = match settings.rate {
            Some(rate) => format!("open loop at {rate} req/s"),
            None => "closed loop".to_string(),
        };
        let _ = writeln!(
            out,
            "  {} connections, {} origins, {} paths, preflight share {}, no-Origin share {}, {mode}",
            settings.concurrency,
            settings.origins,
            settings.paths,
            settings.preflight_share,
            settings.no_origin_share,
        );
        let connections: Vec<String> = self
            .connections
            .iter()
            .map(|connection| connection.describe())
            .collect();
        let _ = writeln!(
            out,
            "  connection {} ({} opened)",
            if connections.is_empty() {
                "none completed".to_string()
            } else {
                connections.join("; ")
            },
            self.connects
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "requests   {} in {:.2}s = {:.0} req/s ({} responses, {} errors)",
            self.requests,
            self.elapsed_seconds,
            self.requests_per_second,
            self.responses,
            self.errors
        );
        let _ = writeln!(
            out,
            "sent       GET with Origin {}, GET without Origin {}, OPTIONS preflight {}",
            self.sent.simple_with_origin, self.sent.simple_without_origin, self.sent.preflight
        );
        match &self.latency_us {
            Some(latency) => {
                let _ = writeln!(
                    out,
                    "latency    p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (µs{})",
                    latency.p50,
                    latency.p90,
                    latency.p99,
                    latency.p999,
                    latency.max,
                    if settings.rate.is_some() {
                        ", from scheduled start"
                    } else {
                        ""
                    }
                );
            }
            None => {
                let _ = writeln!(out, "latency    no responses");
            }
        }
        let _ = writeln!(out, "status     {}", join_counts(&self.status));
        let cache = &self.cache;
        match cache.hit_ratio {
            Some(ratio) => {
                let _ = writeln!(
                    out,
                    "cache      hit ratio {:.1}% ({}){}",
                    ratio * 100.0,
                    join_counts(&cache.statuses),
                    if cache.without_status > 0 {
                        format!(", {} without a cache status", cache.without_status)
                    } else {
                        String::new()
                    }
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "cache      no response carried X-Cache (or another cache status)"
                );
            }
        }
        for node in &self.nodes {
            let _ = writeln!(
                out,
                "node       {}: {} responses, {} errors, hit ratio {} ({})",
                node.address,
                node.responses,
                node.errors,
                node.cache
                    .hit_ratio
                    .map_or_else(|| "-".to_string(), |r| format!("{:.1}%", r * 100.0)),
                join_counts(&node.cache.statuses)
            );
        }
        let leaks = &self.leaks;
        if leaks.total == 0 {
            let _ = writeln!(out, "leaks      none");
        } else {
            let _ = writeln!(
                out,
                "LEAKS      {} total: {} ACAO for another origin, {} without Vary: Origin, {} on requests without Origin",
                leaks.total, leaks.wrong_origin, leaks.missing_vary_origin, leaks.acao_without_origin
            );
            for example in &leaks.examples {
                let _ = writeln!(
                    out,
                    "  {}: {} {} from {} got ACAO {} (Vary: {}, cache: {})",
                    example.kind.describe(),
                    example.method,
                    example.path,
                    example.origin_sent.as_deref().unwrap_or("no Origin"),
                    example.acao_received,
                    example.vary.as_deref().unwrap_or("-"),
                    example.cache_status.as_deref().unwrap_or("-"),
                );
            }
        }
        if self.errors > 0 {
            let kinds: BTreeMap<String, u64> = self.error_kinds.clone();
            let _ = writeln!(out, "ERRORS     {}", join_counts(&kinds));
            for example in &self.error_examples {
                let _ = writeln!(out, "  {example}");
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "result     {}",
            match (leaks.total, self.errors) {
                (0, 0) => "PASS: no errors, no cross-origin leaks".to_string(),
                (0, errors) => format!("FAIL: {errors} request errors"),
                (leaked, 0) => format!("FAIL: {leaked} cross-origin leaks"),
                (leaked, errors) =>
                    format!("FAIL: {leaked} cross-origin leaks, {errors} request errors"),
            }
        );
        out
    }
}

fn join_counts(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "-".to_string();
    }
    counts
        .iter()
        .map(|(name, count)| format!("{name}: {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}
