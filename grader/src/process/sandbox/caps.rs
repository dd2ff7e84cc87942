//! What a root grader may actually do: its effective capabilities, and whether the confinement
//! of student code (namespaces, mounts, a per-grading uid, reading the student's `/proc`) works
//! here. Root in a plain `docker run` (Docker's default capability set: no `CAP_SYS_ADMIN`,
//! `CAP_NET_ADMIN`, `CAP_SYS_PTRACE`) is root without most of them.
//!
//! Guarantees:
//! - [`has`] reads the effective set once (`CapEff` of `/proc/self/status`); an unreadable set
//!   counts as all capabilities for root and none for anyone else (the system then refuses what
//!   is missing, as before);
//! - [`probe_root_confinement`] tries, in a throwaway child, the same sequence the minimal root
//!   needs (mount, PID and IPC namespaces, private mounts, a fresh `/proc`), so a grader that
//!   lacks a capability, or runs under an AppArmor or seccomp profile that refuses mounts, stays
//!   with what works instead of failing every student start;
//! - [`missing`] names what is missing, with the `docker run` flags that give it, for the one
//!   console note.

use std::sync::OnceLock;

/// `CAP_CHOWN` (capability numbers from `linux/capability.h`).
pub const CHOWN: u32 = 0;
/// `CAP_DAC_OVERRIDE`.
pub const DAC_OVERRIDE: u32 = 1;
/// `CAP_FOWNER`.
pub const FOWNER: u32 = 3;
/// `CAP_KILL`.
pub const KILL: u32 = 5;
/// `CAP_SETGID`.
pub const SETGID: u32 = 6;
/// `CAP_SETUID`.
pub const SETUID: u32 = 7;
/// `CAP_NET_ADMIN`.
pub const NET_ADMIN: u32 = 12;
/// `CAP_SYS_PTRACE`.
pub const SYS_PTRACE: u32 = 19;
/// `CAP_SYS_ADMIN`.
pub const SYS_ADMIN: u32 = 21;

/// A capability the grader's confinement uses, what for, and its `docker run --cap-add` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needed {
    /// The capability's number.
    pub cap: u32,
    /// Its name as `docker run --cap-add` spells it (`SYS_ADMIN`).
    pub name: &'static str,
    /// What the grader does with it.
    pub what: &'static str,
}

/// The capabilities that [`missing`] reports, in the order of the note.
pub const CONFINEMENT: [Needed; 6] = [
    Needed {
        cap: SYS_ADMIN,
        name: "SYS_ADMIN",
        what: "namespaces and the minimal root's mounts",
    },
    Needed {
        cap: NET_ADMIN,
        name: "NET_ADMIN",
        what: "a network namespace's loopback",
    },
    Needed {
        cap: SYS_PTRACE,
        name: "SYS_PTRACE",
        what: "reading another uid's /proc/<pid>/fd (done instead under the student's uid with setfsuid)",
    },
    Needed {
        cap: SETUID,
        name: "SETUID",
        what: "a per-grading uid",
    },
    Needed {
        cap: SETGID,
        name: "SETGID",
        what: "a per-grading gid",
    },
    Needed {
        cap: CHOWN,
        name: "CHOWN",
        what: "giving the student's folders to its uid",
    },
];

fn effective() -> Option<u64> {
    static EFF: OnceLock<Option<u64>> = OnceLock::new();
    *EFF.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
        u64::from_str_radix(hex.trim(), 16).ok()
    })
}

/// Whether the grader holds capability `cap` in its effective set.
pub fn has(cap: u32) -> bool {
    match effective() {
        Some(set) => set >> cap & 1 == 1,
        None => super::is_root(),
    }
}

/// The confinement capabilities a root grader lacks (empty for a grader that is not root: it
/// confines with a user namespace of its own, or not at all).
pub fn missing() -> Vec<Needed> {
    if !super::is_root() {
        return Vec::new();
    }
    CONFINEMENT.into_iter().filter(|n| !has(n.cap)).collect()
}

/// `--cap-add A --cap-add B` for these.
pub fn cap_add_flags(missing: &[Needed]) -> String {
    missing
        .iter()
        .map(|n| format!("--cap-add {}", n.name))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a root grader can run student code under a per-grading uid (it needs `CAP_SETUID`,
/// `CAP_SETGID` and `CAP_CHOWN`; not the namespaces).
pub fn can_change_uid() -> bool {
    super::is_root() && has(SETUID) && has(SETGID) && has(CHOWN)
}

/// Whether reading the `/proc/<pid>` files of another uid's process (`fd`, `exe`, `environ`,
/// `wchan`) needs the grader to take that uid as its file-system uid first: root without
/// `CAP_SYS_PTRACE` (see [`crate::process::procfs`]).
pub fn proc_needs_fsuid() -> bool {
    super::is_root() && !has(SYS_PTRACE) && has(SETUID) && has(SETGID)
}

static ROOT_CONFINEMENT: OnceLock<Result<(), String>> = OnceLock::new();

/// Probes once whether a root grader can give student code the minimal root and a PID
/// namespace (see the module comment). Call it at start-up while the process has one thread;
/// `Err` says why not. Without the probe, [`root_confinement`] goes by `CAP_SYS_ADMIN` alone.
pub fn probe_root_confinement() -> &'static Result<(), String> {
    ROOT_CONFINEMENT.get_or_init(|| {
        if !super::is_root() {
            return Err("the grader is not root".into());
        }
        if !has(SYS_ADMIN) {
            return Err("no CAP_SYS_ADMIN".into());
        }
        super::userns::probe(false)
    })
}

/// Whether a root grader gives student code the minimal root and the namespaces that go with it.
pub fn root_confinement() -> bool {
    match ROOT_CONFINEMENT.get() {
        Some(r) => r.is_ok(),
        None => super::is_root() && has(SYS_ADMIN),
    }
}

/// Why [`probe_root_confinement`] failed, if it was run and did.
pub fn root_confinement_why_not() -> Option<&'static str> {
    ROOT_CONFINEMENT.get()?.as_ref().err().map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_name_the_missing_capabilities() {
        let m = [CONFINEMENT[0], CONFINEMENT[2]];
        assert_eq!(
            cap_add_flags(&m),
            "--cap-add SYS_ADMIN --cap-add SYS_PTRACE"
        );
    }
}
