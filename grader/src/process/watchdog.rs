//! A guard for the one ending the grader cannot handle itself: being killed outright (SIGKILL,
//! the OOM killer, a CI runner's hard timeout). A signal handler never runs then, so the student
//! programs in flight would live on.
//!
//! [`start`] forks a small guard process while the grader still has a single thread. The guard
//! leaves the grader's session (terminal signals do not reach it), keeps only the read end of a
//! pipe whose write end the grader holds (close-on-exec, so no student program inherits it), and
//! blocks on it. When the grader is gone by any means, the read returns end-of-file and the guard
//! kills what the grader left: every process in the grader's pids cgroups (see [`super::cgroup`])
//! and, where there are no cgroups, every process whose HOME is a home the grader made (named
//! with the grader's pid, see [`home_prefix`]). Then it removes the temporary HOME and working
//! folders the grader left in TMPDIR (named with the grader's pid, see [`home_prefix`] and
//! [`cwd_prefix`]), and exits. After a normal exit it finds nothing and exits at once.
//!
//! Guarantees: the guard holds no descriptor of the grader's other than the pipe (its standard
//! streams are /dev/null, so it never keeps a CI log pipe open) and no folder (it moves to `/`);
//! it only ever signals processes
//! found through the grader's own cgroups or homes, and only removes folders in TMPDIR named
//! with the grader's own pid prefix; it stops killing within [`CLEANUP_DEADLINE`] of the
//! grader's end.

use std::fs;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigHandler, Signal, kill, signal};
use nix::unistd::{ForkResult, Pid};

use super::cgroup;

/// How long the guard keeps killing and removing what the grader left before it gives up.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(5);
/// Pause between cleanup rounds while killed processes are still being reaped.
const CLEANUP_ROUND: Duration = Duration::from_millis(20);

/// The prefix of the temporary HOME folders the grader `pid` gives student programs.
pub fn home_prefix(pid: u32) -> String {
    format!("grader-home-{pid}-")
}

/// The prefix of the temporary working folders the grader `pid` gives student programs (those
/// not started in their own submission folder), and of the copies builds run in.
pub fn cwd_prefix(pid: u32) -> String {
    format!("grader-cwd-{pid}-")
}

/// Starts the guard. Does nothing (and says so in the result) when the process already has more
/// than one thread, since forking is only safe before threads exist.
pub fn start() -> Result<(), String> {
    if thread_count() != Some(1) {
        return Err("the grader already runs several threads".into());
    }
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let grader = std::process::id();
    // Where the grader's temporary folders go (tempfile's default); absolute, since the guard
    // moves to `/`.
    let tmp = std::env::temp_dir();
    let tmp = std::path::absolute(&tmp).unwrap_or(tmp);
    // SAFETY: the process has one thread (checked above), so the child may run any code.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Parent { .. } => {
            drop(read);
            // Held until the grader ends: its closing is the guard's signal.
            let _ = write.into_raw_fd();
            Ok(())
        }
        ForkResult::Child => {
            drop(write);
            guard(read, grader, &tmp);
            // SAFETY: ends the guard without running the grader's exit handlers.
            unsafe { nix::libc::_exit(0) }
        }
    }
}

fn thread_count() -> Option<usize> {
    fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// The guard's life: detach, wait for the grader's end, clean up.
fn guard(pipe: OwnedFd, grader: u32, tmp: &Path) {
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
            unsafe { nix::libc::dup2(null.as_raw_fd(), target) };
        }
    }
    let keep = pipe.as_raw_fd();
    let open: Vec<i32> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in open {
        if fd > 2 && fd != keep {
            // SAFETY: closing descriptors this process inherited and will never use.
            unsafe { nix::libc::close(fd) };
        }
    }
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&pipe, &mut byte) {
            Ok(0) => break,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => break,
        }
    }
    clean_up(grader);
    remove_temp_folders(tmp, grader);
}

/// Kills what the grader `grader` left, retrying while killed processes are still being reaped.
fn clean_up(grader: u32) {
    let deadline = Instant::now() + CLEANUP_DEADLINE;
    let prefix = home_prefix(grader);
    loop {
        let cgroups_left = cgroup::remove_owned_by(grader as i32);
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
/// (never a symbolic link) named with that grader's pid prefix are touched; what cannot be
/// removed stays.
fn remove_temp_folders(tmp: &Path, grader: u32) {
    let prefixes = [home_prefix(grader), cwd_prefix(grader)];
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if !prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            continue;
        }
        if fs::symlink_metadata(entry.path()).is_ok_and(|m| m.file_type().is_dir()) {
            // remove_dir_all never follows symbolic links inside the folder.
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Live processes whose HOME is a folder named with `prefix`.
fn with_home_prefix(prefix: &str) -> Vec<i32> {
    let needle = format!("/{prefix}");
    super::procfs::all_processes()
        .into_iter()
        .filter(|p| p.state != 'Z' && p.state != 'X')
        .filter(|p| {
            fs::read(format!("/proc/{}/environ", p.pid)).is_ok_and(|env| {
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
