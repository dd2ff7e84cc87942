//! The command line of the `grader` binary: each subcommand parses ([`args`]), builds its
//! grading plans ([`grader::job::Job`]), calls the library and turns the result into an exit
//! status; `main.rs` only parses and maps the result to a process exit code. One file per
//! subcommand: [`run`], [`batch`], [`export`] (and merge), [`replay`], [`tasks`].
//!
//! Exit codes (the one place they are defined; docs/students.md, "Exit codes", repeats them):
//! - `0`: graded, and the score is at or above `--min-score` (without it: every scenario passed);
//! - `1`: graded, and the score is below that;
//! - `2`: usage or infrastructure error (bad arguments, unreadable task file, missing or
//!   non-executable submission, a `--build` command that fails, unwritable --out, the grader's
//!   own network failing, no guard process). No score is reported in that case.
//!
//! The other commands use the same three codes:
//! - `grader batch`: `0` every submission has an up-to-date record (graded now or skipped);
//!   `1` every submission was processed, but at least one could not be started (its own problem:
//!   no executable, a bad `classchat.toml`, a failed build; see `<out>/<id>/task<N>.error.txt`);
//!   `2` usage error, interrupted, or at least one grading failed for infrastructure reasons
//!   (rerun: finished submissions are skipped, existing records are never overwritten by a
//!   failed grading);
//! - `grader replay`: as `grader run`, plus `2` when the record cannot be read;
//! - `grader export`, `grader merge`: `0` written, `2` nothing written (no records, bad path).

use grader::batch::discover::DiscoverError;
use grader::batch::merge::MergeError;
use grader::engine::GradeError;
use grader::export::ExportError;
use grader::job::{Blame, JobError};
use grader::launch::LaunchError;
use grader::net::netns::{Isolation, IsolationMode};
use grader::report::ReportError;
use grader::report::record::{self, RecordError};
use grader::spec::SpecError;

pub use args::{Cli, Command, parse};

/// `println!` that ignores a closed stdout (`grader batch ... | head`): what is printed is a
/// courtesy, while the gradings and their records must go on.
macro_rules! say {
    ($($t:tt)*) => {
        grader::batch::progress::print_line(&format!($($t)*))
    };
}

/// `eprintln!` that ignores a closed stderr (see [`say!`]).
macro_rules! say_err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

// After the macros: the subcommands use them.
mod args;
mod batch;
mod export;
mod replay;
mod run;
mod tasks;

/// Graded, at or above the bar.
pub const EXIT_PASS: u8 = 0;
/// Graded, below the bar.
pub const EXIT_BELOW: u8 = 1;
/// Usage or infrastructure error: no score.
pub const EXIT_ERROR: u8 = 2;

/// Everything that makes `grader` exit with status 2.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Task file problem.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Submission or template problem.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The grading could not be done fairly.
    #[error(transparent)]
    Grade(#[from] GradeError),
    /// Reports could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A report could not be read.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// An export could not be produced.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Report folders could not be merged.
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// The batch folder cannot be graded.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// The grading plan could not be built.
    #[error(transparent)]
    Job(#[from] JobError),
    /// A usage problem found after parsing.
    #[error("{0}")]
    Usage(String),
    /// SIGINT or SIGTERM arrived: the student's processes were ended, nothing was graded.
    #[error("interrupted by {0}: student processes ended, no report written")]
    Interrupted(&'static str),
    /// SIGINT or SIGTERM arrived during a batch: the gradings under way were stopped.
    #[error(
        "interrupted by {0}: the gradings under way were stopped (their student processes ended, no report written for them); submissions graded before keep their reports: rerun the same command to grade the rest"
    )]
    BatchInterrupted(&'static str),
    /// No guard process could be started (see `process::watchdog`).
    #[error(transparent)]
    Guard(grader::process::watchdog::GuardError),
    /// The async runtime could not start.
    #[error("cannot start the grader's runtime")]
    Runtime(#[source] std::io::Error),
}

impl CliError {
    /// Who must act (see [`grader::job::Blame`]): printed under the error by `main`.
    pub fn blame(&self) -> Blame {
        match self {
            CliError::Launch(_) => Blame::Submission,
            CliError::Grade(e) => e.blame(),
            CliError::Job(e) => e.blame(),
            CliError::Guard(_) | CliError::Runtime(_) => Blame::Grader,
            CliError::Spec(_)
            | CliError::Report(_)
            | CliError::Record(_)
            | CliError::Export(_)
            | CliError::Merge(_)
            | CliError::Discover(_)
            | CliError::Usage(_)
            | CliError::Interrupted(_)
            | CliError::BatchInterrupted(_) => Blame::Configuration,
        }
    }
}

/// Runs a parsed command line; returns the exit status.
pub fn run(cli: Cli) -> Result<u8, CliError> {
    // `main` does this first of all; here too for other callers of this entry. Processes of the
    // same user (student programs on the host) cannot read the grader's environment or memory,
    // nor trace it. A process can always read its own /proc/self.
    let _ = nix::sys::prctl::set_dumpable(false);
    if let Command::Guard {
        grader,
        tmp,
        pipe_fd,
        pidfd,
    } = &cli.command
    {
        grader::process::watchdog::run_guard(grader, tmp, *pipe_fd, *pidfd)
            .map_err(CliError::Guard)?;
        return Ok(EXIT_PASS);
    }
    // Orphans of student programs (a double fork, a daemon) become the grader's children
    // instead of init's, so the end of a scenario can find and reap them.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    // A grader that is not root enters a user namespace of its own where the system allows it,
    // so student code gets the namespaces root would give it; while still single-threaded (the
    // kernel requires it), before the guard and the runtime start. Not for `--isolation host`,
    // which keeps plain host mode.
    let namespaces = match &cli.command {
        Command::Run(a) => IsolationMode::from(a.grading.isolation) != IsolationMode::Host,
        Command::Batch(a) => IsolationMode::from(a.grading.isolation) != IsolationMode::Host,
        Command::Replay(a) => {
            record::read(&a.report).map_or(true, |r| r.report.isolation != "host")
        }
        _ => false,
    };
    if namespaces && !grader::process::sandbox::is_root() {
        let _ = grader::process::sandbox::userns::enter();
    }
    // A root grader finds out what of its confinement the system allows (root in a plain
    // `docker run` lacks the capabilities for namespaces and mounts), also single-threaded, in
    // every isolation (the minimal root does not depend on the network's).
    if grader::process::sandbox::is_root()
        && matches!(
            cli.command,
            Command::Run(_) | Command::Batch(_) | Command::Replay(_)
        )
    {
        let _ = grader::process::sandbox::caps::probe_root_confinement();
    }
    if matches!(
        cli.command,
        Command::Run(_) | Command::Batch(_) | Command::Replay(_)
    ) {
        // First: a guard that ends the student programs should the grader be killed outright.
        // No student program is started without one (see `watchdog::ensure_guarded`).
        grader::process::watchdog::start().map_err(CliError::Guard)?;
    }
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Batch(args) => batch::run(args),
        Command::Export(args) => export::run(args),
        Command::Merge { inputs, out } => export::merge(&inputs, &out),
        Command::Replay(args) => replay::run(args),
        Command::Tasks {
            tasks_dir,
            dialect,
            steps,
            dialects,
        } => {
            if dialects {
                tasks::list_dialects()
            } else {
                tasks::list_tasks(
                    tasks_dir,
                    &dialect.dialect().map_err(CliError::Usage)?,
                    steps,
                )
            }
        }
        Command::Guard { .. } => Ok(EXIT_PASS),
        Command::Reference { task, args } => {
            // A student program the grader watches through /proc (its sockets, its threads'
            // run-queue delays): readable by a grader of the same user, as any program is.
            let _ = nix::sys::prctl::set_dumpable(true);
            let program = format!("grader reference --task {task}");
            Ok(classchat_reference::bundled::run(
                task,
                std::iter::once(program)
                    .chain(args)
                    .map(Into::into)
                    .collect(),
            ))
        }
    }
}

/// Decides the isolation once for a whole run (a probe per grading would be wasted work), and
/// says so when `auto` falls back to the host.
fn resolve_isolation(mode: IsolationMode) -> Result<IsolationMode, CliError> {
    use grader::process::sandbox::userns;
    let resolved = mode.resolve();
    if let Ok(isolation) = resolved
        && let Some(note) = root_without_capabilities_note(isolation)
    {
        say_err!("note: {note}");
        return Ok(match isolation {
            Isolation::Host => IsolationMode::Host,
            Isolation::Netns => IsolationMode::Netns,
        });
    }
    match resolved {
        Ok(Isolation::Host) if mode == IsolationMode::Auto => {
            let why = grader::net::netns::probe()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            let userns = userns::why_not()
                .map(|w| format!(" (unprivileged user namespaces: {w})"))
                .unwrap_or_default();
            say_err!(
                "note: {why}{userns}; grading on the host's loopback instead (isolation = \"host\" in the report)"
            );
            Ok(IsolationMode::Host)
        }
        Ok(Isolation::Netns) if userns::active() => {
            say_err!(
                "note: not root: student programs run in an unprivileged user namespace of the grader's (a network namespace per scenario, a minimal root, a PID namespace), under the grader's own uid and without cgroup limits unless delegated (isolation = \"userns\" in the report)"
            );
            Ok(IsolationMode::Netns)
        }
        Ok(Isolation::Host) => Ok(IsolationMode::Host),
        Ok(Isolation::Netns) => Ok(IsolationMode::Netns),
        Err(e) => Err(CliError::Usage(format!("--isolation netns: {e}"))),
    }
}

/// The one console note of a root grader that lacks part of what its confinement needs (root in
/// a plain `docker run`): what is missing, what it falls back to, and the `docker run` flags
/// that give the rest. `None` where nothing is missing.
fn root_without_capabilities_note(isolation: Isolation) -> Option<String> {
    use grader::process::sandbox::{self, caps};
    if !sandbox::is_root() {
        return None;
    }
    let missing = caps::missing();
    let confinement = caps::root_confinement_why_not();
    if missing.is_empty() && confinement.is_none() {
        return None;
    }
    let lacks = if missing.is_empty() {
        "root, but the system refuses the minimal root's namespaces or mounts".to_string()
    } else {
        let names: Vec<String> = missing.iter().map(|n| format!("CAP_{}", n.name)).collect();
        let docker = [caps::SYS_ADMIN, caps::NET_ADMIN, caps::SYS_PTRACE]
            .iter()
            .all(|c| missing.iter().any(|n| n.cap == *c));
        format!(
            "root without {}{}",
            names.join(", "),
            if docker {
                " (as in a plain `docker run`)"
            } else {
                ""
            }
        )
    };
    let mut fallbacks = Vec::new();
    match isolation {
        Isolation::Host => {
            let why = grader::net::netns::probe()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            fallbacks.push(format!(
                "no network namespace per scenario ({why}): grading on the host's loopback with reserved ports"
            ));
        }
        Isolation::Netns => fallbacks.push("a network namespace per scenario".into()),
    }
    if let Some(why) = confinement {
        fallbacks.push(format!(
            "no minimal root and no PID namespace for student programs ({why}): they see the host's files as their uid may"
        ));
    }
    if caps::can_change_uid() {
        fallbacks.push(
            "student programs run under a per-grading unprivileged uid, without capabilities"
                .into(),
        );
    } else {
        fallbacks.push(
            "WARNING: without CAP_SETUID, CAP_SETGID and CAP_CHOWN student programs run as root (without capabilities, with no_new_privs), so they can read and write root's files: grade only trusted code here, or run the grader as an ordinary user".into(),
        );
    }
    if caps::proc_needs_fsuid() {
        fallbacks.push("their /proc is read under their uid".into());
    }
    let flags = {
        let mut all = caps::missing();
        all.retain(|n| {
            [caps::SYS_ADMIN, caps::NET_ADMIN, caps::SYS_PTRACE].contains(&n.cap)
                || !caps::can_change_uid()
        });
        let mut f = caps::cap_add_flags(&all);
        if confinement.is_some() || !caps::has(caps::SYS_ADMIN) {
            if !f.is_empty() {
                f.push(' ');
            }
            f.push_str("--security-opt apparmor=unconfined");
        }
        f
    };
    Some(format!(
        "{lacks}; {}. For full isolation: docker run {flags} ... (or --privileged) (isolation = \"{}\" in the report)",
        fallbacks.join("; "),
        isolation.as_str()
    ))
}

/// Installs SIGINT/SIGTERM handlers right away (call it inside the runtime, before starting any
/// student process) and returns a future that resolves, naming the signal, when one arrives.
fn interrupted() -> impl std::future::Future<Output = &'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        match handlers {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            // Without signal handling the default action (exit) applies; never resolve.
            _ => std::future::pending().await,
        }
    }
}

pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    // Keep seeds short enough to type.
    h.finish() % 1_000_000_000
}
