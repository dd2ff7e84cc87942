//! Student processes: started in their own process group with a scrubbed environment and a fresh
//! working directory, watched (exit status, stdout on a pseudo-terminal or a pipe, stderr on a
//! pipe, all drained concurrently and capped), and ended without leftovers.
//!
//! Guarantees:
//! - every process runs in a new process group whose id is its pid; [`StudentProcess::terminate`]
//!   sends SIGTERM to the whole group, waits a short grace, then SIGKILLs whatever is left and
//!   waits until the group is empty; dropping a [`StudentProcess`] SIGKILLs the group as a last
//!   resort, so no process outlives the grader even when a scenario is cancelled;
//! - stdout/stderr are read by their own tasks, so a chatty program never blocks on a full pipe;
//!   past the output limit the group is killed and the limit is reported;
//! - stdin is a pipe that stays open until the scenario closes it (some programs exit on EOF);
//! - resource limits ([`limits::Limits`]) are set before the program starts.

pub mod env;
pub mod limits;
pub mod procfs;
pub mod pty;

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
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
    /// Bytes of stdout + stderr after which the process is killed.
    pub output_limit: u64,
    /// Resource limits (setrlimit) for the process and its children.
    pub limits: limits::Limits,
}

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The launch command is empty.
    #[error("the launch command is empty")]
    EmptyCommand,
    /// The OS refused to start the program.
    #[error("could not start `{program}`: {source}")]
    Start {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// Setting up pipes, the terminal or the working directory failed.
    #[error("could not set up the student's process: {0}")]
    Setup(std::io::Error),
}

/// A running (or finished) student process and its watched streams.
pub struct StudentProcess {
    /// Which role it plays.
    pub role: Process,
    /// Process id, also its process group id.
    pub pid: i32,
    /// What it printed on stdout.
    pub stdout: Arc<Stream>,
    /// What it printed on stderr.
    pub stderr: Arc<Stream>,
    stdin: Mutex<Option<ChildStdin>>,
    exit: watch::Receiver<Option<ExitInfo>>,
    output_exceeded: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    _cwd: Option<tempfile::TempDir>,
    _home: tempfile::TempDir,
}

impl StudentProcess {
    /// Starts a process. `transcript` receives its stdout (for clients) and its exit.
    pub fn spawn(
        role: Process,
        launch: &Launch,
        home: tempfile::TempDir,
        transcript: Arc<Transcript>,
    ) -> Result<Self, SpawnError> {
        let (program, args) = launch.argv.split_first().ok_or(SpawnError::EmptyCommand)?;
        let (cwd_dir, cwd) = match &launch.cwd {
            Some(dir) => (None, dir.clone()),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("grader-cwd-")
                    .tempdir()
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
            .process_group(0)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let lim = launch.limits;
        // SAFETY: the closure runs in the forked child before exec and only calls setrlimit and
        // getrlimit, which are async-signal-safe; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || lim.apply());
        }
        let pty = if launch.stdout_pty {
            let pty = pty::open().map_err(SpawnError::Setup)?;
            let slave = pty.slave.try_clone().map_err(SpawnError::Setup)?;
            cmd.stdout(Stdio::from(slave));
            Some(pty)
        } else {
            cmd.stdout(Stdio::piped());
            None
        };
        let mut child = cmd.spawn().map_err(|source| SpawnError::Start {
            program: program.clone(),
            source,
        })?;
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
        if let Some(pty) = pty {
            let pty::Pty {
                master,
                slave: own_slave,
            } = pty;
            drop(own_slave);
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
        let stdin = child.stdin.take();

        let (tx, rx) = watch::channel(None);
        let t = transcript.clone();
        tasks.push(tokio::spawn(async move {
            let info = match child.wait().await {
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
            };
            t.push(&who, Dir::Note, format!("exited: {info}"));
            let _ = tx.send(Some(info));
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
            _cwd: cwd_dir,
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

    /// Writes one line to stdin. Fails if stdin was closed or the process no longer reads.
    pub async fn type_line(&self, line: &str) -> std::io::Result<()> {
        let mut guard = self.stdin.lock().await;
        let stdin = guard.as_mut().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin is closed")
        })?;
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        stdin.write_all(&bytes).await?;
        stdin.flush().await
    }

    /// Closes stdin (end of input for the program).
    pub async fn close_stdin(&self) {
        self.stdin.lock().await.take();
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

    /// Ends the whole process group: SIGTERM, up to `grace` for it to go, then SIGKILL, then waits
    /// (bounded) until no member is left.
    pub async fn terminate(&self, grace: Duration) {
        let pgid = Pid::from_raw(self.pid);
        if self.pid <= 0 {
            return;
        }
        let group_alive = || !procfs::group_members(self.pid).is_empty();
        if self.exit_info().is_none() || group_alive() {
            let _ = killpg(pgid, Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            let _ = self.wait_exit(deadline).await;
            poll_until(deadline, || !group_alive()).await;
        }
        if group_alive() || self.exit_info().is_none() {
            let _ = killpg(pgid, Signal::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            let _ = self.wait_exit(deadline).await;
            poll_until(deadline, || !group_alive()).await;
        }
    }
}

impl Drop for StudentProcess {
    fn drop(&mut self) {
        if self.pid > 0 && !procfs::group_members(self.pid).is_empty() {
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        for t in &self.tasks {
            t.abort();
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
