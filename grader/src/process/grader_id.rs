//! Who a grader process is: a [`GraderId`] (pid, start time, and a tag of its PID namespace
//! and boot), written into the names of everything the grader creates that may outlive it if it
//! is killed outright: its cgroups ([`super::cgroup`]) and its temporary HOME and working folders
//! ([`super::temp_folder`]). The guard process ([`super::watchdog`]) is handed this identity and
//! acts only on what carries it.
//!
//! The start time is the clock ticks since boot (field 22 of `/proc/<pid>/stat`): with the pid it
//! identifies a process within a boot, so a reused pid is another identity. The scope (8 hex
//! digits) is a hash of the PID namespace and the boot id, so a grader with the same pid in
//! another container or VM that shares TMPDIR or the cgroup hierarchy is another identity too.
//! Names are `grader-home-<pid>-<start>-<scope>-…`, `grader-cwd-<pid>-<start>-<scope>-…` and, for
//! cgroups, `grader-<pid>-<start>-<scope>-…`.
//!
//! Guarantees: [`GraderId::tag`] and [`GraderId::parse_tag`] round-trip exactly, and only the
//! exact form `tag` writes is read back (no leading zeros, signs or upper-case hex), so no other
//! process's names are ever taken for this grader's; [`GraderId::is_alive`] never calls a process
//! of another scope dead.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;

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

    /// The start time (clock ticks since boot).
    pub fn start_time(&self) -> u64 {
        self.start
    }

    /// The tag of the PID namespace and boot the pid belongs to.
    pub fn scope(&self) -> u32 {
        self.scope
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
    pub fn names_temp_folder(&self, name: &str) -> bool {
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
}
