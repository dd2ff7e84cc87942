//! Admission of work by CPU availability: the class scheduler of `grader batch`. Every grading
//! of the batch asks one shared [`Admission`] before it starts (and then runs all its scenarios
//! at once); it is let in when the machine's CPU has room, not when one of a fixed number of
//! slots frees. A scenario mostly waits (for a reply, or for a deadline that proves nothing
//! arrives), and a waiting scenario costs no CPU: so while the CPU has room, more gradings
//! start, and a class takes about as long as its CPU work or its slowest submission. A grading's
//! clocks (its time limit, its scenarios' deadlines) start when it is admitted, never while it
//! waits.
//!
//! Guarantees:
//! - work is admitted in the order it asked (first come, first served): earlier submissions
//!   finish first, none starves;
//! - at least one piece of work runs at any time, whatever the load (an idle grader never
//!   waits on a machine busy with others' work);
//! - at most [`Admission::limit`] run at once: the bound the caller gives (`-j`), lowered to
//!   what the grader's open-file limit and the machine's available memory allow (each grading
//!   holds sockets, pipes and student processes);
//! - new work starts only while the machine's run queue is short (at most one runnable thread
//!   more than it has cores, [`RUNNABLE_OVER_CORES`]) and at most one start per core per
//!   [`SAMPLE`] happened: a burst of starts cannot push the machine into the CPU starvation that
//!   would stretch every running scenario's deadlines. The run queue, not the busy time, because
//!   a machine kept busy by others (a CI neighbour, two busy loops) still has room for work that
//!   mostly waits: waiting threads are not runnable;
//! - a [`Ticket`] gives its place back when dropped, on every path (finished, failed,
//!   cancelled).
//!
//! The run queue is read from `/proc/stat` (`procs_running`: threads running or runnable on the
//! whole machine, the reader included), polled every [`SAMPLE`] while work waits: the kernel
//! offers no event for "the CPU has room".

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How often the machine's CPU is sampled while work waits for admission.
pub const SAMPLE: Duration = Duration::from_millis(25);
/// Runnable threads beyond the number of cores up to which new work starts.
pub const RUNNABLE_OVER_CORES: usize = 1;
/// File descriptors a grading may hold with all its scenarios running (Task 3's 100-client
/// scenario alone holds about 200 in the grader); the open-file limit divided by this bounds
/// the gradings running at once.
const FDS_PER_GRADING: u64 = 512;
/// Memory a grading may use (its scenarios' student processes, mostly interpreters of 10-40
/// MiB each); available memory divided by this bounds the gradings running at once.
const MEMORY_PER_GRADING: u64 = 512 << 20;

/// Gradings at once at most unless `-j` says otherwise: 16 per core (most of a grading's time
/// is waiting), lowered further by [`Admission::new`] to what open files and memory allow.
pub fn default_bound() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 16
}

/// The shared admission of one batch.
#[derive(Debug)]
pub struct Admission {
    cores: usize,
    limit: usize,
    state: Mutex<State>,
    changed: Notify,
    /// Reads the machine's runnable threads (a parameter for the tests).
    runnable: fn() -> Option<usize>,
}

#[derive(Debug, Default)]
struct State {
    running: usize,
    next: u64,
    waiting: BTreeSet<u64>,
    starts: VecDeque<Instant>,
    peak: usize,
}

/// A place among the running work; dropping it gives the place back.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut st = self.admission.lock();
        st.running = st.running.saturating_sub(1);
        drop(st);
        self.admission.changed.notify_waiters();
    }
}

impl Admission {
    /// An admission for at most `bound` pieces of work at once (lowered to what open files and
    /// memory allow; at least 1).
    pub fn new(bound: usize) -> Arc<Self> {
        Self::with_source(bound, runnable_threads)
    }

    fn with_source(bound: usize, runnable: fn() -> Option<usize>) -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let by_fds = open_file_limit().map_or(usize::MAX, |n| (n / FDS_PER_GRADING) as usize);
        let by_memory =
            available_memory().map_or(usize::MAX, |m| (m / MEMORY_PER_GRADING) as usize);
        Arc::new(Self {
            cores,
            limit: bound.min(by_fds).min(by_memory).max(1),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            runnable,
        })
    }

    /// The most pieces of work that run at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The most that ran at once so far.
    pub fn peak(&self) -> usize {
        self.lock().peak
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a place: this caller's turn (first come, first served), a free place under
    /// the limit, and room on the CPU.
    pub async fn admit(self: &Arc<Self>) -> Ticket {
        let number = {
            let mut st = self.lock();
            st.next += 1;
            let n = st.next;
            st.waiting.insert(n);
            n
        };
        // Leaves the queue if the caller is cancelled while waiting.
        let mut queued = Queued {
            admission: self,
            number,
            admitted: false,
        };
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.try_admit(number) {
                queued.admitted = true;
                return Ticket {
                    admission: self.clone(),
                };
            }
            // A place freed or the head moved: try again; else sample the CPU again.
            let _ = tokio::time::timeout(SAMPLE, changed).await;
        }
    }

    /// Admits `number` if it is first in line and there is room.
    fn try_admit(&self, number: u64) -> bool {
        let mut st = self.lock();
        if st.waiting.first() != Some(&number) {
            return false;
        }
        let now = Instant::now();
        let room = st.running == 0 || (st.running < self.limit && self.cpu_has_room(&mut st, now));
        if !room {
            return false;
        }
        st.waiting.remove(&number);
        st.running += 1;
        st.peak = st.peak.max(st.running);
        st.starts.push_back(now);
        drop(st);
        // The next in line may be admitted at once too.
        self.changed.notify_waiters();
        true
    }

    /// Whether the run queue is short and fewer than one start per core happened within the
    /// last [`SAMPLE`].
    fn cpu_has_room(&self, st: &mut State, now: Instant) -> bool {
        while st
            .starts
            .front()
            .is_some_and(|t| now.duration_since(*t) > SAMPLE)
        {
            st.starts.pop_front();
        }
        if st.starts.len() >= self.cores {
            return false;
        }
        // Unreadable: no CPU signal, so the limit alone bounds the work.
        (self.runnable)().is_none_or(|n| n <= self.cores + RUNNABLE_OVER_CORES)
    }
}

/// A caller's place in the queue, removed when it leaves without being admitted.
struct Queued<'a> {
    admission: &'a Admission,
    number: u64,
    admitted: bool,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if !self.admitted {
            self.admission.lock().waiting.remove(&self.number);
            self.admission.changed.notify_waiters();
        }
    }
}

/// Threads running or runnable on the machine (`procs_running` in `/proc/stat`).
fn runnable_threads() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_procs_running(&text)
}

fn parse_procs_running(stat: &str) -> Option<usize> {
    stat.lines()
        .find_map(|l| l.strip_prefix("procs_running "))?
        .trim()
        .parse()
        .ok()
}

/// The grader's soft limit on open files, first raised to the hard limit (at most 65,536) as
/// a server that holds many connections does. Student processes are not affected: each gets
/// its own limit ([`crate::process::limits`]).
fn open_file_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let wanted = hard.min(1 << 16);
    if wanted > soft && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
        return Some(wanted);
    }
    Some(soft)
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_run_queue() {
        let stat = "cpu  1 2 3 4\nctxt 99\nprocs_running 3\nprocs_blocked 0\n";
        assert_eq!(parse_procs_running(stat), Some(3));
        assert_eq!(parse_procs_running("cpu 1 2\n"), None);
        assert!(runnable_threads().is_some_and(|n| n >= 1), "this test runs");
    }

    fn idle() -> Option<usize> {
        Some(1)
    }

    fn overloaded() -> Option<usize> {
        Some(1000)
    }

    #[tokio::test]
    async fn one_runs_even_on_an_overloaded_machine_and_no_second() {
        let a = Admission::with_source(4, overloaded);
        let _t = a.admit().await;
        let second = tokio::time::timeout(SAMPLE * 8, a.admit()).await;
        assert!(second.is_err(), "a second start on an overloaded machine");
    }

    #[tokio::test]
    async fn never_more_than_the_limit_and_places_come_back() {
        let a = Admission::with_source(2, idle);
        assert_eq!(a.limit(), 2);
        let t1 = a.admit().await;
        let t2 = tokio::time::timeout(Duration::from_secs(5), a.admit())
            .await
            .expect("a second place under the limit");
        let third = tokio::time::timeout(SAMPLE * 8, a.admit()).await;
        assert!(third.is_err(), "a third place beyond the limit of 2");
        drop(t1);
        let t3 = tokio::time::timeout(Duration::from_secs(5), a.admit())
            .await
            .expect("the place given back");
        assert_eq!(a.peak(), 2);
        drop((t2, t3));
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_the_queue() {
        let a = Admission::with_source(1, idle);
        let t = a.admit().await;
        // Waits (no place), then is cancelled: it must not block those behind it.
        let _ = tokio::time::timeout(SAMPLE * 2, a.admit()).await;
        drop(t);
        tokio::time::timeout(Duration::from_secs(5), a.admit())
            .await
            .expect("the next caller is admitted");
    }
}
