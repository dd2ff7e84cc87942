//! What Linux's /proc tells us about a student's process group: its members, the TCP ports it
//! listens on, whether some other program holds a port, and the CPU time it has used.
//!
//! Guarantees: read-only, never signals or touches the processes; a process that vanishes while
//! being read is skipped, not an error. Sockets are matched by inode, so a listening socket is
//! attributed to the student only if one of the group's processes holds it.

use std::collections::HashSet;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

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
    fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == entry.as_bytes()))
}

/// Socket inodes held open by a process.
fn socket_inodes(pid: i32, into: &mut HashSet<u64>) {
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

/// A TCP socket in LISTEN state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Local address it is bound to.
    pub addr: SocketAddr,
    /// Socket inode.
    pub inode: u64,
}

/// All listening TCP sockets in the network namespace of process `pid` (or ours, for `None`).
pub fn listeners(pid: Option<i32>) -> Vec<Listener> {
    let base = pid.map_or_else(
        || "/proc/self/net".to_string(),
        |p| format!("/proc/{p}/net"),
    );
    listeners_at(Path::new(&base))
}

/// All listening TCP sockets in the tables of a `/proc/.../net` folder (which shows the
/// network namespace of the process or thread it belongs to).
pub fn listeners_at(net_dir: &Path) -> Vec<Listener> {
    let mut out = Vec::new();
    for (file, v6) in [("tcp", false), ("tcp6", true)] {
        let Ok(text) = fs::read_to_string(net_dir.join(file)) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let (Some(addr), Ok(inode)) = (parse_addr(f[1], v6), f[9].parse::<u64>()) else {
                continue;
            };
            out.push(Listener { addr, inode });
        }
    }
    out
}

fn parse_addr(text: &str, v6: bool) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = if v6 {
        let mut bytes = [0u8; 16];
        for (i, chunk) in bytes.chunks_mut(4).enumerate() {
            let word = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        let word = u32::from_str_radix(ip, 16).ok()?;
        IpAddr::V4(Ipv4Addr::from(word.to_ne_bytes()))
    };
    Some(SocketAddr::new(ip, port))
}

/// Bytes still queued between our socket `ours` and the peer socket `theirs` (both in the
/// network namespace whose tables `net_dir` shows, e.g. `/proc/self/net`): our send queue plus
/// the peer's receive queue. `None` once neither socket is found (both closed).
pub fn unread_bytes(net_dir: &Path, ours: SocketAddr, theirs: SocketAddr) -> Option<u64> {
    let mut total = None;
    for file in ["tcp", "tcp6"] {
        let Ok(text) = fs::read_to_string(net_dir.join(file)) else {
            continue;
        };
        let v6 = file == "tcp6";
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 5 {
                continue;
            }
            let (Some(local), Some(remote)) = (parse_addr(f[1], v6), parse_addr(f[2], v6)) else {
                continue;
            };
            let same = |a: SocketAddr, b: SocketAddr| {
                a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
            };
            let Some((tx, rx)) = f[4].split_once(':') else {
                continue;
            };
            let (tx, rx) = (
                u64::from_str_radix(tx, 16).unwrap_or(0),
                u64::from_str_radix(rx, 16).unwrap_or(0),
            );
            if same(local, ours) && same(remote, theirs) {
                *total.get_or_insert(0) += tx;
            } else if same(local, theirs) && same(remote, ours) {
                *total.get_or_insert(0) += rx;
            }
        }
    }
    total
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The listening sockets held by the members of process group `pgid`.
pub fn group_listeners(pgid: i32) -> Vec<Listener> {
    port_holders(pgid).0
}

/// One consistent look at the listening sockets in the namespace of process group `pgid`: those
/// its members hold, and those held by anyone else. The table is read before the group's sockets,
/// so a socket the student binds in between is never mistaken for a stranger's.
pub fn port_holders(pgid: i32) -> (Vec<Listener>, Vec<Listener>) {
    let members = group_members(pgid);
    let Some(first) = members.first() else {
        return (Vec::new(), Vec::new());
    };
    let all = listeners(Some(first.pid));
    let mut inodes = HashSet::new();
    for m in &members {
        socket_inodes(m.pid, &mut inodes);
    }
    all.into_iter().partition(|l| inodes.contains(&l.inode))
}

/// Total CPU ticks used so far by the live members of a process group.
pub fn group_cpu_ticks(pgid: i32) -> u64 {
    group_members(pgid).iter().map(|p| p.cpu_ticks).sum()
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

/// [`thread_run_delays`] of every live member of a process group.
pub fn group_thread_run_delays(pgid: i32) -> Vec<(i32, u64)> {
    group_members(pgid)
        .iter()
        .flat_map(|p| thread_run_delays(p.pid))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_addresses() {
        assert_eq!(
            parse_addr("0100007F:1F90", false),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            parse_addr("00000000000000000000000001000000:0050", true),
            Some("[::1]:80".parse().unwrap())
        );
    }

    #[test]
    fn sees_our_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = nix::unistd::getpgrp().as_raw();
        assert!(group_listeners(me).iter().any(|x| x.addr.port() == port));
    }
}
