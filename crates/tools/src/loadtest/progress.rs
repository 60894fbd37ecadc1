//! Progress while the run goes on: a bar on a terminal, a line a second otherwise,
//! nothing with `--json`.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::worker::Shared;

/// How progress is shown while the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProgressMode {
    /// `--json`: stdout carries only the report, and stderr stays quiet for scripts.
    Silent,
    /// A live progress bar on an interactive terminal.
    Bar,
    /// One line per second, readable in CI logs where a bar would be garbage.
    Lines,
}

pub(crate) fn progress_mode(json: bool) -> ProgressMode {
    if json {
        ProgressMode::Silent
    } else if std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Lines
    }
}

/// The progress display task; stopped (and its bar cleared) when the run ends.
pub(crate) struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn start(mode: ProgressMode, shared: &Arc<Shared>, started: Instant) -> Self {
        match mode {
            ProgressMode::Silent => Progress {
                task: None,
                bar: None,
            },
            ProgressMode::Bar => {
                let bounds = shared.plan.bounds;
                // The bar tracks whichever bound is known up front: the request count
                // if given, else the clock.
                let (length, by_requests) = match (bounds.requests, bounds.duration) {
                    (Some(requests), _) => (requests, true),
                    (None, Some(duration)) => (
                        u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                        false,
                    ),
                    (None, None) => (0, true),
                };
                let bar = indicatif::ProgressBar::new(length);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}",
                ) {
                    bar.set_style(style);
                }
                let shown = bar.clone();
                let shared = Arc::clone(shared);
                let task = tokio::spawn(async move {
                    let mut ticker = tokio::time::interval(Duration::from_millis(200));
                    loop {
                        ticker.tick().await;
                        let snapshot = Snapshot::take(&shared, started);
                        let position = if by_requests {
                            snapshot.completed
                        } else {
                            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
                        };
                        shown.set_position(position.min(length));
                        shown.set_message(snapshot.summary());
                    }
                });
                Progress {
                    task: Some(task),
                    bar: Some(bar),
                }
            }
            ProgressMode::Lines => {
                let shared = Arc::clone(shared);
                let task = tokio::spawn(async move {
                    let mut ticker = tokio::time::interval(Duration::from_secs(1));
                    // The first tick fires at once; a line at 0s says nothing.
                    ticker.tick().await;
                    loop {
                        ticker.tick().await;
                        let snapshot = Snapshot::take(&shared, started);
                        eprintln!(
                            "loadtest: {:.0}s {} requests, {}",
                            started.elapsed().as_secs_f64(),
                            snapshot.completed,
                            snapshot.summary()
                        );
                    }
                });
                Progress {
                    task: Some(task),
                    bar: None,
                }
            }
        }
    }

    pub fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Live counters read for the progress display.
struct Snapshot {
    completed: u64,
    errors: u64,
    leaks: u64,
    requests_per_second: f64,
}

impl Snapshot {
    fn take(shared: &Shared, started: Instant) -> Self {
        let completed = shared.completed.load(Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        Snapshot {
            completed,
            errors: shared.errors.load(Ordering::Relaxed),
            leaks: shared.leaks.load(Ordering::Relaxed),
            requests_per_second: if elapsed > 0.0 {
                completed as f64 / elapsed
            } else {
                0.0
            },
        }
    }

    fn summary(&self) -> String {
        format!(
            "{:.0} req/s, {} errors, {} leaks",
            self.requests_per_second, self.errors, self.leaks
        )
    }
}
