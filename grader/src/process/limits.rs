//! Resource limits for student processes: setrlimit ones, applied between fork and exec, and
//! the cgroup ones (process count, memory, CPU share) that [`super::cgroup`] writes into the
//! process's cgroup.
//!
//! Guarantees: every student process and everything it starts inherits these limits; a program
//! that exceeds one is stopped by the kernel (SIGXCPU / SIGKILL for CPU time, SIGXFSZ for file
//! size, failed allocations for address space, failed `open`/`accept` for descriptors, the OOM
//! killer's SIGKILL for memory, failed `fork` for processes) or slowed down (CPU share) and the
//! verdict says which. The process count, memory and CPU share are not limited here
//! (RLIMIT_NPROC counts per user and does not apply to root; RLIMIT_AS counts address space that
//! is never touched, not memory): [`Limits::processes`], [`Limits::memory_bytes`] and
//! [`Limits::cpu_percent`] are limits of the process's cgroup (see [`super::cgroup`]), applied
//! where the system offers the controller and skipped (never an error) where it does not.

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
    /// Memory the program (all its processes together) may use, in bytes, with no swap beyond
    /// it (the memory cgroup's `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes` on
    /// cgroup v1, `memory.max` and `memory.swap.max` = 0 on v2). Past it the kernel's OOM killer
    /// SIGKILLs one of its processes and the verdict says *memory limit*.
    pub memory_bytes: u64,
    /// CPU time the program (all its processes together) may use per wall-clock time, in
    /// percent of one core (100: one core's worth, whatever the number of cores): the CFS quota
    /// (`cpu.cfs_quota_us` / `cpu.cfs_period_us` on cgroup v1, `cpu.max` on v2). Busy loops
    /// past it are held back, so one submission cannot take CPU from the others.
    pub cpu_percent: u64,
}

/// Default of [`Limits::memory_bytes`]: 1 GiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 1 << 30;
/// Default of [`Limits::cpu_percent`]: one core's worth.
pub const DEFAULT_CPU_PERCENT: u64 = 100;

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_seconds: 60,
            address_space: 16 << 30,
            file_size: 64 << 20,
            open_files: 4096,
            processes: 512,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            cpu_percent: DEFAULT_CPU_PERCENT,
        }
    }
}

impl Limits {
    /// Applies the setrlimit limits to the calling process. Called in the child after `fork`,
    /// so it only makes async-signal-safe system calls.
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

/// A byte count as people write it: `1 GiB`, `64 MiB`, `1.5 GiB`, `512 KiB`, `100 bytes`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_as_people_write_them() {
        assert_eq!(human_bytes(DEFAULT_MEMORY_BYTES), "1 GiB");
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        assert_eq!(human_bytes(512 << 10), "512 KiB");
        assert_eq!(human_bytes(100), "100 bytes");
    }
}
