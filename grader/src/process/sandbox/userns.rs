//! Unprivileged user namespaces: how a grader that is not root still gives student code a
//! network namespace, a minimal root and a PID namespace.
//!
//! Where the kernel lets an ordinary user create user namespaces (`unshare -Urn` works), the
//! grader enters one of its own at start-up ([`enter`]), while it is still single-threaded (the
//! kernel requires it), before its guard and its runtime start: its uid and gid are mapped to
//! themselves, so files, signals and `/proc` work as before, and it gains capabilities over the
//! namespaces it creates afterwards (none over the host's). Everything the root grader does
//! with namespaces then works unchanged: a network namespace per scenario, a private mount
//! namespace with the minimal root ([`super::rootfs`]), a PID namespace per student process with
//! its own `/proc`, an IPC namespace.
//!
//! Guarantees:
//! - [`enter`] first tries the whole sequence (user, mount, PID and network namespaces and a
//!   fresh `/proc`) in a throwaway child and enters the namespace only if all of it worked, so
//!   a system that allows only part of it (a container whose `/proc` has covered paths) stays
//!   in plain host mode rather than failing every grading;
//! - [`active`] says whether the grader runs in its own user namespace;
//! - what does not hold in this mode (see docs/security.md): student code keeps the
//!   grader's uid (only one uid can be mapped without a setuid helper), so no separate uid per
//!   grading, and cgroup limits need a delegated cgroup as before.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::libc;
use nix::sched::CloneFlags;

use crate::net::netns::Isolation;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static WHY_NOT: OnceLock<String> = OnceLock::new();

/// Whether the grader entered a user namespace of its own.
pub fn active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

/// Why [`enter`] could not enter one, if it was tried and failed.
pub fn why_not() -> Option<&'static str> {
    WHY_NOT.get().map(String::as_str)
}

/// The name of an isolation in reports: `netns` (root), `userns` (a network namespace in the
/// grader's own user namespace, with the minimal root and PID namespaces that come with it),
/// `host`.
pub fn isolation_name(isolation: Isolation) -> &'static str {
    match isolation {
        Isolation::Netns if active() => "userns",
        other => other.as_str(),
    }
}

/// Enters a user namespace of the grader's own (see the module comment). Call it while the
/// process has one thread. `Err` says why it cannot be used.
pub fn enter() -> Result<(), String> {
    let entered = try_enter();
    if let Err(why) = &entered {
        let _ = WHY_NOT.set(why.clone());
    }
    entered
}

fn try_enter() -> Result<(), String> {
    if active() {
        return Ok(());
    }
    if super::is_root() {
        return Err("the grader is root".into());
    }
    if threads() != Some(1) {
        return Err("the grader already runs several threads".into());
    }
    probe(true)?;
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| e.to_string())?;
    map_ids(uid.as_raw(), gid.as_raw()).map_err(|e| format!("cannot map the grader's uid: {e}"))?;
    ACTIVE.store(true, Ordering::SeqCst);
    Ok(())
}

/// How many threads this process runs.
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Maps `uid` and `gid` to themselves in the calling process's new user namespace. The files of
/// `/proc/self` belong to root while the process is not dumpable (the grader makes itself so
/// first thing), so it is dumpable for these three writes, at start-up, before any student
/// program exists.
fn map_ids(uid: u32, gid: u32) -> io::Result<()> {
    let _ = nix::sys::prctl::set_dumpable(true);
    let written = (|| {
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
        std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))
    })();
    let _ = nix::sys::prctl::set_dumpable(false);
    written
}

/// Tries everything in a child process (this process is single-threaded, so the child may do
/// anything): a user namespace with the ids mapped (with `user`; a root grader uses its own
/// capabilities instead, see [`super::caps`]), new mount, PID, network and IPC namespaces, and a
/// fresh `/proc` mounted by the PID namespace's init.
pub(super) fn probe(user: bool) -> Result<(), String> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    // The child says what failed on this pipe.
    let (why_read, why_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the process is single-threaded (checked by the caller).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let step = || -> Result<(), String> {
                if user {
                    nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
                        .map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
                    map_ids(uid.as_raw(), gid.as_raw()).map_err(|e| format!("uid_map: {e}"))?;
                }
                // As root the network namespace is probed on its own (it needs CAP_NET_ADMIN
                // besides, for its loopback; see `crate::net::netns::probe`).
                let net = if user {
                    CloneFlags::CLONE_NEWNET
                } else {
                    CloneFlags::empty()
                };
                nix::sched::unshare(
                    CloneFlags::CLONE_NEWNS
                        | CloneFlags::CLONE_NEWPID
                        | CloneFlags::CLONE_NEWIPC
                        | net,
                )
                .map_err(|e| {
                    let net = if user { ", network" } else { "" };
                    format!("unshare(mount, PID, IPC{net}): {e}")
                })?;
                let none: Option<&str> = None;
                nix::mount::mount(
                    none,
                    "/",
                    none,
                    nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                    none,
                )
                .map_err(|e| format!("private mounts: {e}"))?;
                // SAFETY: single-threaded child.
                match unsafe { nix::unistd::fork() } {
                    Ok(nix::unistd::ForkResult::Child) => {
                        let code = match nix::mount::mount(
                            Some("proc"),
                            "/proc",
                            Some("proc"),
                            nix::mount::MsFlags::MS_NOSUID
                                | nix::mount::MsFlags::MS_NODEV
                                | nix::mount::MsFlags::MS_NOEXEC,
                            Some("hidepid=invisible"),
                        ) {
                            Ok(()) => 0,
                            Err(e) => e as i32,
                        };
                        // SAFETY: ends the child.
                        unsafe { libc::_exit(code) }
                    }
                    Ok(nix::unistd::ForkResult::Parent { child }) => {
                        match nix::sys::wait::waitpid(child, None) {
                            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
                            Ok(nix::sys::wait::WaitStatus::Exited(_, e)) => Err(format!(
                                "mounting a /proc for a PID namespace: {}",
                                nix::errno::Errno::from_raw(e)
                            )),
                            _ => Err("mounting a /proc for a PID namespace failed".into()),
                        }
                    }
                    Err(e) => Err(format!("fork: {e}")),
                }
            };
            drop(why_read);
            let code = match step() {
                Ok(()) => 0,
                Err(e) => {
                    let _ = nix::unistd::write(&why_write, e.as_bytes());
                    1
                }
            };
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(why_write);
            let mut why = String::new();
            let _ = std::io::Read::read_to_string(&mut std::fs::File::from(why_read), &mut why);
            match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
                _ if !why.is_empty() => Err(why),
                other => Err(format!("the namespace probe ended with {other:?}")),
            }
        }
        Err(e) => Err(format!("fork: {e}")),
    }
}
