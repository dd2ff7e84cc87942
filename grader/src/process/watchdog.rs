//! A guard for the one ending the grader cannot handle itself: being killed outright (SIGKILL,
//! the OOM killer, a CI runner's hard timeout). A signal handler never runs then, so the student
//! programs in flight would live on.
//!
//! [`start`] starts a small guard process: the grader re-executes its own binary
//! (`/proc/self/exe`, hidden subcommand `grader guard`, empty environment) handing it two
//! descriptors: the read end of a pipe whose write end only the grader holds (close-on-exec, so
//! no student program inherits it), and a pidfd of the grader. The guard leaves the grader's
//! session (terminal signals do not reach it) and waits on both at once ([`wait_for_end`]): the
//! pipe reads end-of-file once every write end is closed, and the pidfd becomes readable when the
//! grader has ended, even if a copy of the write end were kept open somewhere. When the grader is
//! gone by any means, the guard kills what the grader left: every process in the grader's cgroups,
//! whose folders it removes in every hierarchy (pids, memory, cpu; see [`super::cgroup`]) and,
//! where there are no cgroups, every process whose HOME is a home the grader made (see
//! [`GraderId::home_prefix`]). Then it removes the temporary HOME and working folders the grader
//! left in TMPDIR ([`super::temp_folder`]), and exits. After a normal exit it finds nothing and
//! exits at once.
//!
//! The grader watches its guard in turn: a thread of its own waits on a pidfd of the guard (or,
//! where pidfds are unavailable, on the guard's exit status without reaping it) and starts a new
//! guard as soon as the old one has ended (killed by someone), printing a warning; and
//! [`ensure_guarded`], which every start of a student process calls first, checks that the guard
//! is alive (starting a new one if it is not) and refuses with [`GuardError`] when none can be
//! started. So no student process is started without a live guard, and a killed guard is
//! replaced within milliseconds; a grader killed in that short gap, right after its guard, still
//! leaves its students to the next grader's clean-up of stale cgroups.
//!
//! Everything the guard may act on is named with the grader's identity, a [`GraderId`] (see
//! [`super::grader_id`]: pid, start time, PID namespace and boot). The grader reads its own
//! identity from `/proc/self` whenever it names something; the guard is handed it on its command
//! line.
//!
//! Guarantees: the guard holds no descriptor of the grader's other than the pipe and the
//! grader's pidfd (its standard streams are /dev/null, so it never keeps a CI log pipe open), no
//! folder (it moves to `/`) and no environment (so nothing secret of the grader's); it only ever
//! signals processes found through the grader's own cgroups (named with its full identity) or
//! homes (a HOME named with its full home prefix), and only removes real folders (never a
//! symbolic link, never what one points to) in TMPDIR named with the grader's full prefix: a
//! folder of another grader, of a process that had the same pid before or in another PID
//! namespace, or named in the older pid-only way (`grader-cwd-<pid>-…`), is never touched; it
//! stops killing within [`CLEANUP_DEADLINE`] of the grader's end. In a grader that called
//! [`start`], a student process is started only while a guard lives ([`ensure_guarded`]).

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::{SigHandler, Signal, kill, signal};
use nix::unistd::Pid;

use super::cgroup;
use super::grader_id::GraderId;
use super::temp_folder::remove_temp_folders;

/// How long the guard keeps killing and removing what the grader left before it gives up.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(5);
/// Pause between cleanup rounds while killed processes are still being reaped.
const CLEANUP_ROUND: Duration = Duration::from_millis(20);

/// Why the grader has no guard (see [`ensure_guarded`]), or why `grader guard` refuses to run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    /// The grader could not read its own identity.
    #[error("cannot read the grader's own identity from /proc/self")]
    Identity(#[source] Arc<io::Error>),
    /// No guard process could be started.
    #[error(
        "cannot start the guard process that ends student programs should the grader be killed \
         (the grader runs its own binary, /proc/self/exe, as `grader guard`): {step}"
    )]
    Start {
        /// What failed: "cannot create its pipe", "cannot run it", ...
        step: &'static str,
        /// Why (shared: the error is kept and handed to every refused start).
        #[source]
        source: Arc<io::Error>,
    },
    /// `grader guard` was not started by a grader (by hand, or without its descriptors).
    #[error("`grader guard` is only started by the grader itself: {0}")]
    Usage(String),
}

impl GuardError {
    fn start(step: &'static str, source: io::Error) -> Self {
        GuardError::Start {
            step,
            source: Arc::new(source),
        }
    }
}

/// How long the thread that watches the guard waits before it tries again to start one, after
/// an attempt failed (every start of a student process also tries, see [`ensure_guarded`]).
const RESTART_RETRY: Duration = Duration::from_secs(1);

/// A guard process this grader started, and what the grader holds of it.
struct Guard {
    child: std::process::Child,
    /// A pidfd of the guard (readable once it has ended), where the kernel offers pidfds.
    pidfd: Option<OwnedFd>,
    /// The write end of the guard's pipe, held while the grader lives: its closing at the
    /// grader's end is one of the guard's two signals.
    _pipe: OwnedFd,
}

/// The grader's side: whom the guard guards, where the temporary folders are, and the current
/// guard or why there is none.
struct Keeper {
    grader: GraderId,
    tmp: PathBuf,
    current: Result<Guard, GuardError>,
}

/// Set by [`start`]: from then on student processes need a live guard.
static KEEPER: OnceLock<Mutex<Keeper>> = OnceLock::new();

/// Starts the guard, and a thread that starts a new one whenever the current one ends (see the
/// module comment); from then on every start of a student process needs a live guard
/// ([`ensure_guarded`]). Returns the guard's pid. Called again, it only checks the guard.
pub fn start() -> Result<u32, GuardError> {
    let grader = GraderId::current().map_err(|e| GuardError::Identity(Arc::new(e)))?;
    let mut first = false;
    let keeper = KEEPER.get_or_init(|| {
        first = true;
        // Where the grader's temporary folders go (tempfile's default); absolute, since the
        // guard moves to `/`.
        let tmp = std::env::temp_dir();
        let tmp = std::path::absolute(&tmp).unwrap_or(tmp);
        let current = Guard::spawn(&grader, &tmp);
        Mutex::new(Keeper {
            grader,
            tmp,
            current,
        })
    });
    if first {
        std::thread::Builder::new()
            .name("guard-keeper".into())
            .spawn(move || keep(keeper))
            .map_err(|e| GuardError::start("cannot start the thread that watches it", e))?;
    }
    let mut k = lock(keeper);
    k.replace_if_ended();
    k.current
        .as_ref()
        .map(|g| g.child.id())
        .map_err(Clone::clone)
}

/// Checks, before a student process is started, that a guard lives. In a grader that called
/// [`start`], a guard that has ended is replaced first, and the error says why none could be
/// started: the caller must not start the process then. Elsewhere (a library user, unit tests)
/// there is nothing to check.
pub fn ensure_guarded() -> Result<(), GuardError> {
    let Some(keeper) = KEEPER.get() else {
        return Ok(());
    };
    let mut k = lock(keeper);
    k.replace_if_ended();
    k.current.as_ref().map(|_| ()).map_err(Clone::clone)
}

fn lock(keeper: &Mutex<Keeper>) -> MutexGuard<'_, Keeper> {
    keeper.lock().unwrap_or_else(|e| e.into_inner())
}

/// The watching thread: waits until the current guard ends (or, without one, a moment), then
/// replaces it.
fn keep(keeper: &'static Mutex<Keeper>) {
    loop {
        let watched = match &lock(keeper).current {
            Ok(g) => match &g.pidfd {
                Some(fd) => fd.try_clone().map(Watch::Pidfd).unwrap_or(Watch::Nothing),
                None => Watch::Child(g.child.id()),
            },
            Err(_) => Watch::Nothing,
        };
        match watched {
            Watch::Pidfd(fd) => {
                if wait_readable(fd.as_fd()).is_err() {
                    std::thread::sleep(RESTART_RETRY);
                }
            }
            Watch::Child(pid) => {
                use nix::sys::wait::{Id, WaitPidFlag, waitid};
                // Waits for its end without reaping it (that is `replace_if_ended`'s).
                let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
                match waitid(Id::Pid(Pid::from_raw(pid as i32)), flags) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => std::thread::sleep(RESTART_RETRY),
                }
            }
            Watch::Nothing => std::thread::sleep(RESTART_RETRY),
        }
        lock(keeper).replace_if_ended();
    }
}

/// What the watching thread waits on.
enum Watch {
    Pidfd(OwnedFd),
    Child(u32),
    Nothing,
}

impl Keeper {
    /// Starts a new guard when there is none or the current one has ended (reaping it), and
    /// says so on stderr.
    fn replace_if_ended(&mut self) {
        let ended = match &mut self.current {
            Ok(g) => match g.child.try_wait() {
                Ok(None) => return,
                Ok(Some(status)) => Some((g.child.id(), status.to_string())),
                Err(e) => Some((g.child.id(), format!("its status is unknown: {e}"))),
            },
            Err(_) => None,
        };
        self.current = Guard::spawn(&self.grader, &self.tmp);
        let said = match (&ended, &self.current) {
            (Some((old, how)), Ok(new)) => format!(
                "warning: the grader's guard process {old} ended ({how}); started a new one (pid {})",
                new.child.id()
            ),
            (Some((old, how)), Err(e)) => format!(
                "warning: the grader's guard process {old} ended ({how}) and no new one can be \
                 started: {}; no student program is started until one runs",
                crate::error_chain::Chain(e)
            ),
            (None, Ok(new)) => format!(
                "note: the grader had no guard process; started one (pid {})",
                new.child.id()
            ),
            // Still none: said when it was lost.
            (None, Err(_)) => return,
        };
        use std::io::Write as _;
        let _ = writeln!(io::stderr().lock(), "{said}");
    }
}

impl Guard {
    /// Starts a guard for `grader`: this binary again, as `grader guard`, handed the read end of
    /// a new pipe and a pidfd of the grader (their numbers on its command line).
    fn spawn(grader: &GraderId, tmp: &Path) -> Result<Self, GuardError> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| GuardError::start("cannot create its pipe", e.into()))?;
        // Without pidfds (before Linux 5.3, or filtered) the pipe alone tells the grader's end.
        let grader_fd = pidfd_open(std::process::id()).ok();
        let mut cmd = std::process::Command::new("/proc/self/exe");
        cmd.arg0("grader")
            .arg("guard")
            .arg("--grader")
            .arg(grader.tag())
            .arg("--tmp")
            .arg(tmp)
            .arg("--pipe-fd")
            .arg(read.as_raw_fd().to_string());
        if let Some(fd) = &grader_fd {
            cmd.arg("--pidfd").arg(fd.as_raw_fd().to_string());
        }
        cmd.env_clear()
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let handed = [
            Some(read.as_raw_fd()),
            grader_fd.as_ref().map(|f| f.as_raw_fd()),
        ];
        // SAFETY: the closure runs in the forked child before exec and only calls fcntl on
        // descriptors that are open there (inherited from the fork).
        unsafe {
            cmd.pre_exec(move || {
                for fd in handed.into_iter().flatten() {
                    // Kept open across exec: the guard's own copies.
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| GuardError::start("cannot run it", e))?;
        // The grader keeps only the write end; `read` and `grader_fd` close here.
        let pidfd = pidfd_open(child.id()).ok();
        Ok(Self {
            child,
            pidfd,
            _pipe: write,
        })
    }
}

/// A pidfd of the process `pid` (close-on-exec): readable once the process has ended.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just created for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Blocks until `fd` is readable (or has an error or hang-up to report).
fn wait_readable(fd: BorrowedFd<'_>) -> io::Result<()> {
    loop {
        let mut p = [libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll reads and writes only the one entry of `p`.
        if unsafe { libc::poll(p.as_mut_ptr(), 1, -1) } >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The guard's life (`grader guard`, started by [`start`]): check what it was handed, detach,
/// wait for the grader's end ([`wait_for_end`]), clean up.
pub fn run_guard(
    grader: &str,
    tmp: &Path,
    pipe_fd: RawFd,
    pidfd: Option<RawFd>,
) -> Result<(), GuardError> {
    let grader = GraderId::from_tag(grader)
        .ok_or_else(|| GuardError::Usage(format!("{grader:?} is not a grader's identity")))?;
    if !tmp.is_absolute() {
        return Err(GuardError::Usage(format!(
            "the temporary folder {} is not an absolute path",
            tmp.display()
        )));
    }
    let pipe = handed(pipe_fd, true)?;
    let pidfd = pidfd.map(|fd| handed(fd, false)).transpose()?;
    let keep: Vec<RawFd> = std::iter::once(pipe.as_raw_fd())
        .chain(pidfd.as_ref().map(|f| f.as_raw_fd()))
        .collect();
    detach(&keep);
    wait_for_end(pipe.as_fd(), pidfd.as_ref().map(|f| f.as_fd()));
    clean_up(&grader);
    remove_temp_folders(tmp, &grader);
    Ok(())
}

/// Takes a descriptor the guard was handed, after checking that it is open (and a pipe, for
/// `pipe`) and not a standard stream.
fn handed(fd: RawFd, pipe: bool) -> Result<OwnedFd, GuardError> {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    if fd <= 2 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(GuardError::Usage(format!(
            "descriptor {fd} was not handed over"
        )));
    }
    // SAFETY: open (checked above), and nothing else in the guard uses this number.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let is_pipe =
        nix::sys::stat::fstat(&owned).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO);
    if pipe && !is_pipe {
        return Err(GuardError::Usage(format!("descriptor {fd} is not a pipe")));
    }
    Ok(owned)
}

/// Leaves the grader's session, folder, signals and streams: only `keep` stays open.
fn detach(keep: &[RawFd]) {
    let _ = nix::unistd::setsid();
    // Holds no folder of the grader's (a test's temporary folder, a mount).
    let _ = nix::unistd::chdir("/");
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGPIPE,
    ] {
        // SAFETY: installing SIG_IGN has no handler code to be unsafe.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    let _ = nix::sys::prctl::set_name(c"grader-guard");
    // Its own standard streams become /dev/null; every other descriptor is closed.
    if let Ok(null) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for target in 0..=2 {
            // SAFETY: dup2 onto the standard descriptors of this single-threaded process.
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
    }
    let open: Vec<i32> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in open {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing descriptors this process inherited and will never use.
            unsafe { libc::close(fd) };
        }
    }
}

/// Returns once the grader has ended: its pidfd (`grader`) is readable, or the pipe reads
/// end-of-file because every write end is closed (or either cannot be waited on any more). A
/// write end kept open elsewhere (leaked to another process) does not hide the end, as long as
/// there is a pidfd. Bytes on the pipe (the grader writes none) are read and ignored.
fn wait_for_end(pipe: BorrowedFd<'_>, grader: Option<BorrowedFd<'_>>) {
    loop {
        let mut fds = [
            libc::pollfd {
                fd: pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                // A negative descriptor is ignored by poll.
                fd: grader.map_or(-1, |g| g.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll reads and writes only the two entries of `fds`.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            let mut bytes = [0u8; 64];
            match nix::unistd::read(pipe, &mut bytes) {
                Ok(0) => return,
                Ok(_) | Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
                Err(_) => return,
            }
        }
        if fds[0].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return;
        }
    }
}

/// Kills what the grader `grader` left, retrying while killed processes are still being reaped.
fn clean_up(grader: &GraderId) {
    let deadline = Instant::now() + CLEANUP_DEADLINE;
    let prefix = grader.home_prefix();
    loop {
        let cgroups_left = cgroup::remove_owned_by(grader);
        let homed = with_home_prefix(&prefix);
        for &pid in &homed {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if (cgroups_left == 0 && homed.is_empty()) || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(CLEANUP_ROUND);
    }
}

/// Live processes whose HOME is a folder named with `prefix` (or inside one).
fn with_home_prefix(prefix: &str) -> Vec<i32> {
    let needle = format!("/{prefix}");
    super::procfs::all_processes()
        .into_iter()
        .filter(|p| p.state != 'Z' && p.state != 'X')
        .filter(|p| {
            // Under the process's uid where root lacks CAP_SYS_PTRACE (see `procfs::as_owner_of`).
            super::procfs::as_owner_of(p.pid, || fs::read(format!("/proc/{}/environ", p.pid)))
                .is_ok_and(|env| {
                    env.split(|b| *b == 0).any(|v| {
                        v.strip_prefix(b"HOME=")
                            .is_some_and(|home| contains(home, needle.as_bytes()))
                    })
                })
        })
        .map(|p| p.pid)
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> GraderId {
        GraderId::current().unwrap()
    }

    /// Runs [`wait_for_end`] on its own thread; the receiver gets the moment it returned.
    fn waiting(pipe: OwnedFd, pidfd: Option<OwnedFd>) -> std::sync::mpsc::Receiver<Instant> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            wait_for_end(pipe.as_fd(), pidfd.as_ref().map(|f| f.as_fd()));
            let _ = tx.send(Instant::now());
        });
        rx
    }

    #[test]
    fn the_end_is_seen_through_the_pidfd_while_a_write_end_stays_open() {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let Ok(pidfd) = pidfd_open(child.id()) else {
            let _ = child.kill();
            let _ = child.wait();
            crate::test_skips::skipped("", "no pidfds here");
            return;
        };
        let returned = waiting(read, Some(pidfd));
        let killed = Instant::now();
        child.kill().unwrap();
        let at = returned.recv_timeout(Duration::from_secs(10));
        child.wait().unwrap();
        let at = at.expect("still waiting 10 s after the process ended");
        assert!(at >= killed, "returned before the process ended");
        drop(write);
    }

    #[test]
    fn the_end_is_seen_through_the_pipe_without_a_pidfd() {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let returned = waiting(read, None);
        let closed = Instant::now();
        drop(write);
        let at = returned
            .recv_timeout(Duration::from_secs(10))
            .expect("still waiting 10 s after the write end closed");
        assert!(at >= closed, "returned before the write end closed");
    }

    #[test]
    fn only_processes_with_the_graders_home_are_found() {
        let id = me();
        let tmp = tempfile::tempdir().unwrap();
        let own = tmp.path().join(format!("{}own", id.home_prefix()));
        let old = tmp.path().join(format!("grader-home-{}-old", id.pid()));
        let reused = tmp.path().join(format!(
            "grader-home-{}-{}-{:08x}-x",
            id.pid(),
            id.start_time() + 1,
            id.scope()
        ));
        let start = |home: &Path| {
            std::process::Command::new("sleep")
                .arg("30")
                .env_clear()
                .env("HOME", home)
                .spawn()
                .unwrap()
        };
        let mut children = [start(&own), start(&old), start(&reused)];
        let pids: Vec<i32> = children.iter().map(|c| c.id() as i32).collect();
        let found = with_home_prefix(&id.home_prefix());
        for c in &mut children {
            let _ = c.kill();
            let _ = c.wait();
        }
        assert!(found.contains(&pids[0]), "{found:?} lacks {}", pids[0]);
        assert!(
            !found.contains(&pids[1]) && !found.contains(&pids[2]),
            "{found:?}"
        );
    }
}
