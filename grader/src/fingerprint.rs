//! Content hashes of submissions, so a batch can tell whether a submission changed since its
//! report was written.
//!
//! Guarantees: the hash depends only on the bytes, relative paths and executable bits of the
//! submission's files (not on timestamps, owners or the folder's own name or location), is the
//! same on every machine, and ignores what running the submission leaves behind: `.git`,
//! `__pycache__` folders and `*.pyc` files. The folder is walked by
//! [`crate::submission_tree::scan`], so hashing never hangs and never reads outside the
//! submission: symbolic links are hashed by their target text and never followed (one leaving
//! the folder is refused), FIFOs, sockets and devices are refused without being opened, and a
//! submission past [`crate::submission_tree::MAX_SUBMISSION_BYTES`] or
//! [`crate::submission_tree::MAX_SUBMISSION_ENTRIES`] is refused before its files are read.
//! A refusal ([`TreeError::is_refusal`]) is the submission's problem: `grader batch` reports it
//! as *not started*, `grader run` exits 2.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::submission_tree::{self, Kind, MAX_SUBMISSION_BYTES, TreeError};

/// A submission could not be hashed: refused ([`TreeError::is_refusal`]) or unreadable.
pub type HashError = TreeError;

fn ignored(name: &str) -> bool {
    name == ".git" || name == "__pycache__" || name.ends_with(".pyc")
}

/// `sha256:<hex>` of a submission file or folder.
pub fn content_hash(path: &Path) -> Result<String, HashError> {
    let meta = std::fs::metadata(path).map_err(|source| TreeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut h = Sha256::new();
    let mut budget = MAX_SUBMISSION_BYTES;
    if meta.is_dir() {
        h.update(b"dir\0");
        let tree = submission_tree::scan(path, |n| ignored(&n.to_string_lossy()))?;
        // Files and links, by relative path (folders only through the paths they hold).
        let mut files: Vec<(&PathBuf, &Kind)> = tree
            .entries
            .iter()
            .filter(|e| !matches!(e.kind, Kind::Dir { .. }))
            .map(|e| (&e.rel, &e.kind))
            .collect();
        files.sort_by(|a, b| a.0.cmp(b.0));
        for (rel, kind) in files {
            h.update(rel.to_string_lossy().as_bytes());
            h.update(b"\0");
            match kind {
                Kind::Link { target } => {
                    h.update(b"link\0");
                    h.update(target.to_string_lossy().as_bytes());
                }
                _ => {
                    let full = path.join(rel);
                    let (file, _) = submission_tree::open_regular(&full)?;
                    let exec = file
                        .metadata()
                        .map_err(|source| TreeError::Io {
                            path: full.clone(),
                            source,
                        })?
                        .permissions()
                        .mode()
                        & 0o111
                        != 0;
                    h.update(if exec { b"x\0" } else { b"-\0" });
                    submission_tree::read_counted(file, &full, path, &mut budget, |b| {
                        h.update(b);
                        Ok::<_, TreeError>(())
                    })?;
                }
            }
            h.update(b"\0");
        }
    } else {
        // A file given as the submission itself: followed if it is a link (the caller chose it).
        h.update(b"file\0");
        let (file, _) = submission_tree::open_regular_following(path)?;
        let exec = meta.permissions().mode() & 0o111 != 0;
        h.update(if exec { b"x\0" } else { b"-\0" });
        submission_tree::read_counted(file, path, path, &mut budget, |b| {
            h.update(b);
            Ok::<_, TreeError>(())
        })?;
    }
    Ok(format!(
        "sha256:{}",
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_hash_ignores_caches_and_location() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            std::fs::create_dir_all(d.join("src")).unwrap();
            std::fs::write(d.join("src/server.py"), "print(1)\n").unwrap();
            std::fs::write(d.join("classchat.toml"), "server = \"x {port}\"\n").unwrap();
        }
        std::fs::create_dir_all(b.path().join("src/__pycache__")).unwrap();
        std::fs::write(b.path().join("src/__pycache__/m.pyc"), "junk").unwrap();
        let ha = content_hash(a.path()).unwrap();
        assert_eq!(ha, content_hash(b.path()).unwrap());
        std::fs::write(b.path().join("src/server.py"), "print(2)\n").unwrap();
        assert_ne!(ha, content_hash(b.path()).unwrap());
        assert!(content_hash(&a.path().join("missing")).is_err());
    }

    #[test]
    fn the_hash_of_a_folder_is_what_it_always_was() {
        // Computed by the hash before the walk of `submission_tree` replaced its own (SHA-256 of
        // "dir\0", then per file in path order its path, "\0", "x\0"/"-\0" and bytes, or
        // "link\0" and target, and "\0"): records graded before keep their resumable hashes.
        let d = tempfile::tempdir().unwrap();
        let f = d.path();
        std::fs::create_dir(f.join("src")).unwrap();
        std::fs::write(f.join("src/server.py"), "print(1)\n").unwrap();
        std::fs::set_permissions(
            f.join("src/server.py"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(f.join("classchat.toml"), "server = \"x {port}\"\n").unwrap();
        std::os::unix::fs::symlink("src/server.py", f.join("link.py")).unwrap();
        assert_eq!(
            content_hash(f).unwrap(),
            "sha256:44062eb9257338c53316e0b14d8f31a673d561eea377f18c6f15398c24620e4a"
        );
    }

    #[test]
    fn a_fifo_or_a_link_leaving_the_folder_is_refused_not_opened() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("main.py"), "x").unwrap();
        nix::unistd::mkfifo(&d.path().join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = content_hash(d.path()).unwrap_err();
        assert!(
            e.is_refusal() && e.to_string().contains("a FIFO (named pipe)"),
            "{e}"
        );
        std::fs::remove_file(d.path().join("pipe")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("secret")).unwrap();
        let e = content_hash(d.path()).unwrap_err();
        assert!(e.to_string().contains("leaving its folder"), "{e}");
    }
}
