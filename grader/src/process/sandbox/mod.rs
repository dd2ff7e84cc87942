//! What a student process is confined to, set up between fork and exec: its own session, the
//! scenario's network namespace, a pids cgroup, and (as root) a minimal root of its own, an
//! unprivileged uid and no capabilities; in every mode a seccomp filter and no inherited
//! descriptors.
//!
//! Guarantees (each where the system allows it; see README's security model):
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
//! - **files** (when the grader is root): private mount and IPC namespaces and a minimal root
//!   ([`rootfs`]): system folders read-only, its HOME and working folder read-write, private
//!   `/tmp`, `/run` and `/dev/shm`, its own `/proc`; the host's other files, Unix sockets, the
//!   grader's binary, the task files and the reports are not in it;
//! - **identity** (when the grader is root): the process runs as the grading's unprivileged uid
//!   ([`user`]) with no supplementary groups, after the capability bounding set is emptied, and
//!   with `no_new_privs`: it cannot read root's mode-600 files, signal or trace the grader or
//!   another grading, undo the mounts, or regain privileges through a setuid binary. Without a
//!   uid (a grader that is not root) the ambient set is cleared and `no_new_privs` is set.
//!
//! Everything here runs in the forked child, so [`Prepared::enter`] and
//! [`Prepared::drop_privileges`] only make system calls on data prepared beforehand: no
//! allocation, no locks.

pub mod rootfs;
pub mod seccomp;
pub mod user;

use std::ffi::CStr;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
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

/// Whether the grader runs as root (only then are mounts, uids and capabilities ours to change).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
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
}

impl Prepared {
    /// Prepares the confinement (see the module comment).
    pub fn new(req: Request<'_>) -> io::Result<Self> {
        let privileged = req.confine && is_root();
        let root = match (&req.root, privileged) {
            (Some(spec), true) => Some(rootfs::Plan::new(spec)?),
            _ => None,
        };
        Ok(Self {
            netns: req.netns,
            cgroup_procs: req.cgroup_procs,
            root,
            confine: req.confine,
            run_as: req.run_as.filter(|_| privileged),
            seccomp: seccomp::program(),
        })
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

    /// In the child, last thing before exec: no capabilities, the unprivileged uid, no way to
    /// gain new privileges, the seccomp filter, and no descriptor above 2 across exec.
    pub fn drop_privileges(&self) -> io::Result<()> {
        // SAFETY: prctl, capset and close_range with plain integer arguments and structs we own.
        unsafe {
            libc::prctl(PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0);
            libc::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
            if self.confine && is_root() {
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
