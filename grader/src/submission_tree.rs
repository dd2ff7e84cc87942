//! What a submission folder may hold, read without trusting it: the one walk that the content
//! hash ([`crate::fingerprint`]) and the copy of a folder ([`crate::submission_copy`]) share.
//!
//! A submission is student data, and the grader often reads it as root. So:
//! - only **regular files**, **folders** and **symbolic links** are accepted. A FIFO, a socket or
//!   a device is refused ([`TreeError::Special`]) from its `lstat` alone, never opened (opening a
//!   FIFO blocks until someone writes to it: the grader would hang);
//! - a symbolic link is **never followed**: it is hashed by its target text and copied as a link.
//!   One whose target is absolute, climbs out of the folder with `..`, or (when it resolves)
//!   resolves outside the folder is refused ([`TreeError::LinkLeaves`]: "submission contains a
//!   symbolic link leaving its folder: path -> target"), since a program started in a copy
//!   would read through it whatever it points at. A link that does not resolve is judged by its
//!   text alone;
//! - a regular file is opened with `O_NOFOLLOW | O_NONBLOCK` and checked again on the open
//!   descriptor ([`open_regular`]), so a file swapped for a link or a FIFO after the walk is
//!   refused, not followed or waited on;
//! - the walk stops with [`TreeError::TooLarge`] past [`MAX_SUBMISSION_BYTES`] of regular files
//!   (by their apparent size: a sparse 2 GB file counts 2 GB) and with
//!   [`TreeError::TooManyEntries`] past [`MAX_SUBMISSION_ENTRIES`] files, folders and links,
//!   before anything is read or copied; readers also stop at the byte limit if files grow while
//!   they are read;
//! - the walk is iterative (no recursion depth to exhaust) and sorted (the same order on every
//!   machine), and leaves out the entries the caller skips (`.git`) without looking inside them.
//!
//! Every refusal is the submission's problem and says what to change ([`TreeError::is_refusal`]);
//! only [`TreeError::Io`] (a file that cannot be read) may be the machine's.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// The most bytes of regular files a submission may hold (by apparent size).
pub const MAX_SUBMISSION_BYTES: u64 = 200 * 1024 * 1024;
/// The most files, folders and links a submission may hold.
pub const MAX_SUBMISSION_ENTRIES: usize = 20_000;

/// A submission that cannot be hashed or copied safely.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A symbolic link that points out of the submission's folder.
    #[error(
        "submission contains a symbolic link leaving its folder: {} -> {}; replace it by the file itself",
        .path.display(),
        .target.display()
    )]
    LinkLeaves {
        /// The link.
        path: PathBuf,
        /// What it points at (its text).
        target: PathBuf,
    },
    /// Something that is neither a regular file, a folder nor a symbolic link.
    #[error(
        "submission contains {kind}, which is not a regular file: {}; remove it (a submission holds regular files, folders and symbolic links within it)",
        .path.display()
    )]
    Special {
        /// Where.
        path: PathBuf,
        /// What it is ("a FIFO (named pipe)", "a socket", "a device").
        kind: &'static str,
    },
    /// More bytes than [`MAX_SUBMISSION_BYTES`].
    #[error(
        "submission {} holds more than {} MiB of files (at least {} MiB{}); remove what is not needed to build and run it (data files, build output, archives)",
        .root.display(),
        MAX_SUBMISSION_BYTES >> 20,
        .bytes >> 20,
        .largest.as_ref().map(|(p, n)| format!(", {} alone {} MiB", p.display(), n >> 20)).unwrap_or_default()
    )]
    TooLarge {
        /// The submission.
        root: PathBuf,
        /// How many bytes were counted when the limit was passed.
        bytes: u64,
        /// The largest file seen, with its size.
        largest: Option<(PathBuf, u64)>,
    },
    /// More entries than [`MAX_SUBMISSION_ENTRIES`].
    #[error(
        "submission {} holds more than {} files, folders and links; remove what is not needed to build and run it (dependencies, build output)",
        .root.display(),
        MAX_SUBMISSION_ENTRIES
    )]
    TooManyEntries {
        /// The submission.
        root: PathBuf,
    },
    /// A file or folder could not be read.
    #[error("cannot read {}", .path.display())]
    Io {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl TreeError {
    /// True when the submission's content is refused (its own problem, for the student to fix),
    /// false when a file could not be read.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, TreeError::Io { .. })
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TreeError + '_ {
        move |source| TreeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What one entry of a submission is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A folder, with its permission bits.
    Dir {
        /// `st_mode & 0o7777`.
        mode: u32,
    },
    /// A regular file, with its apparent size and permission bits (as walked).
    File {
        /// Apparent size in bytes.
        len: u64,
        /// `st_mode & 0o7777`.
        mode: u32,
    },
    /// A symbolic link that stays inside the folder, with its target text.
    Link {
        /// The target, as the link says it.
        target: PathBuf,
    },
}

/// One entry of a submission folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the folder.
    pub rel: PathBuf,
    /// What it is.
    pub kind: Kind,
}

/// A walked submission folder.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The folder.
    pub root: PathBuf,
    /// Its entries, every folder before what it holds, names sorted within a folder.
    pub entries: Vec<Entry>,
    /// The apparent size of its regular files.
    pub bytes: u64,
}

/// Walks the folder `root` (followed if `root` itself is a link: the caller chose it), leaving
/// out every entry whose name `skip` accepts, and checks everything listed in the module's
/// comment. Opens no file.
pub fn scan(root: &Path, skip: impl Fn(&OsStr) -> bool) -> Result<Tree, TreeError> {
    let real_root = std::fs::canonicalize(root).map_err(TreeError::io(root))?;
    let mut tree = Tree {
        root: root.to_path_buf(),
        entries: Vec::new(),
        bytes: 0,
    };
    let mut largest: Option<(PathBuf, u64)> = None;
    // Folders still to list, relative to the root; listed depth-first in sorted order.
    let mut pending: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel_dir) = pending.pop() {
        let dir = root.join(&rel_dir);
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&dir)
            .map_err(TreeError::io(&dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(TreeError::io(&dir))?;
        names.sort();
        let mut subfolders = Vec::new();
        for name in names {
            if skip(&name) {
                continue;
            }
            let rel = rel_dir.join(&name);
            let path = root.join(&rel);
            let meta = std::fs::symlink_metadata(&path).map_err(TreeError::io(&path))?;
            let ft = meta.file_type();
            let mode = meta.mode() & 0o7777;
            let kind = if ft.is_dir() {
                subfolders.push(rel.clone());
                Kind::Dir { mode }
            } else if ft.is_file() {
                let len = meta.len();
                tree.bytes = tree.bytes.saturating_add(len);
                if largest.as_ref().is_none_or(|(_, n)| len > *n) {
                    largest = Some((path.clone(), len));
                }
                if tree.bytes > MAX_SUBMISSION_BYTES {
                    return Err(TreeError::TooLarge {
                        root: root.to_path_buf(),
                        bytes: tree.bytes,
                        largest,
                    });
                }
                Kind::File { len, mode }
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&path).map_err(TreeError::io(&path))?;
                if leaves(&real_root, &path, &rel, &target) {
                    return Err(TreeError::LinkLeaves { path, target });
                }
                Kind::Link { target }
            } else {
                return Err(TreeError::Special {
                    path,
                    kind: special_kind(ft),
                });
            };
            tree.entries.push(Entry { rel, kind });
            if tree.entries.len() > MAX_SUBMISSION_ENTRIES {
                return Err(TreeError::TooManyEntries {
                    root: root.to_path_buf(),
                });
            }
        }
        // Reversed onto the stack, so the first in sorted order is listed next.
        pending.extend(subfolders.into_iter().rev());
    }
    Ok(tree)
}

fn special_kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

/// Whether the link at `path` (`rel` inside the folder whose real path is `real_root`) with
/// `target` points out of the folder: absolute, climbing above the folder by its text, or
/// resolving (when it does) outside the folder's real path.
fn leaves(real_root: &Path, path: &Path, rel: &Path, target: &Path) -> bool {
    let mut depth = rel.parent().map_or(0, |p| p.components().count());
    for c in target.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(_) => depth += 1,
            Component::ParentDir if depth > 0 => depth -= 1,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    match std::fs::canonicalize(path) {
        Ok(real) => !real.starts_with(real_root),
        // Dangling, or a loop: its text is all there is to judge.
        Err(_) => false,
    }
}

/// Opens a regular file for reading without following a final symbolic link and without
/// blocking on a FIFO, and checks on the open descriptor that it is a regular file. Returns it
/// with its size.
pub fn open_regular(path: &Path) -> Result<(File, u64), TreeError> {
    open_checked(path, nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
}

/// As [`open_regular`], but a final symbolic link is followed (for a path the caller chose, such
/// as the submission file `grader run` was given).
pub fn open_regular_following(path: &Path) -> Result<(File, u64), TreeError> {
    open_checked(path, nix::libc::O_NONBLOCK)
}

fn open_checked(path: &Path, flags: i32) -> Result<(File, u64), TreeError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            // O_NOFOLLOW on a link.
            Some(nix::libc::ELOOP) => TreeError::Special {
                path: path.to_path_buf(),
                kind: "a symbolic link where a file was",
            },
            _ => TreeError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
    let meta = file.metadata().map_err(TreeError::io(path))?;
    if !meta.file_type().is_file() {
        return Err(TreeError::Special {
            path: path.to_path_buf(),
            kind: special_kind(meta.file_type()),
        });
    }
    Ok((file, meta.len()))
}

/// Reads all of `file` (at `path`, in the submission `root`) into `sink` in chunks, counting
/// against `budget` (bytes still allowed): past it, [`TreeError::TooLarge`]. Returns the bytes
/// read.
pub fn read_counted<E: From<TreeError>>(
    mut file: impl Read,
    path: &Path,
    root: &Path,
    budget: &mut u64,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, E> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(TreeError::io(path))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        // Also a file that grows while it is read stops here.
        if total > *budget {
            return Err(TreeError::TooLarge {
                root: root.to_path_buf(),
                bytes: MAX_SUBMISSION_BYTES.saturating_add(1),
                largest: Some((path.to_path_buf(), total)),
            }
            .into());
        }
        sink(&buf[..n])?;
    }
    *budget -= total;
    Ok(total)
}

/// Reads a small regular file of a submission (`classchat.toml`) as text: not through a symbolic
/// link, never blocking on a FIFO, at most `limit` bytes.
pub fn read_small_file(path: &Path, limit: u64) -> Result<String, TreeError> {
    let too_large = || TreeError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is larger than {limit} bytes"),
        ),
    };
    let (file, len) = open_regular(path)?;
    if len > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(TreeError::io(path))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|e| TreeError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn no_skip(_: &OsStr) -> bool {
        false
    }

    #[test]
    fn links_inside_are_kept_and_links_leaving_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("sub");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f.c"), "x").unwrap();
        symlink("b/f.c", root.join("a/inside")).unwrap();
        symlink("../a/b", root.join("a/up-and-back")).unwrap();
        symlink("missing", root.join("dangling")).unwrap();
        let tree = scan(&root, no_skip).unwrap();
        let rels: Vec<&Path> = tree.entries.iter().map(|e| e.rel.as_path()).collect();
        assert_eq!(
            rels,
            [
                "a",
                "dangling",
                "a/b",
                "a/inside",
                "a/up-and-back",
                "a/b/f.c"
            ]
            .map(Path::new)
        );
        assert_eq!(tree.bytes, 1);
        for (name, target) in [
            ("abs", "/etc/passwd"),
            ("climb", "../outside"),
            ("deep", "a/../../x"),
        ] {
            symlink(target, root.join(name)).unwrap();
            let e = scan(&root, no_skip).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!(
                    "submission contains a symbolic link leaving its folder: {} -> {target}",
                    root.join(name).display()
                )),
                "{e}"
            );
            std::fs::remove_file(root.join(name)).unwrap();
        }
        // Its text stays inside, but a link on the way leads out: judged where it resolves.
        std::fs::create_dir(d.path().join("outside")).unwrap();
        symlink("..", root.join("a/b/parent")).unwrap();
        symlink("a/b/parent/../../outside", root.join("sneaky")).unwrap();
        assert!(matches!(
            scan(&root, no_skip),
            Err(TreeError::LinkLeaves { .. })
        ));
    }

    #[test]
    fn special_files_are_refused_without_being_opened() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("ok.py"), "x").unwrap();
        nix::unistd::mkfifo(&d.path().join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Would block forever if it were opened for reading.
        let e = scan(d.path(), no_skip).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "submission contains a FIFO (named pipe), which is not a regular file: {}",
                d.path().join("pipe").display()
            )),
            "{e}"
        );
        assert!(e.is_refusal());
        assert!(matches!(
            open_regular(&d.path().join("pipe")),
            Err(TreeError::Special { .. })
        ));
        // A skipped name is not even looked at.
        assert!(scan(d.path(), |n| n == "pipe").is_ok());
    }

    #[test]
    fn the_limits_stop_the_walk() {
        let d = tempfile::tempdir().unwrap();
        let big = File::create(d.path().join("sparse.bin")).unwrap();
        big.set_len(MAX_SUBMISSION_BYTES + 1).unwrap();
        let e = scan(d.path(), no_skip).unwrap_err();
        assert!(matches!(e, TreeError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("more than 200 MiB"), "{e}");
        std::fs::remove_file(d.path().join("sparse.bin")).unwrap();
        for i in 0..=MAX_SUBMISSION_ENTRIES {
            File::create(d.path().join(i.to_string())).unwrap();
        }
        let e = scan(d.path(), no_skip).unwrap_err();
        assert!(matches!(e, TreeError::TooManyEntries { .. }), "{e}");
    }

    #[test]
    fn reading_counts_against_the_budget() {
        let data = vec![7u8; 1000];
        let mut budget = 1500;
        let mut seen = 0;
        let root = Path::new("/r");
        let n = read_counted(data.as_slice(), Path::new("/r/f"), root, &mut budget, |b| {
            seen += b.len();
            Ok::<_, TreeError>(())
        })
        .unwrap();
        assert_eq!((n, seen, budget), (1000, 1000, 500));
        let e = read_counted(
            data.as_slice(),
            Path::new("/r/g"),
            root,
            &mut budget,
            |_| Ok::<_, TreeError>(()),
        )
        .unwrap_err();
        assert!(matches!(e, TreeError::TooLarge { .. }), "{e}");
    }
}
