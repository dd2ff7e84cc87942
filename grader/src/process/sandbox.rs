//! What a student process is confined to, set up between fork and exec: the scenario's network
//! namespace, a pids cgroup, a read-only view of the file system, and no capabilities.
//!
//! Guarantees (each where the system allows it; see README's security model):
//! - **network**: with a namespace descriptor the process joins the scenario's namespace before
//!   anything else runs, so every socket it ever creates lives there;
//! - **cgroup**: the process moves itself into its pids cgroup before exec, so it and everything
//!   it starts (also after `setsid` or a double fork) are members, and `pids.max` bounds them;
//! - **files** (when the grader is root): a private mount namespace in which every mount is
//!   read-only except the process's HOME, its working folder and `/dev/shm`: it cannot write the
//!   grader's reports, the folder above its own, the submission folder of another student, or
//!   anything else; and an empty read-only folder hides each of the folders it must not even
//!   read (the task files with hidden scenarios' expected values, the reports), unless one holds
//!   its own HOME, working folder or program;
//! - **privileges**: the capability bounding set, ambient and inheritable sets are emptied and
//!   `no_new_privs` is set, so a program run as root keeps uid 0 but loses every capability (it
//!   cannot undo the mounts, leave the namespace, or regain privileges through a setuid binary).
//!
//! Everything here runs in the forked child, so [`Prepared::enter`] and
//! [`Prepared::drop_privileges`] only make system calls on data prepared beforehand: no
//! allocation, no locks.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::libc;
use nix::mount::{MsFlags, mount};
use nix::sched::CloneFlags;

const PR_CAPBSET_DROP: libc::c_int = 24;
const PR_SET_NO_NEW_PRIVS: libc::c_int = 38;
const PR_CAP_AMBIENT: libc::c_int = 47;
const PR_CAP_AMBIENT_CLEAR_ALL: libc::c_ulong = 4;
const MOUNT_ATTR_RDONLY: u64 = 1;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

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

/// Whether the grader runs as root (only then are mounts and capabilities ours to change).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The confinement of one student process, prepared in the parent.
#[derive(Debug, Default)]
pub struct Prepared {
    netns: Option<RawFd>,
    cgroup_procs: Option<OwnedFd>,
    /// Paths kept writable (mount points of their own) when the file system is made read-only;
    /// `None`: no file-system confinement.
    writable: Option<Vec<CString>>,
    /// Drop capabilities before exec.
    confine: bool,
    /// The working folder, entered again after the mounts (the one `chdir` before the mounts
    /// points into the now read-only mount underneath).
    cwd: Option<CString>,
    /// Folders covered by an empty read-only tmpfs (only with `writable`).
    hidden: Vec<CString>,
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

impl Prepared {
    /// Prepares the confinement. `netns`: a namespace descriptor to join (kept open by the caller
    /// until the process has started); `cgroup_procs`: the `cgroup.procs` file of the process's
    /// cgroup, open for writing; `confine`: make the file system read-only except `writable`
    /// (only when the grader is root) and drop all privileges; `cwd`: the working folder;
    /// `hidden`: folders to cover when confining, except those holding a path of `keep`, of
    /// `writable` or `cwd`.
    pub fn new(
        netns: Option<RawFd>,
        cgroup_procs: Option<OwnedFd>,
        confine: bool,
        writable: &[PathBuf],
        cwd: &Path,
        hidden: &[PathBuf],
        keep: &[PathBuf],
    ) -> io::Result<Self> {
        // What the program needs to see stays visible: a hidden folder holding one of these
        // is not covered.
        let needed: Vec<PathBuf> = writable
            .iter()
            .chain(keep)
            .chain(std::iter::once(&cwd.to_path_buf()))
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect();
        let writable = if confine && is_root() {
            let mut paths: Vec<CString> = Vec::new();
            for p in writable.iter().filter(|p| p.is_dir()) {
                paths.push(cstring(&std::fs::canonicalize(p)?)?);
            }
            Some(paths)
        } else {
            None
        };
        let mut covered = Vec::new();
        if writable.is_some() {
            for h in hidden.iter().filter_map(|h| std::fs::canonicalize(h).ok()) {
                if h.is_dir() && h != Path::new("/") && !needed.iter().any(|n| n.starts_with(&h)) {
                    covered.push(cstring(&h)?);
                }
            }
        }
        Ok(Self {
            hidden: covered,
            netns,
            cgroup_procs,
            cwd: writable
                .is_some()
                .then(|| cstring(&std::fs::canonicalize(cwd)?))
                .transpose()?,
            writable,
            confine,
        })
    }

    /// In the child, before exec: joins the cgroup and the network namespace, then confines the
    /// file system.
    pub fn enter(&self) -> io::Result<()> {
        if let Some(fd) = &self.cgroup_procs {
            // "0" is the writing process itself.
            nix::unistd::write(fd, b"0")?;
        }
        if let Some(fd) = self.netns {
            // SAFETY: the caller keeps the namespace descriptor open until the child has started.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            nix::sched::setns(fd, CloneFlags::CLONE_NEWNET)?;
        }
        if let Some(writable) = &self.writable {
            read_only_except(writable, &self.hidden)?;
            if let Some(cwd) = &self.cwd {
                nix::unistd::chdir(cwd.as_c_str())?;
            }
        }
        Ok(())
    }

    /// In the child, last thing before exec: no capabilities, no way to gain new privileges.
    /// Errors are ignored: an unprivileged grader has nothing to drop.
    pub fn drop_privileges(&self) {
        // SAFETY: prctl and capset with plain integer arguments and structs we own.
        unsafe {
            libc::prctl(PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0);
            libc::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
            if !self.confine {
                return;
            }
            for cap in 0..64 as libc::c_ulong {
                if libc::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
                    && *libc::__errno_location() == libc::EINVAL
                {
                    break;
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
    }
}

/// A private mount namespace with every mount read-only except `writable`, and an empty
/// read-only tmpfs over each of `hidden`.
fn read_only_except(writable: &[CString], hidden: &[CString]) -> io::Result<()> {
    let none: Option<&CStr> = None;
    nix::sched::unshare(CloneFlags::CLONE_NEWNS)?;
    // Nothing done here may propagate back to the grader's mounts.
    mount(
        none,
        c"/",
        none,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        none,
    )?;
    for p in writable {
        mount(
            Some(p.as_c_str()),
            p.as_c_str(),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )?;
    }
    for p in hidden {
        mount(
            Some(c"tmpfs"),
            p.as_c_str(),
            Some(c"tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(c"size=4k,mode=0555"),
        )?;
    }
    match set_mount_attr(c"/", MOUNT_ATTR_RDONLY, 0) {
        // A kernel before 5.12: no recursive read-only; leave the file system as it is.
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return Ok(()),
        other => other?,
    }
    for p in writable {
        set_mount_attr(p, 0, MOUNT_ATTR_RDONLY)?;
    }
    Ok(())
}

fn set_mount_attr(path: &CStr, set: u64, clear: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads a NUL-terminated path and a mount_attr of the given size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
