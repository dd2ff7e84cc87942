//! What Linux's /proc tells us about a student's process group: its members, the sockets they
//! hold open (matched by inode against the socket tables of [`crate::net::tables`]), and the CPU
//! time and scheduling delay they have had.
//!
//! Guarantees: read-only, never signals or touches the processes; a process that vanishes while
//! being read is skipped, not an error. A root grader without `CAP_SYS_PTRACE` (Docker's default
//! capability set) reads a student process's ptrace-guarded files (`fd`, `exe`, `environ`,
//! `wchan`) under that process's uid and gid as its file-system ids, on the calling thread only
//! and for the length of the read ([`as_owner_of`]); nothing else changes identity.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// A process as seen in /proc/<pid>/stat.
#[derive(Debug, Clone)]
pub struct ProcStat {
    /// Process id.
    pub pid: i32,
    /// Process group id.
    pub pgrp: i32,
    /// Session id.
    pub session: i32,
    /// Parent pid.
    pub ppid: i32,
    /// One-letter state (R, S, Z, ...).
    pub state: char,
    /// User + system CPU time, in clock ticks, of all its threads.
    pub cpu_ticks: u64,
    /// Start time after boot, in clock ticks (with the pid, identifies a process).
    pub start_time: u64,
}

/// Parses /proc/<pid>/stat.
pub fn stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces or parentheses.
    let after = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the name start at field 3 (state); utime/stime are fields 14 and 15.
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<i64>().ok());
    Some(ProcStat {
        pid,
        state: f.first()?.chars().next()?,
        ppid: num(1)? as i32,
        pgrp: num(2)? as i32,
        session: num(3)? as i32,
        cpu_ticks: (num(11)? + num(12)?) as u64,
        start_time: num(19)? as u64,
    })
}

/// Every live process (not a zombie) on the system, as far as we may see.
pub fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// Live (non-zombie) members of process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<ProcStat> {
    all_processes()
        .into_iter()
        .filter(|p| p.pgrp == pgid && p.state != 'Z' && p.state != 'X')
        .collect()
}

/// Live (non-zombie) descendants of the processes `roots` (found through their parent links,
/// so a child that left the process group with `setsid` is still found), roots excluded.
pub fn descendants(roots: &[i32]) -> Vec<ProcStat> {
    let all: Vec<ProcStat> = all_processes();
    let mut found: HashSet<i32> = roots.iter().copied().collect();
    let mut out = Vec::new();
    loop {
        let before = found.len();
        for p in &all {
            if found.contains(&p.ppid) && !found.contains(&p.pid) {
                found.insert(p.pid);
                if p.state != 'Z' && p.state != 'X' {
                    out.push(p.clone());
                }
            }
        }
        if found.len() == before {
            return out;
        }
    }
}

/// Whether process `pid` was started with environment variable `entry` (`NAME=value`) set.
pub fn has_env(pid: i32, entry: &str) -> bool {
    as_owner_of(pid, || fs::read(format!("/proc/{pid}/environ")))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == entry.as_bytes()))
}

/// Runs `read` (reads of `/proc/<pid>` files) with the file-system uid and gid of process
/// `pid`'s owner where the grader needs them to pass the kernel's ptrace access check: root
/// without `CAP_SYS_PTRACE` reading a process of another uid (see
/// [`crate::process::sandbox::caps::proc_needs_fsuid`]). `setfsuid` changes the calling
/// thread's ids only, and they are restored before this returns.
pub fn as_owner_of<R>(pid: i32, read: impl FnOnce() -> R) -> R {
    use std::os::unix::fs::MetadataExt;
    if !crate::process::sandbox::caps::proc_needs_fsuid() {
        return read();
    }
    let Ok(meta) = fs::metadata(format!("/proc/{pid}")) else {
        return read();
    };
    let (uid, gid) = (meta.uid(), meta.gid());
    if uid == 0 {
        return read();
    }
    // SAFETY: setfsuid/setfsgid take integers and change this thread's file-system ids only
    // (both glibc and musl issue the system call directly, without the set*id broadcast).
    unsafe {
        let old_gid = nix::libc::setfsgid(gid);
        let old_uid = nix::libc::setfsuid(uid);
        let out = read();
        nix::libc::setfsuid(old_uid as nix::libc::uid_t);
        nix::libc::setfsgid(old_gid as nix::libc::gid_t);
        out
    }
}

/// Socket inodes held open by a process.
fn socket_inodes(pid: i32, into: &mut HashSet<u64>) {
    as_owner_of(pid, || socket_inodes_as_is(pid, into));
}

fn socket_inodes_as_is(pid: i32, into: &mut HashSet<u64>) {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return;
    };
    for entry in dir.flatten() {
        let inode = fs::read_link(entry.path()).ok().and_then(|target| {
            target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        });
        if let Some(inode) = inode {
            into.insert(inode);
        }
    }
}

/// The socket inodes held open by the processes `pids`, or `None` when none of them is left.
pub fn socket_inodes_of(pids: &[i32]) -> Option<HashSet<u64>> {
    if pids.is_empty() {
        return None;
    }
    let mut inodes = HashSet::new();
    for &pid in pids {
        socket_inodes(pid, &mut inodes);
    }
    Some(inodes)
}

/// Total CPU ticks used so far by the processes `pids` (those still there).
pub fn cpu_ticks_of(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|&p| stat(p))
        .map(|s| s.cpu_ticks)
        .sum()
}

/// Per thread of process `pid`: (thread id, nanoseconds spent runnable but waiting for a CPU)
/// from `/proc/<pid>/task/*/schedstat` (second field). Empty where the kernel does not report it.
pub fn thread_run_delays(pid: i32) -> Vec<(i32, u64)> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|t| {
            let tid = t.file_name().to_str()?.parse::<i32>().ok()?;
            let text = fs::read_to_string(t.path().join("schedstat")).ok()?;
            let delay = text.split_whitespace().nth(1)?.parse::<u64>().ok()?;
            Some((tid, delay))
        })
        .collect()
}

/// [`thread_run_delays`] of every process of `pids`.
pub fn thread_run_delays_of(pids: &[i32]) -> Vec<(i32, u64)> {
    pids.iter().flat_map(|&p| thread_run_delays(p)).collect()
}

/// Clock ticks per second (USER_HZ).
pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .unwrap_or(100)
}

/// Whether `path` is the same file (device and inode) as one of `files`.
pub fn same_file_as_any(path: &Path, files: &[PathBuf]) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .any(|f| f.dev() == m.dev() && f.ino() == m.ino())
}

/// Whether one of `pids` runs one of `files` (by `/proc/<pid>/exe`, which names the program's
/// file also inside another mount namespace).
pub fn runs_any_of(pids: &[i32], files: &[PathBuf]) -> bool {
    pids.iter()
        .filter_map(|p| as_owner_of(*p, || fs::metadata(format!("/proc/{p}/exe")).ok()))
        .any(|m| {
            use std::os::unix::fs::MetadataExt;
            files
                .iter()
                .filter_map(|f| fs::metadata(f).ok())
                .any(|f| f.dev() == m.dev() && f.ino() == m.ino())
        })
}

/// Where each thread of these processes sleeps in the kernel (`/proc/<pid>/task/<tid>/wchan`:
/// `poll_schedule_timeout` in select()/poll(), `do_epoll_wait`, `wait_woken` in a socket read,
/// `anon_pipe_read` ...); `0` for a thread that is running. Threads that vanish meanwhile are
/// left out.
pub fn thread_waits(pids: &[i32]) -> Vec<String> {
    let mut out = Vec::new();
    for pid in pids {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            if let Ok(w) = as_owner_of(*pid, || fs::read_to_string(t.path().join("wchan"))) {
                out.push(w.trim().to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_inode_of_our_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let inodes = socket_inodes_of(&[std::process::id() as i32]).unwrap();
        let table = crate::net::tables::SockDiag::new()
            .unwrap()
            .listeners()
            .unwrap();
        let mine = table.iter().find(|x| x.addr.port() == port).unwrap();
        assert!(inodes.contains(&mine.inode));
    }
}
