//! A pids cgroup (cgroup v1 `pids` controller) per student process: it lists every process the
//! program started, also those that left its process group with `setsid` or a double fork, and
//! `pids.max` bounds how many there may be at once (a fork bomb stops at the limit instead of
//! taking the machine).
//!
//! Guarantees: a cgroup is created only where the hierarchy is writable (root, a delegated
//! hierarchy); elsewhere [`Cgroup::create`] fails and the caller falls back to walking /proc.
//! Dropping a [`Cgroup`] SIGKILLs whatever is still in it and removes it when empty. Cgroups
//! left behind by a grader that was SIGKILLed are removed (and their processes killed) by the next
//! grader that creates one. A cgroup is named with its grader's full identity
//! ([`super::watchdog::GraderId`]: pid, start time, PID namespace and boot), and only one whose
//! grader is known to be gone counts as left behind: a live grader whose pid once belonged to a
//! dead one, or a grader of another PID namespace (whose pids mean nothing here), keeps its
//! cgroups.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::watchdog::GraderId;

/// Where the v1 pids hierarchy is mounted.
const PIDS_ROOT: &str = "/sys/fs/cgroup/pids";
/// Name prefix of the grader's cgroups.
const PREFIX: &str = "grader-";

/// One student process's pids cgroup.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
}

/// The pids cgroup the grader itself is in (new cgroups go below it).
fn own_pids_dir() -> PathBuf {
    let own = fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
                ctrl.split(',')
                    .any(|c| c == "pids")
                    .then(|| path.trim_start_matches('/').to_string())
            })
        })
        .unwrap_or_default();
    Path::new(PIDS_ROOT).join(own)
}

impl Cgroup {
    /// Creates the cgroup `grader-<grader's identity tag>-<unique>` with at most `max_pids`
    /// processes (threads count too).
    pub fn create(unique: &str, max_pids: u64) -> io::Result<Self> {
        let me = GraderId::current()?;
        let parent = own_pids_dir();
        remove_stale(&parent);
        let dir = parent.join(format!("{PREFIX}{}-{unique}", me.tag()));
        fs::create_dir(&dir)?;
        let cg = Self { dir };
        fs::write(cg.dir.join("pids.max"), max_pids.to_string())?;
        Ok(cg)
    }

    /// `cgroup.procs`, open for writing (a process writes "0" to it to join).
    pub fn procs_file(&self) -> io::Result<OwnedFd> {
        Ok(fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.procs"))?
            .into())
    }

    /// The cgroup's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The processes in the cgroup (zombies excluded).
    pub fn members(&self) -> Vec<i32> {
        members_of(&self.dir)
    }

    /// Sends `sig` to every member.
    pub fn signal(&self, sig: Signal) {
        for pid in self.members() {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }

    /// The most processes that were in the cgroup at once.
    pub fn peak(&self) -> Option<u64> {
        fs::read_to_string(self.dir.join("pids.peak"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// How often a fork failed because of `pids.max`.
    pub fn limit_hits(&self) -> u64 {
        fs::read_to_string(self.dir.join("pids.events"))
            .ok()
            .and_then(|t| t.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }
}

/// How long dropping a cgroup keeps killing its members: one pass can miss a child forked
/// while the member list was read, so passes repeat until one finds nobody alive.
const DROP_KILL_WINDOW: std::time::Duration = std::time::Duration::from_millis(500);

impl Drop for Cgroup {
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + DROP_KILL_WINDOW;
        loop {
            let members = self.members();
            if members.is_empty() || std::time::Instant::now() >= deadline {
                break;
            }
            for pid in members {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::yield_now();
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The live (non-zombie) processes of the cgroup at `dir` (none once it is gone).
pub(super) fn members_of(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|pid| super::procfs::stat(*pid).is_some_and(|s| s.state != 'Z' && s.state != 'X'))
        .collect()
}

/// The grader cgroups below `parent`: (owning grader, folder). Names without a full identity
/// (an older grader's `grader-<pid>-…`) are not listed.
fn grader_cgroups(parent: &Path) -> Vec<(GraderId, PathBuf)> {
    let Ok(dir) = fs::read_dir(parent) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let (owner, _) = GraderId::parse_tag(name.to_str()?.strip_prefix(PREFIX)?)?;
            Some((owner, e.path()))
        })
        .collect()
}

/// SIGKILLs what is left in a cgroup and removes it; false while members (also zombies not yet
/// reaped) keep it.
fn kill_and_remove(dir: &Path) -> bool {
    for pid in members_of(dir) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    fs::remove_dir(dir).is_ok()
}

/// Removes cgroups of grader processes that no longer exist, killing what is left in them.
/// Those of graders in another PID namespace or boot are left alone: nothing here tells whether
/// they are alive.
fn remove_stale(parent: &Path) {
    for (owner, dir) in grader_cgroups(parent) {
        if owner.is_alive() == Some(false) {
            let _ = kill_and_remove(&dir);
        }
    }
}

/// Kills the processes in every cgroup the grader `owner` created below the pids cgroup of the
/// calling process and removes those cgroups; returns how many are still there (their killed
/// members not yet gone).
pub fn remove_owned_by(owner: &GraderId) -> usize {
    grader_cgroups(&own_pids_dir())
        .iter()
        .filter(|(o, dir)| o == owner && !kill_and_remove(dir))
        .count()
}
