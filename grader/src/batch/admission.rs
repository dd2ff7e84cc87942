//! Admission of work by CPU availability: the class scheduler of `grader batch`. Every grading
//! of the batch asks one shared [`Admission`] before it starts (and then runs all its scenarios
//! at once); it is let in when the machine's CPU has room, not only when one of a fixed number
//! of slots frees. A scenario mostly waits (for a reply, or for a deadline that proves nothing
//! arrives), and a waiting scenario costs no CPU: so while the CPU has room, more gradings
//! start, and a class takes about as long as its CPU work or its slowest submission. A
//! grading's clocks (its time limit, its scenarios' deadlines) start when it is admitted, never
//! while it waits.
//!
//! Guarantees:
//! - work is admitted in the order it asked (first come, first served): earlier submissions
//!   finish first, none starves;
//! - up to one grading per core runs whatever the load (what a fixed `-j cores` gave before): a
//!   machine kept busy by others still grades at that pace;
//! - beyond that, a grading starts only when the machine's CPU was at least [`IDLE_MIN`] idle
//!   over the last [`SAMPLE`] and no other grading started within it: a burst of starts (each
//!   grading starts its scenarios' programs at once) cannot push the machine into the CPU
//!   starvation that would stretch every running scenario's deadlines;
//! - at most [`Admission::limit`] run at once: the bound the caller gives (`-j`), lowered to
//!   what the grader's open-file limit and the machine's available memory allow (each grading
//!   holds sockets, pipes and student processes);
//! - a [`Ticket`] gives its place back when dropped, on every path (finished, failed,
//!   cancelled), and a caller cancelled while waiting leaves the queue.
//!
//! The CPU is read from `/proc/stat` (the whole machine's busy and idle time), polled every
//! [`SAMPLE`] while work waits: the kernel offers no event for "the CPU has room".

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How often the machine's CPU is sampled while work waits for admission, and the least time
/// between two starts beyond one grading per core.
pub const SAMPLE: Duration = Duration::from_millis(100);
/// The idle fraction of all cores from which another grading starts.
pub const IDLE_MIN: f64 = 0.15;
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
    /// Reads the machine's CPU counters (a parameter for the tests).
    cpu: fn() -> Option<CpuTimes>,
}

#[derive(Debug, Default)]
struct State {
    running: usize,
    next: u64,
    waiting: BTreeSet<u64>,
    last_start: Option<Instant>,
    /// The previous reading and the idle fraction measured up to it.
    sample: Option<(Instant, CpuTimes)>,
    idle: f64,
    peak: usize,
}

/// Whole-machine CPU time counters from `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    idle: u64,
    total: u64,
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
        Self::with_source(bound, cpu_times)
    }

    fn with_source(bound: usize, cpu: fn() -> Option<CpuTimes>) -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let by_fds = open_file_limit().map_or(usize::MAX, |n| (n / FDS_PER_GRADING) as usize);
        let by_memory =
            available_memory().map_or(usize::MAX, |m| (m / MEMORY_PER_GRADING) as usize);
        Arc::new(Self {
            cores,
            limit: bound.min(by_fds).min(by_memory).max(1),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            cpu,
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
        st.last_start = Some(now);
        drop(st);
        // The next in line may be admitted at once too.
        self.changed.notify_waiters();
        true
    }

    /// Whether another grading may start now: fewer than one per core run, or the CPU was at
    /// least [`IDLE_MIN`] idle over the last sample and no grading started within it.
    fn cpu_has_room(&self, st: &mut State, now: Instant) -> bool {
        if st.running < self.cores {
            return true;
        }
        if st
            .last_start
            .is_some_and(|t| now.duration_since(t) < SAMPLE)
        {
            return false;
        }
        match st.sample {
            Some((at, _)) if now.duration_since(at) < SAMPLE => {}
            _ => {
                let Some(times) = (self.cpu)() else {
                    // Unreadable: no CPU signal, so the limit alone bounds the work.
                    return true;
                };
                if let Some((_, before)) = st.sample {
                    let total = times.total.saturating_sub(before.total);
                    if total > 0 {
                        st.idle = times.idle.saturating_sub(before.idle) as f64 / total as f64;
                    }
                }
                st.sample = Some((now, times));
            }
        }
        st.idle >= IDLE_MIN
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

/// The machine's CPU counters (first line of `/proc/stat`): idle = idle + iowait.
fn cpu_times() -> Option<CpuTimes> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(text.lines().next()?)
}

fn parse_cpu_line(line: &str) -> Option<CpuTimes> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields.map_while(|f| f.parse().ok()).collect();
    if values.len() < 5 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    Some(CpuTimes {
        idle: values[3] + values[4],
        total: values.iter().take(8).sum(),
    })
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
    fn reads_the_cpu_line() {
        let t = parse_cpu_line("cpu  100 5 50 800 20 3 2 0 0 0").unwrap();
        assert_eq!((t.idle, t.total), (820, 980));
        assert_eq!(parse_cpu_line("cpu0 1 2 3 4 5"), None);
        assert!(cpu_times().is_some());
    }

    /// A machine whose counters advance by 100 ticks per reading, all idle or all busy.
    fn clock(idle: bool) -> Option<CpuTimes> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static TICKS: AtomicU64 = AtomicU64::new(0);
        let total = TICKS.fetch_add(100, Ordering::SeqCst) + 100;
        Some(CpuTimes {
            idle: if idle { total } else { 0 },
            total,
        })
    }

    fn idle() -> Option<CpuTimes> {
        clock(true)
    }

    fn overloaded() -> Option<CpuTimes> {
        clock(false)
    }

    #[tokio::test]
    async fn one_per_core_runs_on_an_overloaded_machine_and_no_more() {
        let a = Admission::with_source(1000, overloaded);
        let mut places = Vec::new();
        for _ in 0..a.cores {
            places.push(a.admit().await);
        }
        let more = tokio::time::timeout(SAMPLE * 5, a.admit()).await;
        assert!(
            more.is_err(),
            "a grading beyond one per core on a busy machine"
        );
    }

    #[tokio::test]
    async fn an_idle_machine_admits_more_than_one_per_core_one_sample_apart() {
        let a = Admission::with_source(1000, idle);
        let mut places = Vec::new();
        let started = std::time::Instant::now();
        for _ in 0..a.cores + 2 {
            places.push(a.admit().await);
        }
        assert_eq!(a.peak(), a.cores + 2);
        // The two beyond the cores started a sample apart at least.
        assert!(started.elapsed() >= SAMPLE, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn never_more_than_the_limit_and_places_come_back() {
        let a = Admission::with_source(2, idle);
        assert_eq!(a.limit(), 2);
        let t1 = a.admit().await;
        let t2 = tokio::time::timeout(Duration::from_secs(5), a.admit())
            .await
            .expect("a second place under the limit");
        let third = tokio::time::timeout(SAMPLE * 5, a.admit()).await;
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
