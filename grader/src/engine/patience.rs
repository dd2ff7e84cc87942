//! Load-compensated deadlines: a step's deadline is stretched by the time the student's program
//! and the grader itself were kept waiting for a CPU during the step.
//!
//! Why: on an idle machine a reply takes milliseconds, so a 2 s deadline is generous; on a busy
//! machine (a CI runner grading many submissions, a test suite running in parallel) the same
//! program may simply not get scheduled for seconds. Stretching by the measured run-queue delay
//! (the kernel's per-thread `schedstat`) keeps verdicts the same on both, while a program that is
//! really stuck or silent still fails: being blocked in `recv()` or `input()` is not run-queue
//! time.
//!
//! The stretch is the largest delay any single thread accumulated since the step began (threads
//! wait in parallel, so summing them would over-count), once for the student's processes and
//! once for the grader. Guarantees: the deadline is never shorter than nominal nor longer than
//! [`MAX_STRETCH`] times it; /proc is read only when the current deadline has passed, so waiting
//! costs nothing extra while data flows; where the kernel does not report run-queue delay the
//! nominal deadline applies unchanged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::process::{Members, procfs};

/// The deadline never grows beyond this multiple of its nominal length.
pub const MAX_STRETCH: u32 = 4;

/// A deadline that grows with CPU starvation.
#[derive(Debug)]
pub struct Patience {
    start: Instant,
    within: Duration,
    watched: Option<Members>,
    own_base: HashMap<i32, u64>,
    group_base: HashMap<i32, u64>,
    /// The current deadline, as nanoseconds after `start`.
    current_ns: AtomicU64,
}

impl Patience {
    /// Starts a deadline of `within` from now, watching the student's processes (if any) and
    /// the grader's own threads.
    pub fn new(within: Duration, watched: Option<Members>) -> Self {
        let group_base = watched
            .as_ref()
            .map(|m| procfs::thread_run_delays_of(&m.pids()))
            .unwrap_or_default()
            .into_iter()
            .collect();
        Self {
            start: Instant::now(),
            within,
            watched,
            own_base: procfs::thread_run_delays(std::process::id() as i32)
                .into_iter()
                .collect(),
            group_base,
            current_ns: AtomicU64::new(within.as_nanos() as u64),
        }
    }

    /// The largest delay one thread accumulated since `base` was taken (new threads count whole).
    fn grown(base: &HashMap<i32, u64>, now: Vec<(i32, u64)>) -> u64 {
        now.into_iter()
            .map(|(tid, d)| d.saturating_sub(base.get(&tid).copied().unwrap_or(0)))
            .max()
            .unwrap_or(0)
    }

    fn stretch(&self) -> Duration {
        let own = Self::grown(
            &self.own_base,
            procfs::thread_run_delays(std::process::id() as i32),
        );
        let group = self.watched.as_ref().map_or(0, |m| {
            Self::grown(&self.group_base, procfs::thread_run_delays_of(&m.pids()))
        });
        Duration::from_nanos(own.saturating_add(group)).min(self.within * (MAX_STRETCH - 1))
    }

    /// The nominal deadline.
    pub fn within(&self) -> Duration {
        self.within
    }

    /// The deadline as it stood when last checked.
    pub fn deadline(&self) -> Instant {
        self.start + Duration::from_nanos(self.current_ns.load(Ordering::Relaxed))
    }

    /// True once the deadline has passed. When the current deadline is reached, the starvation
    /// measured so far is added first, so the deadline may move later.
    pub fn expired(&self) -> bool {
        if Instant::now() < self.deadline() {
            return false;
        }
        let grown = self.within + self.stretch();
        self.current_ns
            .fetch_max(grown.as_nanos() as u64, Ordering::Relaxed);
        Instant::now() >= self.deadline()
    }

    /// Sleeps until the current deadline; callers check [`Patience::expired`] afterwards and
    /// sleep again if it moved.
    pub async fn sleep(&self) {
        tokio::time::sleep_until(self.deadline().into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shorter_than_nominal_and_capped() {
        let p = Patience::new(Duration::from_millis(50), None);
        assert!(p.deadline() >= p.start + Duration::from_millis(50));
        assert!(!p.expired() || Instant::now() >= p.start + Duration::from_millis(50));
        assert!(p.stretch() <= Duration::from_millis(150));
    }

    #[test]
    fn grown_is_the_largest_per_thread_increase() {
        let base: HashMap<i32, u64> = [(1, 100), (2, 1000)].into_iter().collect();
        assert_eq!(
            Patience::grown(&base, vec![(1, 400), (2, 1100), (3, 50)]),
            300
        );
        assert_eq!(Patience::grown(&base, vec![]), 0);
    }
}
