//! The seccomp filter every student process gets before exec: it refuses the few system calls
//! that reach beyond the sandbox's other walls.
//!
//! Refused with `EPERM` (the program sees an ordinary error, not a crash):
//! - `ioctl(TIOCSTI)` and `ioctl(TIOCLINUX)`: pushing bytes into a terminal's input (on any
//!   terminal, also the pseudo-terminal the grader hands a client as stdout, or one it made its
//!   controlling terminal), the classic way to type commands into the shell that started the
//!   grader. The request number is compared on its low 32 bits only, as the kernel reads it, so
//!   setting high bits does not slip through;
//! - `keyctl`, `add_key`, `request_key`: the kernel keyrings are not namespaced.
//!
//! Everything else is allowed: the filter is a deny-list on top of the namespaces, the
//! unprivileged uid and the empty capability sets, not a replacement for them. A process of
//! another architecture's system-call table (32-bit calls on x86_64) is killed, as the filter
//! cannot judge its calls.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// `TIOCLINUX` (not in every libc crate build): console-specific requests, including pasting
/// the selection into the console's input.
const TIOCLINUX: u64 = 0x541C;

/// The compiled filter, built once per grader process (before any fork: the child only
/// installs it).
pub fn program() -> Option<&'static BpfProgram> {
    static PROGRAM: OnceLock<Option<BpfProgram>> = OnceLock::new();
    PROGRAM.get_or_init(build).as_ref()
}

fn arch() -> Option<TargetArch> {
    if cfg!(target_arch = "x86_64") {
        Some(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Some(TargetArch::aarch64)
    } else if cfg!(target_arch = "riscv64") {
        Some(TargetArch::riscv64)
    } else {
        None
    }
}

// The request type is `c_ulong` on some targets and `c_int` on others.
#[allow(clippy::unnecessary_cast)]
fn build() -> Option<BpfProgram> {
    let ioctl_request = |request: u64| {
        SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, request)
            .and_then(|c| SeccompRule::new(vec![c]))
    };
    let rules: BTreeMap<i64, Vec<SeccompRule>> = [
        (
            libc::SYS_ioctl,
            vec![
                ioctl_request(libc::TIOCSTI as u64).ok()?,
                ioctl_request(TIOCLINUX).ok()?,
            ],
        ),
        (libc::SYS_keyctl, Vec::new()),
        (libc::SYS_add_key, Vec::new()),
        (libc::SYS_request_key, Vec::new()),
    ]
    .into_iter()
    .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch()?,
    )
    .ok()?;
    filter.try_into().ok()
}

/// Installs the filter on the calling thread (in the forked child, before exec: it allocates
/// nothing). Sets `no_new_privs`, which the kernel requires of an unprivileged process.
pub fn install(program: &BpfProgram) -> std::io::Result<()> {
    seccompiler::apply_filter(program).map_err(|e| match e {
        seccompiler::Error::Prctl(io) | seccompiler::Error::Seccomp(io) => io,
        _ => std::io::Error::from_raw_os_error(libc::EINVAL),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_filter_compiles_for_this_machine() {
        assert!(super::program().is_some_and(|p| !p.is_empty()));
    }
}
