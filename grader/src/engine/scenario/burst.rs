//! `parallel` groups with `burst = true`: every copy's connection request reaches the kernel
//! while the student's server is paused, so all of them are "at the same moment" as far as the
//! server can tell, whatever the speed of the machine or of the server's accept loop.
//!
//! Why: when 100 clients connect at once, the kernel queues finished handshakes up to the
//! server's `listen()` backlog and drops the requests beyond it (the clients retry after 1 s,
//! 3 s, 7 s). Whether requests were dropped used to depend on how fast the server accepted
//! while the grader was still connecting, so a server with `listen(5)` passed or failed with
//! the machine's load. Paused, the server accepts nothing until every request was sent: a
//! backlog below the number of clients drops requests every time, and one above never does.
//!
//! Guarantees: the server is paused only for the group's sending of connection requests and at
//! most [`BURST_GATE`]; it is resumed when the group ends in any way (the pause is a guard
//! dropped on every path); nothing is paused when the server is not running.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::Notify;

use crate::spec::BURST_GATE;

/// Counts the copies whose connection request has been sent.
#[derive(Debug)]
pub(super) struct Gate {
    expected: u32,
    sent: AtomicU32,
    all_sent: Notify,
}

impl Gate {
    /// A gate for `expected` copies.
    pub(super) fn new(expected: u32) -> Arc<Self> {
        Arc::new(Self {
            expected,
            sent: AtomicU32::new(0),
            all_sent: Notify::new(),
        })
    }

    /// One copy's connection request has left.
    pub(super) fn sent(&self) {
        if self.sent.fetch_add(1, Ordering::SeqCst) + 1 >= self.expected {
            self.all_sent.notify_one();
        }
    }

    /// Waits until every copy sent its request, or [`BURST_GATE`] passed (a copy that failed
    /// before connecting never will). Returns how many were sent.
    pub(super) async fn wait(&self) -> u32 {
        let _ = tokio::time::timeout(BURST_GATE, async {
            while self.sent.load(Ordering::SeqCst) < self.expected {
                // `notify_one` stores a permit: a notification between the check and this
                // await is not lost.
                self.all_sent.notified().await;
            }
        })
        .await;
        self.sent.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_when_every_copy_has_sent() {
        let gate = Gate::new(3);
        for _ in 0..3 {
            gate.sent();
        }
        let started = std::time::Instant::now();
        assert_eq!(gate.wait().await, 3);
        assert!(started.elapsed() < BURST_GATE);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_gate_time_when_a_copy_never_sends() {
        let gate = Gate::new(2);
        gate.sent();
        assert_eq!(gate.wait().await, 1);
    }
}
