//! What a student process is confined to, set up between fork and exec: its own session, the
//! scenario's network namespace, a pids cgroup, and (as root) a minimal root of its own, an
//! unprivileged uid and no capabilities; in every mode a seccomp filter and no inherited
//! descriptors.
//!
//! Guarantees (each where the system allows it; see docs/security.md):
//! - **session**: the process starts a new session (`setsid`), so it has no controlling
//!   terminal: `/dev/tty` cannot be opened and no signal or input reaches the terminal that
//!   started the grader; [`seccomp`] refuses `TIOCSTI`/`TIOCLINUX` on any terminal besides;
//! - **descriptors**: every descriptor above 2 is closed at exec (`close_range` with
//!   `CLOSE_RANGE_CLOEXEC`), so nothing the grader holds or inherited (another client's
//!   pseudo-terminal, a CI runner's pipes) reaches the program;
//! - **network**: with a namespace descriptor the process joins the scenario's namespace before
//!   anything else runs, so every socket it ever creates lives there;
//! - **cgroup**: the process moves itself into its pids cgroup before exec, so it and everything
//!   it starts (also after `setsid` or a double fork) are members, and `pids.max` bounds them;
//! - **files** (when the grader is root with `CAP_SYS_ADMIN` and mounts allowed, see [`caps`], or
//!   in its own user namespace, see [`userns`]): private
//!   mount and IPC namespaces and a minimal root ([`rootfs`]): system folders read-only, its
//!   HOME and working folder read-write, private `/tmp`, `/run` and `/dev/shm`, its own `/proc`;
//!   the host's other files, Unix sockets, the grader's binary, the task files and the reports
//!   are not in it;
//! - **processes** (with the minimal root): a PID namespace of its own, entered by the thread that
//!   forks it ([`in_new_pid_namespace`]), so the forked child is the namespace's init (pid 1);
//!   after the mounts (whose `/proc` is then the namespace's) it forks the student program
//!   ([`Prepared::become_init`]) and stays as a small init: it reaps every process of the
//!   namespace, hands the program's wait status to the grader through a pipe
//!   ([`Prepared::take_status_reader`]) the moment the program ends, and exits once nothing is
//!   left in the namespace. The program sees no process but its own (and, with `hidepid`, not
//!   even the init, which is root's, or non-dumpable in the grader's user namespace); the
//!   grader keeps seeing host pids in the host's `/proc`;
//! - **identity** (when the grader is root, also without the capabilities for namespaces and
//!   mounts as long as it has `CAP_SETUID`, see [`caps`]): the process runs as the grading's unprivileged uid
//!   ([`user`]) with no supplementary groups, after the capability bounding set is emptied, and
//!   with `no_new_privs`: it cannot read root's mode-600 files, signal or trace the grader or
//!   another grading, undo the mounts, or regain privileges through a setuid binary. In the
//!   grader's user namespace the process keeps the grader's uid but loses every capability the
//!   same way; without either, the ambient set is cleared and `no_new_privs` is set.
//!
//! Everything here runs in the forked child, so [`Prepared::enter`] and
//! [`Prepared::drop_privileges`] only make system calls on data prepared beforehand: no
//! allocation, no locks.

pub mod caps;
pub mod rootfs;
pub mod seccomp;
pub mod user;
pub mod userns;

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::libc;
use nix::mount::{MsFlags, mount};
use nix::sched::CloneFlags;

pub use user::RunAs;

const PR_CAPBSET_DROP: libc::c_int = 24;
const PR_SET_NO_NEW_PRIVS: libc::c_int = 38;
const PR_CAP_AMBIENT: libc::c_int = 47;
const PR_CAP_AMBIENT_CLEAR_ALL: libc::c_ulong = 4;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 4;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Whether the grader runs as root (only then are uids, cgroups and the host's capabilities
/// ours to change).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether the grader may create namespaces and mounts for student code: as root with the
/// capabilities and permissions for them ([`caps::root_confinement`]), or in a user namespace
/// of its own ([`userns`]).
pub fn privileged() -> bool {
    caps::root_confinement() || userns::active()
}

/// Whether student code runs under a per-grading uid ([`user`]): as root with `CAP_SETUID`,
/// `CAP_SETGID` and `CAP_CHOWN`, also where namespaces and mounts are not allowed (Docker's
/// default capability set).
pub fn changes_uid() -> bool {
    caps::can_change_uid()
}

/// What the caller asks of the confinement.
#[derive(Debug)]
pub struct Request<'a> {
    /// A namespace descriptor to join (kept open by the caller until the process has started).
    pub netns: Option<RawFd>,
    /// The `cgroup.procs` file of the process's cgroup, open for writing.
    pub cgroup_procs: Option<OwnedFd>,
    /// Confine (minimal root, uid, no capabilities) as far as the grader's privileges allow.
    pub confine: bool,
    /// The identity to run as (root only).
    pub run_as: Option<RunAs>,
    /// What the minimal root shows (root only, with `confine`).
    pub root: Option<rootfs::Spec<'a>>,
}

/// The confinement of one student process, prepared in the parent.
#[derive(Debug, Default)]
pub struct Prepared {
    netns: Option<RawFd>,
    cgroup_procs: Option<OwnedFd>,
    /// The minimal root (root only).
    root: Option<rootfs::Plan>,
    /// Drop capabilities before exec.
    confine: bool,
    run_as: Option<RunAs>,
    seccomp: Option<&'static seccompiler::BpfProgram>,
    /// With a PID namespace: the pipe the namespace's init reports the program's wait status
    /// on (read end taken by the caller, write end used by the init).
    status_read: Option<OwnedFd>,
    status_write: Option<OwnedFd>,
}

impl Prepared {
    /// Prepares the confinement (see the module comment).
    pub fn new(req: Request<'_>) -> io::Result<Self> {
        let privileged = req.confine && privileged();
        let root = match (&req.root, privileged) {
            (Some(spec), true) => Some(rootfs::Plan::new(spec)?),
            _ => None,
        };
        // A PID namespace goes with the minimal root (whose fresh /proc shows it).
        let (status_read, status_write) = if root.is_some() {
            let (r, w) = status_pipe()?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        Ok(Self {
            netns: req.netns,
            cgroup_procs: req.cgroup_procs,
            root,
            status_read,
            status_write,
            confine: req.confine,
            run_as: req.run_as.filter(|_| req.confine && changes_uid()),
            seccomp: seccomp::program(),
        })
    }

    /// Whether the process gets a PID namespace of its own: then it must be forked by
    /// [`in_new_pid_namespace`], and its pre-exec code must call [`Prepared::become_init`].
    pub fn pid_namespace(&self) -> bool {
        self.status_write.is_some()
    }

    /// The read end of the pipe on which the namespace's init writes the program's raw wait
    /// status (4 bytes, native order; see [`decode_status`]) when it ends. End of file without
    /// them means the init itself was killed (SIGKILL, which ends the whole namespace).
    pub fn take_status_reader(&mut self) -> Option<OwnedFd> {
        self.status_read.take()
    }

    /// In the child, before exec: a new session, the cgroup and the network namespace, then the
    /// minimal root.
    pub fn enter(&self) -> io::Result<()> {
        nix::unistd::setsid()?;
        if let Some(fd) = &self.cgroup_procs {
            // "0" is the writing process itself.
            nix::unistd::write(fd, b"0")?;
        }
        if let Some(fd) = self.netns {
            // SAFETY: the caller keeps the namespace descriptor open until the child has started.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            nix::sched::setns(fd, CloneFlags::CLONE_NEWNET)?;
        }
        if let Some(root) = &self.root {
            nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC)?;
            // Nothing done here may propagate back to the grader's mounts.
            let none: Option<&CStr> = None;
            mount(
                none,
                c"/",
                none,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                none,
            )?;
            root.enter()?;
        }
        Ok(())
    }

    /// In the child, after [`Prepared::enter`], with a PID namespace: the child is the
    /// namespace's pid 1; it forks the student program, which returns from here (and goes on to
    /// exec), while the child itself never returns: it closes every descriptor but the status
    /// pipe's, drops its capabilities and blocks every signal, then reaps the processes of the
    /// namespace, writes the program's wait status to the pipe as soon as the program ends, and
    /// exits when no process is left. It does not forward signals: every signal the grader
    /// sends reaches the program directly (its process group, its cgroup's members), and pid 1
    /// ignores them all but SIGKILL, which ends the namespace. Without a PID namespace, nothing.
    pub fn become_init(&self) -> io::Result<()> {
        let Some(status) = &self.status_write else {
            return Ok(());
        };
        let status = status.as_raw_fd();
        // SAFETY: signal masks, clone (as fork, without the C library's fork handlers: only
        // system calls follow in both processes), close_range, capset, waitpid, write and _exit,
        // on values on this stack.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
            let program = libc::syscall(
                libc::SYS_clone,
                libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            );
            if program <= 0 {
                let e = io::Error::last_os_error();
                libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                return if program == 0 { Ok(()) } else { Err(e) };
            }
            init(program as libc::pid_t, status)
        }
    }

    /// In the child, last thing before exec: no capabilities, the unprivileged uid, no way to
    /// gain new privileges, the seccomp filter, and no descriptor above 2 across exec.
    pub fn drop_privileges(&self) -> io::Result<()> {
        // SAFETY: prctl, capset and close_range with plain integer arguments and structs we own.
        unsafe {
            libc::prctl(PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0);
            libc::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
            if self.confine && (privileged() || self.run_as.is_some()) {
                for cap in 0..64 as libc::c_ulong {
                    if libc::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
                        && *libc::__errno_location() == libc::EINVAL
                    {
                        break;
                    }
                }
                if let Some(who) = self.run_as {
                    // Groups first: after the uid change we could no longer drop them.
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setresgid(who.gid, who.gid, who.gid) != 0
                        || libc::setresuid(who.uid, who.uid, who.uid) != 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                }
                let mut header = CapHeader {
                    version: LINUX_CAPABILITY_VERSION_3,
                    pid: 0,
                };
                let data = [CapData {
                    effective: 0,
                    permitted: 0,
                    inheritable: 0,
                }; 2];
                libc::syscall(
                    libc::SYS_capset,
                    &mut header as *mut CapHeader,
                    data.as_ptr(),
                );
            }
            if libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            ) != 0
            {
                // Before Linux 5.11: mark them one by one (bounded by the descriptor limit).
                let mut limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
                for fd in 3..(limit.rlim_cur.min(65_536) as libc::c_int) {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
        }
        if let Some(program) = self.seccomp {
            seccomp::install(program)?;
        }
        Ok(())
    }
}

/// A close-on-exec pipe whose write end is above the standard descriptors (the child's stdio
/// is set up on 0 to 2 before the init takes over).
fn status_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    if w.as_raw_fd() > 2 {
        return Ok((r, w));
    }
    let high = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: fcntl just returned this new descriptor, owned by nobody else.
    Ok((r, unsafe {
        <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(high)
    }))
}

/// The init of a student program's PID namespace (see [`Prepared::become_init`]); never returns.
///
/// # Safety
/// Only in the forked child, with every signal blocked; `status` is the status pipe's write end.
unsafe fn init(program: libc::pid_t, status: RawFd) -> ! {
    // SAFETY (whole body): plain system calls on integers and values on this stack.
    unsafe {
        // Nothing of the grader's stays open here (the student's stdio included, so its end of
        // file is seen when the program's processes close theirs).
        if libc::syscall(
            libc::SYS_close_range,
            0 as libc::c_uint,
            (status - 1) as libc::c_uint,
            0,
        ) != 0
            || libc::syscall(
                libc::SYS_close_range,
                (status + 1) as libc::c_uint,
                libc::c_uint::MAX,
                0,
            ) != 0
        {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            for fd in 0..(limit.rlim_cur.min(65_536) as libc::c_int) {
                if fd != status {
                    libc::close(fd);
                }
            }
        }
        let mut header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let none = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            none.as_ptr(),
        );
        let mut code = 0;
        loop {
            let mut st: libc::c_int = 0;
            let pid = libc::waitpid(-1, &mut st, 0);
            if pid == program {
                let bytes = st.to_ne_bytes();
                libc::write(status, bytes.as_ptr().cast(), bytes.len());
                libc::close(status);
                code = if libc::WIFEXITED(st) {
                    libc::WEXITSTATUS(st)
                } else {
                    128 + libc::WTERMSIG(st)
                };
            } else if pid < 0 && *libc::__errno_location() != libc::EINTR {
                // ECHILD: nothing is left in the namespace.
                libc::_exit(code);
            }
        }
    }
}

/// How a process ended, from a raw wait status: `(exit status, signal)`.
pub fn decode_status(status: i32) -> (Option<i32>, Option<i32>) {
    if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    }
}

/// Runs `spawn` (which forks the student process) on a thread of its own that first enters a new
/// PID namespace for its children (`unshare(CLONE_NEWPID)` changes only the calling thread's
/// namespace for children), so the forked process is that namespace's pid 1 while the grader's
/// own threads stay untouched; the thread ends right after. Inside a tokio runtime the thread
/// enters it, so tokio can watch the child.
pub fn in_new_pid_namespace<T: Send>(
    spawn: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    let runtime = tokio::runtime::Handle::try_current().ok();
    std::thread::scope(|s| {
        s.spawn(move || {
            let _inside = runtime.as_ref().map(|r| r.enter());
            nix::sched::unshare(CloneFlags::CLONE_NEWPID)?;
            spawn()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the thread starting the program panicked")))
    })
}

/// The grader's own binary (what `grader reference` runs): no submission may be it.
pub fn grader_exe() -> Vec<PathBuf> {
    std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map(|e| vec![e])
        .unwrap_or_default()
}

/// Files student code must never read or run: the grader's own binary and the bundled reference
/// binaries beside it (they hold the task files, and `grader reference` plays a model solution).
pub fn grader_binaries() -> Vec<PathBuf> {
    let Ok(exe) = std::env::current_exe().and_then(std::fs::canonicalize) else {
        return Vec::new();
    };
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut files = vec![exe];
    files.extend(
        [
            "grader",
            "classchat-task1",
            "classchat-task2",
            "classchat-task3",
            "classchat-task4",
        ]
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file()),
    );
    files.sort();
    files.dedup();
    files
}
