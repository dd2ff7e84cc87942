//! Resource limits for student processes (setrlimit, applied between fork and exec).
//!
//! Guarantees: every student process and everything it starts inherits these limits; a program
//! that exceeds one is stopped by the kernel (SIGXCPU / SIGKILL for CPU time, SIGXFSZ for file
//! size, failed allocations for address space, failed `open`/`accept` for descriptors) and the
//! verdict shows the signal. The process count is not limited here (RLIMIT_NPROC counts per
//! user and does not apply to root): [`Limits::processes`] is the `pids.max` of the process's
//! cgroup (see [`super::cgroup`]), where the system offers one.

use nix::sys::resource::{Resource, setrlimit};

/// Limits applied to each student process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// CPU seconds (soft limit; the hard limit is 5 s more).
    pub cpu_seconds: u64,
    /// Address space in bytes. Generous by default: a JVM reserves gigabytes it never touches.
    pub address_space: u64,
    /// Largest file the process may write, in bytes.
    pub file_size: u64,
    /// Open file descriptors (a Task 3 server needs one per client).
    pub open_files: u64,
    /// Processes and threads at once (the pids cgroup's `pids.max`; a thread-per-client
    /// server needs one per client).
    pub processes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_seconds: 60,
            address_space: 16 << 30,
            file_size: 64 << 20,
            open_files: 4096,
            processes: 512,
        }
    }
}

impl Limits {
    /// Applies the limits to the calling process. Called in the child after `fork`, so it only
    /// makes async-signal-safe system calls.
    pub fn apply(&self) -> std::io::Result<()> {
        let set = |r, soft: u64, hard: u64| setrlimit(r, soft, hard).map_err(std::io::Error::from);
        set(Resource::RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds + 5)?;
        set(Resource::RLIMIT_AS, self.address_space, self.address_space)?;
        set(Resource::RLIMIT_FSIZE, self.file_size, self.file_size)?;
        // Never raise the descriptor limit above what the grader itself may grant.
        let (_, hard) =
            nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
        let files = self.open_files.min(hard);
        set(Resource::RLIMIT_NOFILE, files, files)?;
        Ok(())
    }
}
