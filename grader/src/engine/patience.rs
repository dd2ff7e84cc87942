//! Load-compensated deadlines: a step's deadline is stretched by the time the student's
//! processes and the grader itself spent waiting for a CPU during the step.
//!
//! Why: on an idle machine a reply takes milliseconds, so a 2 s deadline is generous; on a busy
//! machine (a CI runner grading many submissions, a test suite running in parallel) the same
//! program may simply not get scheduled for seconds. Stretching by the measured run-queue delay
//! (the kernel's per-thread `schedstat`) keeps verdicts the same on both, while a program that is
//! really stuck or silent still fails: being blocked in `recv()` or `input()` is not run-queue
//! time. Guarantees: the stretch never exceeds [`MAX_STRETCH`] times the nominal deadline, and
//! where the kernel does not report run-queue delay the nominal deadline applies unchanged.

use std::time::{Duration, Instant};

use crate::process::procfs;

/// The deadline never grows beyond this multiple of its nominal length.
pub const MAX_STRETCH: u32 = 4;

/// A deadline that grows with CPU starvation.
#[derive(Debug, Clone)]
pub struct Patience {
    start: Instant,
    within: Duration,
    pgid: Option<i32>,
    base_delay: u64,
}

impl Patience {
    /// Starts a deadline of `within` from now, watching the process group `pgid` (if any) and
    /// the grader's own threads.
    pub fn new(within: Duration, pgid: Option<i32>) -> Self {
        Self {
            start: Instant::now(),
            within,
            pgid,
            base_delay: Self::delay(pgid),
        }
    }

    fn delay(pgid: Option<i32>) -> u64 {
        let own = procfs::run_delay_ns(std::process::id() as i32).unwrap_or(0);
        // The grader's threads wait for the CPU too; both kinds of starvation delay a reply.
        own + pgid.map_or(0, procfs::group_run_delay_ns)
    }

    /// The nominal deadline.
    pub fn within(&self) -> Duration {
        self.within
    }

    /// The deadline as it stands now (nominal plus the starvation measured so far).
    pub fn deadline(&self) -> Instant {
        let grown = Self::delay(self.pgid).saturating_sub(self.base_delay);
        let cap = self.within * (MAX_STRETCH - 1);
        self.start + self.within + Duration::from_nanos(grown).min(cap)
    }

    /// True once the (stretched) deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline()
    }

    /// Sleeps until the deadline as it stands now; call again (after checking) until
    /// [`Patience::expired`].
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
        let d = p.deadline();
        assert!(d >= p.start + Duration::from_millis(50));
        assert!(d <= p.start + Duration::from_millis(50) * MAX_STRETCH);
    }
}
