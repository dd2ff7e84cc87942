//! The command line: argument definitions and the `run` command, from parsed arguments to an
//! exit status. `main.rs` only parses and maps the result to a process exit code.
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

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::audience::{self, Audience, Redacting, View};
use crate::batch::{self, Shard};
use crate::engine::{self, EngineOptions, GradeError, GradeRequest};
use crate::export::{self, ExportError};
use crate::launch::{self, CommandTemplate, LaunchError};
use crate::net::netns::{Isolation, IsolationMode};
use crate::net::ports::PortPool;
use crate::report::console::{Console, Format};
use crate::report::record::{self, Provenance, RecordError};
use crate::report::{self, ReportError};
use crate::safe_text;
use crate::spec::{self, Role, SpecError};
use crate::verdict::{GradeReport, fmt_points};

/// `println!` that ignores a closed stdout (`grader batch ... | head`): what is printed is a
/// courtesy, while the gradings and their records must go on.
macro_rules! say {
    ($($t:tt)*) => {
        crate::batch::progress::print_line(&format!($($t)*))
    };
}

/// `eprintln!` that ignores a closed stderr (see [`say!`]).
macro_rules! say_err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

/// Graded, at or above the bar.
pub const EXIT_PASS: u8 = 0;
/// Graded, below the bar.
pub const EXIT_BELOW: u8 = 1;
/// Usage or infrastructure error: no score.
pub const EXIT_ERROR: u8 = 2;

/// Autograder for socket-programming assignments.
#[derive(Debug, Parser)]
#[command(name = "grader", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Grade one submission for one task.
    Run(RunArgs),
    /// Grade every submission in a folder (resumable, parallel, shardable).
    Batch(BatchArgs),
    /// Export scores from TOML reports: CSV, Gradescope, GitHub Classroom, HTML or Markdown.
    Export(ExportArgs),
    /// Combine report folders (e.g. one per --shard) into one.
    Merge {
        /// Report folders to combine.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Where the combined reports go.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Rerun exactly the grading a TOML report records (same task, seed, submission, templates).
    Replay(ReplayArgs),
    /// Run a bundled reference solution (what `grader run` grades when no submission is given).
    #[command(hide = true)]
    Reference {
        /// Task number or bundled task name.
        #[arg(long, value_parser = spec::parse_task_arg)]
        task: u32,
        /// `server --port P` or `client --host H --port P [--name N]`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The guard that ends student programs should the grader be killed (started by the grader
    /// itself, see `process::watchdog`).
    #[command(hide = true)]
    Guard {
        /// The grader's identity (`<pid>-<start>-<scope>`).
        #[arg(long)]
        grader: String,
        /// The grader's TMPDIR (absolute).
        #[arg(long)]
        tmp: PathBuf,
        /// The read end of the pipe whose write end the grader holds.
        #[arg(long)]
        pipe_fd: i32,
        /// A pidfd of the grader.
        #[arg(long)]
        pidfd: Option<i32>,
    },
    /// List the tasks and their scenarios, with what each checks (validating the task files
    /// under the dialect given).
    Tasks {
        /// Read task files from this folder instead of the bundled ones.
        #[arg(long)]
        tasks_dir: Option<PathBuf>,
        #[command(flatten)]
        dialect: DialectArgs,
        /// Also print each scenario's steps, with protocol steps expanded as the dialect says.
        #[arg(long)]
        steps: bool,
        /// List the bundled protocol dialects instead.
        #[arg(long)]
        dialects: bool,
    },
}

/// The protocol dialect of a class: `--dialect` and `--protocol` (see `spec::protocol`).
#[derive(Debug, Clone, Default, Args)]
pub struct DialectArgs {
    /// Protocol dialect: a bundled one by name (`grader tasks --dialects` lists them) or a
    /// dialect file. Repeatable: later ones override earlier ones' keys.
    #[arg(long, value_name = "NAME|FILE")]
    pub dialect: Vec<String>,
    /// Protocol keys, as TOML, applied after --dialect: e.g. 'reply = "any"' or
    /// 'fields = { text = "msg" }'. Repeatable.
    #[arg(long, value_name = "KEYS")]
    pub protocol: Vec<String>,
}

impl DialectArgs {
    /// The dialect these options make (empty without any).
    pub fn dialect(&self) -> Result<spec::Dialect, CliError> {
        let mut parts = Vec::new();
        for name in &self.dialect {
            parts.push(
                spec::Dialect::named(name)
                    .map_err(|e| CliError::Usage(format!("--dialect: {e}")))?,
            );
        }
        for keys in &self.protocol {
            let table: toml::Table = toml::from_str(keys).map_err(|e| {
                CliError::Usage(format!(
                    "--protocol {keys:?} is not TOML keys (write e.g. 'reply = \"any\"'): {}",
                    e.message()
                ))
            })?;
            parts.push(
                spec::Dialect::inline(&format!("--protocol '{keys}'"), table)
                    .map_err(|e| CliError::Usage(format!("--protocol: {e}")))?,
            );
        }
        Ok(spec::Dialect::combine(&parts))
    }
}

/// Arguments of `grader run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Task number or bundled task name (`grader tasks` lists them: 1-4 are ClassChat, 5-7 its bonus tasks).
    #[arg(long, value_parser = spec::parse_task_arg)]
    pub task: u32,
    /// The submission: an executable following the launch contract (see tasks/PROTOCOL.md), or a
    /// folder, started as `grader batch` starts one: its classchat.toml (which the options below
    /// override), else the launch contract on its executable named `submission` or its only
    /// one. Without it, the reference solution built into the grader is graded (a
    /// demonstration, and a check of the machine).
    pub submission: Option<String>,
    /// How to start the student's server, e.g. "python3 server.py --port {port}".
    /// Placeholders: {bin} {dir} {host} {port} {name}. No shell is used. Without {port} the
    /// program is not told its port (it hard-codes one): accepted, with a note.
    #[arg(long, value_name = "TEMPLATE")]
    pub server: Option<String>,
    /// How to start the student's client, e.g. "python3 client.py {host} {port}".
    #[arg(long, value_name = "TEMPLATE")]
    pub client: Option<String>,
    /// Build the submission folder first, in a copy of it, e.g. "make" or "javac *.java".
    /// Placeholder: {dir} (the copy). No shell is used; a word with * ? [ is a pattern
    /// expanded in the copy (one that matches nothing is an error).
    #[arg(long, value_name = "COMMAND")]
    pub build: Option<String>,
    /// How long the build may take (default 120s).
    #[arg(long, hide = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub build_timeout: Option<Duration>,
    /// A line typed on the client's stdin right after it starts, before the scenario's own
    /// (repeatable, in order), for clients that ask for a host or a name first, e.g.
    /// --stdin-prelude "{host}" --stdin-prelude "{name}". Placeholders: {host} {port} {name}.
    #[arg(long = "stdin-prelude", value_name = "LINE")]
    pub stdin_prelude: Vec<String>,
    /// The client's stdin: a pipe (default) or a terminal (for clients that need one, e.g.
    /// Java's System.console()); its stdout is a terminal either way.
    #[arg(long, value_enum, value_name = "pipe|terminal")]
    pub client_stdin: Option<launch::ClientStdin>,
    /// Grade only this role (repeatable): the other role's scenarios are not run and not part
    /// of the maximum, e.g. --role server for a task graded on its server half.
    #[arg(long = "role", value_name = "server|client", value_parser = launch::parse_role)]
    pub roles: Vec<Role>,
    /// Folder with task<N>.toml files (default: the task files built into the grader).
    #[arg(long, value_name = "DIR")]
    pub tasks_dir: Option<PathBuf>,
    /// Wall-clock limit of the grading's scenarios, all together (the build has its own):
    /// scenarios not finished by then are timed out, e.g. "90s", "5m".
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = time_limit)]
    pub time_limit: Duration,
    /// Where reports go: <out>/<submission>/task<N>.{toml,junit.xml}.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// Exit 0 only at or above this score: points ("24") or a percentage ("80%"). A fraction
    /// below 1 ("0.8") is refused as ambiguous.
    #[arg(long, value_name = "POINTS|PERCENT")]
    pub min_score: Option<MinScore>,
    /// Terminal output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Print full transcripts and stderr of failed scenarios.
    #[arg(short, long)]
    pub verbose: bool,
    /// Seed for the randomised payloads; replays a grading exactly.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Scenarios run at once (default: twice the number of CPU cores).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// Who the console output and JUnit file are for (the TOML record keeps everything).
    #[arg(long, value_enum, default_value_t)]
    pub audience: Audience,
    /// The due date has passed: show `after_due` scenarios to students.
    #[arg(long)]
    pub after_due: bool,
    /// Network isolation: a network namespace per scenario (netns), the host's loopback (host),
    /// or netns where the system allows it and host otherwise (auto).
    #[arg(long, value_enum, default_value_t)]
    pub isolation: IsolationMode,
    /// Grade a program that uses another port than its assigned one on that port (a server on the
    /// port it listens on; a client, inside a network namespace, redirected to the grader's
    /// listener) in every scenario except those about the port, which fail naming it; the
    /// report notes it once. Default: on; `=false` fails every scenario of such a program.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub accept_any_port: Option<bool>,
    /// The protocol dialect (a submission folder's classchat.toml may add its own on top).
    #[command(flatten)]
    pub dialect: DialectArgs,
    /// The exact dialect of a replayed grading (instead of the options and classchat.toml).
    #[arg(skip)]
    pub replayed_dialect: Option<spec::Dialect>,
}

/// Arguments of `grader batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Task number or bundled task name (`grader tasks` lists them).
    #[arg(long, value_parser = spec::parse_task_arg)]
    pub task: u32,
    /// Folder of submissions: each subfolder (student id = folder name) or executable file.
    pub dir: PathBuf,
    /// Folder with task<N>.toml files (default: the bundled task files).
    #[arg(long, value_name = "DIR")]
    pub tasks_dir: Option<PathBuf>,
    /// Where reports go: <out>/<student id>/task<N>.{toml,junit.xml}.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// The most submissions graded at once. Between one and that many run, a new one starting
    /// whenever the CPU has room (waiting scenarios cost none); default: 16 per CPU core, lowered
    /// to what open files and memory allow.
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// Regrade submissions whose records are up to date.
    #[arg(long)]
    pub force: bool,
    /// Grade only slice K of N (deterministic, by sorted student id), e.g. 2/4.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// One seed for every grading (default: a fresh seed per submission, recorded).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Default server template for submissions without a classchat.toml.
    #[arg(long, value_name = "TEMPLATE")]
    pub server: Option<String>,
    /// Default client template for submissions without a classchat.toml.
    #[arg(long, value_name = "TEMPLATE")]
    pub client: Option<String>,
    /// Default build command for submission folders whose classchat.toml names none (run in a
    /// copy of the folder before grading it), e.g. "make" or "javac *.java" (a word with * ? [
    /// is a pattern expanded in the copy, no shell).
    #[arg(long, value_name = "COMMAND")]
    pub build: Option<String>,
    /// How long one submission's build may take (default 120s).
    #[arg(long, hide = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub build_timeout: Option<Duration>,
    /// A line typed on each client's stdin before the scenario's own (repeatable), for
    /// submissions whose classchat.toml sets no stdin_prelude. Placeholders: {host} {port}
    /// {name}.
    #[arg(long = "stdin-prelude", value_name = "LINE")]
    pub stdin_prelude: Vec<String>,
    /// The clients' stdin (pipe or terminal), for submissions whose classchat.toml sets no
    /// client_stdin.
    #[arg(long, value_enum, value_name = "pipe|terminal")]
    pub client_stdin: Option<launch::ClientStdin>,
    /// Grade only this role (repeatable), for submissions whose classchat.toml sets no roles.
    #[arg(long = "role", value_name = "server|client", value_parser = launch::parse_role)]
    pub roles: Vec<Role>,
    /// Who the per-submission JUnit files and --export outputs are for.
    #[arg(long, value_enum, default_value_t)]
    pub audience: Audience,
    /// The due date has passed: show `after_due` scenarios to students.
    #[arg(long)]
    pub after_due: bool,
    /// Also export, when the batch ends (repeatable): files go to <out>/.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub export: Vec<export::Format>,
    /// Wall-clock limit of each submission's scenarios, all together (its build has its own):
    /// scenarios not finished by then are timed out, e.g. "90s", "5m".
    #[arg(long, alias = "timeout", value_name = "DURATION", default_value = "10m", value_parser = time_limit)]
    pub time_limit: Duration,
    /// Plain lines even on a terminal (no progress bar).
    #[arg(long)]
    pub no_progress: bool,
    /// Network isolation, as for `grader run`. A record graded with another isolation is not
    /// up to date.
    #[arg(long, value_enum, default_value_t)]
    pub isolation: IsolationMode,
    /// As for `grader run`: grade a program on the port it uses when that is not the assigned
    /// one (except in scenarios about the port). Default: on.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub accept_any_port: Option<bool>,
    /// The class's protocol dialect (each submission's classchat.toml may add its own on top).
    #[command(flatten)]
    pub dialect: DialectArgs,
    #[command(flatten)]
    pub canvas: CanvasArgs,
}

/// Arguments of `grader export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum)]
    pub format: export::Format,
    /// Reports folder: <dir>/<student>/task<N>.toml.
    pub reports: PathBuf,
    /// Output file ("-" for stdout; default: <reports>/<grades.csv|results.json|...>).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Who the export is for.
    #[arg(long, value_enum, default_value_t)]
    pub audience: Audience,
    /// The due date has passed: show `after_due` scenarios to students.
    #[arg(long)]
    pub after_due: bool,
    /// Only this student (required for gradescope/classroom when the folder holds several).
    #[arg(long, value_name = "ID")]
    pub student: Option<String>,
    /// Only this task (number or bundled task name).
    #[arg(long, value_parser = spec::parse_task_arg)]
    pub task: Option<u32>,
    /// CSV: header of the id column (e.g. "username" for Moodle).
    #[arg(long, value_name = "NAME", default_value = "student_id")]
    pub id_column: String,
    #[command(flatten)]
    pub canvas: CanvasArgs,
}

/// Options of the Canvas export (`export --format canvas`, `batch --export canvas`).
#[derive(Debug, Args)]
pub struct CanvasArgs {
    /// Canvas: the course's gradebook CSV (Canvas: Grades → Export), whose identification
    /// columns the import needs.
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
    /// Canvas: the roster column that holds the grader's student ids (the ids the records name; by default
    /// the submission folder names).
    #[arg(long, value_name = "COLUMN", default_value = "SIS Login ID")]
    pub match_column: String,
    /// Canvas: column name for the points of the one exported task, e.g. an existing
    /// assignment's "ClassChat Task 1 (4711)" (default: "Task N: <title>", a new assignment).
    #[arg(long, value_name = "NAME")]
    pub assignment: Option<String>,
}

impl CanvasArgs {
    fn options(&self, id_column: String) -> export::Options {
        export::Options {
            id_column,
            roster: self.roster.clone(),
            match_column: self.match_column.clone(),
            assignment: self.assignment.clone(),
        }
    }
}

/// Arguments of `grader replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The TOML report of the grading to rerun.
    pub report: PathBuf,
    /// Where the new reports go.
    #[arg(long, value_name = "DIR", default_value = "replay-reports")]
    pub out: PathBuf,
    /// Terminal output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Print full transcripts and stderr of failed scenarios.
    #[arg(short, long)]
    pub verbose: bool,
    /// Who the console output is for.
    #[arg(long, value_enum, default_value_t)]
    pub audience: Audience,
}

/// The `time_limit_ms` a record keeps: the limit, unless it is the default.
pub(crate) fn recorded_time_limit(limit: Duration) -> Option<u64> {
    (limit != engine::GRADING_TIME_LIMIT)
        .then(|| limit.as_millis().min(u128::from(u64::MAX)) as u64)
}

/// Parses a `--time-limit`: a duration ("90s", "5m") of more than zero and at most a day.
fn time_limit(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("a grading needs some time: give more than 0s".into()),
        Ok(d) if d > Duration::from_secs(24 * 3600) => {
            Err("at most a day (24h): a grading that needs more is stuck".into())
        }
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write e.g. \"90s\" or \"10m\")")),
    }
}

/// A `--min-score`: points or a percentage of the maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinScore {
    /// Absolute points.
    Points(f64),
    /// Percentage of the maximum score.
    Percent(f64),
}

impl FromStr for MinScore {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a score: write points (24) or a percentage (80%)");
        let (num, pct) = match s.trim().strip_suffix('%') {
            Some(n) => (n, true),
            None => (s.trim(), false),
        };
        let v: f64 = num.trim().parse().map_err(|_| bad())?;
        if !v.is_finite() || v < 0.0 || (pct && v > 100.0) {
            return Err(bad());
        }
        // "0.8" reads as a fraction (80%) to many but means 0.8 points: a gate that almost
        // always passes. A fraction of a point below 1 is never what was meant.
        if !pct && v > 0.0 && v < 1.0 {
            return Err(format!(
                "{s:?} is ambiguous (0.8 points, or 80%?): write 80% or a number of points"
            ));
        }
        Ok(if pct {
            MinScore::Percent(v)
        } else {
            MinScore::Points(v)
        })
    }
}

impl MinScore {
    /// Whether a report meets the bar.
    pub fn met_by(self, report: &GradeReport) -> bool {
        match self {
            MinScore::Points(p) => report.score + 1e-9 >= p,
            MinScore::Percent(p) => report.percent() + 1e-9 >= p,
        }
    }
}

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
    Merge(#[from] batch::merge::MergeError),
    /// The batch folder cannot be graded.
    #[error(transparent)]
    Discover(#[from] batch::discover::DiscoverError),
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
    Guard(crate::process::watchdog::GuardError),
    /// The async runtime could not start.
    #[error("cannot start the grader's runtime: {0}")]
    Runtime(std::io::Error),
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
        crate::process::watchdog::run_guard(grader, tmp, *pipe_fd, *pidfd)
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
        Command::Run(a) => a.isolation != IsolationMode::Host,
        Command::Batch(a) => a.isolation != IsolationMode::Host,
        Command::Replay(a) => {
            record::read(&a.report).map_or(true, |r| r.report.isolation != "host")
        }
        _ => false,
    };
    if namespaces && !crate::process::sandbox::is_root() {
        let _ = crate::process::sandbox::userns::enter();
    }
    // A root grader finds out what of its confinement the system allows (root in a plain
    // `docker run` lacks the capabilities for namespaces and mounts), also single-threaded, in
    // every isolation (the minimal root does not depend on the network's).
    if crate::process::sandbox::is_root()
        && matches!(
            cli.command,
            Command::Run(_) | Command::Batch(_) | Command::Replay(_)
        )
    {
        let _ = crate::process::sandbox::caps::probe_root_confinement();
    }
    if matches!(
        cli.command,
        Command::Run(_) | Command::Batch(_) | Command::Replay(_)
    ) {
        // First: a guard that ends the student programs should the grader be killed outright.
        // No student program is started without one (see `watchdog::ensure_guarded`).
        crate::process::watchdog::start().map_err(CliError::Guard)?;
    }
    match cli.command {
        Command::Run(args) => run_grading(args, None).map(|(code, _)| code),
        Command::Batch(args) => run_batch(args),
        Command::Export(args) => run_export(args),
        Command::Merge { inputs, out } => run_merge(&inputs, &out),
        Command::Replay(args) => run_replay(args),
        Command::Tasks {
            tasks_dir,
            dialect,
            steps,
            dialects,
        } => {
            if dialects {
                list_dialects()
            } else {
                list_tasks(tasks_dir, &dialect.dialect()?, steps)
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
    use crate::process::sandbox::userns;
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
            let why = crate::net::netns::probe().err().unwrap_or_default();
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
    use crate::process::sandbox::{self, caps};
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
            let why = crate::net::netns::probe().err().unwrap_or_default();
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

fn list_dialects() -> Result<u8, CliError> {
    for (name, text) in spec::BUNDLED_DIALECTS {
        let d = spec::Dialect::named(name).map_err(CliError::Usage)?;
        let about = text
            .lines()
            .find_map(|l| l.strip_prefix("description = "))
            .map(|d| d.trim_matches('"').to_string())
            .unwrap_or_default();
        say!("{name:<14} {about}");
        if !d.is_empty() {
            say!("{:<14} [protocol] {}", "", d.to_inline());
        }
    }
    Ok(EXIT_PASS)
}

/// The numbers of the `task<N>.toml` files in `dir`, in order.
fn task_numbers_in(dir: &Path) -> Result<Vec<u32>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SpecError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut numbers: Vec<u32> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            let name = name.to_str()?;
            name.strip_prefix("task")?
                .strip_suffix(".toml")?
                .parse()
                .ok()
        })
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

fn list_tasks(dir: Option<PathBuf>, dialect: &spec::Dialect, steps: bool) -> Result<u8, CliError> {
    let numbers: Vec<u32> = match &dir {
        None => spec::BUNDLED_TASKS.iter().map(|(n, _, _)| *n).collect(),
        Some(d) => task_numbers_in(d)?,
    };
    for n in numbers {
        let (spec, _) = spec::load_with(dir.as_deref(), n, dialect)?;
        say!(
            "task {}{} · {} · {} points{}",
            spec.task,
            spec.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            spec.title,
            fmt_points(spec.max_score()),
            if dialect.is_empty() {
                String::new()
            } else {
                format!(" · dialect {}", dialect.label)
            }
        );
        if let Some(d) = &spec.description {
            say!("  {}", d.trim());
        }
        for s in &spec.scenarios {
            let shown = match s.visibility {
                audience::Visibility::Visible => "",
                audience::Visibility::Hidden => " (hidden from students)",
                audience::Visibility::AfterDue => " (shown to students after the due date)",
            };
            say!(
                "  {:<6} {:>4} pts  {}{shown}",
                format!("{:?}", s.role).to_lowercase(),
                fmt_points(s.points),
                s.name
            );
            if let Some(d) = &s.description {
                say!("                   {}", d.trim());
            }
            if steps {
                for step in &s.steps {
                    let shown = toml::Value::try_from(step)
                        .map(|v| v.to_string())
                        .unwrap_or_else(|e| format!("({e})"));
                    say!("           {shown}");
                }
            }
        }
    }
    Ok(EXIT_PASS)
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

/// Twice the number of cores: scenarios mostly wait, but each start of a student program costs
/// CPU, and more parallel starts than that only slow each other down (measured in docs/architecture.md).
fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .saturating_mul(2)
        .clamp(2, 16)
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

/// Grades one submission; `name` overrides the report folder name (replays of batch gradings).
/// A folder given to `grader run` is started as `grader batch` starts it: by its
/// `classchat.toml` (the command line's `--server`/`--client`/`--build` win over it), else, without
/// those options, by the launch contract on its executable named `submission` or its only one.
/// Returns the arguments to grade with and, where the folder's executable is graded, the folder.
/// The third value is the dialect the folder's `classchat.toml` asks for.
fn resolve_folder(
    mut args: RunArgs,
) -> Result<(RunArgs, Option<PathBuf>, spec::Dialect), CliError> {
    let none = spec::Dialect::default();
    let Some(dir) = args.submission.as_deref().map(PathBuf::from) else {
        return Ok((args, None, none));
    };
    let flags = args.server.is_some() || args.client.is_some() || args.build.is_some();
    if !dir.is_dir() || (flags && !dir.join(batch::discover::LAUNCH_FILE).exists()) {
        return Ok((args, None, none));
    }
    let has_file = dir.join(batch::discover::LAUNCH_FILE).exists();
    let plan = batch::discover::folder_plan(&dir, batch::discover::Defaults::default()).map_err(
        |why| {
            // An error in its classchat.toml names the file, line and key: fix it there.
            let or = if has_file {
                ""
            } else {
                "; or say how to start it with --server/--client"
            };
            CliError::Usage(format!("submission {}: {why}{or}", dir.display()))
        },
    )?;
    let dialect = batch::discover::submission_dialect(&plan)
        .map_err(|why| CliError::Usage(format!("submission {}: {why}", dir.display())))?;
    args.server = args.server.or(plan.server);
    args.client = args.client.or(plan.client);
    args.build = args.build.or(plan.build);
    if args.stdin_prelude.is_empty() {
        args.stdin_prelude = plan.stdin_prelude.unwrap_or_default();
    }
    args.client_stdin = args.client_stdin.or(plan.client_stdin);
    if args.roles.is_empty() {
        args.roles = plan.roles.unwrap_or_default();
    }
    if plan.target == dir {
        return Ok((args, None, dialect));
    }
    args.submission = Some(plan.target.display().to_string());
    Ok((args, Some(dir), dialect))
}

/// The [`launch::LaunchOptions`] of `grader run`'s flags (after [`resolve_folder`] merged a
/// folder's `classchat.toml` in), checked.
fn launch_options(args: &RunArgs) -> Result<launch::LaunchOptions, CliError> {
    for line in &args.stdin_prelude {
        launch::check_prelude_line(line, "--stdin-prelude line")?;
    }
    Ok(launch::LaunchOptions {
        stdin_prelude: args.stdin_prelude.clone(),
        client_stdin: args.client_stdin.unwrap_or_default(),
        roles: (!args.roles.is_empty()).then(|| args.roles.clone()),
    })
}

fn run_grading(args: RunArgs, name: Option<String>) -> Result<(u8, GradeReport), CliError> {
    let (args, folder, own) = resolve_folder(args)?;
    let dialect = match &args.replayed_dialect {
        Some(d) => d.clone(),
        None => spec::Dialect::combine([&args.dialect.dialect()?, &own]),
    };
    let (spec, text) = spec::load_with(args.tasks_dir.as_deref(), args.task, &dialect)?;
    let launch_options = launch_options(&args)?;
    // The maximum of the roles graded.
    let max_score = launch::only_roles(&spec, launch_options.roles.as_deref())?
        .0
        .max_score();
    if let Some(MinScore::Points(p)) = args.min_score
        && p > max_score + 1e-9
    {
        return Err(CliError::Usage(format!(
            "--min-score {} is more than task {}'s {} points: no grading could meet it",
            fmt_points(p),
            args.task,
            fmt_points(max_score)
        )));
    }
    let spec_source = match &args.tasks_dir {
        Some(d) => d
            .join(format!("task{}.toml", args.task))
            .display()
            .to_string(),
        None => format!("bundled:tasks/task{}.toml", args.task),
    };
    let bundled = args.submission.is_none()
        && args.server.is_none()
        && args.client.is_none()
        && args.build.is_none();
    let template = |role, given: &Option<String>| match given {
        Some(t) => CommandTemplate::parse(role, t),
        None if bundled => Ok(CommandTemplate::bundled_reference(role, args.task)),
        None => Ok(CommandTemplate::default_for(role)),
    };
    let server = template(Role::Server, &args.server)?;
    let client = template(Role::Client, &args.client)?;
    let build = args
        .build
        .as_deref()
        .map(launch::BuildCommand::parse)
        .transpose()?;
    let submission = if bundled {
        let exe = std::env::current_exe().map_err(|e| LaunchError::Unreadable {
            submission: "the grader itself".into(),
            source: e.into(),
        })?;
        let mut s = launch::check_submission(&exe.display().to_string())?;
        s.name = format!("reference-task{}", args.task);
        s.given = format!("(bundled reference solution of task {})", args.task);
        s
    } else {
        launch::check_submission(args.submission.as_deref().unwrap_or("."))?
    };
    let mut submission = submission;
    // The folder names the report (as in a batch), and its content is what the hash covers.
    let hashed = match &folder {
        Some(dir) => {
            submission.name = std::fs::canonicalize(dir)
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or(submission.name);
            std::path::absolute(dir).unwrap_or_else(|_| dir.clone())
        }
        None => submission.path.clone(),
    };
    if let Some(n) = name {
        submission.name = n;
    }
    let provenance = Provenance {
        submission_hash: if bundled {
            None
        } else {
            Some(crate::fingerprint::content_hash(&hashed).map_err(|e| {
                if e.is_refusal() {
                    // Says what to change in the submission.
                    CliError::Usage(e.to_string())
                } else {
                    LaunchError::Unreadable {
                        submission: submission.given.clone(),
                        source: e.into(),
                    }
                    .into()
                }
            })?)
        },
        submission_abs: (!bundled).then(|| submission.path.display().to_string()),
        submission_root: folder.as_ref().map(|_| hashed.display().to_string()),
        bundled_reference: bundled,
        server_template: args.server.clone(),
        client_template: args.client.clone(),
        build_command: args.build.clone(),
        build_timeout_ms: args
            .build
            .as_ref()
            .and(args.build_timeout)
            .map(|t| t.as_millis() as u64),
        time_limit_ms: recorded_time_limit(args.time_limit),
        tasks_dir: args.tasks_dir.as_deref().map(absolute),
        protocol: (!spec.dialect.is_empty()).then(|| spec.dialect.to_inline()),
        policies: audience::policies_of(&spec),
        stdin_prelude: launch_options.stdin_prelude.clone(),
        client_stdin: Some(launch_options.client_stdin).filter(|c| *c != launch::ClientStdin::Pipe),
        roles: launch_options.roles.clone(),
    };
    let view = View {
        audience: args.audience,
        after_due: args.after_due,
    };
    report::check_writable(&args.out)?;
    let seed = args.seed.unwrap_or_else(random_seed);
    let isolation = resolve_isolation(args.isolation)?;
    let options = EngineOptions {
        isolation,
        accept_any_port: args.accept_any_port,
        parallelism: args.jobs.unwrap_or_else(default_jobs).max(1),
        build_timeout: args.build_timeout.unwrap_or(engine::build::BUILD_TIMEOUT),
        hidden: unseen_folders(args.tasks_dir.as_deref(), &args.out),
        time_limit: args.time_limit,
        ..EngineOptions::default()
    };
    let req = GradeRequest {
        spec,
        spec_text: text,
        spec_source,
        submission,
        server,
        client,
        build,
        seed,
        launch: launch_options,
        options,
    };
    let console = Console::new(args.format, args.verbose);
    let shown = Redacting::new(&console, &provenance.policies, view);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let ports = PortPool::new(seed);
    let report = rt.block_on(async {
        let stop = interrupted();
        tokio::select! {
            biased;
            // Dropping the grading ends every student process group it started.
            sig = stop => Err(CliError::Interrupted(sig)),
            // An infrastructure error names its scenario: hidden ones stay hidden from students.
            r = engine::grade(&req, &ports, &shown) => {
                r.map_err(|e| CliError::from(audience::redact_error(e, &req.spec, view)))
            }
        }
    })?;
    let written = batch::write_graded(&args.out, &report, &provenance, view)?;
    let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    say!("Reports: {}", paths.join(", "));
    let ok = match args.min_score {
        Some(m) => m.met_by(&report),
        None => report.passed() == report.scenarios.len(),
    };
    if !ok {
        if let Some(m) = args.min_score {
            let bar = match m {
                MinScore::Points(p) => format!("{} points", fmt_points(p)),
                MinScore::Percent(p) => format!("{p}%"),
            };
            say!("Below the required score of {bar}.");
        }
        // The record holds everything a replay needs (seed, templates, task folder, isolation).
        if let Some(record) = written
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "toml"))
        {
            say!(
                "Replay this grading exactly: grader replay {}",
                shell_words::quote(&record.display().to_string())
            );
        }
    }
    Ok((if ok { EXIT_PASS } else { EXIT_BELOW }, report))
}

/// The folders student code must not read: the task files (hidden scenarios' expected values)
/// and the reports (other students' records in a batch).
fn unseen_folders(tasks_dir: Option<&Path>, out: &Path) -> Vec<PathBuf> {
    tasks_dir
        .into_iter()
        .chain(std::iter::once(out))
        .map(Path::to_path_buf)
        .collect()
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

fn spec_source(tasks_dir: Option<&Path>, task: u32) -> String {
    match tasks_dir {
        Some(d) => d.join(format!("task{task}.toml")).display().to_string(),
        None => format!("bundled:tasks/task{task}.toml"),
    }
}

fn run_batch(args: BatchArgs) -> Result<u8, CliError> {
    let dialect = args.dialect.dialect()?;
    let (spec, text) = spec::load_with(args.tasks_dir.as_deref(), args.task, &dialect)?;
    for (role, t) in [(Role::Server, &args.server), (Role::Client, &args.client)] {
        if let Some(t) = t {
            CommandTemplate::parse(role, t)?;
        }
    }
    if let Some(b) = &args.build {
        launch::BuildCommand::parse(b)?;
    }
    for line in &args.stdin_prelude {
        launch::check_prelude_line(line, "--stdin-prelude line")?;
    }
    if !args.roles.is_empty() {
        launch::only_roles(&spec, Some(&args.roles))?;
    }
    // Exporters first: a missing Canvas roster is a usage error before any grading, not after.
    let export_options = args.canvas.options("student_id".into());
    let exporters = args
        .export
        .iter()
        .map(|f| export::exporter(*f, &export_options))
        .collect::<Result<Vec<_>, _>>()?;
    let found = batch::discover(
        &args.dir,
        batch::discover::Defaults {
            server: args.server.as_deref(),
            client: args.client.as_deref(),
            build: args.build.as_deref(),
            stdin_prelude: (!args.stdin_prelude.is_empty()).then_some(&args.stdin_prelude[..]),
            client_stdin: args.client_stdin,
            roles: (!args.roles.is_empty()).then_some(&args.roles[..]),
        },
    )?;
    let mut entries = found.entries;
    let all = entries.len();
    if let Some(shard) = args.shard {
        entries = shard.select(entries);
    }
    report::check_writable(&args.out)?;
    if !found.ignored.is_empty() {
        say!(
            "Ignored {} non-executable file(s) in {} (not submissions): {}",
            found.ignored.len(),
            args.dir.display(),
            found
                .ignored
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| safe_text::terminal(&n.to_string_lossy()).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let jobs = args
        .jobs
        .unwrap_or_else(batch::admission::default_bound)
        .max(1);
    say!(
        "Batch: task {} ({}) · {} submission(s){} · up to {jobs} at once, started as the CPU has room · reports in {}",
        spec.task,
        spec.title,
        entries.len(),
        match args.shard {
            Some(s) => format!(" (shard {}/{} of {all})", s.index, s.count),
            None => String::new(),
        },
        args.out.display()
    );
    let view = View {
        audience: args.audience,
        after_due: args.after_due,
    };
    let isolation = resolve_isolation(args.isolation)?;
    let scenario_count = spec.scenarios.len().max(1);
    let config = batch::Config {
        spec_source: spec_source(args.tasks_dir.as_deref(), args.task),
        tasks_dir: args
            .tasks_dir
            .as_deref()
            .map(|d| PathBuf::from(absolute(d))),
        spec,
        spec_text: text,
        dialect,
        out: args.out.clone(),
        jobs,
        engine: EngineOptions {
            // A grading runs all its scenarios at once: the batch admits gradings by the room
            // on the CPU (see batch::admission), and waiting scenarios cost none.
            parallelism: scenario_count,
            isolation,
            accept_any_port: args.accept_any_port,
            build_timeout: args.build_timeout.unwrap_or(engine::build::BUILD_TIMEOUT),
            hidden: unseen_folders(args.tasks_dir.as_deref(), &args.out),
            time_limit: args.time_limit,
            ..EngineOptions::default()
        },
        force: args.force,
        seed: args.seed,
        view,
        // The engine ends a grading by its limit plus its wind-down; this is the batch's last
        // resort should the grader itself hang (an infrastructure error, retried).
        timeout: args.time_limit.saturating_add(2 * engine::WIND_DOWN),
    };
    let progress = batch::progress::Progress::new(entries.len(), !args.no_progress);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let pool = PortPool::new(random_seed());
    let started = std::time::Instant::now();
    let summary = rt.block_on(async {
        let stop = interrupted();
        tokio::select! {
            biased;
            sig = stop => Err(CliError::BatchInterrupted(sig)),
            s = batch::run(&config, entries, &pool, &progress, random_seed) => Ok(s),
        }
    });
    progress.finish();
    let summary = summary?;
    let graded = summary.count(|o| matches!(o, batch::Outcome::Graded { .. }));
    let skipped = summary.count(|o| matches!(o, batch::Outcome::UpToDate { .. }));
    let not_started = summary.count(|o| matches!(o, batch::Outcome::NotStarted(_)));
    let infra = summary.count(|o| matches!(o, batch::Outcome::Infrastructure(_)));
    let full = summary.count(|o| o.has_score() && !o.lost_points());
    say!(
        "Done in {:.1}s: {graded} graded, {skipped} up to date (skipped), {not_started} not started, {infra} infrastructure failures · {full} with full marks",
        started.elapsed().as_secs_f64()
    );
    for (id, o) in &summary.results {
        if matches!(
            o,
            batch::Outcome::NotStarted(_) | batch::Outcome::Infrastructure(_)
        ) {
            say!("  {}", batch::progress::line(id, o));
        }
    }
    // The class's warnings (never-graded students, ...) are every format's: said once.
    let mut warned: Vec<String> = Vec::new();
    for exporter in &exporters {
        let records = read_records(&args.out, Some(args.task), None)?;
        let class = export::Class::with_student_filter(records, view, false);
        for w in exporter.warnings(&class) {
            if !warned.contains(&w) {
                say_err!("warning: {}", safe_text::terminal_lines(&w));
                warned.push(w);
            }
        }
        if exporter.per_student() {
            let mut paths = Vec::new();
            for student in &class.students {
                let one = export::Class {
                    students: vec![student.clone()],
                    not_graded: Vec::new(),
                    ..class.clone()
                };
                let path = args
                    .out
                    .join(&student.folder)
                    .join(exporter.default_file_name());
                report::write_atomic(&path, &exporter.render(&one)?)?;
                paths.push(path.display().to_string());
            }
            const SHOWN: usize = 3;
            say!(
                "Exported {} ({}): {}{}",
                exporter.format(),
                exporter.covers(&class),
                paths
                    .iter()
                    .take(SHOWN)
                    .map(|p| safe_text::terminal(p).into_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
                match paths.len().saturating_sub(SHOWN) {
                    0 => String::new(),
                    more => format!(" and {more} more in {}", args.out.display()),
                }
            );
        } else {
            let path = args.out.join(exporter.default_file_name());
            report::write_atomic(&path, &exporter.render(&class)?)?;
            say!(
                "Exported {} ({}): {}",
                exporter.format(),
                exporter.covers(&class),
                path.display()
            );
        }
    }
    Ok(if infra > 0 {
        EXIT_ERROR
    } else if not_started > 0 {
        EXIT_BELOW
    } else {
        EXIT_PASS
    })
}

/// Records under `dir`, optionally of one task and one student; an error when there are none.
/// Refused records ([`record::RecordError::Refused`]) are among them: the export's
/// [`export::Class`] lists their students as not graded and warns about each.
fn read_records(
    dir: &Path,
    task: Option<u32>,
    student: Option<&str>,
) -> Result<Vec<(String, record::Record)>, CliError> {
    let (mut records, skipped) = record::read_dir(dir)?;
    for e in skipped {
        match e.into_refused() {
            Ok(refused) => records.push(refused),
            Err(e) => say_err!(
                "warning: skipped {}",
                safe_text::terminal_lines(&crate::error_chain::chain(&e))
            ),
        }
    }
    records.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.report.task.cmp(&b.1.report.task)));
    let records: Vec<_> = records
        .into_iter()
        .filter(|(id, r)| {
            task.is_none_or(|t| r.report.task == t)
                && student.is_none_or(|s| s == id || s == r.student_id(id))
        })
        .collect();
    if records.is_empty() {
        return Err(CliError::Usage(format!(
            "no grading records (<student>/task<N>.toml){} in {}",
            match (task, student) {
                (Some(t), Some(s)) => format!(" for task {t} of {s}"),
                (Some(t), None) => format!(" for task {t}"),
                (None, Some(s)) => format!(" of {s}"),
                (None, None) => String::new(),
            },
            dir.display()
        )));
    }
    Ok(records)
}

fn run_export(args: ExportArgs) -> Result<u8, CliError> {
    let records = read_records(&args.reports, args.task, args.student.as_deref())?;
    let view = View {
        audience: args.audience,
        after_due: args.after_due,
    };
    let class = export::Class::with_student_filter(records, view, args.student.is_some());
    let exporter = export::exporter(args.format, &args.canvas.options(args.id_column.clone()))?;
    // Before rendering: a per-student format refuses a class whose one record was refused, and
    // the warning says why.
    for w in exporter.warnings(&class) {
        say_err!("warning: {}", safe_text::terminal_lines(&w));
    }
    let bytes = exporter.render(&class)?;
    let out = args
        .out
        .unwrap_or_else(|| args.reports.join(exporter.default_file_name()));
    if out.as_os_str() == "-" {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&bytes)
            .and_then(|_| stdout.flush())
            .map_err(|source| ReportError::Io {
                path: out.clone(),
                source,
            })?;
    } else {
        report::write_atomic(&out, &bytes)?;
        say_err!(
            "Exported {} ({}): {}",
            exporter.format(),
            exporter.covers(&class),
            out.display()
        );
    }
    Ok(EXIT_PASS)
}

fn run_merge(inputs: &[PathBuf], out: &Path) -> Result<u8, CliError> {
    let merged = batch::merge::merge(inputs, out)?;
    for c in &merged.conflicts {
        say_err!("warning: {}", safe_text::terminal_lines(c));
    }
    for s in &merged.skipped {
        say_err!("warning: skipped {}", safe_text::terminal_lines(s));
    }
    say!(
        "Merged {} record(s) from {} folder(s) into {}",
        merged.records,
        inputs.len(),
        out.display()
    );
    Ok(EXIT_PASS)
}

fn run_replay(args: ReplayArgs) -> Result<u8, CliError> {
    // A refused record (its numbers disagree) still says how to regrade: the replay's score is
    // the one to believe.
    let rec = match record::read(&args.report) {
        Ok(rec) => rec,
        Err(e @ RecordError::Refused { .. }) => {
            say_err!("warning: {}", safe_text::terminal_lines(&e.to_string()));
            e.into_refused().map(|(_, rec)| rec)?
        }
        Err(e) => return Err(e.into()),
    };
    let (r, p) = (&rec.report, &rec.provenance);
    let tasks_dir = p.tasks_dir.as_ref().map(PathBuf::from);
    // The dialect exactly as recorded (none: the task's own protocol).
    let dialect = match (&r.dialect, &p.protocol) {
        (Some(label), Some(keys)) => spec::Dialect::from_inline(label, keys)
            .map_err(|e| CliError::Usage(format!("the record's dialect: {e}")))?,
        _ => spec::Dialect::default(),
    };
    let (_, text) = spec::load_with(tasks_dir.as_deref(), r.task, &dialect)?;
    if engine::spec_hash(&text) != r.spec_hash {
        say_err!(
            "warning: the task spec changed since this grading (recorded spec hash {}…, now {}…): the replay uses today's spec, so scores may differ",
            &r.spec_hash.get(..12).unwrap_or(&r.spec_hash),
            &engine::spec_hash(&text)[..12]
        );
    }
    if r.grader_version != env!("CARGO_PKG_VERSION") {
        say_err!(
            "warning: recorded by grader {}, replayed by grader {}",
            r.grader_version,
            env!("CARGO_PKG_VERSION")
        );
    }
    let submission = if p.bundled_reference {
        None
    } else {
        Some(
            p.submission_abs
                .clone()
                .unwrap_or_else(|| r.submission_path.clone()),
        )
    };
    // The hash covers the batch folder when the executable inside it was started.
    let hashed = p.submission_root.clone().or_else(|| submission.clone());
    if let (Some(path), Some(hash)) = (&hashed, &p.submission_hash) {
        match crate::fingerprint::content_hash(Path::new(path)) {
            Ok(now) if &now != hash => say_err!(
                "warning: the submission at {path} changed since this grading (content hash differs)"
            ),
            _ => {}
        }
    }
    say!(
        "Replaying {} task {} with seed {} (recorded score {}/{})",
        r.submission,
        r.task,
        r.seed,
        fmt_points(r.score),
        fmt_points(r.max_score)
    );
    let recorded = r.score;
    let run = RunArgs {
        task: r.task,
        submission,
        server: p.server_template.clone(),
        client: p.client_template.clone(),
        build: p.build_command.clone(),
        build_timeout: p.build_timeout_ms.map(Duration::from_millis),
        stdin_prelude: p.stdin_prelude.clone(),
        client_stdin: p.client_stdin,
        roles: p.roles.clone().unwrap_or_default(),
        time_limit: p
            .time_limit_ms
            .map_or(engine::GRADING_TIME_LIMIT, Duration::from_millis),
        tasks_dir,
        out: args.out,
        min_score: None,
        format: args.format,
        verbose: args.verbose,
        seed: Some(r.seed),
        jobs: None,
        audience: args.audience,
        after_due: false,
        isolation: match r.isolation.as_str() {
            "netns" | "userns" => IsolationMode::Netns,
            _ => IsolationMode::Host,
        },
        accept_any_port: Some(r.accepted_any_port()),
        dialect: DialectArgs::default(),
        replayed_dialect: Some(dialect),
    };
    let name = (!p.bundled_reference).then(|| r.submission.clone());
    let view = View {
        audience: args.audience,
        after_due: false,
    };
    let (code, new) = run_grading(run, name)?;
    let changed = changed_verdicts(
        &audience::redact(r, &p.policies, view),
        &audience::redact(&new, &p.policies, view),
    );
    if (new.score - recorded).abs() > 1e-9 {
        say!(
            "The replay scored {} where the record has {}.",
            fmt_points(new.score),
            fmt_points(recorded)
        );
    } else {
        say!("The replay reproduced the recorded score.");
    }
    if !changed.is_empty() {
        say!("Verdicts that changed ({}):", changed.len());
        for lines in &changed {
            say!("{lines}");
        }
        say!(
            "Same program, same seed, another verdict: unless the submission or the task changed \
             (see the warnings above), a verdict that differs between runs points at a race in \
             the program (e.g. a reply sent before the state it reports was updated, or a \
             message split across two reads); replay it a few times to see how often."
        );
    }
    Ok(code)
}

/// Each scenario whose status differs between the recorded and the replayed report (both as the
/// reader may see them), with both messages: one text (of three lines) per scenario.
fn changed_verdicts(recorded: &GradeReport, replayed: &GradeReport) -> Vec<String> {
    let describe = |o: Option<&crate::verdict::ScenarioOutcome>| match o {
        None => "not run".to_string(),
        Some(o) if o.message.is_empty() => o.status.label().to_string(),
        Some(o) => format!(
            "{}: {}",
            o.status.label(),
            safe_text::terminal_lines(&o.message).replace('\n', "\n      ")
        ),
    };
    let find = |r: &GradeReport, name: &str| r.scenarios.iter().find(|o| o.name == name).cloned();
    let mut names: Vec<&str> = recorded.scenarios.iter().map(|o| o.name.as_str()).collect();
    for o in &replayed.scenarios {
        if !names.contains(&o.name.as_str()) {
            names.push(&o.name);
        }
    }
    let mut lines = Vec::new();
    for name in names {
        let (before, after) = (find(recorded, name), find(replayed, name));
        if before.as_ref().map(|o| o.status) == after.as_ref().map(|o| o.status) {
            continue;
        }
        lines.push(format!(
            "  {}\n    recorded: {}\n    replay:   {}",
            safe_text::terminal(name),
            describe(before.as_ref()),
            describe(after.as_ref())
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_score_forms() {
        assert_eq!("24".parse::<MinScore>(), Ok(MinScore::Points(24.0)));
        assert_eq!("80%".parse::<MinScore>(), Ok(MinScore::Percent(80.0)));
        assert!("lots".parse::<MinScore>().is_err());
        assert!("120%".parse::<MinScore>().is_err());
        assert_eq!("0".parse::<MinScore>(), Ok(MinScore::Points(0.0)));
        assert_eq!("1.5".parse::<MinScore>(), Ok(MinScore::Points(1.5)));
        assert_eq!("0.8%".parse::<MinScore>(), Ok(MinScore::Percent(0.8)));
        for fraction in ["0.8", ".5", "0.99"] {
            let e = fraction.parse::<MinScore>().unwrap_err();
            assert!(
                e.contains("write 80% or a number of points"),
                "{fraction}: {e}"
            );
        }
    }
}
