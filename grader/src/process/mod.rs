//! Student processes: started in a session (and process group) of their own with a scrubbed environment and a fresh
//! working directory, watched (exit status, stdout on a pseudo-terminal or a pipe, stderr on a
//! pipe, all drained concurrently and capped), and ended without leftovers.
//!
//! Guarantees:
//! - every process runs in a new session and process group whose id is its pid (no controlling
//!   terminal); with a PID namespace ([`sandbox::Prepared::become_init`]) that process is the
//!   namespace's init and the program its child in the same group: the exit reported is the
//!   program's (as it would be without the namespace), the processes measured through
//!   [`StudentProcess::member_list`] leave the init out, and a SIGKILL to the group ends the
//!   whole namespace; [`StudentProcess::terminate`]
//!   sends SIGTERM to the whole group, waits a short grace, then SIGKILLs whatever is left and
//!   waits until the group is empty; dropping a [`StudentProcess`] SIGKILLs the group as a last
//!   resort, so no process outlives the grader even when a scenario is cancelled;
//! - stdout/stderr are read by their own tasks, so a chatty program never blocks on a full pipe;
//!   past the output limit the group is killed and the limit is reported;
//! - stdin is a pipe that stays open until the scenario closes it (some programs exit on EOF),
//!   or, with [`Launch::stdin_pty`], the pseudo-terminal its stdout is, in canonical mode
//!   without echo, where closing stdin types the end-of-file character ([`pty`]);
//! - resource limits ([`limits::Limits`]) are set before the program starts, and the process is
//!   confined ([`sandbox`]: the scenario's network namespace, a cgroup limiting its processes,
//!   memory and CPU share ([`cgroup`]), a minimal root, an unprivileged uid, no capabilities, a
//!   seccomp filter, no inherited descriptors) where the system allows it; an OOM kill at the
//!   memory limit is reported ([`StudentProcess::memory_exceeded`]);
//! - nothing outlives [`StudentProcess::terminate`]: besides the process group it ends every
//!   member of the process's cgroup or, without one, every descendant found through /proc's
//!   parent links and every orphan handed to the grader (a child subreaper) that carries this
//!   process's HOME; such orphans are reaped by pid (never `waitpid(-1)`: tokio owns the statuses
//!   of its own children);
//! - a grader killed outright (SIGKILL) leaves nothing either: its [`watchdog`] guard process
//!   kills what is left in its cgroups and homes; in a grader that started a guard, no process
//!   is started while none lives ([`SpawnError::Unguarded`]).

pub mod cgroup;
pub mod env;
pub mod grader_id;
pub mod limits;
pub mod procfs;
pub mod pty;
pub mod sandbox;
pub mod temp_folder;
pub mod watchdog;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, Command};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::spec::Process;
use crate::stream::{End, Stream};
use crate::transcript::{Dir, Transcript};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit status, when it exited normally.
    pub code: Option<i32>,
    /// Signal number, when a signal ended it.
    pub signal: Option<i32>,
}

impl ExitInfo {
    /// True for exit status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// True for a non-zero status or a death by signal.
    pub fn abnormal(&self) -> bool {
        !self.success()
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit status {c}"),
            (None, Some(s)) => match Signal::try_from(s) {
                Ok(sig) => write!(f, "killed by signal {s} ({})", sig.as_str()),
                Err(_) => write!(f, "killed by signal {s}"),
            },
            (None, None) => f.write_str("ended in an unknown way"),
        }
    }
}

/// Where typed lines go: a pipe, or the master side of the program's terminal.
enum Stdin {
    Pipe(ChildStdin),
    Terminal(Arc<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>),
}

/// Everything needed to start one student process.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Program and arguments (already substituted).
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Working directory; `None` for a fresh temporary one.
    pub cwd: Option<PathBuf>,
    /// Give the process a pseudo-terminal as stdout.
    pub stdout_pty: bool,
    /// Give it that pseudo-terminal as stdin too (only with `stdout_pty`): a line-reading
    /// terminal without echo instead of a pipe (see [`pty`]).
    pub stdin_pty: bool,
    /// Send stderr into the same pipe as stdout, so [`StudentProcess::stdout`] holds both in
    /// the order they were written and stderr stays empty (a build's log; not with a
    /// pseudo-terminal).
    pub stderr_to_stdout: bool,
    /// Bytes of stdout + stderr after which the process is killed.
    pub output_limit: u64,
    /// Resource limits (setrlimit) for the process and its children.
    pub limits: limits::Limits,
    /// A network namespace to join (the descriptor must stay open until `spawn` returns).
    pub netns: Option<RawFd>,
    /// Confine the process: read-only file system except HOME, the working folder and
    /// `/dev/shm`, and no capabilities (file-system part only when the grader is root).
    pub confine: bool,
    /// Put the process in a cgroup of its own (process count, memory and CPU limits) where the
    /// system allows it (without one, escaped processes are found through /proc).
    pub cgroup: bool,
    /// Folders the process must not see (the task files, the reports): with `confine` as root
    /// they are not in its minimal root, or covered by an empty read-only folder where a folder
    /// it must see holds them. Which folders are covered depends only on this list, never on
    /// the command's words (a submission inside one is refused before it gets here).
    pub hidden: Vec<PathBuf>,
    /// Files and folders shown read-only in the minimal root besides the system's (the
    /// submission's folder, a toolchain).
    pub read_only: Vec<PathBuf>,
    /// The unprivileged identity to run as (used when the grader is root and `confine` is set);
    /// HOME and a fresh working folder are given to it.
    pub run_as: Option<sandbox::RunAs>,
    /// Cover the grader's binary and the bundled reference binaries (see
    /// [`sandbox::grader_binaries`]); off only when the program is the bundled reference.
    pub conceal_grader: bool,
}

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The launch command is empty.
    #[error("the launch command is empty")]
    EmptyCommand,
    /// The OS refused to start the program.
    #[error("could not start `{program}`")]
    Start {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// Setting up pipes, the terminal or the working directory failed.
    #[error("could not set up the student's process")]
    Setup(#[source] std::io::Error),
    /// No guard process lives to end the program should the grader be killed, and none could
    /// be started ([`watchdog::ensure_guarded`]): the grader's problem, never the student's.
    #[error("refusing to start a student program without a guard process")]
    Unguarded(#[from] watchdog::GuardError),
}

/// A running (or finished) student process and its watched streams.
pub struct StudentProcess {
    /// Which role it plays.
    pub role: Process,
    /// Process id, also its process group id and session id. With a PID namespace (see
    /// [`sandbox::Prepared::become_init`]) it is the namespace's init, whose child is the
    /// program: signals to the group reach both, and [`StudentProcess::member_list`] leaves
    /// the init out.
    pub pid: i32,
    /// What it printed on stdout.
    pub stdout: Arc<Stream>,
    /// What it printed on stderr.
    pub stderr: Arc<Stream>,
    stdin: Mutex<Option<Stdin>>,
    exit: watch::Receiver<Option<ExitInfo>>,
    output_exceeded: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    /// The process's cgroup, where the system offers one.
    cgroup: Option<cgroup::Cgroup>,
    /// The PID namespace's init (the grader's child, not running student code), if any.
    init: Option<i32>,
    /// `HOME=<its home>`: how orphans it left behind are recognised without a cgroup.
    marker: String,
    /// Processes other than the leader this process was ended with (pid → start time), to be
    /// reaped by pid if they were orphans handed to the grader.
    signalled: std::sync::Mutex<HashMap<i32, u64>>,
    /// Removed when dropped, also what the program left unwritable in them.
    _cwd: Option<temp_folder::TempFolder>,
    /// The empty folder the minimal root was mounted on (in the child's namespace only).
    _root: Option<temp_folder::TempFolder>,
    _home: temp_folder::TempFolder,
}

impl StudentProcess {
    /// Starts a process. `transcript` receives its stdout (for clients) and its exit. `home`
    /// (and the working folder made for it) is removed with the process, see
    /// [`temp_folder::TempFolder`].
    pub fn spawn(
        role: Process,
        launch: &Launch,
        home: tempfile::TempDir,
        transcript: Arc<Transcript>,
    ) -> Result<Self, SpawnError> {
        let home = temp_folder::TempFolder::from(home);
        watchdog::ensure_guarded()?;
        let (program, args) = launch.argv.split_first().ok_or(SpawnError::EmptyCommand)?;
        let (cwd_dir, cwd) = match &launch.cwd {
            Some(dir) => (None, dir.clone()),
            None => {
                let dir = grader_id::cwd_prefix()
                    .and_then(|p| temp_folder::TempFolder::new(&p))
                    .map_err(SpawnError::Setup)?;
                let path = dir.path().to_path_buf();
                (Some(dir), path)
            }
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&cwd)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let lim = launch.limits;
        let marker = format!("HOME={}", home.path().display());
        let unique = home
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().replace('-', "_"))
            .unwrap_or_default();
        let cgroup = launch
            .cgroup
            .then(|| cgroup::Cgroup::create(&unique, &lim).ok())
            .flatten();
        if let Some(cg) = &cgroup {
            cg.join_rest_before_exec(&mut cmd);
        }
        let procs = cgroup.as_ref().and_then(|c| c.procs_file().ok());
        let writable = [home.path().to_path_buf(), cwd.clone()];
        let confined = launch.confine && sandbox::privileged();
        let run_as = launch
            .run_as
            .filter(|_| launch.confine && sandbox::changes_uid());
        if let Some(who) = run_as {
            for dir in [Some(home.path()), cwd_dir.as_ref().map(|d| d.path())]
                .into_iter()
                .flatten()
            {
                sandbox::user::give(dir, who).map_err(SpawnError::Setup)?;
            }
        }
        // The new root is mounted on an empty folder of its own (removed with the process).
        let root_dir = if confined {
            Some(
                grader_id::cwd_prefix()
                    .and_then(|p| temp_folder::TempFolder::new(&p))
                    .map_err(SpawnError::Setup)?,
            )
        } else {
            None
        };
        let conceal = if launch.conceal_grader {
            sandbox::grader_binaries()
        } else {
            Vec::new()
        };
        let path_var = launch
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str())
            .unwrap_or("/usr/bin:/bin");
        let mut sandbox = sandbox::Prepared::new(sandbox::Request {
            netns: launch.netns,
            cgroup_procs: procs,
            confine: launch.confine,
            run_as,
            root: root_dir.as_ref().map(|d| sandbox::rootfs::Spec {
                mount_point: d.path(),
                writable: &writable,
                read_only: &launch.read_only,
                argv: &launch.argv,
                cwd: &cwd,
                path: path_var,
                hidden: &launch.hidden,
                conceal: &conceal,
            }),
        })
        .map_err(SpawnError::Setup)?;
        // With a PID namespace, the forked child is its init and the program its child: the
        // program's status comes through this pipe (see `sandbox::Prepared::become_init`).
        let pid_ns = sandbox.pid_namespace();
        let status_pipe = sandbox.take_status_reader();
        // SAFETY: the closure runs in the forked child before exec and only makes system calls
        // (setsid, write, setns, unshare, mount, mount_setattr, mkdir, open, symlink,
        // pivot_root, umount2, chdir, clone, sigprocmask, waitpid, close_range, setrlimit,
        // getrlimit, prctl, setgroups, setresgid, setresuid, capset, seccomp) on data prepared
        // before the fork; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                sandbox.enter()?;
                sandbox.become_init()?;
                lim.apply()?;
                sandbox.drop_privileges()?;
                Ok(())
            });
        }
        let stdin_pty = launch.stdout_pty && launch.stdin_pty;
        let pty = if launch.stdout_pty {
            let pty = pty::open(stdin_pty).map_err(SpawnError::Setup)?;
            let slave = pty.slave.try_clone().map_err(SpawnError::Setup)?;
            cmd.stdout(Stdio::from(slave));
            if stdin_pty {
                let slave = pty.slave.try_clone().map_err(SpawnError::Setup)?;
                cmd.stdin(Stdio::from(slave));
            }
            Some(pty)
        } else {
            cmd.stdout(Stdio::piped());
            None
        };
        // One pipe for both streams: its read end is ours, both write ends the child's (the
        // command's copies go with it below).
        let merged = if launch.stderr_to_stdout && pty.is_none() {
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| SpawnError::Setup(e.into()))?;
            let write2 = write.try_clone().map_err(SpawnError::Setup)?;
            cmd.stdout(Stdio::from(write));
            cmd.stderr(Stdio::from(write2));
            Some(tokio::net::unix::pipe::Receiver::from_owned_fd(read).map_err(SpawnError::Setup)?)
        } else {
            None
        };
        let spawned = if pid_ns {
            sandbox::in_new_pid_namespace(|| cmd.spawn())
        } else {
            cmd.spawn()
        };
        let mut child = spawned.map_err(|source| SpawnError::Start {
            program: program.clone(),
            source,
        })?;
        let status_pipe = status_pipe
            .map(tokio::net::unix::pipe::Receiver::from_owned_fd)
            .transpose()
            .map_err(SpawnError::Setup)?;
        // Our copies of the terminal's slave side must go, or its end would never be seen.
        drop(cmd);
        let pid = child.id().map(|p| p as i32).unwrap_or(-1);
        let who = role.to_string();
        transcript.push(
            &who,
            Dir::Note,
            format!("started: {}", shell_words::join(&launch.argv)),
        );

        let stdout = Arc::new(Stream::new());
        let stderr = Arc::new(Stream::new());
        let exceeded = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let limit = launch.output_limit;

        let stdout_who = if role == Process::Client {
            Some("stdout")
        } else {
            None
        };
        let mut terminal_in = None;
        if let Some(pty) = pty {
            let pty::Pty {
                master,
                slave: own_slave,
            } = pty;
            drop(own_slave);
            let master = Arc::new(master);
            if stdin_pty {
                terminal_in = Some(master.clone());
            }
            let (s, t, e) = (stdout.clone(), transcript.clone(), exceeded.clone());
            let others = stderr.clone();
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match pty::read(&master, &mut buf).await {
                        Ok(0) => break s.finish(End::Eof),
                        Ok(n) => {
                            s.push(&buf[..n]);
                            if let Some(w) = stdout_who {
                                t.bytes(w, Dir::Received, &buf[..n]);
                            }
                            check_limit(pid, limit, &s, &others, &e);
                        }
                        Err(err) => break s.finish(End::Error(err.to_string())),
                    }
                }
            }));
        } else if let Some(out) = merged {
            let (s, e, o) = (stdout.clone(), exceeded.clone(), stderr.clone());
            o.finish(End::Eof);
            tasks.push(tokio::spawn(drain(out, s, o, e, pid, limit, None)));
        } else if let Some(out) = child.stdout.take() {
            let (s, t, e, o) = (
                stdout.clone(),
                transcript.clone(),
                exceeded.clone(),
                stderr.clone(),
            );
            tasks.push(tokio::spawn(drain(
                out,
                s,
                o,
                e,
                pid,
                limit,
                stdout_who.map(|w| (t, w)),
            )));
        }
        if let Some(err) = child.stderr.take() {
            let (s, e, o) = (stderr.clone(), exceeded.clone(), stdout.clone());
            tasks.push(tokio::spawn(drain(err, s, o, e, pid, limit, None)));
        }
        let stdin = match terminal_in {
            Some(master) => Some(Stdin::Terminal(master)),
            None => child.stdin.take().map(Stdin::Pipe),
        };

        let (tx, rx) = watch::channel(None);
        let t = transcript.clone();
        tasks.push(tokio::spawn(async move {
            // The program's own status from its namespace's init, when it has one; else (no
            // namespace, or the init was killed, which kills the program with it) the status
            // of the process the grader started.
            let mut reported = None;
            if let Some(mut pipe) = status_pipe {
                let mut raw = [0u8; 4];
                if pipe.read_exact(&mut raw).await.is_ok() {
                    let (code, signal) = sandbox::decode_status(i32::from_ne_bytes(raw));
                    reported = Some(ExitInfo { code, signal });
                }
            }
            let info = match reported {
                Some(info) => info,
                None => match child.wait().await {
                    Ok(status) => {
                        use std::os::unix::process::ExitStatusExt;
                        ExitInfo {
                            code: status.code(),
                            signal: status.signal(),
                        }
                    }
                    Err(_) => ExitInfo {
                        code: None,
                        signal: None,
                    },
                },
            };
            t.push(&who, Dir::Note, format!("exited: {info}"));
            let _ = tx.send(Some(info));
            // The init lives on while the program's other processes do; it is reaped here (and
            // killed, with its namespace, if this task is dropped first).
            let _ = child.wait().await;
        }));

        Ok(Self {
            role,
            pid,
            stdout,
            stderr,
            stdin: Mutex::new(stdin),
            exit: rx,
            output_exceeded: exceeded,
            tasks,
            cgroup,
            marker,
            signalled: std::sync::Mutex::new(HashMap::new()),
            init: pid_ns.then_some(pid),
            _cwd: cwd_dir,
            _root: root_dir,
            _home: home,
        })
    }

    /// How the process ended, if it has.
    pub fn exit_info(&self) -> Option<ExitInfo> {
        *self.exit.borrow()
    }

    /// A receiver that changes when the process exits.
    pub fn exit_watch(&self) -> watch::Receiver<Option<ExitInfo>> {
        self.exit.clone()
    }

    /// Waits for the exit, up to `deadline`.
    pub async fn wait_exit(&self, deadline: Instant) -> Option<ExitInfo> {
        let mut rx = self.exit.clone();
        let fut = rx.wait_for(|e| e.is_some());
        match tokio::time::timeout_at(deadline.into(), fut).await {
            Ok(Ok(v)) => *v,
            _ => self.exit_info(),
        }
    }

    /// Whether the output limit was hit (the group was killed for it).
    pub fn output_exceeded(&self) -> bool {
        self.output_exceeded.load(Ordering::SeqCst)
    }

    /// Whether the kernel's OOM killer killed one of its processes for going past the memory
    /// limit ([`limits::Limits::memory_bytes`]; never where no memory cgroup limits it).
    pub fn memory_exceeded(&self) -> bool {
        self.cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0)
    }

    /// Writes one line to stdin. Fails if stdin was closed or the process no longer reads.
    pub async fn type_line(&self, line: &str) -> std::io::Result<()> {
        let mut guard = self.stdin.lock().await;
        let stdin = guard.as_mut().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin is closed")
        })?;
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        match stdin {
            Stdin::Pipe(pipe) => {
                pipe.write_all(&bytes).await?;
                pipe.flush().await
            }
            Stdin::Terminal(master) => pty::write_all(master, &bytes).await,
        }
    }

    /// Whether one of the program's threads is blocked reading its stdin right now (a `read`
    /// of descriptor 0, from `/proc/<pid>/task/<tid>/syscall`): a client waiting for an answer
    /// to a prompt. False where the kernel does not tell (no permission, no such file).
    pub fn reads_stdin(&self) -> bool {
        self.members().into_iter().any(|pid| {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return false;
            };
            tasks.filter_map(Result::ok).any(|t| {
                std::fs::read_to_string(t.path().join("syscall")).is_ok_and(|text| reads_fd0(&text))
            })
        })
    }

    /// Bytes typed on stdin that the program has not read yet (`FIONREAD` on the pipe); `None`
    /// when stdin is closed or the kernel does not say.
    pub async fn stdin_unread(&self) -> Option<usize> {
        use std::os::fd::AsRawFd;
        let guard = self.stdin.lock().await;
        // A terminal's unread input is not measurable from the master side.
        let Stdin::Pipe(pipe) = guard.as_ref()? else {
            return None;
        };
        let fd = pipe.as_raw_fd();
        let mut n: nix::libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer, which lives for the call; `fd`
        // is our open end of the pipe, kept open by the guard.
        let rc = unsafe { nix::libc::ioctl(fd, nix::libc::FIONREAD, &mut n) };
        (rc == 0).then(|| usize::try_from(n).unwrap_or(0))
    }

    /// Closes stdin (end of input for the program): closes the pipe, or on a terminal types
    /// the end-of-file character (the terminal itself stays, as the program's stdout).
    /// Lines typed afterwards fail.
    pub async fn close_stdin(&self) {
        if let Some(Stdin::Terminal(master)) = self.stdin.lock().await.take() {
            // A program that already ended reads nothing: nothing to tell it.
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                pty::write_all(&master, &[pty::EOF_BYTE]),
            )
            .await;
        }
    }

    /// Waits until a stream has ended (the process and its children closed it), up to `limit`.
    pub async fn settle_stream(stream: &Stream, limit: Duration) {
        let mut rx = stream.subscribe();
        let _ = tokio::time::timeout(limit, async {
            while stream.end().is_none() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }

    /// A handle that lists this program's live processes cheaply, for watchers that outlive a
    /// borrow of it (see [`Members`]).
    pub fn member_list(&self) -> Members {
        let source = match &self.cgroup {
            Some(cg) => Source::Cgroup(cg.dir().to_path_buf()),
            None => Source::Group(self.pid),
        };
        Members {
            source,
            init: self.init,
        }
    }

    /// Every live process of this student program: its cgroup's members (everything it started
    /// is one, also after `setsid`) or, without a cgroup, its process group, its descendants and
    /// the orphans it left with the grader (recognised by HOME).
    pub fn members(&self) -> BTreeSet<i32> {
        match &self.cgroup {
            Some(cg) => cg.members().into_iter().collect(),
            None => {
                let mut set: BTreeSet<i32> = procfs::group_members(self.pid)
                    .iter()
                    .map(|p| p.pid)
                    .collect();
                let me = std::process::id() as i32;
                let orphans: Vec<i32> = procfs::all_processes()
                    .iter()
                    .filter(|p| p.ppid == me && p.pid != self.pid && p.state != 'Z')
                    .filter(|p| procfs::has_env(p.pid, &self.marker))
                    .map(|p| p.pid)
                    .collect();
                let mut roots = orphans.clone();
                roots.push(self.pid);
                set.extend(orphans);
                set.extend(procfs::descendants(&roots).iter().map(|p| p.pid));
                set
            }
        }
    }

    /// Stops every process of the program (SIGSTOP: it cannot be caught, blocked or ignored)
    /// until the returned guard is dropped, which continues them (SIGCONT). A process the
    /// program starts while it is being stopped is stopped too (the members are listed again
    /// until no new one appears). The PID namespace's init is left alone: it runs no student
    /// code.
    pub fn pause(&self) -> Paused {
        let mut stopped = BTreeSet::new();
        for _ in 0..PAUSE_ROUNDS {
            let fresh: Vec<i32> = self
                .members()
                .into_iter()
                .filter(|p| Some(*p) != self.init && !stopped.contains(p))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for pid in fresh {
                if kill(Pid::from_raw(pid), Signal::SIGSTOP).is_ok() {
                    stopped.insert(pid);
                }
            }
        }
        Paused { stopped }
    }

    /// The most processes the program had at once, and whether it hit the process limit (where
    /// a cgroup counts them).
    pub fn process_peak(&self) -> Option<(u64, bool)> {
        let cg = self.cgroup.as_ref()?;
        Some((cg.peak()?, cg.limit_hits() > 0))
    }

    /// Sends `sig` to the group and to every other member.
    fn signal_all(&self, sig: Signal) {
        let _ = killpg(Pid::from_raw(self.pid), sig);
        let mut signalled = self.signalled.lock().unwrap_or_else(|e| e.into_inner());
        for pid in self.members() {
            if pid == self.pid {
                continue;
            }
            if let Some(st) = procfs::stat(pid) {
                signalled.entry(pid).or_insert(st.start_time);
            }
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }

    /// Reaps, by pid, the ended processes that were orphans handed to the grader (it is a child
    /// subreaper): never `waitpid(-1)`, which would steal tokio's children's statuses.
    fn reap_orphans(&self) {
        let me = std::process::id() as i32;
        let signalled = self.signalled.lock().unwrap_or_else(|e| e.into_inner());
        for (&pid, &start) in signalled.iter() {
            let ours = procfs::stat(pid).is_some_and(|s| s.ppid == me && s.start_time == start);
            if ours {
                let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
            }
        }
    }

    /// Ends the program: SIGTERM to the group and every other member, up to `grace` for them to
    /// go, then SIGKILL (repeated while a member is left, for children forked during the kill),
    /// then waits (bounded) until no member is left and reaps orphans.
    pub async fn terminate(&self, grace: Duration) {
        if self.pid <= 0 {
            return;
        }
        let alive = || !self.members().is_empty();
        if self.exit_info().is_none() || alive() {
            self.signal_all(Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            let _ = self.wait_exit(deadline).await;
            poll_until(deadline, || !alive()).await;
        }
        if alive() || self.exit_info().is_none() {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                self.signal_all(Signal::SIGKILL);
                let round = (Instant::now() + Duration::from_millis(100)).min(deadline);
                if poll_until(round, || !alive()).await || Instant::now() >= deadline {
                    break;
                }
            }
            let _ = self.wait_exit(deadline).await;
        }
        // Zombies take a moment to appear after SIGKILL; reap what is there (bounded).
        let deadline = Instant::now() + Duration::from_millis(200);
        poll_until(deadline, || {
            self.reap_orphans();
            self.signalled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .all(|p| procfs::stat(*p).is_none_or(|s| s.ppid != std::process::id() as i32))
        })
        .await;
    }
}

impl Drop for StudentProcess {
    fn drop(&mut self) {
        if self.pid > 0 {
            // The cgroup SIGKILLs its members when dropped; without one, end the group and the
            // escaped ones.
            if self.cgroup.is_none() {
                if !procfs::group_members(self.pid).is_empty() {
                    let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
                }
                for pid in self.members() {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// How to list a student program's live processes: its cgroup's member list where it has one
/// (one small file read), else a scan of /proc for its process group; never its PID
/// namespace's init (the grader's own code, not the student's: it holds no socket and uses no
/// CPU). Cheap to clone and valid after the program ended (it then lists nothing).
#[derive(Debug, Clone)]
pub struct Members {
    source: Source,
    init: Option<i32>,
}

#[derive(Debug, Clone)]
enum Source {
    /// The members of the cgroup at this folder.
    Cgroup(std::path::PathBuf),
    /// The members of this process group.
    Group(i32),
}

impl Members {
    /// The live (non-zombie) processes now.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = match &self.source {
            Source::Cgroup(dir) => cgroup::members_of(dir),
            Source::Group(pgid) => procfs::group_members(*pgid).iter().map(|p| p.pid).collect(),
        };
        pids.retain(|p| Some(*p) != self.init);
        pids
    }
}

/// How many times [`StudentProcess::pause`] lists the members again for processes started while
/// it was stopping the others (a stopped process starts none, so two rounds normally suffice).
const PAUSE_ROUNDS: usize = 8;

/// A student program stopped by [`StudentProcess::pause`]; dropping it continues every process
/// it stopped.
#[derive(Debug)]
pub struct Paused {
    stopped: BTreeSet<i32>,
}

impl Paused {
    /// How many processes were stopped.
    pub fn count(&self) -> usize {
        self.stopped.len()
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        for pid in &self.stopped {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGCONT);
        }
    }
}

/// Polls `done` with a growing interval (1 ms to 20 ms) until it holds or the deadline passes.
/// Used only for conditions the kernel offers no event for (a process group becoming empty, a
/// socket appearing in /proc).
pub async fn poll_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    let mut interval = Duration::from_millis(1);
    loop {
        if done() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 2).min(Duration::from_millis(20));
    }
}

/// Whether a `/proc/.../syscall` line is a blocked `read(0, ...)`: the system call number
/// and its first argument (the descriptor, in hex).
fn reads_fd0(text: &str) -> bool {
    let mut words = text.split_whitespace();
    let number = words.next().and_then(|w| w.parse::<i64>().ok());
    let fd = words.next();
    number == Some(nix::libc::SYS_read) && fd == Some("0x0")
}

fn check_limit(pid: i32, limit: u64, a: &Stream, b: &Stream, exceeded: &AtomicBool) {
    if a.total_bytes() + b.total_bytes() > limit && !exceeded.swap(true, Ordering::SeqCst) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

async fn drain(
    mut reader: impl AsyncRead + Unpin,
    stream: Arc<Stream>,
    other: Arc<Stream>,
    exceeded: Arc<AtomicBool>,
    pid: i32,
    limit: u64,
    log: Option<(Arc<Transcript>, &'static str)>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => break stream.finish(End::Eof),
            Ok(n) => {
                stream.push(&buf[..n]);
                if let Some((t, who)) = &log {
                    t.bytes(who, Dir::Received, &buf[..n]);
                }
                check_limit(pid, limit, &stream, &other, &exceeded);
            }
            Err(e) => break stream.finish(End::Error(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A launch of `argv` with `HOME=<home>` and every option at its plain default (no pty, no
    /// confinement, no cgroup, 1 MiB of output): tests override what they are about.
    fn test_launch(argv: Vec<String>, home: &std::path::Path) -> Launch {
        Launch {
            argv,
            env: env::scrubbed(home, &[]),
            cwd: None,
            stdout_pty: false,
            stdin_pty: false,
            stderr_to_stdout: false,
            output_limit: 1 << 20,
            limits: limits::Limits::default(),
            netns: None,
            confine: false,
            cgroup: false,
            hidden: Vec::new(),
            read_only: Vec::new(),
            run_as: None,
            conceal_grader: true,
        }
    }

    /// Live processes started with `HOME=<home>`.
    fn with_home(home: &std::path::Path) -> Vec<i32> {
        let marker = format!("HOME={}", home.display());
        procfs::all_processes()
            .iter()
            .filter(|p| p.state != 'Z' && procfs::has_env(p.pid, &marker))
            .map(|p| p.pid)
            .collect()
    }

    async fn escapes_are_ended(cgroup: bool) {
        // As in the grader binary: orphans come to us, not to init.
        let _ = nix::sys::prctl::set_child_subreaper(true);
        let home = tempfile::Builder::new()
            .prefix("grader-home-")
            .tempdir()
            .unwrap();
        let home_path = home.path().to_path_buf();
        // A double-forked daemon in a session of its own, ignoring SIGTERM; then the program
        // itself, also ignoring SIGTERM.
        let script = "(trap '' TERM; setsid sh -c \"trap '' TERM; sleep 300\" & ); trap '' TERM; \
                      echo started; sleep 300";
        let launch = Launch {
            cgroup,
            ..test_launch(vec!["sh".into(), "-c".into(), script.into()], &home_path)
        };
        let t = Arc::new(Transcript::new());
        let p = StudentProcess::spawn(Process::Server, &launch, home, t).unwrap();
        let started = Instant::now() + Duration::from_secs(10);
        let mut rx = p.stdout.subscribe();
        while !p.stdout.all_text().contains("started") && Instant::now() < started {
            let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
        }
        // The daemon is up (in its own session) before we end the program.
        // One look decides (the count moves while the subshell that started the daemon exits).
        let mut seen = Vec::new();
        poll_until(started, || {
            seen = with_home(&home_path);
            seen.len() >= 3
        })
        .await;
        assert!(seen.len() >= 3, "{seen:?}");
        p.terminate(Duration::from_millis(100)).await;
        assert_eq!(with_home(&home_path), Vec::<i32>::new());
    }

    #[tokio::test]
    async fn escaped_daemon_is_ended_through_proc() {
        escapes_are_ended(false).await;
    }

    #[tokio::test]
    async fn process_count_is_bounded_by_the_cgroup() {
        let home = tempfile::Builder::new()
            .prefix("grader-home-")
            .tempdir()
            .unwrap();
        let launch = Launch {
            limits: limits::Limits {
                processes: 8,
                ..limits::Limits::default()
            },
            cgroup: true,
            ..test_launch(vec![
                "sh".into(),
                "-c".into(),
                "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 30 & done; echo done".into(),
            ], home.path())
        };
        let p = StudentProcess::spawn(Process::Server, &launch, home, Arc::new(Transcript::new()))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let _ = p.wait_exit(deadline).await;
        let Some((peak, hit)) = p.process_peak() else {
            crate::test_skips::skipped("", "no writable pids cgroup hierarchy here (needs root)");
            return;
        };
        assert!(peak <= 8 && hit, "peak {peak}, limit hit {hit}");
        p.terminate(Duration::from_millis(100)).await;
        assert!(p.members().is_empty());
    }

    /// Starts `python3 -c <code>` in a cgroup with a 64 MiB memory limit and waits for its end.
    async fn with_64_mib(code: &str) -> Option<(ExitInfo, bool, String)> {
        let home = tempfile::Builder::new()
            .prefix("grader-home-")
            .tempdir()
            .unwrap();
        let launch = Launch {
            limits: limits::Limits {
                memory_bytes: 64 << 20,
                ..limits::Limits::default()
            },
            cgroup: true,
            ..test_launch(
                vec!["python3".into(), "-c".into(), code.into()],
                home.path(),
            )
        };
        let p = StudentProcess::spawn(Process::Server, &launch, home, Arc::new(Transcript::new()))
            .unwrap();
        let limited = p
            .cgroup
            .as_ref()
            .is_some_and(|c| c.controllers().contains(&cgroup::Controller::Memory));
        let exit = p.wait_exit(Instant::now() + Duration::from_secs(60)).await;
        StudentProcess::settle_stream(&p.stdout, Duration::from_secs(5)).await;
        let out = p.stdout.all_text();
        p.terminate(Duration::from_millis(100)).await;
        if !limited {
            crate::test_skips::skipped("", "no writable memory cgroup here (needs root)");
            return None;
        }
        Some((exit.expect("python3 ended"), p.memory_exceeded(), out))
    }

    #[tokio::test]
    async fn a_memory_hog_is_killed_at_the_memory_limit_and_it_is_known() {
        // 96 MiB in 4 MiB steps, every byte written; 24 steps at most.
        let hog = "b = [b'\\x01' * (4 << 20) for _ in range(24)]\nprint('survived', flush=True)";
        let Some((exit, exceeded, out)) = with_64_mib(hog).await else {
            return;
        };
        assert_eq!(exit.signal, Some(9), "{exit}; stdout: {out}");
        assert!(exceeded && !out.contains("survived"), "{out}");
        // 16 MiB fits: no kill, and none reported.
        let modest = "b = [b'\\x01' * (4 << 20) for _ in range(4)]\nprint('survived', flush=True)";
        let (exit, exceeded, out) = with_64_mib(modest).await.unwrap();
        assert!(
            exit.success() && !exceeded && out.contains("survived"),
            "{exit}: {out}"
        );
    }

    /// Runs `sh -c <script>` confined (as root: minimal root, PID namespace) or not, and
    /// returns how it ended (learnt while a daemon it left may still live) and what it printed.
    async fn sh(script: &str, confine: bool, cgroup: bool) -> (ExitInfo, String) {
        let home = tempfile::Builder::new()
            .prefix("grader-home-")
            .tempdir()
            .unwrap();
        // As in a grading: an unprivileged uid of its own.
        let lease = confine.then(|| sandbox::user::UserLease::acquire().unwrap());
        let launch = Launch {
            confine,
            cgroup,
            run_as: lease.as_ref().map(|l| l.run_as()),
            ..test_launch(vec!["sh".into(), "-c".into(), script.into()], home.path())
        };
        let p = StudentProcess::spawn(Process::Server, &launch, home, Arc::new(Transcript::new()))
            .unwrap();
        let exit = p.wait_exit(Instant::now() + Duration::from_secs(20)).await;
        let exit = exit.expect("the program's exit is reported while its daemon lives");
        p.terminate(Duration::from_millis(100)).await;
        assert!(p.members().is_empty(), "left: {:?}", p.members());
        StudentProcess::settle_stream(&p.stdout, Duration::from_secs(5)).await;
        (exit, p.stdout.all_text())
    }

    #[tokio::test]
    async fn a_pid_namespace_changes_no_exit_status() {
        if !sandbox::is_root() {
            crate::test_skips::skipped("", "PID namespaces need root");
            return;
        }
        for script in [
            "exit 0",
            "exit 7",
            "kill -TERM $$",
            "kill -KILL $$",
            "kill -SEGV $$",
            "trap 'exit 5' TERM; kill -TERM $$; sleep 5",
            // The exit is reported at once although a daemon lives on (ended by terminate).
            "(setsid sleep 300 &); exit 4",
        ] {
            let (host, _) = sh(script, false, true).await;
            let (inside, _) = sh(script, true, true).await;
            assert_eq!(inside, host, "{script}");
        }
        // Without a cgroup the daemon is found through /proc's parent links (its parent is the
        // namespace's init, the grader's child) and ended too.
        let (exit, _) = sh("(setsid sleep 300 &); exit 4", true, false).await;
        assert_eq!(exit.code, Some(4));
        // Inside, the program is not pid 1 (its init is, as root: hidden by `hidepid`) and sees
        // no other process.
        let (exit, out) = sh("echo pid $$; echo /proc/[0-9]*", true, true).await;
        assert!(exit.success(), "{exit}");
        assert_eq!(out, "pid 2\n/proc/2\n");
    }

    /// Starts `python3 -c <code>` with a pseudo-terminal as stdout, and as stdin too when
    /// `terminal_stdin`.
    fn python_on_a_terminal(code: &str, terminal_stdin: bool) -> StudentProcess {
        let home = tempfile::Builder::new()
            .prefix("grader-home-")
            .tempdir()
            .unwrap();
        let launch = Launch {
            stdout_pty: true,
            stdin_pty: terminal_stdin,
            ..test_launch(
                vec!["python3".into(), "-c".into(), code.into()],
                home.path(),
            )
        };
        StudentProcess::spawn(Process::Client, &launch, home, Arc::new(Transcript::new())).unwrap()
    }

    /// Reports whether stdin and stdout are terminals, then echoes each line it reads with a
    /// prefix until the end of input, and says so.
    const LINE_READER: &str = "import os, sys\n\
print('stdin tty', sys.stdin.isatty(), 'stdout tty', sys.stdout.isatty(), flush=True)\n\
for line in sys.stdin:\n    print('got', repr(line), flush=True)\n\
print('end of input', flush=True)";

    #[tokio::test]
    async fn a_terminal_stdin_reads_lines_without_echo_and_ends_at_close() {
        let p = python_on_a_terminal(LINE_READER, true);
        p.type_line("hello \u{3} there").await.unwrap();
        p.type_line("second").await.unwrap();
        p.close_stdin().await;
        assert!(p.type_line("late").await.is_err());
        let exit = p.wait_exit(Instant::now() + Duration::from_secs(20)).await;
        StudentProcess::settle_stream(&p.stdout, Duration::from_secs(5)).await;
        let out = p.stdout.all_text();
        // Only what the program printed: nothing typed is echoed, and Ctrl-C typed is data.
        assert_eq!(
            out,
            "stdin tty True stdout tty True\ngot 'hello \\x03 there\\n'\ngot 'second\\n'\nend of input\n",
            "{exit:?}"
        );
        assert!(exit.is_some_and(|e| e.success()), "{exit:?}");
        p.terminate(Duration::from_millis(100)).await;
    }

    #[tokio::test]
    async fn a_line_longer_than_the_terminal_buffer_is_cut_not_stuck() {
        let p = python_on_a_terminal(
            "import sys\nfor line in sys.stdin:\n    print(len(line), flush=True)",
            true,
        );
        let typed = tokio::time::timeout(Duration::from_secs(20), async {
            p.type_line(&"x".repeat(10_000)).await.unwrap();
            p.type_line("short").await.unwrap();
        })
        .await;
        assert!(typed.is_ok(), "typing a long line blocked");
        p.close_stdin().await;
        let exit = p.wait_exit(Instant::now() + Duration::from_secs(20)).await;
        StudentProcess::settle_stream(&p.stdout, Duration::from_secs(5)).await;
        let out = p.stdout.all_text();
        let lens: Vec<&str> = out.lines().collect();
        assert_eq!(lens.len(), 2, "{out} {exit:?}");
        assert_eq!(lens, ["4096", "6"], "{out}");
        p.terminate(Duration::from_millis(100)).await;
    }

    #[tokio::test]
    async fn stdin_is_a_pipe_unless_asked_and_reads_stdin_sees_a_blocked_read() {
        let p = python_on_a_terminal(
            "import sys\nprint('stdin tty', sys.stdin.isatty(), flush=True)\nprint('Your name: ', end='', flush=True)\nname = input()\nprint('hi', name, flush=True)",
            false,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = false;
        poll_until(deadline, || {
            seen = p.reads_stdin();
            seen
        })
        .await;
        assert!(
            seen,
            "the blocked read(0) was not seen: {}",
            p.stdout.all_text()
        );
        p.type_line("ada").await.unwrap();
        let exit = p.wait_exit(deadline).await;
        StudentProcess::settle_stream(&p.stdout, Duration::from_secs(5)).await;
        assert_eq!(
            p.stdout.all_text(),
            "stdin tty False\nYour name: hi ada\n",
            "{exit:?}"
        );
        assert!(!p.reads_stdin());
        p.terminate(Duration::from_millis(100)).await;
    }

    #[tokio::test]
    async fn escaped_daemon_is_ended_through_the_cgroup() {
        escapes_are_ended(true).await;
    }
}
