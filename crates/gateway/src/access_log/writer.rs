//! The access log's writer thread: the only code that does the log's I/O. Lines arrive on a
//! bounded channel; the thread writes what is queued through a buffer, flushes, then sleeps
//! [`BATCH_INTERVAL`] before looking again. Under load the requests therefore never wake it
//! (a wake-up per line, a futex call and a context switch, cost as much CPU as the hit itself:
//! `benches/compare/hits-ab.sh`), and a line reaches the file within about that interval.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cors_edge_core::config::LogDestination;

const BUFFER_BYTES: usize = 64 * 1024;
/// After a failed open or write, lines are dropped (and counted) until this long has passed.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often an idle writer looks at the reopen flag.
const IDLE_CHECK: Duration = Duration::from_millis(200);
/// How long the writer lets lines gather after a batch (like nginx's `access_log ... flush=`).
pub const BATCH_INTERVAL: Duration = Duration::from_millis(10);

pub enum Message {
    Line(String),
    /// A reopen was asked for: look at the flag now rather than at the next line.
    Wake,
}

/// Checks at startup that a file destination can be opened for appending, so a missing
/// directory or a permission problem stops the gateway with a clear error. A FIFO or a device
/// is not opened here: opening a FIFO waits for its reader, which the writer thread does.
pub fn check(destination: &LogDestination) -> io::Result<()> {
    let LogDestination::File(path) = destination else {
        return Ok(());
    };
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => Ok(()),
        _ => open_file(path).map(drop),
    }
}

fn open_file(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn open(destination: &LogDestination) -> io::Result<Box<dyn Write + Send>> {
    match destination {
        LogDestination::Stdout => Ok(Box::new(io::stdout())),
        LogDestination::File(path) => Ok(Box::new(open_file(path)?)),
    }
}

pub struct Writer {
    pub destination: LogDestination,
    pub lines: Receiver<Message>,
    pub reopen: Arc<AtomicBool>,
    /// Counts lines lost to a failed open or write (the channel counts its own drops).
    pub dropped: Box<dyn Fn(u64) + Send>,
}

impl Writer {
    /// Runs until every sender is gone.
    pub fn run(self) {
        let mut out: Option<BufWriter<Box<dyn Write + Send>>> = None;
        let mut failed_at: Option<Instant> = None;
        loop {
            let message = match self.lines.recv_timeout(IDLE_CHECK) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    if self.reopen.load(Ordering::Acquire) {
                        self.reopen_now(&mut out, &mut failed_at);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if self.reopen.load(Ordering::Acquire) {
                self.reopen_now(&mut out, &mut failed_at);
            }
            let Message::Line(line) = message else {
                continue;
            };
            self.write(&mut out, &mut failed_at, &line);
            // Everything already queued goes out in the same buffer, then one flush.
            while let Ok(message) = self.lines.try_recv() {
                if let Message::Line(line) = message {
                    self.write(&mut out, &mut failed_at, &line);
                }
            }
            if let Some(writer) = &mut out {
                if let Err(e) = writer.flush() {
                    self.failed(&mut out, &mut failed_at, &e);
                }
            }
            std::thread::sleep(BATCH_INTERVAL);
        }
        if let Some(mut writer) = out {
            let _ = writer.flush();
        }
    }

    /// Closes the destination (flushing it) so the next line opens it again: after a rotation
    /// that is a new file at the configured path.
    fn reopen_now(
        &self,
        out: &mut Option<BufWriter<Box<dyn Write + Send>>>,
        failed_at: &mut Option<Instant>,
    ) {
        self.reopen.store(false, Ordering::Release);
        if let Some(mut writer) = out.take() {
            if let Err(e) = writer.flush() {
                tracing::error!("access log {}: {e}", self.destination);
            }
        }
        *failed_at = None;
        if let Err(e) = self.ensure_open(out) {
            tracing::error!("access log {}: cannot reopen: {e}", self.destination);
            *failed_at = Some(Instant::now());
        }
    }

    fn ensure_open(&self, out: &mut Option<BufWriter<Box<dyn Write + Send>>>) -> io::Result<()> {
        if out.is_none() {
            *out = Some(BufWriter::with_capacity(
                BUFFER_BYTES,
                open(&self.destination)?,
            ));
        }
        Ok(())
    }

    fn write(
        &self,
        out: &mut Option<BufWriter<Box<dyn Write + Send>>>,
        failed_at: &mut Option<Instant>,
        line: &str,
    ) {
        if failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER) {
            (self.dropped)(1);
            return;
        }
        let written = self.ensure_open(out).and_then(|()| match out {
            Some(writer) => writer.write_all(line.as_bytes()),
            None => Ok(()),
        });
        match written {
            Ok(()) => *failed_at = None,
            Err(e) => {
                (self.dropped)(1);
                self.failed(out, failed_at, &e);
            }
        }
    }

    fn failed(
        &self,
        out: &mut Option<BufWriter<Box<dyn Write + Send>>>,
        failed_at: &mut Option<Instant>,
        error: &io::Error,
    ) {
        if failed_at.is_none() {
            tracing::error!(
                "access log {}: {error}; dropping lines, retrying every {}s",
                self.destination,
                RETRY_AFTER.as_secs()
            );
        }
        // A buffer that failed to flush is discarded with the file: its lines are lost.
        if let Some(writer) = out.take() {
            let (_, buffered) = writer.into_parts();
            if let Ok(buffered) = buffered {
                let lines = buffered.iter().filter(|b| **b == b'\n').count();
                (self.dropped)(lines as u64);
            }
        }
        *failed_at = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::AtomicU64;
    use std::sync::mpsc::{sync_channel, SyncSender};
    use std::thread::JoinHandle;

    use super::*;

    struct Running {
        lines: SyncSender<Message>,
        reopen: Arc<AtomicBool>,
        dropped: Arc<AtomicU64>,
        thread: JoinHandle<()>,
    }

    fn start(destination: LogDestination) -> Running {
        let (lines, received) = sync_channel(16);
        let reopen = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        let writer = Writer {
            destination,
            lines: received,
            reopen: reopen.clone(),
            dropped: Box::new(move |n| {
                counted.fetch_add(n, Ordering::Relaxed);
            }),
        };
        Running {
            lines,
            reopen,
            dropped,
            thread: std::thread::spawn(move || writer.run()),
        }
    }

    impl Running {
        fn line(&self, text: &str) {
            let sent = self.lines.send(Message::Line(format!("{text}\n")));
            assert!(sent.is_ok(), "the writer stopped");
        }

        /// Stops the writer (it flushes when its last sender is gone); returns the drops.
        fn stop(self) -> u64 {
            drop(self.lines);
            assert!(self.thread.join().is_ok(), "the writer panicked");
            self.dropped.load(Ordering::Relaxed)
        }
    }

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cors-edge-access-log-{label}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_default()
    }

    #[test]
    fn lines_are_appended_in_order() {
        let dir = temp_dir("order");
        let path = dir.join("access.log");
        std::fs::write(&path, "kept\n").unwrap();
        let writer = start(LogDestination::File(path.clone()));
        for line in ["a", "b", "c"] {
            writer.line(line);
        }
        assert_eq!(writer.stop(), 0);
        assert_eq!(read(&path), "kept\na\nb\nc\n");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_reopen_after_a_rename_writes_to_a_new_file() {
        let dir = temp_dir("rotate");
        let path = dir.join("access.log");
        let writer = start(LogDestination::File(path.clone()));
        writer.line("before");
        // The line is flushed once the queue is empty.
        let deadline = Instant::now() + Duration::from_secs(10);
        while read(&path) != "before\n" {
            assert!(
                Instant::now() < deadline,
                "the first line never reached the file"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let rotated = dir.join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        writer.reopen.store(true, Ordering::Release);
        assert!(writer.lines.send(Message::Wake).is_ok());
        writer.line("after");
        assert_eq!(writer.stop(), 0);
        assert_eq!(read(&rotated), "before\n");
        assert_eq!(read(&path), "after\n");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn lines_that_cannot_be_written_are_counted() {
        let dir = temp_dir("missing");
        let destination = LogDestination::File(dir.join("no-such-dir").join("access.log"));
        assert!(check(&destination).is_err(), "startup refuses it");
        let writer = start(destination);
        for line in ["a", "b", "c"] {
            writer.line(line);
        }
        assert_eq!(writer.stop(), 3);
        let _ = std::fs::remove_dir_all(dir);
    }
}
