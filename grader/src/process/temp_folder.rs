//! Temporary folders the grader gives student programs and builds (HOMEs, working folders, a
//! build's copy), and their removal.
//!
//! A [`TempFolder`] is removed with [`remove_tree`] when dropped, which also removes what its
//! program made unwritable (`chmod 000`, Go's read-only module cache). [`remove_temp_folders`]
//! is what the guard ([`super::watchdog`]) runs after a grader was killed outright: it removes the
//! folders that grader left in TMPDIR, recognised by the grader's full name prefix
//! ([`GraderId::home_prefix`], [`GraderId::cwd_prefix`]).
//!
//! Guarantees: nothing is ever followed through a symbolic link and no link's target is changed;
//! [`remove_temp_folders`] only removes real folders named with the given grader's full prefix
//! (never a folder of another grader, of a reused pid, of another PID namespace, or named in the
//! older pid-only way).

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::grader_id::GraderId;

/// Removes the temporary HOME and working folders the grader `grader` left in `tmp` (a grader
/// that ends normally has removed its own; one killed outright cannot). Only real folders
/// (never a symbolic link) named with that grader's full prefix are touched; what cannot be
/// removed stays.
pub(super) fn remove_temp_folders(tmp: &Path, grader: &GraderId) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| grader.names_temp_folder(n)) {
            continue;
        }
        if fs::symlink_metadata(entry.path()).is_ok_and(|m| m.file_type().is_dir()) {
            // Never follows symbolic links, neither this path nor inside it.
            let _ = remove_tree(&entry.path());
        }
    }
}

/// A temporary folder (a HOME, a working folder, a build's copy) removed with [`remove_tree`]
/// when dropped, so a subfolder its program left without write permission (`chmod 000`, Go's
/// read-only module cache) does not keep it in TMPDIR, as it would `tempfile::TempDir`'s.
#[derive(Debug)]
pub struct TempFolder(PathBuf);

impl TempFolder {
    /// A new, empty folder in TMPDIR whose name starts with `prefix`.
    pub fn new(prefix: &str) -> io::Result<Self> {
        Ok(tempfile::Builder::new().prefix(prefix).tempdir()?.into())
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl From<tempfile::TempDir> for TempFolder {
    fn from(dir: tempfile::TempDir) -> Self {
        Self(dir.keep())
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = remove_tree(&self.0);
    }
}

/// Removes `path` and everything in it, also what its owner made unwritable: every real folder
/// in it that the caller owns first gets the owner's rwx. Nothing is ever followed through a
/// symbolic link and no link's target is changed: a link (`path` itself included) is removed as
/// a link; each folder is opened without following links (`O_NOFOLLOW`) and changed, listed and
/// emptied through that descriptor only. What cannot be removed stays; the first error is
/// returned. A missing `path` is no error.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if !m.file_type().is_dir() => fs::remove_file(path),
        Ok(_) => {
            let emptied = empty_folder(nix::fcntl::AT_FDCWD, path.as_os_str());
            // rmdir never follows a link.
            let removed = fs::remove_dir(path);
            emptied.and(removed)
        }
    }
}

/// Gives the folder `name` (in `parent`) the owner's rwx if the caller owns it, then removes
/// everything in it; never through a symbolic link.
fn empty_folder(parent: impl AsFd, name: &std::ffi::OsStr) -> io::Result<()> {
    use nix::fcntl::{OFlag, openat};
    use nix::unistd::{UnlinkatFlags, unlinkat};
    // O_PATH needs no permission on the folder; O_NOFOLLOW | O_DIRECTORY refuse a link.
    let dir = openat(
        parent,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // The descriptor's /proc link reaches exactly the folder opened, never a link.
    let itself = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let st = nix::sys::stat::fstat(&dir)?;
    let mode = st.st_mode & 0o7777;
    if st.st_uid == nix::unistd::geteuid().as_raw() && mode & 0o700 != 0o700 {
        fs::set_permissions(&itself, fs::Permissions::from_mode(mode | 0o700))?;
    }
    let mut first_error = None;
    for entry in fs::read_dir(&itself)? {
        let result = entry.and_then(|entry| {
            let name = entry.file_name();
            // The entry's own type (d_type or lstat): a link is not a folder.
            if entry.file_type()?.is_dir() {
                let emptied = empty_folder(&dir, &name);
                let removed = unlinkat(&dir, name.as_os_str(), UnlinkatFlags::RemoveDir);
                emptied.and(removed.map_err(io::Error::from))
            } else {
                unlinkat(&dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir)
                    .map_err(io::Error::from)
            }
        });
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> GraderId {
        GraderId::current().unwrap()
    }

    #[test]
    fn only_the_graders_own_real_folders_are_removed() {
        let id = me();
        let tmp = tempfile::tempdir().unwrap();
        let keep = tempfile::tempdir().unwrap();
        let precious = keep.path().join("precious");
        fs::write(&precious, "must survive").unwrap();
        let t = tmp.path();
        let home = t.join(format!("{}own1", id.home_prefix()));
        let cwd = t.join(format!("{}own2", id.cwd_prefix()));
        for own in [&home, &cwd] {
            fs::create_dir_all(own.join("sub")).unwrap();
            fs::write(own.join("sub/file"), "x").unwrap();
            // A link inside one of ours is removed as a link, never followed.
            std::os::unix::fs::symlink(keep.path(), own.join("sub/link")).unwrap();
        }
        let pid = id.pid();
        let scope = format!("{:08x}", id.scope());
        let decoys = [
            format!("grader-cwd-{pid}-mine"),
            format!("grader-home-{pid}-mine"),
            format!("grader-cwd-{pid}0-{}-{scope}-x", id.start_time()),
            format!("grader-cwd-{pid}-{}-{scope}-x", id.start_time() + 1),
            format!(
                "grader-cwd-{pid}-{}-{:08x}-x",
                id.start_time(),
                id.scope() ^ 1
            ),
        ];
        for d in &decoys {
            fs::create_dir(t.join(d)).unwrap();
        }
        // Named with our full prefix, but a link (to a folder that must survive) and a file.
        let link = t.join(format!("{}link", id.cwd_prefix()));
        std::os::unix::fs::symlink(keep.path(), &link).unwrap();
        let file = t.join(format!("{}file", id.home_prefix()));
        fs::write(&file, "not a folder").unwrap();

        remove_temp_folders(t, &id);

        assert!(!home.exists() && !cwd.exists());
        for d in &decoys {
            assert!(t.join(d).is_dir(), "{d} was removed");
        }
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(file.is_file());
        assert_eq!(fs::read_to_string(&precious).unwrap(), "must survive");
    }

    #[test]
    fn a_tree_is_removed_with_its_locked_folders_but_never_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let kept = outside.path().join("kept");
        fs::create_dir(&kept).unwrap();
        fs::write(kept.join("file"), "must survive").unwrap();
        fs::set_permissions(&kept, fs::Permissions::from_mode(0o500)).unwrap();
        let root = tmp.path().join("tree");
        fs::create_dir_all(root.join("locked/inner/deeper")).unwrap();
        fs::write(root.join("locked/inner/file"), "x").unwrap();
        std::os::unix::fs::symlink(&kept, root.join("locked/inner/link")).unwrap();
        std::os::unix::fs::symlink(&kept, root.join("link")).unwrap();
        fs::set_permissions(root.join("locked/inner"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        let folder = TempFolder::from(tempfile::tempdir_in(tmp.path()).unwrap());
        let locked = folder.path().join("locked");
        fs::create_dir(&locked).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        let folder_path = folder.path().to_path_buf();

        remove_tree(&root).unwrap();
        drop(folder);

        assert!(!root.exists() && !folder_path.exists());
        let mode = fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o500, "a link's target was changed");
        assert_eq!(
            fs::read_to_string(kept.join("file")).unwrap(),
            "must survive"
        );
        // A link given itself is removed as a link; a missing path is no error.
        let link = tmp.path().join("top-link");
        std::os::unix::fs::symlink(&kept, &link).unwrap();
        remove_tree(&link).unwrap();
        assert!(fs::symlink_metadata(&link).is_err() && kept.join("file").exists());
        remove_tree(&tmp.path().join("missing")).unwrap();
        fs::set_permissions(&kept, fs::Permissions::from_mode(0o700)).unwrap();
    }
}
