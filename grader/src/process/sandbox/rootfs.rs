//! The minimal root a confined student process sees (as root, or in the grader's own user
//! namespace, see [`super::userns`]): a fresh file-system tree
//! built in a private mount namespace and entered with `pivot_root`, so the host's tree, with
//! its Unix socket files (a Docker socket, systemd's private socket, an ssh-agent), its homes,
//! the grader's build tree, task files and reports, is not reachable at all.
//!
//! What the tree holds ([`Plan::new`]):
//! - read-only: the system folders `/usr`, `/bin`, `/sbin`, `/lib*`, `/etc`, `/opt` (those that
//!   exist; a `/bin` that is a symbolic link stays one), every `PATH` folder elsewhere (a
//!   `shims` folder brings its parent: pyenv, rbenv and asdf keep their versions there), the
//!   installation of each program the command names and of the interpreter on a script's `#!`
//!   line (the folder above its `bin`), and the extra folders the caller names (the submission,
//!   a toolchain);
//! - read-write: the process's HOME and working folder (at their own paths), and private, empty,
//!   size-limited `tmpfs` folders `/tmp`, `/var/tmp`, `/run` and `/dev/shm` (nothing written there
//!   reaches the host or outlives the process);
//! - `/dev` with only `null`, `zero`, `full`, `random`, `urandom` and the `fd`, `stdin`,
//!   `stdout`, `stderr` links; no terminal;
//! - `/proc`, a fresh instance mounted by the init of the process's own PID namespace (see
//!   [`super::Prepared::become_init`]), so it lists only that namespace's processes, with
//!   `hidepid=invisible` besides: the init itself (root's, or non-dumpable) is hidden too;
//! - covered: each folder of `hidden` that would otherwise be visible (an empty read-only
//!   folder), and each file of `conceal` that would be (the grader's binary and the bundled
//!   references, replaced by an empty character device, so they can be neither read nor run).
//!
//! Everything is prepared in the parent ([`Plan::new`]); [`Plan::enter`] runs in the forked
//! child and only makes system calls on that data (no allocation).

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::libc;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// System folders shown read-only (where they exist).
const SYSTEM: [&str; 9] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
];
/// Device nodes bound into `/dev`.
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];
/// Private scratch folders: path, tmpfs options.
const SCRATCH: [(&str, &CStr); 4] = [
    ("/tmp", c"mode=1777,size=256m"),
    ("/var/tmp", c"mode=1777,size=64m"),
    ("/run", c"mode=1777,size=16m"),
    ("/dev/shm", c"mode=1777,size=64m"),
];
/// A program's installation is the folder above its `bin`, if that is at least this deep (so
/// `/root/python3` brings only itself, never all of `/root`).
const MIN_PREFIX_DEPTH: usize = 3;

const MOUNT_ATTR_RDONLY: u64 = 1;
const MOUNT_ATTR_NOSUID: u64 = 2;

/// What the caller wants visible.
#[derive(Debug)]
pub struct Spec<'a> {
    /// An empty folder the new root is mounted on (removed by the caller afterwards).
    pub mount_point: &'a Path,
    /// Folders bound read-write at their own path (HOME, the working folder).
    pub writable: &'a [PathBuf],
    /// Files or folders bound read-only at their own path (the submission, a toolchain).
    pub read_only: &'a [PathBuf],
    /// The command: its first words name programs whose installation must be visible.
    pub argv: &'a [String],
    /// The process's working folder (for relative program paths).
    pub cwd: &'a Path,
    /// The `PATH` the process gets.
    pub path: &'a str,
    /// Folders covered by an empty read-only folder where visible.
    pub hidden: &'a [PathBuf],
    /// Files covered by an empty device where visible.
    pub conceal: &'a [PathBuf],
}

#[derive(Debug, Clone)]
enum Kind {
    /// A host file or folder bound at this place.
    Bind { source: PathBuf, writable: bool },
    /// A fresh tmpfs.
    Tmpfs { data: &'static CStr, writable: bool },
    /// A symbolic link with this content.
    Link(PathBuf),
    /// The fresh proc instance.
    Proc,
    /// An empty read-only folder over a visible folder.
    CoverDir,
}

/// One step of building the tree, on prepared strings.
#[derive(Debug)]
enum Op {
    Mkdir(CString),
    Touch(CString),
    Bind(CString, CString),
    Tmpfs(CString, &'static CStr, libc::c_ulong),
    Link(CString, CString),
    Proc(CString),
}

/// The prepared tree.
#[derive(Debug)]
pub struct Plan {
    root: CString,
    ops: Vec<Op>,
    /// Made read-only (with everything below), then the writable ones made writable again.
    read_only: Vec<CString>,
    writable: Vec<CString>,
    cwd: CString,
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn depth(p: &Path) -> usize {
    p.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

/// The file a command word names: a path (relative to `cwd`), or a name looked up in `path`.
fn resolve(word: &str, cwd: &Path, path: &str) -> Option<PathBuf> {
    if word.is_empty() {
        return None;
    }
    let found = if word.contains('/') {
        Some(cwd.join(word))
    } else {
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| Path::new(d).join(word))
            .find(|p| p.is_file())
    }?;
    found.is_file().then_some(found)
}

/// A script's interpreter (the `#!` line; through `env`, the program it names).
fn interpreter(file: &Path, cwd: &Path, path: &str) -> Option<PathBuf> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(file).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if first.ends_with("/env") {
        let next = words.find(|w| !w.starts_with('-'))?;
        resolve(next, cwd, path)
    } else {
        resolve(first, cwd, path)
    }
}

/// The installation an executable belongs to (see [`MIN_PREFIX_DEPTH`]), or the file itself.
fn installation(exe: &Path) -> PathBuf {
    let parent = exe.parent();
    let above_bin = parent
        .filter(|p| matches!(p.file_name().and_then(|n| n.to_str()), Some("bin" | "sbin")))
        .and_then(Path::parent);
    [above_bin, parent]
        .into_iter()
        .flatten()
        .find(|p| depth(p) >= MIN_PREFIX_DEPTH)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| exe.to_path_buf())
}

impl Plan {
    /// Prepares the tree (see the module comment).
    pub fn new(spec: &Spec<'_>) -> io::Result<Self> {
        let mut at: BTreeMap<PathBuf, Kind> = BTreeMap::new();
        let visible = |at: &BTreeMap<PathBuf, Kind>, p: &Path| {
            at.iter().any(|(t, k)| {
                matches!(k, Kind::Bind { source, .. } if source == t) && p.starts_with(t)
            })
        };
        let bind_ro = |at: &mut BTreeMap<PathBuf, Kind>, p: &Path| {
            if let Ok(c) = std::fs::canonicalize(p)
                && c != Path::new("/")
                && !visible(at, &c)
            {
                at.insert(
                    c.clone(),
                    Kind::Bind {
                        source: c,
                        writable: false,
                    },
                );
            }
        };
        for dir in SYSTEM {
            let p = Path::new(dir);
            match std::fs::symlink_metadata(p) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(to) = std::fs::read_link(p) {
                        at.insert(p.to_path_buf(), Kind::Link(to));
                    }
                }
                Ok(m) if m.is_dir() => {
                    at.insert(
                        p.to_path_buf(),
                        Kind::Bind {
                            source: p.to_path_buf(),
                            writable: false,
                        },
                    );
                }
                _ => {}
            }
        }
        for dir in spec.path.split(':').filter(|d| d.starts_with('/')) {
            let d = Path::new(dir);
            if !d.is_dir() {
                continue;
            }
            let d = if d.file_name().is_some_and(|n| n == "shims") {
                d.parent().unwrap_or(d)
            } else {
                d
            };
            if depth(d) >= 2 {
                bind_ro(&mut at, d);
            }
        }
        for p in spec.read_only {
            bind_ro(&mut at, p);
        }
        for (path, data) in SCRATCH {
            at.insert(
                PathBuf::from(path),
                Kind::Tmpfs {
                    data,
                    writable: true,
                },
            );
        }
        for p in spec.writable {
            let c = std::fs::canonicalize(p)?;
            at.insert(
                c.clone(),
                Kind::Bind {
                    source: c,
                    writable: true,
                },
            );
        }
        // The programs the command starts, and their interpreters.
        for word in spec.argv.iter().take(2) {
            let Some(exe) = resolve(word, spec.cwd, spec.path) else {
                continue;
            };
            let script = interpreter(&exe, spec.cwd, spec.path);
            for e in std::iter::once(exe).chain(script) {
                if let Ok(c) = std::fs::canonicalize(&e)
                    && !visible(&at, &c)
                {
                    bind_ro(&mut at, &installation(&c));
                }
            }
        }
        at.insert(
            PathBuf::from("/dev"),
            Kind::Tmpfs {
                data: c"mode=0755,size=64k",
                writable: false,
            },
        );
        for d in DEVICES {
            let p = Path::new("/dev").join(d);
            if p.exists() {
                at.insert(
                    p.clone(),
                    Kind::Bind {
                        source: p,
                        writable: true,
                    },
                );
            }
        }
        for (name, to) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            at.insert(Path::new("/dev").join(name), Kind::Link(PathBuf::from(to)));
        }
        at.insert(PathBuf::from("/proc"), Kind::Proc);
        for h in spec.hidden {
            if let Ok(c) = std::fs::canonicalize(h)
                && c.is_dir()
                && visible(&at, &c)
                && !at.contains_key(&c)
            {
                at.insert(c, Kind::CoverDir);
            }
        }
        for f in spec.conceal {
            if let Ok(c) = std::fs::canonicalize(f)
                && c.is_file()
                && visible(&at, &c)
                && !at.contains_key(&c)
            {
                at.insert(
                    c,
                    Kind::Bind {
                        source: PathBuf::from("/dev/null"),
                        writable: false,
                    },
                );
            }
        }
        Self::from_places(spec, &at)
    }

    fn from_places(spec: &Spec<'_>, at: &BTreeMap<PathBuf, Kind>) -> io::Result<Self> {
        let root = std::fs::canonicalize(spec.mount_point)?;
        let inside = |p: &Path| -> io::Result<CString> {
            let rel = p.strip_prefix("/").unwrap_or(p);
            cstring(&root.join(rel))
        };
        // A place below a host bind exists already (the host's own file at the same path);
        // anything else is made in our tmpfs.
        let on_host = |p: &Path| {
            at.iter().any(|(t, k)| {
                matches!(k, Kind::Bind { source, .. } if source.is_dir())
                    && p != t
                    && p.starts_with(t)
            })
        };
        let mut ops = Vec::new();
        let mut made: Vec<PathBuf> = Vec::new();
        let mut read_only = Vec::new();
        let mut writable = Vec::new();
        for (target, kind) in at {
            if on_host(target) && matches!(kind, Kind::Link(_)) {
                continue;
            }
            // Parents first.
            let mut parents: Vec<&Path> = target.ancestors().skip(1).collect();
            parents.reverse();
            for a in parents {
                if a == Path::new("/")
                    || on_host(a)
                    || at.contains_key(a)
                    || made.iter().any(|m| m == a)
                {
                    continue;
                }
                ops.push(Op::Mkdir(inside(a)?));
                made.push(a.to_path_buf());
            }
            let place = inside(target)?;
            let fresh = !on_host(target);
            match kind {
                Kind::Bind {
                    source,
                    writable: rw,
                } => {
                    if fresh {
                        if source.is_dir() {
                            ops.push(Op::Mkdir(place.clone()));
                        } else {
                            ops.push(Op::Touch(place.clone()));
                        }
                    }
                    ops.push(Op::Bind(cstring(source)?, place.clone()));
                    if *rw {
                        writable.push(place);
                    } else {
                        read_only.push(place);
                    }
                }
                Kind::Tmpfs { data, writable: rw } => {
                    if fresh {
                        ops.push(Op::Mkdir(place.clone()));
                    }
                    // /dev holds the bound device nodes; the scratch folders need none.
                    let flags = if target == Path::new("/dev") {
                        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC
                    } else {
                        MsFlags::MS_NOSUID | MsFlags::MS_NODEV
                    };
                    ops.push(Op::Tmpfs(place.clone(), data, flags.bits()));
                    if *rw {
                        writable.push(place);
                    } else {
                        read_only.push(place);
                    }
                }
                Kind::Link(to) => ops.push(Op::Link(cstring(to)?, place)),
                Kind::Proc => {
                    ops.push(Op::Mkdir(place.clone()));
                    ops.push(Op::Proc(place));
                }
                Kind::CoverDir => {
                    let flags = (MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC)
                        .bits();
                    ops.push(Op::Tmpfs(place, c"mode=0555,size=4k", flags));
                }
            }
        }
        Ok(Self {
            root: cstring(&root)?,
            ops,
            read_only,
            writable,
            cwd: cstring(&std::fs::canonicalize(spec.cwd)?)?,
        })
    }

    /// In the child, in a fresh mount namespace whose mounts are already private: builds the
    /// tree on the mount point and makes it the root; the working folder is `cwd` afterwards.
    pub fn enter(&self) -> io::Result<()> {
        let none: Option<&CStr> = None;
        mount(
            Some(c"tmpfs"),
            self.root.as_c_str(),
            Some(c"tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(c"mode=0755,size=1m"),
        )?;
        for op in &self.ops {
            match op {
                Op::Mkdir(p) => {
                    // SAFETY: a NUL-terminated path we own.
                    if unsafe { libc::mkdir(p.as_ptr(), 0o755) } != 0 {
                        let e = io::Error::last_os_error();
                        if e.raw_os_error() != Some(libc::EEXIST) {
                            return Err(e);
                        }
                    }
                }
                Op::Touch(p) => {
                    // SAFETY: as above; the descriptor is closed at once.
                    let fd = unsafe {
                        libc::open(
                            p.as_ptr(),
                            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                            0o644,
                        )
                    };
                    if fd < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // SAFETY: the descriptor just opened.
                    unsafe { libc::close(fd) };
                }
                Op::Bind(from, to) => mount(
                    Some(from.as_c_str()),
                    to.as_c_str(),
                    none,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    none,
                )?,
                Op::Tmpfs(at, data, flags) => mount(
                    Some(c"tmpfs"),
                    at.as_c_str(),
                    Some(c"tmpfs"),
                    MsFlags::from_bits_truncate(*flags),
                    Some(*data),
                )?,
                Op::Link(to, at) => {
                    // SAFETY: two NUL-terminated paths we own.
                    if unsafe { libc::symlink(to.as_ptr(), at.as_ptr()) } != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Op::Proc(at) => {
                    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
                    let r = mount(
                        Some(c"proc"),
                        at.as_c_str(),
                        Some(c"proc"),
                        flags,
                        Some(c"hidepid=invisible"),
                    );
                    if r.is_err() {
                        // Before Linux 5.8 the option was a number.
                        mount(
                            Some(c"proc"),
                            at.as_c_str(),
                            Some(c"proc"),
                            flags,
                            Some(c"hidepid=2"),
                        )?;
                    }
                }
            }
        }
        // Not `nodev`: it would reach the device nodes bound below /dev.
        let ro = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID;
        for p in &self.read_only {
            if let Err(e) = set_mount_attr(p, ro, 0, true) {
                if e.raw_os_error() != Some(libc::ENOSYS) {
                    return Err(e);
                }
                // Before Linux 5.12: one level only.
                remount_read_only(p)?;
            }
        }
        for p in &self.writable {
            match set_mount_attr(p, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, true) {
                Err(e) if e.raw_os_error() != Some(libc::ENOSYS) => return Err(e),
                _ => {}
            }
        }
        nix::unistd::chdir(self.root.as_c_str())?;
        // SAFETY: pivot_root with two NUL-terminated paths: the old root is stacked on "." and
        // detached right after.
        if unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        umount2(c".", MntFlags::MNT_DETACH)?;
        nix::unistd::chdir(c"/")?;
        remount_read_only(c"/")?;
        nix::unistd::chdir(self.cwd.as_c_str())?;
        Ok(())
    }
}

fn remount_read_only(p: &CStr) -> io::Result<()> {
    let none: Option<&CStr> = None;
    mount(
        none,
        p,
        none,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID,
        none,
    )?;
    Ok(())
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)` on `path` (and everything below it with `recursive`).
pub(super) fn set_mount_attr(path: &CStr, set: u64, clear: u64, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    // SAFETY: mount_setattr reads a NUL-terminated path and a mount_attr of the given size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_installation_is_the_folder_above_bin_unless_too_shallow() {
        assert_eq!(
            installation(Path::new("/root/.pyenv/versions/3.11.7/bin/python3.11")),
            Path::new("/root/.pyenv/versions/3.11.7")
        );
        assert_eq!(
            installation(Path::new("/opt/jdk/bin/java")),
            Path::new("/opt/jdk/bin")
        );
        assert_eq!(
            installation(Path::new("/root/python3")),
            Path::new("/root/python3")
        );
    }

    #[test]
    fn the_plan_shows_system_folders_and_hides_the_rest() {
        let home = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let writable = [home.path().to_path_buf()];
        let spec = Spec {
            mount_point: root.path(),
            writable: &writable,
            argv: &["sh".to_string(), "-c".to_string()],
            cwd: home.path(),
            path: "/usr/bin:/bin",
            read_only: &[],
            hidden: &[],
            conceal: &[],
        };
        let plan = Plan::new(&spec).unwrap();
        let binds: Vec<String> = plan
            .ops
            .iter()
            .filter_map(|o| match o {
                Op::Bind(from, _) => Some(from.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        assert!(binds.iter().any(|b| b == "/usr"), "{binds:?}");
        assert!(
            !binds
                .iter()
                .any(|b| b == "/root" || b == "/home" || b == "/var" || b == "/tmp"),
            "{binds:?}"
        );
        let home_c = std::fs::canonicalize(home.path()).unwrap();
        assert!(binds.iter().any(|b| Path::new(b) == home_c), "{binds:?}");
    }
}
