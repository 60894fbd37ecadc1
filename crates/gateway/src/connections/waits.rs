//! What one HTTP/1 connection waits for besides its bytes, kept for the connection's life: the
//! deadline of the head being read and the server's shutdown.
//!
//! A fresh timeout and a fresh shutdown subscription per head cost a timer-wheel insert and
//! removal plus a waiter-list insert and removal for every request on a kept-alive
//! connection: about a twentieth of a cached hit's CPU. Here the timer is lazy, as nginx's
//! (`NGX_TIMER_LAZY_DELAY`): it is moved only when a deadline comes earlier than the one it is
//! armed for; when it fires early (the deadline has moved later since) it is re-armed for the
//! real one. The shutdown subscription is made once per connection.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pingora::server::ShutdownWatch;
use tokio::time::{Instant, Sleep};

/// What woke a wait.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Woken {
    /// The deadline passed.
    Deadline,
    /// The server is stopping (or its shutdown signal is gone).
    Shutdown,
}

type ShutdownFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub(super) struct ConnectionWaits {
    timer: Pin<Box<Sleep>>,
    /// What the timer is armed for; never later than `deadline`.
    armed: Instant,
    deadline: Instant,
    /// Resolves once when the server starts stopping; `None` after that.
    shutdown: Option<ShutdownFuture>,
    shutting_down: bool,
}

impl ConnectionWaits {
    pub(super) fn new(deadline: Instant, shutdown: &ShutdownWatch) -> Self {
        let mut watch = shutdown.clone();
        let shutting_down = *watch.borrow_and_update();
        let signal: ShutdownFuture = Box::pin(async move {
            // Resolves when the value turns true or the sender is gone (both: stop serving).
            while watch.changed().await.is_ok() {
                if *watch.borrow_and_update() {
                    return;
                }
            }
        });
        ConnectionWaits {
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            armed: deadline,
            deadline,
            shutdown: (!shutting_down).then_some(signal),
            shutting_down,
        }
    }

    /// Sets the deadline of what is read next.
    pub(super) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
        if deadline < self.armed {
            self.timer.as_mut().reset(deadline);
            self.armed = deadline;
        }
    }

    /// Whether the server has started stopping (as far as this connection has seen).
    pub(super) fn shutting_down(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(signal) = self.shutdown.as_mut() {
            if signal.as_mut().poll(cx).is_ready() {
                self.shutdown = None;
                self.shutting_down = true;
            }
        }
        self.shutting_down
    }

    /// The deadline, when it has passed; otherwise the wait is registered with `cx`.
    pub(super) fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Woken> {
        while self.timer.as_mut().poll(cx).is_ready() {
            if self.armed >= self.deadline {
                return Poll::Ready(Woken::Deadline);
            }
            // Fired for a deadline that has since moved later: wait for the real one.
            self.timer.as_mut().reset(self.deadline);
            self.armed = self.deadline;
        }
        Poll::Pending
    }

    /// Whether the server is stopping, checked without waiting.
    pub(super) fn stopping_now(&mut self) -> bool {
        let waker = std::task::Waker::noop();
        self.shutting_down(&mut Context::from_waker(waker))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn poll_deadline(waits: &mut ConnectionWaits) -> Poll<Woken> {
        waits.poll_deadline(&mut Context::from_waker(std::task::Waker::noop()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_later_is_waited_for_in_full() {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let start = Instant::now();
        let mut waits = ConnectionWaits::new(start + Duration::from_secs(10), &rx);
        waits.set_deadline(start + Duration::from_secs(60));
        tokio::time::advance(Duration::from_secs(11)).await;
        // The timer armed for 10 s fired; the deadline is 60 s: still waiting.
        assert_eq!(poll_deadline(&mut waits), Poll::Pending);
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(poll_deadline(&mut waits), Poll::Ready(Woken::Deadline));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_earlier_fires_then() {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let start = Instant::now();
        let mut waits = ConnectionWaits::new(start + Duration::from_secs(60), &rx);
        assert_eq!(poll_deadline(&mut waits), Poll::Pending);
        waits.set_deadline(start + Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(poll_deadline(&mut waits), Poll::Pending);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(poll_deadline(&mut waits), Poll::Ready(Woken::Deadline));
    }

    #[tokio::test]
    async fn shutdown_is_seen_once_signalled_and_stays_seen() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut waits = ConnectionWaits::new(Instant::now() + Duration::from_secs(60), &rx);
        assert!(!waits.stopping_now());
        tx.send(true).expect("a receiver");
        tokio::task::yield_now().await;
        assert!(waits.stopping_now());
        assert!(waits.stopping_now());
    }

    #[tokio::test]
    async fn a_connection_made_during_shutdown_knows_it() {
        let (_tx, rx) = tokio::sync::watch::channel(true);
        let mut waits = ConnectionWaits::new(Instant::now() + Duration::from_secs(60), &rx);
        assert!(waits.stopping_now());
    }

    #[tokio::test]
    async fn a_gone_shutdown_signal_counts_as_stopping() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut waits = ConnectionWaits::new(Instant::now() + Duration::from_secs(60), &rx);
        drop(tx);
        assert!(waits.stopping_now());
    }
}
