//! Content hashes of submissions, so a batch can tell whether a submission changed since its
//! report was written.
//!
//! Guarantees: the hash depends only on the bytes, relative paths and executable bits of the
//! submission's files (not on timestamps, owners or the folder's own name or location), is the
//! same on every machine, and ignores what running the submission leaves behind: `.git`,
//! `__pycache__` folders and `*.pyc` files. Symbolic links are hashed by their target text and
//! never followed, so a link cannot pull files from outside the submission into the hash.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A submission could not be read for hashing.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path} to hash it: {source}")]
pub struct HashError {
    /// What could not be read.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

fn ignored(name: &str) -> bool {
    name == ".git" || name == "__pycache__" || name.ends_with(".pyc")
}

/// `sha256:<hex>` of a submission file or folder.
pub fn content_hash(path: &Path) -> Result<String, HashError> {
    let err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| HashError { path: p, source }
    };
    let meta = std::fs::metadata(path).map_err(err(path))?;
    let mut h = Sha256::new();
    if meta.is_dir() {
        h.update(b"dir\0");
        let mut files = Vec::new();
        collect(path, Path::new(""), &mut files)?;
        files.sort();
        for rel in files {
            let full = path.join(&rel);
            let lmeta = std::fs::symlink_metadata(&full).map_err(err(&full))?;
            h.update(rel.to_string_lossy().as_bytes());
            h.update(b"\0");
            if lmeta.file_type().is_symlink() {
                let target = std::fs::read_link(&full).map_err(err(&full))?;
                h.update(b"link\0");
                h.update(target.to_string_lossy().as_bytes());
            } else {
                let exec = lmeta.permissions().mode() & 0o111 != 0;
                h.update(if exec { b"x\0" } else { b"-\0" });
                hash_file(&full, &mut h).map_err(err(&full))?;
            }
            h.update(b"\0");
        }
    } else {
        h.update(b"file\0");
        let exec = meta.permissions().mode() & 0o111 != 0;
        h.update(if exec { b"x\0" } else { b"-\0" });
        hash_file(path, &mut h).map_err(err(path))?;
    }
    Ok(format!(
        "sha256:{}",
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

fn collect(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), HashError> {
    let dir = root.join(rel);
    let entries = std::fs::read_dir(&dir).map_err(|source| HashError {
        path: dir.clone(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| HashError {
            path: dir.clone(),
            source,
        })?;
        let name = entry.file_name();
        if ignored(&name.to_string_lossy()) {
            continue;
        }
        let child = rel.join(&name);
        let ft = entry.file_type().map_err(|source| HashError {
            path: root.join(&child),
            source,
        })?;
        if ft.is_dir() {
            collect(root, &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

fn hash_file(path: &Path, h: &mut Sha256) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
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
}
