//! Copying a submission folder into a fresh folder, safely: what a build runs in today, and what
//! any grading that must not touch the student's own folder can run in.
//!
//! Guarantees ([`copy_submission`]):
//! - the source is walked by [`crate::submission_tree::scan`] first, and nothing is written
//!   when it is refused: a symbolic link leaving the folder, a FIFO, socket or device, more than
//!   [`MAX_SUBMISSION_BYTES`] of files or [`MAX_SUBMISSION_ENTRIES`] entries (a sparse 2 GB file
//!   is refused, not copied as 2 GB). Such a [`CopyError::Refused`] is the submission's problem;
//! - regular files are copied byte for byte with their permission bits (`rwx` for owner, group
//!   and others; setuid, setgid and sticky bits are dropped), opened with `O_NOFOLLOW |
//!   O_NONBLOCK` and checked on the descriptor, so a file swapped for a link or a FIFO after the
//!   walk is refused, and reading stops at the byte limit even if a file grows meanwhile; the
//!   copies are created with `O_EXCL | O_NOFOLLOW`, never through something already in the
//!   destination;
//! - symbolic links that stay inside the folder are copied as links with the very target text
//!   that was checked (never followed, never read again), so the copy resolves them inside
//!   itself;
//! - folders are copied with their permission bits plus the owner's `rwx` (so the copy can
//!   always be filled and removed), set after their content is copied;
//! - `.git` (at any depth) is left out; nothing else is.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::submission_tree::{self, Kind, MAX_SUBMISSION_BYTES, MAX_SUBMISSION_ENTRIES, TreeError};

/// What [`copy_submission`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Regular files.
    pub files: usize,
    /// Folders (below the destination).
    pub dirs: usize,
    /// Symbolic links.
    pub links: usize,
    /// Bytes of the regular files.
    pub bytes: u64,
}

/// A submission that could not be copied.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The submission's content is refused, or a file of it cannot be read
    /// ([`TreeError::is_refusal`] tells which).
    #[error(transparent)]
    Refused(#[from] TreeError),
    /// The copy could not be written (the grader's problem: a full disk, a missing folder).
    #[error("cannot write the copy {}", .path.display())]
    Write {
        /// What could not be written.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl CopyError {
    /// True when the submission is at fault (refused content), not the grader.
    pub fn is_submissions_fault(&self) -> bool {
        matches!(self, CopyError::Refused(e) if e.is_refusal())
    }
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> CopyError + '_ {
    move |source| CopyError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether the copy leaves an entry out.
fn left_out(name: &std::ffi::OsStr) -> bool {
    name == ".git"
}

/// Copies the content of the submission folder `src` into the existing (empty) folder `dst`, as
/// the module's comment says.
pub fn copy_submission(src: &Path, dst: &Path) -> Result<CopyStats, CopyError> {
    let tree = submission_tree::scan(src, left_out)?;
    let mut stats = CopyStats::default();
    let mut budget = MAX_SUBMISSION_BYTES;
    let mut folders = Vec::new();
    for entry in &tree.entries {
        let (from, to) = (src.join(&entry.rel), dst.join(&entry.rel));
        match &entry.kind {
            Kind::Dir { mode } => {
                std::fs::create_dir(&to).map_err(write_err(&to))?;
                folders.push((to, (mode & 0o777) | 0o700));
                stats.dirs += 1;
            }
            Kind::Link { target } => {
                std::os::unix::fs::symlink(target, &to).map_err(write_err(&to))?;
                stats.links += 1;
            }
            Kind::File { .. } => {
                let (file, _) = submission_tree::open_regular(&from)?;
                // The permission bits of what was opened, not of what was walked.
                let mode = file
                    .metadata()
                    .map_err(|source| TreeError::Io {
                        path: from.clone(),
                        source,
                    })?
                    .permissions()
                    .mode()
                    & 0o777;
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode | 0o600)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&to)
                    .map_err(write_err(&to))?;
                stats.bytes += submission_tree::read_counted(file, &from, src, &mut budget, |b| {
                    out.write_all(b).map_err(write_err(&to))
                })?;
                // Exactly the source's bits (the umask narrowed them at creation; the owner
                // needed to write).
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
                    .map_err(write_err(&to))?;
                stats.files += 1;
            }
        }
    }
    // Innermost first: a folder without write permission is set last.
    for (folder, mode) in folders.iter().rev() {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(*mode))
            .map_err(write_err(folder))?;
    }
    debug_assert!(stats.files + stats.dirs + stats.links <= MAX_SUBMISSION_ENTRIES);
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_keeps_files_bits_and_links_but_not_git_or_setuid() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        let f = from.path();
        std::fs::create_dir_all(f.join("src/deep")).unwrap();
        std::fs::create_dir_all(f.join(".git/objects")).unwrap();
        std::fs::write(f.join(".git/HEAD"), "ref").unwrap();
        std::fs::write(f.join("src/deep/a.c"), "int main;").unwrap();
        std::fs::write(f.join("build.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(f.join("build.sh"), std::fs::Permissions::from_mode(0o4750))
            .unwrap();
        std::fs::write(f.join("readonly.txt"), "r").unwrap();
        std::fs::set_permissions(
            f.join("readonly.txt"),
            std::fs::Permissions::from_mode(0o444),
        )
        .unwrap();
        std::fs::write(f.join(".env"), "hidden but copied").unwrap();
        std::os::unix::fs::symlink("src/deep/a.c", f.join("link.c")).unwrap();
        std::fs::set_permissions(f.join("src/deep"), std::fs::Permissions::from_mode(0o555))
            .unwrap();
        let stats = copy_submission(f, to.path()).unwrap();
        assert_eq!(
            stats,
            CopyStats {
                files: 4,
                dirs: 2,
                links: 1,
                bytes: 9 + 10 + 1 + 17,
            }
        );
        let t = to.path();
        assert_eq!(
            std::fs::read_to_string(t.join("src/deep/a.c")).unwrap(),
            "int main;"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&t.join("build.sh")), 0o750, "setuid dropped");
        assert_eq!(mode(&t.join("readonly.txt")), 0o444);
        assert_eq!(mode(&t.join("src/deep")), 0o755, "the owner's rwx added");
        assert!(t.join(".env").exists());
        assert!(!t.join(".git").exists());
        assert_eq!(
            std::fs::read_link(t.join("link.c")).unwrap(),
            Path::new("src/deep/a.c")
        );
        // Same content hash: what the build sees is what was hashed.
        assert_eq!(
            crate::fingerprint::content_hash(f).unwrap(),
            crate::fingerprint::content_hash(t).unwrap()
        );
        std::fs::set_permissions(f.join("src/deep"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }

    #[test]
    fn a_refused_submission_writes_nothing() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        std::fs::write(from.path().join("a.py"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.path().join("secret")).unwrap();
        let e = copy_submission(from.path(), to.path()).unwrap_err();
        assert!(e.is_submissions_fault(), "{e}");
        assert!(
            e.to_string()
                .contains("submission contains a symbolic link leaving its folder"),
            "{e}"
        );
        assert_eq!(std::fs::read_dir(to.path()).unwrap().count(), 0);
    }
}
