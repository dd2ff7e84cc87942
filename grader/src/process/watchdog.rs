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
//! whose folders it removes in every hierarchy (pids, memory, cpu; see [`super::cgroup`]) and, where there are no cgroups, every process whose HOME is a
//! home the grader made (see [`home_prefix`]). Then it removes the temporary HOME and working
//! folders the grader left in TMPDIR (see [`home_prefix`] and [`cwd_prefix`]), and exits. After a
//! normal exit it finds nothing and exits at once.
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
//! Everything the guard may act on is named with the grader's identity, a [`GraderId`]: its pid,
//! its start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`; with the pid it
//! identifies a process within a boot, so a reused pid is another identity) and a tag of its PID
//! namespace and boot (so a grader with the same pid in another container or VM that shares
//! TMPDIR or the cgroup hierarchy is another identity too). The grader reads its own identity
//! from `/proc/self` whenever it names something; the guard is handed it on its command line.
//! Names are `grader-home-<pid>-<start>-<scope>-…`, `grader-cwd-<pid>-<start>-<scope>-…`
//! and, for cgroups, `grader-<pid>-<start>-<scope>-…` (`<scope>`: 8 hex digits).
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
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::{SigHandler, Signal, kill, signal};
use nix::unistd::Pid;

use super::cgroup;

/// How long the guard keeps killing and removing what the grader left before it gives up.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(5);
/// Pause between cleanup rounds while killed processes are still being reaped.
const CLEANUP_ROUND: Duration = Duration::from_millis(20);

/// Who a grader process is, as written into the names of what it creates (see the module
/// comment): pid, start time and the scope (PID namespace and boot) the pid belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraderId {
    pid: u32,
    start: u64,
    scope: u32,
}

impl GraderId {
    /// The calling process's identity.
    pub fn current() -> io::Result<Self> {
        let stat = fs::read_to_string("/proc/self/stat")
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read /proc/self/stat: {e}")))?;
        let (_, start) = parse_stat(&stat).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "no start time in /proc/self/stat",
            )
        })?;
        Ok(Self {
            pid: std::process::id(),
            start,
            scope: scope(),
        })
    }

    /// The identity of the live (not zombie) process `pid` of the caller's PID namespace.
    pub fn of(pid: u32) -> Option<Self> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (state, start) = parse_stat(&stat)?;
        (state != 'Z' && state != 'X').then(|| Self {
            pid,
            start,
            scope: scope(),
        })
    }

    /// The process id (in the grader's own PID namespace).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `<pid>-<start>-<scope>`, the part of a name that says whose it is.
    pub fn tag(&self) -> String {
        format!("{}-{}-{:08x}", self.pid, self.start, self.scope)
    }

    /// Reads a [`tag`](Self::tag) at the start of `name`, followed by `-`: the identity and what
    /// follows the `-`. Only the exact form [`tag`](Self::tag) writes is accepted (no leading
    /// zeros or signs, the scope in 8 lower-case hex digits).
    pub fn parse_tag(name: &str) -> Option<(Self, &str)> {
        let mut parts = name.splitn(4, '-');
        let (pid, start, scope, rest) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let id = Self {
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
            scope: u32::from_str_radix(scope, 16).ok()?,
        };
        (id.tag() == format!("{pid}-{start}-{scope}")).then_some((id, rest))
    }

    /// Reads a whole [`tag`](Self::tag) (as [`parse_tag`](Self::parse_tag) reads one at the
    /// start of a name).
    pub fn from_tag(tag: &str) -> Option<Self> {
        match Self::parse_tag(&format!("{tag}-"))? {
            (id, "") => Some(id),
            _ => None,
        }
    }

    /// Whether the process is still running: `Some` for an identity of the caller's own PID
    /// namespace and boot, `None` for another scope's, whose processes the caller cannot see.
    pub fn is_alive(&self) -> Option<bool> {
        (self.scope == scope()).then(|| Self::of(self.pid) == Some(*self))
    }

    /// The prefix of the temporary HOME folders this grader gives student programs.
    pub fn home_prefix(&self) -> String {
        format!("grader-home-{}-", self.tag())
    }

    /// The prefix of the temporary working folders this grader gives student programs (those
    /// not started in their own submission folder), and of the copies builds run in.
    pub fn cwd_prefix(&self) -> String {
        format!("grader-cwd-{}-", self.tag())
    }

    /// Whether `name` (of an entry in TMPDIR) is named as one of this grader's temporary HOME or
    /// working folders.
    fn names_temp_folder(&self, name: &str) -> bool {
        [self.home_prefix(), self.cwd_prefix()]
            .iter()
            .any(|p| name.len() > p.len() && name.starts_with(p.as_str()))
    }
}

/// The state and the start time (fields 3 and 22) of a `/proc/<pid>/stat` text.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    // The command name is in parentheses and may itself hold spaces or parentheses.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 (state) was the first; the start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The caller's PID namespace and boot, as 32 bits: a hash of the namespace's id and the
/// kernel's boot id (each left out if it cannot be read). Pids and start times of processes in
/// other PID namespaces (containers) or other kernels (VMs sharing a folder) may coincide with
/// ours; their scopes almost never do.
fn scope() -> u32 {
    let ns = fs::read_link("/proc/self/ns/pid").unwrap_or_default();
    let boot = fs::read("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    // FNV-1a: stable across builds and versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in ns
        .as_os_str()
        .as_bytes()
        .iter()
        .chain(b"\n")
        .chain(boot.trim_ascii())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

/// The prefix of the temporary HOME folders the calling grader gives student programs
/// ([`GraderId::home_prefix`] of [`GraderId::current`]).
pub fn home_prefix() -> io::Result<String> {
    Ok(GraderId::current()?.home_prefix())
}

/// The prefix of the temporary working folders the calling grader gives student programs and
/// builds ([`GraderId::cwd_prefix`] of [`GraderId::current`]).
pub fn cwd_prefix() -> io::Result<String> {
    Ok(GraderId::current()?.cwd_prefix())
}

/// Why the grader has no guard (see [`ensure_guarded`]), or why `grader guard` refuses to run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    /// The grader could not read its own identity.
    #[error("cannot read the grader's own identity from /proc/self: {0}")]
    Identity(String),
    /// No guard process could be started.
    #[error(
        "cannot start the guard process that ends student programs should the grader be killed \
         (the grader runs its own binary, /proc/self/exe, as `grader guard`): {0}"
    )]
    Start(String),
    /// `grader guard` was not started by a grader (by hand, or without its descriptors).
    #[error("`grader guard` is only started by the grader itself: {0}")]
    Usage(String),
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
    let grader = GraderId::current().map_err(|e| GuardError::Identity(e.to_string()))?;
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
            .map_err(|e| {
                GuardError::Start(format!("cannot start the thread that watches it: {e}"))
            })?;
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
                 started: {e}; no student program is started until one runs"
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
            .map_err(|e| GuardError::Start(format!("cannot create its pipe: {e}")))?;
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
        let child = cmd.spawn().map_err(|e| GuardError::Start(e.to_string()))?;
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

/// Removes the temporary HOME and working folders the grader `grader` left in `tmp` (a grader
/// that ends normally has removed its own; one killed outright cannot). Only real folders
/// (never a symbolic link) named with that grader's full prefix are touched; what cannot be
/// removed stays.
fn remove_temp_folders(tmp: &Path, grader: &GraderId) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| grader.names_temp_folder(n)) {
            continue;
        }
        if fs::symlink_metadata(entry.path()).is_ok_and(|m| m.file_type().is_dir()) {
            // Never follows symbolic links, neither this path nor inside it.
            let _ = remove_tree(&entry.path());
        }
    }
}

/// A temporary folder (a HOME, a working folder, a build's copy) removed with [`remove_tree`]
/// when dropped, so a subfolder its program left without write permission (`chmod 000`, Go's
/// read-only module cache) does not keep it in TMPDIR, as it would `tempfile::TempDir`'s.
#[derive(Debug)]
pub struct TempFolder(PathBuf);

impl TempFolder {
    /// A new, empty folder in TMPDIR whose name starts with `prefix`.
    pub fn new(prefix: &str) -> io::Result<Self> {
        Ok(tempfile::Builder::new().prefix(prefix).tempdir()?.into())
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl From<tempfile::TempDir> for TempFolder {
    fn from(dir: tempfile::TempDir) -> Self {
        Self(dir.keep())
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = remove_tree(&self.0);
    }
}

/// Removes `path` and everything in it, also what its owner made unwritable: every real folder
/// in it that the caller owns first gets the owner's rwx. Nothing is ever followed through a
/// symbolic link and no link's target is changed: a link (`path` itself included) is removed as
/// a link; each folder is opened without following links (`O_NOFOLLOW`) and changed, listed and
/// emptied through that descriptor only. What cannot be removed stays; the first error is
/// returned. A missing `path` is no error.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if !m.file_type().is_dir() => fs::remove_file(path),
        Ok(_) => {
            let emptied = empty_folder(nix::fcntl::AT_FDCWD, path.as_os_str());
            // rmdir never follows a link.
            let removed = fs::remove_dir(path);
            emptied.and(removed)
        }
    }
}

/// Gives the folder `name` (in `parent`) the owner's rwx if the caller owns it, then removes
/// everything in it; never through a symbolic link.
fn empty_folder(parent: impl AsFd, name: &std::ffi::OsStr) -> io::Result<()> {
    use nix::fcntl::{OFlag, openat};
    use nix::unistd::{UnlinkatFlags, unlinkat};
    // O_PATH needs no permission on the folder; O_NOFOLLOW | O_DIRECTORY refuse a link.
    let dir = openat(
        parent,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // The descriptor's /proc link reaches exactly the folder opened, never a link.
    let itself = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let st = nix::sys::stat::fstat(&dir)?;
    let mode = st.st_mode & 0o7777;
    if st.st_uid == nix::unistd::geteuid().as_raw() && mode & 0o700 != 0o700 {
        fs::set_permissions(&itself, fs::Permissions::from_mode(mode | 0o700))?;
    }
    let mut first_error = None;
    for entry in fs::read_dir(&itself)? {
        let result = entry.and_then(|entry| {
            let name = entry.file_name();
            // The entry's own type (d_type or lstat): a link is not a folder.
            if entry.file_type()?.is_dir() {
                let emptied = empty_folder(&dir, &name);
                let removed = unlinkat(&dir, name.as_os_str(), UnlinkatFlags::RemoveDir);
                emptied.and(removed.map_err(io::Error::from))
            } else {
                unlinkat(&dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir)
                    .map_err(io::Error::from)
            }
        });
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
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

    #[test]
    fn the_identity_is_the_processs_own_and_stays_the_same() {
        let id = me();
        assert_eq!(id.pid(), std::process::id());
        assert_eq!(GraderId::current().unwrap(), id);
        assert_eq!(GraderId::of(id.pid), Some(id));
        // A new thread reads the same process's /proc/self.
        let from_thread = std::thread::spawn(|| GraderId::current().unwrap())
            .join()
            .unwrap();
        assert_eq!(from_thread, id);
        let stat = fs::read_to_string("/proc/self/stat").unwrap();
        let field22: u64 = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .nth(19)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(id.start, field22);
        assert_eq!(
            id.tag(),
            format!("{}-{}-{:08x}", std::process::id(), field22, id.scope)
        );
    }

    #[test]
    fn the_start_time_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (a b) (c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 98765 1000 \
                    200 18446744073709551615";
        assert_eq!(parse_stat(stat), Some(('S', 98765)));
        assert_eq!(parse_stat("42 (x) S 1 2"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn tags_read_back_exactly() {
        let id = GraderId {
            pid: 1234,
            start: 567_890,
            scope: 0x0a0b_0c0d,
        };
        assert_eq!(id.tag(), "1234-567890-0a0b0c0d");
        assert_eq!(
            GraderId::parse_tag("1234-567890-0a0b0c0d-home_x-y"),
            Some((id, "home_x-y"))
        );
        for other in [
            "1234-567890-0a0b0c0d",  // nothing after the tag
            "1234-grader_home_1234", // the older pid-only naming
            "01234-567890-0a0b0c0d-x",
            "+1234-567890-0a0b0c0d-x",
            "1234-0567890-0a0b0c0d-x",
            "1234-567890-a0b0c0d-x",
            "1234-567890-+a0b0c0d-x",
            "1234-567890-0A0B0C0D-x",
            "1234-567890-00a0b0c0d-x",
            "1234--567890-0a0b0c0d-x",
            "-1234-567890-0a0b0c0d-x",
        ] {
            assert_eq!(GraderId::parse_tag(other), None, "{other}");
        }
    }

    #[test]
    fn a_whole_tag_reads_back() {
        let id = me();
        assert_eq!(GraderId::from_tag(&id.tag()), Some(id));
        for other in [
            "",
            "1234-567890",
            "1234-567890-0a0b0c0d-x",
            "1234-567890-0a0b0c0d-",
        ] {
            assert_eq!(GraderId::from_tag(other), None, "{other}");
        }
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
    fn only_a_live_process_of_the_same_scope_is_alive() {
        let id = me();
        assert_eq!(id.is_alive(), Some(true));
        // The same pid started at another time: a reused pid.
        for start in [id.start + 1, id.start * 10, id.start / 10] {
            assert_eq!(GraderId { start, ..id }.is_alive(), Some(false));
        }
        // The same pid and start time in another PID namespace or boot: unknown, never dead.
        let foreign = GraderId {
            scope: id.scope ^ 1,
            ..id
        };
        assert_eq!(foreign.is_alive(), None);
        // A process that has ended.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let child_id = GraderId::of(pid);
        child.wait().unwrap();
        if let Some(child_id) = child_id {
            assert_eq!(child_id.is_alive(), Some(false));
        }
    }

    #[test]
    fn only_names_with_the_graders_full_prefix_are_its_temp_folders() {
        let id = me();
        let (pid, start, tag) = (id.pid, id.start, id.tag());
        assert!(id.names_temp_folder(&format!("grader-home-{tag}-Ab3dE9")));
        assert!(id.names_temp_folder(&format!("grader-cwd-{tag}-Ab3dE9")));
        assert!(id.names_temp_folder(&format!("{}x", id.home_prefix())));
        let scope = format!("{:08x}", id.scope);
        let other_scope = format!("{:08x}", id.scope ^ 0x8000_0000);
        for other in [
            // The older pid-only naming, and a hand-made folder named like it.
            format!("grader-cwd-{pid}-mine"),
            format!("grader-home-{pid}-Ab3dE9"),
            // Another pid whose digits start with ours.
            format!("grader-cwd-{pid}0-{start}-{scope}-Ab3dE9"),
            format!("grader-home-{pid}0-{start}-{scope}-Ab3dE9"),
            // Our pid, another start time (a reused pid).
            format!("grader-cwd-{pid}-{}-{scope}-Ab3dE9", start + 1),
            format!("grader-cwd-{pid}-{start}0-{scope}-Ab3dE9"),
            // Our pid and start time in another PID namespace or boot.
            format!("grader-cwd-{pid}-{start}-{other_scope}-Ab3dE9"),
            format!("grader-home-{pid}-{start}-{scope}0-Ab3dE9"),
            // The bare prefix, other kinds of name, a pids cgroup's name.
            id.home_prefix(),
            id.cwd_prefix(),
            format!("grader-homes-{tag}-Ab3dE9"),
            format!("x-grader-cwd-{tag}-Ab3dE9"),
            format!("grader-{tag}-grader_home_Ab3dE9"),
            format!("{tag}-Ab3dE9"),
        ] {
            assert!(!id.names_temp_folder(&other), "{other}");
        }
    }

    #[test]
    fn only_the_graders_own_real_folders_are_removed() {
        let id = me();
        let tmp = tempfile::tempdir().unwrap();
        let keep = tempfile::tempdir().unwrap();
        let precious = keep.path().join("precious");
        fs::write(&precious, "must survive").unwrap();
        let t = tmp.path();
        let home = t.join(format!("{}own1", id.home_prefix()));
        let cwd = t.join(format!("{}own2", id.cwd_prefix()));
        for own in [&home, &cwd] {
            fs::create_dir_all(own.join("sub")).unwrap();
            fs::write(own.join("sub/file"), "x").unwrap();
            // A link inside one of ours is removed as a link, never followed.
            std::os::unix::fs::symlink(keep.path(), own.join("sub/link")).unwrap();
        }
        let pid = id.pid;
        let scope = format!("{:08x}", id.scope);
        let decoys = [
            format!("grader-cwd-{pid}-mine"),
            format!("grader-home-{pid}-mine"),
            format!("grader-cwd-{pid}0-{}-{scope}-x", id.start),
            format!("grader-cwd-{pid}-{}-{scope}-x", id.start + 1),
            format!("grader-cwd-{pid}-{}-{:08x}-x", id.start, id.scope ^ 1),
        ];
        for d in &decoys {
            fs::create_dir(t.join(d)).unwrap();
        }
        // Named with our full prefix, but a link (to a folder that must survive) and a file.
        let link = t.join(format!("{}link", id.cwd_prefix()));
        std::os::unix::fs::symlink(keep.path(), &link).unwrap();
        let file = t.join(format!("{}file", id.home_prefix()));
        fs::write(&file, "not a folder").unwrap();

        remove_temp_folders(t, &id);

        assert!(!home.exists() && !cwd.exists());
        for d in &decoys {
            assert!(t.join(d).is_dir(), "{d} was removed");
        }
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(file.is_file());
        assert_eq!(fs::read_to_string(&precious).unwrap(), "must survive");
    }

    #[test]
    fn a_tree_is_removed_with_its_locked_folders_but_never_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let kept = outside.path().join("kept");
        fs::create_dir(&kept).unwrap();
        fs::write(kept.join("file"), "must survive").unwrap();
        fs::set_permissions(&kept, fs::Permissions::from_mode(0o500)).unwrap();
        let root = tmp.path().join("tree");
        fs::create_dir_all(root.join("locked/inner/deeper")).unwrap();
        fs::write(root.join("locked/inner/file"), "x").unwrap();
        std::os::unix::fs::symlink(&kept, root.join("locked/inner/link")).unwrap();
        std::os::unix::fs::symlink(&kept, root.join("link")).unwrap();
        fs::set_permissions(root.join("locked/inner"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        let folder = TempFolder::from(tempfile::tempdir_in(tmp.path()).unwrap());
        let locked = folder.path().join("locked");
        fs::create_dir(&locked).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        let folder_path = folder.path().to_path_buf();

        remove_tree(&root).unwrap();
        drop(folder);

        assert!(!root.exists() && !folder_path.exists());
        let mode = fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o500, "a link's target was changed");
        assert_eq!(
            fs::read_to_string(kept.join("file")).unwrap(),
            "must survive"
        );
        // A link given itself is removed as a link; a missing path is no error.
        let link = tmp.path().join("top-link");
        std::os::unix::fs::symlink(&kept, &link).unwrap();
        remove_tree(&link).unwrap();
        assert!(fs::symlink_metadata(&link).is_err() && kept.join("file").exists());
        remove_tree(&tmp.path().join("missing")).unwrap();
        fs::set_permissions(&kept, fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn only_processes_with_the_graders_home_are_found() {
        let id = me();
        let tmp = tempfile::tempdir().unwrap();
        let own = tmp.path().join(format!("{}own", id.home_prefix()));
        let old = tmp.path().join(format!("grader-home-{}-old", id.pid));
        let reused = tmp.path().join(format!(
            "grader-home-{}-{}-{:08x}-x",
            id.pid,
            id.start + 1,
            id.scope
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
