//! Unprivileged identities for student code: a uid/gid pair leased for the length of one grading,
//! so that student programs never run as root and two gradings running at once (two students of
//! a batch, two grader processes on one CI host) never share an identity.
//!
//! Guarantees:
//! - a lease is a uid from [`FIRST_UID`]`..`[`FIRST_UID`]` + `[`COUNT`] (far above any uid a
//!   distribution hands out, so no file on the host belongs to it and no other process runs as
//!   it), with the gid of the same number; the uid has no entry in `/etc/passwd` and no
//!   supplementary groups;
//! - a uid is held by at most one lease on the machine at a time: leases are advisory locks on
//!   files in [`LOCK_DIR`] shared by every grader process, dropped by the kernel when the holder
//!   dies, so a killed grader never blocks a uid;
//! - processes of one grading (its build, servers and clients) share the lease's uid, so they
//!   can use each other's files (a build's output) but cannot signal, trace or write into another
//!   grading's processes or files, nor the grader's (which run as root).
//!
//! Only the root grader leases (changing uid needs CAP_SETUID); see docs/security.md for
//! what holds without root.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

/// Where the lock files live: a root-only folder shared by all grader processes of the machine.
pub const LOCK_DIR: &str = "/run/grader-uid-locks";
/// The first uid handed out.
pub const FIRST_UID: u32 = 1_900_000_000;
/// How many uids there are (gradings at once on one machine).
pub const COUNT: u32 = 4096;

/// The identity student processes of one grading run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id (the only group).
    pub gid: u32,
}

/// A leased identity; the uid returns to the pool when this is dropped.
#[derive(Debug)]
pub struct UserLease {
    run_as: RunAs,
    _lock: Flock<File>,
}

/// No uid could be leased.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The lock folder cannot be made or used.
    #[error("cannot use the uid lock folder {LOCK_DIR}")]
    LockDir(#[source] io::Error),
    /// Every uid of the range is in use.
    #[error(
        "all {COUNT} sandbox uids ({FIRST_UID}..) are in use by other gradings on this machine"
    )]
    Exhausted,
}

impl UserLease {
    /// Leases a free uid, starting the search at a place derived from this process's id so that
    /// parallel grader processes rarely contend for the same lock.
    pub fn acquire() -> Result<Self, LeaseError> {
        let dir = Path::new(LOCK_DIR);
        if let Err(e) = std::fs::create_dir(dir)
            && e.kind() != io::ErrorKind::AlreadyExists
        {
            return Err(LeaseError::LockDir(e));
        }
        // The folder must be ours and closed to others (a stranger's folder could hold links).
        let meta = std::fs::symlink_metadata(dir).map_err(LeaseError::LockDir)?;
        if !meta.is_dir() || std::os::unix::fs::MetadataExt::uid(&meta) != 0 {
            return Err(LeaseError::LockDir(io::Error::other(
                "not a folder owned by root",
            )));
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(LeaseError::LockDir)?;
        let start = std::process::id() % COUNT;
        for k in 0..COUNT {
            let n = (start + k) % COUNT;
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(dir.join(n.to_string()))
                .map_err(LeaseError::LockDir)?;
            if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                let id = FIRST_UID + n;
                return Ok(Self {
                    run_as: RunAs { uid: id, gid: id },
                    _lock: lock,
                });
            }
        }
        Err(LeaseError::Exhausted)
    }

    /// The leased identity.
    pub fn run_as(&self) -> RunAs {
        self.run_as
    }
}

/// Gives `path` (and, for a folder, everything below it, never following symbolic links) to
/// `who`, so a program running as that identity can use it as its own.
pub fn give(path: &Path, who: RunAs) -> io::Result<()> {
    let chown = |p: &Path| std::os::unix::fs::lchown(p, Some(who.uid), Some(who.gid));
    chown(path)?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                give(&entry.path(), who)?;
            } else {
                chown(&entry.path())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_leases_never_share_a_uid() {
        if !nix::unistd::geteuid().is_root() {
            crate::test_skips::skipped("", "leasing uids needs root");
            return;
        }
        let a = UserLease::acquire().unwrap();
        let b = UserLease::acquire().unwrap();
        assert_ne!(a.run_as().uid, b.run_as().uid);
        let uid = a.run_as().uid;
        drop(a);
        // Freed: some later lease may take it again, and no live lease holds it.
        assert!((FIRST_UID..FIRST_UID + COUNT).contains(&uid));
        assert_ne!(b.run_as().uid, uid);
    }
}
